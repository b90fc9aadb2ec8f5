package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Team is a row of teams.
type Team struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Member is a user's membership of a team, with the user's name for display.
type Member struct {
	TeamID   int64
	TeamName string
	UserID   int64
	Email    string
	Name     string
	Role     string
	Source   string // "" when given by hand, else the provider that manages it
}

// InsertTeam adds a team; ErrConflict when the name is taken.
func InsertTeam(ctx context.Context, tx *sql.Tx, name string, now time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, "INSERT INTO teams (name, created_at) VALUES (?, ?)", name, FormatTime(now))
	if isUnique(err) {
		return 0, fmt.Errorf("insert team %s: %w", name, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("insert team %s: %w", name, err)
	}
	return res.LastInsertId()
}

// RenameTeam renames a team; ErrConflict when the name is taken.
func RenameTeam(ctx context.Context, tx *sql.Tx, id int64, name string) error {
	err := updateOne(ctx, tx, fmt.Sprintf("rename team %d", id), "UPDATE teams SET name = ? WHERE id = ?", name, id)
	if isUnique(err) {
		return fmt.Errorf("rename team %d: %w", id, ErrConflict)
	}
	return err
}

// TeamByID finds a team.
func (d *DB) TeamByID(ctx context.Context, id int64) (Team, error) {
	return teamByID(ctx, d.read, id)
}

// TeamByIDTx finds a team inside a write transaction.
func TeamByIDTx(ctx context.Context, tx *sql.Tx, id int64) (Team, error) {
	return teamByID(ctx, tx, id)
}

func teamByID(ctx context.Context, q queryRower, id int64) (Team, error) {
	var t Team
	var created string
	err := q.QueryRowContext(ctx, "SELECT id, name, created_at FROM teams WHERE id = ?", id).Scan(&t.ID, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("team %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("team %d: %w", id, err)
	}
	t.CreatedAt = mustTime(created)
	return t, nil
}

// ListTeams returns every team, by name.
func (d *DB) ListTeams(ctx context.Context) ([]Team, error) {
	rows, err := d.read.QueryContext(ctx, "SELECT id, name, created_at FROM teams ORDER BY name COLLATE NOCASE")
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	defer rows.Close()
	var out []Team
	for rows.Next() {
		var t Team
		var created string
		if err := rows.Scan(&t.ID, &t.Name, &created); err != nil {
			return nil, fmt.Errorf("list teams: %w", err)
		}
		t.CreatedAt = mustTime(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

const memberQuery = `SELECT m.team_id, t.name, m.user_id, u.email, u.name, m.role, m.source
	FROM team_members m JOIN teams t ON t.id = m.team_id JOIN users u ON u.id = m.user_id `

func (d *DB) members(ctx context.Context, where string, args ...any) ([]Member, error) {
	rows, err := d.read.QueryContext(ctx, memberQuery+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.TeamID, &m.TeamName, &m.UserID, &m.Email, &m.Name, &m.Role, &m.Source); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// TeamMembers lists a team's members by name.
func (d *DB) TeamMembers(ctx context.Context, teamID int64) ([]Member, error) {
	m, err := d.members(ctx, "WHERE m.team_id = ? ORDER BY u.name COLLATE NOCASE", teamID)
	if err != nil {
		return nil, fmt.Errorf("members of team %d: %w", teamID, err)
	}
	return m, nil
}

// UserMemberships lists the teams a user belongs to, by team name.
func (d *DB) UserMemberships(ctx context.Context, userID int64) ([]Member, error) {
	m, err := d.members(ctx, "WHERE m.user_id = ? ORDER BY t.name COLLATE NOCASE", userID)
	if err != nil {
		return nil, fmt.Errorf("memberships of user %d: %w", userID, err)
	}
	return m, nil
}

// AllMemberships lists every membership, by team name, in one query for list pages.
func (d *DB) AllMemberships(ctx context.Context) ([]Member, error) {
	m, err := d.members(ctx, "ORDER BY t.name COLLATE NOCASE")
	if err != nil {
		return nil, fmt.Errorf("all memberships: %w", err)
	}
	return m, nil
}

// MembershipTx returns a user's role in a team inside a transaction; ErrNotFound when none.
func MembershipTx(ctx context.Context, tx *sql.Tx, teamID, userID int64) (string, error) {
	var role string
	err := tx.QueryRowContext(ctx, "SELECT role FROM team_members WHERE team_id = ? AND user_id = ?", teamID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("membership of user %d in team %d: %w", userID, teamID, ErrNotFound)
	}
	return role, err
}

// PutMember adds a user to a team or changes their role there.
func PutMember(ctx context.Context, tx *sql.Tx, teamID, userID int64, role string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role`, teamID, userID, role, FormatTime(now))
	if err != nil {
		return fmt.Errorf("put member %d in team %d: %w", userID, teamID, err)
	}
	return nil
}

// DeleteMember removes a user from a team.
func DeleteMember(ctx context.Context, tx *sql.Tx, teamID, userID int64) error {
	return updateOne(ctx, tx, fmt.Sprintf("remove member %d from team %d", userID, teamID),
		"DELETE FROM team_members WHERE team_id = ? AND user_id = ?", teamID, userID)
}
