package store_test

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"portal/internal/store"
)

func TestInvitationStates(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var teamID, userID int64
	tx := func(fn func(tx *sql.Tx) error) error { return db.Tx(ctx, fn) }
	if err := tx(func(tx *sql.Tx) (err error) {
		if userID, err = store.InsertUser(ctx, tx, store.User{Email: "owner@example.no", Name: "Owner", Role: "member"}, now); err != nil {
			return err
		}
		teamID, err = store.InsertTeam(ctx, tx, "Team", now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	inv := store.Invitation{TeamID: teamID, Email: "nora@example.no", Role: "viewer", InvitedBy: userID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	insert := func(hash, email string) (id int64, err error) {
		i := inv
		i.Email = email
		err = tx(func(tx *sql.Tx) error { id, err = store.InsertInvitation(ctx, tx, i, hash); return err })
		return id, err
	}
	first, err := insert("h1", "nora@example.no")
	if err != nil {
		t.Fatal(err)
	}
	// At most one open invitation per team and address, whatever the case of the address.
	if _, err := insert("h2", "NORA@example.no"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second open invitation: %v", err)
	}
	var revoked []int64
	if err := tx(func(tx *sql.Tx) (err error) {
		revoked, err = store.RevokeOpenInvitations(ctx, tx, teamID, "Nora@Example.no", userID, now)
		return err
	}); err != nil || len(revoked) != 1 || revoked[0] != first {
		t.Fatalf("revoke open: %v %v", revoked, err)
	}
	second, err := insert("h2", "nora@example.no")
	if err != nil {
		t.Fatalf("invitation after revoking the first: %v", err)
	}
	got, err := db.InvitationByHash(ctx, "h1")
	if err != nil || got.RevokedAt.IsZero() || got.RevokedBy != userID || got.TeamName != "Team" || got.InviterEmail != "owner@example.no" {
		t.Fatalf("revoked invitation %+v %v", got, err)
	}
	if open, err := db.OpenInvitations(ctx, teamID, now); err != nil || len(open) != 1 || open[0].ID != second {
		t.Fatalf("open invitations %+v %v", open, err)
	}
	if open, _ := db.OpenInvitations(ctx, teamID, now.Add(time.Hour)); len(open) != 0 {
		t.Fatalf("expired invitation listed as open: %+v", open)
	}

	accept := func(id int64, at time.Time) error {
		return tx(func(tx *sql.Tx) error { return store.AcceptInvitation(ctx, tx, id, userID, at) })
	}
	tests := []struct {
		name string
		id   int64
		at   time.Time
		ok   bool
	}{
		{"revoked", first, now, false},
		{"expired", second, now.Add(time.Hour), false},
		{"open", second, now.Add(time.Minute), true},
		{"accepted already", second, now.Add(2 * time.Minute), false},
	}
	for _, tt := range tests {
		if err := accept(tt.id, tt.at); (err == nil) != tt.ok || err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	if err := tx(func(tx *sql.Tx) error { return store.RevokeInvitation(ctx, tx, second, userID, now) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking an accepted invitation: %v", err)
	}
}
