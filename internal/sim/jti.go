package sim

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
)

// jtiStore remembers the jtis of used grants (§1.2: a jti is never accepted twice while a
// grant carrying it could be valid). A use is decided in memory and written to sim.db in
// batches, because one SQLite commit per token cost as much CPU as a tenth of the token's RSA
// work. Memory stays flat however many jtis are live: the jtis not yet written are held
// exactly, the written ones only in Bloom filters of fixed size, and a filter's rare "maybe"
// is settled by reading sim.db.
//
// The filters are generations: each takes the jtis of about a minute (or filterN jtis), and
// a generation is dropped by the sweep that deletes the last of its rows from sim.db, so a
// filter never forgets a jti sim.db still holds, whatever the environment's clock does.
//
// What a crash can lose: jtis accepted in the last flushEvery before the process was killed
// (a clean stop writes them all). SQLite's synchronous=NORMAL already gives up the last
// commits on power loss; this extends that to a kill, for at most that fraction of a second.
type jtiStore struct {
	wdb    *sql.DB
	lookup *sql.Stmt // on the reader pool
	insert *sql.Stmt // on the writer
	log    *slog.Logger

	mu      sync.Mutex
	pending map[jtiKey]int64 // accepted, not written yet; value: exp
	writing map[jtiKey]int64 // being written by the flusher
	gens    map[string][]*jtiGen
	// filterN and filterFP size each generation's filter.
	filterN  uint
	filterFP float64
	// maxPending refuses tokens rather than let memory grow without bound while sim.db
	// cannot be written (disk full, say).
	maxPending int

	wake chan struct{} // the first jti after a flush
	full chan struct{} // flushAt jtis wait
}

type jtiKey struct{ env, client, jti string }

// jtiGen is one generation of written (or about to be written) jtis of one environment.
type jtiGen struct {
	f      *bloom.BloomFilter
	n      uint
	maxExp int64
	opened time.Time
}

const (
	// flushEvery bounds how long an accepted jti waits for sim.db.
	flushEvery = 50 * time.Millisecond
	// flushAt writes early when this many jtis wait.
	flushAt = 1024
	// genEvery starts a new filter generation.
	genEvery = time.Minute
)

var errJTIBacklog = errors.New("used jtis cannot be written to sim.db")

func newJTIStore(ctx context.Context, wdb, rdb *sql.DB, log *slog.Logger) (*jtiStore, error) {
	j := &jtiStore{
		wdb: wdb, log: log,
		pending: map[jtiKey]int64{},
		gens:    map[string][]*jtiGen{},
		// A minute at a thousand tokens a second; a use then reads sim.db about once in a
		// thousand per live generation.
		filterN:    64_000,
		filterFP:   0.001,
		maxPending: 50_000,
		wake:       make(chan struct{}, 1),
		full:       make(chan struct{}, 1),
	}
	var err error
	// One statement writes a whole batch, passed as a JSON array of [env, client, jti, exp].
	if j.insert, err = wdb.PrepareContext(ctx, `INSERT INTO sim_used_jtis (env, client_id, jti, exp)
		SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?) WHERE true
		ON CONFLICT DO NOTHING`); err != nil {
		return nil, fmt.Errorf("prepare jti insert: %w", err)
	}
	if j.lookup, err = rdb.PrepareContext(ctx,
		`SELECT 1 FROM sim_used_jtis WHERE env = ? AND client_id = ? AND jti = ?`); err != nil {
		j.close()
		return nil, fmt.Errorf("prepare jti lookup: %w", err)
	}
	if err := j.load(ctx, rdb); err != nil {
		j.close()
		return nil, err
	}
	return j, nil
}

// load fills the filters with the jtis earlier runs wrote.
func (j *jtiStore) load(ctx context.Context, rdb *sql.DB) error {
	rows, err := rdb.QueryContext(ctx, `SELECT env, client_id, jti, exp FROM sim_used_jtis`)
	if err != nil {
		return fmt.Errorf("load used jtis: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k jtiKey
		var exp int64
		if err := rows.Scan(&k.env, &k.client, &k.jti, &exp); err != nil {
			return fmt.Errorf("load used jtis: %w", err)
		}
		j.add(k.env, k.bytes(), exp)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load used jtis: %w", err)
	}
	return nil
}

func (k jtiKey) bytes() []byte {
	b := make([]byte, 0, len(k.client)+1+len(k.jti))
	b = append(b, k.client...)
	b = append(b, 0)
	return append(b, k.jti...)
}

// add puts a jti into the environment's current generation, opening a new one when it is
// full or old. j.mu is held (or the store is not shared yet).
func (j *jtiStore) add(env string, kb []byte, exp int64) {
	gs := j.gens[env]
	var g *jtiGen
	if len(gs) > 0 {
		g = gs[len(gs)-1]
	}
	if g == nil || g.n >= j.filterN || time.Since(g.opened) >= genEvery {
		g = &jtiGen{f: bloom.NewWithEstimates(j.filterN, j.filterFP), opened: time.Now()}
		j.gens[env] = append(gs, g)
	}
	g.f.Add(kb)
	g.n++
	g.maxExp = max(g.maxExp, exp)
}

// maybeUsed reports whether a filter of env may hold the jti. j.mu is held.
func (j *jtiStore) maybeUsed(env string, kb []byte) bool {
	for _, g := range j.gens[env] {
		if g.f.Test(kb) {
			return true
		}
	}
	return false
}

// use records jti as used until exp and reports whether it had been used before.
func (j *jtiStore) use(ctx context.Context, env, client, jti string, exp int64) (replayed bool, err error) {
	k := jtiKey{env, client, jti}
	kb := k.bytes()
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.pending[k]; ok {
		return true, nil
	}
	if _, ok := j.writing[k]; ok {
		return true, nil
	}
	if j.maybeUsed(env, kb) {
		var one int
		switch err := j.lookup.QueryRowContext(ctx, env, client, jti).Scan(&one); {
		case err == nil:
			return true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return false, fmt.Errorf("look up jti: %w", err)
		}
	}
	if len(j.pending) >= j.maxPending {
		return false, errJTIBacklog
	}
	j.add(env, kb, exp)
	j.pending[k] = exp
	switch len(j.pending) {
	case 1:
		signal(j.wake)
	case flushAt:
		signal(j.full)
	}
	return false, nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run writes pending jtis flushEvery after the first of them arrived (sooner when many wait)
// until stop is closed, then writes what is left. An idle simulator does not wake; after a
// failed write the next try waits a second.
func (j *jtiStore) run(stop <-chan struct{}) {
	t := time.NewTimer(flushEvery)
	t.Stop()
	failed := false
	for {
		select {
		case <-stop:
			j.flush()
			return
		case <-j.wake:
		}
		full := j.full
		if failed {
			t.Reset(time.Second)
			full = nil // a backlog waits for the retry too
		} else {
			t.Reset(flushEvery)
		}
		select {
		case <-stop:
			j.flush()
			return
		case <-t.C:
		case <-full:
			t.Stop()
		}
		failed = j.flush() != nil
	}
}

// flush writes the pending jtis in one statement. On failure they stay in memory (still
// refused on replay) and are tried again at the next flush.
func (j *jtiStore) flush() error {
	j.mu.Lock()
	if len(j.pending) == 0 {
		j.mu.Unlock()
		return nil
	}
	batch := j.pending
	j.writing, j.pending = batch, make(map[jtiKey]int64, len(batch))
	j.mu.Unlock()

	err := j.write(batch)

	j.mu.Lock()
	j.writing = nil
	if err != nil {
		for k, exp := range batch {
			j.pending[k] = exp
		}
	}
	n := len(j.pending)
	if n > 0 {
		signal(j.wake) // what arrived meanwhile, or the failed batch, waits its turn
	}
	j.mu.Unlock()
	if err != nil {
		j.log.Error("write used jtis", "count", len(batch), "waiting", n, "err", err)
	}
	return err
}

func (j *jtiStore) write(batch map[jtiKey]int64) error {
	rows := make([][4]any, 0, len(batch))
	for k, exp := range batch {
		rows = append(rows, [4]any{k.env, k.client, k.jti, exp})
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = j.insert.ExecContext(ctx, string(b))
	return err
}

// sweep forgets the jtis of env that expired before now: the rows in sim.db and the
// generations whose every jti has expired (their rows went with this delete).
func (j *jtiStore) sweep(ctx context.Context, env string, now int64) error {
	if _, err := j.wdb.ExecContext(ctx, `DELETE FROM sim_used_jtis WHERE env = ? AND exp < ?`, env, now); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gens[env] = slices.DeleteFunc(j.gens[env], func(g *jtiGen) bool { return g.maxExp < now })
	return nil
}

func (j *jtiStore) close() error {
	var errs []error
	if j.insert != nil {
		errs = append(errs, j.insert.Close())
	}
	if j.lookup != nil {
		errs = append(errs, j.lookup.Close())
	}
	return errors.Join(errs...)
}
