package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"portal/internal/sim"
)

func TestFaults(t *testing.T) {
	h := newHarness(t)
	get := func(path string) (*http.Response, []byte, error) {
		resp, err := h.srv.Client().Get(h.srv.URL + path)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	const jwk = "/sim/tt02/maskinporten/jwk"
	set := func(env, up string, f sim.Faults) {
		t.Helper()
		if err := h.sim.SetFaults(env, up, f); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("5xx with the upstream's error body", func(t *testing.T) {
		set("tt02", sim.UpstreamMaskinporten, sim.Faults{ErrorRate: 1, ErrorStatus: 502})
		defer set("tt02", sim.UpstreamMaskinporten, sim.Faults{})
		resp, b, err := get(jwk)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if resp.StatusCode != 502 || json.Unmarshal(b, &body) != nil || body["error"] != "server_error" {
			t.Errorf("got %d %s", resp.StatusCode, b)
		}
		if resp.Header.Get("Server-Timing") == "" {
			t.Error("no Server-Timing on a fault")
		}
		// Other upstreams and the other environment are not affected.
		if resp, _, _ := get("/sim/prod/maskinporten/jwk"); resp.StatusCode != 200 {
			t.Errorf("prod affected: %d", resp.StatusCode)
		}
		if resp, _, _ := get("/sim/tt02/selfservice/api/v1/scopes/all"); resp.StatusCode != 200 {
			t.Errorf("selfservice affected: %d", resp.StatusCode)
		}
	})

	t.Run("self-service 5xx in Digdir's shape", func(t *testing.T) {
		set("tt02", sim.UpstreamSelfService, sim.Faults{ErrorRate: 1})
		defer set("tt02", sim.UpstreamSelfService, sim.Faults{})
		resp, b, err := get("/sim/tt02/selfservice/api/v1/scopes/all")
		if err != nil {
			t.Fatal(err)
		}
		var e apiErr
		if resp.StatusCode != 503 || json.Unmarshal(b, &e) != nil || e.Status != 503 {
			t.Errorf("got %d %s", resp.StatusCode, b)
		}
	})

	t.Run("platform 5xx", func(t *testing.T) {
		set("tt02", sim.UpstreamPlatform, sim.Faults{ErrorRate: 1, ErrorStatus: 500})
		defer set("tt02", sim.UpstreamPlatform, sim.Faults{})
		resp, _, err := get("/sim/tt02/platform/storage/api/v1/instances")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 500 || resp.Header.Get("Server-Timing") == "" {
			t.Errorf("got %d", resp.StatusCode)
		}
	})

	t.Run("malformed body", func(t *testing.T) {
		set("tt02", sim.UpstreamMaskinporten, sim.Faults{MalformedRate: 1})
		defer set("tt02", sim.UpstreamMaskinporten, sim.Faults{})
		resp, b, err := get(jwk)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if resp.StatusCode != 200 || json.Unmarshal(b, &v) == nil {
			t.Errorf("body still valid: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("connection reset", func(t *testing.T) {
		set("tt02", sim.UpstreamMaskinporten, sim.Faults{ResetRate: 1})
		defer set("tt02", sim.UpstreamMaskinporten, sim.Faults{})
		if _, _, err := get(jwk); err == nil {
			t.Error("request succeeded through a reset")
		}
	})

	t.Run("timeout bounded", func(t *testing.T) {
		set("tt02", sim.UpstreamMaskinporten, sim.Faults{TimeoutRate: 1, TimeoutAfter: time.Millisecond})
		defer set("tt02", sim.UpstreamMaskinporten, sim.Faults{})
		resp, _, err := get(jwk)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("status %d", resp.StatusCode)
		}
	})

	t.Run("timeout until the client gives up", func(t *testing.T) {
		set("tt02", sim.UpstreamMaskinporten, sim.Faults{TimeoutRate: 1})
		defer set("tt02", sim.UpstreamMaskinporten, sim.Faults{})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+jwk, nil)
		_, err := h.srv.Client().Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want the client's deadline", err)
		}
	})

	t.Run("latency is reported", func(t *testing.T) {
		set("tt02", sim.UpstreamMaskinporten, sim.Faults{Latency: time.Millisecond})
		defer set("tt02", sim.UpstreamMaskinporten, sim.Faults{})
		resp, _, err := get(jwk)
		if err != nil {
			t.Fatal(err)
		}
		if st := resp.Header.Get("Server-Timing"); resp.StatusCode != 200 || !strings.Contains(st, "fault-latency;dur=1.000") || !strings.Contains(st, "sim;dur=") {
			t.Errorf("%d Server-Timing %q", resp.StatusCode, st)
		}
	})

	t.Run("invalid faults refused", func(t *testing.T) {
		for _, f := range []sim.Faults{{ErrorRate: 2}, {ErrorStatus: 404}, {Latency: -1}} {
			if err := h.sim.SetFaults("tt02", sim.UpstreamMaskinporten, f); err == nil {
				t.Errorf("%+v accepted", f)
			}
		}
		if err := h.sim.SetFaults("tt03", sim.UpstreamMaskinporten, sim.Faults{}); err == nil {
			t.Error("unknown env accepted")
		}
		if err := h.sim.SetFaults("tt02", "altinn", sim.Faults{}); err == nil {
			t.Error("unknown upstream accepted")
		}
	})
}

func TestServerTimingEverywhere(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/sim/", "/sim/tt02/nothing", "/sim/tt02/maskinporten/errors/MP-121", "/sim/tt02/platform/storage/api/v1/instances",
		"/sim/admin/faults", "/sim/prod/selfservice/api/v1/clients"} {
		resp, err := h.srv.Client().Get(h.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("Server-Timing"), "sim;dur=") {
			t.Errorf("%s (%d): Server-Timing %q", p, resp.StatusCode, resp.Header.Get("Server-Timing"))
		}
	}
}

func TestAdminEndpoint(t *testing.T) {
	off := newHarness(t)
	resp, err := off.srv.Client().Get(off.srv.URL + "/sim/admin/faults")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("admin endpoint without AdminAPI: %d", resp.StatusCode)
	}

	h := newHarness(t, func(c *sim.Config) { c.AdminAPI = true })
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, h.srv.URL+path, strings.NewReader(body))
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, out := do("PUT", "/sim/admin/faults/prod/selfservice", `{"latency":"5ms","error_rate":0.25}`); st != 200 {
		t.Fatalf("set faults: %d %v", st, out)
	}
	f, _ := h.sim.FaultsOf("prod", sim.UpstreamSelfService)
	if f.Latency != 5*time.Millisecond || f.ErrorRate != 0.25 {
		t.Errorf("faults %+v", f)
	}
	st, all := do("GET", "/sim/admin/faults", "")
	if st != 200 || all["prod"].(map[string]any)["selfservice"].(map[string]any)["latency"] != "5ms" {
		t.Errorf("list faults: %d %v", st, all)
	}
	if st, _ := do("PUT", "/sim/admin/faults/prod/selfservice", `{"error_rate":7}`); st != 400 {
		t.Errorf("bad faults: %d", st)
	}
	if st, _ := do("PUT", "/sim/admin/faults/prod/selfservice", `{"bogus":1}`); st != 400 {
		t.Errorf("unknown member: %d", st)
	}
	if st, _ := do("DELETE", "/sim/admin/faults/prod/selfservice", ""); st != 204 {
		t.Errorf("clear faults: %d", st)
	}
	if f, _ := h.sim.FaultsOf("prod", sim.UpstreamSelfService); f != (sim.Faults{}) {
		t.Errorf("faults not cleared: %+v", f)
	}
	before := h.now("tt02")
	if st, out := do("POST", "/sim/admin/clock/tt02", `{"shift":"48h"}`); st != 200 || out["offset"] != "48h0m0s" {
		t.Errorf("shift clock: %d %v", st, out)
	}
	if d := h.now("tt02").Sub(before); d < 48*time.Hour {
		t.Errorf("clock moved %v", d)
	}
	if d := h.now("prod").Sub(before); d > time.Hour {
		t.Errorf("prod clock moved too: %v", d)
	}
	if st, out := do("POST", "/sim/admin/clock/tt02", `{"offset":"0s"}`); st != 200 || out["offset"] != "0s" {
		t.Errorf("reset clock: %d %v", st, out)
	}
	if st, _ := do("POST", "/sim/admin/clock/tt02", `{}`); st != 400 {
		t.Errorf("empty clock request: %d", st)
	}
	if st, _ := do("POST", "/sim/admin/clock/qa", `{"shift":"1h"}`); st != 400 {
		t.Errorf("unknown env: %d", st)
	}
}

func TestAdminFile(t *testing.T) {
	h := newHarness(t)
	for _, env := range sim.Environments {
		path := sim.AdminFile(h.cfg.DataDir, env)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", path, fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"issuer", "selfservice_url", "platform_url", "org", "orgno", "client_id", "scopes", "certificate_chain_pem", "private_key_pem"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("%s: %s missing", env, k)
			}
		}
		var c sim.AdminCredentials
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		if c.Issuer != issuer(env) || c.SelfServiceURL != baseURL+"/sim/"+env+"/selfservice" || c.PlatformURL != baseURL+"/sim/"+env+"/platform" ||
			c.Org != sim.DefaultOrgCode || c.OrgNo != sim.DefaultOrgNo || strings.Join(c.Scopes, " ") != "idporten:dcr.read idporten:dcr.write idporten:scopes.write" {
			t.Errorf("%s credentials %+v", env, c)
		}
		key, chain := parseCreds(t, c)
		if len(chain) != 2 || !key.PublicKey.Equal(chain[0].PublicKey) {
			t.Errorf("%s: key does not match the certificate", env)
		}
		if err := chain[0].CheckSignatureFrom(chain[1]); err != nil {
			t.Errorf("%s: certificate not issued by the CA: %v", env, err)
		}
	}
}

// TestAbandonedRequestIsNotCarriedOut: a client that gives up while the simulator holds its
// request (latency) must find, once the delay is over, that nothing happened; the held
// request ends when the client goes away.
func TestAbandonedRequestIsNotCarriedOut(t *testing.T) {
	h := newHarness(t)
	admin := h.adminToken("tt02")
	count := func() int {
		var cs []map[string]any
		if st := h.api("tt02", "GET", "/clients", admin, nil, &cs); st != http.StatusOK {
			t.Fatalf("list clients: %d", st)
		}
		return len(cs)
	}
	before := count()
	const hold = 1500 * time.Millisecond
	if err := h.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{Latency: hold}); err != nil {
		t.Fatal(err)
	}
	body := `{"integration_type":"maskinporten","client_name":"abandoned","description":"given up on",` +
		`"scopes":[],"token_endpoint_auth_method":"private_key_jwt","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}`
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/sim/tt02/selfservice/api/v1/clients", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	if _, err := h.srv.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the client's deadline", err)
	}
	if err := h.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold + 500*time.Millisecond) // past the point where a held request would go on
	if n := count(); n != before {
		t.Fatalf("%d clients after an abandoned create, want %d", n, before)
	}
}

// TestAdminAPIOnlyOnLoopback: the admin API asks for no credentials, so a peer that is not on
// loopback is refused even when the simulators listen on every interface.
func TestAdminAPIOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *sim.Config) { c.AdminAPI = true })
	tests := []struct {
		name   string
		remote string
		want   int
	}{
		{"documentation address", "192.0.2.1:1234", http.StatusForbidden},
		{"private network", "10.0.0.7:40000", http.StatusForbidden},
		{"IPv6", "[2001:db8::1]:40000", http.StatusForbidden},
		{"unparsable peer", "somewhere", http.StatusForbidden},
		{"IPv4 loopback", "127.0.0.1:40000", http.StatusOK},
		{"IPv6 loopback", "[::1]:40000", http.StatusOK},
		{"IPv4-mapped loopback", "[::ffff:127.0.0.1]:40000", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []*http.Request{
				httptest.NewRequest(http.MethodGet, "/sim/admin/clock", nil),
				httptest.NewRequest(http.MethodPost, "/sim/admin/clock/tt02", strings.NewReader(`{"offset":"0s"}`)),
				httptest.NewRequest(http.MethodPut, "/sim/admin/faults/prod/selfservice", strings.NewReader(`{}`)),
			} {
				r.RemoteAddr = tt.remote
				rec := httptest.NewRecorder()
				h.sim.Handler().ServeHTTP(rec, r)
				if rec.Code != tt.want {
					t.Errorf("%s %s from %s: %d, want %d: %s", r.Method, r.URL.Path, tt.remote, rec.Code, tt.want, rec.Body)
				}
			}
		})
	}
	// A refused request changes nothing.
	r := httptest.NewRequest(http.MethodPost, "/sim/admin/clock/tt02", strings.NewReader(`{"shift":"9000h"}`))
	r.RemoteAddr = "192.0.2.1:1234"
	h.sim.Handler().ServeHTTP(httptest.NewRecorder(), r)
	if d := h.now("tt02").Sub(time.Now()); d > time.Hour {
		t.Fatalf("a refused request moved the clock by %v", d)
	}
}
