package auth_test

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/problem"
	"portal/internal/store"
)

// inviteWorld is a portal with two teams and one person in every position towards team A.
type inviteWorld struct {
	t     *testing.T
	db    *store.DB
	svc   *auth.Service
	now   time.Time // the service's clock; tests move it
	teamA store.Team
	teamB store.Team
	who   map[string]*auth.Principal // admin, owner, member, viewer, outsider (owner of team B)
}

func newInviteWorld(t *testing.T) *inviteWorld {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &inviteWorld{t: t, db: db, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), who: map[string]*auth.Principal{}}
	w.svc, err = auth.NewService(db, auth.Options{Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1}, Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	w.add("admin", auth.RoleAdmin)
	admin := w.principal("admin")
	if w.teamA, err = w.svc.CreateTeam(ctx, admin, "Team A", auditMeta()); err != nil {
		t.Fatal(err)
	}
	if w.teamB, err = w.svc.CreateTeam(ctx, admin, "Team B", auditMeta()); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name string
		team int64
		role string
	}{{"owner", w.teamA.ID, auth.TeamOwner}, {"member", w.teamA.ID, auth.TeamMember}, {"viewer", w.teamA.ID, auth.TeamViewer}, {"outsider", w.teamB.ID, auth.TeamOwner}} {
		w.add(m.name, auth.RoleMember)
		if err := w.svc.PutMember(ctx, admin, m.team, m.name+"@example.no", m.role, auditMeta()); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"admin", "owner", "member", "viewer", "outsider"} {
		w.who[n] = w.principal(n)
	}
	return w
}

func (w *inviteWorld) add(name, role string) store.User {
	w.t.Helper()
	u, err := w.svc.AddUser(w.t.Context(), name+"@example.no", "User "+name, role, "correct horse battery", auditMeta())
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

func (w *inviteWorld) principal(name string) *auth.Principal {
	w.t.Helper()
	u, err := w.db.UserByEmail(w.t.Context(), name+"@example.no")
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := w.svc.LoadPrincipal(w.t.Context(), u.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *inviteWorld) invite(by string, email, role string) (store.Invitation, string) {
	w.t.Helper()
	inv, token, err := w.svc.Invite(w.t.Context(), w.who[by], w.teamA.ID, email, role, auditMeta())
	if err != nil {
		w.t.Fatal(err)
	}
	return inv, token
}

func (w *inviteWorld) events(action string) []audit.Event {
	w.t.Helper()
	evs, err := audit.NewLog(w.db, nil).Recent(w.t.Context(), 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range evs {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func kindOf(err error) string {
	if err == nil {
		return "ok"
	}
	return problem.KindOf(err).String()
}

var newcomer = auth.NewAccount{Name: "Nora Newcomer", Password: "a long enough passphrase", Confirm: "a long enough passphrase"}

func TestInviteWhoMayInviteWhichRole(t *testing.T) {
	w := newInviteWorld(t)
	tests := []struct {
		who   string
		team  int64 // 0: team A
		email string
		role  string
		want  string // problem kind, or "ok"
		field string // the field an invalid answer names
	}{
		{"admin", 0, "a1@example.no", auth.TeamOwner, "ok", ""},
		{"admin", 0, "a2@example.no", auth.TeamMember, "ok", ""},
		{"admin", 0, "a3@example.no", auth.TeamViewer, "ok", ""},
		{"admin", -1, "a4@example.no", auth.TeamMember, "ok", ""}, // any team: B too
		{"admin", 999, "a5@example.no", auth.TeamMember, "not found", ""},
		{"owner", 0, "o1@example.no", auth.TeamOwner, "ok", ""},
		{"owner", 0, "o2@example.no", auth.TeamMember, "ok", ""},
		{"owner", 0, "o3@example.no", auth.TeamViewer, "ok", ""},
		{"owner", -1, "o4@example.no", auth.TeamMember, "not found", ""}, // not their team
		{"member", 0, "m1@example.no", auth.TeamViewer, "forbidden", ""},
		{"viewer", 0, "v1@example.no", auth.TeamViewer, "forbidden", ""},
		{"outsider", 0, "x1@example.no", auth.TeamViewer, "not found", ""},
		// The portal-wide administrator role is never given by invitation.
		{"admin", 0, "r1@example.no", auth.RoleAdmin, "invalid", "role"},
		{"owner", 0, "r2@example.no", auth.RoleAdmin, "invalid", "role"},
		{"owner", 0, "r3@example.no", "", "invalid", "role"},
		{"owner", 0, "not an address", auth.TeamMember, "invalid", "email"},
		{"owner", 0, "", auth.TeamMember, "invalid", "email"},
		// Members are not invited again; saying so tells the inviter nothing the team page does not.
		{"owner", 0, "MEMBER@example.no", auth.TeamViewer, "invalid", "email"},
	}
	for _, tt := range tests {
		team := w.teamA.ID
		switch tt.team {
		case -1:
			team = w.teamB.ID
		case 999:
			team = 999
		}
		inv, token, err := w.svc.Invite(t.Context(), w.who[tt.who], team, tt.email, tt.role, auditMeta())
		if got := kindOf(err); got != tt.want {
			t.Errorf("%s invites %q as %q to team %d: %s (%v), want %s", tt.who, tt.email, tt.role, team, got, err, tt.want)
			continue
		}
		if tt.field != "" {
			if pe, _ := problem.As(err); pe.Fields[tt.field] == "" {
				t.Errorf("%s invites %q as %q: no message for %s: %+v", tt.who, tt.email, tt.role, tt.field, pe.Fields)
			}
		}
		if tt.want != "ok" {
			continue
		}
		if len(token) < 40 || inv.ID == 0 || inv.Role != tt.role || inv.InvitedBy != w.who[tt.who].UserID {
			t.Errorf("%s invites %q: invitation %+v, token of %d characters", tt.who, tt.email, inv, len(token))
		}
		if !inv.ExpiresAt.Equal(w.now.Add(7 * 24 * time.Hour)) {
			t.Errorf("expires %v, want 7 days after %v", inv.ExpiresAt, w.now)
		}
	}
	// Refusals write nothing; every invitation made is audited, without its token.
	evs := w.events(audit.ActionInvitationCreate)
	if len(evs) != 7 {
		t.Fatalf("%d invitation.create events, want 7", len(evs))
	}
	for _, e := range evs {
		var d map[string]any
		if err := json.Unmarshal(e.Details, &d); err != nil || d["email"] == "" || d["role"] == "" || e.TeamID == 0 {
			t.Errorf("event details %s team %d", e.Details, e.TeamID)
		}
		if strings.Contains(string(e.Details), "token") || strings.Contains(string(e.Details), "hash") {
			t.Errorf("invitation event mentions a token: %s", e.Details)
		}
	}
	// Only admins and the team's owners see the open invitations.
	for who, want := range map[string]string{"admin": "ok", "owner": "ok", "member": "forbidden", "viewer": "forbidden", "outsider": "not found"} {
		list, err := w.svc.Invitations(t.Context(), w.who[who], w.teamA.ID)
		if got := kindOf(err); got != want {
			t.Errorf("%s lists invitations: %s, want %s", who, got, want)
		}
		if want == "ok" && len(list) != 6 {
			t.Errorf("%s sees %d open invitations of team A, want 6", who, len(list))
		}
	}
}

func TestInviteAgainReplacesTheOpenInvitation(t *testing.T) {
	w := newInviteWorld(t)
	first, oldToken := w.invite("owner", "nora@example.no", auth.TeamViewer)
	second, newToken := w.invite("admin", "Nora@Example.no", auth.TeamMember)
	if _, err := w.svc.InvitationByToken(t.Context(), oldToken); kindOf(err) != "not found" {
		t.Fatalf("the replaced link still works: %v", err)
	}
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, oldToken, newcomer, auditMeta()); kindOf(err) != "not found" {
		t.Fatalf("accepting the replaced link: %v", err)
	}
	got, err := w.svc.InvitationByToken(t.Context(), newToken)
	if err != nil || got.ID != second.ID || got.Role != auth.TeamMember || got.HasAccount {
		t.Fatalf("new link: %+v %v", got, err)
	}
	list, err := w.svc.Invitations(t.Context(), w.who["owner"], w.teamA.ID)
	if err != nil || len(list) != 1 || list[0].ID != second.ID {
		t.Fatalf("open invitations %+v %v", list, err)
	}
	evs := w.events(audit.ActionInvitationCreate)
	if len(evs) != 2 || !strings.Contains(string(evs[0].Details), `"replaced":[`+itoa(first.ID)+`]`) {
		t.Fatalf("the replacement is not recorded: %+v", evs)
	}
}

func TestAcceptInvitationCreatesAccountAndMembership(t *testing.T) {
	w := newInviteWorld(t)
	inv, token := w.invite("owner", "nora@example.no", auth.TeamMember)
	pending, err := w.svc.InvitationByToken(t.Context(), token)
	if err != nil || pending.TeamName != "Team A" || pending.InviterEmail != "owner@example.no" || pending.Email != "nora@example.no" || pending.HasAccount {
		t.Fatalf("pending invitation %+v %v", pending, err)
	}

	// A form with mistakes changes nothing and leaves the link usable.
	bad := newcomer
	bad.Confirm = "something else entirely"
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, token, bad, auditMeta()); kindOf(err) != "invalid" {
		t.Fatalf("differing passwords: %v", err)
	}
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, token, auth.NewAccount{Password: "short"}, auditMeta()); kindOf(err) != "invalid" {
		t.Fatalf("no name, short password: %v", err)
	}

	w.now = w.now.Add(6 * 24 * time.Hour)
	got, err := w.svc.AcceptInvitation(t.Context(), nil, token, newcomer, audit.Meta{Address: "192.0.2.7", RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created || !got.Joined || !got.Pending || got.User.Email != "nora@example.no" || got.User.Name != "Nora Newcomer" || got.User.Role != auth.RoleMember {
		t.Fatalf("acceptance %+v", got)
	}
	// An owner invited, and no email proved the address: an administrator approves first.
	if _, err := w.svc.Login(t.Context(), "nora@example.no", newcomer.Password, auditMeta()); kindOf(err) != "forbidden" {
		t.Fatalf("the new account signed in before approval: %v", err)
	}
	if err := w.svc.ApproveUser(t.Context(), w.who["admin"], got.User.ID, auditMeta()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Login(t.Context(), "nora@example.no", newcomer.Password, auditMeta()); err != nil {
		t.Fatalf("the new account cannot sign in: %v", err)
	}
	p, err := w.svc.LoadPrincipal(t.Context(), got.User.ID)
	if err != nil || p.TeamRoleOf(w.teamA.ID) != auth.TeamMember || p.IsAdmin() {
		t.Fatalf("principal %+v %v", p, err)
	}

	// Single use: the link, the page behind it and the list all know it is spent.
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, token, newcomer, auditMeta()); kindOf(err) != "not found" {
		t.Fatalf("second use: %v", err)
	}
	if _, err := w.svc.AcceptInvitation(t.Context(), p, token, auth.NewAccount{}, auditMeta()); kindOf(err) != "not found" {
		t.Fatalf("second use while signed in: %v", err)
	}
	if _, err := w.svc.InvitationByToken(t.Context(), token); kindOf(err) != "not found" {
		t.Fatalf("page of a used link: %v", err)
	}
	if list, _ := w.svc.Invitations(t.Context(), w.who["admin"], w.teamA.ID); len(list) != 0 {
		t.Fatalf("accepted invitation still listed: %+v", list)
	}

	accepts := w.events(audit.ActionInvitationAccept)
	if len(accepts) != 1 {
		t.Fatalf("%d invitation.accept events", len(accepts))
	}
	e := accepts[0]
	if e.ActorID != got.User.ID || e.Actor != "nora@example.no" || e.TeamID != w.teamA.ID || e.Address != "192.0.2.7" || e.RequestID != "req-1" ||
		!strings.Contains(string(e.Details), `"invitation":`+itoa(inv.ID)) || !strings.Contains(string(e.Details), `"account_created":true`) {
		t.Fatalf("accept event %+v %s", e, e.Details)
	}
	if creates := w.events(audit.ActionUserCreate); len(creates) == 0 || creates[0].Target != "nora@example.no" {
		t.Fatalf("account creation not audited: %+v", creates)
	}
	for _, e := range w.events(audit.ActionInvitationAccept) {
		if strings.Contains(string(e.Details), "passphrase") || strings.Contains(string(e.Details), token) {
			t.Fatalf("secret in audit details: %s", e.Details)
		}
	}
	if res, err := audit.NewLog(w.db, nil).Verify(t.Context()); err != nil {
		t.Fatalf("chain: %+v %v", res, err)
	}
}

func TestInvitationExpiresAfterSevenDays(t *testing.T) {
	w := newInviteWorld(t)
	_, token := w.invite("admin", "late@example.no", auth.TeamViewer)
	w.now = w.now.Add(7*24*time.Hour - time.Second)
	if _, err := w.svc.InvitationByToken(t.Context(), token); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	if list, _ := w.svc.Invitations(t.Context(), w.who["owner"], w.teamA.ID); len(list) != 1 {
		t.Fatalf("open invitations a second before expiry: %d", len(list))
	}
	w.now = w.now.Add(time.Second)
	if _, err := w.svc.InvitationByToken(t.Context(), token); kindOf(err) != "not found" {
		t.Fatalf("at expiry: %v", err)
	}
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, token, newcomer, auditMeta()); kindOf(err) != "not found" {
		t.Fatalf("accepting at expiry: %v", err)
	}
	if list, _ := w.svc.Invitations(t.Context(), w.who["owner"], w.teamA.ID); len(list) != 0 {
		t.Fatalf("expired invitation still listed: %+v", list)
	}
	if _, err := w.db.UserByEmail(t.Context(), "late@example.no"); err == nil {
		t.Fatal("an expired link created an account")
	}
	// A fresh invitation replaces the expired one.
	_, fresh := w.invite("owner", "late@example.no", auth.TeamViewer)
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, fresh, newcomer, auditMeta()); err != nil {
		t.Fatalf("fresh link: %v", err)
	}
}

func TestRevokeInvitation(t *testing.T) {
	w := newInviteWorld(t)
	inv, token := w.invite("owner", "nora@example.no", auth.TeamViewer)
	for who, want := range map[string]string{"member": "forbidden", "viewer": "forbidden", "outsider": "not found"} {
		if err := w.svc.RevokeInvitation(t.Context(), w.who[who], w.teamA.ID, inv.ID, auditMeta()); kindOf(err) != want {
			t.Errorf("%s revokes: %v, want %s", who, err, want)
		}
	}
	// The invitation's team must be the one in the request: an owner of B cannot reach A's.
	if err := w.svc.RevokeInvitation(t.Context(), w.who["outsider"], w.teamB.ID, inv.ID, auditMeta()); kindOf(err) != "not found" {
		t.Errorf("revoking through another team: %v", err)
	}
	if err := w.svc.RevokeInvitation(t.Context(), w.who["owner"], w.teamA.ID, inv.ID, auditMeta()); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.RevokeInvitation(t.Context(), w.who["admin"], w.teamA.ID, inv.ID, auditMeta()); kindOf(err) != "conflict" {
		t.Errorf("revoking twice: %v", err)
	}
	if _, err := w.svc.InvitationByToken(t.Context(), token); kindOf(err) != "not found" {
		t.Fatalf("revoked link page: %v", err)
	}
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, token, newcomer, auditMeta()); kindOf(err) != "not found" {
		t.Fatalf("revoked link accepted: %v", err)
	}
	evs := w.events(audit.ActionInvitationRevoke)
	if len(evs) != 1 || evs[0].TeamID != w.teamA.ID || !strings.Contains(string(evs[0].Details), "nora@example.no") {
		t.Fatalf("revoke events %+v", evs)
	}
	// Accepted invitations cannot be revoked.
	acc, accToken := w.invite("admin", "ole@example.no", auth.TeamViewer)
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, accToken, newcomer, auditMeta()); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.RevokeInvitation(t.Context(), w.who["admin"], w.teamA.ID, acc.ID, auditMeta()); kindOf(err) != "conflict" {
		t.Errorf("revoking an accepted invitation: %v", err)
	}
}

func TestAcceptInvitationWithAnExistingAccount(t *testing.T) {
	w := newInviteWorld(t)
	// outsider has an account (owner of team B) and is invited to team A.
	_, token := w.invite("owner", "outsider@example.no", auth.TeamViewer)
	pending, err := w.svc.InvitationByToken(t.Context(), token)
	if err != nil || !pending.HasAccount {
		t.Fatalf("pending %+v %v", pending, err)
	}
	// Signed out: asked to sign in; no second account, link still usable.
	if _, err := w.svc.AcceptInvitation(t.Context(), nil, token, newcomer, auditMeta()); kindOf(err) != "conflict" {
		t.Fatalf("signed out with an existing account: %v", err)
	}
	// Signed in as someone else: refused.
	if _, err := w.svc.AcceptInvitation(t.Context(), w.who["member"], token, auth.NewAccount{}, auditMeta()); kindOf(err) != "forbidden" {
		t.Fatalf("signed in as another person: %v", err)
	}
	got, err := w.svc.AcceptInvitation(t.Context(), w.who["outsider"], token, auth.NewAccount{}, auditMeta())
	if err != nil || got.Created || !got.Joined || got.User.ID != w.who["outsider"].UserID {
		t.Fatalf("signed in as the invited person: %+v %v", got, err)
	}
	p := w.principal("outsider")
	if p.TeamRoleOf(w.teamA.ID) != auth.TeamViewer || p.TeamRoleOf(w.teamB.ID) != auth.TeamOwner {
		t.Fatalf("memberships %+v", p.Teams)
	}

	// Someone who became a member after the invitation keeps the role they have.
	_, token = w.invite("admin", "late@example.no", auth.TeamViewer)
	late := w.add("late", auth.RoleMember)
	if err := w.svc.PutMember(t.Context(), w.who["admin"], w.teamA.ID, late.Email, auth.TeamOwner, auditMeta()); err != nil {
		t.Fatal(err)
	}
	got, err = w.svc.AcceptInvitation(t.Context(), w.principal("late"), token, auth.NewAccount{}, auditMeta())
	if err != nil || got.Joined {
		t.Fatalf("accept as a member: %+v %v", got, err)
	}
	if w.principal("late").TeamRoleOf(w.teamA.ID) != auth.TeamOwner {
		t.Fatal("accepting an invitation lowered a member's role")
	}
}

func TestInvitationByUnknownToken(t *testing.T) {
	w := newInviteWorld(t)
	for _, tok := range []string{"", "nonsense", strings.Repeat("A", 43)} {
		if _, err := w.svc.InvitationByToken(t.Context(), tok); kindOf(err) != "not found" {
			t.Errorf("token %q: %v", tok, err)
		}
		if _, err := w.svc.AcceptInvitation(t.Context(), nil, tok, newcomer, auditMeta()); kindOf(err) != "not found" {
			t.Errorf("accept token %q: %v", tok, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
