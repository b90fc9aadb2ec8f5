package mfa

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/keys"
	"portal/internal/problem"
	"portal/internal/store"
)

const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew accepts the code of the step before and after, for clocks a little apart.
	totpSkew = 1
)

// TOTPEnrolment is what a person needs to add the portal to an authenticator app.
type TOTPEnrolment struct {
	Secret string // base32, to type in by hand
	URL    string // otpauth:// URL, the QR code's content
	QRPNG  []byte // the QR code as PNG
}

// sealing binds a secret to its user, so a sealed secret copied to another row does not open.
func sealTOTP(kek *keys.KEK, userID int64, secret string) ([]byte, error) {
	return keys.Seal(kek, "second-factor", itoa(userID), "totp", []byte(secret))
}

func openTOTP(kek *keys.KEK, userID int64, sealed []byte) (string, error) {
	b, err := keys.Open(kek, "second-factor", itoa(userID), "totp", sealed)
	if err != nil {
		return "", fmt.Errorf("open TOTP secret of user %d: %w", userID, err)
	}
	return string(b), nil
}

// BeginTOTP starts (or restarts) p's TOTP enrolment: a new secret, sealed, kept unconfirmed
// until a code from the app confirms it.
func (s *Service) BeginTOTP(ctx context.Context, p *auth.Principal) (TOTPEnrolment, error) {
	st, err := s.Status(ctx, p)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if st.TOTP != nil {
		return TOTPEnrolment{}, problem.New(problem.KindConflict, "You already have an authenticator app. Remove it first to set up another.")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.opts.Issuer, AccountName: p.Email, Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("generate TOTP secret: %w", err)
	}
	sealed, err := sealTOTP(s.opts.KEK, p.UserID, key.Secret())
	if err != nil {
		return TOTPEnrolment{}, err
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := store.DeleteUnconfirmedTOTP(ctx, tx, p.UserID); err != nil {
			return err
		}
		_, err := store.InsertFactor(ctx, tx, store.SecondFactor{UserID: p.UserID, Kind: "totp", Name: "Authenticator app", TOTPSealed: sealed}, now)
		return err
	})
	if err != nil {
		return TOTPEnrolment{}, err
	}
	return enrolment(key)
}

// PendingTOTP returns p's unconfirmed TOTP enrolment again (to re-show it after a wrong code).
func (s *Service) PendingTOTP(ctx context.Context, p *auth.Principal) (TOTPEnrolment, error) {
	f, err := s.unconfirmedTOTP(ctx, p.UserID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	secret, err := openTOTP(s.opts.KEK, p.UserID, f.TOTPSealed)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("TOTP secret: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.opts.Issuer, AccountName: p.Email, Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1, Secret: raw})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("TOTP key: %w", err)
	}
	return enrolment(key)
}

func enrolment(key *otp.Key) (TOTPEnrolment, error) {
	img, err := key.Image(240, 240)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPEnrolment{}, fmt.Errorf("TOTP QR code: %w", err)
	}
	return TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}, nil
}

func (s *Service) unconfirmedTOTP(ctx context.Context, userID int64) (store.SecondFactor, error) {
	fs, err := s.db.UserFactors(ctx, userID)
	if err != nil {
		return store.SecondFactor{}, err
	}
	for _, f := range fs {
		if f.Kind == "totp" && !f.Confirmed {
			return f, nil
		}
	}
	return store.SecondFactor{}, problem.New(problem.KindNotFound, "There is no authenticator app being set up. Start again from your account page.")
}

// matchStep returns the time step whose code equals code, within the allowed skew.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
	if len(code) != totpDigits.Length() {
		return 0, false
	}
	step := now.Unix() / totpPeriod
	// Latest step first, so of two matching steps the later is recorded.
	for d := int64(totpSkew); d >= -totpSkew; d-- {
		t := time.Unix((step+d)*totpPeriod, 0)
		want, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && equal(want, code) {
			return step + d, true
		}
	}
	return 0, false
}

// ConfirmTOTP checks a code from the app against p's unconfirmed secret and, when right,
// makes it p's second factor. A person's first factor comes with ten recovery codes, returned
// once.
func (s *Service) ConfirmTOTP(ctx context.Context, p *auth.Principal, code string, m audit.Meta) ([]string, error) {
	if strings.TrimSpace(code) == "" {
		return nil, problem.Invalid("Type the code the app shows.", map[string]string{"code": "Type the 6 digits the app shows now."})
	}
	f, err := s.unconfirmedTOTP(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.reserve(ctx, p.Email, m.Address); err != nil {
		return nil, err
	}
	secret, err := openTOTP(s.opts.KEK, p.UserID, f.TOTPSealed)
	if err != nil {
		return nil, err
	}
	now := s.now()
	step, ok := matchStep(secret, code, now)
	if !ok {
		return nil, problem.Invalid("That code is not right. Check the time on your phone and type the code the app shows now.", map[string]string{"code": "Type the 6 digits the app shows now."})
	}
	var codes []string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		used, err := store.UseTOTPStep(ctx, tx, f.ID, step, now)
		if err != nil {
			return err
		}
		if !used {
			return problem.New(problem.KindConflict, "This enrolment changed meanwhile. Start again from your account page.")
		}
		if codes, err = firstRecoveryCodes(ctx, tx, p.UserID); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionTOTPEnrol, audit.Success, map[string]any{"recovery_codes_issued": len(codes)})
		ev.TargetType, ev.Target = "user", p.Email
		_, err = audit.Record(ctx, tx, ev, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.clear(ctx, p.Email)
	return codes, nil
}

// reserve counts one attempt at a code against the account and the address, before it is
// checked, as passwords are; a refusal says when to try again.
func (s *Service) reserve(ctx context.Context, email, address string) error {
	now := s.now()
	res, err := s.db.ReserveSignIn(ctx, throttleKey(email), address, now, s.opts.ThrottleWindow, s.opts.MaxPerAccount, s.opts.MaxPerAddress)
	if err != nil {
		return err
	}
	if !res.Allowed {
		return problem.New(problem.KindThrottled, "Too many wrong codes. Try again after "+res.Until.UTC().Format("15:04")+" UTC.")
	}
	return nil
}

func (s *Service) clear(ctx context.Context, email string) {
	if err := s.db.ClearLoginFailures(context.WithoutCancel(ctx), throttleKey(email), s.now().Add(-24*time.Hour)); err != nil {
		s.opts.Log.Warn("clear second-factor failures", "err", err)
	}
}

var errPendingGone = problem.New(problem.KindUnauthenticated, "Your sign-in took too long or was already finished. Sign in again.")

// isNotFound reports a missing row.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// ResealTOTPSecrets moves every TOTP secret sealed under cur to next inside tx (portal keys
// rekey), checking that each opens to the same secret; one sealed under another key stops it.
func ResealTOTPSecrets(ctx context.Context, tx *sql.Tx, cur, next *keys.KEK) (int, error) {
	recs, err := store.SealedTOTPTx(ctx, tx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		id, err := keys.SealedKEKID(r.Sealed)
		if err != nil {
			return n, fmt.Errorf("TOTP secret of user %d: %w", r.UserID, err)
		}
		if id == next.ID() {
			continue // an interrupted earlier rekey got this far
		}
		before, err := openTOTP(cur, r.UserID, r.Sealed)
		if err != nil {
			return n, err
		}
		sealed, err := sealTOTP(next, r.UserID, before)
		if err != nil {
			return n, err
		}
		if after, err := openTOTP(next, r.UserID, sealed); err != nil || after != before {
			return n, fmt.Errorf("TOTP secret of user %d does not open to itself under the new key-encryption key", r.UserID)
		}
		if err := store.ResealTOTP(ctx, tx, r.ID, sealed); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
