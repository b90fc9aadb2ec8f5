package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SecondFactor is a row of second_factors.
type SecondFactor struct {
	ID         int64
	UserID     int64
	Kind       string // totp, passkey
	Name       string
	Confirmed  bool
	CreatedAt  time.Time
	LastUsedAt time.Time
	TOTPSealed []byte
	TOTPStep   int64
	CredID     []byte
	CredJSON   string
	SignCount  uint32
}

const factorCols = `id, user_id, kind, name, confirmed, created_at, last_used_at, totp_sealed, totp_step, cred_id, cred_json, sign_count`

func scanFactor(sc interface{ Scan(...any) error }) (SecondFactor, error) {
	var f SecondFactor
	var created, used string
	err := sc.Scan(&f.ID, &f.UserID, &f.Kind, &f.Name, &f.Confirmed, &created, &used, &f.TOTPSealed, &f.TOTPStep, &f.CredID, &f.CredJSON, &f.SignCount)
	f.CreatedAt, f.LastUsedAt = mustTime(created), mustTime(used)
	return f, err
}

// UserFactors lists a user's second factors, confirmed or not, oldest first.
func (d *DB) UserFactors(ctx context.Context, userID int64) ([]SecondFactor, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT `+factorCols+` FROM second_factors WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("second factors: %w", err)
	}
	defer rows.Close()
	var out []SecondFactor
	for rows.Next() {
		f, err := scanFactor(rows)
		if err != nil {
			return nil, fmt.Errorf("second factors: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// CountConfirmedFactors counts a user's usable second factors.
func (d *DB) CountConfirmedFactors(ctx context.Context, userID int64) (int, error) {
	var n int
	err := d.read.QueryRowContext(ctx, `SELECT count(*) FROM second_factors WHERE user_id = ? AND confirmed = 1`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count second factors: %w", err)
	}
	return n, nil
}

// FactorByCredID finds a passkey by its credential id.
func (d *DB) FactorByCredID(ctx context.Context, credID []byte) (SecondFactor, error) {
	f, err := scanFactor(d.read.QueryRowContext(ctx, `SELECT `+factorCols+` FROM second_factors WHERE cred_id = ? AND kind = 'passkey'`, credID))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("passkey: %w", ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("passkey: %w", err)
	}
	return f, nil
}

// InsertFactor stores a second factor and returns its id.
func InsertFactor(ctx context.Context, tx *sql.Tx, f SecondFactor, now time.Time) (int64, error) {
	var credID any
	if len(f.CredID) > 0 {
		credID = f.CredID
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO second_factors (user_id, kind, name, confirmed, created_at, totp_sealed, totp_step, cred_id, cred_json, sign_count)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, f.UserID, f.Kind, f.Name, f.Confirmed, FormatTime(now), f.TOTPSealed, f.TOTPStep, credID, f.CredJSON, f.SignCount)
	if err != nil {
		if isUnique(err) {
			return 0, fmt.Errorf("insert second factor: %w", ErrConflict)
		}
		return 0, fmt.Errorf("insert second factor: %w", err)
	}
	return res.LastInsertId()
}

// DeleteUnconfirmedTOTP removes a user's TOTP enrolments that were never confirmed.
func DeleteUnconfirmedTOTP(ctx context.Context, tx *sql.Tx, userID int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM second_factors WHERE user_id = ? AND kind = 'totp' AND confirmed = 0`, userID); err != nil {
		return fmt.Errorf("delete unconfirmed totp: %w", err)
	}
	return nil
}

// UseTOTPStep records that a TOTP code of step was accepted (and confirms the factor), only if
// no code of that step or a later one was accepted before; it reports whether it did.
func UseTOTPStep(ctx context.Context, tx *sql.Tx, factorID, step int64, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE second_factors SET totp_step = ?, confirmed = 1, last_used_at = ? WHERE id = ? AND kind = 'totp' AND totp_step < ?`,
		step, FormatTime(now), factorID, step)
	if err != nil {
		return false, fmt.Errorf("use totp step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UsePasskey records a passkey's new sign counter, only if it went up (or both are zero, for
// authenticators that keep no counter); it reports whether it did.
func UsePasskey(ctx context.Context, tx *sql.Tx, factorID int64, count uint32, credJSON string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE second_factors SET sign_count = ?, cred_json = ?, last_used_at = ?
		WHERE id = ? AND kind = 'passkey' AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`,
		count, credJSON, FormatTime(now), factorID, count, count)
	if err != nil {
		return false, fmt.Errorf("use passkey: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteFactor removes one of a user's factors and reports whether it existed.
func DeleteFactor(ctx context.Context, tx *sql.Tx, userID, factorID int64) (SecondFactor, error) {
	f, err := scanFactor(tx.QueryRowContext(ctx, `SELECT `+factorCols+` FROM second_factors WHERE id = ? AND user_id = ?`, factorID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("second factor: %w", ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("second factor: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM second_factors WHERE id = ?`, factorID); err != nil {
		return f, fmt.Errorf("delete second factor: %w", err)
	}
	return f, nil
}

// DeleteUserFactors removes every factor and recovery code of a user and says how many
// factors there were.
func DeleteUserFactors(ctx context.Context, tx *sql.Tx, userID int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM second_factors WHERE user_id = ? AND confirmed = 1`, userID)
	if err != nil {
		return 0, fmt.Errorf("delete second factors: %w", err)
	}
	n, _ := res.RowsAffected()
	for _, q := range []string{`DELETE FROM second_factors WHERE user_id = ?`, `DELETE FROM recovery_codes WHERE user_id = ?`, `DELETE FROM factor_challenges WHERE user_id = ?`} {
		if _, err := tx.ExecContext(ctx, q, userID); err != nil {
			return 0, fmt.Errorf("reset second factors: %w", err)
		}
	}
	return n, nil
}

// WebAuthnHandle returns the user's WebAuthn user handle, creating it from fresh when absent.
func (d *DB) WebAuthnHandle(ctx context.Context, userID int64, fresh []byte) ([]byte, error) {
	if _, err := d.write.ExecContext(ctx, `INSERT INTO webauthn_handles (user_id, handle) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING`, userID, fresh); err != nil {
		return nil, fmt.Errorf("webauthn handle: %w", err)
	}
	var h []byte
	if err := d.read.QueryRowContext(ctx, `SELECT handle FROM webauthn_handles WHERE user_id = ?`, userID).Scan(&h); err != nil {
		return nil, fmt.Errorf("webauthn handle: %w", err)
	}
	return h, nil
}

// UserByWebAuthnHandle finds the user a WebAuthn user handle belongs to.
func (d *DB) UserByWebAuthnHandle(ctx context.Context, handle []byte) (int64, error) {
	var id int64
	err := d.read.QueryRowContext(ctx, `SELECT user_id FROM webauthn_handles WHERE handle = ?`, handle).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("webauthn handle: %w", ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("webauthn handle: %w", err)
	}
	return id, nil
}

// ReplaceRecoveryCodes stores new recovery code hashes in place of the old ones.
func ReplaceRecoveryCodes(ctx context.Context, tx *sql.Tx, userID int64, hashes []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("replace recovery codes: %w", err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`, userID, h); err != nil {
			return fmt.Errorf("replace recovery codes: %w", err)
		}
	}
	return nil
}

// UseRecoveryCode marks an unused code of the user used and reports whether there was one.
func UseRecoveryCode(ctx context.Context, tx *sql.Tx, userID int64, hash string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at = ''`, FormatTime(now), userID, hash)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UnusedRecoveryCodes counts a user's recovery codes not used yet.
func (d *DB) UnusedRecoveryCodes(ctx context.Context, userID int64) (int, error) {
	var n int
	if err := d.read.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at = ''`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

// FactorChallenge is a row of factor_challenges.
type FactorChallenge struct {
	IDHash    string
	UserID    int64 // 0 for a password-less sign-in not yet knowing who
	Purpose   string
	Data      string
	ExpiresAt time.Time
}

// PutChallenge stores a challenge; with replaceForUser, the user's earlier ones of the same
// purpose go.
func (d *DB) PutChallenge(ctx context.Context, c FactorChallenge, replaceForUser bool, now time.Time) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM factor_challenges WHERE expires_at < ?`, FormatTime(now)); err != nil {
			return fmt.Errorf("prune challenges: %w", err)
		}
		if replaceForUser && c.UserID != 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM factor_challenges WHERE user_id = ? AND purpose = ?`, c.UserID, c.Purpose); err != nil {
				return fmt.Errorf("replace challenge: %w", err)
			}
		}
		var uid any
		if c.UserID != 0 {
			uid = c.UserID
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO factor_challenges (id_hash, user_id, purpose, data, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			c.IDHash, uid, c.Purpose, c.Data, FormatTime(now), FormatTime(c.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert challenge: %w", err)
		}
		return nil
	})
}

// Challenge finds an unexpired challenge by id hash and purpose.
func (d *DB) Challenge(ctx context.Context, idHash, purpose string, now time.Time) (FactorChallenge, error) {
	var c FactorChallenge
	var uid sql.NullInt64
	var exp string
	err := d.read.QueryRowContext(ctx, `SELECT id_hash, user_id, purpose, data, expires_at FROM factor_challenges WHERE id_hash = ? AND purpose = ? AND expires_at > ?`,
		idHash, purpose, FormatTime(now)).Scan(&c.IDHash, &uid, &c.Purpose, &c.Data, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("challenge: %w", ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("challenge: %w", err)
	}
	c.UserID, c.ExpiresAt = uid.Int64, mustTime(exp)
	return c, nil
}

// ChallengeOfUser finds a user's unexpired challenge of a purpose.
func (d *DB) ChallengeOfUser(ctx context.Context, userID int64, purpose string, now time.Time) (FactorChallenge, error) {
	var h string
	err := d.read.QueryRowContext(ctx, `SELECT id_hash FROM factor_challenges WHERE user_id = ? AND purpose = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1`,
		userID, purpose, FormatTime(now)).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return FactorChallenge{}, fmt.Errorf("challenge: %w", ErrNotFound)
	}
	if err != nil {
		return FactorChallenge{}, fmt.Errorf("challenge: %w", err)
	}
	return d.Challenge(ctx, h, purpose, now)
}

// TakeChallenge deletes a challenge and reports whether it was still there, so a challenge
// is answered once.
func TakeChallenge(ctx context.Context, tx *sql.Tx, idHash string) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM factor_challenges WHERE id_hash = ?`, idHash)
	if err != nil {
		return false, fmt.Errorf("take challenge: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteChallenge removes a challenge.
func (d *DB) DeleteChallenge(ctx context.Context, idHash string) error {
	if _, err := d.write.ExecContext(ctx, `DELETE FROM factor_challenges WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete challenge: %w", err)
	}
	return nil
}

// UpdateChallengeData replaces a challenge's data (e.g. a WebAuthn ceremony's state).
func (d *DB) UpdateChallengeData(ctx context.Context, idHash, data string) error {
	if _, err := d.write.ExecContext(ctx, `UPDATE factor_challenges SET data = ? WHERE id_hash = ?`, data, idHash); err != nil {
		return fmt.Errorf("update challenge: %w", err)
	}
	return nil
}

// SealedTOTP is a TOTP secret as sealed at rest.
type SealedTOTP struct {
	ID     int64
	UserID int64
	Sealed []byte
}

// SealedTOTPTx lists every sealed TOTP secret, for re-sealing under a new key-encryption key.
func SealedTOTPTx(ctx context.Context, tx *sql.Tx) ([]SealedTOTP, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, user_id, totp_sealed FROM second_factors WHERE kind = 'totp' AND totp_sealed IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sealed TOTP secrets: %w", err)
	}
	defer rows.Close()
	var out []SealedTOTP
	for rows.Next() {
		var s SealedTOTP
		if err := rows.Scan(&s.ID, &s.UserID, &s.Sealed); err != nil {
			return nil, fmt.Errorf("sealed TOTP secrets: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ResealTOTP replaces a TOTP secret's sealed bytes.
func ResealTOTP(ctx context.Context, tx *sql.Tx, id int64, sealed []byte) error {
	if _, err := tx.ExecContext(ctx, `UPDATE second_factors SET totp_sealed = ? WHERE id = ? AND kind = 'totp'`, sealed, id); err != nil {
		return fmt.Errorf("reseal TOTP secret %d: %w", id, err)
	}
	return nil
}
