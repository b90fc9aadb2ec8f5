package mfa

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/problem"
	"portal/internal/store"
)

// waUser is a person as go-webauthn sees them: a random handle and their passkeys.
type waUser struct {
	handle      []byte
	email, name string
	creds       []webauthn.Credential
	factorOf    map[string]store.SecondFactor // by credential id
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.email }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Service) loadWAUser(ctx context.Context, userID int64, email, name string) (*waUser, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("webauthn handle: %w", err)
	}
	h, err := s.db.WebAuthnHandle(ctx, userID, fresh)
	if err != nil {
		return nil, err
	}
	u := &waUser{handle: h, email: email, name: name, factorOf: map[string]store.SecondFactor{}}
	fs, err := s.db.UserFactors(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if f.Kind != "passkey" || !f.Confirmed {
			continue
		}
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(f.CredJSON), &c); err != nil {
			return nil, fmt.Errorf("passkey %d: %w", f.ID, err)
		}
		// The column is the counter that counts: it is the one updated conditionally.
		c.Authenticator.SignCount = f.SignCount
		u.creds = append(u.creds, c)
		u.factorOf[string(c.ID)] = f
	}
	return u, nil
}

var errPasskeyRefused = problem.New(problem.KindUnauthenticated, "The passkey was not accepted. Try again, or use another way to sign in.")

// errCloned is said when a passkey's sign counter did not go up: two copies of its private
// key may exist.
var errCloned = problem.New(problem.KindUnauthenticated, "This passkey was refused: its signature counter went backwards, which happens when a passkey was copied. Use another way to sign in and tell an administrator.")

// ---- registration ----

// BeginPasskeyRegistration returns the options for navigator.credentials.create. The passkey
// is discoverable, so it also signs in without a password.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p *auth.Principal) ([]byte, error) {
	if s.wa == nil {
		return nil, errNoPasskeys
	}
	u, err := s.loadWAUser(ctx, p.UserID, p.Email, p.Name)
	if err != nil {
		return nil, err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sd, err := s.wa.BeginRegistration(u,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, fmt.Errorf("begin passkey registration: %w", err)
	}
	data, err := json.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("passkey registration: %w", err)
	}
	_, hash, err := auth.NewToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.db.PutChallenge(ctx, store.FactorChallenge{IDHash: hash, UserID: p.UserID, Purpose: purposePasskeyEnrl, Data: string(data), ExpiresAt: now.Add(s.opts.PendingTTL)}, true, now); err != nil {
		return nil, err
	}
	return json.Marshal(creation)
}

// CheckPasskeyName returns a message when a passkey's name is unusable.
func CheckPasskeyName(name string) string {
	switch {
	case name == "":
		return "Give the passkey a name, such as the device it is on."
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		return "The name contains invisible or control characters. Type it again with visible letters only."
	case utf8.RuneCountInString(name) > 60:
		return "Use at most 60 characters."
	}
	return ""
}

// FinishPasskeyRegistration checks the authenticator's answer and keeps the passkey. A
// person's first factor comes with ten recovery codes, returned once.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p *auth.Principal, name string, body []byte, m audit.Meta) ([]string, error) {
	if s.wa == nil {
		return nil, errNoPasskeys
	}
	name = strings.TrimSpace(name)
	if msg := CheckPasskeyName(name); msg != "" {
		return nil, problem.Invalid(msg, map[string]string{"name": msg})
	}
	now := s.now()
	c, err := s.db.ChallengeOfUser(ctx, p.UserID, purposePasskeyEnrl, now)
	if isNotFound(err) {
		return nil, problem.New(problem.KindConflict, "The passkey set-up took too long. Start again.")
	}
	if err != nil {
		return nil, err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal([]byte(c.Data), &sd); err != nil {
		return nil, fmt.Errorf("passkey registration: %w", err)
	}
	u, err := s.loadWAUser(ctx, p.UserID, p.Email, p.Name)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, problem.Wrap(problem.KindInvalid, "The browser's answer could not be read. Try again.", err)
	}
	cred, err := s.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		s.appendEvent(ctx, m, p.Email, audit.ActionPasskeyEnrol, audit.Failure, map[string]any{"reason": reasonOf(err)})
		return nil, problem.Wrap(problem.KindInvalid, "The passkey could not be set up: the authenticator's answer did not check out. Try again.", err)
	}
	credJSON, err := json.Marshal(cred)
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	var codes []string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		taken, err := store.TakeChallenge(ctx, tx, c.IDHash)
		if err != nil {
			return err
		}
		if !taken {
			return problem.New(problem.KindConflict, "This passkey set-up was finished already.")
		}
		if _, err := store.InsertFactor(ctx, tx, store.SecondFactor{UserID: p.UserID, Kind: "passkey", Name: name, Confirmed: true,
			CredID: cred.ID, CredJSON: string(credJSON), SignCount: cred.Authenticator.SignCount}, now); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return problem.Wrap(problem.KindConflict, "This passkey is registered already.", err)
			}
			return err
		}
		if codes, err = firstRecoveryCodes(ctx, tx, p.UserID); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionPasskeyEnrol, audit.Success, map[string]any{"name": name, "recovery_codes_issued": len(codes)})
		ev.TargetType, ev.Target = "user", p.Email
		_, err = audit.Record(ctx, tx, ev, now)
		return err
	})
	return codes, err
}

// reasonOf gives the library's short reason for an audit event (never key material).
func reasonOf(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Type + ": " + pe.Details
	}
	return "invalid response"
}

// ---- a passkey as the second factor ----

// BeginPasskeyFactor returns the options for navigator.credentials.get, limited to the
// passkeys of the person whose password was right.
func (s *Service) BeginPasskeyFactor(ctx context.Context, id string) ([]byte, error) {
	if s.wa == nil {
		return nil, errNoPasskeys
	}
	c, pd, su, err := s.pending(ctx, id)
	if err != nil {
		return nil, err
	}
	u, err := s.loadWAUser(ctx, su.ID, su.Email, su.Name)
	if err != nil {
		return nil, err
	}
	if len(u.creds) == 0 {
		return nil, problem.New(problem.KindConflict, "You have no passkey. Use your authenticator app or a recovery code.")
	}
	assertion, sd, err := s.wa.BeginLogin(u)
	if err != nil {
		return nil, fmt.Errorf("begin passkey check: %w", err)
	}
	pd.WebAuthn = sd
	data, err := json.Marshal(pd)
	if err != nil {
		return nil, err
	}
	if err := s.db.UpdateChallengeData(ctx, c.IDHash, string(data)); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// FinishPasskeyFactor checks the authenticator's answer and, when right, finishes the
// half-finished sign-in.
func (s *Service) FinishPasskeyFactor(ctx context.Context, id string, body []byte, m audit.Meta) (int64, string, error) {
	if s.wa == nil {
		return 0, "", errNoPasskeys
	}
	c, pd, su, err := s.pending(ctx, id)
	if err != nil {
		return 0, "", err
	}
	m.ActorID, m.Actor = su.ID, su.Email
	if pd.WebAuthn == nil {
		return 0, "", problem.New(problem.KindConflict, "Start the passkey check again.")
	}
	u, err := s.loadWAUser(ctx, su.ID, su.Email, su.Name)
	if err != nil {
		return 0, "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		s.appendEvent(ctx, m, su.Email, audit.ActionSecondFactor, audit.Failure, map[string]any{"method": "passkey", "reason": "unreadable answer"})
		return 0, "", errPasskeyRefused
	}
	cred, err := s.wa.ValidateLogin(u, *pd.WebAuthn, parsed)
	if err != nil {
		s.appendEvent(ctx, m, su.Email, audit.ActionSecondFactor, audit.Failure, map[string]any{"method": "passkey", "reason": reasonOf(err)})
		return 0, "", errPasskeyRefused
	}
	if err := s.usePasskey(ctx, u, cred, c.IDHash, m, su.Email, audit.ActionSecondFactor, map[string]any{"method": "passkey"}); err != nil {
		return 0, "", err
	}
	return su.ID, pd.Next, nil
}

// usePasskey records the passkey's new counter and finishes the sign-in in one transaction,
// refusing a counter that did not go up (a cloned authenticator).
func (s *Service) usePasskey(ctx context.Context, u *waUser, cred *webauthn.Credential, idHash string, m audit.Meta, email, action string, details map[string]any) error {
	f, ok := u.factorOf[string(cred.ID)]
	if !ok {
		return errPasskeyRefused
	}
	details["passkey"] = f.Name
	clone := func(got uint32) error {
		s.appendEvent(ctx, m, email, audit.ActionPasskeyCloneSeen, audit.Denied, map[string]any{"passkey": f.Name, "stored_count": f.SignCount, "presented_count": got})
		return errCloned
	}
	if cred.Authenticator.CloneWarning {
		return clone(cred.Authenticator.SignCount)
	}
	credJSON, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("passkey: %w", err)
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		ok, err := store.UsePasskey(ctx, tx, f.ID, cred.Authenticator.SignCount, string(credJSON), now)
		if err != nil {
			return err
		}
		if !ok {
			return errCloned
		}
		return s.finish(ctx, tx, idHash, m, email, action, details, now)
	})
	if errors.Is(err, errCloned) {
		// Another use raised the counter meanwhile: the same signal as above.
		return clone(cred.Authenticator.SignCount)
	}
	return err
}

// ---- password-less sign-in ----

// BeginPasskeySignIn starts a password-less sign-in: any of the portal's passkeys on the
// person's device may answer. It returns the id for the browser's cookie and the options for
// navigator.credentials.get.
func (s *Service) BeginPasskeySignIn(ctx context.Context) (string, []byte, error) {
	if s.wa == nil {
		return "", nil, errNoPasskeys
	}
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return "", nil, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	data, err := json.Marshal(sd)
	if err != nil {
		return "", nil, err
	}
	id, hash, err := auth.NewToken()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	if err := s.db.PutChallenge(ctx, store.FactorChallenge{IDHash: hash, Purpose: purposePasskeyIn, Data: string(data), ExpiresAt: now.Add(s.opts.PendingTTL)}, false, now); err != nil {
		return "", nil, err
	}
	out, err := json.Marshal(assertion)
	return id, out, err
}

// FinishPasskeySignIn checks a password-less sign-in and returns whom it signs in. The
// passkey verified the person (user verification is required), so it stands for both factors.
func (s *Service) FinishPasskeySignIn(ctx context.Context, id string, body []byte, m audit.Meta) (int64, error) {
	if s.wa == nil {
		return 0, errNoPasskeys
	}
	now := s.now()
	c, err := s.db.Challenge(ctx, auth.HashToken(id), purposePasskeyIn, now)
	if isNotFound(err) || id == "" {
		return 0, problem.New(problem.KindUnauthenticated, "The passkey sign-in took too long. Try again.")
	}
	if err != nil {
		return 0, err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal([]byte(c.Data), &sd); err != nil {
		return 0, fmt.Errorf("passkey sign-in: %w", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		s.appendEvent(ctx, m, "", audit.ActionPasskeySignIn, audit.Failure, map[string]any{"reason": "unreadable answer"})
		return 0, errPasskeyRefused
	}
	var found *waUser
	var su store.User
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		uid, err := s.db.UserByWebAuthnHandle(ctx, userHandle)
		if err != nil {
			return nil, err
		}
		if su, err = s.db.UserByID(ctx, uid); err != nil {
			return nil, err
		}
		if found, err = s.loadWAUser(ctx, su.ID, su.Email, su.Name); err != nil {
			return nil, err
		}
		return found, nil
	}
	_, cred, err := s.wa.ValidatePasskeyLogin(handler, sd, parsed)
	if err != nil {
		s.appendEvent(ctx, m, su.Email, audit.ActionPasskeySignIn, audit.Failure, map[string]any{"reason": reasonOf(err)})
		return 0, errPasskeyRefused
	}
	m.ActorID, m.Actor = su.ID, su.Email
	if su.Disabled || su.PendingApproval {
		s.appendEvent(ctx, m, su.Email, audit.ActionPasskeySignIn, audit.Denied, map[string]any{"reason": "account disabled or waiting for approval"})
		return 0, errPasskeyRefused
	}
	if !bytes.Equal(parsed.Response.UserHandle, found.handle) {
		return 0, errPasskeyRefused
	}
	if err := s.usePasskey(ctx, found, cred, c.IDHash, m, su.Email, audit.ActionPasskeySignIn, map[string]any{}); err != nil {
		return 0, err
	}
	return su.ID, nil
}
