package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestPagePresentation checks what pages show beside their main content: counts in the
// singular, the example grant as a person would type it, the note about Digdir's delay only
// where integrations and keys change, and the color scheme left to the person's browser.
func TestPagePresentation(t *testing.T) {
	t.Parallel()
	a := newAccessApp(t)
	created := a.createThroughForm(a.dev, "Reader", "altinn:serviceowner/instances.read")
	if created.status != http.StatusSeeOther {
		t.Fatalf("create an integration: status %d", created.status)
	}
	integration := created.header.Get("Location")
	anon := a.client()
	const note = "Changes to integrations can take up to 2 minutes to reach Maskinporten."

	tests := []struct {
		name   string
		c      *client
		path   string
		sel    string
		want   string // the selection's text contains it; empty: the selection is absent
		reject string // the selection's text must not contain it
	}{
		{"one integration listed", a.dev, "/envs/tt02/integrations", `[data-testid="result-count"]`, "1 integration.", "integrations"},
		{"example grant kid unescaped", a.dev, integration, `[data-testid="example-header"]`, `"kid": "<the kid of one of this client's keys>"`, `\u003c`},
		{"example grant jti unescaped", a.dev, integration, `[data-testid="example-claims"]`, `"jti": "<a new random value for every grant>"`, `\u003c`},
		{"delay note on an integration", a.dev, integration, "footer", note, ""},
		{"delay note on the list", a.dev, "/envs/tt02/integrations", "footer", note, ""},
		{"delay note on a keys page", a.dev, integration + "/keys", "footer", note, ""},
		{"delay note on all keys", a.dev, "/keys", "footer", note, ""},
		{"no delay note on sign-in", anon, "/login", "footer", "", ""},
		{"no delay note on the dashboard", a.dev, "/", "footer", "", ""},
		{"no delay note on the account", a.dev, "/account", "footer", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.c.get(tt.path)
			if p.status != http.StatusOK {
				t.Fatalf("GET %s: status %d", tt.path, p.status)
			}
			if scheme, _ := p.doc.Find("html").Attr("data-color-scheme"); scheme != "auto" {
				t.Errorf("GET %s: data-color-scheme=%q, want auto (the browser's prefers-color-scheme)", tt.path, scheme)
			}
			sel := p.doc.Find(tt.sel)
			if tt.want == "" {
				if sel.Length() != 0 {
					t.Errorf("GET %s shows %s: %q", tt.path, tt.sel, strings.TrimSpace(sel.Text()))
				}
				return
			}
			got := sel.Text()
			if !strings.Contains(got, tt.want) {
				t.Errorf("GET %s: %s = %q, want it to contain %q", tt.path, tt.sel, got, tt.want)
			}
			if tt.reject != "" && strings.Contains(got, tt.reject) {
				t.Errorf("GET %s: %s = %q, must not contain %q", tt.path, tt.sel, got, tt.reject)
			}
		})
	}
}
