package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// postTeam posts the new-team form with this token and these headers.
func postTeam(c *client, name, token string, headers map[string]string) page {
	c.t.Helper()
	f := url.Values{"name": {name}, "_csrf": {token}}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/admin/teams", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return c.do(req)
}

// formToken is the anti-forgery token in the forms of the page at path.
func formToken(c *client, path string) string {
	c.t.Helper()
	p := c.get(path)
	tok, _ := p.doc.Find(`input[name="_csrf"]`).First().Attr("value")
	if tok == "" {
		c.t.Fatalf("no anti-forgery token on %s (%d)", path, p.status)
	}
	return tok
}

func cookieValue(c *client, name string) string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// TestCSRFFetchMetadata: only the portal's own origin may send a state-changing request,
// even with a valid token; a sibling host (same-site) is another party.
func TestCSRFFetchMetadata(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser("ada@example.no", "admin")
	c := a.client()
	c.login("ada@example.no")
	token := formToken(c, "/admin/teams")
	tests := []struct {
		site string
		want int
	}{
		{"same-site", http.StatusForbidden},
		{"cross-site", http.StatusForbidden},
		{"something-new", http.StatusForbidden},
		{"same-origin", http.StatusSeeOther},
		{"none", http.StatusSeeOther},
		{"", http.StatusSeeOther}, // a client without fetch metadata: the token decides
	}
	created := 0
	for i, tt := range tests {
		t.Run("Sec-Fetch-Site "+tt.site, func(t *testing.T) {
			h := map[string]string{}
			if tt.site != "" {
				h["Sec-Fetch-Site"] = tt.site
			}
			p := postTeam(c, "Team "+string(rune('A'+i)), token, h)
			if p.status != tt.want {
				t.Fatalf("status %d, want %d", p.status, tt.want)
			}
			if p.status == http.StatusSeeOther {
				created++
			}
		})
	}
	teams, _ := a.auth.ListTeams(t.Context())
	if len(teams) != created {
		t.Fatalf("%d teams exist, want %d: a refused request created one", len(teams), created)
	}
}

// TestCSRFTokenBoundToSession: a token works only with the session (or, before sign-in, the
// pre-session value) it was made for. A planted cookie with a matching token, the classic
// way around a double-submit cookie, gets nowhere.
func TestCSRFTokenBoundToSession(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser("ada@example.no", "admin")
	a.addUser("eve@example.no", "admin")
	eve := a.client()
	eveAnonToken := formToken(eve, "/login")
	eveAnonCookie := cookieValue(eve, "portal_csrf")
	eve.login("eve@example.no")
	eveToken := formToken(eve, "/admin/teams")
	eveCookie := cookieValue(eve, "portal_csrf")
	if eveCookie == "" {
		eveCookie = eveAnonCookie
	}
	tests := []struct {
		name, token, cookie string
	}{
		{"another session's token with its cookie", eveToken, eveCookie},
		{"another browser's pre-session token with its cookie", eveAnonToken, eveAnonCookie},
		{"another session's token alone", eveToken, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ada := a.client()
			ada.login("ada@example.no")
			if tt.cookie != "" {
				u, _ := url.Parse(ada.base)
				ada.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "portal_csrf", Value: tt.cookie, Path: "/"}})
			}
			if p := postTeam(ada, "Forged", tt.token, nil); p.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", p.status)
			}
			// Ada's own token from her own page still works.
			if p := postTeam(ada, "Ada's "+tt.name, formToken(ada, "/admin/teams"), nil); p.status != http.StatusSeeOther {
				t.Fatalf("own token: status %d", p.status)
			}
		})
	}
	teams, _ := a.auth.ListTeams(t.Context())
	for _, tm := range teams {
		if tm.Name == "Forged" {
			t.Fatal("a forged request created a team")
		}
	}
}

// TestCSRFTokenRotatesAtSignIn: the token of the sign-in page is worthless once signed in,
// and after signing out again.
func TestCSRFTokenRotatesAtSignIn(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.addUser("ada@example.no", "admin")
	c := a.client()
	before := formToken(c, "/login")
	if p := c.post("/login", url.Values{"email": {"ada@example.no"}, "password": {"correct horse battery"}, "_csrf": {before}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign in with the sign-in page's token: %d", p.status)
	}
	if p := postTeam(c, "Forged", before, nil); p.status != http.StatusForbidden {
		t.Fatalf("the token from before sign-in: status %d, want 403", p.status)
	}
	after := formToken(c, "/admin/teams")
	if after == before {
		t.Fatal("the token did not change at sign-in")
	}
	if p := postTeam(c, "Team", after, nil); p.status != http.StatusSeeOther {
		t.Fatalf("the session's token: status %d", p.status)
	}
	if p := c.post("/logout", url.Values{"_csrf": {after}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	for _, tok := range []string{before, after} {
		if p := c.post("/login", url.Values{"email": {"ada@example.no"}, "password": {"correct horse battery"}, "_csrf": {tok}}); p.status != http.StatusForbidden {
			t.Fatalf("an old token signed in after sign-out: %d", p.status)
		}
	}
	// The anonymous forms work with the fresh value.
	c.login("ada@example.no")
	teams, _ := a.auth.ListTeams(t.Context())
	if len(teams) != 1 {
		t.Fatalf("%d teams, want 1", len(teams))
	}
}
