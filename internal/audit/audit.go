// Package audit keeps the portal's append-only, hash-chained event log. Every event stores the
// hash of the event before it and a SHA-256 over its own canonical encoding (doc/audit.md), so
// an edited, removed or reordered row breaks the chain where it happened.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"portal/internal/store"
)

// Actions recorded by the foundation. Later features add their own beside them.
const (
	ActionSetup          = "setup.complete"
	ActionSignIn         = "auth.sign_in"
	ActionSignOut        = "auth.sign_out"
	ActionPasswordChange = "user.password_change"
	ActionPasswordLink   = "user.password_link"
	ActionUserCreate     = "user.create"
	ActionUserRole       = "user.role"
	ActionUserDisable    = "user.disable"
	ActionUserEnable     = "user.enable"
	ActionUserSessions   = "user.end_sessions"
	ActionUserApprove    = "user.approve"
	ActionUserUnlock     = "user.unlock"
	ActionTeamCreate     = "team.create"
	ActionTeamRename     = "team.rename"
	ActionMemberPut      = "team.member_put"
	ActionMemberRemove   = "team.member_remove"
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// GenesisHash is the prev_hash of the first event.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Event is one audited action. Details must never hold key material, tokens or passwords.
type Event struct {
	ID         int64
	At         time.Time
	ActorID    int64
	Actor      string // email or a system name such as "system" or "cli"
	Address    string
	Env        string
	TeamID     int64
	TargetType string
	Target     string
	Action     string
	Outcome    string
	RequestID  string
	Details    json.RawMessage
	PrevHash   string
	Hash       string
}

// Meta is who did something, from where, in which request: the parts of an event that come
// from the caller rather than from the action.
type Meta struct {
	ActorID   int64
	Actor     string
	Address   string
	RequestID string
}

// New builds an event from meta and the action's own fields; details are JSON-encoded.
func New(m Meta, action, outcome string, details any) Event {
	ev := Event{ActorID: m.ActorID, Actor: m.Actor, Address: m.Address, RequestID: m.RequestID, Action: action, Outcome: outcome}
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"encoding_error": err.Error()})
		}
		ev.Details = b
	}
	return ev
}

// canonical is the encoding the hash covers: a JSON array of every field in a fixed order,
// starting with a version tag, so the hash never depends on map order or column order.
func canonical(ev Event) ([]byte, error) {
	details := string(ev.Details)
	if details == "" {
		details = "{}"
	}
	return json.Marshal([]any{
		"v1", ev.ID, store.FormatTime(ev.At), ev.ActorID, ev.Actor, ev.Address, ev.Env, ev.TeamID,
		ev.TargetType, ev.Target, ev.Action, ev.Outcome, ev.RequestID, details, ev.PrevHash,
	})
}

// HashOf computes an event's hash from its fields (including PrevHash, excluding Hash).
func HashOf(ev Event) (string, error) {
	b, err := canonical(ev)
	if err != nil {
		return "", fmt.Errorf("encode event: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Record appends ev inside tx, so it commits or rolls back with the change it describes.
// The write transaction serialises appends, which keeps the chain linear.
func Record(ctx context.Context, tx *sql.Tx, ev Event, now time.Time) (Event, error) {
	if ev.Action == "" || ev.Outcome == "" {
		return ev, errors.New("audit event needs an action and an outcome")
	}
	if ev.At.IsZero() {
		ev.At = now
	}
	ev.At = ev.At.UTC().Truncate(time.Microsecond)
	if len(ev.Details) == 0 {
		ev.Details = json.RawMessage("{}")
	}
	var lastID int64
	var lastHash string
	err := tx.QueryRowContext(ctx, "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").Scan(&lastID, &lastHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		lastID, lastHash = 0, GenesisHash
	case err != nil:
		return ev, fmt.Errorf("audit chain head: %w", err)
	}
	ev.ID, ev.PrevHash = lastID+1, lastHash
	if ev.Hash, err = HashOf(ev); err != nil {
		return ev, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_events
		(id, at, actor_id, actor, address, env, team_id, target_type, target, action, outcome, request_id, details, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.ID, store.FormatTime(ev.At), ev.ActorID, ev.Actor, ev.Address, ev.Env, ev.TeamID, ev.TargetType, ev.Target,
		ev.Action, ev.Outcome, ev.RequestID, string(ev.Details), ev.PrevHash, ev.Hash)
	if err != nil {
		return ev, fmt.Errorf("append audit event %s: %w", ev.Action, err)
	}
	return ev, nil
}

// Log writes events in transactions of their own and reads them back.
type Log struct {
	db       *store.DB
	now      func() time.Time
	incBatch int // events one VerifyIncremental call checks at most
}

// NewLog returns a Log over db.
func NewLog(db *store.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now, incBatch: IncrementalBatch}
}

// Append records an event that has no other write to share a transaction with, such as a
// failed sign-in.
func (l *Log) Append(ctx context.Context, ev Event) error {
	return l.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := Record(ctx, tx, ev, l.now())
		return err
	})
}

const eventColumns = "id, at, actor_id, actor, address, env, team_id, target_type, target, action, outcome, request_id, details, prev_hash, hash"

func scanEvent(row interface{ Scan(...any) error }) (Event, error) {
	var ev Event
	var at, details string
	if err := row.Scan(&ev.ID, &at, &ev.ActorID, &ev.Actor, &ev.Address, &ev.Env, &ev.TeamID, &ev.TargetType, &ev.Target,
		&ev.Action, &ev.Outcome, &ev.RequestID, &details, &ev.PrevHash, &ev.Hash); err != nil {
		return ev, err
	}
	t, err := store.ParseTime(at)
	if err != nil {
		return ev, err
	}
	ev.At, ev.Details = t, json.RawMessage(details)
	return ev, nil
}

// Recent returns the newest events first, at most limit, optionally only one action prefix.
func (l *Log) Recent(ctx context.Context, limit int) ([]Event, error) {
	rows, err := l.db.Reader().QueryContext(ctx, "SELECT "+eventColumns+" FROM audit_events ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("recent audit events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("recent audit events: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// ForTarget returns the newest events about one target in one environment, at most limit.
func (l *Log) ForTarget(ctx context.Context, env, target string, limit int) ([]Event, error) {
	rows, err := l.db.Reader().QueryContext(ctx, "SELECT "+eventColumns+
		" FROM audit_events WHERE env = ? AND target = ? ORDER BY id DESC LIMIT ?", env, target, limit)
	if err != nil {
		return nil, fmt.Errorf("audit events of %s/%s: %w", env, target, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("audit events of %s/%s: %w", env, target, err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// BrokenError names the first event at which the chain does not hold.
type BrokenError struct {
	ID     int64
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit chain broken at event %d: %s", e.ID, e.Reason)
}

// VerifyResult says how much of the chain was checked.
type VerifyResult struct {
	Events   int64
	LastID   int64
	LastHash string
}

// Verify walks the whole chain from the first event and returns a *BrokenError at the first
// event whose hash, link or sequence does not hold.
func (l *Log) Verify(ctx context.Context) (VerifyResult, error) {
	return l.VerifyFrom(ctx, 0, GenesisHash)
}

// VerifyFrom checks the events after afterID, whose hash must be prevHash (a checkpoint).
func (l *Log) VerifyFrom(ctx context.Context, afterID int64, prevHash string) (VerifyResult, error) {
	return l.verifyFrom(ctx, afterID, prevHash, -1)
}

// verifyFrom is VerifyFrom over at most limit events (all when limit is negative).
func (l *Log) verifyFrom(ctx context.Context, afterID int64, prevHash string, limit int) (VerifyResult, error) {
	res := VerifyResult{LastID: afterID, LastHash: prevHash}
	rows, err := l.db.Reader().QueryContext(ctx, "SELECT "+eventColumns+" FROM audit_events WHERE id > ? ORDER BY id LIMIT ?", afterID, limit)
	if err != nil {
		return res, fmt.Errorf("verify audit chain: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return res, &BrokenError{ID: res.LastID + 1, Reason: "unreadable row: " + err.Error()}
		}
		if ev.ID != res.LastID+1 {
			return res, &BrokenError{ID: res.LastID + 1, Reason: fmt.Sprintf("missing (next present is %d)", ev.ID)}
		}
		if ev.PrevHash != res.LastHash {
			return res, &BrokenError{ID: ev.ID, Reason: "does not link to the event before it"}
		}
		h, err := HashOf(ev)
		if err != nil {
			return res, &BrokenError{ID: ev.ID, Reason: err.Error()}
		}
		if h != ev.Hash {
			return res, &BrokenError{ID: ev.ID, Reason: "content does not match its hash (changed after it was written)"}
		}
		res.Events++
		res.LastID, res.LastHash = ev.ID, ev.Hash
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("verify audit chain: %w", err)
	}
	return res, nil
}

// Head is a point of the chain as published: an event's number and hash. Heads collected
// outside the database (logs, monitoring) catch a rewrite that recomputes every hash.
type Head struct {
	ID   int64  `json:"id"`
	Hash string `json:"hash"`
}

// Head returns the chain's last event; ID 0 and the genesis hash while it is empty.
func (l *Log) Head(ctx context.Context) (Head, error) {
	h := Head{Hash: GenesisHash}
	err := l.db.Reader().QueryRowContext(ctx, "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").Scan(&h.ID, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Head{Hash: GenesisHash}, nil
	}
	if err != nil {
		return h, fmt.Errorf("audit chain head: %w", err)
	}
	return h, nil
}

// CheckHeads compares published heads with the chain: each head's event must exist with
// exactly that hash. It returns one line per head that does not hold.
func (l *Log) CheckHeads(ctx context.Context, heads []Head) ([]string, error) {
	last, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, h := range heads {
		if h.ID == 0 {
			continue
		}
		if h.ID > last.ID {
			problems = append(problems, fmt.Sprintf("event %d was published but the chain ends at %d: events were removed (truncated)", h.ID, last.ID))
			continue
		}
		var hash string
		err := l.db.Reader().QueryRowContext(ctx, "SELECT hash FROM audit_events WHERE id = ?", h.ID).Scan(&hash)
		if errors.Is(err, sql.ErrNoRows) {
			problems = append(problems, fmt.Sprintf("event %d was published but is missing from the chain", h.ID))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit event %d: %w", h.ID, err)
		}
		if hash != h.Hash {
			problems = append(problems, fmt.Sprintf("event %d has hash %s, but %s was published: the chain was rewritten up to it", h.ID, hash, h.Hash))
		}
	}
	return problems, nil
}
