// Package auth owns people: users, passwords, sessions, teams and roles, and the Principal that
// every authorization decision starts from.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/audit"
	"portal/internal/problem"
	"portal/internal/store"
)

// Options tune the service; zero values take the defaults.
type Options struct {
	Hash            HashParams
	SetupTTL        time.Duration // first-run link, default 1 h
	PasswordLinkTTL time.Duration // set-password link, default 72 h
	ThrottleWindow  time.Duration // default 15 min
	MaxPerAccount   int           // failed sign-ins per account per window, default 5
	MaxPerAddress   int           // failed sign-ins per address per window, default 20
	// MaxLinkAttempts bounds the uses of set-password, invitation and setup forms per address
	// per window, default 30.
	MaxLinkAttempts int
	// MaxHashing bounds concurrent argon2id work (default twice the CPUs); a request waits at
	// most HashWait (default 2 s) for a slot, then is turned away with "busy".
	MaxHashing int
	HashWait   time.Duration
	// AllowedEmailDomains, when set, are the only domains (lower case) accounts and
	// invitations may have.
	AllowedEmailDomains []string
	// LinksByEmail says that single-use links are emailed to their addressee. Then an
	// invitation's link goes only to the invitee; without it, an account made through a
	// non-administrator's invitation waits for an administrator's approval.
	LinksByEmail bool
	Now          func() time.Time
	Log          *slog.Logger
}

// Service manages accounts, teams and sign-in.
type Service struct {
	db   *store.DB
	opts Options
	gate *hashGate
	// dummyHash is verified against when an email is unknown, so a wrong email costs the
	// same time as a wrong password and does not reveal which accounts exist.
	dummyHash string
	changed   observers // told after a change that may take rights away from a person
}

// NewService returns a Service over db.
func NewService(db *store.DB, opts Options) (*Service, error) {
	if opts.Hash == (HashParams{}) {
		opts.Hash = DefaultHashParams
	}
	if opts.SetupTTL == 0 {
		opts.SetupTTL = time.Hour
	}
	if opts.PasswordLinkTTL == 0 {
		opts.PasswordLinkTTL = 72 * time.Hour
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
	if opts.MaxLinkAttempts == 0 {
		opts.MaxLinkAttempts = 30
	}
	if opts.MaxHashing <= 0 {
		opts.MaxHashing = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.HashWait <= 0 {
		opts.HashWait = 2 * time.Second
	}
	domains := make([]string, 0, len(opts.AllowedEmailDomains))
	for _, d := range opts.AllowedEmailDomains {
		if d = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@"))); d != "" {
			domains = append(domains, d)
		}
	}
	opts.AllowedEmailDomains = domains
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	dummy, err := HashPassword("not a real password, only for timing", opts.Hash)
	if err != nil {
		return nil, err
	}
	return &Service{db: db, opts: opts, dummyHash: dummy, gate: newHashGate(opts.MaxHashing, opts.HashWait)}, nil
}

// LinksByEmail reports whether single-use links are emailed to their addressee, so pages
// must not show invitation links.
func (s *Service) LinksByEmail() bool { return s.opts.LinksByEmail }

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// NewToken returns a random URL-safe token and the hash that is stored in its place.
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func record(ctx context.Context, tx *sql.Tx, ev audit.Event, now time.Time) error {
	_, err := audit.Record(ctx, tx, ev, now)
	return err
}

// ---- first run ----

// NeedsSetup reports whether no user exists yet.
func (s *Service) NeedsSetup(ctx context.Context) (bool, error) {
	n, err := s.db.CountUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("count users: %w", err)
	}
	return n == 0, nil
}

// CreateSetupToken issues the one-time first-run token; it refuses once a user exists.
func (s *Service) CreateSetupToken(ctx context.Context) (string, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		n, err := store.CountUsersTx(ctx, tx)
		if err != nil {
			return err
		}
		if n > 0 {
			return problem.New(problem.KindConflict, "The portal is already set up.")
		}
		return store.InsertToken(ctx, tx, store.OneTimeToken{Hash: hash, Purpose: "setup", CreatedAt: now, ExpiresAt: now.Add(s.opts.SetupTTL)})
	})
	if err != nil {
		return "", fmt.Errorf("create setup token: %w", err)
	}
	return token, nil
}

// CheckToken reports whether a single-use token is currently usable for purpose, without using it.
func (s *Service) CheckToken(ctx context.Context, token, purpose string) error {
	t, err := s.db.TokenByHash(ctx, HashToken(token))
	if err != nil || t.Purpose != purpose || !t.UsedAt.IsZero() || !s.now().Before(t.ExpiresAt) {
		return problem.New(problem.KindNotFound, "This link is not valid: it was used already, has expired, or was mistyped. Ask an administrator for a new one.")
	}
	return nil
}

// NewAccount is what a person types to create an account.
type NewAccount struct {
	Email    string
	Name     string
	Password string
	Confirm  string
}

func (s *Service) validate(a *NewAccount, withPassword bool) map[string]string {
	f := map[string]string{}
	var msg string
	a.Email, msg = s.checkNewEmail(a.Email)
	a.Name = strings.TrimSpace(a.Name)
	if msg != "" {
		f["email"] = msg
	}
	if msg := checkName(a.Name); msg != "" {
		f["name"] = msg
	}
	if withPassword {
		if msg := CheckPassword(a.Password); msg != "" {
			f["password"] = msg
		} else if a.Password != a.Confirm {
			f["confirm"] = "The two passwords differ."
		}
	}
	return f
}

func checkEmail(e string) string {
	if e == "" {
		return "Enter an email address."
	}
	if len(e) > 254 {
		return "The email address is too long."
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || !strings.Contains(e, "@") {
		return "Enter an email address like name@example.no."
	}
	return ""
}

func checkName(n string) string {
	switch {
	case n == "":
		return "Enter a name."
	case !utf8.ValidString(n) || hasHidden(n):
		return "The name contains invisible or control characters (such as zero-width or right-to-left marks). Type it again with visible letters only."
	case utf8.RuneCountInString(n) > 100:
		return "Use at most 100 characters."
	}
	return ""
}

// CompleteSetup uses the first-run token to create the first admin.
func (s *Service) CompleteSetup(ctx context.Context, token string, a NewAccount, m audit.Meta) (store.User, error) {
	if err := s.reserveLinkAttempt(ctx, m.Address); err != nil {
		return store.User{}, err
	}
	// The link is checked before any hashing, so a bad link costs nothing.
	if err := s.CheckToken(ctx, token, "setup"); err != nil {
		return store.User{}, problem.New(problem.KindNotFound, "This setup link is not valid: it was used already or has expired. Restart the portal for a new one.")
	}
	if f := s.validate(&a, true); len(f) > 0 {
		return store.User{}, problem.Invalid("Check the fields marked below.", f)
	}
	hash, err := s.hash(ctx, a.Password)
	if err != nil {
		return store.User{}, err
	}
	now := s.now()
	var u store.User
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		n, err := store.CountUsersTx(ctx, tx)
		if err != nil {
			return err
		}
		if n > 0 {
			return problem.New(problem.KindConflict, "The portal is already set up. Sign in instead.")
		}
		if _, err := store.UseToken(ctx, tx, HashToken(token), "setup", now); err != nil {
			return problem.Wrap(problem.KindNotFound, "This setup link is not valid: it was used already or has expired. Restart the portal for a new one.", err)
		}
		u = store.User{Email: a.Email, Name: a.Name, Role: RoleAdmin, PasswordHash: hash, CreatedVia: store.ViaSetup}
		if u.ID, err = store.InsertUser(ctx, tx, u, now); err != nil {
			return err
		}
		m.ActorID, m.Actor = u.ID, u.Email
		ev := audit.New(m, audit.ActionSetup, audit.Success, map[string]any{"email": u.Email, "name": u.Name, "role": u.Role})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	return u, err
}

// ---- sign-in ----

// errWrongCredentials is the only thing a failed sign-in says.
var errWrongCredentials = problem.New(problem.KindUnauthenticated, "Wrong email or password.")

// errPendingApproval is said only to someone who typed the account's right password.
var errPendingApproval = problem.New(problem.KindForbidden, "Your account waits for an administrator's approval. You can sign in once an administrator has approved it.")

// Login checks email and password. It says nothing about which of the two was wrong, and
// refuses while the account or the address has too many recent failures. The attempt is
// reserved in the store before the password is hashed, so however many arrive at once, no
// more than the limits are ever checked; a refusal says when to try again, the same for an
// unknown email as for a known one.
func (s *Service) Login(ctx context.Context, email, password string, m audit.Meta) (store.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	now := s.now()
	if err := s.FlushThrottled(ctx); err != nil {
		s.opts.Log.Warn("record throttled sign-ins", "err", err)
	}
	res, err := s.db.ReserveSignIn(ctx, email, m.Address, now, s.opts.ThrottleWindow, s.opts.MaxPerAccount, s.opts.MaxPerAddress)
	if err != nil {
		return store.User{}, err
	}
	if !res.Allowed {
		if err := s.countThrottled(ctx, email, res.ByAddress, m); err != nil {
			return store.User{}, err
		}
		return store.User{}, throttled("Too many failed sign-in attempts.", res.Until, now)
	}
	u, lookupErr := s.db.UserByEmail(ctx, email)
	if lookupErr != nil && !errors.Is(lookupErr, store.ErrNotFound) {
		s.release(ctx, res.ID)
		return store.User{}, lookupErr
	}
	hash := u.PasswordHash
	if lookupErr != nil || hash == "" {
		hash = s.dummyHash
	}
	ok, verr, err := s.verify(ctx, hash, password)
	if err != nil {
		// Never checked: the attempt does not count against anyone.
		s.release(ctx, res.ID)
		return store.User{}, err
	}
	reason := ""
	switch {
	case lookupErr != nil:
		reason = "unknown email"
	case verr != nil || u.PasswordHash == "":
		reason = "no usable password"
	case !ok:
		reason = "wrong password"
	case u.Disabled:
		reason = "account disabled"
	}
	if reason != "" {
		// The reserved row stays as the failure.
		m.ActorID = u.ID
		m.Actor = email
		ev := audit.New(m, audit.ActionSignIn, audit.Failure, map[string]any{"email": email, "reason": reason})
		ev.TargetType, ev.Target = "user", email
		if err := audit.NewLog(s.db, s.opts.Now).Append(ctx, ev); err != nil {
			return store.User{}, err
		}
		return store.User{}, errWrongCredentials
	}
	if err := s.db.ClearLoginFailures(ctx, u.Email, now.Add(-24*time.Hour)); err != nil {
		s.opts.Log.Warn("clear login failures", "err", err)
	}
	m.ActorID, m.Actor = u.ID, u.Email
	if u.PendingApproval {
		ev := audit.New(m, audit.ActionSignIn, audit.Denied, map[string]any{"reason": "waiting for approval"})
		ev.TargetType, ev.Target = "user", u.Email
		if err := audit.NewLog(s.db, s.opts.Now).Append(ctx, ev); err != nil {
			return store.User{}, err
		}
		return store.User{}, errPendingApproval
	}
	ev := audit.New(m, audit.ActionSignIn, audit.Success, nil)
	ev.TargetType, ev.Target = "user", u.Email
	if err := audit.NewLog(s.db, s.opts.Now).Append(ctx, ev); err != nil {
		return store.User{}, err
	}
	return u, nil
}

func (s *Service) release(ctx context.Context, id int64) {
	if err := s.db.ReleaseSignIn(context.WithoutCancel(ctx), id); err != nil {
		s.opts.Log.Warn("release a sign-in attempt", "err", err)
	}
}

// RecordSignOut audits a sign-out.
func (s *Service) RecordSignOut(ctx context.Context, p *Principal, m audit.Meta) error {
	ev := audit.New(m, audit.ActionSignOut, audit.Success, nil)
	ev.TargetType, ev.Target = "user", p.Email
	return s.personChanged(p.UserID, audit.NewLog(s.db, s.opts.Now).Append(ctx, ev))
}

// LoadPrincipal builds the principal for an enabled user.
func (s *Service) LoadPrincipal(ctx context.Context, userID int64) (*Principal, error) {
	u, err := s.db.UserByID(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.Wrap(problem.KindUnauthenticated, "This account no longer exists.", err)
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, problem.New(problem.KindUnauthenticated, "This account is disabled.")
	}
	if u.PendingApproval {
		return nil, problem.New(problem.KindUnauthenticated, errPendingApproval.Message)
	}
	ms, err := s.db.UserMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	p := &Principal{UserID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role}
	for _, m := range ms {
		p.Teams = append(p.Teams, TeamRole{TeamID: m.TeamID, TeamName: m.TeamName, Role: m.Role, Source: m.Source})
	}
	return p, nil
}
