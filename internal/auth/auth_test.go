package auth_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portal/internal/auth"
	"portal/internal/store"
)

func TestPasswordHashing(t *testing.T) {
	p := auth.HashParams{Memory: 64, Time: 1, Threads: 1}
	h, err := auth.HashPassword("correct horse battery", p)
	if err != nil || !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("hash %q %v", h, err)
	}
	tests := []struct {
		hash, pw string
		ok       bool
		err      bool
	}{
		{h, "correct horse battery", true, false},
		{h, "correct horse batterY", false, false},
		{"$2a$10$bcrypt", "x", false, true},
		{"", "x", false, true},
		{"$argon2id$v=19$m=64,t=1,p=1$!!$!!", "x", false, true},
	}
	for _, tt := range tests {
		ok, err := auth.VerifyPassword(tt.hash, tt.pw)
		if ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("VerifyPassword(%q) = %v, %v", tt.hash, ok, err)
		}
	}
	if auth.CheckPassword("elevenchars") == "" || auth.CheckPassword("twelve chars") != "" || auth.CheckPassword(strings.Repeat("x", 300)) == "" {
		t.Error("password length rules")
	}
}

// TestSessionTimeouts drives the session store with a fake clock through real HTTP cookies.
func TestSessionTimeouts(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "p.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := auth.NewService(db, auth.Options{Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1}})
	u, err := a.AddUser(t.Context(), "ada@example.no", "Ada", "member", "correct horse battery", auditMeta())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	ss, err := auth.NewSessionStore(db, auth.SessionOptions{KeyPairs: [][]byte{bytes.Repeat([]byte("k"), 32)},
		IdleTimeout: 2 * time.Hour, MaxLifetime: 12 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	begin := func() *http.Cookie {
		w := httptest.NewRecorder()
		if err := ss.Begin(w, httptest.NewRequest("POST", "/login", nil), u.ID); err != nil {
			t.Fatal(err)
		}
		cs := w.Result().Cookies()
		ck := cs[len(cs)-1]
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Value == "" {
			t.Fatalf("cookie %+v", ck)
		}
		return ck
	}
	current := func(ck *http.Cookie) int64 {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(ck)
		id, err := ss.CurrentUser(r)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ck := begin()
	if current(ck) != u.ID {
		t.Fatal("fresh session not recognised")
	}
	// Activity every 90 minutes keeps it alive until the absolute limit.
	for i := 0; i < 7; i++ {
		now = now.Add(90 * time.Minute)
		if current(ck) != u.ID {
			t.Fatalf("active session ended after %v", time.Duration(i+1)*90*time.Minute)
		}
	}
	now = now.Add(90 * time.Minute) // 12 h after sign-in
	if current(ck) != 0 {
		t.Fatal("session outlived its absolute lifetime")
	}
	ck = begin()
	now = now.Add(2*time.Hour + time.Minute)
	if current(ck) != 0 {
		t.Fatal("idle session survived")
	}
	// The sweep removes what the timeouts already refuse, and keeps live sessions.
	begin() // never used again: stale once idle
	now = now.Add(2*time.Hour + time.Minute)
	live := begin()
	if n, err := ss.DeleteStale(t.Context()); err != nil || n != 1 {
		t.Fatalf("swept %d stale sessions (%v), want the idle one", n, err)
	}
	if current(live) != u.ID {
		t.Fatal("the sweep ended a live session")
	}
	// A tampered cookie is no session.
	ck = begin()
	ck.Value = ck.Value[:len(ck.Value)-2] + "xx"
	if current(ck) != 0 {
		t.Fatal("tampered cookie accepted")
	}
}
