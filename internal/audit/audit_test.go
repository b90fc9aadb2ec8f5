package audit_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/store"
)

func setup(t *testing.T, n int) (*store.DB, *audit.Log) {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l := audit.NewLog(db, func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })
	for i := 0; i < n; i++ {
		ev := audit.New(audit.Meta{ActorID: 1, Actor: "ada@example.no", Address: "10.0.0.1", RequestID: "r"}, audit.ActionTeamCreate, audit.Success, map[string]any{"i": i})
		if err := l.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	return db, l
}

func TestChainVerifies(t *testing.T) {
	_, l := setup(t, 5)
	res, err := l.Verify(t.Context())
	if err != nil || res.Events != 5 || res.LastID != 5 {
		t.Fatalf("verify: %+v %v", res, err)
	}
	// Incremental verification from a checkpoint gives the same head.
	part, err := l.VerifyFrom(t.Context(), 0, audit.GenesisHash)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := l.Recent(t.Context(), 10)
	if evs[0].Hash != part.LastHash {
		t.Fatal("head hash differs")
	}
	rest, err := l.VerifyFrom(t.Context(), 3, evs[2].Hash)
	if err != nil || rest.Events != 2 {
		t.Fatalf("from checkpoint: %+v %v", rest, err)
	}
}

func TestNoUpdateOrDelete(t *testing.T) {
	db, _ := setup(t, 2)
	for _, q := range []string{"UPDATE audit_events SET actor = 'eve' WHERE id = 1", "DELETE FROM audit_events WHERE id = 2"} {
		err := db.Tx(t.Context(), func(tx *sql.Tx) error {
			_, err := tx.ExecContext(t.Context(), q)
			return err
		})
		if err == nil {
			t.Errorf("%s was allowed", q)
		}
	}
}

func TestTamperingIsNamed(t *testing.T) {
	tests := []struct {
		name   string
		sql    string
		wantID int64
	}{
		{"changed actor", "UPDATE audit_events SET actor = 'eve@example.no' WHERE id = 3", 3},
		{"changed details", `UPDATE audit_events SET details = '{"i":99}' WHERE id = 4`, 4},
		{"removed event", "DELETE FROM audit_events WHERE id = 2", 2},
		{"rehashed without relinking", "UPDATE audit_events SET prev_hash = 'x' WHERE id = 5", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, l := setup(t, 6)
			err := db.Tx(t.Context(), func(tx *sql.Tx) error {
				for _, q := range []string{"DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete", tt.sql} {
					if _, err := tx.ExecContext(t.Context(), q); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Verify(t.Context())
			var be *audit.BrokenError
			if !errors.As(err, &be) || be.ID != tt.wantID {
				t.Fatalf("verify = %v, want broken at %d", err, tt.wantID)
			}
		})
	}
}

func TestHashIsStable(t *testing.T) {
	ev := audit.Event{ID: 1, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Actor: "a", Action: "x", Outcome: "success",
		Details: []byte(`{}`), PrevHash: audit.GenesisHash}
	h1, _ := audit.HashOf(ev)
	h2, _ := audit.HashOf(ev)
	ev.Actor = "b"
	h3, _ := audit.HashOf(ev)
	if h1 != h2 || h1 == h3 || len(h1) != 64 {
		t.Fatalf("hashes %s %s %s", h1, h2, h3)
	}
}
