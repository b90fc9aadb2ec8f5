package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParseKEK(t *testing.T) {
	raw := make([]byte, KEKSize)
	rand.Read(raw)
	want, err := NewKEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"hex":               hex.EncodeToString(raw),
		"hex upper, spaces": "  " + strings.ToUpper(hex.EncodeToString(raw)) + "\n",
		"base64":            base64.StdEncoding.EncodeToString(raw),
		"base64 raw":        base64.RawStdEncoding.EncodeToString(raw),
		"base64url":         base64.URLEncoding.EncodeToString(raw),
		"base64url raw":     base64.RawURLEncoding.EncodeToString(raw),
	} {
		got, err := ParseKEK(s)
		if err != nil || got.ID() != want.ID() {
			t.Errorf("%s: %v, %v", name, got, err)
		}
	}
	for name, s := range map[string]string{
		"empty":        "",
		"short hex":    hex.EncodeToString(raw[:16]),
		"long hex":     hex.EncodeToString(append(raw, 1)),
		"short base64": base64.StdEncoding.EncodeToString(raw[:31]),
		"raw bytes":    string(raw),
		"passphrase":   "correct horse battery staple",
	} {
		_, err := ParseKEK(s)
		if !errors.Is(err, ErrKEKLength) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && len(s) > 8 && strings.Contains(err.Error(), s[:8]) {
			t.Errorf("%s: error quotes the value: %v", name, err)
		}
	}
	if _, err := ParseKEK(strings.Repeat("00", KEKSize)); !errors.Is(err, ErrKEKWeak) {
		t.Errorf("all-zero KEK: %v", err)
	}
}

func writeFile(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKEKFile(t *testing.T) {
	raw := make([]byte, KEKSize)
	rand.Read(raw)
	raw[0] = '\n' // raw files may start or end with whitespace bytes
	want, _ := NewKEK(raw)
	hexText := hex.EncodeToString(raw)

	tests := []struct {
		name string
		data []byte
		mode os.FileMode
		want error
	}{
		{"hex with newline", []byte(hexText + "\n"), 0o600, nil},
		{"base64", []byte(base64.StdEncoding.EncodeToString(raw) + "\r\n"), 0o600, nil},
		{"raw 32 bytes", raw, 0o600, nil},
		{"read-only for owner", []byte(hexText), 0o400, nil},
		{"readable by others", []byte(hexText), 0o644, ErrKEKPermissions},
		{"readable by group", []byte(hexText), 0o640, ErrKEKPermissions},
		{"writable by group", []byte(hexText), 0o620, ErrKEKPermissions},
		{"executable by others", []byte(hexText), 0o601, ErrKEKPermissions},
		{"too short", []byte(hexText[:60]), 0o600, ErrKEKLength},
		{"raw 31 bytes", raw[:31], 0o600, ErrKEKLength},
		{"empty", nil, 0o600, ErrKEKLength},
		{"large", bytes.Repeat([]byte("a"), 4096), 0o600, ErrKEKLength},
		{"all zero", make([]byte, KEKSize), 0o600, ErrKEKWeak},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tt.want == ErrKEKPermissions {
				t.Skip("no permission bits on Windows")
			}
			path := writeFile(t, tt.data, tt.mode)
			got, err := LoadKEKFile(path)
			if tt.want == nil {
				if err != nil || got.ID() != want.ID() {
					t.Fatalf("LoadKEKFile = %v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("LoadKEKFile = %v, want %v", err, tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || strings.Contains(msg, hexText[:16]) {
				t.Errorf("message should name the file and not its content: %s", msg)
			}
			if tt.want == ErrKEKPermissions && !strings.Contains(msg, "chmod 600") {
				t.Errorf("message should say how to fix it: %s", msg)
			}
		})
	}

	if _, err := LoadKEKFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKEKFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func TestCreateKEKFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	k, err := CreateKEKFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %04o, want 0600", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	loaded, err := LoadKEKFile(path)
	if err != nil || loaded.ID() != k.ID() {
		t.Fatalf("LoadKEKFile = %v, %v", loaded, err)
	}
	// Never replaces an existing file.
	if _, err := CreateKEKFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second create: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("existing file changed")
	}
	// No temporary files stay behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries", len(entries))
	}
	if _, err := CreateKEKFile(filepath.Join(dir, "missing-dir", "kek")); err == nil {
		t.Error("create in a missing directory succeeded")
	}
	// Two KEKs are different.
	k2, err := CreateKEKFile(filepath.Join(dir, "kek2"))
	if err != nil || k2.ID() == k.ID() {
		t.Errorf("second KEK: %v, %v", k2, err)
	}
}

func TestLoadOrCreateKEKFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	k1, created, err := LoadOrCreateKEKFile(path)
	if err != nil || !created {
		t.Fatalf("first: %v, created %v", err, created)
	}
	k2, created, err := LoadOrCreateKEKFile(path)
	if err != nil || created || k2.ID() != k1.ID() {
		t.Fatalf("second: %v, created %v", err, created)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKEKFile(path); !errors.Is(err, ErrKEKPermissions) {
		t.Errorf("loose permissions: %v", err)
	}
}
