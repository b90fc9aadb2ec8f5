package web_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/clients"
)

func findingCodes(p page, sel string) []string {
	var out []string
	p.doc.Find(sel + ` [data-testid="finding"]`).Each(func(_ int, s *goquery.Selection) {
		code, _ := s.Attr("data-code")
		out = append(out, code)
	})
	return out
}

// Step 4's other choice: a GET with the Altinn token to any path on the environment's platform
// host, explained when refused, and never to another host.
func TestTryPlatformGet(t *testing.T) {
	_, c, _, path := tryFixtureWith(t, append(slices.Clone(clients.AltinnServiceOwnerScopes), "altinn:events.subscribe"))
	run := func(scopes ...string) page {
		t.Helper()
		p := c.get(path)
		form := formOf(p, `form[data-testid="grant-form"]`)
		form.Set("how", "run")
		form.Set("org", "ttd")
		form.Del("scope")
		for _, s := range scopes {
			form.Add("scope", s)
		}
		p = c.post(path+"/grant", form)
		for _, s := range []string{"grant", "token", "exchange"} {
			stepOK(t, p, s)
		}
		if p.doc.Find(`form[data-testid="platform-form"]`).Length() != 1 {
			t.Fatal("step 4 offers no GET on the platform")
		}
		return p
	}
	get := func(p page, pathQuery string) page {
		t.Helper()
		form := formOf(p, `form[data-testid="platform-form"]`)
		form.Set("path", pathQuery)
		got := c.post(path+"/get", form)
		if got.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", pathQuery, got.status, got.body)
		}
		return got
	}
	const events = "/events/api/v1/app/ttd/soknad-om-tilskudd"

	// Without altinn:events.subscribe in the grant, the Events API refuses, and the page says
	// which scope to add.
	p := run("altinn:serviceowner/instances.read")
	p = get(p, events+"?after=0")
	res := p.doc.Find(`[data-testid="result-platform"]`)
	if ok, _ := res.Attr("data-ok"); ok != "false" || !slices.Contains(findingCodes(p, `[data-testid="result-platform"]`), "platform.scope_missing") ||
		!strings.Contains(res.Text(), "altinn:events.subscribe") || !strings.Contains(res.Text(), "403") {
		t.Fatalf("refused for lack of scope: %s", res.Text())
	}

	p = run("altinn:serviceowner/instances.read", "altinn:events.subscribe")
	cases := []struct {
		name     string
		path     string
		ok       bool
		finding  string
		contains []string
		noCall   bool
	}{
		{"app events", events + "?after=0&size=3", true, "", []string{"app.instance.created", "Next: ", "specversion", "$ALTINN_TOKEN"}, false},
		{"from with a zone", events + "?from=2000-01-01T00:00:00Z&size=1", true, "", []string{"urn:altinn:resource:app_ttd_soknad-om-tilskudd"}, false},
		{"neither after nor from", events, false, "platform.bad_request", []string{"The 'From' or 'After' parameter must be defined."}, false},
		{"another org's app", "/events/api/v1/app/skd/mva?after=0", true, "platform.events_other_org", nil, false},
		{"storage through the same door", "/storage/api/v1/instances?org=ttd&size=1", true, "", []string{`"instances"`}, false},
		{"nothing there", "/nothing/here", false, "platform.not_found", nil, false},
		{"another host", "//evil.example/x", false, "platform.path_refused", nil, true},
		{"a URL", "http://evil.example/x", false, "platform.path_refused", nil, true},
		{"user info", "@evil.example/x", false, "platform.path_refused", nil, true},
		{"encoded climb", "/..%2f..%2fx", false, "platform.path_refused", nil, true},
		{"climb", "/events/../../x", false, "platform.path_refused", nil, true},
		{"backslash", "/\\evil.example", false, "platform.path_refused", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := get(p, tc.path)
			res := got.doc.Find(`[data-testid="result-platform"]`)
			if ok, _ := res.Attr("data-ok"); ok != map[bool]string{true: "true", false: "false"}[tc.ok] {
				t.Fatalf("ok=%q: %s", ok, res.Text())
			}
			codes := findingCodes(got, `[data-testid="result-platform"]`)
			if tc.finding != "" && !slices.Contains(codes, tc.finding) {
				t.Fatalf("findings %v, want %s: %s", codes, tc.finding, res.Text())
			}
			for _, s := range tc.contains {
				if !strings.Contains(res.Text(), s) {
					t.Errorf("the result lacks %q: %s", s, res.Text())
				}
			}
			req := res.Find(`[data-testid="step-request"]`).Text()
			if tc.noCall != (req == "") {
				t.Fatalf("request %q", req)
			}
			if req != "" && !strings.Contains(req, "/sim/tt02/platform/") {
				t.Fatalf("the GET went to %q", req)
			}
			if v, _ := got.doc.Find(`[data-testid="platform-path"]`).Attr("value"); v != tc.path {
				t.Errorf("the path field shows %q", v)
			}
		})
	}

	// Revealing the platform step's token shows it in the curl command, to this person only.
	p = get(p, events+"?after=0")
	rv := formOf(p, `[data-testid="result-platform"] form`)
	if rv.Get("step") != "platform" {
		t.Fatalf("no reveal for the platform step: %v", rv)
	}
	p = c.post(path+"/reveal", rv)
	if curl := text(p, `[data-testid="result-platform"] [data-testid="curl"]`); strings.Contains(curl, "$ALTINN_TOKEN") || strings.Count(curl, ".") < 2 {
		t.Fatalf("revealed curl %q", curl)
	}
}
