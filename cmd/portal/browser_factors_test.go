package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// TestBrowserPasskeys drives passkeys in Chromium with the DevTools virtual authenticator,
// under the production policy (administrators must have a second factor): the administrator is
// sent to enrolment after the password, adds a passkey (and gets recovery codes), adds and
// removes a second one, signs in with password and passkey and with the passkey alone; a
// credential the portal does not know and a cloned credential (its sign counter set back) are
// refused.
func TestBrowserPasskeys(t *testing.T) {
	browser := startChromium(t)
	// WebAuthn refuses an IP address as the relying party, so the portal is reached as
	// localhost, on a port chosen before it starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := startBrowserPortalEnv(t, &browserAdmin, map[string]string{"PORTAL_ADDR": addr,
		"PORTAL_PUBLIC_URL": "http://localhost:" + strconv.Itoa(port), "PORTAL_REQUIRE_SECOND_FACTOR": "admins"})
	tab := openTab(t, browser)

	if _, err := chromedp.Call(tab.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enable WebAuthn: %v", err)
	}
	newAuthenticator := func() webauthn.AuthenticatorID {
		t.Helper()
		res, err := chromedp.Call(tab.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
		if err != nil {
			t.Fatalf("add a virtual authenticator: %v", err)
		}
		return res.AuthenticatorID
	}
	credentials := func(id webauthn.AuthenticatorID) []*webauthn.Credential {
		t.Helper()
		res, err := chromedp.Call(tab.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		if err != nil {
			t.Fatalf("credentials: %v", err)
		}
		return res.Credentials
	}
	removeAuthenticator := func(id webauthn.AuthenticatorID) {
		t.Helper()
		if _, err := chromedp.Call(tab.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id}); err != nil {
			t.Fatalf("remove a virtual authenticator: %v", err)
		}
	}
	addPasskey := func(name string) {
		t.Helper()
		tab.do("add the passkey "+name,
			chromedp.WaitVisible(chromedp.CSS(`form[data-passkey="register"]`)),
			chromedp.SendKeys(chromedp.ID("passkey-name"), name),
			chromedp.Click(chromedp.CSS(`[data-testid="passkey-add"]`)),
		)
	}
	signInPassword := func() {
		t.Helper()
		tab.do("fill in the sign-in form",
			chromedp.Navigate(p.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`form[data-testid="login-form"]`)),
			chromedp.SendKeys(chromedp.ID("email"), browserAdmin.Email),
			chromedp.SendKeys(chromedp.ID("password"), browserAdmin.Password),
		)
		tab.submit("sign in", `form[data-testid="login-form"] button[type="submit"]`, http.StatusOK)
	}
	signOut := func() {
		t.Helper()
		tab.submit("sign out", `button[data-testid="sign-out"]`, http.StatusOK)
	}
	addCredential := func(id webauthn.AuthenticatorID, c *webauthn.Credential) {
		t.Helper()
		// cdproto always sends generateCmtgKeyOnNextOperation, which this Chromium refuses for
		// its virtual authenticators, so the command goes with the fields it knows only.
		params := addCredentialParams{AuthenticatorID: id, Credential: credentialParams{CredentialID: c.CredentialID,
			IsResidentCredential: c.IsResidentCredential, RpID: c.RpID, PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount}}
		if _, err := chromedp.Call(tab.ctx, cdp.Command[addCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}, params); err != nil {
			t.Fatalf("add a credential: %v", err)
		}
	}
	passkeyError := func(what string) string {
		t.Helper()
		tab.do(what, chromedp.WaitVisible(chromedp.CSS(`[data-passkey-error]:not([hidden])`)))
		return tab.text(`[data-passkey-error]:not([hidden])`)
	}

	laptop := newAuthenticator()

	// The password leads to enrolment, and nothing else opens before it.
	signInPassword()
	tab.do("wait for enrolment", chromedp.WaitVisible(chromedp.CSS(`[data-testid="must-enrol"]`)))
	if got := tab.location(); got != p.URL+"/account/security" {
		t.Fatalf("after the password an administrator without a second factor is at %s", got)
	}
	tab.do("try the overview", chromedp.Navigate(p.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="must-enrol"]`)))

	// Enrol: the passkey is made on the authenticator and recovery codes are shown once.
	addPasskey("Laptop")
	tab.do("wait for the recovery codes", chromedp.WaitVisible(chromedp.CSS(`[data-testid="recovery-codes"]:not([hidden]) [data-testid="recovery-code"]`)))
	if n := tab.count(`[data-testid="recovery-codes"]:not([hidden]) [data-testid="recovery-code"]`); n != 10 {
		t.Fatalf("%d recovery codes shown, want 10", n)
	}
	creds := credentials(laptop)
	if len(creds) != 1 {
		t.Fatalf("the authenticator holds %d credentials, want 1", len(creds))
	}
	laptopCred := creds[0]
	tab.submit("continue", `[data-testid="recovery-continue"]`, http.StatusOK)
	if n := tab.count(`[data-testid="passkey-row"]`); n != 1 {
		t.Fatalf("%d passkeys listed, want 1", n)
	}

	// A second passkey on another authenticator, then removed from the account page.
	removeAuthenticator(laptop) // so the new passkey is made on the phone
	phone := newAuthenticator()
	addPasskey("Phone")
	tab.do("wait for the second passkey", chromedp.WaitVisible(chromedp.CSS(`[data-testid="passkey-row"]:nth-child(2)`)))
	if !strings.Contains(tab.text(`[data-testid="passkeys"]`), "Phone") {
		t.Fatalf("the list does not show the new passkey: %q", tab.text(`[data-testid="passkeys"]`))
	}
	tab.submit("remove the phone's passkey", `[data-testid="passkey-row"]:nth-child(2) [data-testid="passkey-remove"]`, http.StatusOK)
	if n := tab.count(`[data-testid="passkey-row"]`); n != 1 || strings.Contains(tab.text(`[data-testid="passkeys"]`), "Phone") {
		t.Fatalf("after removing, %d passkeys listed: %q", n, tab.text(`[data-testid="passkeys"]`))
	}
	removeAuthenticator(phone)

	// The laptop's passkey comes back on a fresh authenticator: its key and its counter.
	laptop = newAuthenticator()
	addCredential(laptop, laptopCred)

	// Password, then the passkey as the second factor.
	signOut()
	signInPassword()
	tab.do("use the passkey as the second factor",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="passkey-factor-button"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="passkey-factor-button"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dashboard-title"]`)),
	)
	tab.wantDashboard(p, &browserAdmin)

	// The passkey alone, without a password.
	signOut()
	tab.do("sign in with the passkey alone",
		chromedp.Navigate(p.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dashboard-title"]`)),
	)
	tab.wantDashboard(p, &browserAdmin)
	signOut()

	// A passkey for this site that the portal never registered is refused.
	now := credentials(laptop)[0]
	removeAuthenticator(laptop)
	stranger := newAuthenticator()
	addCredential(stranger, &webauthn.Credential{CredentialID: randomBytes(t, 32), IsResidentCredential: true, RpID: "localhost",
		PrivateKey: p256Key(t), UserHandle: randomBytes(t, 32), SignCount: 0})
	tab.do("try an unknown passkey",
		chromedp.Navigate(p.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
	)
	if msg := passkeyError("wait for the refusal"); !strings.Contains(msg, "not accepted") {
		t.Errorf("an unknown passkey: message %q", msg)
	}
	if tab.count(`[data-testid="sign-out"]`) != 0 {
		t.Fatal("an unknown passkey signed someone in")
	}
	removeAuthenticator(stranger)

	// A copy of the laptop's passkey whose counter is behind the portal's is refused: two
	// authenticators hold the key.
	clone := newAuthenticator()
	cloned := *now
	cloned.SignCount = 0
	addCredential(clone, &cloned)
	tab.do("try the cloned passkey",
		chromedp.Navigate(p.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
	)
	if msg := passkeyError("wait for the refusal"); !strings.Contains(msg, "counter went backwards") {
		t.Errorf("a cloned passkey: message %q", msg)
	}
	if tab.count(`[data-testid="sign-out"]`) != 0 {
		t.Fatal("a cloned passkey signed someone in")
	}
	removeAuthenticator(clone)

	// The original, its counter ahead, still signs in.
	laptop = newAuthenticator()
	addCredential(laptop, now)
	tab.do("sign in with the original passkey",
		chromedp.Navigate(p.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="passkey-sign-in-button"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dashboard-title"]`)),
	)

	// Everything is audited.
	tab.do("open the audit trail", chromedp.Navigate(p.URL+"/audit"), chromedp.WaitVisible(chromedp.CSS(`body`)))
	body := tab.text(`body`)
	for _, want := range []string{"mfa.passkey_enrol", "mfa.remove", "auth.second_factor", "auth.passkey_sign_in", "auth.passkey_clone"} {
		if !strings.Contains(body, want) {
			t.Errorf("the audit trail shows no %s", want)
		}
	}
}

type credentialParams struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
}

type addCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      credentialParams         `json:"credential"`
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func p256Key(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
