package maskinporten_test

// The client against the simulators (internal/sim) over HTTP, for the refusals a real
// Maskinporten and self-service API give.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/sim"
)

const (
	simReadScope  = "altinn:serviceowner/instances.read"
	simWriteScope = "altinn:serviceowner/instances.write"
)

// simKeyPool is generated once per test binary: 8 keys for the simulator's fresh state
// (signing keys, CAs and admin keys of both environments) and the rest for clients.
var simKeyPool = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var pool []*rsa.PrivateKey
	for range 10 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		pool = append(pool, k)
	}
	return pool, nil
})

func simPool(t *testing.T) []*rsa.PrivateKey {
	t.Helper()
	pool, err := simKeyPool()
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// simClientKey is a key the simulator never uses.
func simClientKey(t *testing.T, i int) *keys.PrivateKey {
	t.Helper()
	k, err := keys.NewPrivateKey(simPool(t)[8+i], "", keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// simWorld is a fresh simulator served by an httptest server whose address is the
// simulator's public base URL, so issuers and audiences match.
type simWorld struct {
	sim  *sim.Sim
	http *http.Client
}

func newSimWorld(t *testing.T) *simWorld {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	pool := simPool(t)[:8]
	var mu sync.Mutex
	next := 0
	s, err := sim.Open(t.Context(), sim.Config{
		BaseURL: "http://" + srv.Listener.Addr().String(),
		DataDir: t.TempDir(),
		GenerateKey: func() (*rsa.PrivateKey, error) {
			mu.Lock()
			defer mu.Unlock()
			k := pool[next%len(pool)]
			next++
			return k, nil
		},
		AppInstances: 10,
	})
	if err != nil {
		srv.Listener.Close()
		t.Fatalf("open sim: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sim: %v", err)
		}
	})
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return &simWorld{sim: s, http: srv.Client()}
}

// now is the environment's clock, which ShiftClock moves.
func (w *simWorld) now(t *testing.T, env string) func() time.Time {
	return func() time.Time {
		n, err := w.sim.Now(env)
		if err != nil {
			t.Errorf("sim clock: %v", err)
			return time.Now()
		}
		return n
	}
}

// admin returns the environment's admin credentials with the given scopes, as the admin
// file describes them.
func (w *simWorld) admin(t *testing.T, env string, scopes ...string) (sim.AdminCredentials, *maskinporten.Credentials) {
	t.Helper()
	a, err := w.sim.AdminCredentials(env)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.ParsePrivate([]byte(a.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := []byte(a.CertificateChainPEM); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(scopes) == 0 {
		scopes = a.Scopes
	}
	return a, &maskinporten.Credentials{ClientID: a.ClientID, Signer: maskinporten.Signer{Key: key, Chain: chain}, Scopes: scopes}
}

// client is a portal client for env on the environment's clock, with the admin client.
func (w *simWorld) client(t *testing.T, env string, cfg maskinporten.Config) *maskinporten.Client {
	t.Helper()
	a, cred := w.admin(t, env)
	cfg.Issuer, cfg.SelfServiceURL = a.Issuer, a.SelfServiceURL
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = w.http
	}
	if cfg.Now == nil {
		cfg.Now = w.now(t, env)
	}
	if cfg.Admin == nil && cfg.AdminTokens == nil {
		cfg.Admin = cred
	}
	mp, err := maskinporten.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mp
}

// newMaskinportenClient registers a client with scopes and one key under kid.
func newMaskinportenClient(t *testing.T, mp *maskinporten.Client, key *keys.PrivateKey, kid string, scopes ...string) string {
	t.Helper()
	reg, err := mp.CreateClient(t.Context(), maskinporten.Registration{
		ClientName: "sim test " + kid, Description: "error paths",
		IntegrationType: maskinporten.IntegrationMaskinporten, ApplicationType: maskinporten.ApplicationWeb,
		TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT, GrantTypes: []string{maskinporten.GrantType},
		Scopes: scopes,
	})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	j := key.PublicJWK()
	if _, err := mp.ReplaceJWKS(t.Context(), reg.ClientID, []maskinporten.JWK{{Kty: j.Kty, Kid: kid, Alg: j.Alg, Use: j.Use, E: j.E, N: j.N}}); err != nil {
		t.Fatalf("post jwks: %v", err)
	}
	return reg.ClientID
}

// wantTokenError checks a token endpoint refusal.
func wantTokenError(t *testing.T, err error, status int, code, mpCode, desc string) *maskinporten.Error {
	t.Helper()
	var e *maskinporten.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a *maskinporten.Error", err)
	}
	if e.Status != status || e.Code != code || e.MPCode != mpCode {
		t.Errorf("got %d %q %q, want %d %q %q (%v)", e.Status, e.Code, e.MPCode, status, code, mpCode, e)
	}
	if !strings.Contains(e.Message(), desc) {
		t.Errorf("message %q lacks %q", e.Message(), desc)
	}
	if len(e.TraceID) != 32 {
		t.Errorf("trace id %q, want 32 hex digits", e.TraceID)
	}
	return e
}

func TestSimTokenErrors(t *testing.T) {
	w := newSimWorld(t)
	mp := w.client(t, "tt02", maskinporten.Config{})
	key, other := simClientKey(t, 0), simClientKey(t, 1)
	id := newMaskinportenClient(t, mp, key, "sim-err-1", simReadScope)
	prod := w.client(t, "prod", maskinporten.Config{})

	reused, err := maskinporten.SignGrant(mp.Grant(id, simReadScope), maskinporten.Signer{Key: key, KeyID: "sim-err-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mp.Token(t.Context(), reused); err != nil {
		t.Fatalf("first use of a grant: %v", err)
	}
	_, adminCred := w.admin(t, "tt02")

	tests := []struct {
		name      string
		grant     maskinporten.Grant
		signer    maskinporten.Signer
		assertion string // sent as is when set
		status    int
		code      string
		mpCode    string
		desc      string
	}{
		{name: "unknown kid", grant: mp.Grant(id, simReadScope), signer: maskinporten.Signer{Key: key, KeyID: "no-such-kid"},
			status: 400, code: "invalid_grant", desc: "Unknown key identifier (kid) for client"},
		{name: "unknown client", grant: mp.Grant("no-such-client", simReadScope), signer: maskinporten.Signer{Key: key, KeyID: "sim-err-1"},
			status: 400, code: "invalid_grant", mpCode: "MP-100", desc: "Client authentication failed"},
		{name: "signed with another key", grant: mp.Grant(id, simReadScope), signer: maskinporten.Signer{Key: other, KeyID: "sim-err-1"},
			status: 400, code: "invalid_grant", mpCode: "MP-124", desc: "Invalid JWT signature"},
		{name: "audience of another environment", grant: prod.Grant(id, simReadScope), signer: maskinporten.Signer{Key: key, KeyID: "sim-err-1"},
			status: 400, code: "invalid_grant", mpCode: "MP-110", desc: "Invalid JWT claim aud"},
		{name: "scope not on the client", grant: mp.Grant(id, simWriteScope), signer: maskinporten.Signer{Key: key, KeyID: "sim-err-1"},
			status: 400, code: "invalid_scope", mpCode: "MP-200", desc: simWriteScope},
		{name: "scope not granted to the organisation", grant: mp.Grant(adminCred.ClientID, "skatteetaten:inntekt"), signer: adminCred.Signer,
			status: 400, code: "invalid_scope", mpCode: "MP-200", desc: "skatteetaten:inntekt"},
		{name: "grant used before", assertion: reused,
			status: 400, code: "invalid_grant", mpCode: "MP-012", desc: "Grant is used before"},
		{name: "x5c for a client with registered keys", grant: mp.Grant(id, simReadScope), signer: adminCred.Signer,
			status: 400, code: "invalid_grant", desc: "kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertion := tt.assertion
			if assertion == "" {
				var err error
				if assertion, err = maskinporten.SignGrant(tt.grant, tt.signer); err != nil {
					t.Fatal(err)
				}
			}
			tr, err := mp.Token(t.Context(), assertion)
			if err == nil {
				t.Fatalf("token issued (scope %q), want a refusal", tr.Scope)
			}
			e := wantTokenError(t, err, tt.status, tt.code, tt.mpCode, tt.desc)
			if tt.mpCode != "" && !strings.HasPrefix(e.URI, strings.TrimSuffix(mp.Issuer(), "/")+"/errors/") {
				t.Errorf("error_uri %q is not under the issuer", e.URI)
			}
		})
	}
}

func TestSimExpiredKeyGivesMP121(t *testing.T) {
	w := newSimWorld(t)
	mp := w.client(t, "tt02", maskinporten.Config{})
	key := simClientKey(t, 0)
	id := newMaskinportenClient(t, mp, key, "sim-expiring-1", simReadScope)
	signer := maskinporten.Signer{Key: key, KeyID: "sim-expiring-1"}

	set, err := mp.GetJWKS(t.Context(), id)
	if err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v, %+v", err, set)
	}
	expires := set.Keys[0].Expires()
	for _, tt := range []struct {
		name   string
		shift  time.Duration // how far past the key's expiry the clock is moved
		expire bool
	}{
		{"before expiry", -time.Hour, false},
		{"after expiry", time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now, err := w.sim.Now("tt02")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.sim.ShiftClock("tt02", expires.Add(tt.shift).Sub(now)); err != nil {
				t.Fatal(err)
			}
			// The grant is dated on the shifted clock (the client's Now), so only the key's
			// expiry can refuse it.
			assertion, err := maskinporten.SignGrant(mp.Grant(id, simReadScope), signer)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := mp.Token(t.Context(), assertion)
			if !tt.expire {
				if err != nil {
					t.Fatalf("token before the key expired: %v", err)
				}
				at, err := mp.VerifyAccessToken(t.Context(), tr.AccessToken)
				if err != nil || at.ClientID != id {
					t.Fatalf("verify: %v, %+v", err, at)
				}
				return
			}
			e := wantTokenError(t, err, 400, "invalid_grant", "MP-121", "Expired key")
			if want := strings.TrimSuffix(mp.Issuer(), "/") + "/errors/MP-121"; e.URI != want {
				t.Errorf("error_uri %q, want %q", e.URI, want)
			}
		})
	}
}

// stubTokens hands out the tokens of a list in turn, then those of next, and counts
// invalidations.
type stubTokens struct {
	mu          sync.Mutex
	first       []string
	next        maskinporten.TokenProvider
	calls       int
	invalidated atomic.Int32
}

func (s *stubTokens) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.first) > 0 {
		t := s.first[0]
		s.first = s.first[1:]
		return t, nil
	}
	return s.next.Token(ctx)
}

func (s *stubTokens) Invalidate() { s.invalidated.Add(1) }

func TestSimSelfServiceRenewsTokenOnceOn401(t *testing.T) {
	w := newSimWorld(t)
	tt02 := w.client(t, "tt02", maskinporten.Config{})
	prod := w.client(t, "prod", maskinporten.Config{})
	prodToken, err := prod.AdminTokens().Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		first         []string
		wantErr       error
		wantCalls     int
		wantInvalidas int32
	}{
		{"valid token", nil, nil, 1, 0},
		{"token of another environment, renewed", []string{prodToken}, nil, 2, 1},
		{"not a token, renewed", []string{"not-a-token"}, nil, 2, 1},
		{"refused twice, not renewed again", []string{prodToken, "not-a-token"}, maskinporten.ErrUnauthorized, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &stubTokens{first: tt.first, next: tt02.AdminTokens()}
			mp := w.client(t, "tt02", maskinporten.Config{AdminTokens: stub})
			clients, err := mp.ListClients(t.Context(), false)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("list clients: %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && len(clients) == 0 {
				t.Errorf("no clients listed; the admin client should be there")
			}
			var apiErr *maskinporten.APIError
			if tt.wantErr != nil && (!errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized) {
				t.Errorf("err = %#v, want a 401 *APIError", err)
			}
			if stub.calls != tt.wantCalls || stub.invalidated.Load() != tt.wantInvalidas {
				t.Errorf("%d token calls and %d invalidations, want %d and %d", stub.calls, stub.invalidated.Load(), tt.wantCalls, tt.wantInvalidas)
			}
		})
	}
}

func TestSimSelfServiceErrors(t *testing.T) {
	w := newSimWorld(t)
	mp := w.client(t, "tt02", maskinporten.Config{})
	// An admin client configured to ask for dcr.read when it writes.
	ro := w.client(t, "tt02", maskinporten.Config{AdminScopes: maskinporten.AdminScopes{Write: []string{"idporten:dcr.read"}}})
	id := newMaskinportenClient(t, mp, simClientKey(t, 0), "sim-ss-1", simReadScope)
	pub := simClientKey(t, 1).PublicJWK()

	tests := []struct {
		name   string
		call   func(ctx context.Context) error
		status int
		is     error
		field  string // a field error expected, if any
	}{
		{"create without dcr.write", func(ctx context.Context) error {
			_, err := ro.CreateClient(ctx, maskinporten.Registration{ClientName: "x", Description: "x",
				IntegrationType: maskinporten.IntegrationMaskinporten, Scopes: []string{simReadScope}})
			return err
		}, 403, maskinporten.ErrForbidden, ""},
		{"unknown client", func(ctx context.Context) error {
			_, err := mp.GetClient(ctx, "00000000-0000-0000-0000-000000000000")
			return err
		}, 404, maskinporten.ErrNotFound, ""},
		{"kid with forbidden characters", func(ctx context.Context) error {
			_, err := mp.ReplaceJWKS(ctx, id, []maskinporten.JWK{{Kty: pub.Kty, Kid: "not a kid!", Alg: pub.Alg, Use: pub.Use, E: pub.E, N: pub.N}})
			return err
		}, 400, nil, "keys[0].kid"},
		{"empty key set", func(ctx context.Context) error {
			_, err := mp.ReplaceJWKS(ctx, id, nil)
			return err
		}, 400, nil, "keys"},
		{"negative access token lifetime", func(ctx context.Context) error {
			_, err := mp.UpdateClient(ctx, id, maskinporten.Registration{ClientName: "x", Description: "x",
				IntegrationType: maskinporten.IntegrationMaskinporten, Scopes: []string{simReadScope}, AccessTokenLifetime: -1})
			return err
		}, 400, nil, "access_token_lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			var e *maskinporten.APIError
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *maskinporten.APIError", err)
			}
			if e.Status != tt.status {
				t.Errorf("status %d, want %d (%v)", e.Status, tt.status, e)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) is false", err, tt.is)
			}
			if e.CorrelationID == "" || e.Body != "" {
				t.Errorf("not Digdir's error shape: correlation id %q, body %q", e.CorrelationID, e.Body)
			}
			if tt.field != "" && len(e.FieldErrors()[tt.field]) == 0 {
				t.Errorf("no field error for %s: %v", tt.field, e)
			}
		})
	}
	// Nothing of the refused changes stuck.
	set, err := mp.GetJWKS(t.Context(), id)
	if err != nil || len(set.Keys) != 1 || set.Keys[0].Kid != "sim-ss-1" {
		t.Fatalf("jwks after refused changes: %v, %+v", err, set)
	}
}

// recorder keeps the bodies of the requests that pass through it, by method.
type recorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	bodies map[string][]string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		if r.bodies == nil {
			r.bodies = map[string][]string{}
		}
		r.bodies[req.Method] = append(r.bodies[req.Method], string(b))
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// TestSimUpdateSendsScopesAndNoServerFields removes a client's last scope with
// GET-modify-PUT: the PUT carries "scopes": [] and none of created, last_updated and the
// relative jwks_uri the GET returned, and the simulator, which refuses either mistake, takes it.
func TestSimUpdateSendsScopesAndNoServerFields(t *testing.T) {
	w := newSimWorld(t)
	rec := &recorder{next: w.http.Transport}
	mp := w.client(t, "tt02", maskinporten.Config{HTTPClient: &http.Client{Transport: rec}})
	id := newMaskinportenClient(t, mp, simClientKey(t, 0), "sim-put-1", simReadScope)
	cur, err := mp.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if cur.JWKSURI == "" || cur.Created.IsZero() || cur.LastUpdated.IsZero() {
		t.Fatalf("GET lacks the server-set members the real API returns: %s", cur.Raw)
	}
	next := *cur
	next.Scopes = nil
	out, err := mp.UpdateClient(t.Context(), id, next)
	if err != nil {
		t.Fatalf("update removing the last scope: %v", err)
	}
	if out.Scopes == nil || len(out.Scopes) != 0 {
		t.Errorf("scopes after update = %#v, want []", out.Scopes)
	}
	puts := rec.bodies[http.MethodPut]
	if len(puts) != 1 {
		t.Fatalf("PUT bodies: %q", puts)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(puts[0]), &body); err != nil {
		t.Fatal(err)
	}
	if string(body["scopes"]) != "[]" {
		t.Errorf("PUT scopes = %s, want []", body["scopes"])
	}
	for _, m := range []string{"created", "last_updated", "jwks_uri", "client_secret"} {
		if _, ok := body[m]; ok {
			t.Errorf("PUT carries the server-set member %s: %s", m, puts[0])
		}
	}
}

// bearerScopes records, per "METHOD path", the scope claim of the bearer token each
// self-service call carried.
type bearerScopes struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen map[string][]string
}

func (b *bearerScopes) RoundTrip(req *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		var claims struct {
			Scope string `json:"scope"`
		}
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
				_ = json.Unmarshal(raw, &claims)
			}
		}
		path := req.URL.Path[strings.Index(req.URL.Path, "/api/v1"):]
		b.mu.Lock()
		if b.seen == nil {
			b.seen = map[string][]string{}
		}
		b.seen[req.Method+" "+path] = append(b.seen[req.Method+" "+path], claims.Scope)
		b.mu.Unlock()
	}
	return b.next.RoundTrip(req)
}

// TestSimAdminScopesPerCall: every self-service call's token asks for the scope its purpose
// needs and nothing else: dcr.read to read, dcr.write to change, scopes.write to list the
// organisation's scope access.
func TestSimAdminScopesPerCall(t *testing.T) {
	w := newSimWorld(t)
	rec := &bearerScopes{next: w.http.Transport}
	mp := w.client(t, "tt02", maskinporten.Config{HTTPClient: &http.Client{Transport: rec}})
	ctx := t.Context()
	id := newMaskinportenClient(t, mp, simClientKey(t, 1), "scopes-per-call", simReadScope)
	if _, err := mp.ListClients(ctx, true); err != nil {
		t.Fatal(err)
	}
	cur, err := mp.GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mp.UpdateClient(ctx, id, *cur); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.GetJWKS(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := mp.DeleteJWKS(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.ScopeAccessAll(ctx, maskinporten.ScopeFilter{}); err != nil {
		t.Fatal(err)
	}
	if err := mp.DeleteClient(ctx, id); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"POST /api/v1/clients":                   "idporten:dcr.write",
		"GET /api/v1/clients":                    "idporten:dcr.read",
		"GET /api/v1/clients/" + id:              "idporten:dcr.read",
		"PUT /api/v1/clients/" + id:              "idporten:dcr.write",
		"POST /api/v1/clients/" + id + "/jwks":   "idporten:dcr.write",
		"GET /api/v1/clients/" + id + "/jwks":    "idporten:dcr.read",
		"DELETE /api/v1/clients/" + id + "/jwks": "idporten:dcr.write",
		"DELETE /api/v1/clients/" + id:           "idporten:dcr.write",
		"GET /api/v1/scopes/access/all":          "idporten:scopes.write",
	}
	for call, scope := range want {
		got := rec.seen[call]
		if len(got) == 0 {
			t.Errorf("%s: not called", call)
			continue
		}
		for _, g := range got {
			if g != scope {
				t.Errorf("%s: token scope %q, want %q", call, g, scope)
			}
		}
	}
	// One grant per scope set, each cached.
	for _, p := range []maskinporten.Purpose{maskinporten.PurposeRead, maskinporten.PurposeWrite, maskinporten.PurposeScopeAccess} {
		if mp.AdminTokensFor(p) == nil {
			t.Errorf("no token source for %s", p)
		}
	}
	if mp.AdminTokensFor(maskinporten.PurposeRead) == mp.AdminTokensFor(maskinporten.PurposeWrite) {
		t.Error("reads and writes share one token source")
	}
}

// TestSimAdminClientWithoutScopeAccess is an admin client registered, as many are, with
// dcr.read and dcr.write only while its admin file also lists scopes.write: reads and writes
// work, and only the scope-access call is refused, by Maskinporten, for the missing scope.
func TestSimAdminClientWithoutScopeAccess(t *testing.T) {
	w := newSimWorld(t)
	ctx := t.Context()
	full := w.client(t, "tt02", maskinporten.Config{})
	reg, err := full.CreateClient(ctx, maskinporten.Registration{ClientName: "narrow admin", Description: "admin without scopes.write",
		IntegrationType: maskinporten.IntegrationMaskinporten, ApplicationType: maskinporten.ApplicationWeb,
		TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT, GrantTypes: []string{maskinporten.GrantType},
		Scopes: []string{"idporten:dcr.read", "idporten:dcr.write"}})
	if err != nil {
		t.Fatal(err)
	}
	_, cred := w.admin(t, "tt02", "idporten:dcr.read", "idporten:dcr.write", "idporten:scopes.write")
	cred.ClientID = reg.ClientID
	mp := w.client(t, "tt02", maskinporten.Config{Admin: cred})
	if _, err := mp.ListClients(ctx, false); err != nil {
		t.Fatalf("list: %v", err)
	}
	id := newMaskinportenClient(t, mp, simClientKey(t, 1), "narrow-1", simReadScope)
	if id == "" {
		t.Fatal("no client")
	}
	_, err = mp.ScopeAccessAll(ctx, maskinporten.ScopeFilter{})
	var me *maskinporten.Error
	if !errors.As(err, &me) || me.MPCode != "MP-200" || !maskinporten.Refused(err) {
		t.Fatalf("scope access: %v, want MP-200 from Maskinporten, a refusal", err)
	}
	access := mp.CheckAdminAccess(ctx)
	allowed := map[maskinporten.Purpose]bool{}
	for _, a := range access {
		allowed[a.Purpose] = a.Allowed
		if !a.Allowed && (a.Problem == "" || !slices.Equal(a.Missing, []string{"idporten:scopes.write"})) {
			t.Errorf("%s: problem %q, missing %v", a.Name, a.Problem, a.Missing)
		}
	}
	if !allowed[maskinporten.PurposeRead] || !allowed[maskinporten.PurposeWrite] || allowed[maskinporten.PurposeScopeAccess] {
		t.Errorf("allowed %v", allowed)
	}
}

// TestSimCheckIssuer: the configured issuer must be the one the metadata publishes, trailing
// slash included, because grants carry it as aud and Maskinporten refuses anything else.
func TestSimCheckIssuer(t *testing.T) {
	w := newSimWorld(t)
	a, cred := w.admin(t, "tt02")
	exact := a.Issuer
	tests := []struct {
		name       string
		configured string
		mismatch   bool
		slashHint  bool
	}{
		{"exact", exact, false, false},
		{"without the trailing slash", strings.TrimSuffix(exact, "/"), true, true},
		{"upper-case scheme", "HTTP" + strings.TrimPrefix(exact, "http"), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp, err := maskinporten.New(maskinporten.Config{Issuer: tt.configured, HTTPClient: w.http, Now: w.now(t, "tt02")})
			if err != nil {
				t.Fatal(err)
			}
			err = mp.CheckIssuer(t.Context())
			var me *maskinporten.IssuerMismatchError
			if got := errors.As(err, &me); got != tt.mismatch {
				t.Fatalf("err = %v, want a mismatch: %v", err, tt.mismatch)
			}
			if !tt.mismatch {
				return
			}
			msg := err.Error()
			if me.Configured != tt.configured || me.Published != exact || !strings.Contains(msg, strconv.Quote(tt.configured)) ||
				!strings.Contains(msg, strconv.Quote(exact)) || strings.Contains(msg, "trailing slash") != tt.slashHint {
				t.Errorf("message %q", msg)
			}
			if !errors.Is(err, maskinporten.ErrMetadata) {
				t.Error("not ErrMetadata")
			}
			// What happens when such a configuration goes unchecked: every grant is refused.
			ts, err := mp.NewTokenSource(*cred)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.Token(t.Context())
			var te *maskinporten.Error
			if tt.slashHint && (!errors.As(err, &te) || te.MPCode != "MP-110") {
				t.Errorf("grant with aud %q: %v, want MP-110", tt.configured, err)
			}
		})
	}
	// An unreachable metadata document is not a mismatch.
	mp, err := maskinporten.New(maskinporten.Config{Issuer: "http://127.0.0.1:1/maskinporten/", HTTPClient: w.http, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	err = mp.CheckIssuer(t.Context())
	var me *maskinporten.IssuerMismatchError
	if err == nil || errors.As(err, &me) || !strings.Contains(err.Error(), "http://127.0.0.1:1/maskinporten/.well-known/oauth-authorization-server") {
		t.Errorf("unreachable: %v", err)
	}
}
