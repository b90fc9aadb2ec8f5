package web_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"portal/internal/audit"
	"portal/internal/metrics"
	"portal/internal/sim"
	"portal/web"
)

// samples reads a text exposition into its samples, keyed by series as written (labels in
// name order), e.g. `portal_sync_ok{env="tt02"}`.
func samples(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// scrapeMetrics fetches /metrics with the token.
func scrapeMetrics(t *testing.T, a *app) (page, map[string]float64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	p := a.client().do(req)
	if p.status != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", p.status, p.body)
	}
	return p, samples(t, p.body)
}

func TestMetrics(t *testing.T) {
	m := metrics.New()
	a := newSimApp(t, func(c *web.Config) { c.MetricsToken = metricsToken; c.Metrics = m })
	ctx := t.Context()
	a.addUser("admin@example.no", "admin")
	c := a.client()
	c.login("admin@example.no")

	// A sync that works (tt02) and one that Digdir refuses (prod), both through the
	// measuring transports, against the simulator.
	if _, err := a.clients.Sync(ctx, "tt02"); err != nil {
		t.Fatalf("sync tt02: %v", err)
	}
	if err := a.sim.SetFaults("prod", sim.UpstreamSelfService, sim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.clients.Sync(ctx, "prod"); err == nil {
		t.Fatal("prod synced while its self-service API answers 503")
	}

	// Fifty integrations' pages are one route; none of their ids may become a label.
	var ids []string
	for range 50 {
		b := make([]byte, 8)
		rand.Read(b)
		id := hex.EncodeToString(b)
		ids = append(ids, id)
		if p := c.get("/envs/tt02/integrations/" + id); p.status != http.StatusNotFound {
			t.Fatalf("%s: status %d", id, p.status)
		}
	}
	if p := c.get("/envs/tt02/integrations"); p.status != http.StatusOK {
		t.Fatalf("list: status %d", p.status)
	}
	for _, path := range []string{"/no/such/page", "/envs/tt02/integrations/" + ids[0] + "/nothing/here"} {
		if p := c.get(path); p.status != http.StatusNotFound {
			t.Fatalf("%s: status %d", path, p.status)
		}
	}

	p, s := scrapeMetrics(t, a)
	for _, id := range ids {
		if strings.Contains(p.body, id) {
			t.Fatalf("an integration id in the metrics: %s", id)
		}
	}
	if strings.Contains(p.body, metricsToken) {
		t.Fatal("the metrics token in the metrics")
	}

	// Requests, by route template.
	const count = "portal_http_request_duration_seconds_count"
	routes := map[string]float64{}
	for k, v := range s {
		if strings.HasPrefix(k, count+"{") && strings.Contains(k, `route="/envs/:env/integrations/:id"`) {
			routes[k] = v
		}
	}
	want := count + `{method="GET",route="/envs/:env/integrations/:id",status="404"}`
	if len(routes) != 1 || routes[want] != 50 {
		t.Errorf("integration pages: %v, want only %s = 50", routes, want)
	}
	for _, series := range []string{
		count + `{method="GET",route="/envs/:env/integrations",status="200"}`,
		count + `{method="POST",route="/login",status="303"}`,
	} {
		if s[series] < 1 {
			t.Errorf("no %s", series)
		}
	}
	if got := s[count+`{method="GET",route="unmatched",status="404"}`]; got < 1 {
		t.Errorf("unmatched requests: %v", got)
	}
	if got := s[`portal_http_request_duration_seconds_bucket{method="GET",route="/envs/:env/integrations/:id",status="404",le="+Inf"}`]; got != 50 {
		t.Errorf("+Inf bucket %v", got)
	}

	// Upstream calls, by environment and upstream.
	const up = "portal_upstream_request_duration_seconds_count"
	for _, series := range []string{
		up + `{env="tt02",outcome="2xx",upstream="maskinporten"}`,
		up + `{env="tt02",outcome="2xx",upstream="selfservice"}`,
		up + `{env="prod",outcome="5xx",upstream="selfservice"}`,
		`portal_upstream_errors_total{env="prod",kind="5xx",upstream="selfservice"}`,
	} {
		if s[series] < 1 {
			t.Errorf("no %s", series)
		}
	}
	// tt02 answered every call (its 404s for the made-up ids are 4xx, not failures of tt02).
	for k := range s {
		if strings.HasPrefix(k, "portal_upstream_errors_total{") && strings.Contains(k, `env="tt02"`) && !strings.Contains(k, `kind="4xx"`) {
			t.Errorf("an error in tt02: %s", k)
		}
	}

	// Sync state.
	tt02, err := a.clients.SyncStatus(ctx, "tt02")
	if err != nil {
		t.Fatal(err)
	}
	for series, v := range map[string]float64{
		`portal_sync_ok{env="tt02"}`:                             1,
		`portal_sync_ok{env="prod"}`:                             0,
		`portal_sync_running{env="tt02"}`:                        0,
		`portal_sync_clients{env="tt02"}`:                        float64(tt02.Clients),
		`portal_sync_last_run_timestamp_seconds{env="tt02"}`:     float64(tt02.FinishedAt.UnixNano()) / 1e9,
		`portal_sync_last_success_timestamp_seconds{env="tt02"}`: float64(tt02.LastOKAt.UnixNano()) / 1e9,
	} {
		if got, ok := s[series]; !ok || got != v {
			t.Errorf("%s = %v (present %t), want %v", series, got, ok, v)
		}
	}
	if tt02.Clients == 0 {
		t.Error("the simulator's tt02 has no integrations to count")
	}
	if _, ok := s[`portal_sync_last_success_timestamp_seconds{env="prod"}`]; ok {
		t.Error("prod never synced, yet has a last success")
	}

	// The audit chain, verified up to its newest event.
	res, err := audit.NewLog(a.db, nil).Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s["portal_audit_chain_ok"] != 1 || s["portal_audit_chain_verified_event_id"] != float64(res.LastID) || res.LastID == 0 {
		t.Errorf("chain ok %v through %v, want 1 through %d", s["portal_audit_chain_ok"], s["portal_audit_chain_verified_event_id"], res.LastID)
	}

	// The Go runtime and process collectors come along.
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := s[name]; !ok {
			t.Errorf("no %s", name)
		}
	}

	// The scrape itself is counted at the next one.
	if _, s := scrapeMetrics(t, a); s[count+`{method="GET",route="/metrics",status="200"}`] < 1 {
		t.Error("the scrape was not counted")
	}
}
