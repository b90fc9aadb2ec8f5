package maskinporten

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tokenServer answers token requests with tok-1, tok-2, … and checks the
// admin grant.
func tokenServer(t *testing.T, expiresIn int, hits *atomic.Int32, release <-chan struct{}) *Client {
	t.Helper()
	clock := newFakeClock()
	var c *Client
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if release != nil {
			<-release
		}
		n := hits.Add(1)
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		d, err := Decode(r.PostForm.Get("assertion"))
		if err != nil {
			t.Errorf("grant: %v", err)
			return
		}
		if _, _, ok := d.X5C(); !ok || d.Kid() != "" {
			t.Errorf("admin grant header %s", d.RawHeader)
		}
		if iss, _ := d.ClaimString("iss"); iss != "admin-client" {
			t.Errorf("iss %q", iss)
		}
		if aud := d.Audience(); len(aud) != 1 || aud[0] != c.Issuer() {
			t.Errorf("aud %v", aud)
		}
		if iat, _ := d.ClaimTime("iat"); !iat.Equal(clock.Now()) {
			t.Errorf("iat %v, clock %v", iat, clock.Now())
		}
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d,"scope":"idporten:dcr.read idporten:dcr.write"}`, n, expiresIn)
	})
	key, _, cert := testKeys(t)
	c = newTestClient(t, srv, func(cfg *Config) {
		cfg.Now = clock.Now
		cfg.Admin = &Credentials{ClientID: "admin-client", Signer: Signer{Key: key, Chain: []*x509.Certificate{cert}},
			Scopes: []string{"idporten:dcr.read", "idporten:dcr.write"}}
	})
	testClocks.Store(c, clock)
	return c
}

var testClocks sync.Map

func clockOf(c *Client) *fakeClock {
	v, _ := testClocks.Load(c)
	return v.(*fakeClock)
}

func TestTokenSourceCachesUntilShortlyBeforeExpiry(t *testing.T) {
	var hits atomic.Int32
	c := tokenServer(t, 119, &hits, nil)
	ts := c.AdminTokens()
	clock := clockOf(c)
	steps := []struct {
		advance time.Duration
		want    string
	}{
		{0, "tok-1"},
		{60 * time.Second, "tok-1"},
		{28 * time.Second, "tok-1"}, // 88 s: still before 119 - 30
		{2 * time.Second, "tok-2"},  // 90 s: within the margin, renewed
		{0, "tok-2"},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		got, err := ts.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got != s.want {
			t.Errorf("step %d: got %s, want %s", i, got, s.want)
		}
	}
	ts.Invalidate()
	if got, _ := ts.Token(t.Context()); got != "tok-3" {
		t.Errorf("after Invalidate got %s", got)
	}
	if hits.Load() != 3 {
		t.Errorf("%d token requests", hits.Load())
	}
}

func TestTokenSourceSharesOneRequest(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	c := tokenServer(t, 3600, &hits, release)
	ts := c.AdminTokens()
	const n = 16
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = ts.Token(t.Context())
		}()
	}
	close(release)
	wg.Wait()
	for i, r := range results {
		if r != "tok-1" {
			t.Errorf("caller %d got %q", i, r)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("%d token requests for %d callers", hits.Load(), n)
	}
}

func TestTokenSourceWaiterCancelled(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	c := tokenServer(t, 3600, &hits, release)
	ts := c.AdminTokens()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ts.Token(ctx); err == nil {
		t.Fatal("cancelled caller got a token")
	}
	close(release)
	// The shared request went on without the cancelled caller.
	if got, err := ts.Token(t.Context()); err != nil || got != "tok-1" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestTokenSourceError(t *testing.T) {
	body := fixture(t, "token_error_mp121.json")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		w.Write(body)
	})
	key, _, cert := testKeys(t)
	c := newTestClient(t, srv, func(cfg *Config) {
		cfg.Admin = &Credentials{ClientID: "admin", Signer: Signer{Key: key, Chain: []*x509.Certificate{cert}}, Scopes: []string{"idporten:dcr.read"}}
	})
	_, err := c.AdminTokens().Token(t.Context())
	var e *Error
	if !errors.As(err, &e) || e.MPCode != "MP-121" {
		t.Fatalf("err = %v", err)
	}
}

func TestNewTokenSourceChecksCredentials(t *testing.T) {
	key, _, _ := testKeys(t)
	_, err := New(Config{Issuer: "https://test.maskinporten.no/", Admin: &Credentials{ClientID: "a", Signer: Signer{Key: key}, Scopes: []string{"s"}}})
	if !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("no kid or x5c: err = %v", err)
	}
	c, err := New(Config{Issuer: "https://test.maskinporten.no/"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.NewTokenSource(Credentials{ClientID: "a", Signer: Signer{Key: key, KeyID: "k"}})
	if !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("no scopes: err = %v", err)
	}
}
