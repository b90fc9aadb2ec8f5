package web_test

import (
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portal/internal/clients"
	"portal/internal/store"
	"portal/web"
)

// TestAuthorizationTable checks every registered route for every kind of visitor. A route
// missing from the table fails the test, so a new route cannot be added unchecked.
func TestAuthorizationTable(t *testing.T) {
	const (
		anon     = "anonymous"
		viewer   = "viewer"   // viewer of the team that owns the integration
		member   = "member"   // member of that team
		outsider = "outsider" // owner of another team
		admin    = "admin"
	)
	type want map[string]int
	// same gives every signed-in non-admin the same answer.
	same := func(a, m, ad int) want { return want{anon: a, viewer: m, member: m, outsider: m, admin: ad} }
	table := map[string]want{
		"GET /healthz":                               same(200, 200, 200),
		"GET /readyz":                                same(200, 200, 200),
		"GET /static/*":                              same(200, 200, 200),
		"GET /metrics":                               same(401, 401, 401), // a session is no bearer token
		"GET /login":                                 same(200, 303, 303),
		"POST /login":                                same(401, 401, 401),
		"POST /logout":                               same(303, 303, 303),
		"GET /login/oidc/:provider":                  same(404, 404, 404), // no provider configured here; see oidc_test.go
		"GET /login/oidc/:provider/callback":         same(404, 404, 404),
		"GET /setup":                                 same(404, 404, 404),
		"POST /setup":                                same(404, 404, 404), // the link is checked before the form
		"GET /password/set":                          same(404, 404, 404),
		"POST /password/set":                         same(404, 404, 404),
		"GET /":                                      same(303, 200, 200),
		"GET /envs/:env":                             same(303, 200, 200),
		"GET /account":                               same(303, 200, 200),
		"POST /account/password":                     same(303, 422, 422),
		"GET /teams/:id":                             {anon: 303, viewer: 200, member: 200, outsider: 404, admin: 200},
		"GET /onboarding":                            {anon: 303, viewer: 200, member: 200, outsider: 200, admin: 200},
		"GET /keys":                                  same(303, 200, 200),
		"GET /admin/users":                           same(303, 403, 200),
		"POST /admin/users":                          same(303, 403, 422),
		"GET /admin/users/:id":                       same(303, 403, 200),
		"POST /admin/users/:id/role":                 same(303, 403, 422),
		"POST /admin/users/:id/disabled":             same(303, 403, 422),
		"POST /admin/users/:id/sessions":             same(303, 403, 303),
		"POST /admin/users/:id/password-link":        same(303, 403, 200),
		"POST /admin/users/:id/approve":              same(303, 403, 409), // the member is not waiting for approval
		"POST /admin/users/:id/unlock":               same(303, 403, 303),
		"GET /admin/environments":                    same(303, 403, 200),
		"GET /audit":                                 {anon: 303, viewer: 403, member: 403, outsider: 200, admin: 200}, // outsider owns team B
		"GET /audit/export":                          {anon: 303, viewer: 403, member: 403, outsider: 422, admin: 422}, // no format chosen
		"GET /admin/teams":                           same(303, 403, 200),
		"POST /admin/teams":                          same(303, 403, 422),
		"POST /admin/teams/:id/name":                 same(303, 403, 422),
		"POST /admin/teams/:id/members":              same(303, 403, 422),
		"POST /admin/teams/:id/members/:user/remove": same(303, 403, 303),
		"POST /teams/:id/invitations":                {anon: 303, viewer: 403, member: 403, outsider: 404, admin: 422}, // owners of the team too
		"POST /teams/:id/invitations/:inv/revoke":    {anon: 303, viewer: 403, member: 403, outsider: 404, admin: 303},
		"GET /invite":                                same(404, 404, 404), // no link, nothing shown
		"POST /invite":                               same(404, 404, 404),

		"GET /envs/:env/integrations":       same(303, 200, 200),
		"POST /envs/:env/integrations":      {anon: 303, viewer: 403, member: 422, outsider: 422, admin: 422},
		"GET /envs/:env/integrations/new":   same(303, 200, 200),                                              // a viewer learns what to do next
		"POST /envs/:env/integrations/sync": {anon: 303, viewer: 403, member: 303, outsider: 303, admin: 303}, // a team role; presses within 30 s get a message

		"GET /envs/:env/integrations/:id":                      {anon: 303, viewer: 200, member: 200, outsider: 404, admin: 200},
		"GET /envs/:env/integrations/:id/edit":                 {anon: 303, viewer: 403, member: 200, outsider: 404, admin: 200},
		"POST /envs/:env/integrations/:id/edit":                {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"GET /envs/:env/integrations/:id/deactivate":           {anon: 303, viewer: 403, member: 200, outsider: 404, admin: 200},
		"POST /envs/:env/integrations/:id/deactivate":          {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"GET /envs/:env/integrations/:id/copy":                 {anon: 303, viewer: 403, member: 200, outsider: 404, admin: 200},
		"POST /envs/:env/integrations/:id/copy":                {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"POST /envs/:env/integrations/:id/acknowledge":         {anon: 303, viewer: 403, member: 303, outsider: 404, admin: 303},
		"GET /envs/:env/integrations/:id/keys":                 {anon: 303, viewer: 200, member: 200, outsider: 404, admin: 200},
		"POST /envs/:env/integrations/:id/keys/generate":       {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"GET /envs/:env/integrations/:id/keys/generated/:job":  same(303, 404, 404), // nobody's generation
		"POST /envs/:env/integrations/:id/keys/generated/:job": same(303, 404, 404),
		"POST /envs/:env/integrations/:id/keys/upload":         {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"POST /envs/:env/integrations/:id/keys/renew":          {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"GET /envs/:env/integrations/:id/keys/delete":          {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404}, // no such kid
		"POST /envs/:env/integrations/:id/keys/delete":         {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		// Rotation: with no rotation open, its steps answer 409 (start one first).
		"GET /envs/:env/integrations/:id/keys/rotate":                 {anon: 303, viewer: 403, member: 200, outsider: 404, admin: 200},
		"POST /envs/:env/integrations/:id/keys/rotate":                {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"POST /envs/:env/integrations/:id/keys/rotate/generate":       {anon: 303, viewer: 403, member: 422, outsider: 404, admin: 422},
		"GET /envs/:env/integrations/:id/keys/rotate/generated/:job":  same(303, 404, 404), // nobody's generation
		"POST /envs/:env/integrations/:id/keys/rotate/generated/:job": {anon: 303, viewer: 403, member: 409, outsider: 404, admin: 409},
		"POST /envs/:env/integrations/:id/keys/rotate/upload":         {anon: 303, viewer: 403, member: 409, outsider: 404, admin: 409},
		"POST /envs/:env/integrations/:id/keys/rotate/use":            {anon: 303, viewer: 403, member: 409, outsider: 404, admin: 409},
		"POST /envs/:env/integrations/:id/keys/rotate/prove":          {anon: 303, viewer: 403, member: 409, outsider: 404, admin: 409},
		"GET /envs/:env/integrations/:id/keys/rotate/proof":           {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/keys/rotate/switch":         {anon: 303, viewer: 403, member: 409, outsider: 404, admin: 409},
		"POST /envs/:env/integrations/:id/keys/rotate/retire":         {anon: 303, viewer: 403, member: 409, outsider: 404, admin: 409},
		"POST /envs/:env/integrations/:id/keys/rotate/cancel":         {anon: 303, viewer: 403, member: 409, outsider: 404, admin: 409},
		// Trying: viewers may not; without an open try (the empty form names none) the steps answer 404.
		"GET /envs/:env/integrations/:id/try":            {anon: 303, viewer: 403, member: 200, outsider: 404, admin: 200},
		"POST /envs/:env/integrations/:id/try/grant":     {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/try/token":     {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/try/exchange":  {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/try/instances": {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/try/next":      {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/try/instance":  {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/try/get":       {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"GET /envs/:env/integrations/:id/try/data":       {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		"POST /envs/:env/integrations/:id/try/reveal":    {anon: 303, viewer: 403, member: 404, outsider: 404, admin: 404},
		// Second factors: the sign-in's second step needs its own cookie (none here), not a session.
		"GET /login/factor":                         same(303, 303, 303),
		"POST /login/factor":                        same(303, 303, 303),
		"POST /login/factor/cancel":                 same(303, 303, 303),
		"POST /login/factor/passkey/options":        same(401, 401, 401),
		"POST /login/factor/passkey":                same(401, 401, 401),
		"POST /login/passkey/options":               same(200, 200, 200), // anyone may start a password-less sign-in
		"POST /login/passkey":                       same(401, 401, 401),
		"GET /account/security":                     same(303, 200, 200),
		"POST /account/totp":                        same(303, 200, 200),
		"POST /account/totp/confirm":                same(303, 422, 422), // no code typed
		"POST /account/passkeys/options":            same(303, 200, 200),
		"POST /account/passkeys":                    same(303, 422, 422), // no name, no answer
		"POST /account/factors/:factor/remove":      same(303, 404, 404), // nobody's factor
		"POST /account/recovery-codes":              same(303, 409, 409), // no second factor yet
		"POST /admin/users/:id/second-factor/reset": same(303, 403, 409), // the member has none
		"GET /explain":                              same(303, 200, 200),
		"POST /explain":                             same(303, 422, 422), // nothing pasted
	}

	a := newSimApp(t, func(c *web.Config) { c.MetricsToken = strings.Repeat("m", 32) })
	ctx := t.Context()
	a.addUser("admin@example.no", "admin")
	adminP := adminPrincipal(t, a)
	teamA, err := a.auth.CreateTeam(ctx, adminP, "Team A", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	teamB, err := a.auth.CreateTeam(ctx, adminP, "Team B", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	m := a.addUser("member@example.no", "member")
	a.addUser("viewer@example.no", "member")
	a.addUser("outsider@example.no", "member")
	// The removal route removes spare from team A, so it must not be anyone the table signs in as.
	spare := a.addUser("spare@example.no", "member")
	for _, tm := range []struct {
		team        int64
		email, role string
	}{{teamA.ID, "member@example.no", "member"}, {teamA.ID, "viewer@example.no", "viewer"}, {teamB.ID, "outsider@example.no", "owner"}, {teamA.ID, "spare@example.no", "member"}} {
		if err := a.auth.PutMember(ctx, adminP, tm.team, tm.email, tm.role, metaFor()); err != nil {
			t.Fatal(err)
		}
	}
	clientID, err := a.clients.Create(ctx, adminP, metaFor(), "tt02", clients.Draft{Name: "Authz", Description: "Owned by team A",
		TeamID: teamA.ID, Scopes: clients.AltinnServiceOwnerScopes, Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	// The revoke route withdraws this invitation to team A.
	inv, _, err := a.auth.Invite(ctx, adminP, teamA.ID, "invitee@example.no", "member", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	params := strings.NewReplacer(":env", "tt02", ":id", itoa(teamA.ID), ":user", itoa(spare.ID), ":inv", itoa(inv.ID), "*", "css/portal.css")
	// Paths where :id means a user or a client, not a team.
	userParams := strings.NewReplacer(":id", itoa(m.ID))
	clientParams := strings.NewReplacer(":id", clientID, ":job", "0123456789abcdef0123456789abcdef")

	seen := map[string]bool{}
	for _, r := range a.web.Routes() {
		key := r.Method + " " + r.Path
		if seen[key] || strings.HasSuffix(r.Path, "/*") && r.Path != "/static/*" {
			continue
		}
		seen[key] = true
		w, ok := table[key]
		if !ok {
			t.Errorf("route %s is not in the authorization table", key)
			continue
		}
		path := r.Path
		switch {
		case strings.HasPrefix(path, "/admin/users/"):
			path = userParams.Replace(path)
		case strings.HasPrefix(path, "/envs/:env/integrations/:id"):
			path = clientParams.Replace(path)
		}
		path = params.Replace(path)
		for _, who := range []string{anon, viewer, member, outsider, admin} {
			t.Run(key+"/"+who, func(t *testing.T) {
				c := a.client()
				if who != anon {
					c.login(who + "@example.no")
				}
				var p page
				if r.Method == http.MethodGet {
					p = c.get(path)
				} else {
					// An empty form: the authorized outcome is a validation message or a
					// harmless action, never a change made for someone not allowed.
					p = c.post(path, url.Values{})
				}
				if p.status != w[who] {
					t.Errorf("%s %s as %s: status %d, want %d", r.Method, path, who, p.status, w[who])
				}
			})
		}
	}
	for key := range table {
		if !seen[key] {
			t.Errorf("table lists %s, which is not a registered route", key)
		}
	}
}

// TestPortalClientRouteTable checks every route of an integration against the portal's own
// admin client, for an administrator and for a member of a team an earlier version let it be
// given to: apart from reading it, every route is refused (403), whatever the form says.
func TestPortalClientRouteTable(t *testing.T) {
	// Reading is allowed; a generation is nobody's (404) before the integration is looked at.
	reads := map[string]int{
		"GET /envs/:env/integrations/:id":                            200,
		"GET /envs/:env/integrations/:id/keys":                       200,
		"GET /envs/:env/integrations/:id/keys/generated/:job":        404,
		"POST /envs/:env/integrations/:id/keys/generated/:job":       404,
		"GET /envs/:env/integrations/:id/keys/rotate/generated/:job": 404,
	}
	a := newSimApp(t)
	ctx := t.Context()
	a.addUser("admin@example.no", "admin")
	adminP := adminPrincipal(t, a)
	team, err := a.auth.CreateTeam(ctx, adminP, "Team A", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	a.addUser("member@example.no", "member")
	if err := a.auth.PutMember(ctx, adminP, team.ID, "member@example.no", "member", metaFor()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.clients.Sync(ctx, "tt02"); err != nil {
		t.Fatal(err)
	}
	cred, err := a.sim.AdminCredentials("tt02")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.db.Tx(ctx, func(tx *sql.Tx) error { return store.SetIntegrationTeam(ctx, tx, "tt02", cred.ClientID, team.ID) }); err != nil {
		t.Fatal(err)
	}
	params := strings.NewReplacer(":env", "tt02", ":id", cred.ClientID, ":job", "0123456789abcdef0123456789abcdef")
	n := 0
	for _, r := range a.web.Routes() {
		key := r.Method + " " + r.Path
		if !strings.HasPrefix(r.Path, "/envs/:env/integrations/:id") {
			continue
		}
		n++
		want, ok := reads[key]
		if !ok {
			want = http.StatusForbidden
		}
		path := params.Replace(r.Path)
		for _, who := range []string{"admin", "member"} {
			c := a.client()
			c.login(who + "@example.no")
			var p page
			if r.Method == http.MethodGet {
				p = c.get(path)
			} else {
				p = c.post(path, url.Values{"key": {clients.NewKey()}, "team": {itoa(team.ID)}, "name": {"x"}, "description": {"x"}, "confirm": {"1"}})
			}
			if p.status != want {
				t.Errorf("%s %s as %s: status %d, want %d", r.Method, path, who, p.status, want)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d integration routes checked", n)
	}
}
