package maskinporten

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// RSA generation is slow; one set of keys serves the whole test binary.
var (
	keysOnce sync.Once
	keyA     *rsa.PrivateKey // client key / certificate key
	keyB     *rsa.PrivateKey // Maskinporten's signing key
	certA    *x509.Certificate
)

func testKeys(t testing.TB) (client, issuer *rsa.PrivateKey, cert *x509.Certificate) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "ACME AS", SerialNumber: "123456789"},
			NotBefore:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter:     time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &keyA.PublicKey, keyA)
		if err != nil {
			panic(err)
		}
		if certA, err = x509.ParseCertificate(der); err != nil {
			panic(err)
		}
	})
	return keyA, keyB, certA
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeClock is a settable clock for expiry logic.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 9, 10, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeTokens is a TokenProvider handing out tok-1, tok-2, … and counting
// invalidations.
type fakeTokens struct {
	mu          sync.Mutex
	n           int
	cur         string
	invalidated int
}

func (f *fakeTokens) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == "" {
		f.n++
		f.cur = fmt.Sprintf("tok-%d", f.n)
	}
	return f.cur, nil
}

func (f *fakeTokens) Invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalidated++
	f.cur = ""
}

// newServer starts an httptest server for one test.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newTestClient builds a Client whose issuer and self-service API are srv.
func newTestClient(t *testing.T, srv *httptest.Server, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Issuer:         srv.URL + "/",
		SelfServiceURL: srv.URL,
		HTTPClient:     srv.Client(),
		Backoff:        time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
