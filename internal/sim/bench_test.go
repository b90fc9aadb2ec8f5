package sim_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkTokenEndpoint measures the token endpoint in process; compare with
// BenchmarkRSABaseline (one verification and one RS256 signature). Grants are signed before
// the timer starts.
func BenchmarkTokenEndpoint(b *testing.B) {
	f := newBenchFixture(b)
	grants := make([]string, b.N)
	for i := range grants {
		grants[i] = grant{key: clientKey(b, 0), kid: "bench-1", claims: baseClaims(f.id, readScope, f.h.now("tt02"))}.sign(b)
	}
	handler := f.h.sim.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {grants[i]}}
		req := httptest.NewRequest("POST", "/sim/tt02/maskinporten/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkRSABaseline(b *testing.B) {
	key := clientKey(b, 0)
	sum := sha256.Sum256([]byte("grant"))
	sig, _ := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
}

type benchFixture struct {
	h  *harness
	id string
}

func newBenchFixture(b *testing.B) *benchFixture {
	h := newHarness(b)
	id := h.newClient("tt02", h.adminToken("tt02"), []string{readScope}, clientKey(b, 0), "bench-1")
	return &benchFixture{h: h, id: id}
}
