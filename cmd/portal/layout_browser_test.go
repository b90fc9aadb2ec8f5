package main

// The layout check: one journey through the main pages, each looked at on a desktop and on a
// phone, in the light and the dark color scheme. A page fails when it is wider than the window,
// when visible text lies over other text, when a checkbox or radio is too small to hit, or when
// axe-core finds a serious or critical accessibility problem. Every page checked is kept as a
// screenshot, with a table of what was measured, under $PORTAL_ARTIFACTS/layout or else
// bench/out/screens (ignored by git).

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// layoutJourneyTimeout bounds the whole layout journey: about twenty pages, each checked four times.
const layoutJourneyTimeout = 10 * time.Minute

// layoutView is one way of looking at a page.
type layoutView struct {
	Name          string
	Width, Height int64
	Scheme        string // the prefers-color-scheme the browser reports
}

var layoutViews = []layoutView{
	{"desktop-light", 1280, 800, "light"},
	{"desktop-dark", 1280, 800, "dark"},
	{"phone-light", 390, 844, "light"},
	{"phone-dark", 390, 844, "dark"},
}

// layoutFinding is what the check measured on one page in one view.
type layoutFinding struct {
	ScrollWidth int            `json:"scrollWidth"`
	InnerWidth  int            `json:"innerWidth"`
	Wide        []string       `json:"wide"` // the outermost elements that reach past the window
	Overlaps    []string       `json:"overlaps"`
	SmallInputs []string       `json:"smallInputs"`
	Axe         []axeViolation `json:"axe"`
}

type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// layoutRecord collects the findings of the journey for the table written at its end.
type layoutRecord struct {
	dir  string
	rows []string
}

func TestBrowserLayout(t *testing.T) {
	axeSource := readAxe(t)
	browser := startChromium(t)
	dir := layoutArtifactDir(t)
	rec := &layoutRecord{dir: dir}
	t.Cleanup(func() { rec.write(t) })

	p := startBrowserPortalEnv(t, nil, map[string]string{"PORTAL_SIM_ADMIN_API": "true"})
	if p.SetupLink == "" {
		t.Fatal("the portal started with no users but logged no setup_link")
	}
	tab := openTabFor(t, browser, layoutJourneyTimeout)
	check := func(page string) { tab.checkLayout(page, axeSource, rec) }

	// Setting up, then the pages of an administrator with a team.
	tab.do("open the setup link", chromedp.Navigate(p.SetupLink), chromedp.WaitVisible(chromedp.CSS(`form[data-testid="setup-form"]`)))
	check("setup")
	tab.do("fill in the setup form",
		chromedp.SendKeys(chromedp.ID("email"), browserAdmin.Email),
		chromedp.SendKeys(chromedp.ID("name"), browserAdmin.Name),
		chromedp.SendKeys(chromedp.ID("password"), browserAdmin.Password),
		chromedp.SendKeys(chromedp.ID("confirm"), browserAdmin.Password),
	)
	tab.submit("create the administrator", `form[data-testid="setup-form"] button[type="submit"]`, http.StatusOK)
	tab.wantDashboard(p, &browserAdmin)
	check("dashboard-new")

	tab.do("open the teams", chromedp.Navigate(p.URL+"/admin/teams"), chromedp.WaitVisible(chromedp.CSS(`form[data-testid="new-team-form"]`)),
		chromedp.SendKeys(chromedp.ID("name"), "Platform"))
	check("admin-teams")
	tab.submit("create the team", `form[data-testid="new-team-form"] button[type="submit"]`, http.StatusOK)
	tab.do("wait for the team page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="team-name"]`)))
	check("team")
	tab.do("open the users", chromedp.Navigate(p.URL+"/admin/users"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	check("admin-users")
	tab.do("open the environments", chromedp.Navigate(p.URL+"/admin/environments"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	check("admin-environments")

	// An integration: the form, the page, the list with its filters, the edit form.
	tab.do("open the new-integration form",
		chromedp.Navigate(p.URL+"/envs/tt02/integrations/new"),
		chromedp.WaitVisible(chromedp.CSS(`form[data-testid="integration-form"]`)),
		chromedp.SendKeys(chromedp.ID("name"), "Skjemaleser for innsendte skjema"),
		chromedp.SendKeys(chromedp.ID("description"), "Reads submitted forms and their attachments for the archive"),
	)
	tab.selectByLabel("team", "Platform")
	tab.submit("apply the Altinn preset", `[data-testid="preset-instances"]`, http.StatusOK)
	check("integration-new")
	tab.submit("create the integration", `[data-testid="integration-submit"]`, http.StatusOK)
	tab.do("wait for the integration page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-facts"]`)))
	integration := tab.location()
	check("integration")
	tab.do("open the list", chromedp.Navigate(p.URL+"/envs/tt02/integrations"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-row"]`)))
	check("integrations")
	tab.do("open the environment", chromedp.Navigate(p.URL+"/envs/tt02"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	check("env")
	tab.do("open the edit form", chromedp.Navigate(integration+"/edit"), chromedp.WaitVisible(chromedp.CSS(`form[data-testid="integration-form"]`)))
	check("integration-edit")

	// Keys: the page, a generated key, an uploaded one.
	tab.do("open the keys", chromedp.Navigate(integration+"/keys"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="generate"]`)))
	check("keys-empty")
	tab.selectByValue("custody", "kept")
	tab.submit("generate a key", `[data-testid="generate"]`, http.StatusOK)
	tab.do("wait for the key", chromedp.WaitVisible(chromedp.CSS(`[data-testid="add-generated"]`)))
	check("key-generated")
	tab.submit("add the key", `[data-testid="add-generated"]`, http.StatusOK)
	tab.do("wait for the key list", chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-row"]`)))
	keptKID := tab.text(`[data-testid="key-row"] code`)
	keysPage := tab.location()
	pub, priv := browserKeyPair(t)
	tab.do("paste a public key",
		chromedp.SetValue(chromedp.ID("key_text"), pub),
		chromedp.SendKeys(chromedp.ID("upload_kid"), "uploaded-with-a-rather-long-key-identifier-2026-12-08"),
	)
	tab.submit("upload it", `[data-testid="upload"]`, http.StatusOK)
	tab.do("wait for both keys", chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="key-row"]').length === 2`))
	check("keys")

	// Try it with the kept key: all four steps.
	tab.do("open the try page", chromedp.Navigate(integration+"/try"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="prepare"]`)))
	tab.selectByValue("kid", keptKID)
	tab.submit("show the grant", `[data-testid="prepare"]`, http.StatusOK)
	tab.do("wait for the preview", chromedp.WaitVisible(chromedp.CSS(`[data-testid="grant-preview"]`)))
	check("try-grant")
	tab.submit("run all", `[data-testid="run-all"]`, http.StatusOK)
	tab.do("wait for the token", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-token"][data-ok="true"]`)))
	if tab.count(`[data-testid="result-exchange"][data-ok="true"]`) == 0 {
		tab.submit("exchange it", `[data-testid="run-exchange"]`, http.StatusOK)
		tab.do("wait for the Altinn token", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-exchange"][data-ok="true"]`)))
	}
	tab.do("ask for the service owner's instances", chromedp.SetValue(chromedp.ID("app_id"), "ttd/soknad-om-tilskudd"))
	tab.submit("list instances", `[data-testid="run-instances"]`, http.StatusOK)
	tab.do("wait for the instances", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-instances"][data-ok="true"] [data-testid="instances"]`)))
	check("try-all-steps")

	// Rotation: the kept key replaced by the uploaded one, proved in this browser.
	keyFile := filepath.Join(t.TempDir(), "uploaded.pem")
	if err := os.WriteFile(keyFile, []byte(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	tab.do("back to the keys", chromedp.Navigate(keysPage), chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-row"]`)))
	tab.submit("open the rotation", `[data-testid="key-row"][data-kid="`+keptKID+`"] [data-testid="rotate-key"]`, http.StatusOK)
	check("rotation-start")
	tab.submit("start it", `[data-testid="start-rotation"]`, http.StatusOK)
	check("rotation-add")
	tab.selectByValue("new_kid", "uploaded-with-a-rather-long-key-identifier-2026-12-08")
	tab.submit("use the uploaded key", `[data-testid="use-key"]`, http.StatusOK)
	check("rotation-prove")
	tab.do("pick the private key file", chromedp.SetUploadFiles(chromedp.ID("signer-file"), []string{keyFile}))
	tab.submit("sign the proof and send it", "#signer-sign", http.StatusOK)
	tab.do("wait for the proof", chromedp.WaitVisible(chromedp.CSS(`[data-testid="proved"]`)))
	check("rotation-switch")
	tab.submit("confirm the switch", `[data-testid="confirm-switch"]`, http.StatusOK)
	check("rotation-retire")

	// The overviews, the audit trail with an event opened, and signing in again.
	tab.do("open all keys", chromedp.Navigate(p.URL+"/keys"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	check("keys-overview")
	tab.do("open the checklist", chromedp.Navigate(p.URL+"/onboarding"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="onboarding"]`)))
	check("onboarding")
	tab.do("open the dashboard", chromedp.Navigate(p.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="dashboard-title"]`)))
	check("dashboard")
	tab.do("open the audit trail", chromedp.Navigate(p.URL+"/audit"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit-events"]`)))
	tab.do("open the details of the events with changes", chromedp.Evaluate[chromedp.Void](`(() => {
		const rows = Array.from(document.querySelectorAll('[data-testid="audit-row"]'));
		const row = rows.find(r => r.querySelector('[data-testid="audit-diff"]')) || rows[0];
		row.querySelector('details').open = true;
	})()`))
	check("audit")
	tab.submit("sign out", `button[data-testid="sign-out"]`, http.StatusOK)
	tab.do("wait for the sign-in page", chromedp.WaitVisible(chromedp.CSS(`form[data-testid="login-form"]`)))
	check("sign-in")
}

// readAxe returns axe-core's script from node_modules, where `make assets` puts it.
func readAxe(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		msg := fmt.Sprintf("axe-core is not installed (%v): run `make assets`, which installs it from package-lock.json", err)
		if os.Getenv("PORTAL_BROWSER_TESTS") == "require" {
			t.Fatal(msg + " (PORTAL_BROWSER_TESTS=require)")
		}
		t.Skip(msg)
	}
	return string(b)
}

// layoutArtifactDir is where the screenshots and the table go: $PORTAL_ARTIFACTS/layout, or
// bench/out/screens in the repository, emptied first.
func layoutArtifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "bench", "out", "screens")
	if a := os.Getenv("PORTAL_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "layout")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	t.Logf("layout screenshots and findings: %s", abs)
	return dir
}

// openTabFor is openTab with a longer time limit.
func openTabFor(t *testing.T, browser context.Context, limit time.Duration) *browserTab {
	t.Helper()
	tabCtx, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	ctx, cancel := context.WithTimeout(tabCtx, limit)
	t.Cleanup(func() {
		cancel()
		cancelTab()
	})
	tab := &browserTab{t: t, ctx: ctx}
	tab.do("open a tab")
	return tab
}

// emulate sets the window size and the color scheme the page sees.
func emulate(v layoutView) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := chromedp.EmulateViewport(v.Width, v.Height)(ctx, t); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v.Scheme}},
		})
		return err
	})
}

// checkLayout looks at the page the tab shows in every layout view and fails the test for each
// problem found.
func (b *browserTab) checkLayout(page, axeSource string, rec *layoutRecord) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](axeSource+";undefined")); err != nil {
		b.t.Fatalf("%s: inject axe-core: %v", page, err)
	}
	for _, v := range layoutViews {
		b.do(page+": emulate "+v.Name, emulate(v))
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[layoutFinding](layoutScript, chromedp.EvalAwaitPromise))
		if err != nil {
			b.t.Fatalf("%s (%s): measure the layout: %v%s", page, v.Name, err, b.state())
		}
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatalf("%s (%s): screenshot: %v", page, v.Name, err)
		}
		shot := filepath.Join(rec.dir, page+"-"+v.Name+".png")
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		where := fmt.Sprintf("%s at %dx%d, %s scheme (%s)", page, v.Width, v.Height, v.Scheme, shot)
		if got.ScrollWidth > got.InnerWidth {
			b.t.Errorf("%s: the page is %d px wide in a %d px window: %s", where, got.ScrollWidth, got.InnerWidth, strings.Join(got.Wide, "; "))
		}
		for _, o := range got.Overlaps {
			b.t.Errorf("%s: text overlaps: %s", where, o)
		}
		for _, s := range got.SmallInputs {
			b.t.Errorf("%s: a checkbox or radio smaller than 12x12 px: %s", where, s)
		}
		for _, a := range got.Axe {
			b.t.Errorf("%s: axe-core, %s (%s): %s at %s", where, a.ID, a.Impact, a.Help, strings.Join(a.Targets, ", "))
		}
		rec.rows = append(rec.rows, fmt.Sprintf("| %s | %s | %d / %d | %d | %d | %s |", page, v.Name, got.ScrollWidth, got.InnerWidth,
			len(got.Overlaps), len(got.SmallInputs), axeSummary(got.Axe)))
	}
	b.do(page+": back to the default view", chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		return err
	}))
}

func axeSummary(vs []axeViolation) string {
	if len(vs) == 0 {
		return "0"
	}
	ids := make([]string, 0, len(vs))
	for _, v := range vs {
		ids = append(ids, fmt.Sprintf("%s(%d)", v.ID, len(v.Targets)))
	}
	sort.Strings(ids)
	return fmt.Sprintf("%d: %s", len(vs), strings.Join(ids, " "))
}

// write leaves the table of findings beside the screenshots.
func (r *layoutRecord) write(t *testing.T) {
	if len(r.rows) == 0 {
		return
	}
	var sb strings.Builder
	sb.WriteString("| page | view | scrollWidth / window | overlaps | small inputs | axe serious+critical |\n|---|---|---|---|---|---|\n")
	for _, row := range r.rows {
		sb.WriteString(row + "\n")
	}
	path := filepath.Join(r.dir, "findings.md")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Errorf("write %s: %v", path, err)
	}
	t.Logf("layout findings:\n%s", sb.String())
}

// layoutScript measures the page once the emulated size has been laid out. Text boxes are the
// client rects of text nodes, cut to the scroll containers around them; two overlap when they
// share more than a sliver and neither's element contains the other's.
const layoutScript = `(async () => {
	await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
	const visible = el => {
		for (let e = el; e; e = e.parentElement) {
			const s = getComputedStyle(e);
			if (s.display === 'none' || s.visibility === 'hidden' || s.opacity === '0') return false;
		}
		return true;
	};
	const clipOf = new Map();
	const clip = el => {
		if (!el || el === document.documentElement) return {left: -1e9, top: -1e9, right: 1e9, bottom: 1e9};
		if (clipOf.has(el)) return clipOf.get(el);
		let c = clip(el.parentElement);
		const s = getComputedStyle(el);
		if (s.overflowX !== 'visible' || s.overflowY !== 'visible' || s.clip !== 'auto' || s.clipPath !== 'none') {
			const r = el.getBoundingClientRect();
			c = {left: Math.max(c.left, r.left), top: Math.max(c.top, r.top), right: Math.min(c.right, r.right), bottom: Math.min(c.bottom, r.bottom)};
		}
		clipOf.set(el, c);
		return c;
	};
	const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA', 'SELECT', 'OPTION', 'DATALIST', 'TITLE']);
	const boxes = [];
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		const el = n.parentElement;
		if (!n.textContent.trim() || !el || skip.has(el.tagName) || el.closest('details:not([open]) > :not(summary)') || !visible(el)) continue;
		const range = document.createRange();
		range.selectNodeContents(n);
		const c = clip(el);
		for (const r of range.getClientRects()) {
			const b = {left: Math.max(r.left, c.left), top: Math.max(r.top, c.top), right: Math.min(r.right, c.right), bottom: Math.min(r.bottom, c.bottom)};
			if (b.right - b.left < 2 || b.bottom - b.top < 2) continue;
			boxes.push({el, b, text: n.textContent.trim().slice(0, 40)});
		}
	}
	const overlaps = [];
	for (let i = 0; i < boxes.length && overlaps.length < 20; i++) {
		for (let j = i + 1; j < boxes.length; j++) {
			const a = boxes[i], o = boxes[j];
			if (a.el === o.el || a.el.contains(o.el) || o.el.contains(a.el)) continue;
			const w = Math.min(a.b.right, o.b.right) - Math.max(a.b.left, o.b.left);
			const h = Math.min(a.b.bottom, o.b.bottom) - Math.max(a.b.top, o.b.top);
			if (w > 2 && h > 4) {
				overlaps.push(JSON.stringify(a.text) + ' and ' + JSON.stringify(o.text) + ' (' + Math.round(w) + 'x' + Math.round(h) + ' px)');
				if (overlaps.length >= 20) break;
			}
		}
	}
	const small = [];
	for (const el of document.querySelectorAll('input[type=checkbox], input[type=radio]')) {
		if (!visible(el)) continue;
		const r = el.getBoundingClientRect();
		if (r.width < 12 || r.height < 12) small.push('#' + (el.id || el.name) + ' is ' + Math.round(r.width) + 'x' + Math.round(r.height) + ' px');
	}
	const wide = [];
	const describe = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '') +
		(el.dataset.testid ? '[data-testid=' + el.dataset.testid + ']' : '');
	if (document.documentElement.scrollWidth > window.innerWidth) {
		for (const el of document.body.querySelectorAll('*')) {
			const r = el.getBoundingClientRect();
			if (r.right <= window.innerWidth + 1 || r.width === 0 || clip(el.parentElement).right <= window.innerWidth + 1) continue;
			if (wide.length < 5) wide.push(describe(el) + ' reaches ' + Math.round(r.right) + ' px');
		}
	}
	const res = await axe.run(document, {resultTypes: ['violations']});
	const axeFound = res.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => ({
		id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
	}));
	return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, wide, overlaps, smallInputs: small, axe: axeFound};
})()`
