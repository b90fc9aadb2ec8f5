package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"portal/internal/metrics"
)

// TestUpstreamClientsAreMeasured checks the wiring: the clients run builds for each
// environment record their calls, per upstream, in the portal's metrics.
func TestUpstreamClientsAreMeasured(t *testing.T) {
	_, _, cfg := simulatedConfig(t)
	envs := envViews(cfg)
	m := metrics.New()
	ups, problems := upstreamClients(cfg, envs, m, nil)
	h := &envHealth{clients: ups, problems: problems}
	for _, c := range h.Check(t.Context(), "tt02") {
		if !c.OK {
			t.Fatalf("%s: %s", c.Name, c.Detail)
		}
	}
	tenvs, err := tryEnvs(cfg, envs, ups, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tenvs {
		if e.Name == "tt02" {
			if _, err := e.Altinn.Exchange(t.Context(), "not-a-token", true); err == nil {
				t.Fatal("the exchange took a made-up token")
			}
		}
	}

	rec := httptest.NewRecorder()
	m.Handler(metrics.Snapshot{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	got := map[string]bool{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); (strings.HasPrefix(line, "portal_upstream_") && strings.Contains(line, "_count{")) || strings.HasPrefix(line, "portal_upstream_errors_total{") {
			got[line[:strings.LastIndexByte(line, ' ')]] = true
		}
	}
	for _, series := range []string{
		`portal_upstream_request_duration_seconds_count{env="tt02",outcome="2xx",upstream="maskinporten"}`,
		`portal_upstream_request_duration_seconds_count{env="tt02",outcome="2xx",upstream="selfservice"}`,
		`portal_upstream_request_duration_seconds_count{env="tt02",outcome="4xx",upstream="altinn-exchange"}`,
		`portal_upstream_errors_total{env="tt02",kind="4xx",upstream="altinn-exchange"}`,
	} {
		if !got[series] {
			t.Errorf("no %s in %v", series, got)
		}
	}
	for series := range got {
		if strings.Contains(series, `env="prod"`) {
			t.Errorf("prod made no calls, yet %s", series)
		}
	}
}
