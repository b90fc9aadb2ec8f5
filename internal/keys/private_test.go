package keys

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestPrivateExportsRoundTrip(t *testing.T) {
	base := key2048(t)
	k, err := NewPrivateKey(base.RSA(), "acme-tt02-20250601-abcdef", RS512)
	if err != nil {
		t.Fatal(err)
	}
	pemOut, err := k.PKCS8PEM()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pemOut, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("PEM starts %q", pemOut[:30])
	}
	jwkOut, err := k.PrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	var members map[string]string
	if err := json.Unmarshal(jwkOut, &members); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"kty", "use", "alg", "kid", "e", "n", "d", "p", "q", "dp", "dq", "qi"} {
		if members[m] == "" {
			t.Errorf("private JWK lacks %q", m)
		}
	}
	if members["alg"] != "RS512" || members["use"] != "sig" || members["kid"] != k.KID {
		t.Errorf("private JWK header members = %v %v %v", members["alg"], members["use"], members["kid"])
	}

	tests := []struct {
		name    string
		in      []byte
		kid     string
		alg     Alg
		private bool
	}{
		{"PKCS#8 PEM", pemOut, "", "", true},
		{"PKCS#8 DER", k.mustPKCS8(t), "", "", true},
		{"PKCS#1 PEM", []byte(pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.RSA()))), "", "", true},
		{"PEM after text", append([]byte("my key:\n"), pemOut...), "", "", true},
		{"private JWK", jwkOut, k.KID, RS512, true},
		{"private JWK set", []byte(`{"keys":[` + string(jwkOut) + `]}`), k.KID, RS512, true},
		{"private JWK without CRT members", []byte(jwkJSON(t, map[string]any{
			"kty": "RSA", "n": members["n"], "e": members["e"], "d": members["d"], "p": members["p"], "q": members["q"]})), "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivate(tt.in)
			if err != nil {
				t.Fatalf("ParsePrivate: %v", err)
			}
			if !got.RSA().Equal(k.RSA()) {
				t.Fatal("key differs")
			}
			if got.KID != tt.kid || got.Alg != tt.alg {
				t.Errorf("kid, alg = %q, %q", got.KID, got.Alg)
			}
			// It signs, and the signature verifies under the public key.
			var s crypto.Signer = got
			digest := sha512.Sum512([]byte("grant"))
			sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA512)
			if err != nil {
				t.Fatal(err)
			}
			if err := rsa.VerifyPKCS1v15(s.Public().(*rsa.PublicKey), crypto.SHA512, digest[:], sig); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}

	// The public parser refuses both exports.
	for _, out := range [][]byte{pemOut, jwkOut} {
		if _, err := ParsePublic(out); !errors.Is(err, ErrPrivateKey) {
			t.Errorf("ParsePublic(private export) = %v", err)
		}
	}
	// The public JWK matches the private one and parses back.
	pj := k.PublicJWK()
	if pj.N != members["n"] || pj.E != members["e"] || pj.Kid != k.KID || pj.Alg != "RS512" || pj.Use != "sig" {
		t.Errorf("public JWK = %+v", pj)
	}
	if p := k.PublicKey(); p.Thumbprint() != k.Thumbprint() || p.KID != k.KID || p.Alg != RS512 {
		t.Errorf("PublicKey = %+v", p)
	}
}

func TestParsePrivateRefuses(t *testing.T) {
	k := key2048(t)
	priv := k.RSA()
	jwkOut, err := k.PrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(jwkOut, &m); err != nil {
		t.Fatal(err)
	}
	with := func(extra map[string]any) string {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return jwkJSON(t, c)
	}
	small := key1024(t)
	encrypted := string(pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00000000000000000000000000000000"},
		Bytes:   []byte("ciphertext"),
	}))

	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrNoKey},
		{"garbage", "not a key", ErrMalformed},
		{"garbage DER", "\x30\x03\x02\x01\x00", ErrMalformed},
		{"public PEM only", pemBlock("PUBLIC KEY", spki(t, &priv.PublicKey)), ErrNoKey},
		{"encrypted PKCS#8", pemBlock("ENCRYPTED PRIVATE KEY", []byte("x")), ErrEncryptedKey},
		{"encrypted PKCS#1", encrypted, ErrEncryptedKey},
		{"broken PKCS#8 PEM", pemBlock("PRIVATE KEY", []byte("broken")), ErrMalformed},
		{"broken PKCS#1 PEM", pemBlock("RSA PRIVATE KEY", []byte("broken")), ErrMalformed},
		{"EC PKCS#8", pemBlock("PRIVATE KEY", pkcs8(t, keyEC(t))), ErrUnsupportedKeyType},
		{"Ed25519 PKCS#8", pemBlock("PRIVATE KEY", pkcs8(t, keyEd(t))), ErrUnsupportedKeyType},
		{"EC PEM", pemBlock("EC PRIVATE KEY", []byte("x")), ErrUnsupportedKeyType},
		{"1024-bit PKCS#8", pemBlock("PRIVATE KEY", pkcs8(t, small)), ErrKeyTooSmall},
		{"1024-bit PKCS#1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), ErrKeyTooSmall},
		{"public JWK", with(map[string]any{"d": nil, "p": nil, "q": nil, "dp": nil, "dq": nil, "qi": nil}), ErrNoKey},
		{"JWK without primes", with(map[string]any{"p": nil, "q": nil}), ErrMalformed},
		{"JWK wrong d", with(map[string]any{"d": m["dp"]}), ErrMalformed},
		{"JWK swapped dp", with(map[string]any{"dp": m["dq"]}), ErrMalformed},
		{"JWK d not base64", with(map[string]any{"d": "***"}), ErrMalformed},
		{"JWK multi-prime", with(map[string]any{"oth": []any{}}), ErrUnsupportedKeyType},
		{"JWK EC", `{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB","d":"AQAB"}`, ErrUnsupportedKeyType},
		{"JWK bad alg", with(map[string]any{"alg": "HS256"}), ErrUnsupportedAlg},
		{"JWK bad kid", with(map[string]any{"kid": "no spaces"}), ErrInvalidKID},
		{"JWK set of two", `{"keys":[` + string(jwkOut) + `,` + string(jwkOut) + `]}`, ErrMultipleKeys},
		{"JWK null", `null`, ErrMalformed},
		{"broken JSON", string(jwkOut[:len(jwkOut)/2]), ErrMalformed},
		{"too large", strings.Repeat("A", MaxInputSize+1), ErrMalformed},
	}
	secrets := []string{m["d"].(string), m["p"].(string), m["q"].(string)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivate([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted %v", got)
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			for _, s := range secrets {
				if leaks(err.Error(), s) {
					t.Errorf("error quotes key material: %q", err)
				}
			}
		})
	}
}

func TestPrivateKeyRedaction(t *testing.T) {
	k := key2048(t)
	secrets := []string{
		k.RSA().D.String(), k.RSA().Primes[0].String(),
		fmt.Sprintf("%x", k.RSA().D), b64(k.RSA().D.Bytes()),
	}
	type holder struct {
		Key  *PrivateKey
		Keys []*PrivateKey
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, holder{k, []*PrivateKey{k}}))
	}
	outs = append(outs, fmt.Sprint(*k), fmt.Sprintf("%+v", *k))
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("generated", "key", k)
	log.Info("generated", slog.Any("key", k))
	log.Info("generated", "holder", holder{Key: k})
	outs = append(outs, buf.String())
	text := slog.New(slog.NewTextHandler(&buf, nil))
	text.Info("generated", "key", k)
	outs = append(outs, buf.String())
	for _, out := range outs {
		for _, s := range secrets {
			if leaks(out, s) {
				t.Fatalf("output shows private material: %.200s", out)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(k), "redacted") || !strings.Contains(buf.String(), `"private":"redacted"`) {
		t.Errorf("redaction marker missing: %s / %s", k, buf.String())
	}
	var nilKey *PrivateKey
	if fmt.Sprint(nilKey) != "keys.PrivateKey(nil)" {
		t.Errorf("nil key prints %q", fmt.Sprint(nilKey))
	}
}

func TestNewPrivateKeyChecks(t *testing.T) {
	if _, err := NewPrivateKey(nil, "", ""); err == nil {
		t.Error("nil key accepted")
	}
	if _, err := NewPrivateKey(key1024(t), "", ""); !errors.Is(err, ErrKeyTooSmall) {
		t.Errorf("1024-bit key: %v", err)
	}
}
