package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"portal/internal/store"
)

// Batch appends many events inside one transaction with one prepared statement and the chain
// head kept in memory, for bulk loads such as the benchmark's seeding; the events and their
// chain are exactly what Record would write one by one. Nothing else may append to the trail
// in tx while a Batch is in use (the write transaction already guarantees that).
type Batch struct {
	insert   *sql.Stmt
	lastID   int64
	lastHash string
}

// NewBatch reads the chain head and prepares the insert in tx; Close releases it.
func NewBatch(ctx context.Context, tx *sql.Tx) (*Batch, error) {
	b := &Batch{}
	err := tx.QueryRowContext(ctx, "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").Scan(&b.lastID, &b.lastHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		b.lastID, b.lastHash = 0, GenesisHash
	case err != nil:
		return nil, fmt.Errorf("audit chain head: %w", err)
	}
	b.insert, err = tx.PrepareContext(ctx, `INSERT INTO audit_events
		(id, at, actor_id, actor, address, env, team_id, target_type, target, action, outcome, request_id, details, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("prepare audit batch: %w", err)
	}
	return b, nil
}

// Append adds ev to the chain, dated now unless it carries its own time.
func (b *Batch) Append(ctx context.Context, ev Event, now time.Time) (Event, error) {
	if ev.Action == "" || ev.Outcome == "" {
		return ev, errors.New("audit event needs an action and an outcome")
	}
	if ev.At.IsZero() {
		ev.At = now
	}
	ev.At = ev.At.UTC().Truncate(time.Microsecond)
	if len(ev.Details) == 0 {
		ev.Details = []byte("{}")
	}
	ev.ID, ev.PrevHash = b.lastID+1, b.lastHash
	var err error
	if ev.Hash, err = HashOf(ev); err != nil {
		return ev, err
	}
	_, err = b.insert.ExecContext(ctx, ev.ID, store.FormatTime(ev.At), ev.ActorID, ev.Actor, ev.Address, ev.Env, ev.TeamID,
		ev.TargetType, ev.Target, ev.Action, ev.Outcome, ev.RequestID, string(ev.Details), ev.PrevHash, ev.Hash)
	if err != nil {
		return ev, fmt.Errorf("append audit event %s: %w", ev.Action, err)
	}
	b.lastID, b.lastHash = ev.ID, ev.Hash
	return ev, nil
}

// Close releases the prepared statement.
func (b *Batch) Close() error { return b.insert.Close() }
