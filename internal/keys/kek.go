package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KEKSize is the size of a key-encryption key: AES-256.
const KEKSize = 32

// Errors about key-encryption keys. Their messages name files and modes,
// never contents.
var (
	ErrKEKLength      = errors.New("key-encryption key must be 32 random bytes, written as 64 hex characters, base64, or 32 raw bytes")
	ErrKEKWeak        = errors.New("key-encryption key is not random (all bytes are the same)")
	ErrKEKPermissions = errors.New("key-encryption key file is readable by group or others")
)

// KEK is the key-encryption key that seals private keys the portal keeps.
// It never reaches the database; String, GoString, Format and LogValue show
// only its ID.
type KEK struct {
	aead cipher.AEAD
	id   [8]byte
}

// NewKEK makes a KEK from 32 random bytes; b is not retained.
func NewKEK(b []byte) (*KEK, error) {
	if len(b) != KEKSize {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrKEKLength, len(b))
	}
	if bytes.Count(b, b[:1]) == len(b) {
		return nil, ErrKEKWeak
	}
	// Separate derived keys for encryption and for the public ID, so the ID
	// says nothing about the encryption key.
	enc, err := hkdf.Key(sha256.New, b, nil, "portal/keys seal aes-256-gcm v1", KEKSize)
	if err != nil {
		return nil, fmt.Errorf("keys: derive sealing key: %w", err)
	}
	idb, err := hkdf.Key(sha256.New, b, nil, "portal/keys kek id v1", 8)
	if err != nil {
		return nil, fmt.Errorf("keys: derive KEK id: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	clear(enc)
	k := &KEK{aead: aead}
	copy(k.id[:], idb)
	return k, nil
}

// ParseKEK reads a KEK from text, as given in an environment variable
// (PORTAL_KEK): 64 hex characters or base64 (standard or URL alphabet,
// padded or not) of 32 bytes.
func ParseKEK(s string) (*KEK, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KEKSize {
		if b, err := hex.DecodeString(s); err == nil {
			return NewKEK(b)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KEKSize {
			return NewKEK(b)
		}
	}
	return nil, fmt.Errorf("%w (got %d characters)", ErrKEKLength, len(s))
}

// ID is a short public fingerprint that tells KEKs apart in logs and in
// sealed data; it reveals nothing about the key.
func (k *KEK) ID() string { return hex.EncodeToString(k.id[:]) }

func (k *KEK) String() string {
	if k == nil {
		return "keys.KEK(nil)"
	}
	return "keys.KEK{id=" + k.ID() + " [redacted]}"
}

func (k *KEK) GoString() string { return k.String() }

// Format applies to every verb, so no verb prints the cipher state.
func (k *KEK) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

func (k *KEK) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(slog.String("id", k.ID()), slog.String("key", "redacted"))
}

// maxKEKFile bounds what LoadKEKFile reads: a KEK file is a line of text.
const maxKEKFile = 1024

// LoadKEKFile reads a KEK file (PORTAL_KEK_FILE): 32 raw bytes, or 64 hex
// characters or base64 of them, surrounding whitespace ignored. It refuses a
// file that group or others may read, or anything but a regular file.
func LoadKEKFile(path string) (*KEK, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: open key-encryption key file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: stat key-encryption key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: key-encryption key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o; make it readable by its owner only (chmod 600 %s)",
			ErrKEKPermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKEKFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys: read key-encryption key file %s: %w", path, err)
	}
	defer clear(data)
	var k *KEK
	if len(data) == KEKSize {
		k, err = NewKEK(data)
	} else if len(data) > maxKEKFile {
		err = fmt.Errorf("%w (the file is larger than %d bytes)", ErrKEKLength, maxKEKFile)
	} else {
		k, err = ParseKEK(string(data))
	}
	if err != nil {
		return nil, fmt.Errorf("keys: key-encryption key file %s: %w", path, err)
	}
	return k, nil
}

// CreateKEKFile writes a new random KEK as hex to path with mode 0600, only
// if path does not exist (the error then matches fs.ErrExist). The file
// appears whole or not at all: it is written beside path and linked into
// place.
func CreateKEKFile(path string) (*KEK, error) {
	var raw [KEKSize]byte
	rand.Read(raw[:])
	defer clear(raw[:])
	k, err := NewKEK(raw[:])
	if err != nil {
		return nil, err
	}
	text := []byte(hex.EncodeToString(raw[:]) + "\n")
	defer clear(text)

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".kek-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("keys: create key-encryption key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already uses 0600; keep it explicit against a changed default.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("keys: create key-encryption key file: %w", err)
	}
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("keys: write key-encryption key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("keys: write key-encryption key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("keys: write key-encryption key file: %w", err)
	}
	// Link fails if path exists, which makes create-if-missing atomic.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("keys: key-encryption key file %s already exists; not replacing it: %w", path, fs.ErrExist)
		}
		return nil, fmt.Errorf("keys: create key-encryption key file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the new name durable
		d.Close()
	}
	return k, nil
}

// LoadOrCreateKEKFile loads path, or creates it when missing (the embedded
// default). created reports which happened.
func LoadOrCreateKEKFile(path string) (k *KEK, created bool, err error) {
	k, err = LoadKEKFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	k, err = CreateKEKFile(path)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first.
		k, err = LoadKEKFile(path)
		return k, false, err
	}
	return k, err == nil, err
}
