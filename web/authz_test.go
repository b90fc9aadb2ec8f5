package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAuthorizationTable checks every registered route for every kind of visitor. A route
// missing from the table fails the test, so a new route cannot be added unchecked.
func TestAuthorizationTable(t *testing.T) {
	const (
		anon   = "anonymous"
		member = "member"
		admin  = "admin"
	)
	type want map[string]int
	table := map[string]want{
		"GET /healthz":                               {anon: 200, member: 200, admin: 200},
		"GET /readyz":                                {anon: 200, member: 200, admin: 200},
		"GET /static/*":                              {anon: 200, member: 200, admin: 200},
		"GET /login":                                 {anon: 200, member: 303, admin: 303},
		"POST /login":                                {anon: 401, member: 401, admin: 401},
		"POST /logout":                               {anon: 303, member: 303, admin: 303},
		"GET /setup":                                 {anon: 404, member: 404, admin: 404},
		"POST /setup":                                {anon: 422, member: 422, admin: 422},
		"GET /password/set":                          {anon: 404, member: 404, admin: 404},
		"POST /password/set":                         {anon: 422, member: 422, admin: 422},
		"GET /":                                      {anon: 303, member: 200, admin: 200},
		"GET /envs/:env":                             {anon: 303, member: 200, admin: 200},
		"GET /account":                               {anon: 303, member: 200, admin: 200},
		"POST /account/password":                     {anon: 303, member: 422, admin: 422},
		"GET /teams/:id":                             {anon: 303, member: 404, admin: 200},
		"GET /admin/users":                           {anon: 303, member: 403, admin: 200},
		"POST /admin/users":                          {anon: 303, member: 403, admin: 422},
		"GET /admin/users/:id":                       {anon: 303, member: 403, admin: 200},
		"POST /admin/users/:id/role":                 {anon: 303, member: 403, admin: 422},
		"POST /admin/users/:id/disabled":             {anon: 303, member: 403, admin: 422},
		"POST /admin/users/:id/sessions":             {anon: 303, member: 403, admin: 303},
		"POST /admin/users/:id/password-link":        {anon: 303, member: 403, admin: 200},
		"GET /admin/teams":                           {anon: 303, member: 403, admin: 200},
		"POST /admin/teams":                          {anon: 303, member: 403, admin: 422},
		"POST /admin/teams/:id/name":                 {anon: 303, member: 403, admin: 422},
		"POST /admin/teams/:id/members":              {anon: 303, member: 403, admin: 422},
		"POST /admin/teams/:id/members/:user/remove": {anon: 303, member: 403, admin: 404},
	}

	a := newApp(t)
	a.addUser("admin@example.no", "admin")
	m := a.addUser("member@example.no", "member")
	team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Other team", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	params := strings.NewReplacer(":env", "tt02", ":id", itoa(team.ID), ":user", itoa(m.ID), "*", "css/portal.css")
	// Paths where :id means a user, not a team.
	userParams := strings.NewReplacer(":id", itoa(m.ID))

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
		if strings.HasPrefix(path, "/admin/users/") {
			path = userParams.Replace(path)
		}
		path = params.Replace(path)
		for _, who := range []string{anon, member, admin} {
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
