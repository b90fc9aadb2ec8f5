package main

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"portal/internal/maskinporten"
	"portal/internal/sim"
	"portal/web"
)

// TestEnvHealthAgainstSimulators reads the simulators' admin files exactly as a real
// environment's would be read and checks the upstreams over HTTP.
func TestEnvHealthAgainstSimulators(t *testing.T) {
	s, srv, cfg := simulatedConfig(t)
	dir := cfg.Data
	envs := envViews(cfg)
	for _, e := range envs {
		if e.Problem != "" || !e.Simulated || !strings.HasPrefix(e.Issuer, srv.URL+"/sim/"+e.Name+"/maskinporten/") || e.AdminClient == "" {
			t.Fatalf("env view %+v", e)
		}
	}
	ups, problems := upstreamClients(cfg, envs, nil, nil)
	tenvs, err := tryEnvs(cfg, envs, ups, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &envHealth{clients: ups, problems: problems, altinn: altinnClients(tenvs)}
	for _, env := range []string{"tt02", "prod"} {
		checks := h.Check(t.Context(), env)
		if len(checks) != 7 { // metadata, token, self-service, three admin scope kinds, exchange
			t.Fatalf("%s: %d checks: %+v", env, len(checks), checks)
		}
		for i, want := range []string{"idporten:dcr.read", "idporten:dcr.write", "idporten:scopes.write"} {
			if c := checks[3+i]; !strings.HasPrefix(c.Name, "Admin scopes: ") || c.Detail != "asks for "+want {
				t.Errorf("%s: admin scope check %+v", env, c)
			}
		}
		for _, c := range checks {
			if !c.OK {
				t.Errorf("%s: %s failed: %s", env, c.Name, c.Detail)
			}
		}
	}

	// An admin client asked for a scope it lacks: that kind of call is reported refused.
	narrow := cfg
	narrow.Envs = map[string]EnvConfig{}
	for k, v := range cfg.Envs {
		narrow.Envs[k] = v
	}
	ec := narrow.Envs["tt02"]
	ec.AdminScopes = maskinporten.AdminScopes{ScopeAccess: []string{"idporten:dcr.modify"}}
	narrow.Envs["tt02"] = ec
	nups, nproblems := upstreamClients(narrow, envViews(narrow), nil, nil)
	nchecks := (&envHealth{clients: nups, problems: nproblems}).Check(t.Context(), "tt02")
	if last := nchecks[len(nchecks)-1]; last.OK || !strings.Contains(last.Detail, "idporten:dcr.modify") || !strings.Contains(last.Detail, "MP-200") {
		t.Errorf("scope the admin client lacks: %+v", last)
	}

	// A failing upstream is reported in words, and the chain stops at the first failure.
	if err := s.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	checks := h.Check(t.Context(), "tt02")
	if ss := checks[2]; ss.Name != "Self-service API" || ss.OK || !strings.Contains(ss.Detail, "503") {
		t.Fatalf("self-service fault not reported: %+v", checks)
	}

	// A damaged credentials file is named, not a crash.
	os.WriteFile(dir+"/sim-prod-admin.json", []byte("{"), 0o600)
	ups, problems = upstreamClients(cfg, envViews(cfg), nil, nil)
	h = &envHealth{clients: ups, problems: problems}
	if checks := h.Check(t.Context(), "prod"); len(checks) != 1 || checks[0].OK || !strings.Contains(checks[0].Detail, "sim-prod-admin.json") {
		t.Fatalf("broken admin file: %+v", checks)
	}
}

// simulatedConfig starts the simulators on a test server with their admin files in a fresh
// data directory, and returns the default configuration pointing at that directory.
func simulatedConfig(t *testing.T) (*sim.Sim, *httptest.Server, Config) {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	s, err := sim.Open(t.Context(), sim.Config{BaseURL: srv.URL, DataDir: dir, AppInstances: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv.Config.Handler = s.Handler()
	cfg := defaultConfig()
	cfg.Data = dir
	return s, srv, cfg
}

// TestEnvHealthWriteScopesAndExchange: the live checks tell whether Altinn exchanges the
// environment's Maskinporten tokens (what the admin client's scopes allow is checked per kind of
// call in TestEnvHealthAgainstSimulators).
func TestEnvHealthWriteScopesAndExchange(t *testing.T) {
	s, _, cfg := simulatedConfig(t)
	envs := envViews(cfg)
	ups, problems := upstreamClients(cfg, envs, nil, nil)
	tenvs, err := tryEnvs(cfg, envs, ups, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &envHealth{clients: ups, problems: problems, altinn: altinnClients(tenvs)}
	find := func(checks []web.Check, name string) web.Check {
		for _, c := range checks {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no %q check in %+v", name, checks)
		return web.Check{}
	}
	tests := []struct {
		env, check string
		ok         bool
		want       []string
	}{
		{"tt02", "Altinn token exchange", true, []string{"trusts this Maskinporten environment's tokens"}},
		{"prod", "Altinn token exchange", true, []string{"trusts this Maskinporten environment's tokens"}},
	}
	for _, tt := range tests {
		c := find(h.Check(t.Context(), tt.env), tt.check)
		if c.OK != tt.ok {
			t.Errorf("%s %s: ok %v, want %v: %s", tt.env, tt.check, c.OK, tt.ok, c.Detail)
		}
		for _, w := range tt.want {
			if !strings.Contains(c.Detail, w) {
				t.Errorf("%s %s lacks %q: %s", tt.env, tt.check, w, c.Detail)
			}
		}
	}
	// An exchange that fails is reported as such.
	if err := s.SetFaults("prod", sim.UpstreamPlatform, sim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	if c := find(h.Check(t.Context(), "prod"), "Altinn token exchange"); c.OK || !strings.Contains(c.Detail, "503") {
		t.Errorf("failed exchange: %+v", c)
	}
}
