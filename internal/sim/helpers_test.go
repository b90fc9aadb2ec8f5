package sim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"portal/internal/sim"
)

const baseURL = "http://127.0.0.1:8081"

var (
	keysOnce sync.Once
	keyPool  []*rsa.PrivateKey
	weakKey  *rsa.PrivateKey
)

// testKeys generates the RSA keys of the whole test binary once; key generation dominates
// the cost of opening a simulator otherwise.
func testKeys(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		for range 14 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keyPool = append(keyPool, k)
		}
		k, err := rsa.GenerateKey(rand.Reader, 1024) // deliberately weak, for the rejection test
		if err != nil {
			panic(err)
		}
		weakKey = k
	})
	return keyPool
}

// simKeys hands the simulator the first 8 pool keys (4 per environment); tests sign with the
// others.
func simKeys(t testing.TB) func() (*rsa.PrivateKey, error) {
	keys := testKeys(t)[:8]
	var mu sync.Mutex
	i := 0
	return func() (*rsa.PrivateKey, error) {
		mu.Lock()
		defer mu.Unlock()
		k := keys[i%len(keys)]
		i++
		return k, nil
	}
}

// clientKey returns a key for clients, never one the simulator uses.
func clientKey(t testing.TB, i int) *rsa.PrivateKey {
	return testKeys(t)[8+i]
}

type harness struct {
	t   testing.TB
	sim *sim.Sim
	srv *httptest.Server
	cfg sim.Config
}

func newHarness(t testing.TB, mutate ...func(*sim.Config)) *harness {
	t.Helper()
	cfg := sim.Config{BaseURL: baseURL, DataDir: t.TempDir(), GenerateKey: simKeys(t), AppInstances: 150}
	for _, m := range mutate {
		m(&cfg)
	}
	return openHarness(t, cfg)
}

func openHarness(t testing.TB, cfg sim.Config) *harness {
	t.Helper()
	s, err := sim.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open sim: %v", err)
	}
	// Registered first so it runs last, after the server stopped.
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sim: %v", err)
		}
	})
	srv := newServer(t, s)
	return &harness{t: t, sim: s, srv: srv, cfg: cfg}
}

func newServer(t testing.TB, s *sim.Sim) *httptest.Server {
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func issuer(env string) string { return baseURL + "/sim/" + env + "/maskinporten/" }

// grant is what a test puts in a JWT grant; zero fields get sensible values.
type grant struct {
	alg     jose.SignatureAlgorithm
	kid     string
	x5c     []*x509.Certificate
	key     *rsa.PrivateKey
	claims  map[string]any
	headers map[string]any // extra or raw header members, signed by hand
}

func baseClaims(iss, scope string, now time.Time) map[string]any {
	return map[string]any{
		"aud": issuer("tt02"), "iss": iss, "scope": scope, "jti": uuid.NewString(),
		"iat": now.Unix(), "exp": now.Unix() + 120,
	}
}

func x5cStrings(certs []*x509.Certificate) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

// sign produces the compact JWS. Grants with raw header members are signed by hand so tests
// can send what go-jose would refuse to build.
func (g grant) sign(t testing.TB) string {
	t.Helper()
	if g.alg == "" {
		g.alg = jose.RS256
	}
	payload, err := json.Marshal(g.claims)
	if err != nil {
		t.Fatal(err)
	}
	if g.headers != nil {
		h := map[string]any{"alg": string(g.alg)}
		if g.kid != "" {
			h["kid"] = g.kid
		}
		if g.x5c != nil {
			h["x5c"] = x5cStrings(g.x5c)
		}
		for k, v := range g.headers {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		hb, _ := json.Marshal(h)
		in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(payload)
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(nil, g.key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	opts := &jose.SignerOptions{}
	key := jose.JSONWebKey{Key: g.key, KeyID: g.kid}
	if g.x5c != nil {
		opts.WithHeader("x5c", x5cStrings(g.x5c))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: g.alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type tokenResult struct {
	status int
	body   map[string]any
	header http.Header
}

func (h *harness) postToken(env string, form url.Values) tokenResult {
	h.t.Helper()
	resp, err := h.srv.Client().PostForm(h.srv.URL+"/sim/"+env+"/maskinporten/token", form)
	if err != nil {
		h.t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		h.t.Fatalf("token response %d is not JSON: %q", resp.StatusCode, b)
	}
	return tokenResult{status: resp.StatusCode, body: body, header: resp.Header}
}

func (h *harness) token(env, assertion string) tokenResult {
	return h.postToken(env, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}})
}

// adminToken gets a self-service token with the admin file's business certificate (x5c).
func (h *harness) adminToken(env string) string {
	h.t.Helper()
	creds, err := h.sim.AdminCredentials(env)
	if err != nil {
		h.t.Fatal(err)
	}
	key, chain := parseCreds(h.t, creds)
	c := baseClaims(creds.ClientID, strings.Join(creds.Scopes, " "), h.now(env))
	c["aud"] = creds.Issuer
	res := h.token(env, grant{key: key, x5c: chain, claims: c}.sign(h.t))
	if res.status != 200 {
		h.t.Fatalf("admin token: %d %v", res.status, res.body)
	}
	return res.body["access_token"].(string)
}

func parseCreds(t testing.TB, c sim.AdminCredentials) (*rsa.PrivateKey, []*x509.Certificate) {
	t.Helper()
	b, _ := pem.Decode([]byte(c.PrivateKeyPEM))
	if b == nil {
		t.Fatal("no key PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	rest := []byte(c.CertificateChainPEM)
	for {
		var cb *pem.Block
		cb, rest = pem.Decode(rest)
		if cb == nil {
			break
		}
		cert, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, cert)
	}
	return k.(*rsa.PrivateKey), chain
}

func (h *harness) now(env string) time.Time {
	n, err := h.sim.Now(env)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// api calls the self-service API and decodes the JSON answer (if any) into out.
func (h *harness) api(env, method, path, tok string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.srv.URL+"/sim/"+env+"/selfservice/api/v1"+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Server-Timing") == "" {
		h.t.Errorf("%s %s: no Server-Timing header", method, path)
	}
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func publicJWK(k *rsa.PrivateKey, kid string) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString([]byte{1, 0, 1}),
	}
}

// newClient creates a Maskinporten client of the service owner with one key and returns its id.
func (h *harness) newClient(env, admin string, scopes []string, key *rsa.PrivateKey, kid string) string {
	h.t.Helper()
	var c map[string]any
	st := h.api(env, "POST", "/clients", admin, map[string]any{
		"integration_type": "maskinporten", "client_name": "test client", "description": "for tests",
		"scopes": scopes, "token_endpoint_auth_method": "private_key_jwt",
		"grant_types": []string{"urn:ietf:params:oauth:grant-type:jwt-bearer"},
	}, &c)
	if st != http.StatusCreated {
		h.t.Fatalf("create client: %d %v", st, c)
	}
	id := c["client_id"].(string)
	if key != nil {
		var out map[string]any
		if st := h.api(env, "POST", "/clients/"+id+"/jwks", admin, map[string]any{"keys": []any{publicJWK(key, kid)}}, &out); st != 200 {
			h.t.Fatalf("post jwks: %d %v", st, out)
		}
	}
	return id
}
