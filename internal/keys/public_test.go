package keys

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

func jwkJSON(tb testing.TB, members map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(members)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// pubMembers are the JWK members of the shared key, plus extra.
func pubMembers(tb testing.TB, extra map[string]any) map[string]any {
	j := key2048(tb).PublicJWK()
	m := map[string]any{"kty": "RSA", "n": j.N, "e": j.E}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return m
}

func TestParsePublicAccepts(t *testing.T) {
	k := key2048(t)
	pub := &k.RSA().PublicKey
	j := k.PublicJWK()
	spkiDER := spki(t, pub)
	pkcs1DER := x509.MarshalPKCS1PublicKey(pub)
	cert := selfSigned(t, k, "integration.example", validFrom, validUntil)
	otherCert := selfSigned(t, keyEC(t), "intermediate", validFrom, validUntil)

	tests := []struct {
		name   string
		in     string
		n      int // keys expected
		kid    string
		alg    Alg
		format string
		cert   bool
		chain  int
	}{
		{name: "JWK minimal", in: jwkJSON(t, pubMembers(t, nil)), n: 1, format: "JWK"},
		{name: "JWK full", in: jwkJSON(t, pubMembers(t, map[string]any{"kid": "acme_altinn_2025_Q3", "alg": "RS384", "use": "sig"})),
			n: 1, kid: "acme_altinn_2025_Q3", alg: RS384, format: "JWK"},
		{name: "JWK with Digdir's exp and unknown members", in: jwkJSON(t, pubMembers(t, map[string]any{"exp": 1577836800, "x5t": "abc", "kid": "k1", "alg": "RS512"})),
			n: 1, kid: "k1", alg: RS512, format: "JWK"},
		{name: "JWK standard base64 with padding", in: jwkJSON(t, pubMembers(t, map[string]any{
			"n": base64.StdEncoding.EncodeToString(pub.N.Bytes()), "e": "AQAB"})), n: 1, format: "JWK"},
		{name: "JWK n with leading zero byte", in: jwkJSON(t, pubMembers(t, map[string]any{
			"n": b64(append([]byte{0}, pub.N.Bytes()...))})), n: 1, format: "JWK"},
		{name: "JWK null members", in: jwkJSON(t, pubMembers(t, map[string]any{"kid": nil, "x5c": nil})), n: 1, format: "JWK"},
		{name: "JWK with x5c", in: jwkJSON(t, pubMembers(t, map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(cert)}})),
			n: 1, format: "JWK", cert: true},
		{name: "JWK set one key", in: `{"keys":[` + jwkJSON(t, pubMembers(t, map[string]any{"kid": "a"})) + `]}`, n: 1, kid: "a", format: "JWK set"},
		{name: "JWK set two keys", in: `{"keys":[` + jwkJSON(t, pubMembers(t, nil)) + `,` + rfc7638JWK + `]}`, n: 2, format: "JWK set"},
		{name: "bare JSON array", in: `[` + jwkJSON(t, pubMembers(t, nil)) + `]`, n: 1, format: "JWK set"},
		{name: "JWK with BOM and whitespace", in: "\xef\xbb\xbf \n" + jwkJSON(t, pubMembers(t, nil)) + "\n", n: 1, format: "JWK"},
		{name: "PEM SPKI", in: pemBlock("PUBLIC KEY", spkiDER), n: 1, format: "PEM public key"},
		{name: "PEM PKCS#1", in: pemBlock("RSA PUBLIC KEY", pkcs1DER), n: 1, format: "PEM PKCS#1 public key"},
		{name: "PEM with text around and CRLF", in: "key for acme\r\n" + strings.ReplaceAll(pemBlock("PUBLIC KEY", spkiDER), "\n", "\r\n") + "trailer\r\n",
			n: 1, format: "PEM public key"},
		{name: "PEM certificate", in: pemBlock("CERTIFICATE", cert), n: 1, format: "PEM certificate", cert: true},
		{name: "PEM certificate chain", in: pemBlock("CERTIFICATE", cert) + pemBlock("CERTIFICATE", otherCert),
			n: 1, format: "PEM certificate", cert: true, chain: 1},
		{name: "PEM public key and certificate", in: pemBlock("PUBLIC KEY", spkiDER) + pemBlock("CERTIFICATE", cert), n: 2, format: "PEM public key"},
		{name: "DER SPKI", in: string(spkiDER), n: 1, format: "DER public key"},
		{name: "DER PKCS#1", in: string(pkcs1DER), n: 1, format: "DER PKCS#1 public key"},
		{name: "DER certificate", in: string(cert), n: 1, format: "DER certificate", cert: true},
		{name: "base64 certificate without armour", in: base64.StdEncoding.EncodeToString(cert) + "\n", n: 1, format: "base64 DER certificate", cert: true},
		{name: "base64 SPKI wrapped", in: wrap(base64.StdEncoding.EncodeToString(spkiDER), 64), n: 1, format: "base64 DER public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicSet([]byte(tt.in), testNow)
			if err != nil {
				t.Fatalf("ParsePublicSet: %v", err)
			}
			if len(got) != tt.n {
				t.Fatalf("got %d keys, want %d", len(got), tt.n)
			}
			first := got[0]
			if !first.Key.Equal(pub) {
				t.Errorf("first key differs from the input key")
			}
			if first.KID != tt.kid || first.Alg != tt.alg || first.Format != tt.format {
				t.Errorf("kid, alg, format = %q, %q, %q; want %q, %q, %q", first.KID, first.Alg, first.Format, tt.kid, tt.alg, tt.format)
			}
			if (first.Certificate != nil) != tt.cert {
				t.Fatalf("certificate = %v, want %v", first.Certificate != nil, tt.cert)
			}
			if c := first.Certificate; c != nil {
				if !strings.Contains(c.Subject, "CN=integration.example") || c.SerialNumber != "1234abcd" ||
					!c.NotBefore.Equal(validFrom) || !c.NotAfter.Equal(validUntil) || string(c.DER) != string(cert) || len(c.Chain) != tt.chain {
					t.Errorf("certificate info = %+v", c)
				}
			}
			if tp := first.Thumbprint(); tp != k.Thumbprint() {
				t.Errorf("thumbprint %s, want %s", tp, k.Thumbprint())
			}
			out := first.JWK()
			wantAlg := string(tt.alg)
			if wantAlg == "" {
				wantAlg = "RS256"
			}
			if out.Kty != "RSA" || out.Use != "sig" || out.Alg != wantAlg || out.Kid != tt.kid || out.E != "AQAB" || out.N != j.N || out.X5C != nil {
				t.Errorf("JWK = %+v", out)
			}
		})
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	return b.String() + s + "\n"
}

func TestParsePublicRefuses(t *testing.T) {
	k := key2048(t)
	priv := k.RSA()
	pub := &priv.PublicKey
	small := key1024(t)
	ec, ed := keyEC(t), keyEd(t)
	cert := selfSigned(t, k, "integration.example", validFrom, validUntil)
	expired := selfSigned(t, k, "old.example", validFrom.AddDate(-1, 0, 0), validFrom)
	future := selfSigned(t, k, "future.example", validUntil, validUntil.AddDate(1, 0, 0))
	smallCert := selfSigned(t, small, "small.example", validFrom, validUntil)
	ecCert := selfSigned(t, ec, "ec.example", validFrom, validUntil)
	privJWK, err := k.PrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := k.PKCS8PEM()
	if err != nil {
		t.Fatal(err)
	}
	d := b64(priv.D.Bytes())
	smallJWK := publicJWK(&small.PublicKey, "", "")
	big16k := b64(new(big.Int).Lsh(big.NewInt(1), 16400).Bytes())
	even := new(big.Int).Add(pub.N, big.NewInt(1))
	x5c := func(der []byte) []string { return []string{base64.StdEncoding.EncodeToString(der)} }

	tests := []struct {
		name string
		in   string
		want error
	}{
		// Private material, in every form.
		{"private JWK", string(privJWK), ErrPrivateKey},
		{"JWK with d only", jwkJSON(t, pubMembers(t, map[string]any{"d": d})), ErrPrivateKey},
		{"JWK with p", jwkJSON(t, pubMembers(t, map[string]any{"p": "AQAB"})), ErrPrivateKey},
		{"JWK with q", jwkJSON(t, pubMembers(t, map[string]any{"q": "AQAB"})), ErrPrivateKey},
		{"JWK with dp", jwkJSON(t, pubMembers(t, map[string]any{"dp": "AQAB"})), ErrPrivateKey},
		{"JWK with dq", jwkJSON(t, pubMembers(t, map[string]any{"dq": "AQAB"})), ErrPrivateKey},
		{"JWK with qi", jwkJSON(t, pubMembers(t, map[string]any{"qi": "AQAB"})), ErrPrivateKey},
		{"JWK with oth", jwkJSON(t, pubMembers(t, map[string]any{"oth": []any{}})), ErrPrivateKey},
		{"JWK with null d", `{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","d":null}`, ErrPrivateKey},
		{"symmetric JWK", `{"kty":"oct","k":"c2VjcmV0"}`, ErrPrivateKey},
		{"private key second in set", `{"keys":[` + rfc7638JWK + `,` + string(privJWK) + `]}`, ErrPrivateKey},
		{"private key in bare array", `[` + string(privJWK) + `]`, ErrPrivateKey},
		{"private key in set with bad first key", `{"keys":[{"kty":"EC"},` + string(privJWK) + `]}`, ErrPrivateKey},
		{"PEM PKCS#8", string(privPEM), ErrPrivateKey},
		{"PEM PKCS#1 private", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(priv)), ErrPrivateKey},
		{"PEM EC private", pemBlock("EC PRIVATE KEY", []byte("x")), ErrPrivateKey},
		{"PEM encrypted private", pemBlock("ENCRYPTED PRIVATE KEY", []byte("x")), ErrPrivateKey},
		{"PEM OpenSSH private", pemBlock("OPENSSH PRIVATE KEY", []byte("x")), ErrPrivateKey},
		{"certificate bundled with its key", pemBlock("CERTIFICATE", cert) + string(privPEM), ErrPrivateKey},
		{"private PEM with broken armour", "-----BEGIN PRIVATE KEY-----\nMIIE\n", ErrPrivateKey},
		{"DER PKCS#8", string(k.mustPKCS8(t)), ErrPrivateKey},
		{"DER PKCS#1 private", string(x509.MarshalPKCS1PrivateKey(priv)), ErrPrivateKey},
		{"DER EC PKCS#8", string(pkcs8(t, ec)), ErrPrivateKey},
		{"DER Ed25519 PKCS#8", string(pkcs8(t, ed)), ErrPrivateKey},
		{"base64 PKCS#8", base64.StdEncoding.EncodeToString(k.mustPKCS8(t)), ErrPrivateKey},
		{"PKCS#12 header", "\x30\x82\x0a\x00\x02\x01\x03\x30\x82\x09\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01\xa0", ErrPrivateKey},
		{"PKCS#12 BER header", "\x30\x80\x02\x01\x03\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0", ErrPrivateKey},

		// Size.
		{"JWK 1024 bits", jwkJSON(t, map[string]any{"kty": "RSA", "n": smallJWK.N, "e": smallJWK.E}), ErrKeyTooSmall},
		{"PEM SPKI 1024 bits", pemBlock("PUBLIC KEY", spki(t, &small.PublicKey)), ErrKeyTooSmall},
		{"PEM PKCS#1 1024 bits", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&small.PublicKey)), ErrKeyTooSmall},
		{"DER PKCS#1 1024 bits", string(x509.MarshalPKCS1PublicKey(&small.PublicKey)), ErrKeyTooSmall},
		{"certificate 1024 bits", pemBlock("CERTIFICATE", smallCert), ErrKeyTooSmall},
		{"JWK tiny", `{"kty":"RSA","n":"AQAB","e":"AQAB"}`, ErrKeyTooSmall},
		{"JWK over 16384 bits", `{"kty":"RSA","n":"` + big16k + `","e":"AQAB"}`, ErrKeyTooLarge},

		// Key types.
		{"EC JWK", `{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}`, ErrUnsupportedKeyType},
		{"OKP JWK", `{"kty":"OKP","crv":"Ed25519","x":"AQAB"}`, ErrUnsupportedKeyType},
		{"EC SPKI PEM", pemBlock("PUBLIC KEY", spki(t, &ec.PublicKey)), ErrUnsupportedKeyType},
		{"Ed25519 SPKI PEM", pemBlock("PUBLIC KEY", spki(t, ed.Public())), ErrUnsupportedKeyType},
		{"EC SPKI DER", string(spki(t, &ec.PublicKey)), ErrUnsupportedKeyType},
		{"EC certificate", pemBlock("CERTIFICATE", ecCert), ErrUnsupportedKeyType},

		// Algorithm, use, kid.
		{"alg PS256", jwkJSON(t, pubMembers(t, map[string]any{"alg": "PS256"})), ErrUnsupportedAlg},
		{"alg none", jwkJSON(t, pubMembers(t, map[string]any{"alg": "none"})), ErrUnsupportedAlg},
		{"alg lower case", jwkJSON(t, pubMembers(t, map[string]any{"alg": "rs256"})), ErrUnsupportedAlg},
		{"use enc", jwkJSON(t, pubMembers(t, map[string]any{"use": "enc"})), ErrUnsupportedUse},
		{"kid with space", jwkJSON(t, pubMembers(t, map[string]any{"kid": "my key"})), ErrInvalidKID},
		{"kid with slash", jwkJSON(t, pubMembers(t, map[string]any{"kid": "a/b"})), ErrInvalidKID},
		{"kid too long", jwkJSON(t, pubMembers(t, map[string]any{"kid": strings.Repeat("k", MaxKIDLength+1)})), ErrInvalidKID},

		// Certificates.
		{"expired PEM certificate", pemBlock("CERTIFICATE", expired), ErrCertificateExpired},
		{"expired DER certificate", string(expired), ErrCertificateExpired},
		{"expired certificate in x5c", jwkJSON(t, pubMembers(t, map[string]any{"x5c": x5c(expired)})), ErrCertificateExpired},
		{"not yet valid certificate", pemBlock("CERTIFICATE", future), ErrCertificateNotYetValid},
		{"x5c for another key", `{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","x5c":["` + x5c(cert)[0] + `"]}`, ErrCertificateMismatch},
		{"x5c not base64", jwkJSON(t, pubMembers(t, map[string]any{"x5c": []string{"%%%"}})), ErrMalformed},
		{"x5c not array", jwkJSON(t, pubMembers(t, map[string]any{"x5c": "abc"})), ErrMalformed},
		{"x5c empty", jwkJSON(t, pubMembers(t, map[string]any{"x5c": []string{}})), ErrMalformed},
		{"x5c garbage certificate", jwkJSON(t, pubMembers(t, map[string]any{"x5c": []string{"AAAA"}})), ErrMalformed},
		{"garbage certificate PEM", pemBlock("CERTIFICATE", []byte("not a certificate")), ErrMalformed},
		{"garbage in certificate chain", pemBlock("CERTIFICATE", cert) + pemBlock("CERTIFICATE", []byte("junk")), ErrMalformed},
		{"garbage in x5c chain", jwkJSON(t, pubMembers(t, map[string]any{"x5c": []string{x5c(cert)[0], "AAAA"}})), ErrMalformed},

		// Garbage.
		{"empty", "", ErrNoKey},
		{"whitespace", " \n\t", ErrNoKey},
		{"empty set", `{"keys":[]}`, ErrNoKey},
		{"empty array", `[]`, ErrNoKey},
		{"text", "hello, this is my key", ErrMalformed},
		{"binary", "\x00\x01\x02\xff\xfe", ErrMalformed},
		{"broken JSON", `{"kty":"RSA",`, ErrMalformed},
		{"JSON string members wrong type", `{"kty":"RSA","n":5,"e":"AQAB"}`, ErrMalformed},
		{"keys not array", `{"keys":{}}`, ErrMalformed},
		{"null key in set", `{"keys":[null]}`, ErrMalformed},
		{"JSON number array", `[1]`, ErrMalformed},
		{"no kty", `{"n":"AQAB","e":"AQAB"}`, ErrMalformed},
		{"no n", `{"kty":"RSA","e":"AQAB"}`, ErrMalformed},
		{"n not base64", jwkJSON(t, pubMembers(t, map[string]any{"n": "***"})), ErrMalformed},
		{"e not base64", jwkJSON(t, pubMembers(t, map[string]any{"e": "***"})), ErrMalformed},
		{"e huge", jwkJSON(t, pubMembers(t, map[string]any{"e": "AQAAAAAB"})), ErrMalformed},
		{"e even", jwkJSON(t, pubMembers(t, map[string]any{"e": "AQAA"})), ErrMalformed},
		{"e one", jwkJSON(t, pubMembers(t, map[string]any{"e": "AQ"})), ErrMalformed},
		{"n even", jwkJSON(t, pubMembers(t, map[string]any{"n": b64(even.Bytes())})), ErrMalformed},
		{"PEM unknown block", pemBlock("CERTIFICATE REQUEST", []byte("x")), ErrMalformed},
		{"PEM without END", "-----BEGIN PUBLIC KEY-----\nMIIB\n", ErrMalformed},
		{"PEM garbage SPKI", pemBlock("PUBLIC KEY", []byte("garbage")), ErrMalformed},
		{"PEM garbage PKCS#1", pemBlock("RSA PUBLIC KEY", []byte("garbage")), ErrMalformed},
		{"too large", strings.Repeat(" ", MaxInputSize+1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicSet([]byte(tt.in), testNow)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %q is not %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not match ErrInvalid", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Msg == "" {
				t.Errorf("error %q is not an *Error with a message", err)
			}
			if tt.want == ErrPrivateKey {
				if err.Error() != privateKeyMessage || !strings.Contains(err.Error(), "exposed") {
					t.Errorf("private key refusal message = %q", err)
				}
			}
			msg := err.Error()
			if leaks(msg, d) || leaks(msg, b64(pub.N.Bytes())) || leaks(msg, rfc7638N) {
				t.Errorf("error message quotes the input: %q", msg)
			}
			// ParsePublic refuses the same way.
			if _, err := ParsePublicAt([]byte(tt.in), testNow); !errors.Is(err, tt.want) {
				t.Errorf("ParsePublicAt: %v", err)
			}
		})
	}
}

func (k *PrivateKey) mustPKCS8(tb testing.TB) []byte {
	der, err := k.PKCS8()
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestParsePublicOneKey(t *testing.T) {
	set := `{"keys":[` + jwkJSON(t, pubMembers(t, nil)) + `,` + rfc7638JWK + `]}`
	_, err := ParsePublicAt([]byte(set), testNow)
	if !errors.Is(err, ErrMultipleKeys) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("two keys: %v", err)
	}
	k, err := ParsePublic([]byte(rfc7638JWK))
	if err != nil {
		t.Fatal(err)
	}
	if k.KID != "2011-04-29" || k.Alg != RS256 || k.Bits() != 2048 {
		t.Errorf("got %+v", k)
	}
}

func TestParsePublicSetNamesFailingKey(t *testing.T) {
	set := `{"keys":[` + rfc7638JWK + `,{"kty":"EC"}]}`
	_, err := ParsePublicSet([]byte(set), testNow)
	if !errors.Is(err, ErrUnsupportedKeyType) || !strings.HasPrefix(err.Error(), "key 2 of 2: ") {
		t.Fatalf("error = %v", err)
	}
}

func TestParsePublicCertificateValidityEdges(t *testing.T) {
	k := key2048(t)
	cert := []byte(pemBlock("CERTIFICATE", selfSigned(t, k, "edge", validFrom, validUntil)))
	for _, tt := range []struct {
		now  time.Time
		want error
	}{
		{validFrom, nil},
		{validUntil, nil},
		{validFrom.Add(-time.Second), ErrCertificateNotYetValid},
		{validUntil.Add(time.Second), ErrCertificateExpired},
	} {
		_, err := ParsePublicAt(cert, tt.now)
		if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("at %s: %v, want %v", tt.now, err, tt.want)
		}
	}
}

func TestJWKWithCertificate(t *testing.T) {
	k := key2048(t)
	cert := selfSigned(t, k, "leaf", validFrom, validUntil)
	other := selfSigned(t, keyEC(t), "ca", validFrom, validUntil)
	p, err := ParsePublicAt([]byte(pemBlock("CERTIFICATE", cert)+pemBlock("CERTIFICATE", other)), testNow)
	if err != nil {
		t.Fatal(err)
	}
	p.KID = "leaf-kid"
	j, err := p.JWKWithCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if len(j.X5C) != 2 || j.X5C[0] != base64.StdEncoding.EncodeToString(cert) {
		t.Fatalf("x5c = %v", j.X5C)
	}
	// It reads back as the same key with the same certificate.
	b, _ := json.Marshal(j)
	back, err := ParsePublicAt(b, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if back.KID != "leaf-kid" || back.Certificate == nil || string(back.Certificate.DER) != string(cert) || len(back.Certificate.Chain) != 1 {
		t.Errorf("round trip = %+v", back)
	}
	if _, err := (&PublicKey{Key: &k.RSA().PublicKey}).JWKWithCertificate(); err == nil {
		t.Error("no certificate: want error")
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	k, err := ParsePublic([]byte(rfc7638JWK))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Thumbprint(); got != rfc7638Thumbprint {
		t.Errorf("thumbprint = %s, want %s", got, rfc7638Thumbprint)
	}
	j := JWK{Kty: "RSA", N: rfc7638N, E: "AQAB", Kid: "ignored", Alg: "RS512", Use: "sig"}
	if got, err := j.Thumbprint(); err != nil || got != rfc7638Thumbprint {
		t.Errorf("JWK.Thumbprint = %s, %v", got, err)
	}
	if _, err := (JWK{Kty: "EC"}).Thumbprint(); !errors.Is(err, ErrUnsupportedKeyType) {
		t.Errorf("EC thumbprint: %v", err)
	}
}

func TestThumbprintSameAcrossFormats(t *testing.T) {
	k := key2048(t)
	pub := &k.RSA().PublicKey
	inputs := []string{
		jwkJSON(t, pubMembers(t, nil)),
		pemBlock("PUBLIC KEY", spki(t, pub)),
		pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(pub)),
		pemBlock("CERTIFICATE", selfSigned(t, k, "x", validFrom, validUntil)),
	}
	for _, in := range inputs {
		p, err := ParsePublicAt([]byte(in), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if p.Thumbprint() != k.Thumbprint() {
			t.Errorf("%s: thumbprint differs", p.Format)
		}
	}
}

func TestJWKJSONShape(t *testing.T) {
	k := key2048(t)
	k2 := *k
	k2.KID, k2.Alg = "acme-tt02-20250601-abcdef", RS256
	b, err := json.Marshal(k2.PublicJWK())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"alg", "e", "kid", "kty", "n", "use"}
	if len(m) != len(want) {
		t.Errorf("members = %v", m)
	}
	for _, name := range want {
		if _, ok := m[name]; !ok {
			t.Errorf("member %q missing in %s", name, b)
		}
	}
	if s, _ := json.Marshal(JWKS{}); string(s) != `{"keys":[]}` {
		t.Errorf("empty set = %s", s)
	}
}

func TestParseAlg(t *testing.T) {
	for _, a := range Algs() {
		if got, err := ParseAlg(string(a)); err != nil || got != a {
			t.Errorf("ParseAlg(%s) = %v, %v", a, got, err)
		}
	}
	for _, s := range []string{"", "rs256", "PS256", "ES256", "HS256", "none"} {
		if _, err := ParseAlg(s); !errors.Is(err, ErrUnsupportedAlg) {
			t.Errorf("ParseAlg(%q) = %v", s, err)
		}
	}
	if RS384.Hash().Size() != 48 || RS512.Hash().Size() != 64 || RS256.Hash().Size() != 32 {
		t.Error("hash sizes")
	}
}

// Errors carry no key material even for a key that is only a little wrong.
func TestErrorFormatting(t *testing.T) {
	e := &Error{Kind: ErrMalformed, Msg: "bad", Cause: fmt.Errorf("offset 3")}
	if e.Error() != "bad: offset 3" || !errors.Is(e, ErrMalformed) || !errors.Is(e, ErrInvalid) {
		t.Errorf("Error = %q", e)
	}
	if errors.Is(ErrBusy, ErrInvalid) || errors.Is(ErrUnseal, ErrInvalid) {
		t.Error("operational errors must not match ErrInvalid")
	}
	_ = rsa.PublicKey{}
}
