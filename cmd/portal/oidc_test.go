package main

import (
	"flag"
	"os"
	"path/filepath"
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
