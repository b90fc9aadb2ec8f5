package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"portal/internal/store"
)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenSetsPragmasOnEveryConnection(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	// Several concurrent reader connections must all carry the DSN's pragmas.
	conns := make([]*sql.Conn, 2)
	for i := range conns {
		c, err := db.Reader().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		var mode string
		var fk, busy, sync int
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
		c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy)
		c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
		if mode != "wal" || fk != 1 || busy != 10000 || sync != 1 {
			t.Errorf("conn %d: journal_mode=%s foreign_keys=%d busy_timeout=%d synchronous=%d", i, mode, fk, busy, sync)
		}
	}
	if _, err := conns[0].ExecContext(ctx, "INSERT INTO teams (name, created_at) VALUES ('x', 'y')"); err == nil {
		t.Error("the reader pool accepted a write")
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portal.db")
	ctx := t.Context()
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := store.InsertUser(ctx, tx, store.User{Email: "a@example.no", Name: "A", Role: "admin"}, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, _ := db.CountUsers(ctx); n != 1 {
		t.Fatalf("users after reopen = %d", n)
	}
}

func TestUniqueAndNotFound(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	now := time.Now()
	insert := func(email string) error {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := store.InsertUser(ctx, tx, store.User{Email: email, Name: "A", Role: "member"}, now)
			return err
		})
	}
	if err := insert("a@example.no"); err != nil {
		t.Fatal(err)
	}
	if err := insert("A@EXAMPLE.NO"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email (other case): %v", err)
	}
	if _, err := db.UserByID(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
	// A failing function rolls the whole transaction back.
	boom := errors.New("boom")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := store.InsertTeam(ctx, tx, "t", now); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if teams, _ := db.ListTeams(ctx); len(teams) != 0 {
		t.Fatal("rolled-back team was kept")
	}
}

func TestOneTimeTokenWorksOnce(t *testing.T) {
	db := openDB(t)
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		return store.InsertToken(ctx, tx, store.OneTimeToken{Hash: "h", Purpose: "setup", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	use := func(purpose string, at time.Time) error {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := store.UseToken(ctx, tx, "h", purpose, at)
			return err
		})
	}
	tests := []struct {
		name    string
		purpose string
		at      time.Time
		ok      bool
	}{
		{"wrong purpose", "set_password", now, false},
		{"expired", "setup", now.Add(2 * time.Hour), false},
		{"valid", "setup", now.Add(time.Minute), true},
		{"used again", "setup", now.Add(2 * time.Minute), false},
	}
	for _, tt := range tests {
		err := use(tt.purpose, tt.at)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestLoginFailureCounts(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	now := time.Now()
	for i := 0; i < 3; i++ {
		db.InsertLoginFailure(ctx, "a@example.no", "10.0.0.1", now.Add(-time.Duration(i)*10*time.Minute))
	}
	db.InsertLoginFailure(ctx, "b@example.no", "10.0.0.1", now)
	e, a, err := db.CountLoginFailures(ctx, "A@example.no", "10.0.0.1", now.Add(-15*time.Minute))
	if err != nil || e != 2 || a != 3 {
		t.Fatalf("byEmail=%d byAddress=%d err=%v", e, a, err)
	}
}
