package main

// `portal backup` and `portal restore`: consistent online copies of the portal's and the
// simulators' databases, and putting them back into a stopped portal's data directory.
//
// A backup is a directory with one file per database, each a snapshot made with SQLite's
// VACUUM INTO while the portal serves, and manifest.json naming them with their checksums.
// The portal's database is copied before the simulators', so a restored pair looks like a
// portal that stopped while its upstream went on: the first sync settles the rest, as after a
// crash. The key-encryption key is never copied: it must be kept apart from the backups.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"portal/internal/keys"
	"portal/internal/store"
)

const (
	manifestName   = "manifest.json"
	manifestFormat = 1
	portalDBName   = "portal.db"
	simDBName      = "sim.db"
)

// backupManifest describes a backup; restore trusts nothing in the directory it does not name.
type backupManifest struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	Version   string    `json:"portal_version"`
	// KeptKeys counts the private keys sealed in portal.db by the id of the key-encryption key
	// that sealed them. The key itself is not in the backup.
	KeptKeys map[string]int `json:"kept_keys"`
	Files    []backupFile   `json:"files"`
}

type backupFile struct {
	Name          string    `json:"name"`
	Size          int64     `json:"size"`
	SHA256        string    `json:"sha256"`
	SchemaVersion int64     `json:"schema_version"`
	TakenAt       time.Time `json:"taken_at"`
}

// backupSources are the databases a backup holds, in the order they are copied, with the
// table of their migration history; portal.db is required, sim.db is there when simulated.
var backupSources = []struct {
	name, gooseTable string
	required         bool
}{
	{portalDBName, "goose_db_version", true},
	{simDBName, "sim_goose_db_version", false},
}

const kekReminder = `Remember: the key-encryption key is NOT in this backup, by design. Back it up separately
(the file %s, or wherever PORTAL_KEK / kek_file comes from) and keep it apart from the backups.
Without it the private keys the portal keeps cannot be opened after a restore and are lost.`

func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var to *string
	cfg, err := commandConfig("backup", args, getenv, stderr, func(fs *flag.FlagSet) {
		to = fs.String("to", "", "directory to write the backup into; it must be new or empty (required)")
	})
	if err != nil {
		return err
	}
	if *to == "" {
		return usagef("backup needs --to DIR: a new or empty directory to write the backup into")
	}
	if _, err := os.Stat(cfg.dataPath(portalDBName)); err != nil {
		return usagef("there is no portal database at %s: is --data (or PORTAL_DATA) right?", cfg.dataPath(portalDBName))
	}
	if err := prepareBackupDir(*to); err != nil {
		return err
	}
	m := backupManifest{Format: manifestFormat, CreatedAt: time.Now().UTC(), Version: version, KeptKeys: map[string]int{}}
	for _, src := range backupSources {
		path := cfg.dataPath(src.name)
		if _, err := os.Stat(path); err != nil {
			if src.required {
				return fmt.Errorf("%s: %w", path, err)
			}
			continue
		}
		f, err := snapshotDB(ctx, path, *to, src.name, src.gooseTable, m.KeptKeys)
		if err != nil {
			return fmt.Errorf("back up %s: %w", src.name, err)
		}
		m.Files = append(m.Files, f)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// The manifest comes last: a backup without one was cut short and restore refuses it.
	if err := writeFileAtomic(filepath.Join(*to, manifestName), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	if err := syncDir(*to); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up to %s:\n", *to)
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "  %-10s %9d bytes  schema %d  sha256 %s\n", f.Name, f.Size, f.SchemaVersion, f.SHA256)
	}
	if n := sumKept(m.KeptKeys); n > 0 {
		fmt.Fprintf(stdout, "  %d kept private keys, sealed under key-encryption key %s\n", n, strings.Join(slices.Sorted(maps.Keys(m.KeptKeys)), ", "))
	}
	fmt.Fprintf(stdout, "\n"+kekReminder+"\n", kekSource(cfg))
	return nil
}

func sumKept(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// kekSource names where this configuration takes its key-encryption key from.
func kekSource(cfg Config) string {
	switch {
	case cfg.kek != "":
		return "PORTAL_KEK"
	case cfg.KEKFile != "":
		return cfg.KEKFile
	}
	return cfg.dataPath("kek")
}

// prepareBackupDir makes dir (owner-only) or accepts it when it is an empty directory.
func prepareBackupDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("make the backup directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("backup directory %s: %w", dir, err)
	case !fi.IsDir():
		return usagef("%s is a file, not a directory: give --to a new or empty directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("backup directory %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return usagef("%s is not empty (it holds %s): back up into a new or empty directory, so that no older backup is mixed in",
			dir, entries[0].Name())
	}
	return nil
}

// snapshotDB copies the database at src into dir/name with VACUUM INTO (a consistent
// snapshot, taken while others write), as a self-contained file with no journal beside it.
// Kept private keys found in a portal database are counted into kept by KEK id.
func snapshotDB(ctx context.Context, src, dir, name, gooseTable string, kept map[string]int) (backupFile, error) {
	f := backupFile{Name: name}
	tmp := filepath.Join(dir, "."+name+".tmp")
	_ = os.Remove(tmp)
	defer os.Remove(tmp)
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return f, err
	}
	db.SetMaxOpenConns(1)
	f.TakenAt = time.Now().UTC()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", tmp)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return f, err
	}
	if err := inspectSnapshot(ctx, tmp, gooseTable, name == portalDBName, &f, kept); err != nil {
		return f, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return f, err
	}
	if f.SHA256, f.Size, err = fileDigest(tmp, true); err != nil {
		return f, err
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp, final); err != nil {
		return f, err
	}
	return f, nil
}

// inspectSnapshot turns a fresh copy into a single-file database, checks it and reads its
// schema version (and, for the portal's, who sealed its kept keys).
func inspectSnapshot(ctx context.Context, path, gooseTable string, portal bool, f *backupFile, kept map[string]int) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	defer db.Close()
	var mode, check string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return err
	}
	if check != "ok" {
		return fmt.Errorf("the copy does not pass SQLite's quick_check: %s", check)
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version_id) FROM "+gooseTable+" WHERE is_applied").Scan(&v); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	f.SchemaVersion = v.Int64
	if !portal {
		return db.Close()
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	recs, err := store.SealedKeysTx(ctx, tx)
	if err != nil {
		return fmt.Errorf("read the kept keys: %w", err)
	}
	for _, r := range recs {
		id, err := keys.SealedKEKID(r.Sealed)
		if err != nil {
			id = "unknown"
		}
		kept[id]++
	}
	if err := tx.Rollback(); err != nil {
		return err
	}
	return db.Close()
}

// fileDigest returns a file's SHA-256 and size, syncing it to disk first when asked.
func fileDigest(path string, fsync bool) (string, int64, error) {
	fl, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer fl.Close()
	if fsync {
		if err := fl.Sync(); err != nil {
			return "", 0, err
		}
	}
	h := sha256.New()
	n, err := io.Copy(h, fl)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
