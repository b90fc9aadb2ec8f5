package sim

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// gooseTable keeps the simulator's migration history apart from anything else in the file.
const gooseTable = "sim_goose_db_version"

// dsn puts every pragma in the DSN so each pooled connection gets it; busy_timeout comes first
// so that switching to WAL waits for a concurrent opener instead of failing.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
}

// openDB opens sim.db with a one-connection writer pool (SQLite has one writer at a time, so
// queueing in Go is cheaper than spinning on the busy handler) and a small reader pool.
func openDB(ctx context.Context, dir string) (w, r *sql.DB, err error) {
	path := filepath.Join(dir, "sim.db")
	if err := privateFiles(path); err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	w, err = sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, nil, err
	}
	r, err = sql.Open("sqlite", dsn(path))
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetConnMaxIdleTime(5 * time.Minute)
	return w, r, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub,
		goose.WithTableName(gooseTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate sim.db: %w", err)
	}
	return nil
}

// timestamp formats t the way Digdir's API does (UTC, milliseconds).
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// privateFiles creates the database file owner-only (0600) before SQLite opens it, and makes
// an existing one and its -wal and -shm files owner-only too. SQLite gives the -wal and -shm
// files it creates later the database file's mode, so they follow.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
