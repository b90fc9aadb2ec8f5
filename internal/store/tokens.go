package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OneTimeToken is a single-use link's record; only the token's hash is kept.
type OneTimeToken struct {
	Hash      string
	Purpose   string
	UserID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// InsertToken stores a single-use token.
func InsertToken(ctx context.Context, tx *sql.Tx, t OneTimeToken) error {
	var user any
	if t.UserID != 0 {
		user = t.UserID
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		t.Hash, t.Purpose, user, FormatTime(t.CreatedAt), FormatTime(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert %s token: %w", t.Purpose, err)
	}
	return nil
}

// TokenByHash finds a token, used or not.
func (d *DB) TokenByHash(ctx context.Context, hash string) (OneTimeToken, error) {
	var t OneTimeToken
	var user sql.NullInt64
	var created, expires string
	var used sql.NullString
	err := d.read.QueryRowContext(ctx,
		`SELECT token_hash, purpose, user_id, created_at, expires_at, used_at FROM one_time_tokens WHERE token_hash = ?`, hash).
		Scan(&t.Hash, &t.Purpose, &user, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	t.UserID = user.Int64
	t.CreatedAt, t.ExpiresAt, t.UsedAt = mustTime(created), mustTime(expires), mustTime(used.String)
	return t, nil
}

// UseToken marks a token used, atomically: it fails with ErrNotFound when the token does not
// exist, is for another purpose, was used already or has expired, so a link works once.
func UseToken(ctx context.Context, tx *sql.Tx, hash, purpose string, now time.Time) (OneTimeToken, error) {
	var t OneTimeToken
	var user sql.NullInt64
	err := tx.QueryRowContext(ctx,
		`UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?
		 RETURNING user_id`, FormatTime(now), hash, purpose, FormatTime(now)).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("use %s token: %w", purpose, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("use %s token: %w", purpose, err)
	}
	t.Hash, t.Purpose, t.UserID, t.UsedAt = hash, purpose, user.Int64, now
	return t, nil
}

// InsertLoginFailure records a failed sign-in for throttling.
func (d *DB) InsertLoginFailure(ctx context.Context, email, address string, at time.Time) error {
	if _, err := d.write.ExecContext(ctx, "INSERT INTO login_failures (email, address, at) VALUES (?, ?, ?)",
		email, address, FormatTime(at)); err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// CountLoginFailures counts failures since a time, for an email and for an address.
func (d *DB) CountLoginFailures(ctx context.Context, email, address string, since time.Time) (byEmail, byAddress int, err error) {
	s := FormatTime(since)
	err = d.read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM login_failures WHERE email = ? AND at >= ?),
		(SELECT count(*) FROM login_failures WHERE address = ? AND at >= ?)`, email, s, address, s).Scan(&byEmail, &byAddress)
	if err != nil {
		return 0, 0, fmt.Errorf("count login failures: %w", err)
	}
	return byEmail, byAddress, nil
}

// ClearLoginFailures forgets an account's failures after a successful sign-in, and prunes old ones.
func (d *DB) ClearLoginFailures(ctx context.Context, email string, before time.Time) error {
	if _, err := d.write.ExecContext(ctx, "DELETE FROM login_failures WHERE email = ? OR at < ?", email, FormatTime(before)); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// RevokeUserTokens marks every open token of a user for a purpose used, so older links stop
// working, and says how many there were.
func RevokeUserTokens(ctx context.Context, tx *sql.Tx, userID int64, purpose string, now time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, `UPDATE one_time_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
		FormatTime(now), userID, purpose)
	if err != nil {
		return 0, fmt.Errorf("revoke %s tokens of user %d: %w", purpose, userID, err)
	}
	return res.RowsAffected()
}
