package platform

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	_ "modernc.org/sqlite"
)

const (
	testBaseURL = "http://127.0.0.1:8081/sim/tt02/platform"
	testMPIss   = "http://127.0.0.1:8081/sim/tt02/maskinporten/"
	mpKid       = "mp-sim-key-1"
	ttdOrgNo    = "405003309"
	digdirOrgNo = "991825827"
	skdOrgNo    = "974761076"
	plainOrgNo  = "310000001" // not a service owner
)

var (
	keysOnce                     sync.Once
	mpKey, altinnKey, strangeKey *rsa.PrivateKey
)

// testKeys generates the RSA keys once per test binary; generation dominates otherwise.
func testKeys(t testing.TB) (mp, altinn, strange *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&mpKey, &altinnKey, &strangeKey} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
	return mpKey, altinnKey, strangeKey
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	t     testing.TB
	p     *Platform
	db    *sql.DB
	srv   *httptest.Server
	clock *clock
}

func openTestDB(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sim.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testConfig(t testing.TB, db *sql.DB, c *clock, env string) Config {
	mp, altinn, _ := testKeys(t)
	return Config{
		Env:                env,
		BaseURL:            strings.Replace(testBaseURL, "tt02", env, 1),
		DB:                 db,
		Now:                c.Now,
		MaskinportenIssuer: strings.Replace(testMPIss, "tt02", env, 1),
		MaskinportenKeys: func(context.Context) (jose.JSONWebKeySet, error) {
			return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &mp.PublicKey, KeyID: mpKid, Algorithm: "RS256", Use: "sig"}}}, nil
		},
		ServiceOwners: func(context.Context) ([]ServiceOwner, error) {
			return []ServiceOwner{
				{Code: "ttd", OrgNo: ttdOrgNo, Name: "Testdepartementet"},
				{Code: "digdir", OrgNo: digdirOrgNo, Name: "Digitaliseringsdirektoratet"},
				{Code: "skd", OrgNo: skdOrgNo, Name: "Skatteetaten"},
			}, nil
		},
		SigningKey: altinn,
	}
}

func newFixture(t testing.TB, mutate ...func(*Config)) *fixture {
	t.Helper()
	db := openTestDB(t)
	c := &clock{t: time.Date(2025, 9, 10, 10, 0, 0, 0, time.UTC)}
	cfg := testConfig(t, db, c, "tt02")
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, p: p, db: db, srv: srv, clock: c}
}

// mpClaims is a Maskinporten access token payload shaped like the real one (reference §1.6).
func mpClaims(now time.Time, orgNo, scope string) map[string]any {
	return map[string]any{
		"scope":      scope,
		"iss":        testMPIss,
		"client_amr": "private_key_jwt",
		"token_type": "Bearer",
		"exp":        now.Add(120 * time.Second).Unix(),
		"iat":        now.Unix(),
		"client_id":  "826acbbc-ee17-4946-af92-cf4885ebe951",
		"jti":        "ii1YvnPPCUHYlZw9_hVwr1UhLVQUdiNV_QKNru4JJGk",
		"consumer":   map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:" + orgNo},
	}
}

func signJWT(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("claims: %v", err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return out
}

func (f *fixture) mpToken(orgNo, scope string) string {
	mp, _, _ := testKeys(f.t)
	return signJWT(f.t, mp, mpKid, mpClaims(f.clock.Now(), orgNo, scope))
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) get(path string, header map[string]string) response {
	f.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatalf("request %s: %v", path, err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatalf("read %s: %v", path, err)
	}
	return response{res.StatusCode, res.Header, b}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// altinnToken exchanges a Maskinporten token for an Altinn token through the HTTP endpoint.
func (f *fixture) altinnToken(orgNo, scope string) string {
	f.t.Helper()
	res := f.get("/authentication/api/v1/exchange/maskinporten", bearer(f.mpToken(orgNo, scope)))
	if res.status != http.StatusOK {
		f.t.Fatalf("exchange: %d %s", res.status, res.body)
	}
	return string(res.body)
}

// ttdToken is an Altinn token for service owner ttd with the read scope.
func (f *fixture) ttdToken() string {
	return f.altinnToken(ttdOrgNo, "altinn:serviceowner/instances.read altinn:serviceowner/instances.write")
}

// pathOf turns a link the platform emitted into a path on the test server.
func pathOf(t testing.TB, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, testBaseURL) {
		t.Fatalf("link %q does not start with %q", link, testBaseURL)
	}
	return strings.TrimPrefix(link, testBaseURL)
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func jwtClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	return decode[map[string]any](t, jws.UnsafePayloadWithoutVerification())
}

func isGUID(s string) bool { _, err := uuid.Parse(s); return err == nil && len(s) == 36 }
