package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// KeyExpiry is one key of an integration with what an expiry overview shows of it.
type KeyExpiry struct {
	Env      string
	ClientID string
	Name     string
	TeamID   int64 // 0 when unowned
	TeamName string
	KID      string
	Kty      string
	Alg      string
	Use      string
	Expires  time.Time // zero when the key has no exp
	Custody  string    // kept, handed_out, uploaded; "" when the portal has no record of the key
}

// KeyExpiryQuery selects the keys of active integrations.
type KeyExpiryQuery struct {
	Envs           []string // nil: every environment
	VisibleTeams   []int64  // nil: every integration; otherwise only these teams'
	TeamID         int64
	ExpiringBefore time.Time // zero: any expiry, keys without exp included
}

// KeyExpiries returns every key of the active integrations q selects, soonest expiry first
// (keys without exp last), then by environment, client id and kid. The key sets are read from
// the mirror's documents in one read transaction together with the portal's custody records.
func (d *DB) KeyExpiries(ctx context.Context, q KeyExpiryQuery) ([]KeyExpiry, error) {
	if q.VisibleTeams != nil && len(q.VisibleTeams) == 0 || q.Envs != nil && len(q.Envs) == 0 {
		return nil, nil
	}
	where := []string{"i.active = 1", "i.key_count > 0"}
	var args []any
	in := func(col string, n int) string {
		return col + " IN (" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
	}
	if q.Envs != nil {
		where = append(where, in("i.env", len(q.Envs)))
		for _, e := range q.Envs {
			args = append(args, e)
		}
	}
	if q.VisibleTeams != nil {
		where = append(where, in("i.team_id", len(q.VisibleTeams)))
		for _, id := range q.VisibleTeams {
			args = append(args, id)
		}
	}
	if q.TeamID != 0 {
		where = append(where, "i.team_id = ?")
		args = append(args, q.TeamID)
	}
	if !q.ExpiringBefore.IsZero() {
		// An integration whose nearest expiry is later has no key that qualifies.
		where = append(where, "i.next_key_expiry IS NOT NULL AND i.next_key_expiry < ?")
		args = append(args, FormatTime(q.ExpiringBefore))
	}
	cond := " WHERE " + strings.Join(where, " AND ")

	tx, err := d.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("key expiries: %w", err)
	}
	defer tx.Rollback()

	custody := map[[3]string]string{}
	rows, err := tx.QueryContext(ctx, "SELECT k.env, k.client_id, k.kid, k.custody FROM integration_keys k"+
		" JOIN integrations i ON i.env = k.env AND i.client_id = k.client_id"+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("key expiries: custody: %w", err)
	}
	for rows.Next() {
		var env, clientID, kid, c string
		if err := rows.Scan(&env, &clientID, &kid, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("key expiries: custody: %w", err)
		}
		custody[[3]string{env, clientID, kid}] = c
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("key expiries: custody: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("key expiries: custody: %w", err)
	}

	rows, err = tx.QueryContext(ctx, "SELECT i.env, i.client_id, i.name, coalesce(i.team_id, 0), coalesce(t.name, ''), d.jwks"+
		" FROM integrations i JOIN integration_docs d ON d.env = i.env AND d.client_id = i.client_id"+
		" LEFT JOIN teams t ON t.id = i.team_id"+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("key expiries: %w", err)
	}
	defer rows.Close()
	var out []KeyExpiry
	for rows.Next() {
		var base KeyExpiry
		var jwks string
		if err := rows.Scan(&base.Env, &base.ClientID, &base.Name, &base.TeamID, &base.TeamName, &jwks); err != nil {
			return nil, fmt.Errorf("key expiries: %w", err)
		}
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
				Kty string `json:"kty"`
				Alg string `json:"alg"`
				Use string `json:"use"`
				Exp int64  `json:"exp"`
			} `json:"keys"`
		}
		// The mirror stores only what it parsed from Digdir, so a broken document is a bug
		// elsewhere; the overview skips it rather than failing for every other integration.
		if json.Unmarshal([]byte(jwks), &set) != nil {
			continue
		}
		for _, k := range set.Keys {
			e := base
			e.KID, e.Kty, e.Alg, e.Use = k.Kid, k.Kty, k.Alg, k.Use
			if k.Exp != 0 {
				e.Expires = time.Unix(k.Exp, 0).UTC()
			}
			if !q.ExpiringBefore.IsZero() && (e.Expires.IsZero() || !e.Expires.Before(q.ExpiringBefore)) {
				continue
			}
			e.Custody = custody[[3]string{e.Env, e.ClientID, e.KID}]
			out = append(out, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("key expiries: %w", err)
	}
	slices.SortFunc(out, func(a, b KeyExpiry) int {
		if a.Expires.IsZero() != b.Expires.IsZero() {
			if a.Expires.IsZero() {
				return 1
			}
			return -1
		}
		return cmp.Or(a.Expires.Compare(b.Expires), cmp.Compare(a.Env, b.Env), cmp.Compare(a.ClientID, b.ClientID),
			cmp.Compare(a.KID, b.KID))
	})
	return out, nil
}
