// Package mfa owns second factors of local accounts: TOTP, passkeys (WebAuthn) and recovery
// codes, the half-finished sign-in between the password and the second factor, and the policy
// that says who must have a second factor. internal/auth keeps owning the Principal; this
// package only decides when a password sign-in may become a session.
package mfa

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/keys"
	"portal/internal/problem"
	"portal/internal/store"
)

// Policy says who must have a second factor.
type Policy string

// Policies.
const (
	PolicyAdmins   Policy = "admins"
	PolicyEveryone Policy = "everyone"
	PolicyNone     Policy = "none"
)

// ParsePolicy reads require_second_factor; "" is the default, admins.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return PolicyAdmins, nil
	case PolicyAdmins, PolicyEveryone, PolicyNone:
		return p, nil
	}
	return "", fmt.Errorf("require_second_factor %q: use admins, everyone or none", s)
}

// Options configure the service.
type Options struct {
	Policy Policy
	// KEK seals TOTP secrets at rest, as it seals kept private keys.
	KEK *keys.KEK
	// PublicURL is the portal's address as people reach it: the WebAuthn origin, and its host
	// the relying party id.
	PublicURL string
	// Issuer names the portal in authenticator apps and passkey prompts.
	Issuer string
	// Wrong codes are throttled like passwords: per account and per address per window.
	ThrottleWindow time.Duration // default 15 min
	MaxPerAccount  int           // default 5
	MaxPerAddress  int           // default 20
	// PendingTTL bounds the time between the password and the second factor; default 5 min.
	PendingTTL time.Duration
	Now        func() time.Time
	Log        *slog.Logger
}

// Service manages second factors.
type Service struct {
	db   *store.DB
	opts Options
	wa   *webauthn.WebAuthn
}

// New returns a Service over db.
func New(db *store.DB, opts Options) (*Service, error) {
	if opts.Policy == "" {
		opts.Policy = PolicyAdmins
	}
	if _, err := ParsePolicy(string(opts.Policy)); err != nil {
		return nil, err
	}
	if opts.KEK == nil {
		return nil, errors.New("mfa: a key-encryption key is required to seal TOTP secrets")
	}
	if opts.Issuer == "" {
		opts.Issuer = "Portal"
	}
	if opts.ThrottleWindow == 0 {
		opts.ThrottleWindow = 15 * time.Minute
	}
	if opts.MaxPerAccount == 0 {
		opts.MaxPerAccount = 5
	}
	if opts.MaxPerAddress == 0 {
		opts.MaxPerAddress = 20
	}
	if opts.PendingTTL == 0 {
		opts.PendingTTL = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(opts.PublicURL)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("mfa: public URL %q is not an http(s) address; passkeys need it for their origin", opts.PublicURL)
	}
	s := &Service{db: db, opts: opts}
	if net.ParseIP(u.Hostname()) != nil {
		// WebAuthn has no relying party for an IP address: the rest works, passkeys do not.
		opts.Log.Warn("passkeys are off: the public URL's host is an IP address; give public_url a host name (such as localhost) for passkeys", "public_url", opts.PublicURL)
		return s, nil
	}
	if s.wa, err = webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: opts.Issuer,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
	}); err != nil {
		return nil, fmt.Errorf("mfa: webauthn: %w", err)
	}
	return s, nil
}

// PasskeysAvailable reports whether passkeys work with the configured public URL.
func (s *Service) PasskeysAvailable() bool { return s.wa != nil }

var errNoPasskeys = problem.New(problem.KindConflict, "Passkeys are not available: the portal's public address is an IP address. An administrator sets public_url to a host name to use them.")

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// Policy returns the configured policy.
func (s *Service) Policy() Policy { return s.opts.Policy }

// requiredFor reports whether the policy asks a person of this portal role for a second factor.
func (s *Service) requiredFor(role string) bool {
	switch s.opts.Policy {
	case PolicyEveryone:
		return true
	case PolicyAdmins:
		return role == auth.RoleAdmin
	}
	return false
}

// HasFactor reports whether a user has a confirmed second factor.
func (s *Service) HasFactor(ctx context.Context, userID int64) (bool, error) {
	n, err := s.db.CountConfirmedFactors(ctx, userID)
	return n > 0, err
}

// MustEnrol reports whether the policy asks p for a second factor p does not have yet: then
// nothing but enrolment is open to p.
func (s *Service) MustEnrol(ctx context.Context, p *auth.Principal) (bool, error) {
	if p == nil || !s.requiredFor(p.Role) {
		return false, nil
	}
	// The policy is for local accounts. A person without a password signs in only through an
	// OpenID Provider, whose own multi-factor sign-in (acr_values) the portal relies on.
	u, err := s.db.UserByID(ctx, p.UserID)
	if err != nil {
		return false, fmt.Errorf("read user %d: %w", p.UserID, err)
	}
	if u.PasswordHash == "" {
		return false, nil
	}
	has, err := s.HasFactor(ctx, p.UserID)
	return !has, err
}

// Factor is one second factor as the account page shows it.
type Factor struct {
	ID         int64
	Kind       string // totp, passkey
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// Status is what the account page shows of a person's second factors.
type Status struct {
	Required     bool
	TOTP         *Factor
	Passkeys     []Factor
	RecoveryLeft int
}

// Has reports whether any factor is set up.
func (st Status) Has() bool { return st.TOTP != nil || len(st.Passkeys) > 0 }

// Status returns p's second factors.
func (s *Service) Status(ctx context.Context, p *auth.Principal) (Status, error) {
	return s.statusOf(ctx, p.UserID, p.Role)
}

func (s *Service) statusOf(ctx context.Context, userID int64, role string) (Status, error) {
	st := Status{Required: s.requiredFor(role)}
	fs, err := s.db.UserFactors(ctx, userID)
	if err != nil {
		return st, err
	}
	for _, f := range fs {
		if !f.Confirmed {
			continue
		}
		v := Factor{ID: f.ID, Kind: f.Kind, Name: f.Name, CreatedAt: f.CreatedAt, LastUsedAt: f.LastUsedAt}
		if f.Kind == "totp" {
			st.TOTP = &v
		} else {
			st.Passkeys = append(st.Passkeys, v)
		}
	}
	if st.RecoveryLeft, err = s.db.UnusedRecoveryCodes(ctx, userID); err != nil {
		return st, err
	}
	return st, nil
}

// StatusOf returns a user's second factors, for administrators.
func (s *Service) StatusOf(ctx context.Context, p *auth.Principal, userID int64) (Status, error) {
	if !p.IsAdmin() {
		return Status{}, problem.New(problem.KindForbidden, "Only administrators can see other people's second factors.")
	}
	u, err := s.db.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return Status{}, problem.Wrap(problem.KindNotFound, "There is no such user.", err)
	}
	if err != nil {
		return Status{}, err
	}
	return s.statusOf(ctx, userID, u.Role)
}

// RemoveFactor removes one of p's own factors. The last one goes only when the policy does
// not ask p for one.
func (s *Service) RemoveFactor(ctx context.Context, p *auth.Principal, factorID int64, m audit.Meta) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		f, err := store.DeleteFactor(ctx, tx, p.UserID, factorID)
		if errors.Is(err, store.ErrNotFound) {
			return problem.Wrap(problem.KindNotFound, "This second factor is not yours or was removed already.", err)
		}
		if err != nil {
			return err
		}
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM second_factors WHERE user_id = ? AND confirmed = 1`, p.UserID).Scan(&left); err != nil {
			return fmt.Errorf("count second factors: %w", err)
		}
		if left == 0 && f.Confirmed && s.requiredFor(p.Role) {
			return problem.New(problem.KindConflict, "This is your only second factor, and the portal requires one for you. Add another before removing this one.")
		}
		if left == 0 {
			if err := store.ReplaceRecoveryCodes(ctx, tx, p.UserID, nil); err != nil {
				return err
			}
		}
		ev := audit.New(m, audit.ActionFactorRemove, audit.Success, map[string]any{"kind": f.Kind, "name": f.Name, "factors_left": left})
		ev.TargetType, ev.Target = "user", p.Email
		_, err = audit.Record(ctx, tx, ev, now)
		return err
	})
}

// Reset removes every second factor and recovery code of a user and ends their sessions, so
// they enrol again at their next sign-in. Administrators only.
func (s *Service) Reset(ctx context.Context, p *auth.Principal, userID int64, m audit.Meta) (store.User, error) {
	if !p.IsAdmin() {
		return store.User{}, problem.New(problem.KindForbidden, "Only administrators can reset a second factor.")
	}
	u, err := s.db.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return u, problem.Wrap(problem.KindNotFound, "There is no such user.", err)
	}
	if err != nil {
		return u, err
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		n, err := store.DeleteUserFactors(ctx, tx, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return problem.New(problem.KindConflict, u.Email+" has no second factor to reset.")
		}
		ended, err := store.DeleteUserSessions(ctx, tx, userID)
		if err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionFactorReset, audit.Success, map[string]any{"factors_removed": n, "sessions_ended": ended})
		ev.TargetType, ev.Target = "user", u.Email
		_, err = audit.Record(ctx, tx, ev, now)
		return err
	})
	return u, err
}

// ---- recovery codes ----

const recoveryCount = 10

// recoveryAlphabet leaves out letters people confuse (0/O, 1/l/I).
const recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

func newRecoveryCodes() (codes, hashes []string, err error) {
	for range recoveryCount {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("recovery code: %w", err)
		}
		var sb strings.Builder
		for i, c := range b {
			if i == 5 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		codes = append(codes, sb.String())
		hashes = append(hashes, hashRecovery(sb.String()))
	}
	return codes, hashes, nil
}

// normalizeRecovery forgives case, spaces and the dash, as people copy codes from paper.
func normalizeRecovery(code string) string {
	code = strings.ToLower(code)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, code)
}

func hashRecovery(code string) string {
	sum := sha256.Sum256([]byte("portal recovery code\x00" + normalizeRecovery(code)))
	return hex.EncodeToString(sum[:])
}

// RegenerateRecoveryCodes replaces p's recovery codes with ten new ones, shown once.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *auth.Principal, m audit.Meta) ([]string, error) {
	has, err := s.HasFactor(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, problem.New(problem.KindConflict, "Set up an authenticator app or a passkey first; recovery codes stand in for them.")
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := store.ReplaceRecoveryCodes(ctx, tx, p.UserID, hashes); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionRecoveryCodes, audit.Success, map[string]any{"count": len(codes)})
		ev.TargetType, ev.Target = "user", p.Email
		_, err := audit.Record(ctx, tx, ev, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// firstRecoveryCodes gives a person who has none ten codes in tx, with their first factor.
func firstRecoveryCodes(ctx context.Context, tx *sql.Tx, userID int64) ([]string, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at = ''`, userID).Scan(&n); err != nil {
		return nil, fmt.Errorf("count recovery codes: %w", err)
	}
	if n > 0 {
		return nil, nil
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	return codes, store.ReplaceRecoveryCodes(ctx, tx, userID, hashes)
}

// ---- helpers ----

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// throttleKey keeps second-factor failures apart from password failures, so a correct
// password (which clears the account's password failures) never resets the count of wrong codes.
func throttleKey(email string) string { return "second-factor:" + email }
