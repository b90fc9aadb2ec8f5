package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAnsattporten signs in through the simulated Ansattporten in Chromium: the
// sign-in page offers it marked simulated, the picker's person with Write for the
// organisation lands as an administrator, signing out passes through the provider's
// end-session endpoint back to the sign-in page, and a person with rights for another
// organisation only is refused with a message.
func TestBrowserAnsattporten(t *testing.T) {
	browser := startChromium(t)
	p := startBrowserPortal(t, &browserAdmin)
	tab := openTab(t, browser)

	tab.do("open the sign-in page",
		chromedp.Navigate(p.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="provider-link"]`)))
	if got := tab.text(`[data-testid="provider-link"]`); !strings.Contains(got, "Sign in with Ansattporten (simulated)") {
		t.Fatalf("provider link says %q", got)
	}
	tab.submit("choose Ansattporten", `[data-testid="provider-link"]`, http.StatusOK)
	tab.do("wait for the person picker", chromedp.WaitVisible(chromedp.CSS(`[data-testid="ap-simulated"]`)))
	tab.submit("pick Kari Nordmann", `a[data-testid="ap-person"][href$="pid=01017012345"]`, http.StatusOK)
	tab.wantDashboard(p, &browserAccount{Name: "Kari Nordmann"})
	tab.do("open the account page", chromedp.Navigate(p.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`.portal-facts`)))
	if got := tab.text(`.portal-facts`); !strings.Contains(got, "admin") {
		t.Fatalf("account facts %q, want the administrator role from the Write right", got)
	}

	tab.submit("sign out", `button[data-testid="sign-out"]`, http.StatusOK)
	tab.do("wait for the sign-in page", chromedp.WaitVisible(chromedp.CSS(`form[data-testid="login-form"]`)))
	if got := tab.location(); got != p.URL+"/login" {
		t.Errorf("after signing out the browser is at %s, want %s/login", got, p.URL)
	}

	tab.submit("choose Ansattporten again", `[data-testid="provider-link"]`, http.StatusOK)
	tab.do("wait for the person picker", chromedp.WaitVisible(chromedp.CSS(`[data-testid="ap-simulated"]`)))
	tab.submit("pick Per Utenfor", `a[data-testid="ap-person"][href$="pid=03039012345"]`, http.StatusForbidden)
	tab.do("wait for the refusal", chromedp.WaitVisible(chromedp.CSS(`[data-testid="form-error"]`)))
	if got := tab.text(`[data-testid="form-error"]`); !strings.Contains(got, "none of your groups or rights gives access") {
		t.Fatalf("refusal says %q", got)
	}
}
