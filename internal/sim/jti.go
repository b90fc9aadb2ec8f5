package sim

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// jtiFlushInterval is how often used jtis are written down. A grant costs no write of its own
// (a per-token SQLite write was a measurable share of a token's CPU); if the process dies, at
// most this interval's jtis are forgotten, while their grants are still within their 120 s.
const jtiFlushInterval = 50 * time.Millisecond

type jtiKey struct{ env, client, jti string }

type jtiRow struct {
	key jtiKey
	exp int64
}

// jtiLedger decides replays in memory and persists used jtis in batches; Open reloads them,
// so a replay across a clean restart is still refused.
type jtiLedger struct {
	mu      sync.Mutex
	seen    map[jtiKey]int64 // jti -> until when it is remembered (unix seconds)
	pending []jtiRow
}

// use records a jti and reports false when it was used before and is still remembered.
func (l *jtiLedger) use(k jtiKey, until, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.seen[k]; ok && prev >= now {
		return false
	}
	l.seen[k] = until
	l.pending = append(l.pending, jtiRow{key: k, exp: until})
	return true
}

func (l *jtiLedger) load(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT env, client_id, jti, exp FROM sim_used_jtis`)
	if err != nil {
		return fmt.Errorf("load used jtis: %w", err)
	}
	defer rows.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = map[jtiKey]int64{}
	for rows.Next() {
		var k jtiKey
		var exp int64
		if err := rows.Scan(&k.env, &k.client, &k.jti, &exp); err != nil {
			return fmt.Errorf("load used jtis: %w", err)
		}
		l.seen[k] = exp
	}
	return rows.Err()
}

// prune forgets an environment's jtis that have expired.
func (l *jtiLedger) prune(env string, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, exp := range l.seen {
		if k.env == env && exp < now {
			delete(l.seen, k)
		}
	}
}

// flush writes the pending jtis in one transaction.
func (s *Sim) flushJTIs() {
	l := &s.jtis
	l.mu.Lock()
	batch := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := func() error {
		tx, err := s.wdb.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		st := tx.StmtContext(ctx, s.insertJTI)
		for _, r := range batch {
			if _, err := st.ExecContext(ctx, r.key.env, r.key.client, r.key.jti, r.exp); err != nil {
				tx.Rollback()
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		// Still decided in memory; only a restart could forget them.
		s.log.Warn("persist used jtis", "count", len(batch), "err", err)
	}
}

func (s *Sim) runJTIFlusher() {
	defer s.wg.Done()
	t := time.NewTicker(jtiFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.flushJTIs()
			return
		case <-t.C:
			s.flushJTIs()
		}
	}
}
