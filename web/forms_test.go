package web

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeNext(t *testing.T) {
	tests := map[string]string{
		"":                     "/",
		"/":                    "/",
		"/envs/tt02":           "/envs/tt02",
		"/a?b=c":               "/a?b=c",
		"//evil.example":       "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"javascript:alert(1)":  "/",
		"/ok\r\nSet-Cookie: x": "/",
		"relative":             "/",
	}
	for in, want := range tests {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckForm(t *testing.T) {
	many := url.Values{}
	for i := 0; i < 100; i++ {
		many.Set(strings.Repeat("f", i+1), "x")
	}
	tests := []struct {
		name string
		v    url.Values
		ok   bool
	}{
		{"plain", url.Values{"email": {"a@example.no"}}, true},
		{"too many fields", many, false},
		{"huge value", url.Values{"name": {strings.Repeat("x", maxFieldBytes+1)}}, false},
		{"invalid utf-8", url.Values{"name": {"\xff\xfe"}}, false},
	}
	for _, tt := range tests {
		if err := checkForm(tt.v); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// FuzzFormDecoders feeds raw request bodies through every form decoder: none may panic, and
// whatever they accept is valid UTF-8, bounded, and keeps redirects local.
func FuzzFormDecoders(f *testing.F) {
	f.Add("email=a%40example.no&password=correct+horse+battery&next=%2Fenvs%2Ftt02")
	f.Add("token=abc&email=x&name=y&password=p&confirm=p&current=c")
	f.Add("disabled=true&role=admin&name=Team")
	f.Add("next=%2F%2Fevil&email=%ff%fe")
	f.Add("q=reader&status=inactive&team=3&scope=altinn%3Aserviceowner%2Finstances.read&sort=-expiry&page=2&nokeys=1")
	f.Add("name=A&description=B&team=1&scopes=x&scopes=y&key=0123456789abcdef0123&version=abc&confirm=1&preset=altinn")
	f.Add("from=2026-01-01&to=2026-13-40&actor=a%40b&action=integration.&before=99&team=-1")
	f.Add("kid=k1&bits=4096&alg=RS512&custody=kept&expires=2027-01-01&key_text=%7B%7D&x5c=1")
	f.Add(strings.Repeat("a=1&", 100))
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		if lf, err := parseLoginForm(v); err == nil {
			if !utf8.ValidString(lf.Email) || len(lf.Email) > maxEmailFieldSize || len(lf.Password) > maxPasswordField {
				t.Fatalf("login form accepted %q", lf.Email)
			}
			if !strings.HasPrefix(lf.Next, "/") || strings.HasPrefix(lf.Next, "//") || strings.HasPrefix(lf.Next, "/\\") {
				t.Fatalf("next = %q", lf.Next)
			}
		}
		if af, err := parseAccountForm(v); err == nil {
			if !utf8.ValidString(af.Name) || len(af.Name) > 400 || len(af.Token) > 128 {
				t.Fatalf("account form accepted %q", af.Name)
			}
		}
		if uf, err := parseUserForm(v); err == nil && (len(uf.Role) > 32 || !utf8.ValidString(uf.Email)) {
			t.Fatalf("user form accepted %+v", uf)
		}
		_, _ = parseNameForm(v)
		_, _ = parseFlagForm(v)
		if f, err := parseIntegrationForm(v); err == nil && (!utf8.ValidString(f.Name) || len(f.Key) > 128 || f.TeamID < 0) {
			t.Fatalf("integration form accepted %+v", f)
		}
		if q := parseIntegrationQuery(v); q.Page < 1 || len(q.Text) > 200 || !utf8.ValidString(q.Text) {
			t.Fatalf("integration query %+v", q)
		}
		if f, err := parseKeysForm(v); err == nil && (len(f.Version) > 64 || len(f.Key) > 128) {
			t.Fatalf("keys form accepted %+v", f)
		}
		if f, fields := parseAuditFilter(v); len(fields) == 0 && (f.TeamID < 0 || f.Before < 0 || len(f.Action) > 64) {
			t.Fatalf("audit filter %+v", f)
		}
		if id, ok := parseID(v.Get("id")); ok && id <= 0 {
			t.Fatalf("id %d", id)
		}
	})
}
