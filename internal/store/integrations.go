package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Integration is a row of the integrations mirror.
type Integration struct {
	Env           string
	ClientID      string
	Name          string
	Description   string
	Scopes        []string
	Active        bool
	TeamID        int64 // 0 when unowned
	TeamName      string
	CreatedBy     int64
	Raw           string
	JWKS          string
	KeyCount      int
	NextKeyExpiry time.Time // zero without keys
	Drift         string    // JSON, "" when none
	FirstSeen     time.Time
	LastChange    time.Time
	SyncedAt      time.Time
}

const integrationColumns = `i.env, i.client_id, i.name, i.description, i.scopes, i.active, coalesce(i.team_id, 0),
	coalesce(t.name, ''), coalesce(i.created_by, 0), d.raw, d.jwks, i.key_count, coalesce(i.next_key_expiry, ''),
	coalesce(d.drift, ''), i.first_seen, i.last_change, i.synced_at`

const integrationFrom = ` FROM integrations i JOIN integration_docs d ON d.env = i.env AND d.client_id = i.client_id
	LEFT JOIN teams t ON t.id = i.team_id`

// listColumns are the narrow columns a list shows; drift only says whether there is one.
const listColumns = `i.env, i.client_id, i.name, i.description, i.scopes, i.active, coalesce(i.team_id, 0),
	coalesce(t.name, ''), coalesce(i.created_by, 0), '', '', i.key_count, coalesce(i.next_key_expiry, ''),
	CASE WHEN i.drifted THEN '{}' ELSE '' END, i.first_seen, i.last_change, i.synced_at`

func scanIntegration(row interface{ Scan(...any) error }) (Integration, error) {
	var it Integration
	var scopes, expiry, first, change, synced string
	err := row.Scan(&it.Env, &it.ClientID, &it.Name, &it.Description, &scopes, &it.Active, &it.TeamID, &it.TeamName,
		&it.CreatedBy, &it.Raw, &it.JWKS, &it.KeyCount, &expiry, &it.Drift, &first, &change, &synced)
	if err != nil {
		return it, err
	}
	if scopes != "" {
		it.Scopes = strings.Split(scopes, " ")
	}
	if expiry != "" {
		it.NextKeyExpiry = mustTime(expiry)
	}
	it.FirstSeen, it.LastChange, it.SyncedAt = mustTime(first), mustTime(change), mustTime(synced)
	return it, nil
}

// integrationSearch is what a search matches: name, client id, description and scopes.
func integrationSearch(it Integration) string {
	return strings.ToLower(strings.Join([]string{it.Name, it.ClientID, it.Description, strings.Join(it.Scopes, " ")}, "\n"))
}

const (
	putIntegrationSQL = `INSERT INTO integrations (env, client_id, name, description, scopes, active, team_id,
		created_by, key_count, next_key_expiry, drifted, search, first_seen, last_change, synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (env, client_id) DO UPDATE SET name = excluded.name, description = excluded.description,
		scopes = excluded.scopes, active = excluded.active, team_id = excluded.team_id, created_by = excluded.created_by,
		key_count = excluded.key_count, next_key_expiry = excluded.next_key_expiry, drifted = excluded.drifted,
		search = excluded.search, last_change = excluded.last_change, synced_at = excluded.synced_at`
	putIntegrationDocSQL = `INSERT INTO integration_docs (env, client_id, raw, jwks, drift) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (env, client_id) DO UPDATE SET raw = excluded.raw, jwks = excluded.jwks, drift = excluded.drift`
	seeKeySQL = `INSERT INTO integration_keys_seen (env, client_id, kid, first_seen) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
)

// IntegrationWriter writes many mirror rows in one transaction with statements prepared once,
// as a sync of thousands of clients does.
type IntegrationWriter struct {
	put, doc, seen *sql.Stmt
}

// PrepareIntegrationWriter prepares the writer's statements in tx; Close releases them.
func PrepareIntegrationWriter(ctx context.Context, tx *sql.Tx) (*IntegrationWriter, error) {
	var w IntegrationWriter
	var err error
	if w.put, err = tx.PrepareContext(ctx, putIntegrationSQL); err != nil {
		return nil, fmt.Errorf("prepare integration writer: %w", err)
	}
	if w.doc, err = tx.PrepareContext(ctx, putIntegrationDocSQL); err != nil {
		w.Close()
		return nil, fmt.Errorf("prepare integration writer: %w", err)
	}
	if w.seen, err = tx.PrepareContext(ctx, seeKeySQL); err != nil {
		w.Close()
		return nil, fmt.Errorf("prepare integration writer: %w", err)
	}
	return &w, nil
}

// Close releases the prepared statements.
func (w *IntegrationWriter) Close() {
	for _, st := range []*sql.Stmt{w.put, w.doc, w.seen} {
		if st != nil {
			st.Close()
		}
	}
}

// Put inserts or replaces a mirror row. FirstSeen is kept from an existing row.
func (w *IntegrationWriter) Put(ctx context.Context, it Integration) error {
	var team, createdBy, expiry, drift any
	if it.TeamID != 0 {
		team = it.TeamID
	}
	if it.CreatedBy != 0 {
		createdBy = it.CreatedBy
	}
	if !it.NextKeyExpiry.IsZero() {
		expiry = FormatTime(it.NextKeyExpiry)
	}
	if it.Drift != "" {
		drift = it.Drift
	}
	_, err := w.put.ExecContext(ctx, it.Env, it.ClientID, it.Name, it.Description, strings.Join(it.Scopes, " "), it.Active, team,
		createdBy, it.KeyCount, expiry, it.Drift != "", integrationSearch(it), FormatTime(it.FirstSeen),
		FormatTime(it.LastChange), FormatTime(it.SyncedAt))
	if err != nil {
		return fmt.Errorf("put integration %s/%s: %w", it.Env, it.ClientID, err)
	}
	if _, err = w.doc.ExecContext(ctx, it.Env, it.ClientID, it.Raw, it.JWKS, drift); err != nil {
		return fmt.Errorf("put integration document %s/%s: %w", it.Env, it.ClientID, err)
	}
	return nil
}

// SeeKeys records the first sighting of each kid; known kids keep their time.
func (w *IntegrationWriter) SeeKeys(ctx context.Context, env, clientID string, kids []string, now time.Time) error {
	for _, kid := range kids {
		if _, err := w.seen.ExecContext(ctx, env, clientID, kid, FormatTime(now)); err != nil {
			return fmt.Errorf("see key %s on %s/%s: %w", kid, env, clientID, err)
		}
	}
	return nil
}

// PutIntegration inserts or replaces one mirror row.
func PutIntegration(ctx context.Context, tx *sql.Tx, it Integration) error {
	w, err := PrepareIntegrationWriter(ctx, tx)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Put(ctx, it)
}

// Integration reads one mirror row.
func (d *DB) Integration(ctx context.Context, env, clientID string) (Integration, error) {
	return integration(ctx, d.read, env, clientID)
}

// IntegrationTx reads one mirror row inside a write transaction.
func IntegrationTx(ctx context.Context, tx *sql.Tx, env, clientID string) (Integration, error) {
	return integration(ctx, tx, env, clientID)
}

func integration(ctx context.Context, q queryRower, env, clientID string) (Integration, error) {
	it, err := scanIntegration(q.QueryRowContext(ctx, "SELECT "+integrationColumns+integrationFrom+
		" WHERE i.env = ? AND i.client_id = ?", env, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return it, fmt.Errorf("integration %s/%s: %w", env, clientID, ErrNotFound)
	}
	if err != nil {
		return it, fmt.Errorf("integration %s/%s: %w", env, clientID, err)
	}
	return it, nil
}

// Integrations reads every mirror row of an environment, keyed by client id, for a sync.
func IntegrationsTx(ctx context.Context, tx *sql.Tx, env string) (map[string]Integration, error) {
	rows, err := tx.QueryContext(ctx, "SELECT "+integrationColumns+integrationFrom+" WHERE i.env = ?", env)
	if err != nil {
		return nil, fmt.Errorf("integrations of %s: %w", env, err)
	}
	defer rows.Close()
	out := map[string]Integration{}
	for rows.Next() {
		it, err := scanIntegration(rows)
		if err != nil {
			return nil, fmt.Errorf("integrations of %s: %w", env, err)
		}
		out[it.ClientID] = it
	}
	return out, rows.Err()
}

// Integration list sort orders.
const (
	SortName       = "name"
	SortClientID   = "client_id"
	SortTeam       = "team"
	SortKeyExpiry  = "expiry"
	SortLastChange = "changed"
)

// IntegrationQuery selects and orders a page of one environment's mirror.
type IntegrationQuery struct {
	Env            string
	Text           string  // substring of name, client id, description or a scope
	VisibleTeams   []int64 // nil: every integration; otherwise only these teams'
	Active         *bool
	TeamID         int64
	Scope          string // exact scope name
	NoKeys         bool
	ExpiringBefore time.Time
	Unowned        bool
	Privileged     bool // only clients with a privileged-scope finding
	Drifted        bool // only clients changed outside the portal
	Sort           string
	Desc           bool
	Limit, Offset  int
}

// ListIntegrations returns one page of q and the number of rows q matches.
func (d *DB) ListIntegrations(ctx context.Context, q IntegrationQuery) ([]Integration, int, error) {
	where := []string{"i.env = ?"}
	args := []any{q.Env}
	if q.VisibleTeams != nil {
		if len(q.VisibleTeams) == 0 {
			return nil, 0, nil
		}
		where = append(where, "i.team_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.VisibleTeams)), ",")+")")
		for _, id := range q.VisibleTeams {
			args = append(args, id)
		}
	}
	if t := strings.ToLower(strings.TrimSpace(q.Text)); t != "" {
		where = append(where, "instr(i.search, ?) > 0")
		args = append(args, t)
	}
	if q.Active != nil {
		where = append(where, "i.active = ?")
		args = append(args, *q.Active)
	}
	if q.TeamID != 0 {
		where = append(where, "i.team_id = ?")
		args = append(args, q.TeamID)
	}
	if q.Scope != "" {
		where = append(where, "instr(' ' || i.scopes || ' ', ?) > 0")
		args = append(args, " "+q.Scope+" ")
	}
	if q.NoKeys {
		where = append(where, "i.key_count = 0")
	}
	if !q.ExpiringBefore.IsZero() {
		where = append(where, "i.next_key_expiry IS NOT NULL AND i.next_key_expiry < ?")
		args = append(args, FormatTime(q.ExpiringBefore))
	}
	if q.Unowned {
		where = append(where, "i.team_id IS NULL")
	}
	if q.Drifted {
		where = append(where, "i.drifted")
	}
	if q.Privileged {
		where = append(where, "EXISTS (SELECT 1 FROM privileged_findings f WHERE f.env = i.env AND f.client_id = i.client_id)")
	}
	cond := " WHERE " + strings.Join(where, " AND ")

	var total int
	if err := d.read.QueryRowContext(ctx, "SELECT count(*) FROM integrations i"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count integrations: %w", err)
	}
	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	var order string
	switch q.Sort {
	case SortClientID:
		order = "i.client_id" + dir
	case SortTeam:
		order = "t.name IS NULL" + dir + ", t.name COLLATE NOCASE" + dir + ", i.name COLLATE NOCASE, i.client_id"
	case SortKeyExpiry:
		order = "i.next_key_expiry IS NULL, i.next_key_expiry" + dir + ", i.client_id"
	case SortLastChange:
		order = "i.last_change" + dir + ", i.client_id"
	default:
		order = "i.name COLLATE NOCASE" + dir + ", i.client_id" + dir
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	rows, err := d.read.QueryContext(ctx, "SELECT "+listColumns+" FROM integrations i LEFT JOIN teams t ON t.id = i.team_id"+
		cond+" ORDER BY "+order+" LIMIT ? OFFSET ?", append(args, limit, q.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list integrations: %w", err)
	}
	defer rows.Close()
	var out []Integration
	for rows.Next() {
		it, err := scanIntegration(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list integrations: %w", err)
		}
		out = append(out, it)
	}
	return out, total, rows.Err()
}

// SetIntegrationTeam gives an integration an owning team.
func SetIntegrationTeam(ctx context.Context, tx *sql.Tx, env, clientID string, teamID int64) error {
	return updateOne(ctx, tx, fmt.Sprintf("set team of %s/%s", env, clientID),
		"UPDATE integrations SET team_id = ? WHERE env = ? AND client_id = ?", teamID, env, clientID)
}

// ClearIntegrationDrift forgets an integration's drift finding.
func ClearIntegrationDrift(ctx context.Context, tx *sql.Tx, env, clientID string) error {
	if _, err := tx.ExecContext(ctx, "UPDATE integration_docs SET drift = NULL WHERE env = ? AND client_id = ?", env, clientID); err != nil {
		return fmt.Errorf("clear drift of %s/%s: %w", env, clientID, err)
	}
	return updateOne(ctx, tx, fmt.Sprintf("clear drift of %s/%s", env, clientID),
		"UPDATE integrations SET drifted = 0 WHERE env = ? AND client_id = ?", env, clientID)
}

// KeysFirstSeen returns when each kid of a client was first seen.
func (d *DB) KeysFirstSeen(ctx context.Context, env, clientID string) (map[string]time.Time, error) {
	rows, err := d.read.QueryContext(ctx, "SELECT kid, first_seen FROM integration_keys_seen WHERE env = ? AND client_id = ?", env, clientID)
	if err != nil {
		return nil, fmt.Errorf("keys first seen: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var kid, at string
		if err := rows.Scan(&kid, &at); err != nil {
			return nil, err
		}
		out[kid] = mustTime(at)
	}
	return out, rows.Err()
}

// SeeKeys records the first sighting of each kid; known kids keep their time.
func SeeKeys(ctx context.Context, tx *sql.Tx, env, clientID string, kids []string, now time.Time) error {
	w, err := PrepareIntegrationWriter(ctx, tx)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.SeeKeys(ctx, env, clientID, kids, now)
}

// Intent states.
const (
	IntentOpen   = "open"
	IntentDone   = "done"
	IntentFailed = "failed"
)

// Intent is a change recorded before it goes upstream.
type Intent struct {
	ID             int64
	Env            string
	IdempotencyKey string
	Action         string
	ActorID        int64
	TeamID         int64
	Request        string
	State          string
	ClientID       string
	Message        string
	CreatedAt      time.Time
}

const intentColumns = "id, env, idempotency_key, action, actor_id, coalesce(team_id, 0), request, state, coalesce(client_id, ''), message, created_at"

func scanIntent(row interface{ Scan(...any) error }) (Intent, error) {
	var in Intent
	var created string
	err := row.Scan(&in.ID, &in.Env, &in.IdempotencyKey, &in.Action, &in.ActorID, &in.TeamID, &in.Request, &in.State,
		&in.ClientID, &in.Message, &created)
	in.CreatedAt = mustTime(created)
	return in, err
}

// InsertIntent records an open intent; ErrConflict when its idempotency key was used before.
// TeamID 0 (a change to an unowned integration) is stored as no team.
func InsertIntent(ctx context.Context, tx *sql.Tx, in Intent) (int64, error) {
	var team any
	if in.TeamID != 0 {
		team = in.TeamID
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO integration_intents (env, idempotency_key, action, actor_id, team_id, request, state, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 'open', ?)`, in.Env, in.IdempotencyKey, in.Action, in.ActorID, team, in.Request, FormatTime(in.CreatedAt))
	if isUnique(err) {
		return 0, fmt.Errorf("insert intent: %w", ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("insert intent: %w", err)
	}
	return res.LastInsertId()
}

// IntentByKeyTx finds an intent by its idempotency key.
func IntentByKeyTx(ctx context.Context, tx *sql.Tx, env, key string) (Intent, error) {
	in, err := scanIntent(tx.QueryRowContext(ctx, "SELECT "+intentColumns+" FROM integration_intents WHERE env = ? AND idempotency_key = ?", env, key))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("intent %s: %w", key, ErrNotFound)
	}
	return in, err
}

// IntentByKey finds an intent by its idempotency key, outside any write transaction.
func (d *DB) IntentByKey(ctx context.Context, env, key string) (Intent, error) {
	in, err := scanIntent(d.read.QueryRowContext(ctx, "SELECT "+intentColumns+" FROM integration_intents WHERE env = ? AND idempotency_key = ?", env, key))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("intent %s: %w", key, ErrNotFound)
	}
	return in, err
}

// OpenIntentsTx lists an environment's open intents, oldest first.
func OpenIntentsTx(ctx context.Context, tx *sql.Tx, env string) ([]Intent, error) {
	rows, err := tx.QueryContext(ctx, "SELECT "+intentColumns+" FROM integration_intents WHERE env = ? AND state = 'open' ORDER BY id", env)
	if err != nil {
		return nil, fmt.Errorf("open intents: %w", err)
	}
	defer rows.Close()
	var out []Intent
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// ReopenIntent opens a failed intent again for a new attempt under the same key: who asks,
// what, and when are the new attempt's.
func ReopenIntent(ctx context.Context, tx *sql.Tx, in Intent) error {
	var team any
	if in.TeamID != 0 {
		team = in.TeamID
	}
	return updateOne(ctx, tx, fmt.Sprintf("reopen intent %d", in.ID),
		`UPDATE integration_intents SET state = 'open', action = ?, actor_id = ?, team_id = ?, request = ?, client_id = NULL,
		message = '', created_at = ?, completed_at = NULL WHERE id = ? AND state = 'failed'`,
		in.Action, in.ActorID, team, in.Request, FormatTime(in.CreatedAt), in.ID)
}

// FinishIntent closes an open intent as done (with its client id) or failed (with a message).
func FinishIntent(ctx context.Context, tx *sql.Tx, id int64, state, clientID, message string, now time.Time) error {
	var cid any
	if clientID != "" {
		cid = clientID
	}
	return updateOne(ctx, tx, fmt.Sprintf("finish intent %d", id),
		"UPDATE integration_intents SET state = ?, client_id = ?, message = ?, completed_at = ? WHERE id = ? AND state = 'open'",
		state, cid, message, FormatTime(now), id)
}

// ForgetIntegration removes a client from the mirror (its row, documents and key sightings),
// for a client the portal does not manage.
func ForgetIntegration(ctx context.Context, tx *sql.Tx, env, clientID string) error {
	for _, q := range []string{
		"DELETE FROM integrations WHERE env = ? AND client_id = ?",
		"DELETE FROM integration_docs WHERE env = ? AND client_id = ?",
		"DELETE FROM integration_keys_seen WHERE env = ? AND client_id = ?",
	} {
		if _, err := tx.ExecContext(ctx, q, env, clientID); err != nil {
			return fmt.Errorf("forget integration %s/%s: %w", env, clientID, err)
		}
	}
	return nil
}

// SyncState is the outcome of an environment's last sync.
type SyncState struct {
	Env        string
	StartedAt  time.Time
	FinishedAt time.Time
	OK         bool
	Message    string
	Clients    int
	LastOKAt   time.Time
	// OtherKinds counts the clients of other integration types (idporten, krr, ...) the listing
	// found and the mirror leaves out. Nil when this sync did not list them: the previous
	// count is kept.
	OtherKinds map[string]int
}

// PutSyncState records a sync's outcome; LastOKAt is kept from before when this one failed.
func PutSyncState(ctx context.Context, tx *sql.Tx, s SyncState) error {
	var lastOK any
	if s.OK {
		lastOK = FormatTime(s.FinishedAt)
	}
	var other any
	if s.OtherKinds != nil {
		b, err := json.Marshal(s.OtherKinds)
		if err != nil {
			return fmt.Errorf("put sync state of %s: %w", s.Env, err)
		}
		other = string(b)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO integration_syncs (env, started_at, finished_at, ok, message, clients, last_ok_at, other_kinds)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (env) DO UPDATE SET started_at = excluded.started_at,
		finished_at = excluded.finished_at, ok = excluded.ok, message = excluded.message, clients = excluded.clients,
		last_ok_at = coalesce(excluded.last_ok_at, integration_syncs.last_ok_at),
		other_kinds = coalesce(excluded.other_kinds, integration_syncs.other_kinds)`,
		s.Env, FormatTime(s.StartedAt), FormatTime(s.FinishedAt), s.OK, s.Message, s.Clients, lastOK, other)
	if err != nil {
		return fmt.Errorf("put sync state of %s: %w", s.Env, err)
	}
	return nil
}

// SyncStateOf reads an environment's last sync; ErrNotFound before the first.
func (d *DB) SyncStateOf(ctx context.Context, env string) (SyncState, error) {
	var s SyncState
	var started, finished string
	var lastOK, other sql.NullString
	err := d.read.QueryRowContext(ctx, "SELECT env, started_at, finished_at, ok, message, clients, last_ok_at, other_kinds FROM integration_syncs WHERE env = ?", env).
		Scan(&s.Env, &started, &finished, &s.OK, &s.Message, &s.Clients, &lastOK, &other)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("sync state of %s: %w", env, ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("sync state of %s: %w", env, err)
	}
	s.StartedAt, s.FinishedAt = mustTime(started), mustTime(finished)
	if lastOK.Valid {
		s.LastOKAt = mustTime(lastOK.String)
	}
	if other.Valid {
		if err := json.Unmarshal([]byte(other.String), &s.OtherKinds); err != nil {
			return s, fmt.Errorf("sync state of %s: other kinds: %w", env, err)
		}
	}
	return s, nil
}

// IntegrationName is a mirror row's name and team, for showing beside a client id.
type IntegrationName struct {
	ClientID string
	Name     string
	TeamID   int64
}

// IntegrationRows returns the names and teams of these clients of env in one query (ids the
// mirror does not know are left out).
func (d *DB) IntegrationRows(ctx context.Context, env string, clientIDs []string) ([]IntegrationName, error) {
	if len(clientIDs) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(clientIDs)+1)
	args = append(args, env)
	for _, id := range clientIDs {
		args = append(args, id)
	}
	q := "SELECT client_id, name, coalesce(team_id, 0) FROM integrations WHERE env = ? AND client_id IN (?" + strings.Repeat(", ?", len(clientIDs)-1) + ")"
	rows, err := d.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("integration names: %w", err)
	}
	defer rows.Close()
	var out []IntegrationName
	for rows.Next() {
		var n IntegrationName
		if err := rows.Scan(&n.ClientID, &n.Name, &n.TeamID); err != nil {
			return nil, fmt.Errorf("integration names: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
