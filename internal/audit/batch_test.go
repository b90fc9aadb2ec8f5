package audit_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/store"
)

// A batch continues the chain Record started, and Record continues the batch's: the whole
// trail verifies.
func TestBatchKeepsTheChain(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	now := time.Now()
	log := audit.NewLog(db, nil)
	if err := log.Append(ctx, audit.New(audit.Meta{Actor: "a"}, "first", audit.Success, nil)); err != nil {
		t.Fatal(err)
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		b, err := audit.NewBatch(ctx, tx)
		if err != nil {
			return err
		}
		defer b.Close()
		for i := range 50 {
			ev := audit.New(audit.Meta{ActorID: int64(i), Actor: "seed"}, "bulk", audit.Success, map[string]any{"n": i})
			ev.Env, ev.TeamID, ev.Target = "tt02", int64(i%3), fmt.Sprint(i)
			if _, err := b.Append(ctx, ev, now.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Append(ctx, audit.New(audit.Meta{Actor: "a"}, "last", audit.Success, nil)); err != nil {
		t.Fatal(err)
	}
	res, err := log.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 52 || res.LastID != 52 {
		t.Fatalf("%+v", res)
	}
}
