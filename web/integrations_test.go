package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/sim"
)

// signedInTeamMember is a simulator-backed app with a member of team "Payments" signed in.
func signedInTeamMember(t *testing.T) (*app, *client, string) {
	t.Helper()
	a := newSimApp(t)
	a.addUser("admin@example.no", "admin")
	team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Payments", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	a.addUser("dev@example.no", "member")
	if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), team.ID, "dev@example.no", "member", metaFor()); err != nil {
		t.Fatal(err)
	}
	c := a.client()
	c.login("dev@example.no")
	return a, c, itoa(team.ID)
}

// newForm opens the create form and returns its fields as the browser would send them.
func newForm(t *testing.T, c *client) url.Values {
	t.Helper()
	p := c.get("/envs/tt02/integrations/new")
	if p.status != http.StatusOK {
		t.Fatalf("new form: %d %s", p.status, p.body)
	}
	key, _ := p.doc.Find(`input[name="key"]`).Attr("value")
	csrf, _ := p.doc.Find(`input[name="_csrf"]`).Attr("value")
	if key == "" || csrf == "" {
		t.Fatal("the form lacks its idempotency key or CSRF token")
	}
	return url.Values{"_csrf": {csrf}, "key": {key}}
}

func TestCreateIntegrationThroughTheForm(t *testing.T) {
	a, c, team := signedInTeamMember(t)

	// The preset button fills in the Altinn service-owner scopes without JavaScript.
	form := newForm(t, c)
	form.Set("name", "Skjema-leser")
	form.Set("description", "Reads instances of our apps")
	form.Set("team", team)
	form.Set("preset", "instances")
	p := c.post("/envs/tt02/integrations", form)
	if p.status != http.StatusOK {
		t.Fatalf("preset: %d", p.status)
	}
	var checked []string
	p.doc.Find(`input[name="scopes"]:checked`).Each(func(_ int, s *goquery.Selection) {
		v, _ := s.Attr("value")
		checked = append(checked, v)
	})
	if strings.Join(checked, " ") != "altinn:serviceowner/instances.read altinn:serviceowner/instances.write" {
		t.Fatalf("preset checked %v", checked)
	}
	if v, _ := p.doc.Find(`#name`).Attr("value"); v != "Skjema-leser" {
		t.Fatalf("the preset lost the name: %q", v)
	}

	// Invalid input: 422, messages beside the fields, what was typed kept.
	bad := newForm(t, c)
	bad.Set("name", strings.Repeat("x", 101))
	bad.Set("team", team)
	bad.Add("scopes", "krr:global/kontaktinformasjon.read")
	p = c.post("/envs/tt02/integrations", bad)
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid: %d", p.status)
	}
	for _, id := range []string{"name-error", "description-error", "scopes-error"} {
		if text(p, `[data-testid="`+id+`"]`) == "" {
			t.Errorf("no message for %s", id)
		}
	}
	if v, _ := p.doc.Find(`#name`).Attr("value"); v != strings.Repeat("x", 101) {
		t.Error("the invalid form lost the name")
	}

	// Create, then send the same form again (a double submit): one client.
	form.Del("preset")
	form["scopes"] = checked
	p = c.post("/envs/tt02/integrations", form)
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, p.body)
	}
	loc := p.header.Get("Location")
	again := c.post("/envs/tt02/integrations", form)
	if again.status != http.StatusSeeOther || again.header.Get("Location") != loc {
		t.Fatalf("double submit: %d to %q, first went to %q", again.status, again.header.Get("Location"), loc)
	}
	list := c.get("/envs/tt02/integrations?q=skjema")
	if n := list.doc.Find(`[data-testid="integration-row"]`).Length(); n != 1 {
		t.Fatalf("search found %d rows", n)
	}

	// The integration page shows the client, its scopes, an example grant and the audit event.
	p = c.get(loc)
	if p.status != http.StatusOK {
		t.Fatalf("detail: %d", p.status)
	}
	id := strings.TrimPrefix(loc, "/envs/tt02/integrations/")
	if v, _ := p.doc.Find(`[data-testid="client-id"]`).Attr("value"); v != id {
		t.Fatalf("client id %q, want %q", v, id)
	}
	claims := text(p, `[data-testid="example-claims"]`)
	if !strings.Contains(claims, `"iss": "`+id+`"`) || !strings.Contains(claims, "altinn:serviceowner/instances.read") {
		t.Fatalf("example claims: %s", claims)
	}
	if !strings.Contains(text(p, `[data-testid="integration-events"]`), "integration.create") {
		t.Fatal("no create event on the page")
	}
	raw := text(p, `[data-testid="raw-json"]`)
	if !strings.Contains(raw, `"integration_type": "maskinporten"`) || strings.Contains(raw, "client_type") {
		t.Fatalf("raw JSON: %s", raw)
	}
	_ = a
}

func TestIntegrationListSearchFragmentAndFilters(t *testing.T) {
	a, c, team := signedInTeamMember(t)
	for _, n := range []string{"Alpha reader", "Beta writer", "Gamma"} {
		f := newForm(t, c)
		f.Set("name", n)
		f.Set("description", "About "+n)
		f.Set("team", team)
		if n != "Gamma" {
			f.Add("scopes", "altinn:serviceowner/instances.read")
		}
		if p := c.post("/envs/tt02/integrations", f); p.status != http.StatusSeeOther {
			t.Fatalf("create %s: %d", n, p.status)
		}
	}
	// htmx asks for the results only.
	req, _ := http.NewRequest(http.MethodGet, c.base+"/envs/tt02/integrations?q=beta", nil)
	req.Header.Set("HX-Request", "true")
	p := c.do(req)
	if p.status != http.StatusOK || strings.Contains(p.body, "<html") || p.doc.Find(`[data-testid="integration-row"]`).Length() != 1 {
		t.Fatalf("fragment: %d %s", p.status, p.body)
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", 3},
		{"q=reader", 1},
		{"scope=altinn:serviceowner/instances.read", 2},
		{"nokeys=1", 3},
		{"expiring=1", 0},
		{"status=inactive", 0},
		{"team=" + team, 3},
		{"unowned=1", 3}, // ignored for non-admins, who never see unowned integrations
		{"sort=-name&page=1", 3},
		{"page=abc&sort=%00&status=%ff", 3},
	} {
		p := c.get("/envs/tt02/integrations?" + tc.query)
		if p.status != http.StatusOK {
			t.Errorf("%s: status %d", tc.query, p.status)
			continue
		}
		if n := p.doc.Find(`[data-testid="integration-row"]`).Length(); n != tc.want {
			t.Errorf("%s: %d rows, want %d", tc.query, n, tc.want)
		}
	}
	// The admin sees the simulator's own admin client as unowned.
	ac := a.client()
	ac.login("admin@example.no")
	if n := ac.get("/envs/tt02/integrations?unowned=1").doc.Find(`[data-testid="integration-row"]`).Length(); n != 1 {
		t.Errorf("admin sees %d unowned", n)
	}
}

func TestEditPreviewConfirmAndDeactivate(t *testing.T) {
	a, c, team := signedInTeamMember(t)
	f := newForm(t, c)
	f.Set("name", "Editable")
	f.Set("description", "Before")
	f.Set("team", team)
	f["scopes"] = []string{"altinn:serviceowner/instances.read"}
	loc := c.post("/envs/tt02/integrations", f).header.Get("Location")

	edit := c.get(loc + "/edit")
	if edit.status != http.StatusOK {
		t.Fatalf("edit form: %d", edit.status)
	}
	form := url.Values{}
	edit.doc.Find(`[data-testid="integration-form"] input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		v, _ := s.Attr("value")
		form.Set(n, v)
	})
	form.Set("name", "Editable")
	form.Set("description", "After")
	form.Set("team", team)
	form["scopes"] = []string{"altinn:serviceowner/instances.read"}

	// The first post only shows what would change.
	p := c.post(loc+"/edit", form)
	if p.status != http.StatusOK || !strings.Contains(text(p, `[data-testid="planned-changes"]`), "After") {
		t.Fatalf("preview: %d %s", p.status, p.body)
	}
	if d := c.get(loc); text(d, `[data-testid="description"]`) != "Before" {
		t.Fatal("the preview changed the integration")
	}
	confirm := url.Values{}
	p.doc.Find(`[data-testid="confirm-form"] input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		v, _ := s.Attr("value")
		confirm.Add(n, v)
	})
	if p = c.post(loc+"/edit", confirm); p.status != http.StatusSeeOther {
		t.Fatalf("confirm: %d %s", p.status, p.body)
	}
	if d := c.get(loc); text(d, `[data-testid="description"]`) != "After" {
		t.Fatalf("description not changed: %q", text(d, `[data-testid="description"]`))
	}

	// Deactivation asks for the name; a wrong one changes nothing.
	dp := c.get(loc + "/deactivate")
	key, _ := dp.doc.Find(`input[name="key"]`).Attr("value")
	if p := c.post(loc+"/deactivate", url.Values{"key": {key}, "confirm_name": {"editable"}}); p.status != http.StatusUnprocessableEntity ||
		text(p, `[data-testid="confirm_name-error"]`) == "" {
		t.Fatalf("wrong name: %d", p.status)
	}
	if p := c.post(loc+"/deactivate", url.Values{"key": {key}, "confirm_name": {"Editable"}}); p.status != http.StatusSeeOther {
		t.Fatalf("deactivate: %d %s", p.status, p.body)
	}
	if n := c.get("/envs/tt02/integrations?status=inactive").doc.Find(`[data-testid="integration-row"]`).Length(); n != 1 {
		t.Fatalf("inactive list has %d", n)
	}
	if n := c.get("/envs/tt02/integrations").doc.Find(`[data-testid="integration-row"]`).Length(); n != 0 {
		t.Fatalf("active list still has %d", n)
	}
	// The banner says who deactivated it and where; the page offers only what still fits.
	d := c.get(loc)
	if banner := text(d, `[data-testid="inactive"]`); !strings.Contains(banner, "deactivated in the portal by User dev@example.no on "+time.Now().UTC().Format("2 Jan 2006")) ||
		strings.Contains(banner, "Digdir deactivated") {
		t.Errorf("inactive banner: %q", banner)
	}
	if label := text(d, `[data-testid="edit"]`); label != "Change owning team" {
		t.Errorf("an inactive integration offers %q", label)
	}
	for _, sel := range []string{`[data-testid="copy-to-prod"]`, `[data-testid="deactivate"]`, `[data-testid="try-it"]`} {
		if d.doc.Find(sel).Length() != 0 {
			t.Errorf("an inactive integration offers %s", sel)
		}
	}
	_ = a
}

func TestUpstreamFailureKeepsTheForm(t *testing.T) {
	a, c, team := signedInTeamMember(t)
	f := newForm(t, c) // reads the scope catalogue while the API still answers
	f.Set("name", "Unlucky")
	f.Set("description", "Created while Digdir is down")
	f.Set("team", team)
	if err := a.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p := c.post("/envs/tt02/integrations", f)
	if p.status != http.StatusBadGateway {
		t.Fatalf("status %d: %s", p.status, p.body)
	}
	msg := text(p, `[data-testid="form-error"]`)
	if !strings.Contains(msg, "tt02") || !strings.Contains(msg, "503") {
		t.Fatalf("message %q", msg)
	}
	if v, _ := p.doc.Find(`#name`).Attr("value"); v != "Unlucky" {
		t.Fatal("the form lost what was typed")
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("the request hung")
	}
	// The list still answers from the mirror, with the sync problem shown.
	if p := c.get("/envs/tt02/integrations"); p.status != http.StatusOK {
		t.Fatalf("list while down: %d", p.status)
	}
}
