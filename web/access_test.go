package web_test

import (
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/audit"
	"portal/internal/clients"
	"portal/internal/maskinporten"
	"portal/internal/store"
)

// accessApp is a simulated portal with an administrator, a team "Payments" with a member
// (dev) and a viewer (watcher), the first sync done, and a browser signed in for each.
type accessApp struct {
	*app
	team                string
	admin, dev, watcher *client
}

func newAccessApp(t *testing.T) *accessApp {
	t.Helper()
	a := newSimApp(t)
	a.addUser("admin@example.no", "admin")
	team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Payments", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ email, role string }{{"dev@example.no", "member"}, {"watcher@example.no", "viewer"}} {
		a.addUser(m.email, "member")
		if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), team.ID, m.email, m.role, metaFor()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.clients.Sync(t.Context(), "tt02"); err != nil {
		t.Fatal(err)
	}
	aa := &accessApp{app: a, team: itoa(team.ID), admin: a.client(), dev: a.client(), watcher: a.client()}
	aa.admin.login("admin@example.no")
	aa.dev.login("dev@example.no")
	aa.watcher.login("watcher@example.no")
	return aa
}

func (a *accessApp) upstream(env string) clients.Upstream {
	for _, e := range a.clients.Envs() {
		if e.Name == env {
			return e.Upstream
		}
	}
	a.t.Fatalf("no environment %s", env)
	return nil
}

// upstreamByName finds the clients named name in Digdir (the simulator).
func (a *accessApp) upstreamByName(env, name string) []maskinporten.Registration {
	a.t.Helper()
	list, err := a.upstream(env).ListClients(a.t.Context(), true)
	if err != nil {
		a.t.Fatal(err)
	}
	return slices.DeleteFunc(list, func(r maskinporten.Registration) bool { return r.ClientName != name })
}

func (a *accessApp) adminClientID(env string) string {
	a.t.Helper()
	cred, err := a.sim.AdminCredentials(env)
	if err != nil {
		a.t.Fatal(err)
	}
	return cred.ClientID
}

// createThroughForm posts the create form as c would, with these scopes.
func (a *accessApp) createThroughForm(c *client, name string, scopes ...string) page {
	a.t.Helper()
	form := newForm(a.t.(*testing.T), c)
	form.Set("name", name)
	form.Set("description", "Made in an access test")
	form.Set("team", a.team)
	form["scopes"] = scopes
	return c.post("/envs/tt02/integrations", form)
}

// editThroughForm opens the edit form, changes the name, keeps the scopes the form shows
// checked plus add, and confirms.
func editThroughForm(t *testing.T, c *client, path, name string, add ...string) page {
	t.Helper()
	p := c.get(path + "/edit")
	if p.status != http.StatusOK {
		return p
	}
	form := url.Values{}
	p.doc.Find(`form[data-testid="integration-form"] input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		v, _ := s.Attr("value")
		form.Set(n, v)
	})
	p.doc.Find(`input[name="scopes"]:checked`).Each(func(_ int, s *goquery.Selection) {
		v, _ := s.Attr("value")
		form.Add("scopes", v)
	})
	form["scopes"] = append(form["scopes"], add...)
	form.Set("name", name)
	form.Set("description", "Made in an access test")
	if v, ok := p.doc.Find(`select[name="team"] option[selected]`).Attr("value"); ok {
		form.Set("team", v)
	}
	form.Set("confirm", "1")
	return c.post(path+"/edit", form)
}

func offered(p page, scope string) bool {
	return p.doc.Find(`input[name="scopes"][value="`+scope+`"]`).Length() > 0
}

func auditActions(t *testing.T, a *app, env, clientID string) []string {
	t.Helper()
	events, err := audit.NewLog(a.db, nil).ForTarget(t.Context(), env, clientID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		out = append(out, ev.Action)
	}
	return out
}

// TestPrivilegedScopesNeedAnAdministrator reproduces the attack of issue 19 (a team member
// creating a client with Digdir's self-service admin scopes through the create form) and
// checks every way of giving a client privileged scopes: create, edit and copy.
func TestPrivilegedScopesNeedAnAdministrator(t *testing.T) {
	a := newAccessApp(t)
	const dcr = "idporten:dcr.write"
	altinn := clients.AltinnServiceOwnerScopes[0]

	// The admin gives the team a client with a privileged scope; the member's own has none.
	if p := a.createThroughForm(a.admin, "Granted by admin", altinn, dcr); p.status != http.StatusSeeOther {
		t.Fatalf("an administrator creating with %s: %d %.300s", dcr, p.status, text(p, "main"))
	}
	granted := a.upstreamByName("tt02", "Granted by admin")
	if len(granted) != 1 || !slices.Contains(granted[0].Scopes, dcr) {
		t.Fatalf("the administrator's client upstream: %+v", granted)
	}
	grantedPath := "/envs/tt02/integrations/" + granted[0].ClientID
	if p := a.createThroughForm(a.dev, "Plain", altinn); p.status != http.StatusSeeOther {
		t.Fatalf("a member creating a plain client: %d", p.status)
	}
	plainPath := "/envs/tt02/integrations/" + a.upstreamByName("tt02", "Plain")[0].ClientID

	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"the member's create form offers no privileged scope; the administrator's does", func(t *testing.T) {
			if p := a.dev.get("/envs/tt02/integrations/new"); offered(p, dcr) || offered(p, "idporten:dcr.read") || !offered(p, altinn) {
				t.Errorf("member's form: offers %s: %v, %s: %v", dcr, offered(p, dcr), altinn, offered(p, altinn))
			}
			if p := a.admin.get("/envs/tt02/integrations/new"); !offered(p, dcr) {
				t.Error("the administrator's form does not offer " + dcr)
			}
		}},
		{"a member creating with idporten:dcr.write is refused, whatever the form says", func(t *testing.T) {
			p := a.createThroughForm(a.dev, "Backdoor", altinn, dcr)
			if p.status != http.StatusForbidden || !strings.Contains(text(p, "main"), "privileged") {
				t.Errorf("status %d: %.300s", p.status, text(p, "main"))
			}
			if got := a.upstreamByName("tt02", "Backdoor"); len(got) != 0 {
				t.Errorf("Digdir has the member's client: %+v", got)
			}
		}},
		{"a member's edit cannot add a privileged scope", func(t *testing.T) {
			p := editThroughForm(t, a.dev, plainPath, "Plain", "idporten:dcr.modify")
			if p.status != http.StatusForbidden {
				t.Errorf("status %d: %.300s", p.status, text(p, "main"))
			}
			if got := a.upstreamByName("tt02", "Plain"); len(got) != 1 || slices.Contains(got[0].Scopes, "idporten:dcr.modify") {
				t.Errorf("upstream after the refused edit: %+v", got)
			}
		}},
		{"a member's edit of other fields keeps the privileged scopes an administrator gave", func(t *testing.T) {
			p := a.dev.get(grantedPath + "/edit")
			if offered(p, dcr) || !strings.Contains(text(p, `[data-testid="kept-privileged"]`), dcr) {
				t.Errorf("the member's edit form: offers %s %v; kept note %q", dcr, offered(p, dcr), text(p, `[data-testid="kept-privileged"]`))
			}
			if p := editThroughForm(t, a.dev, grantedPath, "Granted, renamed"); p.status != http.StatusSeeOther {
				t.Fatalf("edit: %d %.300s", p.status, text(p, "main"))
			}
			got := a.upstreamByName("tt02", "Granted, renamed")
			if len(got) != 1 || !slices.Contains(got[0].Scopes, dcr) || !slices.Contains(got[0].Scopes, altinn) {
				t.Errorf("upstream after the member's edit: %+v", got)
			}
		}},
		{"a member cannot copy a client with privileged scopes to production", func(t *testing.T) {
			if p := a.dev.get(grantedPath + "/copy"); p.status != http.StatusForbidden {
				t.Errorf("copy page: %d", p.status)
			}
			p := a.dev.post(grantedPath+"/copy", url.Values{"key": {clients.NewKey()}})
			if p.status != http.StatusForbidden {
				t.Errorf("copy: %d %.300s", p.status, text(p, "main"))
			}
			if got := a.upstreamByName("prod", "Granted, renamed"); len(got) != 0 {
				t.Errorf("production has the copy: %+v", got)
			}
		}},
		{"the sync finds the client, audits it once, and flags it on the list and the environments page", func(t *testing.T) {
			for range 2 {
				if _, err := a.clients.Sync(t.Context(), "tt02"); err != nil {
					t.Fatal(err)
				}
			}
			var found int
			for _, act := range auditActions(t, a.app, "tt02", granted[0].ClientID) {
				if act == "integration.privileged_scopes" {
					found++
				}
			}
			if found != 1 {
				t.Errorf("%d privileged-scope audit events after two syncs, want 1", found)
			}
			for who, c := range map[string]*client{"admin": a.admin, "member": a.dev} {
				p := c.get("/envs/tt02/integrations?privileged=1")
				rows := p.doc.Find(`[data-testid="integration-row"]`)
				if rows.Length() != 1 || rows.Find(`[data-testid="privileged-badge"]`).Length() != 1 ||
					!strings.Contains(rows.Text(), granted[0].ClientID) {
					t.Errorf("%s: the privileged filter shows %d rows: %.300s", who, rows.Length(), rows.Text())
				}
			}
			p := a.admin.get("/admin/environments")
			if f := p.doc.Find(`[data-testid="admin-env-tt02"] [data-testid="privileged-finding"]`); f.Length() != 1 ||
				!strings.Contains(f.Text(), granted[0].ClientID) || !strings.Contains(f.Text(), dcr) {
				t.Errorf("environments page findings: %q", f.Text())
			}
			if strings.Contains(p.doc.Find(`[data-testid="privileged-findings"]`).Text(), a.adminClientID("tt02")) {
				t.Error("the portal's own admin client is listed as a finding")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.check)
	}
}

// TestPortalAdminClientIsReadOnly: the client of each environment's admin file is the portal's
// own; nobody changes it through the portal, and its page says what it is.
func TestPortalAdminClientIsReadOnly(t *testing.T) {
	a := newAccessApp(t)
	id := a.adminClientID("tt02")
	path := "/envs/tt02/integrations/" + id

	p := a.admin.get(path)
	if p.status != http.StatusOK || !strings.Contains(text(p, `[data-testid="portal-client"]`), "business certificate") {
		t.Fatalf("page: %d, portal-client note %q", p.status, text(p, `[data-testid="portal-client"]`))
	}
	for _, sel := range []string{"edit", "deactivate", "try-it", "copy-to-prod"} {
		if p.doc.Find(`[data-testid="`+sel+`"]`).Length() > 0 {
			t.Errorf("the page offers %s", sel)
		}
	}
	pub := simKeyPool[1].Public()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	publicPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	version := func() string {
		set, err := a.upstream("tt02").GetJWKS(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return strings.Join(kids, ",")
	}
	keysBefore := version()
	cases := []struct {
		name string
		path string
		form url.Values
	}{
		{"assign to a team", "/edit", url.Values{"name": {"x"}, "description": {"x"}, "team": {a.team}, "confirm": {"1"}, "key": {clients.NewKey()}}},
		{"upload a key", "/keys/upload", url.Values{"key_text": {publicPEM}, "upload_kid": {"lockout"}, "key": {clients.NewKey()}}},
		{"generate a key", "/keys/generate", url.Values{"kid": {"lockout-2"}, "bits": {"2048"}, "alg": {"RS256"}, "custody": {"handed_out"}, "key": {clients.NewKey()}}},
		{"deactivate", "/deactivate", url.Values{"confirm_name": {"x"}, "key": {clients.NewKey()}}},
		{"copy to production", "/copy", url.Values{"key": {clients.NewKey()}}},
		{"start a rotation", "/keys/rotate", url.Values{"kid": {"x"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The key set's version, as a page would carry it.
			kp := a.admin.get(path + "/keys")
			if v, ok := kp.doc.Find(`input[name="version"]`).Attr("value"); ok {
				tc.form.Set("version", v)
			}
			p := a.admin.post(path+tc.path, tc.form)
			if p.status != http.StatusForbidden || !strings.Contains(text(p, "main"), "portal's own admin client") {
				t.Errorf("status %d: %.300s", p.status, text(p, "main"))
			}
		})
	}
	if got := version(); got != keysBefore {
		t.Errorf("the admin client's keys changed from %q to %q", keysBefore, got)
	}
	it, err := a.db.Integration(t.Context(), "tt02", id)
	if err != nil || it.TeamID != 0 {
		t.Errorf("the admin client's team: %d (%v)", it.TeamID, err)
	}

	// An earlier version let administrators give it to a team: the next sync takes it back.
	if err := a.db.Tx(t.Context(), func(tx *sql.Tx) error {
		return store.SetIntegrationTeam(t.Context(), tx, "tt02", id, mustID(t, a.team))
	}); err != nil {
		t.Fatal(err)
	}
	if p := a.dev.post(path+"/keys/upload", url.Values{"key_text": {publicPEM}, "upload_kid": {"lockout"}, "key": {clients.NewKey()}}); p.status != http.StatusForbidden {
		t.Errorf("a member of the team it was given to adds a key: %d %.300s", p.status, text(p, "main"))
	}
	if _, err := a.clients.Sync(t.Context(), "tt02"); err != nil {
		t.Fatal(err)
	}
	if it, err := a.db.Integration(t.Context(), "tt02", id); err != nil || it.TeamID != 0 {
		t.Errorf("after the sync the admin client's team is %d (%v)", it.TeamID, err)
	}
	if got := text(a.admin.get(path), `[data-testid="owning-team"]`); !strings.Contains(got, "portal's own admin client") {
		t.Errorf("owning team shown as %q", got)
	}
	if got := version(); got != keysBefore {
		t.Errorf("the admin client's keys changed from %q to %q", keysBefore, got)
	}
}

// TestAdministratorActsOnUnownedIntegration: a client made outside the portal has no team;
// an administrator can change it (the change is recorded as theirs, without a team).
func TestAdministratorActsOnUnownedIntegration(t *testing.T) {
	a := newAccessApp(t)
	up := a.upstream("tt02")
	var ids []string
	for _, name := range []string{"Made elsewhere 1", "Made elsewhere 2"} {
		reg, err := up.CreateClient(t.Context(), maskinporten.Registration{IntegrationType: maskinporten.IntegrationMaskinporten,
			ApplicationType: maskinporten.ApplicationWeb, TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT,
			GrantTypes: []string{maskinporten.GrantType}, ClientName: name, Description: "Not the portal's", Scopes: []string{clients.AltinnServiceOwnerScopes[0]}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, reg.ClientID)
	}
	if _, err := a.clients.Sync(t.Context(), "tt02"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		do    func(t *testing.T, path string) page
		check func(t *testing.T, id string)
	}{
		{"deactivate", func(t *testing.T, path string) page {
			return a.admin.post(path+"/deactivate", url.Values{"confirm_name": {"Made elsewhere 1"}, "key": {clients.NewKey()}})
		}, func(t *testing.T, id string) {
			if reg, err := up.GetClient(t.Context(), id); err == nil && reg.Active {
				t.Error("still active upstream")
			}
		}},
		{"add a key", func(t *testing.T, path string) page {
			p, form := keysPage(t, a.admin, path+"/keys")
			_ = p
			der, _ := x509.MarshalPKIXPublicKey(simKeyPool[2].Public())
			form.Set("key_text", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
			form.Set("upload_kid", "admin-added")
			return a.admin.post(path+"/keys/upload", form)
		}, func(t *testing.T, id string) {
			set, err := up.GetJWKS(t.Context(), id)
			if err != nil || len(set.Keys) != 1 || set.Keys[0].Kid != "admin-added" {
				t.Errorf("keys upstream: %+v (%v)", set, err)
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.do(t, "/envs/tt02/integrations/"+ids[i])
			if p.status != http.StatusSeeOther {
				t.Fatalf("status %d: %.300s", p.status, text(p, "main"))
			}
			tc.check(t, ids[i])
		})
	}
}

// TestSyncNowNeedsATeamRoleAndWaits: "Sync now" needs a team role (or an administrator), runs
// at most once per interval per environment whoever presses it, and tells non-administrators
// their teams' figures, never the organisation's.
func TestSyncNowNeedsATeamRoleAndWaits(t *testing.T) {
	a := newAccessApp(t)
	if _, err := a.clients.Create(t.Context(), adminPrincipal(t, a.app), metaFor(), "tt02", clients.Draft{Name: "Ours",
		Description: "The team's only one", TeamID: mustID(t, a.team), Scopes: clients.AltinnServiceOwnerScopes, Key: clients.NewKey()}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Someone else's 1", "Someone else's 2"} {
		if _, err := a.upstream("tt02").CreateClient(t.Context(), maskinporten.Registration{IntegrationType: maskinporten.IntegrationMaskinporten,
			ApplicationType: maskinporten.ApplicationWeb, TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT,
			GrantTypes: []string{maskinporten.GrantType}, ClientName: name, Description: "Not the team's"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.clients.Sync(t.Context(), "tt02"); err != nil {
		t.Fatal(err)
	}
	org, err := a.upstream("tt02").ListClients(t.Context(), false)
	if err != nil || len(org) < 3 {
		t.Fatalf("the simulated organisation has %d clients (%v): the test needs more than the team's", len(org), err)
	}
	const sync = "/envs/tt02/integrations/sync"
	finished := func() string {
		st, err := a.db.SyncStateOf(t.Context(), "tt02")
		if err != nil {
			t.Fatal(err)
		}
		return st.FinishedAt.String()
	}
	flash := func(c *client) string { return text(c.get("/envs/tt02/integrations"), `[data-testid="flash"]`) }

	steps := []struct {
		name   string
		c      *client
		want   int
		flash  string // a part of the flash message, "" for none
		synced bool
	}{
		{"a viewer may not", a.watcher, http.StatusForbidden, "", false},
		{"a member may, and hears of the team's integrations only", a.dev, http.StatusSeeOther, "Your teams have 1 active integration here.", true},
		{"a second press within the interval runs no sync", a.dev, http.StatusSeeOther, "the last sync ran at", false},
		{"the interval is shared by everyone", a.admin, http.StatusSeeOther, "the last sync ran at", false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := finished()
			p := st.c.post(sync, nil)
			if p.status != st.want {
				t.Fatalf("status %d: %.300s", p.status, text(p, "main"))
			}
			if st.flash != "" {
				if got := flash(st.c); !strings.Contains(got, st.flash) || strings.Contains(got, "Synced "+itoa(int64(len(org)))) {
					t.Errorf("flash %q, want it to say %q", got, st.flash)
				}
			}
			if ran := finished() != before; ran != st.synced {
				t.Errorf("a sync ran: %v, want %v", ran, st.synced)
			}
		})
	}
	if p := a.watcher.get("/envs/tt02/integrations"); p.doc.Find(`form[action="`+sync+`"]`).Length() != 0 {
		t.Error("the viewer is offered Sync now")
	}

	// The environment page counts the person's teams' integrations; administrators see all.
	if got := text(a.dev.get("/envs/tt02"), `[data-testid="env-integrations"]`); !strings.HasPrefix(got, "1 active") || !strings.Contains(got, "your teams") {
		t.Errorf("the member's environment page says %q", got)
	}
	if got := text(a.admin.get("/envs/tt02"), `[data-testid="env-integrations"]`); !strings.HasPrefix(got, itoa(int64(len(org)))+" active") {
		t.Errorf("the administrator's environment page says %q, want %d active", got, len(org))
	}
}
