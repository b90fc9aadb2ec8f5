package keys

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// checkPublic holds for every input: refusals are typed *Errors, private
// material gets the fixed message, and accepted keys are sound and survive a
// JWK round trip.
func checkPublic(t *testing.T, data []byte) {
	keys, err := ParsePublicSet(data, testNow)
	if err != nil {
		var e *Error
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) {
			t.Fatalf("untyped error: %v", err)
		}
		if errors.Is(err, ErrPrivateKey) && err.Error() != privateKeyMessage {
			t.Fatalf("private refusal with a variable message: %q", err)
		}
		return
	}
	if len(keys) == 0 {
		t.Fatal("no keys and no error")
	}
	for _, k := range keys {
		if k.Bits() < MinBits || k.Bits() > maxBits || k.Key.E < 3 {
			t.Fatalf("accepted a key of %d bits, e=%d", k.Bits(), k.Key.E)
		}
		if k.KID != "" && !ValidKID(k.KID) {
			t.Fatalf("accepted kid %q", k.KID)
		}
		if k.Alg != "" {
			if _, err := ParseAlg(string(k.Alg)); err != nil {
				t.Fatalf("accepted alg %q", k.Alg)
			}
		}
		b, err := json.Marshal(k.JWK())
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePublicAt(b, testNow)
		if err != nil {
			t.Fatalf("own JWK does not parse: %v", err)
		}
		if back.Thumbprint() != k.Thumbprint() || back.KID != k.KID {
			t.Fatal("JWK round trip changed the key")
		}
	}
}

func FuzzParseJWK(f *testing.F) {
	k := key2048(f)
	priv, _ := k.PrivateJWK()
	pub, _ := json.Marshal(k.PublicJWK())
	for _, s := range []string{
		rfc7638JWK, string(pub), string(priv),
		`{"kty":"RSA","n":"AQAB","e":"AQAB"}`,
		`{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}`,
		`{"kty":"oct","k":"AQAB"}`,
		`{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","alg":"PS256","use":"enc","kid":"a b"}`,
		`{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","x5c":["AAAA"]}`,
		`{}`, `null`, `{"kty":null}`, `{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAAAAAAAAAB"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkPublic)
}

func FuzzParseJWKS(f *testing.F) {
	k := key2048(f)
	pub, _ := json.Marshal(k.PublicJWK())
	for _, s := range []string{
		`{"keys":[` + rfc7638JWK + `]}`,
		`{"keys":[` + rfc7638JWK + `,` + string(pub) + `]}`,
		`[` + rfc7638JWK + `]`,
		`{"keys":[]}`, `{"keys":null}`, `{"keys":[null]}`, `{"keys":{}}`, `[]`, `[[]]`,
		`{"keys":[` + rfc7638JWK + `,{"kty":"RSA","d":"AQAB"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkPublic)
}

func FuzzParsePEM(f *testing.F) {
	k := key2048(f)
	pub := &k.RSA().PublicKey
	privPEM, _ := k.PKCS8PEM()
	for _, s := range []string{
		pemBlock("PUBLIC KEY", spki(f, pub)),
		pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(pub)),
		pemBlock("CERTIFICATE", selfSigned(f, k, "seed", validFrom, validUntil)),
		pemBlock("PUBLIC KEY", spki(f, &keyEC(f).PublicKey)),
		string(privPEM),
		"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
		"-----BEGIN CERTIFICATE-----\nAAAA\n",
		pemBlock("X", nil),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkPublic)
}

func FuzzParseDER(f *testing.F) {
	k := key2048(f)
	pub := &k.RSA().PublicKey
	f.Add(spki(f, pub))
	f.Add(x509.MarshalPKCS1PublicKey(pub))
	f.Add(spki(f, &keyEC(f).PublicKey))
	f.Add(k.mustPKCS8(f))
	f.Add(x509.MarshalPKCS1PrivateKey(key1024(f)))
	f.Add([]byte("\x30\x80\x02\x01\x03\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(spki(f, pub))))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(checkPublic)
}

func FuzzParseCertificate(f *testing.F) {
	k := key2048(f)
	good := selfSigned(f, k, "seed", validFrom, validUntil)
	f.Add(good)
	f.Add(selfSigned(f, k, "expired", validFrom.AddDate(-2, 0, 0), validFrom.AddDate(-1, 0, 0)))
	f.Add(selfSigned(f, keyEC(f), "ec", validFrom, validUntil))
	f.Add(selfSigned(f, key1024(f), "small", validFrom, validUntil))
	f.Add([]byte(pemBlock("CERTIFICATE", good) + pemBlock("CERTIFICATE", good)))
	f.Add([]byte(`{"kty":"RSA","n":"` + k.PublicJWK().N + `","e":"AQAB","x5c":["` + base64.StdEncoding.EncodeToString(good) + `"]}`))
	f.Fuzz(checkPublic)
}

// leaksBase64 reports whether msg holds a 16-character run of data made of
// base64 characters only: what key material looks like, unlike the English
// of fixed messages.
func leaksBase64(msg, data string) bool {
	const w = 16
	run := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '+' || c == '/' {
			run++
		} else {
			run = 0
		}
		if run >= w && strings.Contains(msg, data[i+1-w:i+1]) {
			return true
		}
	}
	return false
}

// FuzzParsePrivate: refusals are typed and never quote the input's base64;
// accepted keys are sound and export and re-import unchanged.
func FuzzParsePrivate(f *testing.F) {
	k := key2048(f)
	privPEM, _ := k.PKCS8PEM()
	privJWK, _ := k.PrivateJWK()
	f.Add(privPEM)
	f.Add(privJWK)
	f.Add(k.mustPKCS8(f))
	f.Add([]byte(pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.RSA()))))
	f.Add([]byte(`{"keys":[` + string(privJWK) + `]}`))
	f.Add([]byte(pemBlock("PRIVATE KEY", pkcs8(f, keyEC(f)))))
	f.Add([]byte(pemBlock("ENCRYPTED PRIVATE KEY", []byte("x"))))
	f.Add([]byte(rfc7638JWK))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParsePrivate(data)
		if err != nil {
			var e *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) {
				t.Fatalf("untyped error: %v", err)
			}
			if leaksBase64(err.Error(), string(data)) && !errors.Is(err, ErrInvalidKID) && !errors.Is(err, ErrUnsupportedAlg) {
				t.Fatalf("error quotes the input: %q", err)
			}
			return
		}
		if got.Bits() < MinBits {
			t.Fatalf("accepted %d bits", got.Bits())
		}
		der, err := got.PKCS8()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePrivate(der)
		if err != nil || !back.RSA().Equal(got.RSA()) {
			t.Fatalf("PKCS#8 round trip: %v", err)
		}
		j, err := got.PrivateJWK()
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParsePrivate(j); err != nil || !back.RSA().Equal(got.RSA()) || back.KID != got.KID {
			t.Fatalf("JWK round trip: %v", err)
		}
	})
}
