package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SignInReservation is the outcome of reserving a sign-in attempt before its password is
// checked.
type SignInReservation struct {
	ID      int64 // the reserved row; 0 when refused
	Allowed bool
	// Until is, when refused, the moment the account's and the address's counts are both
	// under their limits again.
	Until time.Time
	// ByAddress tells that the address (not only the account) is over its limit.
	ByAddress bool
}

// ReserveSignIn counts the failed attempts of an email and of an address within the window and,
// when both are under their limits, records this attempt as one more failure, all in one write
// transaction. Concurrent attempts are serialised by the single writer, so no more than the
// limit are ever let through to the password check, however many arrive at once. A successful
// sign-in clears the account's rows (ClearLoginFailures); an attempt that was never checked
// hands its row back (ReleaseSignIn).
func (d *DB) ReserveSignIn(ctx context.Context, email, address string, now time.Time, window time.Duration, maxAccount, maxAddress int) (SignInReservation, error) {
	var r SignInReservation
	since := FormatTime(now.Add(-window))
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		var byEmail, byAddr int
		if err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM login_failures WHERE email = ? AND at >= ?),
			(SELECT count(*) FROM login_failures WHERE address = ? AND at >= ?)`, email, since, address, since).Scan(&byEmail, &byAddr); err != nil {
			return err
		}
		if byEmail < maxAccount && byAddr < maxAddress {
			res, err := tx.ExecContext(ctx, "INSERT INTO login_failures (email, address, at) VALUES (?, ?, ?)", email, address, FormatTime(now))
			if err != nil {
				return err
			}
			r.Allowed = true
			r.ID, err = res.LastInsertId()
			return err
		}
		// The count falls under the limit when the (count-limit+1)th newest-but-oldest row
		// leaves the window.
		untilOf := func(col, val string, count, max int) (time.Time, error) {
			if count < max {
				return time.Time{}, nil
			}
			var at string
			err := tx.QueryRowContext(ctx, "SELECT at FROM login_failures WHERE "+col+" = ? AND at >= ? ORDER BY at, id LIMIT 1 OFFSET ?",
				val, since, count-max).Scan(&at)
			if err != nil {
				return time.Time{}, err
			}
			return mustTime(at).Add(window), nil
		}
		a, err := untilOf("email", email, byEmail, maxAccount)
		if err != nil {
			return err
		}
		b, err := untilOf("address", address, byAddr, maxAddress)
		if err != nil {
			return err
		}
		r.Until, r.ByAddress = a, byAddr >= maxAddress
		if b.After(r.Until) {
			r.Until = b
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("reserve sign-in attempt: %w", err)
	}
	return r, nil
}

// ReleaseSignIn hands back a reserved attempt whose password was never checked.
func (d *DB) ReleaseSignIn(ctx context.Context, id int64) error {
	if _, err := d.write.ExecContext(ctx, "DELETE FROM login_failures WHERE id = ?", id); err != nil {
		return fmt.Errorf("release sign-in attempt: %w", err)
	}
	return nil
}

// AccountLockedUntil reports until when an email's failures keep it over maxAccount, zero when
// they do not, and how many there are within the window.
func (d *DB) AccountLockedUntil(ctx context.Context, email string, now time.Time, window time.Duration, maxAccount int) (time.Time, int, error) {
	since := FormatTime(now.Add(-window))
	var n int
	if err := d.read.QueryRowContext(ctx, "SELECT count(*) FROM login_failures WHERE email = ? AND at >= ?", email, since).Scan(&n); err != nil {
		return time.Time{}, 0, fmt.Errorf("count failures of %s: %w", email, err)
	}
	if n < maxAccount {
		return time.Time{}, n, nil
	}
	var at string
	if err := d.read.QueryRowContext(ctx, "SELECT at FROM login_failures WHERE email = ? AND at >= ? ORDER BY at, id LIMIT 1 OFFSET ?",
		email, since, n-maxAccount).Scan(&at); err != nil {
		return time.Time{}, n, fmt.Errorf("failures of %s: %w", email, err)
	}
	return mustTime(at).Add(window), n, nil
}

// UnlockAccount forgets every failed sign-in of an email and says how many there were.
func UnlockAccount(ctx context.Context, tx *sql.Tx, email string) (int64, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM login_failures WHERE email = ?", email)
	if err != nil {
		return 0, fmt.Errorf("unlock %s: %w", email, err)
	}
	return res.RowsAffected()
}

// ReserveLinkAttempt records one use of a single-use link's form from an address, unless the
// address made max of them within the window already; then it returns false and when the next
// is allowed. Old rows are pruned on the way.
func (d *DB) ReserveLinkAttempt(ctx context.Context, address string, now time.Time, window time.Duration, max int) (bool, time.Time, error) {
	since := FormatTime(now.Add(-window))
	ok, until := false, time.Time{}
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM link_attempts WHERE at < ?", since); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM link_attempts WHERE address = ?", address).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			var at string
			if err := tx.QueryRowContext(ctx, "SELECT at FROM link_attempts WHERE address = ? ORDER BY at, id LIMIT 1 OFFSET ?", address, n-max).Scan(&at); err != nil {
				return err
			}
			until = mustTime(at).Add(window)
			return nil
		}
		ok = true
		_, err := tx.ExecContext(ctx, "INSERT INTO link_attempts (address, at) VALUES (?, ?)", address, FormatTime(now))
		return err
	})
	if err != nil {
		return false, time.Time{}, fmt.Errorf("reserve link attempt: %w", err)
	}
	return ok, until, nil
}

// ThrottledCount is refused sign-ins counted for one address or account over one window.
type ThrottledCount struct {
	Key         string // "address:..." or "account:..."
	Address     string // the address of the first refused attempt
	WindowStart time.Time
	WindowEnd   time.Time
	Count       int
}

// CountThrottled adds one refused sign-in to key's count for the window and reports whether it
// is the window's first.
func CountThrottled(ctx context.Context, tx *sql.Tx, key, address string, start, end time.Time) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `INSERT INTO sign_in_throttled (key, window_start, window_end, count, address) VALUES (?, ?, ?, 1, ?)
		ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 RETURNING count`,
		key, FormatTime(start), FormatTime(end), address).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count throttled sign-in: %w", err)
	}
	return n == 1, nil
}

// TakeEndedThrottled removes and returns the counts whose window ended by now.
func TakeEndedThrottled(ctx context.Context, tx *sql.Tx, now time.Time) ([]ThrottledCount, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM sign_in_throttled WHERE window_end <= ?
		RETURNING key, address, window_start, window_end, count`, FormatTime(now))
	if err != nil {
		return nil, fmt.Errorf("ended throttled counts: %w", err)
	}
	defer rows.Close()
	var out []ThrottledCount
	for rows.Next() {
		var c ThrottledCount
		var start, end string
		if err := rows.Scan(&c.Key, &c.Address, &start, &end, &c.Count); err != nil {
			return nil, fmt.Errorf("ended throttled counts: %w", err)
		}
		c.WindowStart, c.WindowEnd = mustTime(start), mustTime(end)
		out = append(out, c)
	}
	return out, rows.Err()
}

// AnyEndedThrottled reports whether some count's window ended by now, so the caller only opens a
// write transaction when there is something to record.
func (d *DB) AnyEndedThrottled(ctx context.Context, now time.Time) (bool, error) {
	var one int
	err := d.read.QueryRowContext(ctx, "SELECT 1 FROM sign_in_throttled WHERE window_end <= ? LIMIT 1", FormatTime(now)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ended throttled counts: %w", err)
	}
	return true, nil
}
