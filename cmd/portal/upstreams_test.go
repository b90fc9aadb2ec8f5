package main

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"portal/internal/maskinporten"
	"portal/internal/sim"
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
	h := &envHealth{clients: ups, problems: problems}
	for _, env := range []string{"tt02", "prod"} {
		checks := h.Check(t.Context(), env)
		if len(checks) != 6 {
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
	last := checks[len(checks)-1]
	if last.OK || !strings.Contains(last.Detail, "503") {
		t.Fatalf("self-service fault not reported: %+v", last)
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
