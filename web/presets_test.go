package web_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestScopePresetsOnTheCreateForm: the create form offers the service-owner APIs' presets, each
// with its purpose and documentation. Presets whose scopes the organisation has access to in
// the simulator (instances granted; broker, correspondence and events.subscribe open to all)
// can be applied; the others are shown with whom to ask, and a forged submit of one adds nothing.
func TestScopePresetsOnTheCreateForm(t *testing.T) {
	t.Parallel()
	_, c, team := signedInTeamMember(t)
	p := c.get("/envs/tt02/integrations/new")
	if p.status != http.StatusOK {
		t.Fatalf("new form: %d", p.status)
	}
	tests := []struct {
		preset     string
		selectable bool
		usable     []string
		missing    map[string]string // scope -> whom to ask
	}{
		{"instances", true, []string{"altinn:serviceowner/instances.read", "altinn:serviceowner/instances.write"}, nil},
		{"broker", true, []string{"altinn:broker.read", "altinn:broker.write"}, nil},
		{"correspondence", true, []string{"altinn:correspondence.read", "altinn:correspondence.write"}, nil},
		{"events", true, []string{"altinn:events.subscribe"}, map[string]string{"altinn:events.publish": "Altinn (servicedesk@altinn.no)"}},
		{"notifications", false, nil, map[string]string{"altinn:serviceowner/notifications.create": "Digdir (servicedesk@digdir.no)",
			"altinn:serviceowner/notifications.read": "Digdir"}},
		{"dialogporten", false, nil, map[string]string{"digdir:dialogporten.serviceprovider": "Digdir", "digdir:dialogporten.serviceprovider.search": "Digdir",
			"digdir:dialogporten.serviceprovider.admin": "Digdir"}},
		{"resources", false, nil, map[string]string{"altinn:resourceregistry/resource.read": "Altinn", "altinn:resourceregistry/resource.write": "Altinn",
			"altinn:authorization/authorize": "Altinn"}},
	}
	for _, tt := range tests {
		group := p.doc.Find(`[data-testid="preset-group-` + tt.preset + `"]`)
		if group.Length() != 1 {
			t.Errorf("%s: no preset group", tt.preset)
			continue
		}
		btn := group.Find(`[data-testid="preset-` + tt.preset + `"]`)
		_, disabled := btn.Attr("disabled")
		typ, _ := btn.Attr("type")
		if tt.selectable != (!disabled && typ == "submit") {
			t.Errorf("%s: selectable %v, want %v", tt.preset, !disabled && typ == "submit", tt.selectable)
		}
		if href, _ := group.Find("a").Attr("href"); !strings.HasPrefix(href, "https://docs.altinn.studio/") {
			t.Errorf("%s: documentation link %q", tt.preset, href)
		}
		if len(strings.TrimSpace(group.Find("p").Text())) < 40 {
			t.Errorf("%s: no sentence on what it is for: %q", tt.preset, group.Find("p").Text())
		}
		for _, sc := range tt.usable {
			if got := group.Find(`[data-testid="preset-scope-` + sc + `"]`).Text(); got == "" || strings.Contains(got, "no access") {
				t.Errorf("%s: %s shown as %q, want usable", tt.preset, sc, got)
			}
		}
		for sc, ask := range tt.missing {
			if got := group.Find(`[data-testid="preset-scope-` + sc + `"]`).Text(); !strings.Contains(got, "no access") || !strings.Contains(got, "ask "+ask) {
				t.Errorf("%s: %s shown as %q, want no access and whom to ask (%s)", tt.preset, sc, got, ask)
			}
		}
	}

	// Applying presets ticks their usable scopes only; a forged submit of one without access adds nothing.
	for _, tt := range []struct {
		preset string
		want   []string
	}{
		{"events", []string{"altinn:events.subscribe"}},
		{"broker", []string{"altinn:broker.read", "altinn:broker.write"}},
		{"notifications", nil},
	} {
		form := newForm(t, c)
		form.Set("name", "Preset "+tt.preset)
		form.Set("team", team)
		form.Set("preset", tt.preset)
		r := c.post("/envs/tt02/integrations", form)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d", tt.preset, r.status)
		}
		var checked []string
		r.doc.Find(`input[name="scopes"]:checked`).Each(func(_ int, s *goquery.Selection) {
			v, _ := s.Attr("value")
			checked = append(checked, v)
		})
		slices.Sort(checked)
		if strings.Join(checked, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s checked %v, want %v", tt.preset, checked, tt.want)
		}
	}
}
