package main

// Browser journeys: the real portal, started through run, driven by headless Chromium.
//
// One Chromium serves the whole TestBrowser run; each journey gets its own portal (a fresh data
// directory) and its own browser context, so cookies never leak between journeys and the
// journeys run in parallel. Without Chromium the journeys are skipped, unless
// PORTAL_BROWSER_TESTS=require (make test sets it), which turns the skip into a failure.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portal/internal/keys"
	"portal/internal/maskinporten"
)

const (
	// browserJourneyTimeout bounds everything one journey does in the browser.
	browserJourneyTimeout = 60 * time.Second
	// browserStartTimeout bounds starting Chromium and starting a portal.
	browserStartTimeout = 60 * time.Second
	// browserStopTimeout bounds how long a stopping portal may take to return from run.
	browserStopTimeout = 30 * time.Second
)

// browserAccount is a person the journeys sign in as.
type browserAccount struct {
	Email, Name, Password string
}

var browserAdmin = browserAccount{Email: "ada@example.com", Name: "Ada Lovelace", Password: "correct horse battery staple"}

func TestBrowser(t *testing.T) {
	browser := startChromium(t)

	t.Run("FirstRun", func(t *testing.T) {
		t.Parallel()
		p := startBrowserPortal(t, nil)
		if p.SetupLink == "" {
			t.Fatal("the portal started with no users but logged no setup_link")
		}
		tab := openTab(t, browser)

		// The setup link leads to the form that creates the first administrator.
		tab.do("open the setup link",
			chromedp.Navigate(p.SetupLink),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="setup-form"]`)),
			chromedp.SendKeys(chromedp.ID("email"), browserAdmin.Email),
			chromedp.SendKeys(chromedp.ID("name"), browserAdmin.Name),
			chromedp.SendKeys(chromedp.ID("password"), browserAdmin.Password),
			chromedp.SendKeys(chromedp.ID("confirm"), browserAdmin.Password),
		)
		tab.submit("create the administrator", `form[data-testid="setup-form"] button[type="submit"]`, http.StatusOK)
		tab.wantDashboard(p, &browserAdmin)
		tab.checkStyled()
		tab.screenshot("dashboard.png")

		// Sign out, then back in with the same credentials.
		tab.submit("sign out", `button[data-testid="sign-out"]`, http.StatusOK)
		tab.do("wait for the sign-in page", chromedp.WaitVisible(chromedp.CSS(`form[data-testid="login-form"]`)))
		if got := tab.location(); got != p.URL+"/login" {
			t.Errorf("after signing out the browser is at %s, want %s/login", got, p.URL)
		}
		tab.signIn(p, &browserAdmin)
	})

	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		p := startBrowserPortal(t, &browserAdmin)
		tab := openTab(t, browser)

		tab.do("fill in the sign-in form with a wrong password",
			chromedp.Navigate(p.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="login-form"]`)),
			chromedp.SendKeys(chromedp.ID("email"), browserAdmin.Email),
			chromedp.SendKeys(chromedp.ID("password"), "not the right password"),
		)
		tab.submit("sign in", `form[data-testid="login-form"] button[type="submit"]`, http.StatusUnauthorized)
		tab.do("wait for the error", chromedp.WaitVisible(chromedp.CSS(`[data-testid="form-error"]`)))
		if got := tab.text(`[data-testid="form-error"]`); got != "Wrong email or password." {
			t.Errorf("form error = %q, want %q", got, "Wrong email or password.")
		}
		if got := tab.value("email"); got != browserAdmin.Email {
			t.Errorf("email field after the failed sign-in = %q, want the typed %q", got, browserAdmin.Email)
		}
		if got := tab.value("password"); got != "" {
			t.Errorf("the password field was sent back filled in (%d characters); it must be empty", len(got))
		}
		if n := tab.count(`[data-testid="dashboard-title"], [data-testid="sign-out"]`); n != 0 {
			t.Errorf("a wrong password shows signed-in content (%d elements)", n)
		}
	})

	t.Run("CrossSiteFormPost", func(t *testing.T) {
		t.Parallel()
		p := startBrowserPortal(t, &browserAdmin)
		tab := openTab(t, browser)
		tab.signIn(p, &browserAdmin)

		// The same form, sent from the portal's own page, works: the session is good and the
		// refusal below is about where the form came from.
		tab.do("fill in the new-team form",
			chromedp.Navigate(p.URL+"/admin/teams"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="new-team-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "Platform"),
		)
		tab.submit("create a team", `form[data-testid="new-team-form"] button[type="submit"]`, http.StatusOK)
		tab.do("wait for the team page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="team-name"]`)))

		// Another site (localhost is a different site from 127.0.0.1) hosts a form that posts
		// to the portal while the browser holds the signed-in session.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!DOCTYPE html><html lang="en"><head><title>You won a prize</title></head><body>
<form method="post" action="%s"><input type="hidden" name="name" value="Forged">
<button id="claim" type="submit">Claim your prize</button></form></body></html>`,
				html.EscapeString(p.URL+"/admin/teams"))
		}))
		t.Cleanup(evil.Close)
		evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
		if !strings.Contains(p.URL, "127.0.0.1") {
			t.Fatalf("portal URL %s is not on 127.0.0.1, so localhost is not another site", p.URL)
		}

		tab.do("open the other site",
			chromedp.Navigate(evilURL),
			chromedp.WaitVisible(chromedp.ID("claim")),
		)
		tab.submit("send the forged form", "#claim", http.StatusForbidden)
		tab.do("wait for the error page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-page"]`)))
		if got := tab.location(); got != p.URL+"/admin/teams" {
			t.Errorf("the forged form landed on %s, want the portal's %s/admin/teams", got, p.URL)
		}
		if got := tab.text(`[data-testid="error-page"] h1`); got != "Not allowed" {
			t.Errorf("error page heading = %q, want %q", got, "Not allowed")
		}
		if got, want := tab.text(`[data-testid="error-page"] h1 + p`), "This form was sent from another site"; !strings.HasPrefix(got, want) {
			t.Errorf("error page message = %q, want the portal's own refusal, starting %q", got, want)
		}
		reqID := tab.text(`[data-testid="request-id"]`)
		if reqID == "" {
			t.Error("the error page shows no request id")
		}
		if logs := p.logs.String(); !strings.Contains(logs, `msg="cross-site request refused" request_id=`+reqID) {
			t.Errorf("the portal did not log the refusal of request %s as a cross-site request", reqID)
		}

		// Back on the portal, still signed in: only the genuine team exists.
		tab.do("open the list of teams",
			chromedp.Navigate(p.URL+"/admin/teams"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="teams-list"]`)),
		)
		teams, err := chromedp.Run(tab.ctx, chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll('[data-testid="teams-list"] li'), li => li.textContent.trim())`))
		if err != nil {
			t.Fatalf("read the list of teams: %v", err)
		}
		if len(teams) != 1 || teams[0] != "Platform" {
			t.Errorf("teams after the forged post = %q, want only [Platform]", teams)
		}
	})

	t.Run("Integrations", func(t *testing.T) {
		t.Parallel()
		p := startBrowserPortal(t, &browserAdmin)
		tab := openTab(t, browser)
		tab.signIn(p, &browserAdmin)
		tab.do("create a team",
			chromedp.Navigate(p.URL+"/admin/teams"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="new-team-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "Platform"),
		)
		tab.submit("create the team", `form[data-testid="new-team-form"] button[type="submit"]`, http.StatusOK)

		// Create an integration in tt02 with the Altinn service-owner preset.
		tab.do("open the new-integration form",
			chromedp.Navigate(p.URL+"/envs/tt02/integrations/new"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="integration-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "Skjemaleser"),
			chromedp.SendKeys(chromedp.ID("description"), "Reads submitted forms"),
		)
		tab.selectByLabel("team", "Platform")
		tab.submit("apply the Altinn preset", `[data-testid="preset-instances"]`, http.StatusOK)
		if n := tab.count(`input[name="scopes"]:checked`); n != 2 {
			t.Fatalf("the Altinn preset checked %d scopes, want 2", n)
		}
		tab.submit("create the integration", `[data-testid="integration-submit"]`, http.StatusOK)
		tab.do("wait for the integration page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-facts"]`)))
		if got := tab.text(`[data-testid="integration-scopes"]`); !strings.Contains(got, "altinn:serviceowner/instances.write") {
			t.Errorf("the new integration's scopes: %q", got)
		}

		// Find it by typing in the search box: htmx replaces the results as one types.
		tab.do("search as you type",
			chromedp.Navigate(p.URL+"/envs/tt02/integrations"),
			chromedp.WaitVisible(chromedp.ID("q")),
			chromedp.SendKeys(chromedp.ID("q"), "skjemales"),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="integration-row"]').length === 1 && location.search.includes('q=skjemales')`),
		)
		if got := tab.text(`[data-testid="integration-row"] a`); got != "Skjemaleser" {
			t.Fatalf("search found %q", got)
		}
		// A filter applies as soon as it is chosen; leaving the search box does not search again,
		// so a click on a result is never lost to a late swap.
		tab.selectByValue("status", "inactive")
		tab.do("filter by status", chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="no-results"]').length === 1 && location.search.includes('status=inactive')`))
		tab.selectByValue("status", "active")
		tab.do("filter by status again", chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="integration-row"]').length === 1 && location.search.includes('status=active')`))

		// Edit the description: review, then save.
		tab.submit("open the integration", `[data-testid="integration-row"] a`, http.StatusOK)
		tab.submit("open the edit form", `[data-testid="edit"]`, http.StatusOK)
		tab.do("change the description",
			chromedp.Clear(chromedp.ID("description")),
			chromedp.SendKeys(chromedp.ID("description"), "Reads submitted forms and their attachments"),
		)
		tab.submit("review the change", `[data-testid="integration-submit"]`, http.StatusOK)
		if got := tab.text(`[data-testid="planned-changes"]`); !strings.Contains(got, "and their attachments") {
			t.Fatalf("the review does not show the change: %q", got)
		}
		tab.submit("save the change", `[data-testid="confirm-submit"]`, http.StatusOK)
		if got := tab.text(`[data-testid="description"]`); got != "Reads submitted forms and their attachments" {
			t.Fatalf("description after the edit: %q", got)
		}

		// Deactivate it, typing its name.
		tab.submit("open deactivation", `[data-testid="deactivate"]`, http.StatusOK)
		tab.do("type the name", chromedp.SendKeys(chromedp.ID("confirm_name"), "Skjemaleser"))
		tab.submit("deactivate", `[data-testid="confirm-submit"]`, http.StatusOK)
		tab.do("wait for the inactive notice", chromedp.WaitVisible(chromedp.CSS(`[data-testid="inactive"]`)))

		// It is gone from the active list and found under "inactive".
		tab.do("search the active list",
			chromedp.Navigate(p.URL+"/envs/tt02/integrations?q=skjemaleser"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="no-results"]`)),
		)
		tab.selectByLabel("status", "Inactive")
		tab.do("wait for the inactive results",
			chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid="integration-row"]').length === 1`))
		if got := tab.text(`[data-testid="integration-row"] a`); got != "Skjemaleser" {
			t.Fatalf("inactive list shows %q", got)
		}
		tab.screenshot("integrations.png")
	})

	t.Run("TryIt", func(t *testing.T) {
		t.Parallel()
		p := startBrowserPortalEnv(t, &browserAdmin, map[string]string{"PORTAL_SIM_ADMIN_API": "true"})
		tab := openTab(t, browser)
		tab.signIn(p, &browserAdmin)
		tab.do("create a team",
			chromedp.Navigate(p.URL+"/admin/teams"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="new-team-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "Platform"),
		)
		tab.submit("create the team", `form[data-testid="new-team-form"] button[type="submit"]`, http.StatusOK)
		tab.do("open the new-integration form",
			chromedp.Navigate(p.URL+"/envs/tt02/integrations/new"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="integration-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "Reader"),
			chromedp.SendKeys(chromedp.ID("description"), "Reads instances"),
		)
		tab.selectByLabel("team", "Platform")
		tab.submit("apply the Altinn preset", `[data-testid="preset-instances"]`, http.StatusOK)
		tab.submit("create the integration", `[data-testid="integration-submit"]`, http.StatusOK)
		integration := tab.location()

		// A key handed out once: its private half goes to a file on this machine.
		tab.submit("open its keys", `[data-testid="manage-keys"]`, http.StatusOK)
		tab.selectByValue("custody", "handed_out")
		tab.submit("generate a key", `[data-testid="generate"]`, http.StatusOK)
		tab.do("wait for the key", chromedp.WaitVisible(chromedp.CSS(`[data-testid="add-generated"]`)))
		tab.submit("add the key", `[data-testid="add-generated"]`, http.StatusOK)
		tab.do("wait for the private key", chromedp.WaitVisible(chromedp.CSS(`[data-testid="private-pem"]`)))
		keyFile := filepath.Join(t.TempDir(), "handed-out.pem")
		if err := os.WriteFile(keyFile, []byte(tab.value("private-pem")), 0o600); err != nil {
			t.Fatal(err)
		}
		tab.do("save it", chromedp.Click(chromedp.CSS(`[data-download="private-pem"]`)))
		tab.submit("back to the keys", `[data-testid="handout-done"]`, http.StatusOK)

		// Sign the grant in the browser, then run the other three steps.
		tab.do("open the integration", chromedp.Navigate(integration), chromedp.WaitVisible(chromedp.CSS(`[data-testid="try-it"]`)))
		tab.submit("open the try page", `[data-testid="try-it"]`, http.StatusOK)
		tab.submit("show the grant", `[data-testid="prepare"]`, http.StatusOK)
		tab.do("pick the private key file", chromedp.SetUploadFiles(chromedp.ID("signer-file"), []string{keyFile}))
		tab.submit("sign in the browser", "#signer-sign", http.StatusOK)
		tab.do("wait for the grant", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-grant"][data-ok="true"]`)))
		tab.submit("get a token", `[data-testid="run-token"]`, http.StatusOK)
		tab.do("wait for the token", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-token"][data-ok="true"]`)))
		tab.submit("exchange it", `[data-testid="run-exchange"]`, http.StatusOK)
		tab.do("wait for the Altinn token", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-exchange"][data-ok="true"]`)))
		tab.do("ask for the service owner's instances", chromedp.SetValue(chromedp.ID("app_id"), "ttd/soknad-om-tilskudd"))
		tab.submit("list instances", `[data-testid="run-instances"]`, http.StatusOK)
		tab.do("wait for the instances", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-instances"][data-ok="true"] [data-testid="instances"]`)))
		if n := tab.count(`[data-testid="instances"] tbody tr`); n == 0 {
			t.Fatal("no instances listed")
		}
		tab.do("open a new try", chromedp.Navigate(integration+"/try"), chromedp.WaitVisible(chromedp.ID("app_id")))
		if n := tab.count(`#seen-apps option[value="ttd/soknad-om-tilskudd"]`); n != 1 {
			t.Error("the app read before is not suggested")
		}

		// Failures are explained. Grants signed here with the handed-out key: one naming a kid
		// the client does not have, one asking for a scope the client does not have, and one
		// sent after the simulator's clock moved a year on, past the key's expiry.
		priv, err := keys.ParsePrivate([]byte(mustRead(t, keyFile)))
		if err != nil {
			t.Fatal(err)
		}
		clientID, issuer := browserFieldOf(t, tab, integration, "client-id"), browserFieldOf(t, tab, integration, "issuer")
		kid := tab.keyOf(integration + "/keys")
		grant := func(kid string, scope string, at time.Time) string {
			g := maskinporten.Grant{Audience: issuer, ClientID: clientID, Scopes: []string{scope}, IssuedAt: at}
			jws, err := maskinporten.SignGrant(g, maskinporten.Signer{Key: priv, KeyID: kid})
			if err != nil {
				t.Fatal(err)
			}
			return jws
		}
		failures := []struct {
			name, grant, finding string
			before               func()
		}{
			{"unknown kid", grant("no-such-kid", "altinn:serviceowner/instances.read", time.Now()), "mp.unknown_kid", nil},
			{"scope not on the client", grant(kid, "altinn:broker.read", time.Now()), "mp.scope_not_on_client", nil},
			{"expired key", "", "mp.key_expired", func() {
				resp, err := http.Post(p.SimURL+"/sim/admin/clock/tt02", "application/json", strings.NewReader(`{"shift":"9000h"}`))
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("shift the simulator's clock: %v %v", err, resp)
				}
				resp.Body.Close()
			}},
		}
		for _, f := range failures {
			if f.before != nil {
				f.before()
				f.grant = grant(kid, "altinn:serviceowner/instances.read", time.Now().Add(9000*time.Hour))
			}
			tab.do("open a new try", chromedp.Navigate(integration+"/try"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="paste-form"]`)),
				chromedp.SetValue(chromedp.ID("grant_pasted"), f.grant))
			tab.submit("use the pasted grant ("+f.name+")", `[data-testid="send-pasted"]`, http.StatusOK)
			tab.submit("get a token ("+f.name+")", `[data-testid="run-token"]`, http.StatusOK)
			tab.do("wait for the refusal ("+f.name+")", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-token"][data-ok="false"]`)))
			if tab.count(`[data-testid="result-token"] [data-testid="finding"][data-code="`+f.finding+`"]`) == 0 {
				t.Errorf("%s: no %s finding; the page shows: %s", f.name, f.finding, tab.text(`[data-testid="result-token"]`))
			}
		}
	})

	t.Run("Onboarding", func(t *testing.T) {
		t.Parallel()
		p := startBrowserPortal(t, &browserAdmin)
		admin := openTab(t, browser)
		admin.signIn(p, &browserAdmin)

		// The admin makes a team and invites a newcomer to own it.
		admin.do("create a team",
			chromedp.Navigate(p.URL+"/admin/teams"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="new-team-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "Newcomers"),
		)
		admin.submit("create the team", `form[data-testid="new-team-form"] button[type="submit"]`, http.StatusOK)
		admin.do("fill in the invitation", chromedp.WaitVisible(chromedp.CSS(`form[data-testid="invite-form"]`)),
			chromedp.SendKeys(chromedp.ID("invite-email"), "grace@example.com"))
		admin.selectByValue("invite-role", "owner")
		admin.submit("invite", `form[data-testid="invite-form"] button[type="submit"]`, http.StatusCreated)
		link := admin.value("link")
		if !strings.Contains(link, "/invite?token=") {
			t.Fatalf("invitation link %q", link)
		}

		// The newcomer, in a browser of their own, accepts and follows the checklist.
		grace := browserAccount{Email: "grace@example.com", Name: "Grace Hopper", Password: "a long enough passphrase"}
		newcomer := openTab(t, browser)
		newcomer.do("open the invitation",
			chromedp.Navigate(link),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="accept-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), grace.Name),
			chromedp.SendKeys(chromedp.ID("password"), grace.Password),
			chromedp.SendKeys(chromedp.ID("confirm"), grace.Password),
		)
		newcomer.submit("accept", `form[data-testid="accept-form"] button[type="submit"]`, http.StatusOK)
		newcomer.do("open the checklist", chromedp.Navigate(p.URL+"/onboarding"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="onboarding"]`)))
		if done := newcomer.attr(`[data-testid="onboarding-members"]`, "data-done"); done != "true" {
			t.Fatalf("members step: done=%s", done)
		}
		newcomer.submit("follow the integration step", `[data-testid="onboarding-integration"] a`, http.StatusOK)
		newcomer.do("describe the integration", chromedp.WaitVisible(chromedp.CSS(`form[data-testid="integration-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "First"), chromedp.SendKeys(chromedp.ID("description"), "Our first integration"))
		newcomer.submit("apply the Altinn preset", `[data-testid="preset-instances"]`, http.StatusOK)
		newcomer.submit("create it", `[data-testid="integration-submit"]`, http.StatusOK)
		newcomer.do("back to the checklist", chromedp.Navigate(p.URL+"/onboarding"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="onboarding"]`)))
		newcomer.submit("follow the key step", `[data-testid="onboarding-key"] a`, http.StatusOK)
		newcomer.submit("generate a kept key", `[data-testid="generate"]`, http.StatusOK)
		newcomer.do("wait for the key", chromedp.WaitVisible(chromedp.CSS(`[data-testid="add-generated"]`)))
		newcomer.submit("add it", `[data-testid="add-generated"]`, http.StatusOK)
		newcomer.do("back to the checklist", chromedp.Navigate(p.URL+"/onboarding"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="onboarding"]`)))
		newcomer.submit("follow the token step", `[data-testid="onboarding-token"] a`, http.StatusOK)
		newcomer.submit("run the whole chain", `[data-testid="run-all"]`, http.StatusOK)
		newcomer.do("wait for the token", chromedp.WaitVisible(chromedp.CSS(`[data-testid="result-token"][data-ok="true"]`)))
		newcomer.do("back to the checklist", chromedp.Navigate(p.URL+"/onboarding"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="onboarding"]`)))
		if done := newcomer.attr(`[data-testid="onboarding-token"]`, "data-done"); done != "true" {
			t.Fatalf("token step after a successful try: done=%s", done)
		}

		// The admin sees every step in the audit trail.
		admin.do("open the audit trail", chromedp.Navigate(p.URL+"/audit"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="audit-events"]`)))
		trail := admin.text(`[data-testid="audit-events"]`)
		for _, action := range []string{"invitation.create", "invitation.accept", "integration.create", "key.add", "integration.try"} {
			if !strings.Contains(trail, action) {
				t.Errorf("the audit trail lacks %s", action)
			}
		}
	})

	t.Run("Keys", func(t *testing.T) {
		t.Parallel()
		p := startBrowserPortal(t, &browserAdmin)
		tab := openTab(t, browser)
		tab.signIn(p, &browserAdmin)
		tab.do("create a team",
			chromedp.Navigate(p.URL+"/admin/teams"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="new-team-form"]`)),
			chromedp.SendKeys(chromedp.ID("name"), "Platform"),
		)
		tab.submit("create the team", `form[data-testid="new-team-form"] button[type="submit"]`, http.StatusOK)
		newIntegration := func(env, name string) {
			tab.do("open the new-integration form in "+env,
				chromedp.Navigate(p.URL+"/envs/"+env+"/integrations/new"),
				chromedp.WaitVisible(chromedp.CSS(`form[data-testid="integration-form"]`)),
				chromedp.SendKeys(chromedp.ID("name"), name),
				chromedp.SendKeys(chromedp.ID("description"), "Signs grants"),
			)
			tab.selectByLabel("team", "Platform")
			// A proof of a rotated key asks for a token, which needs a scope.
			tab.submit("apply the Altinn preset", `[data-testid="preset-instances"]`, http.StatusOK)
			tab.submit("create "+name, `[data-testid="integration-submit"]`, http.StatusOK)
			tab.submit("open its keys", `[data-testid="manage-keys"]`, http.StatusOK)
		}
		generate := func(custody string) {
			tab.selectByValue("custody", custody)
			tab.submit("generate a key", `[data-testid="generate"]`, http.StatusOK)
			tab.do("wait for the key", chromedp.WaitVisible(chromedp.CSS(`[data-testid="add-generated"]`)))
			tab.submit("add the key", `[data-testid="add-generated"]`, http.StatusOK)
		}

		// tt02: a key the portal keeps.
		newIntegration("tt02", "Signer")
		generate("kept")
		tab.do("wait for the key list", chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-row"]`)))
		if got := tab.text(`[data-testid="custody"]`); got != "kept by the portal (encrypted)" {
			t.Fatalf("custody of the generated key: %q", got)
		}
		keptKID := tab.text(`[data-testid="key-row"] code`)
		keysPage := tab.location()

		// Upload a public key; then try a private one and see it refused, not echoed.
		pub, priv := browserKeyPair(t)
		tab.do("paste a public key",
			chromedp.SetValue(chromedp.ID("key_text"), pub),
			chromedp.SendKeys(chromedp.ID("upload_kid"), "uploaded-pem"),
		)
		tab.submit("upload it", `[data-testid="upload"]`, http.StatusOK)
		if n := tab.count(`[data-testid="key-row"]`); n != 2 {
			t.Fatalf("%d keys after the upload, want 2", n)
		}
		tab.do("paste a private key",
			chromedp.SetValue(chromedp.ID("key_text"), priv),
			chromedp.SendKeys(chromedp.ID("upload_kid"), "oops"),
		)
		tab.submit("upload the private key", `[data-testid="upload"]`, http.StatusUnprocessableEntity)
		if got := tab.text(`[data-testid="form-error"]`); !strings.Contains(got, "exposed") {
			t.Fatalf("refusal of a private key: %q", got)
		}
		if got := tab.value("key_text"); got != "" {
			t.Fatal("the refused private key was sent back into the form")
		}

		// Rotate: replace the kept key by the uploaded one, proving it with a grant signed in
		// this browser from the private key file, then retire the old key.
		keyFile := filepath.Join(t.TempDir(), "uploaded-pem.pem")
		if err := os.WriteFile(keyFile, []byte(priv), 0o600); err != nil {
			t.Fatal(err)
		}
		tab.submit("open the rotation", `[data-testid="key-row"][data-kid="`+keptKID+`"] [data-testid="rotate-key"]`, http.StatusOK)
		tab.submit("start it", `[data-testid="start-rotation"]`, http.StatusOK)
		tab.selectByValue("new_kid", "uploaded-pem")
		tab.submit("use the uploaded key as the new one", `[data-testid="use-key"]`, http.StatusOK)
		tab.do("pick the private key file", chromedp.SetUploadFiles(chromedp.ID("signer-file"), []string{keyFile}))
		tab.submit("sign the proof in the browser and send it", "#signer-sign", http.StatusOK)
		tab.do("wait for the proof", chromedp.WaitVisible(chromedp.CSS(`[data-testid="proved"]`)))
		tab.submit("confirm the switch", `[data-testid="confirm-switch"]`, http.StatusOK)
		tab.submit("retire the old key", `[data-testid="retire"]`, http.StatusOK)
		tab.do("back to the keys",
			chromedp.Navigate(keysPage),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-row"]`)),
		)
		if n, got := tab.count(`[data-testid="key-row"]`), tab.text(`[data-testid="key-row"] code`); n != 1 || got != "uploaded-pem" {
			t.Fatalf("after the rotation: %d keys, first %q; want only uploaded-pem", n, got)
		}

		// prod: the private key is handed out once, and it is the registered key.
		newIntegration("prod", "Prod signer")
		if n := tab.count(`#custody option[value="kept"]`); n != 0 {
			t.Fatal("production offers to keep the private key")
		}
		generate("handed_out")
		tab.do("wait for the private key", chromedp.WaitVisible(chromedp.CSS(`[data-testid="private-pem"]`)))
		handed, err := keys.ParsePrivate([]byte(tab.value("private-pem")))
		if err != nil {
			t.Fatalf("the handed-out PEM: %v", err)
		}
		tab.do("save it and go back",
			chromedp.Click(chromedp.CSS(`[data-download="private-pem"]`)),
		)
		tab.submit("back to the keys", `[data-testid="handout-done"]`, http.StatusOK)
		if got := tab.text(`[data-testid="key-row"] code.portal-thumb`); got != handed.Thumbprint() {
			t.Fatalf("the handed-out key %s is not the registered one %s", handed.Thumbprint(), got)
		}
		if got := tab.text(`[data-testid="custody"]`); got != "handed out once" {
			t.Fatalf("custody %q", got)
		}
	})
}

// startChromium starts one headless Chromium for the test and its subtests, and stops it when
// the test ends.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		msg := "Chromium is not installed (looked for chromium and chromium-browser on PATH and /usr/bin/chromium); " +
			"install it with `apt-get install chromium` or run `make test`, which does"
		if os.Getenv("PORTAL_BROWSER_TESTS") == "require" {
			t.Fatal(msg + " (PORTAL_BROWSER_TESTS=require)")
		}
		t.Skip(msg)
	}

	output := &browserLog{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Keep Chromium off the network: the machine has none, and Chromium retries forever.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(output),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run sandboxed as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("stop Chromium: %v", err)
		}
		cancel()
		cancelAlloc()
		if out := output.String(); t.Failed() && out != "" {
			if len(out) > 4000 {
				out = "…" + out[len(out)-4000:]
			}
			t.Logf("Chromium output:\n%s", out)
		}
	})

	// The first run starts the browser and binds it to ctx, so it must not carry a timeout;
	// the wait is bounded here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start Chromium (%s): %v\n%s", path, err, output)
		}
	case <-time.After(browserStartTimeout):
		t.Fatalf("Chromium (%s) did not start within %s\n%s", path, browserStartTimeout, output)
	}
	return ctx
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// browserTab is one journey's tab, in a browser context of its own (its own cookies), with
// the steps a journey takes. Every step fails the test, saying which step, when it fails.
type browserTab struct {
	t   *testing.T
	ctx context.Context // ends after browserJourneyTimeout
}

// openTab opens a tab limited to browserJourneyTimeout and closes it when the test ends.
func openTab(t *testing.T, browser context.Context) *browserTab {
	t.Helper()
	tabCtx, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	ctx, cancel := context.WithTimeout(tabCtx, browserJourneyTimeout)
	t.Cleanup(func() {
		cancel()
		cancelTab()
	})
	tab := &browserTab{t: t, ctx: ctx}
	tab.do("open a tab")
	return tab
}

// browserPortal is a portal that run serves for one test.
// browserSimPattern finds the simulators' base URL in serve's log.
var browserSimPattern = regexp.MustCompile(`msg="simulators listening" url=(http://\S+)/sim/`)

type browserPortal struct {
	URL       string // e.g. http://127.0.0.1:41234
	SimURL    string // the simulators' base, e.g. http://127.0.0.1:41235
	SetupLink string // empty when the portal had users at start
	logs      *browserLog
}

var (
	browserListeningPattern = regexp.MustCompile(`msg="portal listening" url=(\S+)`)
	browserSetupLinkPattern = regexp.MustCompile(`setup_link="?([^"\s]+)`)
)

// startBrowserPortal serves the portal from a fresh data directory, with admin added first through
// `portal user add` when it is not nil, and stops it when the test ends.
func startBrowserPortal(t *testing.T, admin *browserAccount) *browserPortal {
	t.Helper()
	return startBrowserPortalEnv(t, admin, nil)
}

// startBrowserPortalEnv is startBrowserPortal with these PORTAL_* variables set.
func startBrowserPortalEnv(t *testing.T, admin *browserAccount, env map[string]string) *browserPortal {
	t.Helper()
	dir := t.TempDir()
	// PORTAL_* in the environment must not leak in. The journeys sign in as an administrator
	// through the real page; unless a test asks for the policy, they run without the
	// second-factor requirement (production's default is admins), which TestBrowserFactors covers.
	getenv := func(k string) string {
		if v, ok := env[k]; ok || k != "PORTAL_REQUIRE_SECOND_FACTOR" {
			return v
		}
		return "none"
	}
	logs := &browserLog{}

	if admin != nil {
		var out bytes.Buffer
		args := []string{"user", "add", "--data", dir, "--email", admin.Email, "--name", admin.Name, "--role", "admin"}
		if err := run(t.Context(), args, getenv, strings.NewReader(admin.Password+"\n"), &out, logs); err != nil {
			t.Fatalf("portal user add: %v\n%s%s", err, out.String(), logs)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		addr := "127.0.0.1:0"
		if v := env["PORTAL_ADDR"]; v != "" {
			addr = v // a test that needs the port before the portal starts (e.g. for its public URL)
		}
		args := []string{"serve", "--data", dir, "--addr", addr, "--sim-addr", "127.0.0.1:0"}
		runErr = run(ctx, args, getenv, strings.NewReader(""), io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil {
				t.Errorf("run returned %v after the portal was asked to stop", runErr)
			}
		case <-time.After(browserStopTimeout):
			t.Errorf("run did not return within %s after the portal was asked to stop", browserStopTimeout)
		}
		if t.Failed() {
			t.Logf("portal log:\n%s", logs)
		}
	})

	wctx, wcancel := context.WithTimeout(t.Context(), browserStartTimeout)
	defer wcancel()
	url, err := logs.waitFor(wctx, done, browserListeningPattern)
	if err != nil {
		select {
		case <-done:
			t.Fatalf("the portal stopped before it listened: %v", runErr)
		default:
		}
		t.Fatalf("no %q line in the portal's log: %v", "portal listening", err)
	}
	p := &browserPortal{URL: strings.TrimRight(url, "/"), logs: logs}
	if m := browserSimPattern.FindStringSubmatch(logs.String()); m != nil {
		p.SimURL = m[1]
	}
	// The setup link, when there is one, is logged before the portal listens.
	if m := browserSetupLinkPattern.FindStringSubmatch(logs.String()); m != nil {
		p.SetupLink = m[1]
	}
	return p
}

// browserLog collects a log and wakes those waiting for a line whenever it grows.
type browserLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (b *browserLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

func (b *browserLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor returns the first submatch of re in the log once it appears, or an error when ctx
// ends or stopped is closed first.
func (b *browserLog) waitFor(ctx context.Context, stopped <-chan struct{}, re *regexp.Regexp) (string, error) {
	for {
		b.mu.Lock()
		m := re.FindSubmatch(b.buf.Bytes())
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if m != nil {
			return string(m[1]), nil
		}
		select {
		case <-changed:
		case <-stopped:
			return "", errors.New("the program stopped")
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// do runs the steps of one part of a journey.
func (b *browserTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.state())
	}
}

// submit clicks the element, waits for the page it leads to and checks that page's status.
func (b *browserTab) submit(what, selector string, wantStatus int) {
	b.t.Helper()
	origin, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`performance.timeOrigin`))
	if err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.state())
	}
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(selector)))
	if err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.state())
	}
	status := 0
	if resp != nil {
		status = int(resp.Status)
	} else {
		// RunResponse ends without a response when it sees a same-document navigation, such as a
		// late event from an htmx history push made before the click; wait for the new document.
		status = b.loadedStatus(what, origin)
	}
	if status != wantStatus {
		b.t.Fatalf("%s: the page came back with status %d, want %d%s", what, status, wantStatus, b.state())
	}
}

// loadedStatus waits until a document newer than the one created at origin has loaded and
// returns its HTTP status.
func (b *browserTab) loadedStatus(what string, origin float64) int {
	b.t.Helper()
	type loaded struct {
		Origin float64 `json:"origin"`
		Ready  bool    `json:"ready"`
		Status int     `json:"status"`
	}
	for {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[loaded](`({
			origin: performance.timeOrigin,
			ready: document.readyState === 'complete',
			status: (performance.getEntriesByType('navigation')[0] || {}).responseStatus || 0,
		})`))
		if err == nil && got.Origin != origin && got.Ready {
			return got.Status
		}
		select {
		case <-b.ctx.Done():
			b.t.Fatalf("%s: no new page loaded: %v%s", what, b.ctx.Err(), b.state())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// signIn signs in through the sign-in form and checks that the dashboard greets the person.
func (b *browserTab) signIn(p *browserPortal, a *browserAccount) {
	b.t.Helper()
	b.do("fill in the sign-in form",
		chromedp.Navigate(p.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`form[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.ID("email"), a.Email),
		chromedp.SendKeys(chromedp.ID("password"), a.Password),
	)
	b.submit("sign in", `form[data-testid="login-form"] button[type="submit"]`, http.StatusOK)
	b.wantDashboard(p, a)
}

func (b *browserTab) wantDashboard(p *browserPortal, a *browserAccount) {
	b.t.Helper()
	b.do("wait for the dashboard", chromedp.WaitVisible(chromedp.CSS(`[data-testid="dashboard-title"]`)))
	if got, want := b.text(`[data-testid="dashboard-title"]`), "Welcome, "+a.Name; got != want {
		b.t.Errorf("dashboard title = %q, want %q", got, want)
	}
	if got := b.location(); got != p.URL+"/" {
		b.t.Errorf("the dashboard is at %s, want %s/", got, p.URL)
	}
}

// checkStyled proves that Designsystemet's stylesheet loaded and applies: its rules are in the
// document and a .ds-button looks like one, not like the browser's default button.
func (b *browserTab) checkStyled() {
	b.t.Helper()
	type styleState struct {
		Rules       int    `json:"rules"`
		Cursor      string `json:"cursor"`
		ButtonVar   string `json:"buttonVar"`
		PlainCursor string `json:"plainCursor"`
	}
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[styleState](`(() => {
		let rules = -1;
		for (const s of document.styleSheets) {
			if (s.href && new URL(s.href).pathname === '/static/vendor/designsystemet.css') {
				try { rules = s.cssRules.length; } catch (e) { rules = -2; }
			}
		}
		const b = document.querySelector('.ds-button');
		const plain = document.createElement('button');
		document.body.appendChild(plain);
		const st = {
			rules: rules,
			cursor: b ? getComputedStyle(b).cursor : '',
			buttonVar: b ? getComputedStyle(b).getPropertyValue('--dsc-button-size').trim() : '',
			plainCursor: getComputedStyle(plain).cursor,
		};
		plain.remove();
		return st;
	})()`))
	if err != nil {
		b.t.Fatalf("read the page's styles: %v", err)
	}
	if got.Rules <= 0 || got.ButtonVar == "" || got.Cursor != "pointer" || got.Cursor == got.PlainCursor {
		b.t.Errorf("Designsystemet's CSS is not applied (rules in /static/vendor/designsystemet.css: %d; .ds-button cursor %q, "+
			"--dsc-button-size %q; plain button cursor %q): run `make assets` to fetch the front-end assets into static/vendor",
			got.Rules, got.Cursor, got.ButtonVar, got.PlainCursor)
	}
}

// screenshot saves the whole page as a PNG in the test's temporary directory.
func (b *browserTab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o600); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// attr reads an attribute of the first element matching selector.
func (b *browserTab) attr(selector, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {getAttribute: () => ""}).getAttribute(%q) || ""`, selector, name)))
	if err != nil {
		b.t.Fatalf("read %s of %s: %v%s", name, selector, err, b.state())
	}
	return v
}

// keyOf returns the kid of the first key on a keys page.
func (b *browserTab) keyOf(keysPage string) string {
	b.t.Helper()
	b.do("open the keys", chromedp.Navigate(keysPage), chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-row"]`)))
	return b.text(`[data-testid="key-row"] code`)
}

// browserFieldOf reads a read-only field of an integration's page.
func browserFieldOf(t *testing.T, b *browserTab, integration, id string) string {
	t.Helper()
	b.do("open the integration", chromedp.Navigate(integration), chromedp.WaitVisible(chromedp.ID(id)))
	return b.value(id)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// selectByValue chooses the option with this value in the select with this id.
func (b *browserTab) selectByValue(id, value string) {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const sel = document.getElementById(%q);
		if (!sel || !Array.from(sel.options).some(o => o.value === %q)) return false;
		sel.value = %q;
		sel.dispatchEvent(new Event('change', {bubbles: true}));
		return true;
	})()`, id, value, value)))
	if err != nil || !ok {
		b.t.Fatalf("choose %q in #%s: %v%s", value, id, err, b.state())
	}
}

// browserKeyPair is a fresh RSA key pair as PEM: the public key (SPKI) and the private key (PKCS#8).
func browserKeyPair(t *testing.T) (string, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	priv, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}))
}

// selectByLabel chooses the option with this label in the select with this id, as a person
// would, so the change event fires.
func (b *browserTab) selectByLabel(id, label string) {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const sel = document.getElementById(%q);
		const opt = sel && Array.from(sel.options).find(o => o.textContent.trim() === %q);
		if (!opt) return false;
		sel.value = opt.value;
		sel.dispatchEvent(new Event('change', {bubbles: true}));
		return true;
	})()`, id, label)))
	if err != nil || !ok {
		b.t.Fatalf("choose %q in #%s: %v%s", label, id, err, b.state())
	}
}

func (b *browserTab) text(selector string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		b.t.Fatalf("read the text of %s: %v%s", selector, err, b.state())
	}
	return strings.TrimSpace(s)
}

func (b *browserTab) value(id string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID(id)))
	if err != nil {
		b.t.Fatalf("read the value of #%s: %v%s", id, err, b.state())
	}
	return s
}

func (b *browserTab) count(selector string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, selector)))
	if err != nil {
		b.t.Fatalf("count %s: %v", selector, err)
	}
	return n
}

func (b *browserTab) location() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("read the location: %v", err)
	}
	return u
}

// state describes the page the tab shows, for failure messages.
func (b *browserTab) state() string {
	if b.ctx.Err() != nil {
		return " (the journey ran out of time)"
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return ""
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if len(body) > 2000 {
		body = body[:2000] + "…"
	}
	return fmt.Sprintf("\npage %s shows:\n%s", u, body)
}
