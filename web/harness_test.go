package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/mfa"
	"portal/internal/sim"
	"portal/internal/store"
	"portal/internal/tryit"
	"portal/web"
)

// cheap hashing keeps the suite fast under -race; production uses auth.DefaultHashParams.
var cheap = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

type app struct {
	t    testing.TB
	srv  *httptest.Server
	db   *store.DB
	auth *auth.Service
	web  *web.Server
	logs *syncBuffer

	clients *clients.Service // nil unless built with newSimApp
	factors *mfa.Service
	sim     *sim.Sim
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newApp(t *testing.T) *app { return newAppWith(t, nil) }

func newAppWith(t *testing.T, health web.EnvChecker) *app { return newAppFull(t, health, nil) }

// newAppFull builds the app; withClients, when set, makes the integrations service over the
// app's database; each option adjusts the web configuration.
func newAppFull(t testing.TB, health web.EnvChecker, withClients func(db *store.DB) *clients.Service, opts ...func(*web.Config)) *app {
	t.Helper()
	return newAppTry(t, health, withClients, nil, opts...)
}

// newAppTry is newAppFull with, when withTry is set, the try service over the integrations.
func newAppTry(t testing.TB, health web.EnvChecker, withClients func(db *store.DB) *clients.Service,
	withTry func(db *store.DB, cs *clients.Service) *tryit.Service, opts ...func(*web.Config)) *app {
	t.Helper()
	// Tests sign in with a password only unless they ask for the second-factor policy
	// (newFactorApp); production's default is admins.
	return newAppPolicy(t, mfa.PolicyNone, nil, health, withClients, withTry, opts...)
}

// newFactorApp builds the app with the second-factor policy given, and n (may be nil) as its
// notifier.
func newFactorApp(t testing.TB, policy mfa.Policy, n web.Notifier, opts ...func(*web.Config)) *app {
	t.Helper()
	return newAppPolicy(t, policy, n, nil, nil, nil, opts...)
}

func newAppPolicy(t testing.TB, policy mfa.Policy, n web.Notifier, health web.EnvChecker, withClients func(db *store.DB) *clients.Service,
	withTry func(db *store.DB, cs *clients.Service) *tryit.Service, opts ...func(*web.Config)) *app {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := auth.NewService(db, auth.Options{Hash: cheap})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := auth.NewSessionStore(db, auth.SessionOptions{KeyPairs: [][]byte{bytes.Repeat([]byte("k"), 32)}})
	if err != nil {
		t.Fatal(err)
	}
	var cs *clients.Service
	if withClients != nil {
		cs = withClients(db)
		t.Cleanup(cs.Close)
	}
	var tr *tryit.Service
	if withTry != nil && cs != nil {
		tr = withTry(db, cs)
		a.OnPersonChanged(tr.DropPerson)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{ReplaceAttr: web.RedactAttr}))
	cfg := web.Config{OrgName: "Testdepartementet", PublicURL: "http://portal.test",
		Envs:     []web.Env{{Name: "tt02", Label: "Test (tt02)", Simulated: true, Issuer: "http://sim/tt02/maskinporten/"}, {Name: "prod", Label: "Production", Simulated: true}},
		FlashKey: bytes.Repeat([]byte("f"), 32), Log: log}
	for _, o := range opts {
		o(&cfg)
	}
	factors, err := mfa.New(db, mfa.Options{Policy: policy, KEK: testKEK(t), PublicURL: cfg.PublicURL, Issuer: cfg.OrgName, Now: cfg.Now})
	if err != nil {
		t.Fatal(err)
	}
	w, err := web.New(cfg, web.Deps{Auth: a, Sessions: sessions, Audit: audit.NewLog(db, nil), DB: db, Health: health, Clients: cs, Tryit: tr,
		Notify: n, Factors: factors})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return &app{t: t, srv: srv, db: db, auth: a, web: w, logs: logs, clients: cs, factors: factors}
}

func (a *app) addUser(email, role string) store.User {
	a.t.Helper()
	u, err := a.auth.AddUser(context.Background(), email, "User "+email, role, "correct horse battery", audit.Meta{Actor: "test"})
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// client is a browser-like client: cookie jar, no automatic redirects.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func (a *app) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: a.t, base: a.srv.URL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status int
	header http.Header
	body   string
	doc    *goquery.Document
}

func (c *client) do(req *http.Request) page {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(b))
	return page{status: resp.StatusCode, header: resp.Header, body: string(b), doc: doc}
}

func (c *client) get(path string) page {
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

// csrf fetches a page that carries a form and returns its anti-forgery token.
func (c *client) csrf() string {
	c.t.Helper()
	p := c.get("/login")
	if p.status == http.StatusSeeOther {
		p = c.get("/account")
	}
	if p.status == http.StatusSeeOther { // the policy sends the person to enrolment first
		p = c.get(p.header.Get("Location"))
	}
	tok, ok := p.doc.Find(`input[name="_csrf"]`).First().Attr("value")
	if !ok || tok == "" {
		c.t.Fatalf("no CSRF token on the sign-in page")
	}
	return tok
}

// post sends a form with a valid anti-forgery token.
func (c *client) post(path string, form url.Values) page {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("_csrf") == "" {
		form.Set("_csrf", c.csrf())
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (c *client) login(email string) {
	c.t.Helper()
	p := c.post("/login", url.Values{"email": {email}, "password": {"correct horse battery"}})
	if p.status != http.StatusSeeOther {
		c.t.Fatalf("login %s: status %d: %s", email, p.status, p.body)
	}
}

func text(p page, sel string) string {
	return strings.TrimSpace(p.doc.Find(sel).First().Text())
}

func adminPrincipal(t testing.TB, a *app) *auth.Principal {
	u, err := a.db.UserByEmail(t.Context(), "admin@example.no")
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.auth.LoadPrincipal(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func metaFor() audit.Meta { return audit.Meta{Actor: "test"} }

// testKEK is a fixed key-encryption key for sealing TOTP secrets in tests.
func testKEK(t testing.TB) *keys.KEK {
	k, err := keys.NewKEK([]byte("0123456789abcdef0123456789ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
