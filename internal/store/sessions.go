package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a row of sessions. The id itself is never stored, only its hash.
type Session struct {
	IDHash     string
	UserID     int64
	CreatedAt  time.Time
	LastSeenAt time.Time
	Address    string
	UserAgent  string
}

// InsertSession stores a new session.
func (d *DB) InsertSession(ctx context.Context, s Session) error {
	_, err := d.write.ExecContext(ctx,
		`INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, address, user_agent) VALUES (?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.UserID, FormatTime(s.CreatedAt), FormatTime(s.LastSeenAt), s.Address, s.UserAgent)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// SessionByHash finds a session by the hash of its id.
func (d *DB) SessionByHash(ctx context.Context, idHash string) (Session, error) {
	var s Session
	var created, seen string
	err := d.read.QueryRowContext(ctx,
		`SELECT id_hash, user_id, created_at, last_seen_at, address, user_agent FROM sessions WHERE id_hash = ?`, idHash).
		Scan(&s.IDHash, &s.UserID, &created, &seen, &s.Address, &s.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("session: %w", err)
	}
	s.CreatedAt, s.LastSeenAt = mustTime(created), mustTime(seen)
	return s, nil
}

// TouchSession records activity on a session.
func (d *DB) TouchSession(ctx context.Context, idHash string, now time.Time) error {
	if _, err := d.write.ExecContext(ctx, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", FormatTime(now), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends one session.
func (d *DB) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := d.write.ExecContext(ctx, "DELETE FROM sessions WHERE id_hash = ?", idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user and says how many there were.
func DeleteUserSessions(ctx context.Context, tx *sql.Tx, userID int64) (int64, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of user %d: %w", userID, err)
	}
	return res.RowsAffected()
}

// DeleteStaleSessions removes sessions idle since before idleBefore or created before createdBefore.
func (d *DB) DeleteStaleSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	res, err := d.write.ExecContext(ctx, "DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?",
		FormatTime(idleBefore), FormatTime(createdBefore))
	if err != nil {
		return 0, fmt.Errorf("delete stale sessions: %w", err)
	}
	return res.RowsAffected()
}
