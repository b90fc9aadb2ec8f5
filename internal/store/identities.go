package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ExternalIdentity links a provider's (issuer, subject) to a user.
type ExternalIdentity struct {
	Issuer       string
	Subject      string
	Provider     string
	UserID       int64
	CreatedAt    time.Time
	LastSignInAt time.Time
	LastIDToken  string
}

// ExternalIdentityTx finds the identity for (issuer, subject); ErrNotFound when none.
func ExternalIdentityTx(ctx context.Context, tx *sql.Tx, issuer, subject string) (ExternalIdentity, error) {
	var e ExternalIdentity
	var created, last string
	err := tx.QueryRowContext(ctx, `SELECT issuer, subject, provider, user_id, created_at, last_sign_in_at, last_id_token
		FROM external_identities WHERE issuer = ? AND subject = ?`, issuer, subject).
		Scan(&e.Issuer, &e.Subject, &e.Provider, &e.UserID, &created, &last, &e.LastIDToken)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("external identity: %w", ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("external identity: %w", err)
	}
	e.CreatedAt, e.LastSignInAt = mustTime(created), mustTime(last)
	return e, nil
}

// PutExternalIdentity records a sign-in through a provider, linking the identity on first use.
func PutExternalIdentity(ctx context.Context, tx *sql.Tx, e ExternalIdentity, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO external_identities (issuer, subject, provider, user_id, created_at, last_sign_in_at, last_id_token)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (issuer, subject) DO UPDATE SET provider = excluded.provider, last_sign_in_at = excluded.last_sign_in_at,
			last_id_token = excluded.last_id_token`,
		e.Issuer, e.Subject, e.Provider, e.UserID, FormatTime(now), FormatTime(now), e.LastIDToken)
	if err != nil {
		return fmt.Errorf("put external identity: %w", err)
	}
	return nil
}

// LastExternalIDToken returns the ID token of a user's last sign-in through provider, "" when none.
func (d *DB) LastExternalIDToken(ctx context.Context, userID int64, provider string) (string, error) {
	var tok string
	err := d.read.QueryRowContext(ctx, `SELECT last_id_token FROM external_identities WHERE user_id = ? AND provider = ?
		ORDER BY last_sign_in_at DESC LIMIT 1`, userID, provider).Scan(&tok)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("last id token of user %d: %w", userID, err)
	}
	return tok, nil
}

// UserExternalProviders lists the providers a user has signed in through.
func (d *DB) UserExternalProviders(ctx context.Context, userID int64) ([]string, error) {
	rows, err := d.read.QueryContext(ctx, "SELECT DISTINCT provider FROM external_identities WHERE user_id = ? ORDER BY provider", userID)
	if err != nil {
		return nil, fmt.Errorf("providers of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RoleSourceTx returns where a user's portal-wide role comes from ("" by hand).
func RoleSourceTx(ctx context.Context, tx *sql.Tx, userID int64) (string, error) {
	var src string
	err := tx.QueryRowContext(ctx, "SELECT role_source FROM users WHERE id = ?", userID).Scan(&src)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("user %d: %w", userID, ErrNotFound)
	}
	return src, err
}

// SetUserRoleFrom sets a user's role and where it comes from.
func SetUserRoleFrom(ctx context.Context, tx *sql.Tx, id int64, role, source string, now time.Time) error {
	return updateOne(ctx, tx, fmt.Sprintf("set role of user %d", id),
		"UPDATE users SET role = ?, role_source = ?, updated_at = ? WHERE id = ?", role, source, FormatTime(now), id)
}

// MembershipSourceTx returns a user's role in a team and where it comes from; ErrNotFound when none.
func MembershipSourceTx(ctx context.Context, tx *sql.Tx, teamID, userID int64) (role, source string, err error) {
	err = tx.QueryRowContext(ctx, "SELECT role, source FROM team_members WHERE team_id = ? AND user_id = ?", teamID, userID).Scan(&role, &source)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("membership of user %d in team %d: %w", userID, teamID, ErrNotFound)
	}
	return role, source, err
}

// SourcedMembership is one of a user's memberships with where it comes from.
type SourcedMembership struct {
	TeamID   int64
	TeamName string
	Role     string
	Source   string
}

// UserMembershipsTx lists a user's memberships with their sources inside a transaction.
func UserMembershipsTx(ctx context.Context, tx *sql.Tx, userID int64) ([]SourcedMembership, error) {
	rows, err := tx.QueryContext(ctx, `SELECT m.team_id, t.name, m.role, m.source FROM team_members m JOIN teams t ON t.id = m.team_id
		WHERE m.user_id = ? ORDER BY t.name COLLATE NOCASE`, userID)
	if err != nil {
		return nil, fmt.Errorf("memberships of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []SourcedMembership
	for rows.Next() {
		var m SourcedMembership
		if err := rows.Scan(&m.TeamID, &m.TeamName, &m.Role, &m.Source); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// PutMemberFrom adds or updates a membership with its source.
func PutMemberFrom(ctx context.Context, tx *sql.Tx, teamID, userID int64, role, source string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO team_members (team_id, user_id, role, created_at, source) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role, source = excluded.source`, teamID, userID, role, FormatTime(now), source)
	if err != nil {
		return fmt.Errorf("put member %d in team %d: %w", userID, teamID, err)
	}
	return nil
}

// TeamByNameTx finds a team by name, case-insensitively.
func TeamByNameTx(ctx context.Context, tx *sql.Tx, name string) (Team, error) {
	var t Team
	var created string
	err := tx.QueryRowContext(ctx, "SELECT id, name, created_at FROM teams WHERE name = ?", name).Scan(&t.ID, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("team %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("team %q: %w", name, err)
	}
	t.CreatedAt = mustTime(created)
	return t, nil
}

// OIDCFlow is a sign-in under way at a provider.
type OIDCFlow struct {
	StateHash string
	Provider  string
	Nonce     string
	Verifier  string
	Next      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// InsertOIDCFlow records a sign-in under way, pruning expired ones.
func (d *DB) InsertOIDCFlow(ctx context.Context, f OIDCFlow) error {
	return d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM oidc_flows WHERE expires_at < ?", FormatTime(f.CreatedAt)); err != nil {
			return fmt.Errorf("prune sign-in flows: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_flows (state_hash, provider, nonce, verifier, next, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, f.StateHash, f.Provider, f.Nonce, f.Verifier, f.Next, FormatTime(f.CreatedAt), FormatTime(f.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert sign-in flow: %w", err)
		}
		return nil
	})
}

// TakeOIDCFlow removes and returns the flow for a state hash, so it is used at most once;
// ErrNotFound when there is none.
func (d *DB) TakeOIDCFlow(ctx context.Context, stateHash string) (OIDCFlow, error) {
	var f OIDCFlow
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		var created, expires string
		err := tx.QueryRowContext(ctx, `DELETE FROM oidc_flows WHERE state_hash = ?
			RETURNING state_hash, provider, nonce, verifier, next, created_at, expires_at`, stateHash).
			Scan(&f.StateHash, &f.Provider, &f.Nonce, &f.Verifier, &f.Next, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sign-in flow: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("take sign-in flow: %w", err)
		}
		f.CreatedAt, f.ExpiresAt = mustTime(created), mustTime(expires)
		return nil
	})
	return f, err
}
