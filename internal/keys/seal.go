package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors of Open.
var (
	ErrSealedFormat = errors.New("sealed key is not in a known format")
	ErrWrongKEK     = errors.New("sealed key was sealed under a different key-encryption key")
	ErrUnseal       = errors.New("sealed key does not open: it was altered, or belongs to another environment, client or kid")
)

// Sealed format, version 1:
//
//	version (1 byte, 0x01) | KEK id (8) | nonce (12) | AES-256-GCM ciphertext and tag
//
// The authenticated data binds the header and the environment, client id and
// kid, so a sealed key copied to another row does not open.
const (
	sealVersion1 = 0x01
	nonceSize    = 12
	headerSize   = 1 + 8 + nonceSize
	tagSize      = 16
)

// Seal encrypts a private key (as PKCS#8 DER, see PrivateKey.PKCS8) for
// storage, bound to env, clientID and kid.
func Seal(kek *KEK, env, clientID, kid string, plaintext []byte) ([]byte, error) {
	if err := checkBinding(kek, env, clientID, kid); err != nil {
		return nil, fmt.Errorf("keys: seal: %w", err)
	}
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = sealVersion1
	copy(out[1:9], kek.id[:])
	rand.Read(out[9:headerSize])
	return kek.aead.Seal(out, out[9:headerSize], plaintext, aad(out[:9], env, clientID, kid)), nil
}

// Open reverses Seal. It fails with ErrWrongKEK when another KEK sealed the
// data, and ErrUnseal when the data or its binding differ.
func Open(kek *KEK, env, clientID, kid string, sealed []byte) ([]byte, error) {
	if err := checkBinding(kek, env, clientID, kid); err != nil {
		return nil, fmt.Errorf("keys: open: %w", err)
	}
	if len(sealed) < headerSize+tagSize || sealed[0] != sealVersion1 {
		return nil, fmt.Errorf("keys: open %s/%s/%s: %w", env, clientID, kid, ErrSealedFormat)
	}
	if !bytes.Equal(sealed[1:9], kek.id[:]) {
		return nil, fmt.Errorf("keys: open %s/%s/%s: %w (sealed under %s, this one is %s)",
			env, clientID, kid, ErrWrongKEK, hex.EncodeToString(sealed[1:9]), kek.ID())
	}
	plain, err := kek.aead.Open(nil, sealed[9:headerSize], sealed[headerSize:], aad(sealed[:9], env, clientID, kid))
	if err != nil {
		return nil, fmt.Errorf("keys: open %s/%s/%s: %w", env, clientID, kid, ErrUnseal)
	}
	return plain, nil
}

// Reseal moves sealed data from one KEK to another, for rekeying.
func Reseal(from, to *KEK, env, clientID, kid string, sealed []byte) ([]byte, error) {
	plain, err := Open(from, env, clientID, kid, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return Seal(to, env, clientID, kid, plain)
}

// SealedKEKID names the KEK that sealed data, to find rows a rekey missed.
func SealedKEKID(sealed []byte) (string, error) {
	if len(sealed) < headerSize+tagSize || sealed[0] != sealVersion1 {
		return "", ErrSealedFormat
	}
	return hex.EncodeToString(sealed[1:9]), nil
}

func checkBinding(kek *KEK, env, clientID, kid string) error {
	switch {
	case kek == nil:
		return errors.New("no key-encryption key")
	case env == "" || clientID == "" || kid == "":
		return errors.New("environment, client id and kid are all required")
	}
	return nil
}

// aad is length-prefixed, so ("a", "bc") and ("ab", "c") differ.
func aad(header []byte, env, clientID, kid string) []byte {
	b := append([]byte("portal/keys sealed private key\x00"), header...)
	for _, s := range []string{env, clientID, kid} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}
