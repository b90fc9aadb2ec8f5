package web_test

import (
	"bytes"
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

// fakeNotifier records what the handlers hand to the notifier.
type fakeNotifier struct {
	mu   sync.Mutex
	sent []string
}

func (f *fakeNotifier) SendInvitation(to, team, role, inviter, link string, expires time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, fmt.Sprintf("invitation to %s: %s as %s by %s, %s", to, team, role, inviter, link))
	return true
}

func (f *fakeNotifier) SendPasswordLink(to, name, link string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, fmt.Sprintf("password link to %s (%s): %s", to, name, link))
	return true
}

func (f *fakeNotifier) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		return ""
	}
	return f.sent[len(f.sent)-1]
}

// newNotifyApp is the harness's app with a notifier in its dependencies.
func newNotifyApp(t *testing.T, n web.Notifier) *app {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := auth.NewService(db, auth.Options{Hash: cheap})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := auth.NewSessionStore(db, auth.SessionOptions{KeyPairs: [][]byte{bytes.Repeat([]byte("k"), 32)}})
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

// TestLinksAreAlsoSent: with a notifier, invitation and set-password links are handed to it
// and still shown to copy, the same link in both places.
func TestLinksAreAlsoSent(t *testing.T) {
	n := &fakeNotifier{}
	a := newNotifyApp(t, n)
	a.addUser("admin@example.no", "admin")
	c := a.client()
	c.login("admin@example.no")

	shown := func(p page, what string) string {
		t.Helper()
		link, _ := p.doc.Find(`[data-testid="one-time-link"]`).Attr("value")
		if link == "" || !strings.Contains(text(p, "main"), "It is also being sent to") {
			t.Fatalf("%s: status %d, link %q: %s", what, p.status, link, text(p, "main"))
		}
		return link
	}

	p := c.post("/admin/users", url.Values{"email": {"carl@example.no"}, "name": {"Carl"}, "role": {"member"}})
	if p.status != http.StatusCreated {
		t.Fatalf("create user: %d", p.status)
	}
	link := shown(p, "new user")
	if want := "password link to carl@example.no (Carl): " + link; n.last() != want {
		t.Errorf("sent %q, want %q", n.last(), want)
	}

	carl, err := a.db.UserByEmail(t.Context(), "carl@example.no")
	if err != nil {
		t.Fatal(err)
	}
	p = c.post("/admin/users/"+itoa(carl.ID)+"/password-link", nil)
	if p.status != http.StatusOK {
		t.Fatalf("new password link: %d", p.status)
	}
	link2 := shown(p, "password link")
	if want := "password link to carl@example.no (Carl): " + link2; link2 == link || n.last() != want {
		t.Errorf("sent %q, want %q", n.last(), want)
	}

	team, err := a.auth.CreateTeam(t.Context(), adminPrincipal(t, a), "Skatt", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	u := inviteThroughPage(t, c, team, "nora@example.no", "viewer")
	if want := "invitation to nora@example.no: Skatt as viewer by User admin@example.no, " + u.String(); n.last() != want {
		t.Errorf("sent %q, want %q", n.last(), want)
	}
	if logs := a.logs.String(); strings.Contains(logs, u.Query().Get("token")) {
		t.Error("an invitation token reached the log")
	}
}
