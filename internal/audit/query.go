package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"portal/internal/store"
)

// Filter selects events. Zero members do not filter.
type Filter struct {
	From, To time.Time
	ActorID  int64
	Actor    string // exact actor name (an email, "system", "cli")
	// Teams limits the events to these teams' (nil: every event). A team owner who is not an
	// administrator sees only their teams' events.
	Teams   []int64
	TeamID  int64
	Env     string
	Target  string
	Action  string // an exact action, or a prefix ending in "." such as "integration."
	Outcome string
	Before  int64 // keyset paging: only events with a smaller id
	Limit   int   // default 50; Export ignores it

	minID, maxID int64 // id bounds of the time range, resolved by bound
}

// bound turns the time range into id bounds: events are appended in time order, so the range
// is (nearly) an id range, which the primary key serves in the order pages are read. The time
// conditions stay, so an event whose clock stepped back is still judged by its time.
func (l *Log) bound(ctx context.Context, f Filter) (Filter, bool, error) {
	q := l.db.Reader()
	if !f.From.IsZero() {
		var id sql.NullInt64
		if err := q.QueryRowContext(ctx, "SELECT min(id) FROM audit_events WHERE at >= ?", store.FormatTime(f.From.Add(-time.Hour))).Scan(&id); err != nil {
			return f, false, fmt.Errorf("audit time range: %w", err)
		}
		if !id.Valid {
			return f, false, nil
		}
		f.minID = id.Int64
	}
	if !f.To.IsZero() {
		var id sql.NullInt64
		if err := q.QueryRowContext(ctx, "SELECT max(id) FROM audit_events WHERE at < ?", store.FormatTime(f.To.Add(time.Hour))).Scan(&id); err != nil {
			return f, false, fmt.Errorf("audit time range: %w", err)
		}
		if !id.Valid {
			return f, false, nil
		}
		f.maxID = id.Int64
	}
	return f, true, nil
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(c string, a ...any) { conds = append(conds, c); args = append(args, a...) }
	if f.Teams != nil {
		if len(f.Teams) == 0 {
			add("0")
		} else {
			add("team_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.Teams)), ",")+")", anys(f.Teams)...)
		}
	}
	// Time bounds are checked on the rows (unary + keeps SQLite off the at index, whose order is
	// not the id order a page needs); Query turns them into id bounds, which the primary key serves.
	if !f.From.IsZero() {
		add("+at >= ?", store.FormatTime(f.From))
	}
	if !f.To.IsZero() {
		add("+at < ?", store.FormatTime(f.To))
	}
	if f.minID > 0 {
		add("id >= ?", f.minID)
	}
	if f.maxID > 0 {
		add("id <= ?", f.maxID)
	}
	if f.ActorID != 0 {
		add("actor_id = ?", f.ActorID)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.TeamID != 0 {
		add("team_id = ?", f.TeamID)
	}
	switch {
	case f.Env != "" && f.Target != "":
		add("env = ?", f.Env) // with the target: the (env, target, id) index serves both
	case f.Env != "":
		add("+env = ?", f.Env) // alone it matches half the log: scan newest first instead
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	switch {
	case strings.HasSuffix(f.Action, "."):
		// Action names are lower-case letters, digits, '.' and '_', all below '~'. A prefix
		// matches many actions, so the (action, id) index would need a sort: scan by id.
		add("+action >= ? AND +action < ?", f.Action, f.Action+"~")
	case f.Action != "":
		add("action = ?", f.Action)
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func anys(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// Query returns a page of events matching f, newest first. Paging is by id (keyset), so a
// page deep in a million events costs what the first one does.
func (l *Log) Query(ctx context.Context, f Filter) ([]Event, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	f, any, err := l.bound(ctx, f)
	if err != nil || !any {
		return nil, err
	}
	where, args := f.where()
	rows, err := l.db.Reader().QueryContext(ctx, "SELECT "+eventColumns+" FROM audit_events"+where+" ORDER BY id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Export calls fn for every event matching f, newest first, reading in batches so memory stays
// flat however many events match. It stops at fn's first error.
func (l *Log) Export(ctx context.Context, f Filter, fn func(Event) error) error {
	f.Limit = 500
	for {
		page, err := l.Query(ctx, f)
		if err != nil {
			return err
		}
		for _, ev := range page {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(page) < f.Limit {
			return nil
		}
		f.Before = page[len(page)-1].ID
	}
}

// ChainState is the audit chain's state as the last incremental verification found it.
type ChainState struct {
	LastID     int64 // the newest verified event
	VerifiedAt time.Time
	Broken     *BrokenError // set when the events after the checkpoint do not verify
	Behind     bool         // more events than one call checks wait after LastID
}

// IncrementalBatch bounds the events one VerifyIncremental call checks (about a second's
// work), so a page never waits for a long backlog, such as after an upgrade or a bulk import:
// each call moves the checkpoint on, and Behind says there is more.
const IncrementalBatch = 50_000

// VerifyIncremental verifies the events appended since the stored checkpoint, at most
// IncrementalBatch of them, and moves the checkpoint forward: a page shows the chain's state
// without walking a million events.
func (l *Log) VerifyIncremental(ctx context.Context) (ChainState, error) {
	var lastID int64
	lastHash := GenesisHash
	err := l.db.Reader().QueryRowContext(ctx, "SELECT last_id, last_hash FROM audit_checkpoint WHERE id = 1").Scan(&lastID, &lastHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return ChainState{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	res, err := l.verifyFrom(ctx, lastID, lastHash, l.incBatch)
	var broken *BrokenError
	if errors.As(err, &broken) {
		return ChainState{LastID: res.LastID, VerifiedAt: l.now(), Broken: broken}, nil
	}
	if err != nil {
		return ChainState{}, err
	}
	now := l.now()
	if res.LastID > lastID {
		err = l.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoint (id, last_id, last_hash, verified_at) VALUES (1, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash, verified_at = excluded.verified_at
				WHERE excluded.last_id > audit_checkpoint.last_id`, res.LastID, res.LastHash, store.FormatTime(now))
			return err
		})
		if err != nil {
			return ChainState{}, fmt.Errorf("store audit checkpoint: %w", err)
		}
	}
	return ChainState{LastID: res.LastID, VerifiedAt: now, Behind: res.Events == int64(l.incBatch)}, nil
}

// Change is one field that differs between an event's before and after.
type Change struct {
	Field  string
	Before string
	After  string
}

// Changes reads what an event changed from its details: a "changes" list when it has one,
// otherwise the top-level fields of "before" and "after" that differ.
func Changes(details json.RawMessage) []Change {
	var d struct {
		Changes []struct {
			Field  string `json:"field"`
			Before string `json:"before"`
			After  string `json:"after"`
		} `json:"changes"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	}
	if json.Unmarshal(details, &d) != nil {
		return nil
	}
	var out []Change
	for _, c := range d.Changes {
		out = append(out, Change{Field: c.Field, Before: c.Before, After: c.After})
	}
	if len(out) > 0 || len(d.Before)+len(d.After) == 0 {
		return out
	}
	var before, after map[string]json.RawMessage
	_ = json.Unmarshal(d.Before, &before)
	_ = json.Unmarshal(d.After, &after)
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if k == "last_updated" {
			continue
		}
		b, a := compactJSON(before[k]), compactJSON(after[k])
		if a != b {
			out = append(out, Change{Field: k, Before: b, After: a})
		}
	}
	return out
}

func compactJSON(r json.RawMessage) string {
	if len(r) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(r, &v) != nil {
		return string(r)
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
