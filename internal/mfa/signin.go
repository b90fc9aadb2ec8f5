package mfa

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/problem"
	"portal/internal/store"
)

// Purposes of factor_challenges rows.
const (
	purposeSignIn      = "sign_in"         // the password was right; a second factor is due
	purposePasskeyIn   = "passkey_sign_in" // a password-less sign-in, not yet knowing who
	purposePasskeyEnrl = "passkey_register"
)

// pendingData is what a half-finished sign-in remembers.
type pendingData struct {
	Next     string                `json:"next"`
	WebAuthn *webauthn.SessionData `json:"webauthn,omitempty"`
}

// Pending is a half-finished sign-in: the password was right, the second factor is due. It
// is no session: it opens nothing but the second-factor step.
type Pending struct {
	UserID       int64
	Email        string
	Next         string
	HasTOTP      bool
	HasPasskey   bool
	RecoveryLeft int
}

// StartSignIn records a half-finished sign-in after a right password and returns the id the
// browser keeps in a cookie until the second factor is given.
func (s *Service) StartSignIn(ctx context.Context, userID int64, next string) (string, error) {
	id, hash, err := auth.NewToken()
	if err != nil {
		return "", err
	}
	data, _ := json.Marshal(pendingData{Next: next})
	now := s.now()
	if err := s.db.PutChallenge(ctx, store.FactorChallenge{IDHash: hash, UserID: userID, Purpose: purposeSignIn, Data: string(data), ExpiresAt: now.Add(s.opts.PendingTTL)}, false, now); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Service) pending(ctx context.Context, id string) (store.FactorChallenge, pendingData, store.User, error) {
	var pd pendingData
	if id == "" {
		return store.FactorChallenge{}, pd, store.User{}, errPendingGone
	}
	c, err := s.db.Challenge(ctx, auth.HashToken(id), purposeSignIn, s.now())
	if isNotFound(err) {
		return c, pd, store.User{}, errPendingGone
	}
	if err != nil {
		return c, pd, store.User{}, err
	}
	if err := json.Unmarshal([]byte(c.Data), &pd); err != nil {
		return c, pd, store.User{}, fmt.Errorf("pending sign-in: %w", err)
	}
	u, err := s.db.UserByID(ctx, c.UserID)
	if isNotFound(err) {
		return c, pd, u, errPendingGone
	}
	if err != nil {
		return c, pd, u, err
	}
	if u.Disabled || u.PendingApproval {
		return c, pd, u, errPendingGone
	}
	return c, pd, u, nil
}

// Pending returns the half-finished sign-in the browser's id names.
func (s *Service) Pending(ctx context.Context, id string) (Pending, error) {
	_, pd, u, err := s.pending(ctx, id)
	if err != nil {
		return Pending{}, err
	}
	st, err := s.statusOf(ctx, u.ID, u.Role)
	if err != nil {
		return Pending{}, err
	}
	return Pending{UserID: u.ID, Email: u.Email, Next: pd.Next, HasTOTP: st.TOTP != nil, HasPasskey: len(st.Passkeys) > 0, RecoveryLeft: st.RecoveryLeft}, nil
}

// CancelSignIn forgets a half-finished sign-in.
func (s *Service) CancelSignIn(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	return s.db.DeleteChallenge(ctx, auth.HashToken(id))
}

var (
	errWrongCode = problem.New(problem.KindUnauthenticated, "That code is not right. Type the 6 digits your authenticator app shows now, or one of your recovery codes.")
	errReplay    = problem.New(problem.KindUnauthenticated, "That code was used already. Wait for the app to show the next one.")
)

// VerifyCode finishes a half-finished sign-in with a TOTP code or a recovery code. Codes are
// throttled like passwords; a TOTP code is accepted once, and so is a recovery code.
func (s *Service) VerifyCode(ctx context.Context, id, code string, m audit.Meta) (userID int64, next string, err error) {
	c, pd, u, err := s.pending(ctx, id)
	if err != nil {
		return 0, "", err
	}
	m.ActorID, m.Actor = u.ID, u.Email
	if err := s.reserve(ctx, u.Email, m.Address); err != nil {
		s.appendEvent(ctx, m, u.Email, audit.ActionSecondFactor, audit.Denied, map[string]any{"reason": "too many wrong codes"})
		return 0, "", err
	}
	fs, err := s.db.UserFactors(ctx, u.ID)
	if err != nil {
		return 0, "", err
	}
	now := s.now()
	var totpFactor *store.SecondFactor
	for i := range fs {
		if fs[i].Kind == "totp" && fs[i].Confirmed {
			totpFactor = &fs[i]
		}
	}
	method, reason := "", ""
	if totpFactor != nil {
		secret, err := openTOTP(s.opts.KEK, u.ID, totpFactor.TOTPSealed)
		if err != nil {
			return 0, "", err
		}
		if step, ok := matchStep(secret, code, now); ok {
			method = "totp"
			err := s.db.Tx(ctx, func(tx *sql.Tx) error {
				used, err := store.UseTOTPStep(ctx, tx, totpFactor.ID, step, now)
				if err != nil {
					return err
				}
				if !used {
					return errReplay
				}
				return s.finish(ctx, tx, c.IDHash, m, u.Email, audit.ActionSecondFactor, map[string]any{"method": method}, now)
			})
			if errors.Is(err, errReplay) {
				s.appendEvent(ctx, m, u.Email, audit.ActionSecondFactor, audit.Failure, map[string]any{"method": method, "reason": "code used already"})
				return 0, "", errReplay
			}
			if err != nil {
				return 0, "", err
			}
			s.clear(ctx, u.Email)
			return u.ID, pd.Next, nil
		}
	}
	if len(normalizeRecovery(code)) == 10 {
		method = "recovery_code"
		var left int
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			ok, err := store.UseRecoveryCode(ctx, tx, u.ID, hashRecovery(code), now)
			if err != nil {
				return err
			}
			if !ok {
				return errWrongCode
			}
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at = ''`, u.ID).Scan(&left); err != nil {
				return fmt.Errorf("count recovery codes: %w", err)
			}
			return s.finish(ctx, tx, c.IDHash, m, u.Email, audit.ActionRecoveryCodeUse, map[string]any{"codes_left": left}, now)
		})
		if err == nil {
			s.clear(ctx, u.Email)
			return u.ID, pd.Next, nil
		}
		if !errors.Is(err, errWrongCode) {
			return 0, "", err
		}
		reason = "wrong or used recovery code"
	} else {
		reason = "wrong code"
	}
	s.appendEvent(ctx, m, u.Email, audit.ActionSecondFactor, audit.Failure, map[string]any{"reason": reason})
	return 0, "", errWrongCode
}

// finish ends a half-finished sign-in in tx (so it is used once) and audits its success.
func (s *Service) finish(ctx context.Context, tx *sql.Tx, idHash string, m audit.Meta, email, action string, details map[string]any, now time.Time) error {
	taken, err := store.TakeChallenge(ctx, tx, idHash)
	if err != nil {
		return err
	}
	if !taken {
		return errPendingGone
	}
	ev := audit.New(m, action, audit.Success, details)
	ev.TargetType, ev.Target = "user", email
	_, err = audit.Record(ctx, tx, ev, now)
	return err
}

func (s *Service) appendEvent(ctx context.Context, m audit.Meta, email, action, outcome string, details map[string]any) {
	ev := audit.New(m, action, outcome, details)
	ev.TargetType, ev.Target = "user", email
	if err := audit.NewLog(s.db, s.opts.Now).Append(context.WithoutCancel(ctx), ev); err != nil {
		s.opts.Log.Error("audit a second-factor event", "action", action, "err", err)
	}
}
