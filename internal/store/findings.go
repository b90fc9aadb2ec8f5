package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// PrivilegedFinding is a client that holds privileged scopes without being the portal's own
// admin client.
type PrivilegedFinding struct {
	Env        string
	ClientID   string
	Scopes     []string // the privileged scopes it holds, sorted
	FoundAt    time.Time
	NotifiedAt time.Time // zero until the administrators were told
	// From the mirror, for display.
	Name     string
	TeamID   int64
	TeamName string
}

// PrivilegedFindingsTx reads an environment's findings by client id.
func PrivilegedFindingsTx(ctx context.Context, tx *sql.Tx, env string) (map[string]PrivilegedFinding, error) {
	rows, err := tx.QueryContext(ctx, "SELECT env, client_id, scopes, found_at, coalesce(notified_at, '') FROM privileged_findings WHERE env = ?", env)
	if err != nil {
		return nil, fmt.Errorf("privileged findings of %s: %w", env, err)
	}
	defer rows.Close()
	out := map[string]PrivilegedFinding{}
	for rows.Next() {
		var f PrivilegedFinding
		var scopes, found, notified string
		if err := rows.Scan(&f.Env, &f.ClientID, &scopes, &found, &notified); err != nil {
			return nil, fmt.Errorf("privileged findings of %s: %w", env, err)
		}
		f.Scopes = strings.Fields(scopes)
		f.FoundAt = mustTime(found)
		if notified != "" {
			f.NotifiedAt = mustTime(notified)
		}
		out[f.ClientID] = f
	}
	return out, rows.Err()
}

// PutPrivilegedFinding records a new finding, or a changed scope set of one (which is then
// told again).
func PutPrivilegedFinding(ctx context.Context, tx *sql.Tx, f PrivilegedFinding) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO privileged_findings (env, client_id, scopes, found_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (env, client_id) DO UPDATE SET scopes = excluded.scopes, found_at = excluded.found_at, notified_at = NULL`,
		f.Env, f.ClientID, strings.Join(f.Scopes, " "), FormatTime(f.FoundAt))
	if err != nil {
		return fmt.Errorf("put privileged finding %s/%s: %w", f.Env, f.ClientID, err)
	}
	return nil
}

// DeletePrivilegedFinding forgets a finding (the client no longer holds privileged scopes).
func DeletePrivilegedFinding(ctx context.Context, tx *sql.Tx, env, clientID string) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM privileged_findings WHERE env = ? AND client_id = ?", env, clientID); err != nil {
		return fmt.Errorf("delete privileged finding %s/%s: %w", env, clientID, err)
	}
	return nil
}

// PrivilegedFindings lists the findings of env ("" for every environment) with the mirror's
// name and team of each client, by environment and name.
func (d *DB) PrivilegedFindings(ctx context.Context, env string) ([]PrivilegedFinding, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT f.env, f.client_id, f.scopes, f.found_at, coalesce(f.notified_at, ''),
		coalesce(i.name, ''), coalesce(i.team_id, 0), coalesce(t.name, '')
		FROM privileged_findings f LEFT JOIN integrations i ON i.env = f.env AND i.client_id = f.client_id
		LEFT JOIN teams t ON t.id = i.team_id
		WHERE ? = '' OR f.env = ? ORDER BY f.env, i.name COLLATE NOCASE, f.client_id`, env, env)
	if err != nil {
		return nil, fmt.Errorf("privileged findings: %w", err)
	}
	defer rows.Close()
	var out []PrivilegedFinding
	for rows.Next() {
		var f PrivilegedFinding
		var scopes, found, notified string
		if err := rows.Scan(&f.Env, &f.ClientID, &scopes, &found, &notified, &f.Name, &f.TeamID, &f.TeamName); err != nil {
			return nil, fmt.Errorf("privileged findings: %w", err)
		}
		f.Scopes = strings.Fields(scopes)
		f.FoundAt = mustTime(found)
		if notified != "" {
			f.NotifiedAt = mustTime(notified)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// ClaimPrivilegedNotice records that the administrators are told about a finding now. It
// reports false when they were told before (or the finding changed meanwhile), so each
// finding goes out once.
func (d *DB) ClaimPrivilegedNotice(ctx context.Context, env, clientID string, scopes []string, now time.Time) (bool, error) {
	var n int64
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE privileged_findings SET notified_at = ?
			WHERE env = ? AND client_id = ? AND scopes = ? AND notified_at IS NULL`, FormatTime(now), env, clientID, strings.Join(scopes, " "))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim privileged notice %s/%s: %w", env, clientID, err)
	}
	return n == 1, nil
}
