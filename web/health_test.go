package web_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portal/web"
)

// countingHealth counts the live checks that reach the upstreams, per environment.
type countingHealth struct {
	mu    sync.Mutex
	calls map[string]int
	ok    atomic.Bool
}

func (h *countingHealth) Check(_ context.Context, env string) []web.Check {
	h.mu.Lock()
	h.calls[env]++
	n := h.calls[env]
	h.mu.Unlock()
	return []web.Check{{Name: "Maskinporten metadata", OK: true, Detail: "run " + itoa(int64(n))}}
}

func (h *countingHealth) count(env string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[env]
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestLiveChecksAreCachedForAMinute: page loads by different people within a minute share one
// run of an environment's live checks, the page says when they ran, and after a minute the
// next load checks again.
func TestLiveChecksAreCachedForAMinute(t *testing.T) {
	t.Parallel()
	h := &countingHealth{calls: map[string]int{}}
	clock := &testClock{t: time.Now()}
	a := newAppFull(t, h, nil, func(c *web.Config) { c.Now = clock.now })
	a.addUser("ada@example.no", "member")
	a.addUser("admin@example.no", "admin")
	ada, admin := a.client(), a.client()
	ada.login("ada@example.no")
	admin.login("admin@example.no")

	steps := []struct {
		name    string
		c       *client
		path    string
		advance time.Duration
		want    map[string]int // checks run so far per environment
		detail  string
	}{
		{"first load checks", ada, "/envs/tt02", 0, map[string]int{"tt02": 1, "prod": 0}, "run 1"},
		{"second load, another person", admin, "/envs/tt02", 0, map[string]int{"tt02": 1, "prod": 0}, "run 1"},
		{"admin page shares tt02, checks prod", admin, "/admin/environments", 30 * time.Second, map[string]int{"tt02": 1, "prod": 1}, "run 1"},
		{"a minute on, checked again", ada, "/envs/tt02", 31 * time.Second, map[string]int{"tt02": 2, "prod": 1}, "run 2"},
	}
	for _, st := range steps {
		clock.add(st.advance)
		p := st.c.get(st.path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: status %d", st.name, p.status)
		}
		for env, n := range st.want {
			if got := h.count(env); got != n {
				t.Errorf("%s: %s checked %d times, want %d", st.name, env, got, n)
			}
		}
		if got := text(p, `[data-testid="env-checks"]`); !strings.Contains(got, st.detail) {
			t.Errorf("%s: checks %q, want %q", st.name, got, st.detail)
		}
		if at := text(p, `[data-testid="checks-at"]`); !strings.Contains(at, "Checked at") || !strings.Contains(at, "kept for a minute") {
			t.Errorf("%s: no time of the check: %q", st.name, at)
		}
	}
}
