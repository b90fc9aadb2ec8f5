package web_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/pquerna/otp/totp"

	"portal/internal/audit"
	"portal/internal/mfa"
	"portal/web"
)

func withClock(c *clock) func(*web.Config) { return func(cfg *web.Config) { cfg.Now = c.Now } }

func newClock() *clock {
	// The middle of a 30-second step, so the step is unambiguous.
	return &clock{now: time.Unix(1_800_000_015, 0).UTC()}
}

func code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a 6-digit code that is not the right one for any step within the skew.
func wrongCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	for i := 0; ; i++ {
		w := fmt.Sprintf("%06d", 123456+i)
		if w != code(t, secret, at) && w != code(t, secret, at.Add(-30*time.Second)) && w != code(t, secret, at.Add(30*time.Second)) {
			return w
		}
	}
}

// enrolTOTP sets up an authenticator app for the signed-in client and returns its secret and
// the recovery codes shown.
func enrolTOTP(t *testing.T, c *client, clk *clock) (string, []string) {
	t.Helper()
	p := c.post("/account/totp", nil)
	if p.status != http.StatusOK {
		t.Fatalf("start TOTP: status %d: %s", p.status, p.body)
	}
	secret := text(p, `[data-testid="totp-secret"]`)
	if len(secret) < 32 {
		t.Fatalf("TOTP secret shown as %q", secret)
	}
	src, _ := p.doc.Find(`img[data-testid="totp-qr"]`).Attr("src")
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:image/png;base64,"))
	if !strings.HasPrefix(src, "data:image/png;base64,") || err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the QR code is not a PNG data URL: %.60q", src)
	}
	p = c.post("/account/totp/confirm", url.Values{"code": {wrongCode(t, secret, clk.Now())}})
	if p.status != http.StatusUnprocessableEntity || text(p, `[data-testid="totp-secret"]`) != secret {
		t.Fatalf("a wrong confirmation code: status %d, the same secret shown again: %v", p.status, text(p, `[data-testid="totp-secret"]`) == secret)
	}
	p = c.post("/account/totp/confirm", url.Values{"code": {code(t, secret, clk.Now())}})
	if p.status != http.StatusOK {
		t.Fatalf("confirm TOTP: status %d: %s", p.status, p.body)
	}
	var codes []string
	p.doc.Find(`[data-testid="recovery-code"]`).Each(func(_ int, s *goquery.Selection) { codes = append(codes, strings.TrimSpace(s.Text())) })
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(codes))
	}
	return secret, codes
}

// passwordStep signs in with the password and wants the second-factor step.
func passwordStep(t *testing.T, c *client, email string) {
	t.Helper()
	p := c.post("/login", url.Values{"email": {email}, "password": {"correct horse battery"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login/factor" {
		t.Fatalf("password step: status %d location %q", p.status, p.header.Get("Location"))
	}
	for _, ck := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(ck, "portal_session=") && !strings.Contains(ck, "Max-Age=0") {
			t.Fatalf("the password alone set a session cookie: %s", ck)
		}
	}
}

func actions(t *testing.T, a *app) []string {
	t.Helper()
	evs, err := audit.NewLog(a.db, nil).Recent(t.Context(), 200)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, evs[i].Action+" "+evs[i].Outcome)
	}
	return out
}

// TestTOTPJourney: enrol, confirm, sign in with password and code; a wrong code, a replayed
// code (the one that confirmed the app, and one that signed in) and a used recovery code are
// refused; every step is audited.
func TestTOTPJourney(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newFactorApp(t, mfa.PolicyAdmins, nil, withClock(clk))
	a.addUser("admin@example.no", "admin")

	c := a.client()
	c.login("admin@example.no") // no factor yet: a session, but only enrolment is open
	secret, recovery := enrolTOTP(t, c, clk)
	confirmCode := code(t, secret, clk.Now())
	if p := c.get("/"); p.status != http.StatusOK {
		t.Fatalf("after enrolment the overview answers %d", p.status)
	}

	steps := []struct {
		name       string
		code       func() string
		wantStatus int
		wantMsg    string
	}{
		{"wrong code", func() string { return wrongCode(t, secret, clk.Now()) }, http.StatusUnauthorized, "not right"},
		{"the code that confirmed the app", func() string { return confirmCode }, http.StatusUnauthorized, "used already"},
		{"recovery code typed wrong", func() string { return "aaaaa-bbbbb" }, http.StatusUnauthorized, "not right"},
	}
	for _, s := range steps {
		b := a.client()
		passwordStep(t, b, "admin@example.no")
		p := b.post("/login/factor", url.Values{"code": {s.code()}})
		if p.status != s.wantStatus || !strings.Contains(text(p, `[data-testid="form-error"]`), s.wantMsg) {
			t.Errorf("%s: status %d, message %q; want %d with %q", s.name, p.status, text(p, `[data-testid="form-error"]`), s.wantStatus, s.wantMsg)
		}
		if p := b.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
			t.Errorf("%s: the overview answers %d %q, want a redirect to sign in", s.name, p.status, p.header.Get("Location"))
		}
	}

	// The next step's code signs in, once.
	clk.add(30 * time.Second)
	next := code(t, secret, clk.Now())
	b := a.client()
	passwordStep(t, b, "admin@example.no")
	if p := b.post("/login/factor", url.Values{"code": {next}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Fatalf("right code: status %d location %q: %s", p.status, p.header.Get("Location"), text(p, `[data-testid="form-error"]`))
	}
	if p := b.get("/"); p.status != http.StatusOK {
		t.Fatalf("signed in with password and code, the overview answers %d", p.status)
	}
	replay := a.client()
	passwordStep(t, replay, "admin@example.no")
	if p := replay.post("/login/factor", url.Values{"code": {next}}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "used already") {
		t.Fatalf("replayed code: status %d", p.status)
	}

	// A recovery code works once, typed in any case with or without its dash.
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		r := a.client()
		passwordStep(t, r, "admin@example.no")
		typed := recovery[3]
		if i == 0 {
			typed = strings.ToUpper(strings.ReplaceAll(typed, "-", ""))
		}
		if p := r.post("/login/factor", url.Values{"code": {typed}}); p.status != want {
			t.Fatalf("recovery code use %d: status %d, want %d", i+1, p.status, want)
		}
	}
	if p := b.get("/account/security"); !strings.Contains(text(p, `[data-testid="recovery-left"]`), "9 unused") {
		t.Errorf("recovery codes left: %q", text(p, `[data-testid="recovery-left"]`))
	}

	got := strings.Join(actions(t, a), "\n")
	for _, want := range []string{"mfa.totp_enrol success", "auth.second_factor failure", "auth.second_factor success", "auth.recovery_code success"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit has no %q:\n%s", want, got)
		}
	}
	if strings.Contains(a.logs.String(), secret) || strings.Contains(a.logs.String(), next) {
		t.Error("a TOTP secret or code reached the log")
	}
	// The secret is sealed at rest: the database file holds no copy of it.
	var raw string
	if err := a.db.Reader().QueryRowContext(t.Context(), `SELECT hex(totp_sealed) FROM second_factors WHERE kind = 'totp'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(raw), strings.ToUpper(fmt.Sprintf("%x", secret))) {
		t.Error("the TOTP secret is stored in the clear")
	}
}

// TestHalfSignInReachesNothing: after the right password, before the second factor, every
// signed-in route sends the browser to sign in, and nothing is changed.
func TestHalfSignInReachesNothing(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newFactorApp(t, mfa.PolicyAdmins, nil, withClock(clk))
	a.addUser("admin@example.no", "admin")
	c := a.client()
	c.login("admin@example.no")
	enrolTOTP(t, c, clk)

	half := a.client()
	passwordStep(t, half, "admin@example.no")
	if p := half.get("/login/factor"); p.status != http.StatusOK || p.doc.Find(`form[data-testid="factor-form"]`).Length() != 1 {
		t.Fatalf("the second-factor page: status %d", p.status)
	}
	open := map[string]bool{"/healthz": true, "/readyz": true, "/static/*": true, "/metrics": true, "/login": true, "/setup": true,
		"/password/set": true, "/invite": true, "/logout": true}
	n := 0
	for _, r := range a.web.Routes() {
		if open[r.Path] || strings.HasPrefix(r.Path, "/login/") {
			continue
		}
		n++
		path := strings.NewReplacer(":env", "tt02", ":id", "1", ":factor", "1", ":user", "1", ":inv", "1", ":job", "x").Replace(r.Path)
		var p page
		if r.Method == http.MethodGet {
			p = half.get(path)
		} else {
			p = half.post(path, url.Values{"code": {"123456"}, "role": {"member"}, "name": {"x"}})
		}
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
			t.Errorf("%s %s in a half sign-in: status %d location %q, want a redirect to sign in", r.Method, path, p.status, p.header.Get("Location"))
		}
	}
	if n < 20 {
		t.Fatalf("only %d routes checked", n)
	}
	// The sign-in page itself does not count the person as signed in.
	if p := half.get("/login"); p.status != http.StatusOK {
		t.Errorf("/login in a half sign-in: %d", p.status)
	}
}

// TestSecondFactorPolicy: who is sent to enrolment after the password, per policy and role.
func TestSecondFactorPolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		policy       mfa.Policy
		admin, membr bool // sent to enrolment?
	}{
		{mfa.PolicyAdmins, true, false},
		{mfa.PolicyEveryone, true, true},
		{mfa.PolicyNone, false, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			t.Parallel()
			a := newFactorApp(t, tc.policy, nil)
			a.addUser("admin@example.no", "admin")
			a.addUser("member@example.no", "member")
			for who, want := range map[string]bool{"admin": tc.admin, "member": tc.membr} {
				c := a.client()
				c.login(who + "@example.no")
				for _, path := range []string{"/", "/keys", "/account", "/admin/users", "/audit"} {
					p := c.get(path)
					sent := p.status == http.StatusSeeOther && p.header.Get("Location") == "/account/security"
					if sent != want {
						t.Errorf("%s GET %s: status %d location %q; sent to enrolment %v, want %v", who, path, p.status, p.header.Get("Location"), sent, want)
					}
				}
				p := c.get("/account/security")
				if p.status != http.StatusOK || (p.doc.Find(`[data-testid="must-enrol"]`).Length() == 1) != want {
					t.Errorf("%s: the security page answers %d, says enrolment is required: %v", who, p.status, !want)
				}
			}
		})
	}
}

// TestSecondFactorThrottled: wrong codes count like wrong passwords, per account, and a right
// password in between does not reset the count.
func TestSecondFactorThrottled(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newFactorApp(t, mfa.PolicyAdmins, nil, withClock(clk))
	a.addUser("admin@example.no", "admin")
	c := a.client()
	c.login("admin@example.no")
	secret, _ := enrolTOTP(t, c, clk)
	clk.add(30 * time.Second)
	bad := wrongCode(t, secret, clk.Now())
	// Enrolment's right code cleared the count of its wrong one; five wrong codes reach the limit.
	for i := range 5 {
		b := a.client()
		passwordStep(t, b, "admin@example.no")
		if p := b.post("/login/factor", url.Values{"code": {bad}}); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: status %d", i+1, p.status)
		}
	}
	b := a.client()
	passwordStep(t, b, "admin@example.no")
	p := b.post("/login/factor", url.Values{"code": {code(t, secret, clk.Now())}})
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many wrong codes") {
		t.Fatalf("the right code after five wrong ones: status %d", p.status)
	}
	if !strings.Contains(strings.Join(actions(t, a), "\n"), "auth.second_factor denied") {
		t.Error("the refusal is not audited")
	}
}

// TestFactorRemoveAndReset: the last required factor cannot be removed; an administrator's
// reset removes it, ends the person's sessions, tells them, and is audited.
func TestFactorRemoveAndReset(t *testing.T) {
	t.Parallel()
	clk := newClock()
	n := &fakeNotifier{}
	a := newFactorApp(t, mfa.PolicyEveryone, n, withClock(clk))
	a.addUser("admin@example.no", "admin")
	member := a.addUser("member@example.no", "member")

	m := a.client()
	m.login("member@example.no")
	enrolTOTP(t, m, clk)
	sec := m.get("/account/security")
	action, _ := sec.doc.Find(`form:has([data-testid="totp-remove"])`).Attr("action")
	if p := m.post(action, nil); p.status != http.StatusConflict {
		t.Fatalf("removing the only required factor: status %d", p.status)
	}

	ad := a.client()
	ad.login("admin@example.no")
	clk.add(time.Minute)
	adminSecret, _ := enrolTOTP(t, ad, clk)
	_ = adminSecret
	if p := m.post("/admin/users/"+itoa(member.ID)+"/second-factor/reset", nil); p.status != http.StatusForbidden {
		t.Fatalf("a member resetting: status %d", p.status)
	}
	up := ad.get("/admin/users/" + itoa(member.ID))
	if !strings.Contains(text(up, `[data-testid="user-factors"]`), "authenticator app") {
		t.Fatalf("the user page shows %q", text(up, `[data-testid="user-factors"]`))
	}
	if p := ad.post("/admin/users/"+itoa(member.ID)+"/second-factor/reset", nil); p.status != http.StatusSeeOther {
		t.Fatalf("reset: status %d: %s", p.status, p.body)
	}
	if got := n.last(); !strings.Contains(got, "factor reset to member@example.no by admin@example.no") {
		t.Errorf("notifier got %q", got)
	}
	if p := m.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("the member's session survived the reset: %d %q", p.status, p.header.Get("Location"))
	}
	// The password now leads to enrolment, not to a code.
	again := a.client()
	again.login("member@example.no")
	if p := again.get("/"); p.header.Get("Location") != "/account/security" {
		t.Errorf("after the reset the member is sent to %q", p.header.Get("Location"))
	}
	if !strings.Contains(strings.Join(actions(t, a), "\n"), "mfa.reset success") {
		t.Error("the reset is not audited")
	}
}

func (f *fakeNotifier) SendFactorReset(to, name, resetBy, signIn string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, fmt.Sprintf("factor reset to %s by %s, sign in at %s", to, resetBy, signIn))
	return true
}

// TestPasswordLinkStillAsksSecondFactor: a set-password link replaces the password only; a
// person with a second factor is asked for it before a session starts.
func TestPasswordLinkStillAsksSecondFactor(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newFactorApp(t, mfa.PolicyNone, nil, withClock(clk))
	a.addUser("admin@example.no", "admin")
	member := a.addUser("member@example.no", "member")
	m := a.client()
	m.login("member@example.no")
	secret, _ := enrolTOTP(t, m, clk)

	token, err := a.auth.NewPasswordLink(t.Context(), adminPrincipal(t, a), member.ID, metaFor())
	if err != nil {
		t.Fatal(err)
	}
	c := a.client()
	p := c.post("/password/set", url.Values{"token": {token}, "password": {"another long password"}, "confirm": {"another long password"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login/factor" {
		t.Fatalf("set-password link: status %d location %q, want the second-factor step", p.status, p.header.Get("Location"))
	}
	if p := c.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Fatalf("after the link alone the overview answers %d %q", p.status, p.header.Get("Location"))
	}
	clk.add(30 * time.Second)
	if p := c.post("/login/factor", url.Values{"code": {code(t, secret, clk.Now())}}); p.status != http.StatusSeeOther {
		t.Fatalf("code after the link: status %d", p.status)
	}
	if p := c.get("/"); p.status != http.StatusOK {
		t.Fatalf("signed in after link and code, the overview answers %d", p.status)
	}
}

// TestPendingSignInOnceAndBriefly: the half-finished sign-in's cookie is good for one second
// factor and for five minutes; copied after use, or used late, it leads back to the password.
func TestPendingSignInOnceAndBriefly(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newFactorApp(t, mfa.PolicyNone, nil, withClock(clk))
	a.addUser("member@example.no", "member")
	m := a.client()
	m.login("member@example.no")
	_, recovery := enrolTOTP(t, m, clk)
	base, _ := url.Parse(a.srv.URL + "/login")

	c := a.client()
	passwordStep(t, c, "member@example.no")
	stolen := c.hc.Jar.Cookies(base)
	if p := c.post("/login/factor", url.Values{"code": {recovery[0]}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Fatalf("recovery code: status %d location %q", p.status, p.header.Get("Location"))
	}
	thief := a.client()
	thief.hc.Jar.SetCookies(base, stolen)
	if p := thief.post("/login/factor", url.Values{"code": {recovery[1]}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("the used half sign-in again: status %d location %q", p.status, p.header.Get("Location"))
	}
	if p := thief.get("/"); p.status != http.StatusSeeOther {
		t.Fatalf("the used half sign-in reached the overview: %d", p.status)
	}

	late := a.client()
	passwordStep(t, late, "member@example.no")
	clk.add(6 * time.Minute)
	if p := late.post("/login/factor", url.Values{"code": {recovery[1]}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("a half sign-in six minutes old: status %d location %q", p.status, p.header.Get("Location"))
	}
	// Neither attempt used the second recovery code.
	ok := a.client()
	passwordStep(t, ok, "member@example.no")
	if p := ok.post("/login/factor", url.Values{"code": {recovery[1]}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Fatalf("the unused recovery code: status %d location %q", p.status, p.header.Get("Location"))
	}
}
