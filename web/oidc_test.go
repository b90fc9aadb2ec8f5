package web_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/identity"
	"portal/internal/store"
	"portal/web"
)

const testOrg = "313554430"

// ansattportenDetails is authorization_details as Ansattporten returns it for a person who
// holds rights for the organisation in an Altinn service.
func ansattportenDetails(org string, rights ...string) any {
	return []any{map[string]any{"type": identity.DefaultDetailsType, "resource": "urn:altinn:resource:5613:1", "resource_name": "Portal",
		"reportees": []any{map[string]any{"Rights": rights, "Authority": "iso6523-actorid-upis", "ID": "0192:" + org, "Name": "TESTDEPARTEMENTET"}}}}
}

// oidcWorld is the portal with one provider configured, and that provider: a real OpenID
// Provider started in the test.
type oidcWorld struct {
	*app
	op   *testOP
	keys []*rsa.PrivateKey
}

func newOIDCWorld(t *testing.T, adjust func(*identity.ProviderConfig)) *oidcWorld {
	t.Helper()
	gen := simKeys()
	k1, _ := gen()
	k2, _ := gen()
	portal := httptest.NewUnstartedServer(nil)
	public := "http://" + portal.Listener.Addr().String()
	o := newTestOP(t, "portal-client", "client-secret", public+"/login/oidc/corp/callback", public+"/login", k1)

	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := auth.NewService(db, auth.Options{Hash: cheap})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := auth.NewSessionStore(db, auth.SessionOptions{KeyPairs: [][]byte{bytes.Repeat([]byte("k"), 32)}})
	if err != nil {
		t.Fatal(err)
	}
	pc := identity.ProviderConfig{Name: "corp", DisplayName: "Corp ID", Issuer: o.issuer(), ClientID: "portal-client", ClientSecret: "client-secret",
		Rules: []identity.Rule{
			{Claim: "groups", Value: "portal-admins", Admin: true},
			{Claim: "groups", Value: "team-a-owners", Team: "Team A", TeamRole: auth.TeamOwner},
			{AuthorizationDetails: &identity.RightMatch{Org: testOrg, Right: "Write"}, Team: "Team B", TeamRole: auth.TeamMember},
		}}
	if adjust != nil {
		adjust(&pc)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{ReplaceAttr: web.RedactAttr}))
	ids, err := identity.New(db, a, []identity.ProviderConfig{pc}, identity.Options{PublicURL: public, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.Config{OrgName: "Testdepartementet", PublicURL: public, FlashKey: bytes.Repeat([]byte("f"), 32), Log: log,
		Envs: []web.Env{{Name: "tt02", Label: "Test (tt02)", Simulated: true}}}
	w, err := web.New(cfg, web.Deps{Auth: a, Sessions: sessions, Audit: audit.NewLog(db, nil), DB: db, Identity: ids})
	if err != nil {
		t.Fatal(err)
	}
	portal.Config.Handler = w.Handler()
	portal.Start()
	t.Cleanup(portal.Close)
	ap := &app{t: t, srv: portal, db: db, auth: a, web: w, logs: logs}
	// A local administrator and the teams the rules name.
	ap.addUser("admin@example.no", auth.RoleAdmin)
	for _, team := range []string{"Team A", "Team B"} {
		if _, err := a.CreateTeam(ctx, adminPrincipal(t, ap), team, metaFor()); err != nil {
			t.Fatal(err)
		}
	}
	o.st.setUser("ada", opUser{Email: "ada@corp.example", Name: "Ada Lovelace", Groups: []string{"team-a-owners", "portal-admins"},
		Details: ansattportenDetails(testOrg, "Read", "Write")})
	o.st.setUser("bob", opUser{Email: "bob@corp.example", Name: "Bob", Groups: []string{"sales"}, Details: ansattportenDetails("999999999", "Write")})
	return &oidcWorld{app: ap, op: o, keys: []*rsa.PrivateKey{k1, k2}}
}

// flow is one walk of a browser through the sign-in.
type flow struct {
	callback string // the URL the provider sent the browser back to
	result   page   // the portal's answer to it
}

// signInVia walks the browser from the portal to the provider (which signs in user) and
// back; before the callback is requested, edit (when set) may change its URL.
func (c *client) signInVia(provider, user string, edit func(*url.URL)) flow {
	c.t.Helper()
	next, err := url.Parse(c.base + "/login/oidc/" + provider)
	if err != nil {
		c.t.Fatal(err)
	}
	var f flow
	for range 10 {
		if strings.HasSuffix(next.Path, "/callback") && strings.HasPrefix(next.Path, "/login/oidc/") {
			if edit != nil {
				edit(next)
			}
			f.callback = next.String()
			f.result = c.getAbs(next.String())
			return f
		}
		if next.Path == "/login" && next.Query().Get("authRequestID") != "" {
			q := next.Query()
			q.Set("user", user)
			next.RawQuery = q.Encode()
		}
		p := c.getAbs(next.String())
		loc := p.header.Get("Location")
		if loc == "" {
			f.result = p
			return f
		}
		if next, err = next.Parse(loc); err != nil {
			c.t.Fatal(err)
		}
	}
	c.t.Fatal("too many redirects")
	return f
}

func (c *client) getAbs(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return c.do(req)
}

// signedInAs returns the email on the account page, "" when the browser is not signed in.
func (c *client) signedInAs() string {
	p := c.get("/account")
	if p.status != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(p.doc.Find(".portal-facts dd").Eq(1).Text())
}

func (w *oidcWorld) memberships(email string) map[string]string {
	w.t.Helper()
	u, err := w.db.UserByEmail(w.t.Context(), email)
	if err != nil {
		w.t.Fatal(err)
	}
	ms, err := w.db.UserMemberships(w.t.Context(), u.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.TeamName] = m.Role + "/" + m.Source
	}
	return out
}

func (w *oidcWorld) events(action string) []audit.Event {
	w.t.Helper()
	evs, err := audit.NewLog(w.db, nil).Query(w.t.Context(), audit.Filter{Action: action, Limit: 100})
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

func TestOIDCSignInMapsTeamsAndTheNextSignInTakesThemAway(t *testing.T) {
	t.Parallel()
	w := newOIDCWorld(t, nil)
	c := w.client()

	login := c.get("/login")
	if got := text(login, `[data-testid="provider-link"]`); got != "Sign in with Corp ID" {
		t.Fatalf("sign-in page offers %q", got)
	}
	f := c.signInVia("corp", "ada", nil)
	if f.result.status != http.StatusSeeOther || f.result.header.Get("Location") != "/" {
		t.Fatalf("callback answered %d %s: %s", f.result.status, f.result.header.Get("Location"), f.result.body)
	}
	if got := c.signedInAs(); got != "ada@corp.example" {
		t.Fatalf("signed in as %q", got)
	}
	if got := w.memberships("ada@corp.example"); got["Team A"] != "owner/corp" || got["Team B"] != "member/corp" || len(got) != 2 {
		t.Fatalf("memberships after the first sign-in: %v", got)
	}
	p := w.principalOf("ada@corp.example")
	if !p.IsAdmin() {
		t.Fatalf("the portal-admins group gave role %q", p.Role)
	}
	// The account page says where the memberships come from.
	acc := c.get("/account")
	if !strings.Contains(text(acc, ".portal-facts"), "from corp") {
		t.Fatalf("the account page does not mark provider memberships: %s", acc.body)
	}

	// A hand edit of what the provider manages is refused, for the membership and the role.
	admin := w.client()
	admin.login("admin@example.no")
	teamA := p.Teams[0].TeamID
	if r := admin.post("/admin/teams/"+itoa(teamA)+"/members/"+itoa(p.UserID)+"/remove", nil); r.status != http.StatusConflict ||
		!strings.Contains(r.body, "comes from sign-in through corp") {
		t.Fatalf("removing a provider membership by hand: %d %s", r.status, r.body)
	}
	if r := admin.post("/admin/teams/"+itoa(teamA)+"/members", url.Values{"email": {"ada@corp.example"}, "role": {"viewer"}}); r.status == http.StatusSeeOther {
		t.Fatalf("changing a provider membership by hand was accepted")
	}
	if r := admin.post("/admin/users/"+itoa(p.UserID)+"/role", url.Values{"role": {"member"}}); r.status == http.StatusSeeOther {
		t.Fatalf("changing a provider-given role by hand was accepted")
	}
	team := admin.get("/teams/" + itoa(teamA))
	if !strings.Contains(text(team, `[data-testid="members-table"]`), "from corp") {
		t.Fatalf("the team page does not mark the provider membership")
	}

	// Ada leaves the groups; the right in Altinn stays. The next sign-in follows.
	w.op.st.setUser("ada", opUser{Email: "ada@corp.example", Name: "Ada Lovelace", Groups: []string{}, Details: ansattportenDetails(testOrg, "Write")})
	c2 := w.client()
	if f := c2.signInVia("corp", "ada", nil); f.result.status != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d %s", f.result.status, f.result.body)
	}
	if got := w.memberships("ada@corp.example"); got["Team B"] != "member/corp" || len(got) != 1 {
		t.Fatalf("memberships after losing the group: %v", got)
	}
	if p := w.principalOf("ada@corp.example"); p.IsAdmin() {
		t.Fatal("still an administrator after leaving portal-admins")
	}
	removed := w.events(audit.ActionMemberRemove)
	if len(removed) != 1 || removed[0].Target != "Team A" || !strings.Contains(string(removed[0].Details), `"source":"corp"`) {
		t.Fatalf("removal audit: %+v", removed)
	}
	if n := len(w.events(audit.ActionUserCreate)); n != 2 { // the local admin and Ada, once
		t.Fatalf("%d accounts created, want 2 (matched by subject the second time)", n)
	}
	if roles := w.events(audit.ActionUserRole); len(roles) != 2 {
		t.Fatalf("role changes audited: %d, want 2 (given, taken)", len(roles))
	}
}

func TestOIDCRefusesWhoMatchesNoRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		unmatched string
		status    int
		message   string
		pending   bool
	}{
		{"refused", "", http.StatusForbidden, "none of your groups or rights gives access", false},
		{"waits for approval", "approval", http.StatusForbidden, "waits for an administrator", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newOIDCWorld(t, func(pc *identity.ProviderConfig) { pc.Unmatched = tc.unmatched })
			c := w.client()
			f := c.signInVia("corp", "bob", nil)
			if f.result.status != tc.status || !strings.Contains(f.result.body, tc.message) {
				t.Fatalf("bob: %d %s", f.result.status, f.result.body)
			}
			if got := c.signedInAs(); got != "" {
				t.Fatalf("signed in as %q", got)
			}
			u, err := w.db.UserByEmail(t.Context(), "bob@corp.example")
			if tc.pending != (err == nil) || (err == nil && !u.PendingApproval) {
				t.Fatalf("account after the refusal: %+v %v", u, err)
			}
			denied := w.events(audit.ActionSignIn)
			if len(denied) == 0 || denied[0].Outcome != audit.Denied {
				t.Fatalf("refusal not audited: %+v", denied)
			}
			if !tc.pending {
				return
			}
			// Approved, the same person (by subject) gets in.
			admin := w.client()
			admin.login("admin@example.no")
			if r := admin.post("/admin/users/"+itoa(u.ID)+"/approve", nil); r.status != http.StatusSeeOther {
				t.Fatalf("approve: %d", r.status)
			}
			if f := w.client().signInVia("corp", "bob", nil); f.result.status != http.StatusSeeOther {
				t.Fatalf("after approval: %d %s", f.result.status, f.result.body)
			}
		})
	}
}

// TestOIDCAttacks tries the ways a sign-in can be forged or replayed; each must leave the
// browser signed out, with a message, and the refusal audited.
func TestOIDCAttacks(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, tc := range []struct {
		name string
		// misbehave makes the provider return a bad ID token.
		misbehave func(w *oidcWorld)
		// attack runs the flow its own way and returns the portal's answer.
		attack func(w *oidcWorld, c *client) page
		status int
		reason string // in the audited refusal
	}{
		{name: "tampered state", status: http.StatusUnprocessableEntity, reason: "state does not match",
			attack: func(w *oidcWorld, c *client) page {
				return c.signInVia("corp", "ada", func(u *url.URL) {
					q := u.Query()
					q.Set("state", q.Get("state")+"x")
					u.RawQuery = q.Encode()
				}).result
			}},
		{name: "callback in another browser (login CSRF)", status: http.StatusUnprocessableEntity, reason: "state does not match",
			attack: func(w *oidcWorld, c *client) page {
				var cb string
				w.client().signInVia("corp", "ada", func(u *url.URL) { cb = u.String(); u.Path += "-not-sent" })
				return c.getAbs(cb) // the victim's browser never started this sign-in
			}},
		{name: "replayed callback", status: http.StatusUnprocessableEntity, reason: "unknown or used state",
			attack: func(w *oidcWorld, c *client) page {
				f := c.signInVia("corp", "ada", nil)
				if f.result.status != http.StatusSeeOther {
					panic("first sign-in failed: " + f.result.body)
				}
				c.post("/logout", nil)
				// Same browser, same URL, and the state cookie put back as it was: the flow
				// is spent all the same.
				cb := mustURL(f.callback)
				c.hc.Jar.SetCookies(cb, []*http.Cookie{{Name: "portal_oidc_state", Value: cb.Query().Get("state"), Path: "/login/oidc/"}})
				return c.getAbs(f.callback)
			}},
		{name: "replayed code in a fresh flow", status: http.StatusUnauthorized, reason: "code exchange refused",
			attack: func(w *oidcWorld, c *client) page {
				victim := w.client().signInVia("corp", "ada", nil)
				code := mustURL(victim.callback).Query().Get("code")
				// The attacker starts a sign-in of their own and brings the victim's used code.
				return c.signInVia("corp", "bob", func(u *url.URL) {
					q := u.Query()
					q.Set("code", code)
					u.RawQuery = q.Encode()
				}).result
			}},
		{name: "wrong nonce", status: http.StatusUnauthorized, reason: "nonce does not match",
			misbehave: func(w *oidcWorld) {
				w.op.st.misbehave(func(c map[string]any) { c["nonce"] = "someone-elses-nonce" }, nil)
			}},
		{name: "expired ID token", status: http.StatusUnauthorized, reason: "expired",
			misbehave: func(w *oidcWorld) {
				w.op.st.misbehave(func(c map[string]any) {
					c["exp"] = now.Add(-time.Hour).Unix()
					c["iat"] = now.Add(-2 * time.Hour).Unix()
				}, nil)
			}},
		{name: "wrong audience", status: http.StatusUnauthorized, reason: "wrong audience",
			misbehave: func(w *oidcWorld) {
				w.op.st.misbehave(func(c map[string]any) { c["aud"] = []string{"another-client"}; c["azp"] = "another-client" }, nil)
			}},
		{name: "wrong issuer", status: http.StatusUnauthorized, reason: "wrong issuer",
			misbehave: func(w *oidcWorld) {
				w.op.st.misbehave(func(c map[string]any) { c["iss"] = "https://evil.example" }, nil)
			}},
		{name: "signed with another key", status: http.StatusUnauthorized, reason: "bad signature",
			misbehave: func(w *oidcWorld) { w.op.st.misbehave(func(map[string]any) {}, w.keys[1]) }},
		{name: "unknown provider", status: http.StatusNotFound, reason: "",
			attack: func(w *oidcWorld, c *client) page { return c.get("/login/oidc/nobody") }},
		{name: "provider error", status: http.StatusForbidden, reason: "provider answered access_denied",
			attack: func(w *oidcWorld, c *client) page {
				return c.signInVia("corp", "ada", func(u *url.URL) {
					q := u.Query()
					q.Del("code")
					q.Set("error", "access_denied")
					u.RawQuery = q.Encode()
				}).result
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newOIDCWorld(t, nil)
			c := w.client()
			if tc.misbehave != nil {
				tc.misbehave(w)
			}
			var p page
			if tc.attack != nil {
				p = tc.attack(w, c)
			} else {
				p = c.signInVia("corp", "ada", nil).result
			}
			if p.status != tc.status {
				t.Fatalf("status %d, want %d: %s", p.status, tc.status, p.body)
			}
			if msg := text(p, `[data-testid="error-summary"], .ds-alert, [role="alert"]`); msg == "" && !strings.Contains(p.body, "Start again") && tc.reason != "" {
				t.Fatalf("no message for the person: %s", p.body)
			}
			if got := c.signedInAs(); got != "" {
				t.Fatalf("the attack signed the browser in as %q", got)
			}
			if tc.reason == "" {
				return
			}
			found := false
			for _, ev := range w.events(audit.ActionSignIn) {
				var d map[string]any
				_ = json.Unmarshal(ev.Details, &d)
				if r, _ := d["reason"].(string); ev.Outcome == audit.Denied && strings.Contains(r, tc.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no refusal audited with reason %q: %+v", tc.reason, w.events(audit.ActionSignIn))
			}
			if strings.Contains(w.logs.String(), "client-secret") {
				t.Fatal("the client secret reached the log")
			}
		})
	}
}

func TestOIDCSignOutEndsTheProviderSession(t *testing.T) {
	t.Parallel()
	w := newOIDCWorld(t, nil)
	c := w.client()
	if f := c.signInVia("corp", "ada", nil); f.result.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", f.result.status, f.result.body)
	}
	out := c.post("/logout", nil)
	end, err := url.Parse(out.header.Get("Location"))
	if err != nil || out.status != http.StatusSeeOther || !strings.HasPrefix(end.String(), w.op.issuer()) {
		t.Fatalf("sign-out answered %d %q", out.status, out.header.Get("Location"))
	}
	q := end.Query()
	if q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != w.srv.URL+"/login" {
		t.Fatalf("end-session request %v", q)
	}
	if got := c.signedInAs(); got != "" {
		t.Fatalf("still signed in at the portal as %q", got)
	}
	// The provider accepts the hint, ends its session and sends the browser back.
	back := c.getAbs(end.String())
	if back.status != http.StatusFound || !strings.HasPrefix(back.header.Get("Location"), w.srv.URL+"/login") {
		t.Fatalf("provider's end-session answered %d %q: %s", back.status, back.header.Get("Location"), back.body)
	}
	if ended := w.op.st.endedSessions(); len(ended) != 1 || ended[0] != "ada" {
		t.Fatalf("provider sessions ended: %v", ended)
	}
	// A person who signed in with a password signs out at the portal only.
	local := w.client()
	local.login("admin@example.no")
	if r := local.post("/logout", nil); r.header.Get("Location") != "/login" {
		t.Fatalf("local sign-out went to %q", r.header.Get("Location"))
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestOIDCPrivateKeyJWT authenticates the portal to the provider with private_key_jwt (as
// Ansattporten and Entra with a certificate expect): the right key signs in, another key is
// refused at the token endpoint.
func TestOIDCPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	gen := simKeys()
	for range 2 {
		_, _ = gen() // the provider's keys in newOIDCWorld
	}
	registered, _ := gen()
	other, _ := gen()
	for _, tc := range []struct {
		name   string
		key    *rsa.PrivateKey
		status int
	}{
		{"registered key", registered, http.StatusSeeOther},
		{"another key", other, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			der, err := x509.MarshalPKCS8PrivateKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			w := newOIDCWorld(t, func(pc *identity.ProviderConfig) {
				pc.ClientSecret, pc.KeyID = "", "client-key"
				pc.PrivateKey = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
			})
			w.op.st.mu.Lock()
			w.op.st.client.key = &registered.PublicKey
			w.op.st.mu.Unlock()
			c := w.client()
			f := c.signInVia("corp", "ada", nil)
			if f.result.status != tc.status {
				t.Fatalf("callback %d, want %d: %s", f.result.status, tc.status, f.result.body)
			}
			if signedIn := c.signedInAs() != ""; signedIn != (tc.status == http.StatusSeeOther) {
				t.Fatalf("signed in: %v", signedIn)
			}
		})
	}
}
