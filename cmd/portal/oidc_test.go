package main

import (
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestProviderConfig: providers in the config file reach the identity service, and each
// mistake is reported with the provider and the field to fix, never the secret.
func TestProviderConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := `{"name":"entra","display_name":"Entra ID","issuer":"https://login.microsoftonline.com/tid/v2.0","client_id":"c",
		"client_secret_file":"` + secretFile + `","scopes":["openid","profile","email"],
		"rules":[{"claim":"groups","value":"g-admins","admin":true},{"claim":"roles","value":"Portal.Owner","team":"Payments","team_role":"owner"}]}`
	for _, tc := range []struct {
		name, providers, want string
	}{
		{"valid", "[" + ok + "]", ""},
		{"no client id", `[{"name":"x","issuer":"https://idp.example","client_secret":"topsecret","rules":[]}]`, "oidc_providers.x: provider x: client_id is required"},
		{"secret and key", `[{"name":"x","issuer":"https://idp.example","client_id":"c","client_secret":"topsecret","private_key_file":"` + secretFile + `"}]`, "not both"},
		{"unreadable key", `[{"name":"x","issuer":"https://idp.example","client_id":"c","private_key_file":"/nonexistent/key.pem"}]`, "private_key_file /nonexistent/key.pem cannot be read"},
		{"bad team role", `[{"name":"x","issuer":"https://idp.example","client_id":"c","client_secret":"topsecret","rules":[{"claim":"groups","value":"g","team":"T","team_role":"boss"}]}]`, `rule 1: team_role must be owner, member or viewer, not "boss"`},
		{"bad org", `[{"name":"ap","issuer":"https://ansattporten.no","client_id":"c","client_secret":"topsecret","rules":[{"authorization_details":{"org":"12"},"admin":true}]}]`, "organisation number of 9 digits"},
		{"bad name", `[{"name":"Entra ID","issuer":"https://idp.example","client_id":"c","client_secret":"topsecret"}]`, "use lower-case letters"},
		{"extra param overriding the flow", `[{"name":"x","issuer":"https://idp.example","client_id":"c","client_secret":"topsecret","extra_params":{"state":"fixed"}}]`, "extra_params may not set state"},
		{"twice", "[" + ok + "," + ok + "]", "another provider has this name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "portal.json")
			if err := os.WriteFile(path, []byte(`{"oidc_providers":`+tc.providers+`}`), 0o600); err != nil {
				t.Fatal(err)
			}
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			flags := serveFlags(fs)
			cfg, err := loadConfig(fs, flags, func(k string) string {
				if k == "PORTAL_CONFIG" {
					return path
				}
				return ""
			})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				pcs, problems := cfg.providerConfigs()
				if len(problems) > 0 || len(pcs) != 1 || pcs[0].ClientSecret != "s3cret-from-file" || len(pcs[0].Rules) != 2 {
					t.Fatalf("providers %+v problems %v", pcs, problems)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Fatal("the secret is in the message")
			}
		})
	}
}

// TestSimulatedAnsattporten: with every environment simulated, serve offers the simulated
// Ansattporten, marked as such; the picker's people get in (or not) by their rights for the
// organisation number, through the real flow (PKCE, state, nonce, acr, authorization_details).
func TestSimulatedAnsattporten(t *testing.T) {
	t.Parallel()
	p := startBrowserPortal(t, &browserAdmin)
	for _, tc := range []struct {
		person, name string
		status       int
		role         string
		message      string
	}{
		{"01017012345", "Kari Nordmann", http.StatusSeeOther, "admin", ""},
		{"03039012345", "Per Utenfor", http.StatusForbidden, "", "none of your groups or rights gives access"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(u string) (*http.Response, string) {
				t.Helper()
				resp, err := hc.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, string(b)
			}
			_, login := get(p.URL + "/login")
			if !strings.Contains(login, "Sign in with Ansattporten (simulated)") || !strings.Contains(login, `data-testid="provider-simulated"`) {
				t.Fatalf("sign-in page does not offer the simulated Ansattporten, marked: %s", login)
			}
			resp, _ := get(p.URL + "/login/oidc/ansattporten-sim")
			authz, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || !strings.HasPrefix(authz.String(), p.SimURL+"/sim/tt02/ansattporten/authorize") {
				t.Fatalf("start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			q := authz.Query()
			if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("acr_values") != "substantial high" ||
				!strings.Contains(q.Get("authorization_details"), "ansattporten:altinn:service") {
				t.Fatalf("authorization request %v", q)
			}
			_, picker := get(authz.String())
			if !strings.Contains(picker, "Simulated Ansattporten") {
				t.Fatalf("the picker does not say it is simulated: %s", picker)
			}
			m := regexp.MustCompile(`href="(authorize/pick\?req=[^"&]+&amp;pid=` + tc.person + `)"`).FindStringSubmatch(picker)
			if m == nil {
				t.Fatalf("no %s in the picker: %s", tc.name, picker)
			}
			pick, _ := authz.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
			resp, _ = get(pick.String())
			cb := resp.Header.Get("Location")
			if !strings.HasPrefix(cb, p.URL+"/login/oidc/ansattporten-sim/callback?") {
				t.Fatalf("pick answered %d %q", resp.StatusCode, cb)
			}
			resp, body := get(cb)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.message) {
				t.Fatalf("callback: %d %s", resp.StatusCode, body)
			}
			// The code was single use at the provider, the state at the portal.
			if resp, _ := get(cb); resp.StatusCode == http.StatusSeeOther {
				t.Fatal("the callback worked twice")
			}
			if tc.role == "" {
				return
			}
			_, acc := get(p.URL + "/account")
			if !strings.Contains(acc, tc.name) || !strings.Contains(acc, "<dd>"+tc.role+"</dd>") {
				t.Fatalf("account page after signing in: %s", acc)
			}
		})
	}
}
