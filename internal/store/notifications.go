package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ClaimExpiryWarning records that the warning for a key at a threshold (days before expiry) is
// sent now. It reports false when that warning was claimed before, so it goes out once.
func (d *DB) ClaimExpiryWarning(ctx context.Context, env, clientID, kid string, threshold int, now time.Time) (bool, error) {
	var n int64
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notifications_sent (env, client_id, kid, threshold, sent_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, env, clientID, kid, threshold, FormatTime(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim expiry warning %s/%s/%s/%d: %w", env, clientID, kid, threshold, err)
	}
	return n == 1, nil
}
