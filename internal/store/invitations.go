package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Invitation is a row of invitations with the team's and the inviter's names for display.
// The token's hash is written once and never read back into this type.
type Invitation struct {
	ID           int64
	TeamID       int64
	TeamName     string
	Email        string
	Role         string
	InvitedBy    int64
	InviterName  string
	InviterEmail string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	AcceptedAt   time.Time // zero while not accepted
	AcceptedBy   int64
	RevokedAt    time.Time // zero while not revoked
	RevokedBy    int64
	// NeedsApproval: an account made through this invitation waits for an administrator.
	NeedsApproval bool
}

const invitationQuery = `SELECT i.id, i.team_id, t.name, i.email, i.role, i.invited_by, u.name, u.email,
	i.created_at, i.expires_at, i.accepted_at, i.accepted_by, i.revoked_at, i.revoked_by, i.needs_approval
	FROM invitations i JOIN teams t ON t.id = i.team_id JOIN users u ON u.id = i.invited_by `

func scanInvitation(row interface{ Scan(...any) error }) (Invitation, error) {
	var inv Invitation
	var created, expires string
	var accepted, revoked sql.NullString
	var acceptedBy, revokedBy sql.NullInt64
	err := row.Scan(&inv.ID, &inv.TeamID, &inv.TeamName, &inv.Email, &inv.Role, &inv.InvitedBy, &inv.InviterName, &inv.InviterEmail,
		&created, &expires, &accepted, &acceptedBy, &revoked, &revokedBy, &inv.NeedsApproval)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, ErrNotFound
	}
	if err != nil {
		return inv, err
	}
	inv.CreatedAt, inv.ExpiresAt = mustTime(created), mustTime(expires)
	inv.AcceptedAt, inv.RevokedAt = mustTime(accepted.String), mustTime(revoked.String)
	inv.AcceptedBy, inv.RevokedBy = acceptedBy.Int64, revokedBy.Int64
	return inv, nil
}

// InsertInvitation stores an invitation under the hash of its token and returns its id;
// ErrConflict when the team already has an open invitation for the address.
func InsertInvitation(ctx context.Context, tx *sql.Tx, inv Invitation, tokenHash string) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO invitations (token_hash, team_id, email, role, invited_by, created_at, expires_at, needs_approval)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, tokenHash, inv.TeamID, inv.Email, inv.Role, inv.InvitedBy,
		FormatTime(inv.CreatedAt), FormatTime(inv.ExpiresAt), inv.NeedsApproval)
	if isUnique(err) {
		return 0, fmt.Errorf("insert invitation of %s to team %d: %w", inv.Email, inv.TeamID, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("insert invitation of %s to team %d: %w", inv.Email, inv.TeamID, err)
	}
	return res.LastInsertId()
}

// RevokeOpenInvitations marks every open invitation of email to a team revoked (expired ones
// too) and returns their ids, so a newer invitation can take their place.
func RevokeOpenInvitations(ctx context.Context, tx *sql.Tx, teamID int64, email string, by int64, now time.Time) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `UPDATE invitations SET revoked_at = ?, revoked_by = ?
		WHERE team_id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id`,
		FormatTime(now), by, teamID, email)
	if err != nil {
		return nil, fmt.Errorf("revoke open invitations of %s to team %d: %w", email, teamID, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("revoke open invitations of %s to team %d: %w", email, teamID, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// InvitationByHashTx finds an invitation by its token's hash, in any state.
func InvitationByHashTx(ctx context.Context, tx *sql.Tx, tokenHash string) (Invitation, error) {
	return invitationBy(ctx, tx, "i.token_hash = ?", tokenHash)
}

// InvitationByHash finds an invitation by its token's hash, in any state.
func (d *DB) InvitationByHash(ctx context.Context, tokenHash string) (Invitation, error) {
	return invitationBy(ctx, d.read, "i.token_hash = ?", tokenHash)
}

// InvitationByIDTx finds an invitation by id, in any state.
func InvitationByIDTx(ctx context.Context, tx *sql.Tx, id int64) (Invitation, error) {
	return invitationBy(ctx, tx, "i.id = ?", id)
}

func invitationBy(ctx context.Context, q queryRower, where string, arg any) (Invitation, error) {
	inv, err := scanInvitation(q.QueryRowContext(ctx, invitationQuery+"WHERE "+where, arg))
	if err != nil {
		return inv, fmt.Errorf("invitation: %w", err)
	}
	return inv, nil
}

// OpenInvitations lists a team's invitations that are neither accepted, revoked nor expired
// at now, newest first.
func (d *DB) OpenInvitations(ctx context.Context, teamID int64, now time.Time) ([]Invitation, error) {
	rows, err := d.read.QueryContext(ctx, invitationQuery+`WHERE i.team_id = ? AND i.accepted_at IS NULL AND i.revoked_at IS NULL
		AND i.expires_at > ? ORDER BY i.created_at DESC, i.id DESC`, teamID, FormatTime(now))
	if err != nil {
		return nil, fmt.Errorf("open invitations of team %d: %w", teamID, err)
	}
	defer rows.Close()
	var out []Invitation
	for rows.Next() {
		inv, err := scanInvitation(rows)
		if err != nil {
			return nil, fmt.Errorf("open invitations of team %d: %w", teamID, err)
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// AcceptInvitation marks an invitation accepted by a user, atomically: it fails with
// ErrNotFound unless the invitation is still open at now, so a link works once.
func AcceptInvitation(ctx context.Context, tx *sql.Tx, id, userID int64, now time.Time) error {
	return updateOne(ctx, tx, fmt.Sprintf("accept invitation %d", id),
		`UPDATE invitations SET accepted_at = ?, accepted_by = ?
		 WHERE id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?`,
		FormatTime(now), userID, id, FormatTime(now))
}

// RevokeInvitation withdraws an invitation that is neither accepted nor revoked; ErrNotFound
// otherwise.
func RevokeInvitation(ctx context.Context, tx *sql.Tx, id, by int64, now time.Time) error {
	return updateOne(ctx, tx, fmt.Sprintf("revoke invitation %d", id),
		`UPDATE invitations SET revoked_at = ?, revoked_by = ? WHERE id = ? AND accepted_at IS NULL AND revoked_at IS NULL`,
		FormatTime(now), by, id)
}

// TeamMemberByEmailTx reports whether the user with email belongs to a team.
func TeamMemberByEmailTx(ctx context.Context, tx *sql.Tx, teamID int64, email string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM team_members m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = ? AND u.email = ?`, teamID, email).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("membership of %s in team %d: %w", email, teamID, err)
	}
	return n > 0, nil
}
