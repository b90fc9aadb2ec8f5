package web

import (
	"context"
	"sync"
	"time"
)

// HealthTTL is how long an environment's live checks are kept. The checks call Maskinporten,
// Digdir and Altinn, so a page that anyone signed in may load must not start them at will.
const HealthTTL = time.Minute

// healthCache keeps each environment's live checks for HealthTTL, shared by everyone; callers
// that arrive while a check runs wait for it instead of starting their own.
type healthCache struct {
	checker EnvChecker
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*healthEntry
}

type healthEntry struct {
	done   chan struct{} // closed when checks and at are set
	checks []Check
	at     time.Time
}

func newHealthCache(c EnvChecker, now func() time.Time) *healthCache {
	return &healthCache{checker: c, now: now, entries: map[string]*healthEntry{}}
}

// get returns env's checks and when they ran: the kept ones while younger than HealthTTL, a
// fresh run otherwise.
func (h *healthCache) get(ctx context.Context, env string) ([]Check, time.Time, error) {
	h.mu.Lock()
	e, ok := h.entries[env]
	fresh := false
	if ok {
		select {
		case <-e.done:
			fresh = h.now().Sub(e.at) < HealthTTL
		default:
			fresh = true // running: wait for it
		}
	}
	if !fresh {
		e = &healthEntry{done: make(chan struct{})}
		h.entries[env] = e
		// The run outlives the request that started it: others wait for its result.
		go func() {
			checks := h.checker.Check(context.WithoutCancel(ctx), env)
			h.mu.Lock()
			e.checks, e.at = checks, h.now()
			h.mu.Unlock()
			close(e.done)
		}()
	}
	h.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return e.checks, e.at, nil
}
