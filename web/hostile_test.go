package web_test

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"portal/internal/clients"
)

// TestHostileInputOnEveryRoute sends what an attacker or a broken client would to every
// registered route, as a signed-in administrator (the most a request can reach): the answer is
// always a clear 4xx or a harmless redirect, never a 5xx, never a hang.
func TestHostileInputOnEveryRoute(t *testing.T) {
	a := newSimApp(t)
	ctx := t.Context()
	a.addUser("admin@example.no", "admin")
	adminP := adminPrincipal(t, a)
	team, err := a.auth.CreateTeam(ctx, adminP, "Team A", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	clientID, err := a.clients.Create(ctx, adminP, metaFor(), "tt02", clients.Draft{Name: "Target", Description: "Under attack",
		TeamID: team.ID, Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	// Routes about a user act on a spare one, so the administrator stays signed in throughout.
	spare := a.addUser("spare@example.no", "member")
	c := a.client()
	c.login("admin@example.no")
	csrf := c.csrf()
	params := strings.NewReplacer(":env", "tt02", ":user", "1", ":job", "00", "*", "css/portal.css")
	deepJSON := strings.Repeat("[", 4000) + strings.Repeat("]", 4000) // within the field limit, so the parsers see it

	for _, r := range a.web.Routes() {
		path := r.Path
		switch {
		case path == "/logout":
			continue
		case strings.HasPrefix(path, "/admin/users/:id"):
			path = strings.Replace(path, ":id", itoa(spare.ID), 1)
		case strings.HasPrefix(path, "/envs/:env/integrations/:id"):
			path = strings.Replace(path, ":id", clientID, 1)
		default:
			path = strings.Replace(path, ":id", itoa(team.ID), 1)
		}
		path = params.Replace(path)
		if r.Method != http.MethodPost {
			continue
		}
		cases := []struct {
			name string
			body string
			want func(int) bool
		}{
			{"oversized body", "_csrf=" + csrf + "&name=" + strings.Repeat("x", 2<<20), func(s int) bool { return s == http.StatusRequestEntityTooLarge }},
			{"invalid UTF-8", "_csrf=" + csrf + "&name=%ff%fe&description=%c3%28&email=%ff&key_text=%ff", notAFailure},
			{"deep JSON", "_csrf=" + csrf + "&key_text=" + url.QueryEscape(deepJSON) + "&description=" + url.QueryEscape(deepJSON), notAFailure},
			{"many fields", "_csrf=" + csrf + strings.Repeat("&f=1", 5000), notAFailure},
			{"control characters", "_csrf=" + csrf + "&name=a%00b%0d%0aSet-Cookie:%20x=y&email=a%00@example.no&kid=..%2f..%2fetc", notAFailure},
		}
		for _, tc := range cases {
			t.Run(r.Method+" "+r.Path+"/"+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				start := time.Now()
				p := c.do(req)
				if !tc.want(p.status) {
					t.Errorf("status %d", p.status)
				}
				if time.Since(start) > 20*time.Second {
					t.Errorf("took %s", time.Since(start))
				}
				resp := http.Response{Header: p.header}
				for _, ck := range resp.Cookies() {
					if ck.Name == "x" {
						t.Error("a cookie was injected")
					}
				}
			})
		}
	}

	if p := c.get("/account"); p.status != http.StatusOK {
		t.Fatalf("the administrator was signed out along the way (%d): the checks above ran signed out", p.status)
	}

	// Path traversal never reaches outside the embedded static files.
	for _, p := range []string{"/static/../../../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/go.mod",
		"/static/css/../../../go.mod", "/envs/..%2f..%2fetc/integrations", "/static//etc/passwd"} {
		got := c.get(p)
		if got.status == http.StatusOK && (strings.Contains(got.body, "root:") || strings.Contains(got.body, "module portal")) {
			t.Errorf("%s served a file from outside static: %d", p, got.status)
		}
		if got.status >= 500 {
			t.Errorf("%s: %d", p, got.status)
		}
	}

	// A header with a line break is refused before it reaches a handler.
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\rSet-Cookie: x=y\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("header injection: %d %v", resp.StatusCode, resp.Header)
	}
}

// notAFailure accepts a refusal with a message (4xx) and, for actions that read none of the
// fields sent (sign-out, a new set-password link), their usual answer; never a 5xx.
func notAFailure(s int) bool {
	return s < 500
}
