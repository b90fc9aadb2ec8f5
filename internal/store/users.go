package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is a row of users.
type User struct {
	ID           int64
	Email        string
	Name         string
	Role         string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// CreatedVia says how the account was made: setup, cli, admin or invitation ("" for
	// accounts older than the record); CreatedBy who made or invited it (0: nobody, or gone).
	CreatedVia string
	CreatedBy  int64
	// PendingApproval holds an account made through a team owner's invitation, without email
	// to prove the address, until an administrator approves it.
	PendingApproval bool
}

// How accounts are made.
const (
	ViaSetup      = "setup"
	ViaCLI        = "cli"
	ViaAdmin      = "admin"
	ViaInvitation = "invitation"
)

const userColumns = "id, email, name, role, password_hash, disabled, created_at, updated_at, created_via, created_by, pending_approval"

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, updated string
	var by sql.NullInt64
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.Disabled, &created, &updated, &u.CreatedVia, &by, &u.PendingApproval)
	u.CreatedBy = by.Int64
	if errors.Is(err, sql.ErrNoRows) {
		return u, ErrNotFound
	}
	if err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt = mustTime(created), mustTime(updated)
	return u, nil
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// InsertUser adds u and returns its id; ErrConflict when the email is taken.
func InsertUser(ctx context.Context, tx *sql.Tx, u User, now time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO users (email, name, role, password_hash, disabled, created_at, updated_at, created_via, created_by, pending_approval)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Email, u.Name, u.Role, u.PasswordHash, u.Disabled, FormatTime(now), FormatTime(now), u.CreatedVia, nullID(u.CreatedBy), u.PendingApproval)
	if isUnique(err) {
		return 0, fmt.Errorf("insert user %s: %w", u.Email, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("insert user %s: %w", u.Email, err)
	}
	return res.LastInsertId()
}

// UserByEmail finds a user by email, case-insensitively.
func (d *DB) UserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(d.read.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE email = ?", email))
	if err != nil {
		return u, fmt.Errorf("user %s: %w", email, err)
	}
	return u, nil
}

// UserByEmailTx finds a user by email, case-insensitively, inside a write transaction.
func UserByEmailTx(ctx context.Context, tx *sql.Tx, email string) (User, error) {
	u, err := scanUser(tx.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE email = ?", email))
	if err != nil {
		return u, fmt.Errorf("user %s: %w", email, err)
	}
	return u, nil
}

// UserByID finds a user by id.
func (d *DB) UserByID(ctx context.Context, id int64) (User, error) {
	return userByID(ctx, d.read, id)
}

// UserByIDTx reads a user inside a write transaction.
func UserByIDTx(ctx context.Context, tx *sql.Tx, id int64) (User, error) {
	return userByID(ctx, tx, id)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func userByID(ctx context.Context, q queryRower, id int64) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if err != nil {
		return u, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user, by name.
func (d *DB) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := d.read.QueryContext(ctx, "SELECT "+userColumns+" FROM users ORDER BY name COLLATE NOCASE, id")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountUsers counts users; zero means the portal still needs its first admin.
func (d *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := d.read.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, err
}

// CountUsersTx counts users inside a write transaction.
func CountUsersTx(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, err
}

// CountActiveAdminsTx counts enabled admins, so the last one cannot be demoted or disabled.
func CountActiveAdminsTx(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0").Scan(&n)
	return n, err
}

func updateOne(ctx context.Context, tx *sql.Tx, what string, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// SetUserPassword stores a new password hash.
func SetUserPassword(ctx context.Context, tx *sql.Tx, id int64, hash string, now time.Time) error {
	return updateOne(ctx, tx, fmt.Sprintf("set password of user %d", id),
		"UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", hash, FormatTime(now), id)
}

// SetUserRole changes a user's portal-wide role.
func SetUserRole(ctx context.Context, tx *sql.Tx, id int64, role string, now time.Time) error {
	return updateOne(ctx, tx, fmt.Sprintf("set role of user %d", id),
		"UPDATE users SET role = ?, updated_at = ? WHERE id = ?", role, FormatTime(now), id)
}

// SetUserDisabled disables or re-enables a user.
func SetUserDisabled(ctx context.Context, tx *sql.Tx, id int64, disabled bool, now time.Time) error {
	return updateOne(ctx, tx, fmt.Sprintf("set disabled of user %d", id),
		"UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?", disabled, FormatTime(now), id)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// ApproveUser lets an account waiting for approval sign in; ErrNotFound when it was not waiting.
func ApproveUser(ctx context.Context, tx *sql.Tx, id int64, now time.Time) error {
	return updateOne(ctx, tx, fmt.Sprintf("approve user %d", id),
		"UPDATE users SET pending_approval = 0, updated_at = ? WHERE id = ? AND pending_approval = 1", FormatTime(now), id)
}
