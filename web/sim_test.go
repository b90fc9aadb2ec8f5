package web_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/altinn"
	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/metrics"
	"portal/internal/sim"
	"portal/internal/store"
	"portal/internal/tryit"
	"portal/web"
)

var (
	simKeysOnce sync.Once
	simKeyPool  []*rsa.PrivateKey
)

// simKeys hands the simulators keys generated once per test binary: generating RSA keys
// would dominate the suite otherwise.
func simKeys() func() (*rsa.PrivateKey, error) {
	simKeysOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			simKeyPool = append(simKeyPool, k)
		}
	})
	var mu sync.Mutex
	i := 0
	return func() (*rsa.PrivateKey, error) {
		mu.Lock()
		defer mu.Unlock()
		i++
		return simKeyPool[i%len(simKeyPool)], nil
	}
}

// newSimApp is the app with the integrations service against a fresh simulator of both
// environments, served on its own httptest server; each option adjusts the web configuration.
func newSimApp(t *testing.T, opts ...func(*web.Config)) *app {
	t.Helper()
	return newSimAppSeeded(t, nil, nil, opts...)
}

// newSimAppSeeded is newSimApp with a simulator that also applies seed, and up adjusting each
// environment's self-service client (nil leaves them as they are).
func newSimAppSeeded(t *testing.T, seed *sim.SeedFile, up func(env string, cfg *maskinporten.Config), opts ...func(*web.Config)) *app {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	scfg := sim.Config{BaseURL: "http://" + srv.Listener.Addr().String(), DataDir: t.TempDir(),
		GenerateKey: simKeys(), AppInstances: 1}
	if seed != nil {
		b, err := json.Marshal(seed)
		if err != nil {
			t.Fatal(err)
		}
		scfg.SeedFile = filepath.Join(t.TempDir(), "seed.json")
		if err := os.WriteFile(scfg.SeedFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sim.Open(t.Context(), scfg)
	if err != nil {
		srv.Listener.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	// Cleanups run last-registered first: the app (and its background syncs) stops before
	// the simulator does.
	t.Cleanup(func() { s.Close() })
	t.Cleanup(srv.Close)
	// With metrics in the web configuration, the upstream clients measure their calls into them.
	var probe web.Config
	for _, o := range opts {
		o(&probe)
	}
	hc := func(env string, classify metrics.Classifier) *http.Client {
		if probe.Metrics == nil {
			return srv.Client()
		}
		return &http.Client{Transport: probe.Metrics.Transport(env, classify, srv.Client().Transport)}
	}
	ups := map[string]*maskinporten.Client{}
	a := newAppTry(t, nil, func(db *store.DB) *clients.Service {
		var envs []clients.Env
		for _, env := range []string{"tt02", "prod"} {
			cred, err := s.AdminCredentials(env)
			if err != nil {
				t.Fatal(err)
			}
			var upOpts []func(*maskinporten.Config)
			if up != nil {
				upOpts = append(upOpts, func(cfg *maskinporten.Config) { up(env, cfg) })
			}
			ups[env] = simUpstream(t, s, hc(env, metrics.Maskinporten(cred.SelfServiceURL)), env, upOpts...)
			envs = append(envs, clients.Env{Name: env, Label: env, Prod: env == "prod", Issuer: "http://sim/" + env + "/maskinporten/",
				Upstream: ups[env], AdminClient: cred.ClientID, AdminScopes: cred.Scopes})
		}
		raw := make([]byte, 32)
		rand.Read(raw)
		kek, err := keys.NewKEK(raw)
		if err != nil {
			t.Fatal(err)
		}
		gen := keys.NewGenerator(keys.GeneratorConfig{})
		t.Cleanup(gen.Close)
		cs, err := clients.New(db, envs, clients.Options{KEK: kek, Generator: gen})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}, func(db *store.DB, cs *clients.Service) *tryit.Service {
		return simTryit(t, s, db, cs, ups, func(env, platform string) altinn.Config {
			return altinn.Config{PlatformURL: platform, HTTPClient: hc(env, metrics.Altinn(platform)), Timeout: 2 * time.Second}
		})
	}, opts...)
	a.sim = s
	return a
}

// simTryit is the try service against the simulator: each environment's Maskinporten client
// and an Altinn client for its platform, configured by altinnConfig.
func simTryit(t testing.TB, s *sim.Sim, db *store.DB, cs *clients.Service, ups map[string]*maskinporten.Client,
	altinnConfig func(env, platform string) altinn.Config) *tryit.Service {
	t.Helper()
	var envs []tryit.Env
	for _, env := range []string{"tt02", "prod"} {
		cred, err := s.AdminCredentials(env)
		if err != nil {
			t.Fatal(err)
		}
		al, err := altinn.New(altinnConfig(env, cred.PlatformURL))
		if err != nil {
			t.Fatal(err)
		}
		e := tryit.Env{Name: env, Label: env, Maskinporten: ups[env], Altinn: al, TestToggle: env == "tt02"}
		for o, c := range ups {
			if o != env {
				e.OtherIssuers = append(e.OtherIssuers, c.Issuer())
			}
		}
		envs = append(envs, e)
	}
	tr, err := tryit.New(tryit.Config{Envs: envs, Clients: cs, Audit: audit.NewLog(db, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return tr
}

// simUpstream is the environment's self-service client with the simulator's admin credentials;
// opts adjust its configuration.
func simUpstream(t *testing.T, s *sim.Sim, hc *http.Client, env string, opts ...func(*maskinporten.Config)) *maskinporten.Client {
	t.Helper()
	cred, err := s.AdminCredentials(env)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.ParsePrivate([]byte(cred.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := []byte(cred.CertificateChainPEM); ; {
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
	cfg := maskinporten.Config{Issuer: cred.Issuer, SelfServiceURL: cred.SelfServiceURL, HTTPClient: hc,
		Timeout: 2 * time.Second, Admin: &maskinporten.Credentials{ClientID: cred.ClientID, Signer: maskinporten.Signer{Key: key, Chain: chain}, Scopes: cred.Scopes}}
	for _, o := range opts {
		o(&cfg)
	}
	mp, err := maskinporten.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mp
}

// principalOf loads a user's principal as the web layer would.
func (a *app) principalOf(email string) *auth.Principal {
	a.t.Helper()
	u, err := a.db.UserByEmail(a.t.Context(), email)
	if err != nil {
		a.t.Fatal(err)
	}
	p, err := a.auth.LoadPrincipal(a.t.Context(), u.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	return p
}

// TestEnvironmentPageCountsOtherKinds: the environment page says how many clients of other
// kinds Digdir lists that the portal leaves alone, and the integrations list shows none of them.
func TestEnvironmentPageCountsOtherKinds(t *testing.T) {
	t.Parallel()
	var seeded []sim.SeedClient
	for i, kind := range []string{"idporten", "idporten", "krr"} {
		seeded = append(seeded, sim.SeedClient{ClientID: fmt.Sprintf("other-%d", i), ClientOrgNo: sim.DefaultOrgNo,
			ClientName: "Login client " + strconv.Itoa(i), Description: "not Maskinporten", IntegrationType: kind})
	}
	a := newSimAppSeeded(t, &sim.SeedFile{Envs: []string{"tt02"}, Clients: seeded}, nil)
	a.addUser("admin@example.no", "admin")
	c := a.client()
	c.login("admin@example.no")
	list := c.get("/envs/tt02/integrations")
	if list.status != http.StatusOK {
		t.Fatalf("list: %d", list.status)
	}
	if body := list.doc.Text(); strings.Contains(body, "Login client") {
		t.Errorf("the integrations list shows clients of other kinds")
	}
	p := c.get("/envs/tt02")
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	got := text(p, `[data-testid="env-other-kinds"]`)
	if !strings.Contains(got, "3 clients of other kinds (idporten 2, krr 1) are not managed here.") {
		t.Errorf("other kinds: %q", got)
	}
	if p := c.get("/envs/prod"); text(p, `[data-testid="env-other-kinds"]`) != "" {
		t.Errorf("prod shows other kinds it does not have")
	}
}

// TestNewIntegrationWhenScopeAccessIsRefused: an admin client without idporten:scopes.write
// cannot list the organisation's scope access; the create form still works, offers the whole
// catalogue and says that access could not be checked.
func TestNewIntegrationWhenScopeAccessIsRefused(t *testing.T) {
	t.Parallel()
	a := newSimAppSeeded(t, nil, func(env string, cfg *maskinporten.Config) {
		full, err := maskinporten.New(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := full.CreateClient(t.Context(), maskinporten.Registration{ClientName: "admin without scopes.write",
			Description: "self-service admin", IntegrationType: maskinporten.IntegrationMaskinporten,
			Scopes: []string{"idporten:dcr.read", "idporten:dcr.write"}})
		if err != nil {
			t.Fatal(err)
		}
		cred := *cfg.Admin
		cred.ClientID = reg.ClientID
		cfg.Admin = &cred
	})
	a.addUser("admin@example.no", "admin")
	team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Payments", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), team.ID, "admin@example.no", "member", metaFor()); err != nil {
		t.Fatal(err)
	}
	c := a.client()
	c.login("admin@example.no")
	p := c.get("/envs/tt02/integrations/new")
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	if got := text(p, `[data-testid="scope-access-unchecked"]`); !strings.Contains(got, "access could not be checked") {
		t.Errorf("notice %q", got)
	}
	if p.doc.Find(`input[name="scopes"][value="krr:global/kontaktinformasjon.read"]`).Length() != 1 {
		t.Error("a catalogue scope without approved access is not offered")
	}
}
