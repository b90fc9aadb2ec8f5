package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Key rotation states, in the order a rotation goes through them.
const (
	RotationStarted   = "started"   // the key to replace is chosen
	RotationAdded     = "added"     // the new key is on the client
	RotationProved    = "proved"    // a token request signed by the new key succeeded
	RotationSwitched  = "switched"  // the person confirmed their systems use the new key
	RotationDone      = "done"      // the old key is deleted
	RotationCancelled = "cancelled" // given up; nothing was removed
)

// Rotation is one key rotation of a client.
type Rotation struct {
	ID            int64
	Env           string
	ClientID      string
	OldKID        string
	NewKID        string
	State         string
	StartedBy     int64
	StartedAt     time.Time
	UpdatedBy     int64
	UpdatedAt     time.Time
	ProvedAt      time.Time
	SwitchedAt    time.Time
	FinishedAt    time.Time
	ProofHow      string
	ProofAttempts int
	ProofAt       time.Time
	ProofResult   string
}

const rotationColumns = `id, env, client_id, old_kid, new_kid, state, coalesce(started_by, 0), started_at, coalesce(updated_by, 0),
	updated_at, coalesce(proved_at, ''), coalesce(switched_at, ''), coalesce(finished_at, ''), proof_how, proof_attempts,
	coalesce(proof_at, ''), proof_result`

// openRotation is the condition the unique index key_rotations_open covers.
const openRotation = "state NOT IN ('done', 'cancelled')"

func scanRotation(row interface{ Scan(...any) error }) (Rotation, error) {
	var r Rotation
	var started, updated, proved, switched, finished, proofAt string
	err := row.Scan(&r.ID, &r.Env, &r.ClientID, &r.OldKID, &r.NewKID, &r.State, &r.StartedBy, &started, &r.UpdatedBy,
		&updated, &proved, &switched, &finished, &r.ProofHow, &r.ProofAttempts, &proofAt, &r.ProofResult)
	if err != nil {
		return r, err
	}
	r.StartedAt, r.UpdatedAt, r.ProvedAt = mustTime(started), mustTime(updated), mustTime(proved)
	r.SwitchedAt, r.FinishedAt, r.ProofAt = mustTime(switched), mustTime(finished), mustTime(proofAt)
	return r, nil
}

// rotationTime stores the zero time as NULL.
func rotationTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return FormatTime(t)
}

func rotationActor(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// InsertRotation records a new rotation; ErrConflict when the client already has an open one.
func InsertRotation(ctx context.Context, tx *sql.Tx, r Rotation) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO key_rotations (env, client_id, old_kid, new_kid, state, started_by, started_at,
		updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Env, r.ClientID, r.OldKID, r.NewKID, r.State, rotationActor(r.StartedBy), FormatTime(r.StartedAt),
		rotationActor(r.StartedBy), FormatTime(r.StartedAt))
	if isUnique(err) {
		return 0, fmt.Errorf("insert rotation %s/%s: %w", r.Env, r.ClientID, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("insert rotation %s/%s: %w", r.Env, r.ClientID, err)
	}
	return res.LastInsertId()
}

func openRotationIn(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, env, clientID string) (Rotation, error) {
	r, err := scanRotation(q.QueryRowContext(ctx, "SELECT "+rotationColumns+" FROM key_rotations WHERE env = ? AND client_id = ? AND "+openRotation,
		env, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("open rotation of %s/%s: %w", env, clientID, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("open rotation of %s/%s: %w", env, clientID, err)
	}
	return r, nil
}

// OpenRotationTx reads a client's open rotation inside a write transaction; ErrNotFound when
// there is none.
func OpenRotationTx(ctx context.Context, tx *sql.Tx, env, clientID string) (Rotation, error) {
	return openRotationIn(ctx, tx, env, clientID)
}

// OpenRotation reads a client's open rotation; ErrNotFound when there is none.
func (d *DB) OpenRotation(ctx context.Context, env, clientID string) (Rotation, error) {
	return openRotationIn(ctx, d.read, env, clientID)
}

// Rotations lists a client's rotations, newest first, finished ones included.
func (d *DB) Rotations(ctx context.Context, env, clientID string, limit int) ([]Rotation, error) {
	rows, err := d.read.QueryContext(ctx, "SELECT "+rotationColumns+" FROM key_rotations WHERE env = ? AND client_id = ? ORDER BY id DESC LIMIT ?",
		env, clientID, limit)
	if err != nil {
		return nil, fmt.Errorf("rotations of %s/%s: %w", env, clientID, err)
	}
	defer rows.Close()
	var out []Rotation
	for rows.Next() {
		r, err := scanRotation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateRotation writes r's mutable fields, only while the rotation is still in state from;
// ErrNotFound when it moved on (or does not exist).
func UpdateRotation(ctx context.Context, tx *sql.Tx, r Rotation, from string) error {
	return updateOne(ctx, tx, fmt.Sprintf("update rotation %d from %s", r.ID, from),
		`UPDATE key_rotations SET new_kid = ?, state = ?, updated_by = ?, updated_at = ?, proved_at = ?, switched_at = ?,
		finished_at = ?, proof_how = ?, proof_attempts = ?, proof_at = ?, proof_result = ? WHERE id = ? AND state = ?`,
		r.NewKID, r.State, rotationActor(r.UpdatedBy), FormatTime(r.UpdatedAt), rotationTime(r.ProvedAt), rotationTime(r.SwitchedAt),
		rotationTime(r.FinishedAt), r.ProofHow, r.ProofAttempts, rotationTime(r.ProofAt), r.ProofResult, r.ID, from)
}
