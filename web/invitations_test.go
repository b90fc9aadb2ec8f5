package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portal/internal/audit"
	"portal/internal/store"
)

// inviteApp is a portal with team Skatt, its owner olga and its member mats.
func inviteApp(t *testing.T) (*app, store.Team) {
	t.Helper()
	a := newApp(t)
	a.addUser("admin@example.no", "admin")
	adminP := adminPrincipal(t, a)
	team, err := a.auth.CreateTeam(t.Context(), adminP, "Skatt", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	for email, role := range map[string]string{"olga@example.no": "owner", "mats@example.no": "member"} {
		a.addUser(email, "member")
		if err := a.auth.PutMember(t.Context(), adminP, team.ID, email, role, metaFor()); err != nil {
			t.Fatal(err)
		}
	}
	return a, team
}

// inviteThroughPage fills the team page's invite form and returns the link shown once.
func inviteThroughPage(t *testing.T, c *client, team store.Team, email, role string) *url.URL {
	t.Helper()
	p := c.get("/teams/" + itoa(team.ID))
	action, ok := p.doc.Find(`form[data-testid="invite-form"]`).Attr("action")
	if p.status != http.StatusOK || !ok {
		t.Fatalf("team page: status %d, invite form %v", p.status, ok)
	}
	p = c.post(action, url.Values{"email": {email}, "role": {role}})
	if p.status != http.StatusCreated {
		t.Fatalf("invite %s: status %d: %s", email, p.status, text(p, "main"))
	}
	link, _ := p.doc.Find(`[data-testid="one-time-link"]`).Attr("value")
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, "http://portal.test/invite?token=") || len(u.Query().Get("token")) < 40 {
		t.Fatalf("link = %q", link)
	}
	return u
}

func TestInvitationFromTeamOwnerToNewAccount(t *testing.T) {
	a, team := inviteApp(t)
	teamPath := "/teams/" + itoa(team.ID)
	olga := a.client()
	olga.login("olga@example.no")

	// Only administrators and owners get the form; the member sees the team without it.
	mats := a.client()
	mats.login("mats@example.no")
	if p := mats.get(teamPath); p.status != http.StatusOK || p.doc.Find(`[data-testid="invite-form"]`).Length() != 0 {
		t.Fatalf("member's team page: status %d, invite forms %d", p.status, p.doc.Find(`[data-testid="invite-form"]`).Length())
	}
	admin := a.client()
	admin.login("admin@example.no")
	if p := admin.get(teamPath); p.doc.Find(`[data-testid="invite-form"]`).Length() != 1 {
		t.Fatal("the administrator's team page has no invite form")
	}

	// A mistake re-shows the page with what was typed.
	p := olga.post(teamPath+"/invitations", url.Values{"email": {"not-an-address"}, "role": {"viewer"}})
	if p.status != http.StatusUnprocessableEntity || text(p, `[data-testid="invite-email-error"]`) == "" {
		t.Fatalf("bad address: status %d", p.status)
	}
	if v, _ := p.doc.Find("#invite-email").Attr("value"); v != "not-an-address" {
		t.Errorf("typed address lost: %q", v)
	}
	if v, _ := p.doc.Find(`#invite-role option[selected]`).Attr("value"); v != "viewer" {
		t.Errorf("chosen role lost: %q", v)
	}
	if p := olga.post(teamPath+"/invitations", url.Values{"email": {"nora@example.no"}, "role": {"admin"}}); p.status != http.StatusUnprocessableEntity ||
		text(p, `[data-testid="invite-role-error"]`) == "" {
		t.Fatalf("the admin role by invitation: status %d", p.status)
	}

	link := inviteThroughPage(t, olga, team, "nora@example.no", "member")
	token := link.Query().Get("token")
	p = olga.get(teamPath)
	if rows := p.doc.Find(`[data-testid="invitations-table"] tbody tr`); rows.Length() != 1 || !strings.Contains(rows.Text(), "nora@example.no") {
		t.Fatalf("open invitations: %q", rows.Text())
	}

	// Nora opens the link signed out: who invited her, to what, and a form for name and password.
	nora := a.client()
	p = nora.get(link.RequestURI())
	if p.status != http.StatusOK || p.doc.Find(`form[data-testid="accept-form"]`).Length() != 1 {
		t.Fatalf("invitation page: status %d", p.status)
	}
	summary := text(p, `[data-testid="invitation-summary"]`)
	for _, want := range []string{"olga@example.no", "nora@example.no", "Skatt", "member"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
	if v, _ := p.doc.Find(`#email`).Attr("value"); v != "nora@example.no" {
		t.Errorf("the address is not shown fixed: %q", v)
	}
	if _, named := p.doc.Find(`form[data-testid="accept-form"] #email`).Attr("name"); named {
		t.Error("the fixed address is sent with the form")
	}

	p = nora.post("/invite", url.Values{"token": {token}, "name": {"Nora"}, "password": {"short"}, "confirm": {"short"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(text(p, `[data-testid="password-error"]`), "12") {
		t.Fatalf("short password: status %d", p.status)
	}
	if v, _ := p.doc.Find("#name").Attr("value"); v != "Nora" {
		t.Errorf("typed name lost: %q", v)
	}
	// The form is protected against cross-site requests like every other.
	if p := nora.post("/invite", url.Values{"_csrf": {"forged"}, "token": {token}, "name": {"Nora"},
		"password": {"nora's long passphrase"}, "confirm": {"nora's long passphrase"}}); p.status != http.StatusForbidden {
		t.Fatalf("forged form: status %d", p.status)
	}
	p = nora.post("/invite", url.Values{"token": {token}, "name": {"Nora"}, "password": {"nora's long passphrase"}, "confirm": {"nora's long passphrase"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("accept: status %d location %q: %s", p.status, p.header.Get("Location"), text(p, "main"))
	}
	// An owner's link went through the owner's hands, not by email: the account waits for an
	// administrator, who sees who invited whom.
	if p := nora.get("/login"); !strings.Contains(p.body, "must approve it") {
		t.Fatalf("no word of the approval: %s", text(p, "main"))
	}
	if p := nora.post("/login", url.Values{"email": {"nora@example.no"}, "password": {"nora's long passphrase"}}); p.status != http.StatusForbidden ||
		!strings.Contains(text(p, `[data-testid="form-error"]`), "approval") {
		t.Fatalf("sign-in before approval: status %d", p.status)
	}
	p = admin.get("/admin/users")
	row := p.doc.Find(`[data-testid="users-table"] tr:contains("nora@example.no")`)
	if !strings.Contains(row.Text(), "through an invitation from olga@example.no") || row.Find(`[data-testid="user-pending"]`).Length() != 1 {
		t.Fatalf("the user list does not show the waiting account and its inviter: %q", row.Text())
	}
	noraUser, err := a.db.UserByEmail(t.Context(), "nora@example.no")
	if err != nil {
		t.Fatal(err)
	}
	if p := olga.post("/admin/users/"+itoa(noraUser.ID)+"/approve", nil); p.status != http.StatusForbidden {
		t.Fatalf("an owner approved: status %d", p.status)
	}
	if p := admin.post("/admin/users/"+itoa(noraUser.ID)+"/approve", nil); p.status != http.StatusSeeOther {
		t.Fatalf("approve: status %d", p.status)
	}
	nora.loginWith("nora@example.no", "nora's long passphrase")
	// Signed in, a member of the team, with a portal role of member.
	p = nora.get(teamPath)
	if p.status != http.StatusOK || !strings.Contains(text(p, `[data-testid="members-table"]`), "nora@example.no") {
		t.Fatalf("team page for nora: status %d", p.status)
	}
	if p := nora.get("/admin/users"); p.status != http.StatusForbidden {
		t.Fatalf("nora is more than a member of the portal: %d", p.status)
	}

	// The link works once, and says so the same way to everyone.
	for _, c := range []*client{a.client(), nora} {
		p := c.get(link.RequestURI())
		if p.status != http.StatusNotFound || !strings.Contains(p.body, "not valid") {
			t.Fatalf("used link: status %d", p.status)
		}
		if strings.Contains(p.body, "nora@example.no") && c != nora {
			t.Fatal("a used link reveals its address")
		}
	}
	if p := a.client().post("/invite", url.Values{"token": {token}, "name": {"Eve"}, "password": {"eve's long passphrase"}, "confirm": {"eve's long passphrase"}}); p.status != http.StatusNotFound {
		t.Fatalf("reused link: status %d", p.status)
	}
	if p := olga.get(teamPath); p.doc.Find(`[data-testid="no-invitations"]`).Length() != 1 {
		t.Fatal("the accepted invitation is still listed")
	}

	// Audited step by step, never with the token; nor is the token in the access log.
	evs, err := audit.NewLog(a.db, nil).Recent(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Action] = true
		if strings.Contains(string(e.Details), token) || strings.Contains(string(e.Details), "passphrase") {
			t.Fatalf("secret in audit details: %s", e.Details)
		}
	}
	for _, want := range []string{audit.ActionInvitationCreate, audit.ActionInvitationAccept, audit.ActionUserCreate, audit.ActionUserApprove} {
		if !seen[want] {
			t.Errorf("no %s event", want)
		}
	}
	if strings.Contains(a.logs.String(), token) {
		t.Fatal("the invitation token is in the log")
	}
}

func TestInvitationRevokedFromTeamPage(t *testing.T) {
	a, team := inviteApp(t)
	teamPath := "/teams/" + itoa(team.ID)
	olga := a.client()
	olga.login("olga@example.no")
	link := inviteThroughPage(t, olga, team, "nora@example.no", "viewer")
	// Inviting the same address again replaces the first link.
	link2 := inviteThroughPage(t, olga, team, "nora@example.no", "member")
	if p := a.client().get(link.RequestURI()); p.status != http.StatusNotFound {
		t.Fatalf("replaced link: status %d", p.status)
	}

	p := olga.get(teamPath)
	action, ok := p.doc.Find(`[data-testid="invitations-table"] form`).Attr("action")
	if !ok || p.doc.Find(`[data-testid="invitations-table"] tbody tr`).Length() != 1 {
		t.Fatalf("no single invitation to revoke: %s", text(p, `[data-testid="invitations"]`))
	}
	// A member of the team may not revoke; nor may a forged form.
	mats := a.client()
	mats.login("mats@example.no")
	if p := mats.post(action, nil); p.status != http.StatusForbidden {
		t.Fatalf("member revokes: status %d", p.status)
	}
	if p := olga.post(action, url.Values{"_csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Fatalf("forged revoke: status %d", p.status)
	}
	if p := a.client().get(link2.RequestURI()); p.status != http.StatusOK {
		t.Fatalf("link before revoking: status %d", p.status)
	}
	p = olga.post(action, nil)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != teamPath {
		t.Fatalf("revoke: status %d", p.status)
	}
	if p := olga.get(teamPath); p.doc.Find(`[data-testid="no-invitations"]`).Length() != 1 || !strings.Contains(p.body, "revoked") {
		t.Fatal("the revoked invitation is still listed, or no message")
	}
	if p := a.client().get(link2.RequestURI()); p.status != http.StatusNotFound {
		t.Fatalf("revoked link: status %d", p.status)
	}
	if p := olga.post(action, nil); p.status != http.StatusConflict {
		t.Fatalf("revoking twice: status %d", p.status)
	}
	evs, _ := audit.NewLog(a.db, nil).Recent(t.Context(), 100)
	n := 0
	for _, e := range evs {
		if e.Action == audit.ActionInvitationRevoke && e.TeamID == team.ID && e.Actor == "olga@example.no" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d invitation.revoke events, want 1", n)
	}
}

func TestInvitationForAnExistingAccount(t *testing.T) {
	a, team := inviteApp(t)
	teamPath := "/teams/" + itoa(team.ID)
	a.addUser("per@example.no", "member")
	admin := a.client()
	admin.login("admin@example.no")
	link := inviteThroughPage(t, admin, team, "per@example.no", "viewer")
	token := link.Query().Get("token")

	// Signed in as someone else: told so, and refused.
	mats := a.client()
	mats.login("mats@example.no")
	p := mats.get(link.RequestURI())
	if p.status != http.StatusOK || p.doc.Find(`[data-testid="invitation-other-user"]`).Length() != 1 {
		t.Fatalf("someone else's invitation: status %d", p.status)
	}
	if p := mats.post("/invite", url.Values{"token": {token}}); p.status != http.StatusForbidden {
		t.Fatalf("accepting someone else's invitation: status %d", p.status)
	}

	// Signed out, the page asks Per to sign in, and brings him back.
	per := a.client()
	p = per.get(link.RequestURI())
	if p.status != http.StatusOK || p.doc.Find(`[data-testid="invitation-has-account"]`).Length() != 1 || p.doc.Find(`[data-testid="accept-form"]`).Length() != 0 {
		t.Fatalf("invitation page for an existing account: status %d", p.status)
	}
	// Creating a second account for the address is refused.
	if p := per.post("/invite", url.Values{"token": {token}, "name": {"Per"}, "password": {"another passphrase"}, "confirm": {"another passphrase"}}); p.status != http.StatusConflict {
		t.Fatalf("second account: status %d", p.status)
	}
	form := p.doc.Find(`form[data-testid="invite-login-form"]`)
	action, _ := form.Attr("action")
	next, _ := form.Find(`input[name="next"]`).Attr("value")
	p = per.post(action, url.Values{"email": {"per@example.no"}, "password": {"correct horse battery"}, "next": {next}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != link.RequestURI() {
		t.Fatalf("sign-in from the invitation: status %d location %q", p.status, p.header.Get("Location"))
	}
	p = per.get(p.header.Get("Location"))
	if p.status != http.StatusOK || p.doc.Find(`form[data-testid="join-form"]`).Length() != 1 {
		t.Fatalf("invitation page signed in: status %d", p.status)
	}
	p = per.post("/invite", url.Values{"token": {token}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != teamPath {
		t.Fatalf("join: status %d: %s", p.status, text(p, "main"))
	}
	p = per.get(teamPath)
	if p.status != http.StatusOK || !strings.Contains(text(p, `[data-testid="members-table"]`), "per@example.no") {
		t.Fatalf("team page for per: status %d", p.status)
	}
	if strings.Contains(a.logs.String(), token) {
		t.Fatal("the invitation token is in the log")
	}
}
