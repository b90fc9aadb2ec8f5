package maskinporten

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestMetadata(t *testing.T) {
	real := string(fixture(t, "metadata.json"))
	tests := []struct {
		name    string
		body    func(base string) string
		wantErr error
	}{
		{"consistent", func(base string) string { return strings.ReplaceAll(real, "https://test.maskinporten.no", base) }, nil},
		{"other issuer", func(base string) string { return real }, ErrMetadata},
		{"issuer without slash", func(base string) string {
			return strings.Replace(strings.ReplaceAll(real, "https://test.maskinporten.no", base), base+`/",`, base+`",`, 1)
		}, ErrMetadata},
		{"token endpoint elsewhere", func(base string) string {
			s := strings.ReplaceAll(real, "https://test.maskinporten.no", base)
			return strings.Replace(s, base+"/token", "https://evil.example/token", 1)
		}, ErrMetadata},
		{"jwks elsewhere", func(base string) string {
			s := strings.ReplaceAll(real, "https://test.maskinporten.no", base)
			return strings.Replace(s, base+"/jwk", "https://evil.example/jwk", 1)
		}, ErrMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/.well-known/oauth-authorization-server" {
					t.Errorf("got %s %s", r.Method, r.URL.Path)
				}
				w.Write([]byte(tt.body(base)))
			})
			base = srv.URL
			m, err := newTestClient(t, srv, nil).Metadata(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (m.TokenEndpoint != base+"/token" || len(m.TokenEndpointAuthSigningAlgsSupported) != 3) {
				t.Errorf("metadata %+v", m)
			}
		})
	}
}

// mpServer serves a JWKS with the given kids (all keyB) and counts fetches.
type mpServer struct {
	mu      sync.Mutex
	kids    []string
	fetches atomic.Int32
}

func (s *mpServer) handler(t *testing.T) http.HandlerFunc {
	_, issuerKey, _ := testKeys(t)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwk" {
			t.Errorf("unexpected %s", r.URL.Path)
			return
		}
		s.fetches.Add(1)
		s.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range s.kids {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &issuerKey.PublicKey, KeyID: k, Algorithm: "RS256", Use: "sig"})
		}
		s.mu.Unlock()
		b, _ := json.Marshal(set)
		// An unusable key must not spoil the set.
		b = []byte(strings.Replace(string(b), `"keys":[`, `"keys":[{"kty":"OKP","crv":"X9999","x":"AA","kid":"odd"},`, 1))
		w.Write(b)
	}
}

func TestVerifyAccessToken(t *testing.T) {
	clientKey, issuerKey, _ := testKeys(t)
	mp := &mpServer{kids: []string{"mp-1"}}
	srv := newServer(t, mp.handler(t))
	clock := newFakeClock()
	c := newTestClient(t, srv, func(cfg *Config) { cfg.Now = clock.Now })
	now := clock.Now().Unix()
	claims := func(mod func(map[string]any)) map[string]any {
		m := map[string]any{
			"scope": "altinn:serviceowner/instances.read", "iss": c.Issuer(), "client_amr": "private_key_jwt",
			"token_type": "Bearer", "exp": now + 120, "iat": now, "client_id": "c-1", "jti": "x",
			"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:314240979"},
		}
		if mod != nil {
			mod(m)
		}
		return m
	}
	sign := func(s Signer, c map[string]any) string {
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	mpSigner := Signer{Key: issuerKey, KeyID: "mp-1"}

	at, err := c.VerifyAccessToken(t.Context(), sign(mpSigner, claims(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if at.ClientID != "c-1" || at.ConsumerOrg != "314240979" || len(at.Scopes) != 1 || at.Expires.Unix() != now+120 {
		t.Errorf("token %+v", at)
	}

	tests := []struct {
		name  string
		token string
	}{
		{"expired", sign(mpSigner, claims(func(m map[string]any) { m["exp"] = now - 11 }))},
		{"no exp", sign(mpSigner, claims(func(m map[string]any) { delete(m, "exp") }))},
		{"not yet valid", sign(mpSigner, claims(func(m map[string]any) { m["nbf"] = now + 60 }))},
		{"other issuer", sign(mpSigner, claims(func(m map[string]any) { m["iss"] = "https://maskinporten.no/" }))},
		{"signed by another key", sign(Signer{Key: clientKey, KeyID: "mp-1"}, claims(nil))},
		{"unknown kid", sign(Signer{Key: issuerKey, KeyID: "mp-9"}, claims(nil))},
		{"no kid", seg(`{"alg":"RS256"}`) + "." + seg(`{}`) + "." + seg("x")},
		{"alg none", seg(`{"alg":"none","kid":"mp-1"}`) + "." + seg(`{"iss":"x"}`) + "."},
		{"HS256", seg(`{"alg":"HS256","kid":"mp-1"}`) + "." + seg(`{"iss":"x"}`) + "." + seg("mac")},
		{"garbage", "not a token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.VerifyAccessToken(t.Context(), tt.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
	// Unknown kids within a minute of the last fetch do not refetch.
	if n := mp.fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches", n)
	}
}

func TestVerifyAccessTokenKeyRotation(t *testing.T) {
	_, issuerKey, _ := testKeys(t)
	mp := &mpServer{kids: []string{"old"}}
	srv := newServer(t, mp.handler(t))
	clock := newFakeClock()
	c := newTestClient(t, srv, func(cfg *Config) { cfg.Now = clock.Now })
	claims := map[string]any{"iss": c.Issuer(), "exp": clock.Now().Add(time.Hour).Unix()}
	old, _ := Signer{Key: issuerKey, KeyID: "old"}.Sign(claims)
	if _, err := c.VerifyAccessToken(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	mp.mu.Lock()
	mp.kids = []string{"old", "new"}
	mp.mu.Unlock()
	clock.Advance(2 * time.Minute)
	rotated, _ := Signer{Key: issuerKey, KeyID: "new"}.Sign(claims)
	if _, err := c.VerifyAccessToken(t.Context(), rotated); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	clock.Advance(25 * time.Hour)
	if _, err := c.JWKS(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := mp.fetches.Load(); n != 3 {
		t.Errorf("%d JWKS fetches, want 3 (initial, rotation, expiry)", n)
	}
}
