package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"portal/internal/audit"
	"portal/web"
)

func TestFirstRunSetup(t *testing.T) {
	a := newApp(t)
	c := a.client()
	if p := c.get("/login"); !strings.Contains(p.body, "no users yet") {
		t.Fatalf("sign-in page of an empty portal does not point to the setup link")
	}
	token, err := a.auth.CreateSetupToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p := c.get("/setup?token=wrong"); p.status != http.StatusNotFound {
		t.Fatalf("wrong setup token: status %d", p.status)
	}
	p := c.get("/setup?token=" + url.QueryEscape(token))
	if p.status != http.StatusOK || p.doc.Find(`form[data-testid="setup-form"]`).Length() != 1 {
		t.Fatalf("setup page: status %d", p.status)
	}
	// A short password re-shows the form with what was typed and a message beside the field.
	p = c.post("/setup", url.Values{"token": {token}, "email": {"ada@example.no"}, "name": {"Ada"}, "password": {"short"}, "confirm": {"short"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("short password: status %d", p.status)
	}
	if v, _ := p.doc.Find("#email").Attr("value"); v != "ada@example.no" {
		t.Errorf("typed email lost: %q", v)
	}
	if msg := text(p, `[data-testid="password-error"]`); !strings.Contains(msg, "12") {
		t.Errorf("password message = %q", msg)
	}
	p = c.post("/setup", url.Values{"token": {token}, "email": {"ada@example.no"}, "name": {"Ada"},
		"password": {"correct horse battery"}, "confirm": {"correct horse battery"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Fatalf("setup: status %d location %q: %s", p.status, p.header.Get("Location"), p.body)
	}
	p = c.get("/")
	if got := text(p, `[data-testid="dashboard-title"]`); got != "Welcome, Ada" {
		t.Fatalf("dashboard title = %q (status %d)", got, p.status)
	}
	// The link works once.
	other := a.client()
	if p := other.get("/setup?token=" + url.QueryEscape(token)); p.status != http.StatusNotFound {
		t.Fatalf("reused setup link: status %d", p.status)
	}
	if _, err := a.auth.CreateSetupToken(t.Context()); err == nil {
		t.Fatal("a setup token was issued although an admin exists")
	}
	evs, err := audit.NewLog(a.db, nil).Recent(t.Context(), 10)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Action != audit.ActionSetup {
		t.Fatalf("setup not audited: %v %+v", err, evs)
	}
}

func TestSignIn(t *testing.T) {
	a := newApp(t)
	a.addUser("ada@example.no", "admin")
	tests := []struct {
		name, email, password string
		status                int
	}{
		{"wrong password", "ada@example.no", "not the password", http.StatusUnauthorized},
		{"unknown email", "nobody@example.no", "correct horse battery", http.StatusUnauthorized},
		{"empty", "", "", http.StatusUnauthorized},
		{"right", "ada@example.no", "correct horse battery", http.StatusSeeOther},
		{"email case differs", "ADA@example.no", "correct horse battery", http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := a.client()
			p := c.post("/login", url.Values{"email": {tt.email}, "password": {tt.password}})
			if p.status != tt.status {
				t.Fatalf("status %d, want %d", p.status, tt.status)
			}
			if tt.status == http.StatusUnauthorized {
				if got := text(p, `[data-testid="form-error"]`); got != "Wrong email or password." {
					t.Errorf("message = %q", got)
				}
				if v, _ := p.doc.Find("#email").Attr("value"); v != tt.email {
					t.Errorf("typed email lost: %q", v)
				}
			}
		})
	}
}

// TestSignInReturnsToThePageAsked sends a person back where they were going, and never to
// another site.
func TestSignInReturnsToThePageAsked(t *testing.T) {
	a := newApp(t)
	a.addUser("ada@example.no", "member")
	anon := a.client()
	if p := anon.get("/account"); p.header.Get("Location") != "/login?next=%2Faccount" {
		t.Fatalf("anonymous /account: %d %q", p.status, p.header.Get("Location"))
	}
	for next, want := range map[string]string{"/account": "/account", "//evil.example/x": "/", "https://evil.example": "/"} {
		c := a.client()
		p := c.post("/login", url.Values{"email": {"ada@example.no"}, "password": {"correct horse battery"}, "next": {next}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != want {
			t.Errorf("next=%q: %d %q, want %q", next, p.status, p.header.Get("Location"), want)
		}
	}
}

func TestSignInThrottled(t *testing.T) {
	a := newApp(t)
	a.addUser("ada@example.no", "member")
	c := a.client()
	for i := 0; i < 5; i++ {
		if p := c.post("/login", url.Values{"email": {"ada@example.no"}, "password": {"wrong password!"}}); p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i, p.status)
		}
	}
	p := c.post("/login", url.Values{"email": {"ada@example.no"}, "password": {"correct horse battery"}})
	if p.status != http.StatusTooManyRequests || !strings.Contains(text(p, `[data-testid="form-error"]`), "Too many") {
		t.Fatalf("sixth attempt: status %d", p.status)
	}
}

func sessionCookie(c *client) string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == "portal_session" {
			return ck.Value
		}
	}
	return ""
}

func TestSessionLifecycle(t *testing.T) {
	a := newApp(t)
	a.addUser("ada@example.no", "admin")
	member := a.addUser("bob@example.no", "member")

	c := a.client()
	c.login("ada@example.no")
	first := sessionCookie(c)
	c.login("ada@example.no")
	second := sessionCookie(c)
	if first == "" || first == second {
		t.Fatal("session id was not rotated at sign-in")
	}
	// The replaced session is gone server-side, not just in this browser.
	stale := a.client()
	u, _ := url.Parse(stale.base)
	stale.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "portal_session", Value: first, Path: "/"}})
	if p := stale.get("/"); p.status != http.StatusSeeOther {
		t.Fatalf("old session still works: %d", p.status)
	}

	// Disabling a user ends their sessions at once.
	b := a.client()
	b.login("bob@example.no")
	if p := b.get("/"); p.status != http.StatusOK {
		t.Fatalf("member dashboard: %d", p.status)
	}
	if p := c.post("/admin/users/"+itoa(member.ID)+"/disabled", url.Values{"disabled": {"true"}}); p.status != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", p.status, p.body)
	}
	if p := b.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Fatalf("disabled user still signed in: %d", p.status)
	}
	if p := b.post("/login", url.Values{"email": {"bob@example.no"}, "password": {"correct horse battery"}}); p.status != http.StatusUnauthorized {
		t.Fatalf("disabled user signed in: %d", p.status)
	}

	// Sign-out ends the session.
	if p := c.post("/logout", nil); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.status)
	}
	if p := c.get("/"); p.status != http.StatusSeeOther {
		t.Fatalf("signed-out session still works: %d", p.status)
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	a := newApp(t)
	a.addUser("ada@example.no", "member")
	c1, c2 := a.client(), a.client()
	c1.login("ada@example.no")
	c2.login("ada@example.no")
	p := c1.post("/account/password", url.Values{"current": {"correct horse battery"}, "password": {"short"}, "confirm": {"short"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("short new password: %d", p.status)
	}
	p = c1.post("/account/password", url.Values{"current": {"correct horse battery"}, "password": {"a much better passphrase"}, "confirm": {"a much better passphrase"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("change password: %d %s", p.status, p.body)
	}
	if p := c1.get("/account"); p.status != http.StatusOK {
		t.Fatalf("the changing session was not renewed: %d", p.status)
	}
	if p := c2.get("/account"); p.status != http.StatusSeeOther {
		t.Fatalf("other session survived the password change: %d", p.status)
	}
}

func TestCrossSiteRequestsRefused(t *testing.T) {
	a := newApp(t)
	a.addUser("ada@example.no", "admin")
	c := a.client()
	c.login("ada@example.no")
	form := url.Values{"name": {"Forged"}}
	tests := []struct {
		name    string
		token   string
		headers map[string]string
	}{
		{"no token", "", nil},
		{"wrong token", "not-the-token", nil},
		{"cross-site browser post", "", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{"cross-site with a stolen token", "stolen", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if tt.token != "" {
				f.Set("_csrf", tt.token)
			}
			req, _ := http.NewRequest(http.MethodPost, c.base+"/admin/teams", strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			if p := c.do(req); p.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", p.status)
			}
		})
	}
	teams, _ := a.auth.ListTeams(t.Context())
	if len(teams) != 0 {
		t.Fatalf("a forged request created %d team(s)", len(teams))
	}
	// The same form from the same origin, with its token, works.
	form.Set("_csrf", c.csrf())
	req, _ := http.NewRequest(http.MethodPost, c.base+"/admin/teams", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if p := c.do(req); p.status != http.StatusSeeOther {
		t.Fatalf("same-origin post: %d", p.status)
	}
}

func TestSecurityHeadersAndErrorPages(t *testing.T) {
	a := newApp(t)
	c := a.client()
	for _, path := range []string{"/login", "/no/such/page", "/static/css/portal.css"} {
		p := c.get(path)
		h := p.header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Errorf("%s: CSP = %q", path, h.Get("Content-Security-Policy"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: missing hygiene headers", path)
		}
	}
	p := c.get("/no/such/page")
	if p.status != http.StatusNotFound {
		t.Fatalf("status %d", p.status)
	}
	id := text(p, `[data-testid="request-id"]`)
	if id == "" || id != p.header.Get("X-Request-Id") {
		t.Errorf("error page request id %q, header %q", id, p.header.Get("X-Request-Id"))
	}
	if strings.Contains(p.body, "goroutine") || strings.Contains(p.body, ".go:") {
		t.Error("error page shows a stack trace")
	}
	// A client cannot choose the request id that appears in logs.
	req, _ := http.NewRequest(http.MethodGet, c.base+"/healthz", nil)
	req.Header.Set("X-Request-Id", "forged-by-the-client")
	if p := c.do(req); p.header.Get("X-Request-Id") == "forged-by-the-client" {
		t.Error("client-supplied request id was believed")
	}
	if !strings.Contains(a.logs.String(), "request_id=") {
		t.Error("access log lacks request ids")
	}
}

func TestLogsRedactSecrets(t *testing.T) {
	a := newApp(t)
	token, err := a.auth.CreateSetupToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := a.client()
	c.get("/setup?token=" + url.QueryEscape(token))
	c.post("/login", url.Values{"email": {"x@example.no"}, "password": {"hunter2hunter2"}})
	logs := a.logs.String()
	if strings.Contains(logs, token) || strings.Contains(logs, "hunter2") {
		t.Fatalf("secret in logs:\n%s", logs)
	}
	if !strings.Contains(logs, "token=REDACTED") {
		t.Fatalf("setup request not logged with a redacted token:\n%s", logs)
	}
}

func TestHealth(t *testing.T) {
	a := newApp(t)
	c := a.client()
	if p := c.get("/healthz"); p.status != http.StatusOK {
		t.Fatalf("healthz %d", p.status)
	}
	if p := c.get("/readyz"); p.status != http.StatusOK {
		t.Fatalf("readyz %d", p.status)
	}
	a.db.Close()
	if p := c.get("/readyz"); p.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a closed database: %d", p.status)
	}
}

func TestAdministration(t *testing.T) {
	a := newApp(t)
	a.addUser("ada@example.no", "admin")
	c := a.client()
	c.login("ada@example.no")

	// Bad input keeps what was typed.
	p := c.post("/admin/users", url.Values{"email": {"not-an-email"}, "name": {"Carl"}, "role": {"member"}})
	if p.status != http.StatusUnprocessableEntity || text(p, `[data-testid="email-error"]`) == "" {
		t.Fatalf("bad email: %d", p.status)
	}
	if v, _ := p.doc.Find("#name").Attr("value"); v != "Carl" {
		t.Errorf("typed name lost: %q", v)
	}
	p = c.post("/admin/users", url.Values{"email": {"carl@example.no"}, "name": {"Carl"}, "role": {"member"}})
	if p.status != http.StatusCreated {
		t.Fatalf("create user: %d %s", p.status, p.body)
	}
	link, _ := p.doc.Find(`[data-testid="one-time-link"]`).Attr("value")
	if !strings.HasPrefix(link, "http://portal.test/password/set?token=") {
		t.Fatalf("link = %q", link)
	}
	lu, _ := url.Parse(link)
	if p := c.post("/admin/users", url.Values{"email": {"CARL@example.no"}, "name": {"Carl"}, "role": {"member"}}); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("duplicate email: %d", p.status)
	}

	carl := a.client()
	if p := carl.get(lu.RequestURI()); p.status != http.StatusOK {
		t.Fatalf("set-password page: %d", p.status)
	}
	p = carl.post("/password/set", url.Values{"token": {lu.Query().Get("token")}, "password": {"carls own passphrase"}, "confirm": {"carls own passphrase"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("set password: %d %s", p.status, p.body)
	}
	if p := a.client().get(lu.RequestURI()); p.status != http.StatusNotFound {
		t.Fatalf("reused set-password link: %d", p.status)
	}
	if p := carl.get("/"); p.status != http.StatusOK {
		t.Fatalf("carl's dashboard: %d", p.status)
	}

	// Teams and memberships.
	p = c.post("/admin/teams", url.Values{"name": {"Skatt"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create team: %d", p.status)
	}
	teamPath := p.header.Get("Location")
	if p := c.post("/admin/teams", url.Values{"name": {"skatt"}}); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("duplicate team: %d", p.status)
	}
	if p := c.post("/admin"+strings.TrimPrefix(teamPath, "")+"/members", url.Values{"email": {"carl@example.no"}, "role": {"owner"}}); p.status != http.StatusNotFound {
		// /admin/teams/:id/members is the right path; a wrong one is 404.
		t.Logf("wrong path status %d", p.status)
	}
	id := strings.TrimPrefix(teamPath, "/teams/")
	if p := c.post("/admin/teams/"+id+"/members", url.Values{"email": {"nobody@example.no"}, "role": {"member"}}); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown member: %d", p.status)
	}
	if p := c.post("/admin/teams/"+id+"/members", url.Values{"email": {"carl@example.no"}, "role": {"viewer"}}); p.status != http.StatusSeeOther {
		t.Fatalf("add member: %d %s", p.status, p.body)
	}
	if users := text(c.get("/admin/users"), `[data-testid="users-table"]`); !strings.Contains(users, "Skatt (viewer)") {
		t.Fatalf("users list lacks carl's team: %q", users)
	}
	p = carl.get(teamPath)
	if p.status != http.StatusOK || !strings.Contains(text(p, `[data-testid="members-table"]`), "viewer") {
		t.Fatalf("team page for its viewer: %d", p.status)
	}
	if p := c.post("/admin/teams/"+id+"/name", url.Values{"name": {"Skatteetaten"}}); p.status != http.StatusSeeOther {
		t.Fatalf("rename: %d", p.status)
	}
	if got := text(c.get(teamPath), `[data-testid="team-name"]`); got != "Skatteetaten" {
		t.Fatalf("team name = %q", got)
	}
	carlUser, _ := a.db.UserByEmail(context.Background(), "carl@example.no")
	if p := c.post("/admin/teams/"+id+"/members/"+itoa(carlUser.ID)+"/remove", nil); p.status != http.StatusSeeOther {
		t.Fatalf("remove member: %d", p.status)
	}
	if p := carl.get(teamPath); p.status != http.StatusNotFound {
		t.Fatalf("team page for a former member: %d", p.status)
	}

	// Every change is in the audit log, and the chain holds.
	res, err := audit.NewLog(a.db, nil).Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := audit.NewLog(a.db, nil).Recent(t.Context(), 100)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Action] = true
		if strings.Contains(string(e.Details), "passphrase") {
			t.Fatalf("password in audit details: %s", e.Details)
		}
	}
	for _, want := range []string{audit.ActionUserCreate, audit.ActionPasswordChange, audit.ActionTeamCreate, audit.ActionTeamRename, audit.ActionMemberPut, audit.ActionMemberRemove, audit.ActionSignIn} {
		if !seen[want] {
			t.Errorf("no %s event (chain of %d)", want, res.Events)
		}
	}
}

func TestLastAdminIsKept(t *testing.T) {
	a := newApp(t)
	ada := a.addUser("ada@example.no", "admin")
	c := a.client()
	c.login("ada@example.no")
	if p := c.post("/admin/users/"+itoa(ada.ID)+"/role", url.Values{"role": {"member"}}); p.status != http.StatusConflict {
		t.Fatalf("demoting the last admin: %d", p.status)
	}
	if p := c.post("/admin/users/"+itoa(ada.ID)+"/disabled", url.Values{"disabled": {"true"}}); p.status != http.StatusConflict {
		t.Fatalf("disabling oneself: %d", p.status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

type fakeHealth map[string][]web.Check

func (f fakeHealth) Check(_ context.Context, env string) []web.Check { return f[env] }

func TestEnvironmentPage(t *testing.T) {
	a := newAppWith(t, fakeHealth{"tt02": {
		{Name: "Maskinporten metadata", OK: true, Detail: "issuer http://sim/tt02/maskinporten/"},
		{Name: "Admin token", OK: false, Detail: "Maskinporten answered 400 invalid_grant: Expired key (MP-121)"},
	}})
	a.addUser("ada@example.no", "member")
	c := a.client()
	c.login("ada@example.no")
	p := c.get("/envs/tt02")
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	checks := text(p, `[data-testid="env-checks"]`)
	if !strings.Contains(checks, "MP-121") || !strings.Contains(checks, "failed") || !strings.Contains(checks, "ok") {
		t.Fatalf("checks table: %q", checks)
	}
	if !strings.Contains(text(p, "h1"), "simulated") {
		t.Error("simulated environment not marked")
	}
	if cur, _ := p.doc.Find(`[data-testid="env-tt02"]`).Attr("aria-current"); cur != "page" {
		t.Error("environment switcher does not mark the current environment")
	}
	if p := c.get("/envs/staging"); p.status != http.StatusNotFound {
		t.Fatalf("unknown environment: %d", p.status)
	}
}

func TestAdminEnvironmentsPage(t *testing.T) {
	a := newAppWith(t, fakeHealth{
		"tt02": {{Name: "Maskinporten metadata", OK: true, Detail: "issuer http://sim/tt02/maskinporten/"}},
		"prod": {{Name: "Admin token", OK: false, Detail: "no answer within 10 seconds"}},
	})
	a.addUser("admin@example.no", "admin")
	c := a.client()
	c.login("admin@example.no")
	p := c.get("/admin/environments")
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	if got := text(p, `[data-testid="admin-env-tt02"] [data-testid="env-checks"]`); !strings.Contains(got, "ok") {
		t.Errorf("tt02 checks: %q", got)
	}
	if got := text(p, `[data-testid="admin-env-prod"] [data-testid="env-checks"]`); !strings.Contains(got, "failed") || !strings.Contains(got, "10 seconds") {
		t.Errorf("prod checks: %q", got)
	}
	if !strings.Contains(text(p, `[data-testid="admin-env-prod"] h2`), "simulated") {
		t.Error("a simulated environment is not marked")
	}
}
