package main

import (
	"errors"
	"strings"
	"testing"
)

// TestAllowedEmailDomains: the configured domains reach account creation (here `portal user
// add`), and a malformed entry is a configuration error.
func TestAllowedEmailDomains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"PORTAL_ALLOWED_EMAIL_DOMAINS": "Example.NO, etat.example.no"}
	for _, tc := range []struct {
		email string
		want  string // "" for success
	}{
		{"ada@example.no", ""},
		{"Bo@Etat.Example.no", ""},
		{"eve@evil.example", "Only addresses at example.no, etat.example.no"},
		{"ceo@ex\u0430mple.no", "plain ASCII"},
	} {
		out, _, err := runOnce(t, []string{"user", "add", "--data", dir, "--email", tc.email, "--name", "A", "--role", "member"}, env, "correct horse battery\n")
		if tc.want == "" {
			if err != nil || !strings.Contains(out, "added "+strings.ToLower(tc.email)) {
				t.Fatalf("%s: %q %v", tc.email, out, err)
			}
			continue
		}
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want %q", tc.email, err, tc.want)
		}
	}
	_, _, err := runOnce(t, []string{"user", "add", "--data", dir, "--email", "a@example.no", "--name", "A"},
		map[string]string{"PORTAL_ALLOWED_EMAIL_DOMAINS": "@nope"}, "correct horse battery\n")
	if err == nil || !strings.Contains(err.Error(), `allowed_email_domains: "@nope"`) {
		t.Fatalf("malformed domain: %v", err)
	}
}
