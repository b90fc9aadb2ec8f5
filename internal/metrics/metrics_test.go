package metrics_test

import (
	"bufio"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"portal/internal/metrics"
)

// scrape serves m with snap and returns every sample, keyed by its series as written
// (labels in name order), e.g. `portal_sync_ok{env="tt02"}`.
func scrape(t *testing.T, m *metrics.Metrics, snap metrics.Snapshot) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(snap).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
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

// withPrefix lists the series starting with prefix.
func withPrefix(samples map[string]float64, prefix string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range samples {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func TestTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(code)
		io.WriteString(w, "body")
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelPast()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		url     string
		outcome string
		kind    string // "" when the call is no error
	}{
		{"ok", context.Background(), srv.URL + "/selfservice/api/v1/clients?status=200", "2xx", ""},
		{"redirect", context.Background(), srv.URL + "/selfservice/api/v1/clients?status=304", "3xx", ""},
		{"not found", context.Background(), srv.URL + "/selfservice/api/v1/clients/x?status=404", "4xx", "4xx"},
		{"server error", context.Background(), srv.URL + "/selfservice/api/v1/clients?status=503", "5xx", "5xx"},
		{"refused", context.Background(), closed.URL + "/selfservice/api/v1/clients", "network", "network"},
		{"deadline", past, srv.URL + "/selfservice/api/v1/clients?status=200", "timeout", "timeout"},
		{"canceled", canceled, srv.URL + "/selfservice/api/v1/clients?status=200", "canceled", "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			base := srv.URL
			if strings.HasPrefix(tt.url, closed.URL) {
				base = closed.URL
			}
			hc := &http.Client{Transport: m.Transport("tt02", metrics.Maskinporten(base+"/selfservice"), nil)}
			defer hc.CloseIdleConnections()
			req, _ := http.NewRequestWithContext(tt.ctx, http.MethodGet, tt.url, nil)
			resp, err := hc.Do(req)
			if (err != nil) != (tt.kind != "" && tt.kind != "4xx" && tt.kind != "5xx") {
				t.Fatalf("err %v", err)
			}
			if err == nil {
				// The call is measured once its body has been read, not before.
				if got := withPrefix(scrape(t, m, metrics.Snapshot{}), "portal_upstream_request_duration_seconds_count"); len(got) != 0 {
					t.Errorf("measured before the body was read: %v", got)
				}
				if b, _ := io.ReadAll(resp.Body); tt.outcome != "3xx" && string(b) != "body" {
					t.Errorf("body %q", b)
				}
				resp.Body.Close()
			}
			s := scrape(t, m, metrics.Snapshot{})
			want := map[string]float64{
				`portal_upstream_request_duration_seconds_count{env="tt02",outcome="` + tt.outcome + `",upstream="selfservice"}`: 1,
			}
			if got := withPrefix(s, "portal_upstream_request_duration_seconds_count"); !maps.Equal(got, want) {
				t.Errorf("durations %v, want %v", got, want)
			}
			want = map[string]float64{}
			if tt.kind != "" {
				want[`portal_upstream_errors_total{env="tt02",kind="`+tt.kind+`",upstream="selfservice"}`] = 1
			}
			if got := withPrefix(s, "portal_upstream_errors_total"); !maps.Equal(got, want) {
				t.Errorf("errors %v, want %v", got, want)
			}
		})
	}
}

func TestNilMetricsTransportIsTheBase(t *testing.T) {
	var m *metrics.Metrics
	if rt := m.Transport("tt02", metrics.Altinn(""), nil); rt != http.DefaultTransport {
		t.Errorf("nil metrics wrapped the transport: %T", rt)
	}
}

func TestClassifiers(t *testing.T) {
	sim := metrics.Maskinporten("http://127.0.0.1:8081/sim/tt02/selfservice")
	real := metrics.Maskinporten("https://api.test.samarbeid.digdir.no/")
	none := metrics.Maskinporten("")
	altinn := metrics.Altinn("http://127.0.0.1:8081/sim/tt02/platform")
	tests := []struct {
		classify metrics.Classifier
		url      string
		want     string
	}{
		{sim, "http://127.0.0.1:8081/sim/tt02/selfservice/api/v1/clients/0f3b2c4d?inactive=true", metrics.UpstreamSelfService},
		{sim, "http://127.0.0.1:8081/sim/tt02/maskinporten/token", metrics.UpstreamMaskinporten},
		{sim, "http://127.0.0.1:8081/sim/tt02/maskinporten/.well-known/oauth-authorization-server", metrics.UpstreamMaskinporten},
		{sim, "http://127.0.0.1:8081/sim/tt02/selfservicex/api/v1/clients", metrics.UpstreamMaskinporten},
		{sim, "http://127.0.0.1:8081/sim/prod/selfservice/api/v1/clients", metrics.UpstreamMaskinporten},
		{real, "https://api.test.samarbeid.digdir.no/api/v1/clients", metrics.UpstreamSelfService},
		{real, "https://test.maskinporten.no/token", metrics.UpstreamMaskinporten},
		{none, "https://test.maskinporten.no/jwk", metrics.UpstreamMaskinporten},
		{altinn, "http://127.0.0.1:8081/sim/tt02/platform/authentication/api/v1/exchange/maskinporten?test=true", metrics.UpstreamAltinnExchange},
		{altinn, "http://127.0.0.1:8081/sim/tt02/platform/storage/api/v1/instances?org=ttd", metrics.UpstreamAltinnStorage},
		{altinn, "http://127.0.0.1:8081/sim/tt02/platform/storage/api/v1/instances/5001/abc/data/def", metrics.UpstreamAltinnStorage},
		{altinn, "http://127.0.0.1:8081/sim/tt02/platform/profile/api/v1/user", metrics.UpstreamAltinn},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, tt.url, nil)
		if got := tt.classify(r); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestObserveRequest(t *testing.T) {
	m := metrics.New()
	m.ObserveRequest(http.MethodGet, "/envs/:env/integrations/:id", 200, 20*time.Millisecond)
	m.ObserveRequest(http.MethodGet, "/envs/:env/integrations/:id", 200, 30*time.Millisecond)
	m.ObserveRequest("BREW", "", 404, time.Millisecond)
	got := withPrefix(scrape(t, m, metrics.Snapshot{}), "portal_http_request_duration_seconds_count")
	want := map[string]float64{
		`portal_http_request_duration_seconds_count{method="GET",route="/envs/:env/integrations/:id",status="200"}`: 2,
		`portal_http_request_duration_seconds_count{method="other",route="unmatched",status="404"}`:                 1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSnapshot(t *testing.T) {
	finished := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lastOK := finished.Add(-time.Hour)
	exp := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		snap metrics.Snapshot
		want map[string]float64 // every portal_ series but the request and upstream ones
	}{
		{"empty", metrics.Snapshot{}, map[string]float64{}},
		{"state", metrics.Snapshot{
			Syncs: []metrics.Sync{
				{Env: "tt02", OK: true, FinishedAt: finished, LastOKAt: finished, Clients: 42},
				{Env: "prod", OK: false, Running: true, FinishedAt: finished, LastOKAt: lastOK, Clients: 7},
				{Env: "dev", Never: true},
			},
			Chain: &metrics.Chain{VerifiedThrough: 1234, OK: true},
			Keys: []metrics.KeyExpiry{
				{Env: "tt02", ClientID: "c1", Kid: "k1", Expires: exp},
				{Env: "tt02", ClientID: "c1", Kid: "k1", Expires: exp}, // the same key seen twice
				{Env: "tt02", ClientID: "c1", Kid: "no-exp"},
				{Env: "tt02", ClientID: "c1", Kid: "bad\xff", Expires: exp}, // not UTF-8: made valid, not a panic
			},
		}, map[string]float64{
			`portal_sync_running{env="tt02"}`:                                                          0,
			`portal_sync_running{env="prod"}`:                                                          1,
			`portal_sync_running{env="dev"}`:                                                           0,
			`portal_sync_ok{env="tt02"}`:                                                               1,
			`portal_sync_ok{env="prod"}`:                                                               0,
			`portal_sync_last_run_timestamp_seconds{env="tt02"}`:                                       float64(finished.Unix()),
			`portal_sync_last_run_timestamp_seconds{env="prod"}`:                                       float64(finished.Unix()),
			`portal_sync_last_success_timestamp_seconds{env="tt02"}`:                                   float64(finished.Unix()),
			`portal_sync_last_success_timestamp_seconds{env="prod"}`:                                   float64(lastOK.Unix()),
			`portal_sync_clients{env="tt02"}`:                                                          42,
			`portal_sync_clients{env="prod"}`:                                                          7,
			`portal_audit_chain_verified_event_id`:                                                     1234,
			`portal_audit_chain_ok`:                                                                    1,
			`portal_key_expiry_timestamp_seconds{client_id="c1",env="tt02",kid="k1"}`:                  float64(exp.Unix()),
			`portal_key_expiry_timestamp_seconds{client_id="c1",env="tt02",kid="bad` + "\uFFFD" + `"}`: float64(exp.Unix()),
		}},
		{"broken chain", metrics.Snapshot{Chain: &metrics.Chain{VerifiedThrough: 9, OK: false}}, map[string]float64{
			`portal_audit_chain_verified_event_id`: 9,
			`portal_audit_chain_ok`:                0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			s := scrape(t, m, tt.snap)
			got := map[string]float64{}
			for k, v := range withPrefix(s, "portal_") {
				if !strings.HasPrefix(k, "portal_http_") && !strings.HasPrefix(k, "portal_upstream_") {
					got[k] = v
				}
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got\n%v\nwant\n%v", got, tt.want)
			}
			// The runtime and process collectors come along.
			for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
				if _, ok := s[name]; !ok {
					t.Errorf("no %s", name)
				}
			}
		})
	}
}
