package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/store"
	"portal/web"
)

// clock is a settable time for the auth service.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newGuardApp is the harness's app with auth options of the test's choosing and, optionally, a
// notifier.
func newGuardApp(t *testing.T, opts auth.Options, n web.Notifier) *app {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if opts.Hash == (auth.HashParams{}) {
		opts.Hash = cheap
	}
	a, err := auth.NewService(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := auth.NewSessionStore(db, auth.SessionOptions{KeyPairs: [][]byte{bytes.Repeat([]byte("k"), 32)}, Now: opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	w, err := web.New(web.Config{OrgName: "Testdepartementet", PublicURL: "http://portal.test", FlashKey: bytes.Repeat([]byte("f"), 32),
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{ReplaceAttr: web.RedactAttr}))},
		web.Deps{Auth: a, Sessions: sessions, Audit: audit.NewLog(db, nil), DB: db, Notify: n})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return &app{t: t, srv: srv, db: db, auth: a, web: w, logs: logs}
}

func (c *client) loginWith(email, pw string) {
	c.t.Helper()
	p := c.post("/login", url.Values{"email": {email}, "password": {pw}})
	if p.status != http.StatusSeeOther {
		c.t.Fatalf("login %s: status %d: %s", email, p.status, text(p, "main"))
	}
}

// postAll sends one form per client at the same moment and returns the statuses.
func postAll(clients []*client, path string, forms []url.Values) []page {
	for i, c := range clients {
		forms[i].Set("_csrf", c.csrf())
	}
	out := make([]page, len(clients))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = c.post(path, forms[i])
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func auditEvents(t *testing.T, a *app, action string) []audit.Event {
	t.Helper()
	evs, err := audit.NewLog(a.db, nil).Recent(t.Context(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range evs {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// TestSignInThrottleHoldsUnderConcurrency: many wrong passwords at once, for one account or from
// one address, get no more password checks than the limit; the rest are told to wait.
func TestSignInThrottleHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		n, limit   int
		oneAccount bool
	}{
		{"one account", 40, 5, true},
		{"one address", 60, 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A hash dear enough that the attempts overlap.
			a := newGuardApp(t, auth.Options{Hash: auth.HashParams{Memory: 4096, Time: 2, Threads: 1}, MaxHashing: 64}, nil)
			a.addUser("ada@example.no", "member")
			clients := make([]*client, tc.n)
			forms := make([]url.Values, tc.n)
			for i := range clients {
				clients[i] = a.client()
				email := "ada@example.no"
				if !tc.oneAccount {
					email = fmt.Sprintf("guess%d@example.no", i)
				}
				forms[i] = url.Values{"email": {email}, "password": {"wrong password number " + itoa(int64(i))}}
			}
			before := a.auth.HashStats().Computed
			checked, refused := 0, 0
			for _, p := range postAll(clients, "/login", forms) {
				switch p.status {
				case http.StatusUnauthorized:
					checked++
				case http.StatusTooManyRequests:
					refused++
				default:
					t.Errorf("status %d: %s", p.status, text(p, "main"))
				}
			}
			if checked > tc.limit || checked+refused != tc.n {
				t.Fatalf("%d wrong passwords checked, %d refused; the limit is %d", checked, refused, tc.limit)
			}
			if got := a.auth.HashStats().Computed - before; got > int64(tc.limit) {
				t.Fatalf("%d passwords hashed; the limit is %d", got, tc.limit)
			}
			if n := len(auditEvents(t, a, audit.ActionSignIn)); n > tc.limit {
				t.Fatalf("%d sign-in events for a limit of %d (refusals are counted per window)", n, tc.limit)
			}
		})
	}
}

// TestPasswordHashingIsBounded: concurrent sign-ins never run more argon2id computations at
// once than the configured slots; who finds every slot busy gets 503 with Retry-After.
func TestPasswordHashingIsBounded(t *testing.T) {
	t.Parallel()
	a := newGuardApp(t, auth.Options{Hash: auth.HashParams{Memory: 4096, Time: 2, Threads: 1}, MaxHashing: 1, HashWait: time.Millisecond,
		MaxPerAddress: 1000}, nil)
	const n = 16
	clients := make([]*client, n)
	forms := make([]url.Values, n)
	for i := range clients {
		email := fmt.Sprintf("p%d@example.no", i)
		if _, err := a.auth.AddUser(t.Context(), email, "P", "member", "correct horse battery", metaFor()); err != nil {
			t.Fatal(err)
		}
		clients[i] = a.client()
		forms[i] = url.Values{"email": {email}, "password": {"correct horse battery"}}
	}
	before := a.auth.HashStats()
	busy := 0
	for _, p := range postAll(clients, "/login", forms) {
		switch p.status {
		case http.StatusSeeOther:
		case http.StatusServiceUnavailable:
			busy++
			if p.header.Get("Retry-After") == "" || !strings.Contains(text(p, "main"), "busy") {
				t.Errorf("503 without Retry-After or a word of why: %q %s", p.header.Get("Retry-After"), text(p, "main"))
			}
		default:
			t.Errorf("status %d: %s", p.status, text(p, "main"))
		}
	}
	st := a.auth.HashStats()
	if st.MaxInFlight > 1 {
		t.Fatalf("%d hashes ran at once with one slot", st.MaxInFlight)
	}
	if got := st.Refused - before.Refused; got != int64(busy) {
		t.Fatalf("%d refused by the gate, %d answered 503", got, busy)
	}
	t.Logf("%d of %d sign-ins found every slot busy", busy, n)
	// A refused sign-in is not a failure: the account is not locked by it.
	if busy > 0 {
		if p := clients[0].post("/login", url.Values{"email": {"p0@example.no"}, "password": {"correct horse battery"}}); p.status != http.StatusSeeOther &&
			p.status != http.StatusServiceUnavailable {
			t.Fatalf("sign-in after a busy refusal: %d", p.status)
		}
	}
}

// TestLinkFormsCheckTheLinkFirst: the set-password, invitation and setup forms check the link
// before hashing the password, and are throttled per address.
func TestLinkFormsCheckTheLinkFirst(t *testing.T) {
	t.Parallel()
	a := newGuardApp(t, auth.Options{MaxLinkAttempts: 6}, nil)
	c := a.client()
	pw := "a perfectly good passphrase"
	for _, path := range []string{"/password/set", "/invite", "/setup"} {
		before := a.auth.HashStats().Computed
		p := c.post(path, url.Values{"token": {"not-a-real-token"}, "email": {"x@example.no"}, "name": {"X"}, "password": {pw}, "confirm": {pw}})
		if p.status != http.StatusNotFound {
			t.Fatalf("%s with a bad link: status %d", path, p.status)
		}
		if got := a.auth.HashStats().Computed - before; got != 0 {
			t.Fatalf("%s hashed %d password(s) for a bad link", path, got)
		}
	}
	for i := 0; i < 3; i++ {
		c.post("/password/set", url.Values{"token": {"another-bad-token"}, "password": {pw}, "confirm": {pw}})
	}
	p := c.post("/invite", url.Values{"token": {"yet-another"}, "name": {"X"}, "password": {pw}, "confirm": {pw}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(text(p, "main"), "Try again after") {
		t.Fatalf("the seventh link attempt from one address: status %d, Retry-After %q: %s", p.status, p.header.Get("Retry-After"), text(p, "main"))
	}
}

// TestThrottledSignInsAuditedOncePerWindow: refused sign-ins become one audit event per
// account or address and window, with their count, whatever emails are typed.
func TestThrottledSignInsAuditedOncePerWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		opts       auth.Options
		failures   int
		email      func(i int) string
		wantTarget string
	}{
		{"account", auth.Options{MaxPerAccount: 5, MaxPerAddress: 1000}, 5, func(int) string { return "ada@example.no" }, "ada@example.no"},
		{"address, a new email each time", auth.Options{MaxPerAccount: 5, MaxPerAddress: 3}, 3,
			func(i int) string { return fmt.Sprintf("random%d@example.no", i) }, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{now: time.Date(2026, 1, 5, 14, 17, 0, 0, time.UTC)}
			tc.opts.Now = clk.Now
			a := newGuardApp(t, tc.opts, nil)
			a.addUser("ada@example.no", "member")
			c := a.client()
			const refused = 25
			for i := 0; i < tc.failures+refused; i++ {
				want := http.StatusUnauthorized
				if i >= tc.failures {
					want = http.StatusTooManyRequests
				}
				if p := c.post("/login", url.Values{"email": {tc.email(i)}, "password": {"wrong password!"}}); p.status != want {
					t.Fatalf("attempt %d: status %d, want %d", i, p.status, want)
				}
			}
			throttledEvents := func() []audit.Event {
				var out []audit.Event
				for _, e := range auditEvents(t, a, audit.ActionSignIn) {
					if strings.Contains(string(e.Details), `"throttled"`) {
						out = append(out, e)
					}
				}
				return out
			}
			if evs := throttledEvents(); len(evs) > 1 {
				t.Fatalf("%d audit events for %d refused attempts in one window", len(evs), refused)
			}
			clk.add(20 * time.Minute)
			if p := c.post("/login", url.Values{"email": {"ada@example.no"}, "password": {"correct horse battery"}}); p.status != http.StatusSeeOther {
				t.Fatalf("sign-in after the window: %d", p.status)
			}
			evs := throttledEvents()
			if len(evs) != 1 {
				t.Fatalf("%d throttled events after the window, want 1", len(evs))
			}
			var d struct {
				Count int `json:"count"`
			}
			if err := json.Unmarshal(evs[0].Details, &d); err != nil || d.Count != refused || evs[0].Target != tc.wantTarget || evs[0].Outcome != audit.Denied {
				t.Fatalf("event %+v (%s), want count %d for %s", evs[0], evs[0].Details, refused, tc.wantTarget)
			}
		})
	}
}

// TestLockoutSaysWhenAndAnAdminUnlocks: a locked account's sign-in page names the time to try
// again, the same for an unknown email, and an administrator can lift the lock.
func TestLockoutSaysWhenAndAnAdminUnlocks(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2026, 1, 5, 14, 17, 0, 0, time.UTC)}
	a := newGuardApp(t, auth.Options{Now: clk.Now}, nil)
	ada := a.addUser("ada@example.no", "member")
	a.addUser("admin@example.no", "admin")
	admin := a.client()
	admin.login("admin@example.no")

	refusal := func(email string) page {
		t.Helper()
		c := a.client()
		for i := 0; i < 5; i++ {
			c.post("/login", url.Values{"email": {email}, "password": {"wrong password!"}})
		}
		p := c.post("/login", url.Values{"email": {email}, "password": {"correct horse battery"}})
		if p.status != http.StatusTooManyRequests {
			t.Fatalf("%s after five failures: status %d", email, p.status)
		}
		return p
	}
	known, unknown := refusal("ada@example.no"), refusal("nobody@example.no")
	want := "Too many attempts. Try again after 14:32 UTC."
	if got := text(known, `[data-testid="form-error"]`); got != want {
		t.Fatalf("locked account: %q, want %q", got, want)
	}
	if got := text(unknown, `[data-testid="form-error"]`); got != want || unknown.header.Get("Retry-After") != known.header.Get("Retry-After") {
		t.Fatalf("unknown email: %q (Retry-After %q), the known one %q (%q)", got, unknown.header.Get("Retry-After"), want, known.header.Get("Retry-After"))
	}

	p := admin.get("/admin/users/" + itoa(ada.ID))
	if !strings.Contains(text(p, `[data-testid="user-locked"]`), "14:32") || p.doc.Find(`[data-testid="unlock-user"]`).Length() != 1 {
		t.Fatalf("the admin page does not show the lock: %q", text(p, `[data-testid="user-locked"]`))
	}
	if p := admin.post("/admin/users/"+itoa(ada.ID)+"/unlock", nil); p.status != http.StatusSeeOther {
		t.Fatalf("unlock: %d", p.status)
	}
	evs := auditEvents(t, a, audit.ActionUserUnlock)
	if len(evs) != 1 || evs[0].Target != "ada@example.no" || evs[0].Actor != "admin@example.no" {
		t.Fatalf("unlock events %+v", evs)
	}
	a.client().login("ada@example.no")
}

// TestUnlockIsForAdministrators: a member cannot lift a lock.
func TestUnlockIsForAdministrators(t *testing.T) {
	t.Parallel()
	a := newGuardApp(t, auth.Options{}, nil)
	ada := a.addUser("ada@example.no", "member")
	a.addUser("bob@example.no", "member")
	c := a.client()
	for i := 0; i < 5; i++ {
		c.post("/login", url.Values{"email": {"ada@example.no"}, "password": {"wrong password!"}})
	}
	bob := a.client()
	bob.login("bob@example.no")
	if p := bob.post("/admin/users/"+itoa(ada.ID)+"/unlock", nil); p.status != http.StatusForbidden {
		t.Fatalf("a member unlocked: %d", p.status)
	}
	if p := a.client().post("/login", url.Values{"email": {"ada@example.no"}, "password": {"correct horse battery"}}); p.status != http.StatusTooManyRequests {
		t.Fatalf("still locked after a member's try: %d", p.status)
	}
}

// TestSetPasswordLinksRevokeEachOther: a new link, using a link, or changing the password
// leaves no other link of the user working.
func TestSetPasswordLinksRevokeEachOther(t *testing.T) {
	t.Parallel()
	a := newGuardApp(t, auth.Options{}, nil)
	a.addUser("admin@example.no", "admin")
	admin := a.client()
	admin.login("admin@example.no")
	p := admin.post("/admin/users", url.Values{"email": {"carl@example.no"}, "name": {"Carl"}, "role": {"member"}})
	if p.status != http.StatusCreated {
		t.Fatalf("create user: %d", p.status)
	}
	linkOf := func(p page) string {
		t.Helper()
		l, _ := p.doc.Find(`[data-testid="one-time-link"]`).Attr("value")
		u, err := url.Parse(l)
		if err != nil || u.Query().Get("token") == "" {
			t.Fatalf("no link: %q", l)
		}
		return u.Query().Get("token")
	}
	first := linkOf(p)
	carl, err := a.db.UserByEmail(t.Context(), "carl@example.no")
	if err != nil {
		t.Fatal(err)
	}
	newLink := func() string {
		t.Helper()
		return linkOf(admin.post("/admin/users/"+itoa(carl.ID)+"/password-link", nil))
	}
	works := func(token string) bool {
		return a.client().get("/password/set?token="+url.QueryEscape(token)).status == http.StatusOK
	}
	pw := "carl's first passphrase"

	second := newLink()
	if works(first) || !works(second) {
		t.Fatalf("after a new link: first works %v, second works %v", works(first), works(second))
	}
	third := newLink()
	fourth := newLink()
	carlC := a.client()
	if p := carlC.post("/password/set", url.Values{"token": {fourth}, "password": {pw}, "confirm": {pw}}); p.status != http.StatusSeeOther {
		t.Fatalf("use the newest link: %d", p.status)
	}
	if works(third) || works(second) {
		t.Fatal("an older link works after a link was used")
	}
	fifth := newLink()
	if p := carlC.post("/account/password", url.Values{"current": {pw}, "password": {"carl's second passphrase"}, "confirm": {"carl's second passphrase"}}); p.status != http.StatusSeeOther {
		t.Fatalf("change password: %d", p.status)
	}
	if works(fifth) {
		t.Fatal("a set-password link works after the password was changed")
	}
}

// TestInvitationsCannotMakeAccountsForOthers: with email the link goes only to the invitee;
// without it an owner's invitee waits for an administrator; addresses are plain ASCII in the
// allowed domains, and names carry no hidden characters.
func TestInvitationsCannotMakeAccountsForOthers(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T, opts auth.Options, n web.Notifier) (*app, store.Team, *client, *client) {
		a := newGuardApp(t, opts, n)
		a.addUser("admin@example.no", "admin")
		a.addUser("olga@example.no", "member")
		team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Skatt", metaFor())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), team.ID, "olga@example.no", "owner", metaFor()); err != nil {
			t.Fatal(err)
		}
		admin, olga := a.client(), a.client()
		admin.login("admin@example.no")
		olga.login("olga@example.no")
		return a, team, admin, olga
	}
	invitePath := func(team store.Team) string { return "/teams/" + itoa(team.ID) + "/invitations" }

	t.Run("with email the link is not shown", func(t *testing.T) {
		t.Parallel()
		n := &fakeNotifier{}
		a, team, _, olga := setup(t, auth.Options{LinksByEmail: true}, n)
		p := olga.post(invitePath(team), url.Values{"email": {"ceo@example.no"}, "role": {"member"}})
		if p.status != http.StatusSeeOther || p.doc.Find(`[data-testid="one-time-link"]`).Length() != 0 {
			t.Fatalf("invite: status %d, link shown %d", p.status, p.doc.Find(`[data-testid="one-time-link"]`).Length())
		}
		sent := n.last()
		i := strings.Index(sent, "http://portal.test/invite?token=")
		if !strings.HasPrefix(sent, "invitation to ceo@example.no") || i < 0 {
			t.Fatalf("sent %q", sent)
		}
		token := strings.TrimPrefix(sent[i:], "http://portal.test/invite?token=")
		if p := olga.get(teamPathOf(team)); strings.Contains(p.body, token) {
			t.Fatal("the team page shows the token")
		}
		// The invitee, who got the email, can sign in at once.
		c := a.client()
		pw := "the ceo's own passphrase"
		if p := c.post("/invite", url.Values{"token": {token}, "name": {"Chief"}, "password": {pw}, "confirm": {pw}}); p.status != http.StatusSeeOther || p.header.Get("Location") == "/login" {
			t.Fatalf("accept: %d %q", p.status, p.header.Get("Location"))
		}
		a.client().loginWith("ceo@example.no", pw)
	})

	t.Run("without email an owner's invitee waits; an admin's does not", func(t *testing.T) {
		t.Parallel()
		a, team, admin, olga := setup(t, auth.Options{}, nil)
		pw := "someone's passphrase"
		for _, tc := range []struct {
			inviter *client
			email   string
			waits   bool
		}{{olga, "ceo@example.no", true}, {admin, "nils@example.no", false}} {
			link := inviteThroughPage(t, tc.inviter, team, tc.email, "member")
			p := a.client().post("/invite", url.Values{"token": {link.Query().Get("token")}, "name": {"Someone"}, "password": {pw}, "confirm": {pw}})
			if waits := p.header.Get("Location") == "/login"; waits != tc.waits {
				t.Fatalf("%s: waits %v, want %v", tc.email, waits, tc.waits)
			}
			st := a.client().post("/login", url.Values{"email": {tc.email}, "password": {pw}}).status
			if (st == http.StatusForbidden) != tc.waits || (st == http.StatusSeeOther) == tc.waits {
				t.Fatalf("%s signs in: status %d", tc.email, st)
			}
		}
		ceo, err := a.db.UserByEmail(t.Context(), "ceo@example.no")
		if err != nil {
			t.Fatal(err)
		}
		p := admin.get("/admin/users/" + itoa(ceo.ID))
		if !strings.Contains(text(p, `[data-testid="user-created"]`), "invitation from olga@example.no") || p.doc.Find(`[data-testid="approve-user"]`).Length() != 1 {
			t.Fatalf("user page: %q", text(p, `[data-testid="user-created"]`))
		}
		if p := admin.post("/admin/users/"+itoa(ceo.ID)+"/approve", nil); p.status != http.StatusSeeOther {
			t.Fatalf("approve: %d", p.status)
		}
		a.client().loginWith("ceo@example.no", pw)
		evs := auditEvents(t, a, audit.ActionUserApprove)
		if len(evs) != 1 || !strings.Contains(string(evs[0].Details), "olga@example.no") {
			t.Fatalf("approval events %+v", evs)
		}
		p = admin.get("/admin/users")
		if !strings.Contains(p.doc.Find(`[data-testid="users-table"] tr:contains("admin@example.no")`).Text(), "with the command line") {
			t.Fatalf("the list does not say how accounts were made: %s", text(p, `[data-testid="users-table"]`))
		}
	})

	t.Run("addresses and names", func(t *testing.T) {
		t.Parallel()
		a, team, admin, olga := setup(t, auth.Options{AllowedEmailDomains: []string{"example.no"}}, nil)
		for _, tc := range []struct{ email, want string }{
			{"ceo@ex\u0430mple.no", "plain ASCII"}, // a Cyrillic а
			{"ceo@evil.example", "Only addresses at example.no"},
			{"ceo@sub.example.no", "Only addresses at example.no"},
		} {
			p := olga.post(invitePath(team), url.Values{"email": {tc.email}, "role": {"member"}})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(text(p, `[data-testid="invite-email-error"]`), tc.want) {
				t.Errorf("invite %q: status %d: %q", tc.email, p.status, text(p, `[data-testid="invite-email-error"]`))
			}
			p = admin.post("/admin/users", url.Values{"email": {tc.email}, "name": {"X"}, "role": {"member"}})
			if p.status != http.StatusUnprocessableEntity {
				t.Errorf("create user %q: status %d", tc.email, p.status)
			}
		}
		link := inviteThroughPage(t, admin, team, "  Nora@Example.NO ", "member")
		token := link.Query().Get("token")
		pw := "nora's long passphrase"
		for _, name := range []string{"Nora\u202eon", "No\u200bra", "Nora\u2066x\u2069"} {
			p := a.client().post("/invite", url.Values{"token": {token}, "name": {name}, "password": {pw}, "confirm": {pw}})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(text(p, `[data-testid="name-error"]`), "invisible") {
				t.Errorf("name %q: status %d: %q", name, p.status, text(p, `[data-testid="name-error"]`))
			}
		}
		if p := a.client().post("/invite", url.Values{"token": {token}, "name": {"Nora"}, "password": {pw}, "confirm": {pw}}); p.status != http.StatusSeeOther {
			t.Fatalf("accept: %d", p.status)
		}
		if u, err := a.db.UserByEmail(t.Context(), "nora@example.no"); err != nil || u.Email != "nora@example.no" {
			t.Fatalf("stored address %q %v", u.Email, err)
		}
	})
}

func teamPathOf(team store.Team) string { return "/teams/" + itoa(team.ID) }
