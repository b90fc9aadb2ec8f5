package templates_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/templates"
)

// TestBackgroundWorkPollsOneWay: a key being generated and a rotation's proof wait the same
// way: htmx polling every second while JavaScript runs, a meta refresh of the page and a
// "Check again" link without it, and no polling once the work is done.
func TestBackgroundWorkPollsOneWay(t *testing.T) {
	t.Parallel()
	type poll struct {
		get, trigger, selectID, refresh, check string
	}
	read := func(t *testing.T, html string, id string) (poll, bool) {
		t.Helper()
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
		if err != nil {
			t.Fatal(err)
		}
		el := doc.Find("#" + id)
		if el.Length() != 1 {
			t.Fatalf("no #%s in %s", id, html)
		}
		var p poll
		p.get, _ = el.Attr("hx-get")
		p.trigger, _ = el.Attr("hx-trigger")
		p.selectID, _ = el.Attr("hx-select")
		// goquery does not parse inside <noscript> when scripting is assumed: read its text.
		if ns := el.Find("noscript"); ns.Length() == 1 {
			p.refresh = ns.Text()
		}
		p.check, _ = el.Find(`[data-testid="check-again"]`).Attr("href")
		on, _ := el.Attr("data-poll")
		return p, on == "true"
	}
	for _, tc := range []struct {
		name, id, page string
		html           func(running bool) string
	}{
		{"key generation", "generation-poll", "/envs/tt02/integrations/c/keys/generated/j?key=k", func(running bool) string {
			p := templates.GeneratingProps{KID: "k1", Bits: 2048, State: "done"}
			if running {
				p.State, p.Refresh = "running", "/envs/tt02/integrations/c/keys/generated/j?key=k"
			}
			var b bytes.Buffer
			if err := templates.GeneratingPage(p).Render(t.Context(), &b); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}},
		{"rotation proof", "proof-poll", "/envs/tt02/integrations/c/keys/rotate", func(running bool) string {
			p := templates.ProofProps{URL: "/envs/tt02/integrations/c/keys/rotate/proof", PageURL: "/envs/tt02/integrations/c/keys/rotate", State: "ok"}
			if running {
				p.State = "running"
			}
			var b bytes.Buffer
			if err := templates.ProofStatus(p).Render(t.Context(), &b); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, on := read(t, tc.html(true), tc.id)
			if !on || p.get == "" || p.trigger != "every 1s" || p.selectID != "#"+tc.id {
				t.Errorf("running: %+v", p)
			}
			if !strings.Contains(p.refresh, `http-equiv="refresh"`) || !strings.Contains(p.refresh, "url="+tc.page) {
				t.Errorf("no meta refresh of the page without JavaScript: %q", p.refresh)
			}
			if p.check != tc.page {
				t.Errorf("check again links to %q, want %q", p.check, tc.page)
			}
			p, on = read(t, tc.html(false), tc.id)
			if on || p.get != "" || p.refresh != "" || p.check != "" {
				t.Errorf("done, still polling: %+v", p)
			}
		})
	}
}
