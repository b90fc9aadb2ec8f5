package keys

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func testKEK(t testing.TB) (*KEK, []byte) {
	t.Helper()
	raw := make([]byte, KEKSize)
	rand.Read(raw)
	k, err := NewKEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k, raw
}

func TestSealRoundTrip(t *testing.T) {
	kek, _ := testKEK(t)
	plain := key2048(t).mustPKCS8(t)
	sealed, err := Seal(kek, "tt02", "client-1", "kid-1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain[len(plain)-64:]) {
		t.Fatal("sealed data contains plaintext")
	}
	if len(sealed) != headerSize+len(plain)+tagSize || sealed[0] != sealVersion1 {
		t.Fatalf("sealed length %d, version %d", len(sealed), sealed[0])
	}
	got, err := Open(kek, "tt02", "client-1", "kid-1", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %v", err)
	}
	// The result parses back into the same key.
	k, err := ParsePrivate(got)
	if err != nil || !k.RSA().Equal(key2048(t).RSA()) {
		t.Fatalf("ParsePrivate(opened) = %v", err)
	}
	// Fresh nonce every time.
	again, _ := Seal(kek, "tt02", "client-1", "kid-1", plain)
	if bytes.Equal(again, sealed) || bytes.Equal(again[9:headerSize], sealed[9:headerSize]) {
		t.Error("two seals are identical")
	}
	if id, err := SealedKEKID(sealed); err != nil || id != kek.ID() {
		t.Errorf("SealedKEKID = %s, %v; want %s", id, err, kek.ID())
	}
	// Empty plaintext is allowed.
	if s, err := Seal(kek, "tt02", "c", "k", nil); err != nil {
		t.Error(err)
	} else if p, err := Open(kek, "tt02", "c", "k", s); err != nil || len(p) != 0 {
		t.Errorf("empty round trip: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	kek, _ := testKEK(t)
	other, _ := testKEK(t)
	sealed, err := Seal(kek, "tt02", "client-1", "kid-1", []byte("secret key bytes"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name               string
		kek                *KEK
		env, clientID, kid string
		data               []byte
		want               error
	}{
		{"other environment", kek, "prod", "client-1", "kid-1", sealed, ErrUnseal},
		{"other client", kek, "tt02", "client-2", "kid-1", sealed, ErrUnseal},
		{"other kid", kek, "tt02", "client-1", "kid-2", sealed, ErrUnseal},
		{"shifted binding", kek, "tt02c", "lient-1", "kid-1", sealed, ErrUnseal},
		{"other KEK", other, "tt02", "client-1", "kid-1", sealed, ErrWrongKEK},
		{"flipped nonce", kek, "tt02", "client-1", "kid-1", flip(10), ErrUnseal},
		{"flipped ciphertext", kek, "tt02", "client-1", "kid-1", flip(headerSize + 1), ErrUnseal},
		{"flipped tag", kek, "tt02", "client-1", "kid-1", flip(len(sealed) - 1), ErrUnseal},
		{"flipped KEK id", kek, "tt02", "client-1", "kid-1", flip(1), ErrWrongKEK},
		{"unknown version", kek, "tt02", "client-1", "kid-1", flip(0), ErrSealedFormat},
		{"truncated", kek, "tt02", "client-1", "kid-1", sealed[:headerSize+tagSize-1], ErrSealedFormat},
		{"empty", kek, "tt02", "client-1", "kid-1", nil, ErrSealedFormat},
		{"appended byte", kek, "tt02", "client-1", "kid-1", append(bytes.Clone(sealed), 0), ErrUnseal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Open(tt.kek, tt.env, tt.clientID, tt.kid, tt.data)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows plaintext: %v", err)
			}
		})
	}
}

func TestSealNeedsBinding(t *testing.T) {
	kek, _ := testKEK(t)
	for _, b := range [][3]string{{"", "c", "k"}, {"e", "", "k"}, {"e", "c", ""}} {
		if _, err := Seal(kek, b[0], b[1], b[2], []byte("x")); err == nil {
			t.Errorf("Seal(%q) accepted", b)
		}
		if _, err := Open(kek, b[0], b[1], b[2], []byte("x")); err == nil {
			t.Errorf("Open(%q) accepted", b)
		}
	}
	if _, err := Seal(nil, "e", "c", "k", []byte("x")); err == nil {
		t.Error("nil KEK accepted")
	}
}

func TestReseal(t *testing.T) {
	from, _ := testKEK(t)
	to, _ := testKEK(t)
	sealed, _ := Seal(from, "prod", "c", "k", []byte("pkcs8"))
	moved, err := Reseal(from, to, "prod", "c", "k", sealed)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SealedKEKID(moved); id != to.ID() {
		t.Errorf("resealed under %s, want %s", id, to.ID())
	}
	if p, err := Open(to, "prod", "c", "k", moved); err != nil || string(p) != "pkcs8" {
		t.Errorf("Open(resealed) = %q, %v", p, err)
	}
	if _, err := Open(from, "prod", "c", "k", moved); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("old KEK on resealed data: %v", err)
	}
	if _, err := Reseal(to, from, "prod", "c", "k", sealed); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("Reseal with the wrong source: %v", err)
	}
}

func TestKEKRedaction(t *testing.T) {
	kek, raw := testKEK(t)
	enc, err := hkdf.Key(sha256.New, raw, nil, "portal/keys seal aes-256-gcm v1", KEKSize)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		fmt.Sprintf("%x", raw), fmt.Sprint(raw)[1:40], fmt.Sprintf("%x", enc), fmt.Sprint(enc)[1:40],
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, kek), fmt.Sprintf(verb, struct{ K *KEK }{kek}))
	}
	outs = append(outs, fmt.Sprintf("%+v", *kek), fmt.Sprintf("%#v", *kek))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "kek", kek)
	outs = append(outs, buf.String())
	for _, out := range outs {
		for _, s := range secrets {
			if leaks(out, s) {
				t.Fatalf("output shows the key: %s", out)
			}
		}
	}
	if !strings.Contains(buf.String(), kek.ID()) || !strings.Contains(kek.String(), "redacted") {
		t.Errorf("log = %s, String = %s", buf.String(), kek)
	}
}
