package maskinporten

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// apiClient builds a client against h with fake admin tokens.
func apiClient(t *testing.T, h http.HandlerFunc) (*Client, *fakeTokens) {
	t.Helper()
	srv := newServer(t, h)
	tokens := &fakeTokens{}
	return newTestClient(t, srv, func(cfg *Config) { cfg.AdminTokens = tokens }), tokens
}

// expect asserts the request line and the usual API headers.
func expect(t *testing.T, r *http.Request, method, path, query string, auth bool) {
	t.Helper()
	if r.Method != method || r.URL.EscapedPath() != path || r.URL.RawQuery != query {
		t.Errorf("got %s %s?%s, want %s %s?%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, method, path, query)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept %q", got)
	}
	got := r.Header.Get("Authorization")
	if auth && !strings.HasPrefix(got, "Bearer tok-") || !auth && got != "" {
		t.Errorf("Authorization %q (auth %v)", got, auth)
	}
}

func readJSONBody(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestListClients(t *testing.T) {
	body := fixture(t, "clients.json")
	for _, inactive := range []bool{false, true} {
		c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
			q := ""
			if inactive {
				q = "inactive=true"
			}
			expect(t, r, http.MethodGet, "/api/v1/clients", q, true)
			w.Write(body)
		})
		got, err := c.ListClients(t.Context(), inactive)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ClientID != "d1427568-1eba-1bf2-59ed-1c4af065f30e" || !got[0].Active || got[1].Active {
			t.Fatalf("clients %+v", got)
		}
		if !got[0].Created.Equal(time.Date(2021, 9, 15, 8, 20, 43, 354e6, time.UTC)) {
			t.Errorf("created %v", got[0].Created)
		}
		if !bytes.Contains(got[1].Raw, []byte(`"client_id": "oidc_difi_jb_test"`)) || bytes.Contains(got[1].Raw, []byte("d1427568")) {
			t.Errorf("raw of second client: %s", got[1].Raw)
		}
	}
}

func TestGetClientKeepsRaw(t *testing.T) {
	body := fixture(t, "client.json")
	c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
		expect(t, r, http.MethodGet, "/api/v1/clients/a%2Fb", "", true)
		w.Write(body)
	})
	got, err := c.GetClient(t.Context(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Raw, bytes.TrimSpace(body)) {
		t.Errorf("raw differs:\n%s", got.Raw)
	}
	if got.ClientOrgno != "123456789" || got.RefreshTokenUsage != "ONETIME" || got.IntegrationType != IntegrationMaskinporten {
		t.Errorf("client %+v", got)
	}
	if _, err := c.GetClient(t.Context(), ""); err == nil {
		t.Error("empty client id accepted")
	}
}

func TestCreateClient(t *testing.T) {
	var hits atomic.Int32
	c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		expect(t, r, http.MethodPost, "/api/v1/clients", "", true)
		m := readJSONBody(t, r)
		want := map[string]any{
			"integration_type":           "maskinporten",
			"application_type":           "web",
			"client_name":                "Acme - altinn-reader - test",
			"description":                "Reads instances from our apps",
			"token_endpoint_auth_method": "private_key_jwt",
			"grant_types":                []any{GrantType},
			"scopes":                     []any{"altinn:serviceowner/instances.read"},
		}
		if len(m) != len(want) {
			t.Errorf("sent %d members: %v", len(m), m)
		}
		for k, v := range want {
			if got, _ := json.Marshal(m[k]); string(got) != mustJSON(v) {
				t.Errorf("%s = %s", k, got)
			}
		}
		w.WriteHeader(http.StatusCreated)
		w.Write(fixture(t, "client.json"))
	})
	got, err := c.CreateClient(t.Context(), Registration{
		ClientID:                "ignored",
		IntegrationType:         IntegrationMaskinporten,
		ApplicationType:         ApplicationWeb,
		ClientName:              "Acme - altinn-reader - test",
		Description:             "Reads instances from our apps",
		TokenEndpointAuthMethod: AuthPrivateKeyJWT,
		GrantTypes:              []string{GrantType},
		Scopes:                  []string{"altinn:serviceowner/instances.read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientID == "" || len(got.Raw) == 0 {
		t.Errorf("created %+v", got)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUpdateClientDropsServerSetAndZeroFields(t *testing.T) {
	fromGet := fixture(t, "client.json")
	c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
		expect(t, r, http.MethodPut, "/api/v1/clients/d1427568-1eba-1bf2-59ed-1c4af065f30e", "", true)
		m := readJSONBody(t, r)
		for _, k := range []string{"created", "last_updated", "access_token_lifetime", "authorization_lifetime",
			"refresh_token_lifetime", "client_type", "token_reference", "client_secret", "frontchannel_logout_session_required"} {
			if _, ok := m[k]; ok {
				t.Errorf("%s sent", k)
			}
		}
		if m["description"] != "changed" || m["client_orgno"] != "123456789" || m["active"] != true {
			t.Errorf("body %v", m)
		}
		w.Write(fromGet)
	})
	var r Registration
	if err := json.Unmarshal(fromGet, &r); err != nil {
		t.Fatal(err)
	}
	r.Description = "changed"
	if _, err := c.UpdateClient(t.Context(), r.ClientID, r); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteCalls(t *testing.T) {
	tests := []struct {
		name string
		path string
		call func(*Client) error
	}{
		{"client", "/api/v1/clients/c-1", func(c *Client) error { return c.DeleteClient(t.Context(), "c-1") }},
		{"jwks", "/api/v1/clients/c-1/jwks", func(c *Client) error { return c.DeleteJWKS(t.Context(), "c-1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				expect(t, r, http.MethodDelete, tt.path, "", true)
				w.WriteHeader(http.StatusInternalServerError)
			})
			var e *APIError
			if err := tt.call(c); !errors.As(err, &e) || e.Status != 500 {
				t.Fatalf("err = %v", err)
			}
			if hits.Load() != 1 {
				t.Errorf("delete sent %d times", hits.Load())
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	t.Run("get", func(t *testing.T) {
		c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
			expect(t, r, http.MethodGet, "/api/v1/clients/c-1/jwks", "", true)
			w.Write(fixture(t, "jwks.json"))
		})
		set, err := c.GetJWKS(t.Context(), "c-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 1 || set.Keys[0].Kid != "kid-1970-01-01-01-00-00" || !set.Keys[0].Expires().Equal(time.Unix(1577836800, 0)) || set.Created.IsZero() {
			t.Errorf("set %+v", set)
		}
	})
	t.Run("none is empty", func(t *testing.T) {
		c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
		})
		set, err := c.GetJWKS(t.Context(), "c-1")
		if err != nil || set.Keys == nil || len(set.Keys) != 0 {
			t.Fatalf("set %+v, err %v", set, err)
		}
	})
	t.Run("replace", func(t *testing.T) {
		c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
			expect(t, r, http.MethodPost, "/api/v1/clients/c-1/jwks", "", true)
			b, _ := io.ReadAll(r.Body)
			want := `{"keys":[{"kty":"RSA","kid":"old","alg":"RS256","use":"sig","e":"AQAB","n":"abc","exp":1577836800},{"kty":"RSA","kid":"new","alg":"RS256","use":"sig","e":"AQAB","n":"def"}]}`
			if string(b) != want {
				t.Errorf("body\n got %s\nwant %s", b, want)
			}
			w.Write(fixture(t, "jwks.json"))
		})
		_, err := c.ReplaceJWKS(t.Context(), "c-1", []JWK{
			{Kty: "RSA", Kid: "old", Alg: "RS256", Use: "sig", E: "AQAB", N: "abc", Exp: 1577836800},
			{Kty: "RSA", Kid: "new", Alg: "RS256", Use: "sig", E: "AQAB", N: "def"},
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestScopes(t *testing.T) {
	yes, no := true, false
	t.Run("all, without token", func(t *testing.T) {
		c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
			expect(t, r, http.MethodGet, "/api/v1/scopes/all", "accessible_for_all=true&inactive=false&integration_type=maskinporten", false)
			w.Write(fixture(t, "scopes_all.json"))
		})
		got, err := c.ScopesAll(t.Context(), ScopeFilter{AccessibleForAll: &yes, IntegrationType: "maskinporten", Inactive: &no})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].AtMaxAge != 3600 || !got[0].AllowsIntegration("maskinporten") || got[0].AllowsIntegration("idporten") {
			t.Errorf("scopes %+v", got)
		}
	})
	t.Run("access", func(t *testing.T) {
		c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
			expect(t, r, http.MethodGet, "/api/v1/scopes/access/all", "inactive=false&integration_type=maskinporten", true)
			w.Write(fixture(t, "scope_access_all.json"))
		})
		got, err := c.ScopeAccessAll(t.Context(), ScopeFilter{AccessibleForAll: &yes, IntegrationType: "maskinporten", Inactive: &no})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].State != AccessApproved || got[1].State != AccessRequested || got[0].ConsumerOrgno != "916833520" {
			t.Errorf("access %+v", got)
		}
	})
}

func TestRenewTokenOn401(t *testing.T) {
	tests := []struct {
		name        string
		statuses    []int
		wantErr     error
		wantHits    int32
		wantRenewed int
	}{
		{"renewed once", []int{401, 200}, nil, 2, 1},
		{"still refused", []int{401, 401}, ErrUnauthorized, 2, 1},
		{"forbidden not retried", []int{403}, ErrForbidden, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			var mu sync.Mutex
			var seen []string
			c, tokens := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
				n := hits.Add(1)
				mu.Lock()
				seen = append(seen, r.Header.Get("Authorization"))
				mu.Unlock()
				if b, _ := io.ReadAll(r.Body); !strings.Contains(string(b), `"client_name":"x"`) {
					t.Errorf("attempt %d body %s", n, b)
				}
				w.WriteHeader(tt.statuses[n-1])
				w.Write(fixture(t, "client.json"))
			})
			_, err := c.UpdateClient(t.Context(), "c-1", Registration{ClientName: "x"})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "tok-") {
				t.Errorf("token in error: %v", err)
			}
			if hits.Load() != tt.wantHits || tokens.invalidated != tt.wantRenewed {
				t.Errorf("hits %d, invalidated %d", hits.Load(), tokens.invalidated)
			}
			if tt.wantRenewed > 0 && (seen[0] != "Bearer tok-1" || seen[1] != "Bearer tok-2") {
				t.Errorf("tokens sent %v", seen)
			}
		})
	}
}

func TestReadRetries(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		statuses []int
		wantHits int32
		wantErr  bool
	}{
		{"GET recovers after 5xx", http.MethodGet, []int{503, 502, 200}, 3, false},
		{"GET gives up after bound", http.MethodGet, []int{500, 500, 500, 500}, 3, true},
		{"GET 4xx not retried", http.MethodGet, []int{400}, 1, true},
		{"PUT not retried", http.MethodPut, []int{503, 200}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
				n := hits.Add(1)
				w.WriteHeader(tt.statuses[n-1])
				w.Write(fixture(t, "client.json"))
			})
			var tr Trace
			ctx := WithTrace(t.Context(), &tr)
			var err error
			if tt.method == http.MethodGet {
				_, err = c.GetClient(ctx, "c-1")
			} else {
				_, err = c.UpdateClient(ctx, "c-1", Registration{ClientName: "x"})
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if hits.Load() != tt.wantHits || int32(len(tr.Calls())) != tt.wantHits {
				t.Errorf("hits %d, traced %d", hits.Load(), len(tr.Calls()))
			}
			for i, call := range tr.Calls() {
				if call.Attempt != i+1 || call.RequestHeader.Get("Authorization") != "Bearer ****" {
					t.Errorf("call %d: %+v", i, call)
				}
			}
		})
	}
}

func TestReadRetriesNetworkError(t *testing.T) {
	var hits atomic.Int32
	c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
			return
		}
		w.Write(fixture(t, "client.json"))
	})
	if _, err := c.GetClient(t.Context(), "c-1"); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 2 {
		t.Errorf("hits %d", hits.Load())
	}
}

func TestCallTimeout(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := newTestClient(t, srv, func(cfg *Config) {
		cfg.AdminTokens = &fakeTokens{}
		cfg.Timeout = 20 * time.Millisecond
	})
	_, err := c.GetClient(t.Context(), "c-1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestAPIErrorFixture(t *testing.T) {
	c, _ := apiClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		w.Write(fixture(t, "selfservice_error.json"))
	})
	_, err := c.CreateClient(t.Context(), Registration{ClientName: "x"})
	var e *APIError
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if e.Status != 400 || e.CorrelationID != "b496e785cbd430eee802c1eaafa76f46" || e.Code != ", error 1" || len(e.Errors) != 1 || e.Errors[0].FieldIdentifier != "field_1" {
		t.Errorf("error %+v", e)
	}
	if got := e.FieldErrors()["field_1"]; len(got) != 1 || got[0] != "error 1" {
		t.Errorf("field errors %v", e.FieldErrors())
	}
	want := "self-service API create client: 400: field_1: error 1 (correlation id b496e785cbd430eee802c1eaafa76f46)"
	if err.Error() != want {
		t.Errorf("Error()\n got %s\nwant %s", err, want)
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("400 is ErrNotFound")
	}
}

func TestParseAPIErrorOddBodies(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", "", "self-service API op: 404"},
		{"html", "<html>Not Found</html>", "self-service API op: 404: <html>Not Found</html>"},
		{"errors wrong shape", `{"errors":"x","error_description":"no such client"}`, "self-service API op: 404: no such client"},
		{"errors entries mixed", `{"errors":[1,{"errorMessage":"m"}],"correlation_id":7}`, "self-service API op: 404: m"},
		{"spring default", `{"timestamp":"2025-01-01T00:00:00Z","status":404,"error":"Not Found","path":"/api/v1/clients/x"}`, "self-service API op: 404: Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ParseAPIError("op", 404, []byte(tt.body))
			if e.Error() != tt.want {
				t.Errorf("got %q", e.Error())
			}
			if !errors.Is(e, ErrNotFound) {
				t.Error("not ErrNotFound")
			}
		})
	}
}

func FuzzParseAPIError(f *testing.F) {
	f.Add(400, fixture(f, "selfservice_error.json"))
	f.Add(404, []byte(`{"errors":[{"errorMessage":"x","isFieldError":"yes"}]}`))
	f.Add(500, []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := ParseAPIError("op", status, body)
		_ = e.Error()
		_ = e.FieldErrors()
		if len(e.Body) > 250 {
			t.Errorf("body snippet %d bytes", len(e.Body))
		}
	})
}

func TestNoAdminConfigured(t *testing.T) {
	c, err := New(Config{Issuer: "https://test.maskinporten.no/", SelfServiceURL: "https://api.test.samarbeid.digdir.no"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListClients(t.Context(), false); err == nil || !strings.Contains(err.Error(), "no admin client") {
		t.Errorf("err = %v", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Issuer: "test.maskinporten.no"},
		{Issuer: "ftp://x/"},
		{Issuer: "https://x/?a=b"},
		{Issuer: "https://x/", SelfServiceURL: "/relative"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestAdminTokenRenewedOn401 runs the real token source against one server
// that plays both Maskinporten and the self-service API.
func TestAdminTokenRenewedOn401(t *testing.T) {
	key, _, cert := testKeys(t)
	var tokens, calls atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			n := tokens.Add(1)
			fmt.Fprintf(w, `{"access_token":"admin-%d","token_type":"Bearer","expires_in":3600}`, n)
		case "/api/v1/clients":
			// The first token is refused, as after a key rotation upstream.
			if calls.Add(1); r.Header.Get("Authorization") == "Bearer admin-1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`[]`))
		default:
			t.Errorf("unexpected %s", r.URL.Path)
		}
	})
	c := newTestClient(t, srv, func(cfg *Config) {
		cfg.Admin = &Credentials{ClientID: "admin", Signer: Signer{Key: key, Chain: []*x509.Certificate{cert}}, Scopes: []string{"idporten:dcr.read"}}
	})
	for range 2 {
		if _, err := c.ListClients(t.Context(), false); err != nil {
			t.Fatal(err)
		}
	}
	if tokens.Load() != 2 || calls.Load() != 3 {
		t.Errorf("%d token requests, %d API calls", tokens.Load(), calls.Load())
	}
}
