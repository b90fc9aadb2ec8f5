package web_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/store"
)

// An administrator who has just set the portal up is led from the dashboard to creating a
// team, becomes its owner, and can then create an integration; someone in no team learns who
// the administrators are instead of meeting a 403.
func TestNoTeamLeadsSomewhere(t *testing.T) {
	t.Parallel()
	a := newSimApp(t)
	a.addUser("admin@example.no", "admin")
	a.addUser("loner@example.no", "member")
	admin := a.client()
	admin.login("admin@example.no")

	p := admin.get("/")
	if href, _ := p.doc.Find(`[data-testid="no-team-create"]`).Attr("href"); href != "/admin/teams" {
		t.Fatalf("the admin's no-team hint links to %q: %s", href, text(p, `[data-testid="no-team-hint"]`))
	}
	p = admin.get("/envs/tt02/integrations/new")
	if href, _ := p.doc.Find(`[data-testid="no-team-create"]`).Attr("href"); p.status != http.StatusOK || href != "/admin/teams" {
		t.Fatalf("new integration without a team: status %d, link %q", p.status, href)
	}
	p = admin.get("/admin/teams")
	if _, on := p.doc.Find(`form[data-testid="new-team-form"] input[name="owner"]`).Attr("checked"); !on {
		t.Fatal(`"Make me an owner" is not offered ticked`)
	}
	if p := admin.post("/admin/teams", url.Values{"name": {"Payments"}, "owner": {"1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create team: status %d", p.status)
	}
	if p := admin.get("/"); !strings.Contains(p.body, "Payments") || strings.Contains(p.body, `data-testid="no-team-hint"`) {
		t.Fatalf("the dashboard does not show the admin in the new team: %s", text(p, "main"))
	}
	if p := admin.get("/envs/tt02/integrations/new"); p.status != http.StatusOK || p.doc.Find(`input[name="key"]`).Length() != 1 {
		t.Fatalf("new integration as the team's owner: status %d", p.status)
	}
	// Unticked, the creator stays out of the team.
	if p := admin.post("/admin/teams", url.Values{"name": {"Archive"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create team: status %d", p.status)
	}
	if p := admin.get("/"); strings.Contains(text(p, `section[aria-labelledby="teams-title"]`), "Archive") {
		t.Fatal("the creator joined a team without asking")
	}

	loner := a.client()
	loner.login("loner@example.no")
	for _, path := range []string{"/", "/envs/tt02/integrations/new"} {
		p := loner.get(path)
		hint := text(p, `[data-testid="no-team-hint"]`)
		if p.status != http.StatusOK || !strings.Contains(hint, "User admin@example.no (admin@example.no)") {
			t.Errorf("%s for someone in no team: status %d, hint %q", path, p.status, hint)
		}
		if p.doc.Find(`[data-testid="no-team-create"]`).Length() != 0 {
			t.Errorf("%s offers a non-admin the team form", path)
		}
	}
}

// A viewer's checklist offers no link that answers 403, and names who can do each step.
func TestChecklistOffersOnlyWhatThePersonMay(t *testing.T) {
	t.Parallel()
	a := newSimApp(t)
	a.addUser("admin@example.no", "admin")
	team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Payments", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	for email, role := range map[string]string{"olga@example.no": "owner", "mats@example.no": "member", "vera@example.no": "viewer"} {
		a.addUser(email, "member")
		if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), team.ID, email, role, metaFor()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		email      string
		wantCreate bool   // "Create it" offered
		wantInvite bool   // "Invite people" offered
		whoCan     string // named on the integration step when not offered
	}{
		{"vera@example.no", false, false, "User mats@example.no (mats@example.no)"},
		{"mats@example.no", true, false, ""},
		{"olga@example.no", true, true, ""},
	} {
		t.Run(tc.email, func(t *testing.T) {
			c := a.client()
			c.login(tc.email)
			p := c.get("/onboarding")
			if p.status != http.StatusOK {
				t.Fatalf("status %d", p.status)
			}
			create := p.doc.Find(`[data-testid="onboarding-integration"] a`).Length() == 1
			if create != tc.wantCreate {
				t.Errorf("create offered %v, want %v", create, tc.wantCreate)
			}
			who := text(p, `[data-testid="onboarding-integration"] [data-testid="onboarding-who-can"]`)
			if !strings.Contains(who, tc.whoCan) || (tc.whoCan == "") != (who == "") {
				t.Errorf("who can create: %q, want %q", who, tc.whoCan)
			}
			if invite := p.doc.Find(`[data-testid="onboarding-members"] a`).Length() == 1; invite && !tc.wantInvite {
				t.Error("invitations offered to someone who may not invite")
			}
			// Every link the checklist offers leads to a page the person may use.
			for _, n := range p.doc.Find(`[data-testid="onboarding"] a`).Nodes {
				for _, at := range n.Attr {
					if at.Key == "href" {
						if q := c.get(at.Val); q.status != http.StatusOK {
							t.Errorf("%s: link %s answers %d", tc.email, at.Val, q.status)
						}
					}
				}
			}
		})
	}
}

// Accepting an invitation opens the team's "Getting started" checklist.
func TestInvitationLandsOnGettingStarted(t *testing.T) {
	t.Parallel()
	a := newSimApp(t)
	a.addUser("admin@example.no", "admin")
	team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Payments", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	admin := a.client()
	admin.login("admin@example.no")
	link := inviteThroughPage(t, admin, team, "nora@example.no", "member")
	nora := a.client()
	nora.get(link.RequestURI())
	p := nora.post("/invite", url.Values{"token": {link.Query().Get("token")}, "name": {"Nora"},
		"password": {"nora's long passphrase"}, "confirm": {"nora's long passphrase"}})
	want := "/onboarding?team=" + itoa(team.ID)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != want {
		t.Fatalf("accept: status %d location %q, want %q", p.status, p.header.Get("Location"), want)
	}
	if p := nora.get(want); p.status != http.StatusOK || p.doc.Find(`[data-testid="onboarding"]`).Length() != 1 {
		t.Fatalf("getting started: status %d", p.status)
	}
}

// A signed-out person sent to sign in is told why and goes back where they were going; a
// next that leaves the site goes home instead.
func TestSignInToContinue(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser("dev@example.no", "member")
	c := a.client()
	p := c.get("/account?tab=1")
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("signed out: status %d location %q", p.status, loc)
	}
	p = c.get(loc)
	if !strings.Contains(text(p, `[data-testid="flash"]`), "Sign in to continue") {
		t.Fatalf("no word why: %q", text(p, `[data-testid="flash"]`))
	}
	if p := a.client().get("/login"); strings.Contains(p.body, "Sign in to continue") {
		t.Fatal(`"Sign in to continue" on a sign-in nobody was sent to`)
	}
	for _, tc := range []struct{ next, want string }{
		{"/account?tab=1", "/account?tab=1"},
		{"//evil.example", "/"},
		{"https://evil.example", "/"},
		{`/\evil.example`, "/"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			c := a.client()
			p := c.get("/login?next=" + url.QueryEscape(tc.next))
			next, _ := p.doc.Find(`form[data-testid="login-form"] input[name="next"]`).Attr("value")
			p = c.post("/login", url.Values{"email": {"dev@example.no"}, "password": {"correct horse battery"}, "next": {next}})
			if got := p.header.Get("Location"); p.status != http.StatusSeeOther || got != tc.want {
				t.Fatalf("status %d location %q, want %q", p.status, got, tc.want)
			}
			// Sent directly, too.
			p = a.client().post("/login", url.Values{"email": {"dev@example.no"}, "password": {"correct horse battery"}, "next": {tc.next}})
			if got := p.header.Get("Location"); got != tc.want {
				t.Fatalf("posted next: location %q, want %q", got, tc.want)
			}
		})
	}
}

// The filtered list answers htmx with its results only, a history restore ("back" after a
// cache miss) with the whole page, and says that its answer varies by HX-Request.
func TestListAnswersHistoryRestoreWithWholePage(t *testing.T) {
	t.Parallel()
	_, c, _ := signedInTeamMember(t)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		whole   bool
	}{
		{"plain", nil, true},
		{"htmx", map[string]string{"HX-Request": "true"}, false},
		{"history restore", map[string]string{"HX-Request": "true", "HX-History-Restore-Request": "true"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, c.base+"/envs/tt02/integrations?q=x", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			p := c.do(req)
			if p.status != http.StatusOK {
				t.Fatalf("status %d", p.status)
			}
			if whole := strings.Contains(p.body, "<html"); whole != tc.whole {
				t.Errorf("whole page %v, want %v", whole, tc.whole)
			}
			if !strings.Contains(strings.Join(p.header.Values("Vary"), ","), "HX-Request") {
				t.Errorf("Vary %q lacks HX-Request", p.header.Values("Vary"))
			}
		})
	}
}

// An htmx request that fails gets a short readable text (htmx does not swap it; the page's
// script shows it in the layout's message region, which every page has).
func TestHTMXErrorsCarryReadableText(t *testing.T) {
	t.Parallel()
	a, c, _ := signedInTeamMember(t)
	if c.get("/").doc.Find(`#htmx-error[role="alert"]`).Length() != 1 {
		t.Fatal("the layout has no message region for htmx errors")
	}
	a.addUser("loner@example.no", "member")
	loner := a.client()
	loner.login("loner@example.no")
	for _, tc := range []struct {
		name   string
		c      *client
		path   string
		status int
		want   string
	}{
		{"not allowed", loner, "/admin/users", http.StatusForbidden, "administrator"},
		{"not found", c, "/envs/tt02/integrations/no-such-client", http.StatusNotFound, "no such integration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, c.base+tc.path, nil)
			req.Header.Set("HX-Request", "true")
			p := tc.c.do(req)
			if p.status != tc.status || !strings.HasPrefix(p.header.Get("Content-Type"), "text/plain") ||
				strings.Contains(p.body, "<") || !strings.Contains(strings.ToLower(p.body), tc.want) || !strings.Contains(p.body, "request id") {
				t.Fatalf("status %d, %s: %q", p.status, p.header.Get("Content-Type"), p.body)
			}
			if !strings.Contains(strings.Join(p.header.Values("Vary"), ","), "HX-Request") {
				t.Errorf("Vary %q lacks HX-Request", p.header.Values("Vary"))
			}
		})
	}
}

// A form whose first submit died with the portal before Digdir got it: the intent it left open
// is failed (and audited) by the first sync after Digdir's propagation delay, and sending the
// form again creates the integration, once.
func TestResendAfterCrashBeforeDigdirGoesThrough(t *testing.T) {
	t.Parallel()
	a, c, team := signedInTeamMember(t)
	form := newForm(t, c)
	form.Set("name", "Survivor")
	form.Set("description", "Sent before a crash")
	form.Set("team", team)
	form["scopes"] = []string{"altinn:serviceowner/instances.read"}

	// What a process that stopped right after recording the intent leaves behind.
	dev, err := a.db.UserByEmail(t.Context(), "dev@example.no")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(map[string]any{"name": "Survivor", "description": "Sent before a crash",
		"scopes": form["scopes"], "team_id": mustID(t, team)})
	err = a.db.Tx(t.Context(), func(tx *sql.Tx) error {
		_, err := store.InsertIntent(t.Context(), tx, store.Intent{Env: "tt02", IdempotencyKey: form.Get("key"), Action: "create",
			ActorID: dev.ID, TeamID: mustID(t, team), Request: string(req), CreatedAt: time.Now().Add(-10 * time.Minute)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.clients.Sync(t.Context(), "tt02"); err != nil {
		t.Fatal(err)
	}
	in, err := a.db.IntentByKey(t.Context(), "tt02", form.Get("key"))
	if err != nil || in.State != store.IntentFailed {
		t.Fatalf("the abandoned intent after a sync: %+v %v", in, err)
	}

	p := c.post("/envs/tt02/integrations", form)
	if p.status != http.StatusSeeOther {
		t.Fatalf("resend: status %d: %s", p.status, text(p, "main"))
	}
	// Once: a second resend answers as the first did, and Digdir has one such client.
	if q := c.post("/envs/tt02/integrations", form); q.status != http.StatusSeeOther || q.header.Get("Location") != p.header.Get("Location") {
		t.Fatalf("second resend: status %d location %q", q.status, q.header.Get("Location"))
	}
	if _, err := a.clients.Sync(t.Context(), "tt02"); err != nil {
		t.Fatal(err)
	}
	if n := c.get("/envs/tt02/integrations?q=Survivor").doc.Find(`[data-testid="integration-row"]`).Length(); n != 1 {
		t.Fatalf("%d integrations named Survivor, want 1", n)
	}
	var abandoned, created int
	for _, ev := range mustRecent(t, a) {
		switch {
		case ev.Action == "integration.create" && ev.Outcome == audit.Failure && strings.Contains(string(ev.Details), "stopped before Digdir got the request"):
			abandoned++
		case ev.Action == "integration.create" && ev.Outcome == audit.Success:
			created++
		}
	}
	if abandoned != 1 || created != 1 {
		t.Fatalf("audit: %d abandoned, %d created; want 1 and 1", abandoned, created)
	}
}
