package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"portal/internal/audit"
	"portal/internal/problem"
	"portal/internal/store"
)

// retryAt is the cause of a refusal that may be tried again from a known moment, after is
// the wait from the refusal (by the service's clock).
type retryAt struct {
	at    time.Time
	after time.Duration
}

func (r retryAt) Error() string { return "retry at " + r.at.UTC().Format(time.RFC3339) }

// RetryAt returns when a refused request may be tried again, when the refusal says.
func RetryAt(err error) (time.Time, bool) {
	var r retryAt
	if errors.As(err, &r) {
		return r.at, true
	}
	return time.Time{}, false
}

// RetryAfter returns how long a refused request should wait, when the refusal says.
func RetryAfter(err error) (time.Duration, bool) {
	var r retryAt
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// ThrottledUntil returns the moment a throttled sign-in may be tried again, for the page to
// say; ok is false for any other error.
func ThrottledUntil(err error) (time.Time, bool) {
	if problem.KindOf(err) != problem.KindThrottled {
		return time.Time{}, false
	}
	return RetryAt(err)
}

func throttled(msg string, until, now time.Time) error {
	return problem.Wrap(problem.KindThrottled, msg, retryAt{until, until.Sub(now)})
}

// ---- bounded password hashing ----

// HashStats counts argon2id work, for metrics and tests.
type HashStats struct {
	Computed    int64 // hashes and verifications run
	Refused     int64 // requests turned away because every slot stayed busy
	MaxInFlight int64 // the most that ever ran at once
}

// hashGate bounds concurrent argon2id computations: each takes Options.Hash.Memory of
// memory, so unbounded concurrency turns a burst of sign-ins into gigabytes.
type hashGate struct {
	slots    chan struct{}
	wait     time.Duration
	inFlight atomic.Int64
	computed atomic.Int64
	refused  atomic.Int64
	maxMu    sync.Mutex
	max      int64
}

func newHashGate(n int, wait time.Duration) *hashGate {
	return &hashGate{slots: make(chan struct{}, n), wait: wait}
}

// errBusy is what a person reads when every hashing slot stayed busy for the short wait.
func errBusy(now time.Time) error {
	return problem.Wrap(problem.KindUnavailable, "The portal is busy checking other passwords. Try again in a few seconds.",
		retryAt{now.Add(5 * time.Second), 5 * time.Second})
}

// run runs f in a slot, waiting at most the gate's wait for one.
func (g *hashGate) run(ctx context.Context, now time.Time, f func()) error {
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-t.C:
		g.refused.Add(1)
		return errBusy(now)
	case <-ctx.Done():
		return fmt.Errorf("wait to hash a password: %w", ctx.Err())
	}
	defer func() { <-g.slots }()
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	g.maxMu.Lock()
	if n > g.max {
		g.max = n
	}
	g.maxMu.Unlock()
	g.computed.Add(1)
	f()
	return nil
}

// HashStats reports the argon2id work done so far.
func (s *Service) HashStats() HashStats {
	g := s.gate
	g.maxMu.Lock()
	defer g.maxMu.Unlock()
	return HashStats{Computed: g.computed.Load(), Refused: g.refused.Load(), MaxInFlight: g.max}
}

// hash hashes a new password within the gate.
func (s *Service) hash(ctx context.Context, pw string) (string, error) {
	var h string
	var err error
	if gerr := s.gate.run(ctx, s.now(), func() { h, err = HashPassword(pw, s.opts.Hash) }); gerr != nil {
		return "", gerr
	}
	return h, err
}

// verify checks a password within the gate; a password over the length limit is refused
// without hashing. hashErr says the stored hash is unusable; err that no check was made
// (every slot stayed busy, or the request ended).
func (s *Service) verify(ctx context.Context, hash, pw string) (ok bool, hashErr, err error) {
	if len(pw) > MaxPasswordLength {
		return false, nil, nil
	}
	if err := s.gate.run(ctx, s.now(), func() { ok, hashErr = VerifyPassword(hash, pw) }); err != nil {
		return false, nil, err
	}
	return ok, hashErr, nil
}

// ---- single-use link forms ----

// reserveLinkAttempt throttles the forms behind single-use links (set-password, invitation,
// setup) per address, so nobody can make the portal hash passwords, or try tokens, without limit.
func (s *Service) reserveLinkAttempt(ctx context.Context, address string) error {
	ok, until, err := s.db.ReserveLinkAttempt(ctx, address, s.now(), s.opts.ThrottleWindow, s.opts.MaxLinkAttempts)
	if err != nil {
		return err
	}
	if !ok {
		return throttled("Too many attempts from your address. Try again after "+until.UTC().Format("15:04")+" UTC.", until, s.now())
	}
	return nil
}

// ---- throttled sign-ins in the audit trail ----

// countThrottled counts a refused sign-in for its address (when the address is over its
// limit) or its account, and records every count whose window has ended as one audit event.
// Whatever email an attacker types, the audit trail grows by one event per address or
// account and window.
func (s *Service) countThrottled(ctx context.Context, email string, byAddress bool, m audit.Meta) error {
	now := s.now()
	w := s.opts.ThrottleWindow
	start := now.Truncate(w)
	key := "account:" + email
	if byAddress {
		key = "address:" + m.Address
	}
	var first bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if first, err = store.CountThrottled(ctx, tx, key, m.Address, start, start.Add(w)); err != nil {
			return err
		}
		return s.recordEndedThrottled(ctx, tx, now)
	})
	if err != nil {
		return err
	}
	if first {
		s.opts.Log.Warn("sign-in throttled; further refusals in this window are counted and audited when it ends",
			"key", key, "address", m.Address, "window_end", start.Add(w))
	}
	return nil
}

func (s *Service) recordEndedThrottled(ctx context.Context, tx *sql.Tx, now time.Time) error {
	ended, err := store.TakeEndedThrottled(ctx, tx, now)
	if err != nil {
		return err
	}
	for _, c := range ended {
		m := audit.Meta{Address: c.Address, Actor: "system"}
		details := map[string]any{"reason": "throttled", "count": c.Count,
			"window_start": store.FormatTime(c.WindowStart), "window_end": store.FormatTime(c.WindowEnd)}
		ev := audit.New(m, audit.ActionSignIn, audit.Denied, details)
		if email, ok := strings.CutPrefix(c.Key, "account:"); ok {
			ev.TargetType, ev.Target = "user", email
		} else {
			ev.TargetType, ev.Target = "address", strings.TrimPrefix(c.Key, "address:")
		}
		if err := record(ctx, tx, ev, now); err != nil {
			return err
		}
	}
	return nil
}

// FlushThrottled records the counts of refused sign-ins whose window has ended; the portal
// calls it periodically, so a burst's count reaches the audit trail without another attempt.
func (s *Service) FlushThrottled(ctx context.Context) error {
	now := s.now()
	if any, err := s.db.AnyEndedThrottled(ctx, now); err != nil || !any {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return s.recordEndedThrottled(ctx, tx, now) })
}

// ---- who may have an account ----

// NormalizeEmail trims and lower-cases an address; "" when it is not plain ASCII, so look-alike
// letters from other scripts never make a second account for the "same" address.
func NormalizeEmail(e string) string {
	e = strings.TrimSpace(e)
	for i := 0; i < len(e); i++ {
		if e[i] >= utf8.RuneSelf {
			return ""
		}
	}
	return strings.ToLower(e)
}

// checkNewEmail normalises an address for a new account or invitation and says what is wrong
// with it, including a domain outside the configured list.
func (s *Service) checkNewEmail(e string) (string, string) {
	norm := NormalizeEmail(e)
	if norm == "" && strings.TrimSpace(e) != "" {
		return "", "Use the address in plain ASCII letters: an international domain in its xn-- form. Letters from other scripts that look like Latin ones are refused."
	}
	if msg := checkEmail(norm); msg != "" {
		return norm, msg
	}
	if len(s.opts.AllowedEmailDomains) > 0 {
		domain := norm[strings.LastIndexByte(norm, '@')+1:]
		for _, d := range s.opts.AllowedEmailDomains {
			if domain == d {
				return norm, ""
			}
		}
		return norm, "Only addresses at " + strings.Join(s.opts.AllowedEmailDomains, ", ") + " may have accounts here."
	}
	return norm, ""
}

// hiddenRune reports characters that change how text around them reads without showing
// themselves: controls, Unicode format characters (zero-width joiners and spaces, bidi marks
// and overrides) and bidi controls.
func hiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Bidi_Control, r) ||
		r == utf8.RuneError
}

func hasHidden(s string) bool { return strings.IndexFunc(s, hiddenRune) >= 0 }
