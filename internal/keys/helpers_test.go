package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// Keys are generated once per test binary: RSA generation is slow, and the
// 2048-bit key comes from a real Generator so that path is exercised too.
var (
	fixturesOnce sync.Once
	fixtures     struct {
		rsa2048 *PrivateKey
		rsa1024 *rsa.PrivateKey
		ec      *ecdsa.PrivateKey
		ed      ed25519.PrivateKey
		err     error
	}
)

func loadFixtures(tb testing.TB) {
	tb.Helper()
	fixturesOnce.Do(func() {
		g := NewGenerator(GeneratorConfig{Workers: 1})
		defer g.Close()
		f := &fixtures
		if f.rsa2048, f.err = g.Generate(tb.Context(), 2048, RS256); f.err != nil {
			return
		}
		// 1024 bits is the smallest Go will generate; it stands for "too small".
		if f.rsa1024, f.err = rsa.GenerateKey(rand.Reader, 1024); f.err != nil {
			return
		}
		if f.ec, f.err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); f.err != nil {
			return
		}
		_, f.ed, f.err = ed25519.GenerateKey(rand.Reader)
	})
	if fixtures.err != nil {
		tb.Fatalf("generate fixtures: %v", fixtures.err)
	}
}

func key2048(tb testing.TB) *PrivateKey {
	loadFixtures(tb)
	return fixtures.rsa2048
}

func key1024(tb testing.TB) *rsa.PrivateKey {
	loadFixtures(tb)
	return fixtures.rsa1024
}

func keyEC(tb testing.TB) *ecdsa.PrivateKey {
	loadFixtures(tb)
	return fixtures.ec
}

func keyEd(tb testing.TB) ed25519.PrivateKey {
	loadFixtures(tb)
	return fixtures.ed
}

// testNow is the clock for certificate checks.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	validFrom  = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	validUntil = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// selfSigned makes a certificate for signer's public key.
func selfSigned(tb testing.TB, signer crypto.Signer, cn string, notBefore, notAfter time.Time) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1234abcd),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Testetaten"}, SerialNumber: "991825827"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	return der
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func spki(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatalf("marshal public key: %v", err)
	}
	return der
}

func pkcs8(tb testing.TB, key any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("marshal private key: %v", err)
	}
	return der
}

// leaks reports whether msg contains any 12-character run of secret.
func leaks(msg, secret string) bool {
	const w = 12
	for i := 0; i+w <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+w]) {
			return true
		}
	}
	return false
}

// rfc7638 is the example key of RFC 7638 §3.1 and its thumbprint.
const (
	rfc7638N          = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rfc7638JWK        = `{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)
