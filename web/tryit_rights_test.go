package web_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portal/internal/store"
	"portal/internal/tryit"
)

// tryCount counts the integration.try events in the audit trail.
func tryCount(t *testing.T, a *app) int {
	t.Helper()
	n := 0
	for _, e := range mustRecent(t, a) {
		if e.Action == tryit.ActionTry {
			n++
		}
	}
	return n
}

// openTryWithTokens runs the whole chain with the kept key, reveals the Maskinporten token and
// opens the first instance's details; it returns the page and the revealed token.
func openTryWithTokens(t *testing.T, c *client, path string) (page, string) {
	t.Helper()
	p := c.get(path)
	form := formOf(p, `form[data-testid="grant-form"]`)
	form.Set("how", "run")
	form.Set("org", "ttd")
	form.Set("test", "true")
	p = c.post(path+"/grant", form)
	for _, s := range []string{"grant", "token", "exchange", "instances"} {
		stepOK(t, p, s)
	}
	p = c.post(path+"/reveal", formOf(p, `[data-testid="result-token"] form`))
	secret := text(p, `[data-testid="result-token"] [data-testid="secret"]`)
	if strings.Count(secret, ".") != 2 {
		t.Fatalf("reveal: %d %q", p.status, secret)
	}
	p = c.post(path+"/instance", formOf(p, `[data-testid="instances"] tbody tr:first-child form`))
	stepOK(t, p, "instance")
	return p, secret
}

// Every step of an open try is authorised with the person as they are now: after losing their
// place on the team (or being made a viewer), their try answers as the integration does for
// them, shows no token, and is ended (audited) at once.
func TestTryStepsFollowThePersonsCurrentRights(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, a *app, team int64, userID int64)
		want   int
	}{
		{"removed from the team", func(t *testing.T, a *app, team, userID int64) {
			if err := a.auth.RemoveMember(t.Context(), adminPrincipal(t, a), team, userID, metaFor()); err != nil {
				t.Fatal(err)
			}
		}, http.StatusNotFound},
		{"made a viewer", func(t *testing.T, a *app, team, _ int64) {
			if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), team, "dev@example.no", "viewer", metaFor()); err != nil {
				t.Fatal(err)
			}
		}, http.StatusForbidden},
		{"removed by another process on the same database", func(t *testing.T, a *app, team, userID int64) {
			// No observer hears of this change: only the check at every step catches it.
			if err := a.db.Tx(t.Context(), func(tx *sql.Tx) error { return store.DeleteMember(context.Background(), tx, team, userID) }); err != nil {
				t.Fatal(err)
			}
		}, http.StatusNotFound},
		{"portal role taken back from an admin", func(t *testing.T, a *app, team, userID int64) {
			// The person tried as an administrator who is not on the team.
			if err := a.auth.SetRole(t.Context(), adminPrincipal(t, a), userID, "member", metaFor()); err != nil {
				t.Fatal(err)
			}
		}, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, c, _, path := tryFixture(t)
			dev := a.principalOf("dev@example.no")
			team := dev.Teams[0].TeamID
			if strings.HasPrefix(tc.name, "portal role") {
				// An administrator outside the team opens the try instead.
				admin2 := a.addUser("boss@example.no", "admin")
				c = a.client()
				c.login("boss@example.no")
				dev = a.principalOf(admin2.Email)
			}
			p, secret := openTryWithTokens(t, c, path)
			tryID, _ := p.doc.Find(`input[name="try"]`).First().Attr("value")
			href, ok := p.doc.Find(`[data-testid="download"]`).First().Attr("href")
			if tryID == "" || !ok {
				t.Fatal("no try id or download link")
			}
			grant := formOf(p, `form[data-testid="grant-form"]`)
			grant.Set("how", "kept")
			inst := formOf(p, `[data-testid="instances"] tbody tr:first-child form`)
			if inst.Get("instance") == "" {
				t.Fatal("no instance to open")
			}
			before := tryCount(t, a)

			tc.change(t, a, team, dev.UserID)

			steps := []struct {
				name string
				do   func() page
			}{
				// The reveals first, while the try still holds the tokens they would show.
				{"reveal token", func() page {
					return c.post(path+"/reveal", url.Values{"try": {tryID}, "step": {"token"}})
				}},
				{"reveal exchange", func() page {
					return c.post(path+"/reveal", url.Values{"try": {tryID}, "step": {"exchange"}})
				}},
				{"grant", func() page { return c.post(path+"/grant", grant) }},
				{"token", func() page { return c.post(path+"/token", url.Values{"try": {tryID}}) }},
				{"exchange", func() page { return c.post(path+"/exchange", url.Values{"try": {tryID}}) }},
				{"instances", func() page {
					return c.post(path+"/instances", url.Values{"try": {tryID}, "org": {"ttd"}})
				}},
				{"next", func() page { return c.post(path+"/next", url.Values{"try": {tryID}}) }},
				{"instance", func() page { return c.post(path+"/instance", inst) }},
				{"data", func() page { return c.get(href) }},
				{"page with the try", func() page { return c.get(path + "?try=" + tryID) }},
			}
			for _, st := range steps {
				got := st.do()
				if got.status != tc.want {
					t.Errorf("%s: status %d, want %d", st.name, got.status, tc.want)
				}
				if strings.Contains(got.body, secret) {
					t.Errorf("%s: the token is shown to someone who lost the right to it", st.name)
				}
			}
			if after := tryCount(t, a); after != before+1 {
				t.Errorf("the try was not ended and audited at once: %d try events before, %d after", before, after)
			}
		})
	}
}

// Disabling an account or ending its sessions ends the person's open tries at once (audited,
// tokens forgotten), not when they would have gone idle.
func TestTryEndsWhenTheAccountChanges(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, a *app, userID int64)
	}{
		{"account disabled", func(t *testing.T, a *app, userID int64) {
			if err := a.auth.SetDisabled(t.Context(), adminPrincipal(t, a), userID, true, metaFor()); err != nil {
				t.Fatal(err)
			}
		}},
		{"sessions ended", func(t *testing.T, a *app, userID int64) {
			if _, err := a.auth.EndSessions(t.Context(), adminPrincipal(t, a), userID, metaFor()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, c, _, path := tryFixture(t)
			openTryWithTokens(t, c, path)
			before := tryCount(t, a)
			tc.change(t, a, a.principalOf("dev@example.no").UserID)
			if after := tryCount(t, a); after != before+1 {
				t.Errorf("the try was not ended and audited: %d try events before, %d after", before, after)
			}
		})
	}
}

// One person holds at most perPerson open tries: opening one more ends their
// oldest, and leaves other people's tries alone.
func TestTryOpenTriesPerPersonAreCapped(t *testing.T) {
	a, c, _, path := tryFixture(t)
	a.addUser("dev2@example.no", "member")
	if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), mustID(t, teamOf(t, a, "dev@example.no")), "dev2@example.no", "member", metaFor()); err != nil {
		t.Fatal(err)
	}
	other := a.client()
	other.login("dev2@example.no")
	op := other.get(path)
	otherID, _ := op.doc.Find(`input[name="try"]`).First().Attr("value")

	var ids []string
	for range perPerson + 1 {
		p := c.get(path)
		id, _ := p.doc.Find(`input[name="try"]`).First().Attr("value")
		if p.status != http.StatusOK || id == "" {
			t.Fatalf("try page: %d", p.status)
		}
		ids = append(ids, id)
	}
	token := func(c *client, id string) page { return c.post(path+"/token", url.Values{"try": {id}}) }
	if p := token(c, ids[0]); p.status != http.StatusNotFound || !strings.Contains(p.body, "This try has ended") {
		t.Errorf("the oldest of %d tries: %d, want 404 saying it ended", len(ids), p.status)
	}
	for _, id := range ids[1:] {
		if p := token(c, id); p.status != http.StatusOK {
			t.Errorf("a newer try: %d", p.status)
		}
	}
	if p := token(other, otherID); p.status != http.StatusOK {
		t.Errorf("another person's try was ended: %d", p.status)
	}
}

// perPerson is tryit.DefaultMaxPerPerson, the cap the harness's try service runs with.
const perPerson = 5
