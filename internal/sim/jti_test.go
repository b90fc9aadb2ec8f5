package sim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// newTestJTIStore opens a fresh sim.db and a store whose filters answer "maybe" often, so
// that the reads of sim.db that settle a filter's doubt are exercised too.
func newTestJTIStore(t *testing.T, dir string) (*jtiStore, *sql.DB) {
	t.Helper()
	w, r, err := openDB(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	j, err := newJTIStore(t.Context(), w, r, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.close() })
	j.filterN, j.filterFP = 16, 0.5
	return j, w
}

func mustUse(t *testing.T, j *jtiStore, env, client, jti string, exp int64, wantReplayed bool) {
	t.Helper()
	replayed, err := j.use(t.Context(), env, client, jti, exp)
	if err != nil {
		t.Fatalf("use %s/%s/%s: %v", env, client, jti, err)
	}
	if replayed != wantReplayed {
		t.Fatalf("use %s/%s/%s exp %d: replayed %v, want %v", env, client, jti, exp, replayed, wantReplayed)
	}
}

func rowCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM sim_used_jtis`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestJTIStoreDecidesExactly(t *testing.T) {
	for _, size := range []struct {
		n  uint
		fp float64
	}{{16, 0.5}, {64_000, 0.001}} {
		t.Run(fmt.Sprintf("filters of %d at %g", size.n, size.fp), func(t *testing.T) {
			j, db := newTestJTIStore(t, t.TempDir())
			j.filterN, j.filterFP = size.n, size.fp
			testJTIStoreDecidesExactly(t, j, db)
		})
	}
}

func testJTIStoreDecidesExactly(t *testing.T, j *jtiStore, db *sql.DB) {
	const exp = 5_000
	// Many distinct jtis: the small filters say "maybe" for most, sim.db says no.
	for i := range 300 {
		mustUse(t, j, "tt02", "c1", fmt.Sprint("jti-", i), exp+int64(i%3), false)
		if i == 150 {
			if err := j.flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := len(j.gens["tt02"]), int(299/j.filterN)+1; got != want {
		t.Errorf("%d filter generations after 300 jtis of %d each, want %d", got, j.filterN, want)
	}
	if err := j.flush(); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, db); n != 300 {
		t.Fatalf("%d rows written, want 300", n)
	}
	for _, c := range []struct {
		name, env, client, jti string
		exp                    int64
		replayed               bool
	}{
		{"same grant", "tt02", "c1", "jti-7", exp + 1, true},
		{"same jti in a new grant", "tt02", "c1", "jti-7", exp + 90, true},
		{"same jti, other client", "tt02", "c2", "jti-7", exp, false},
		{"same jti, other environment", "prod", "c1", "jti-7", exp, false},
		{"new jti", "tt02", "c1", "jti-new", exp, false},
		{"new jti used again before it is written", "tt02", "c1", "jti-new", exp, true},
	} {
		t.Run(c.name, func(t *testing.T) { mustUse(t, j, c.env, c.client, c.jti, c.exp, c.replayed) })
	}
}

func TestJTIStoreSurvivesRestartAndSweep(t *testing.T) {
	dir := t.TempDir()
	j, db := newTestJTIStore(t, dir)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { j.run(stop); close(done) }()
	mustUse(t, j, "tt02", "c1", "early", 1_000, false)
	// The flusher writes without being asked.
	deadline := time.Now().Add(5 * time.Second)
	for rowCount(t, db) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the flusher wrote nothing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A clean stop writes what waits.
	mustUse(t, j, "tt02", "c1", "late", 2_000, false)
	close(stop)
	<-done
	if n := rowCount(t, db); n != 2 {
		t.Fatalf("%d rows after stop, want 2", n)
	}

	// A new store on the same file (a restart) knows both.
	j2, _ := newTestJTIStore(t, dir)
	mustUse(t, j2, "tt02", "c1", "early", 1_000, true)
	mustUse(t, j2, "tt02", "c1", "late", 2_000, true)

	// The sweep forgets what expired, rows and filters alike, and nothing else.
	if err := j2.sweep(t.Context(), "tt02", 1_500); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, db); n != 1 {
		t.Fatalf("%d rows after the sweep, want 1", n)
	}
	mustUse(t, j2, "tt02", "c1", "late", 2_000, true)
	if err := j2.sweep(t.Context(), "tt02", 2_001); err != nil {
		t.Fatal(err)
	}
	if g := len(j2.gens["tt02"]); g != 0 {
		t.Errorf("%d generations left after everything expired", g)
	}
	mustUse(t, j2, "tt02", "c1", "early", 3_000, false)
}

func TestJTIStoreWhenSimDBCannotBeWritten(t *testing.T) {
	j, db := newTestJTIStore(t, t.TempDir())
	j.maxPending = 3
	mustUse(t, j, "tt02", "c1", "a", 1_000, false)
	mustUse(t, j, "tt02", "c1", "b", 1_000, false)
	if _, err := db.ExecContext(t.Context(), `DROP TABLE sim_used_jtis`); err != nil {
		t.Fatal(err)
	}
	if err := j.flush(); err == nil {
		t.Fatal("flush into a dropped table succeeded")
	}
	// The batch that could not be written is still remembered, and memory stays bounded.
	mustUse(t, j, "tt02", "c1", "a", 1_000, true)
	mustUse(t, j, "tt02", "c1", "c", 1_000, false)
	if _, err := j.use(context.Background(), "tt02", "c1", "d", 1_000); !errors.Is(err, errJTIBacklog) {
		t.Fatalf("fourth jti with nothing written: %v, want errJTIBacklog", err)
	}
}
