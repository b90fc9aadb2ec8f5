package main

import (
	"context"
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

	"portal/internal/audit"
	"portal/internal/keys"
	"portal/internal/store"
)

// runRestore puts a backup made by `portal backup` into the data directory of a stopped
// portal. It checks everything before it touches the directory: the manifest, every
// checksum, the audit trail of the backed-up database and that the configured
// key-encryption key opens the kept private keys. The files it replaces are moved aside into
// a before-restore-* directory, never deleted.
func runRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var from *string
	cfg, err := commandConfig("restore", args, getenv, stderr, func(fs *flag.FlagSet) {
		from = fs.String("from", "", "backup directory written by `portal backup --to` (required)")
	})
	if err != nil {
		return err
	}
	if *from == "" {
		return usagef("restore needs --from DIR: a directory written by `portal backup --to DIR`")
	}
	m, err := readBackup(*from)
	if err != nil {
		return err
	}
	unlock, err := lockDataDir(cfg.Data, true)
	if errors.Is(err, errDataDirBusy) {
		return usagef("a portal (or `portal sim`) is running on the data directory %s: stop it first, then restore. Nothing was restored.", cfg.Data)
	}
	if err != nil {
		return err
	}
	defer unlock()

	kek, err := configuredKEK(cfg)
	if err != nil {
		return err
	}
	if err := checkBackupKEK(m, kek, cfg); err != nil {
		return err
	}

	// Stage the copies beside their final names, so the swap is a rename.
	staged := map[string]string{}
	defer func() {
		for _, p := range staged {
			os.Remove(p)
			os.Remove(p + "-wal")
			os.Remove(p + "-shm")
		}
	}()
	for _, f := range m.Files {
		tmp := cfg.dataPath(".restore-" + f.Name + ".tmp")
		if err := copyChecked(filepath.Join(*from, f.Name), tmp, f); err != nil {
			return err
		}
		staged[f.Name] = tmp
	}
	res, err := verifyStagedPortal(ctx, staged[portalDBName], kek, cfg)
	if err != nil {
		return err
	}
	if _, err := os.Stat(staged[portalDBName] + "-wal"); err == nil {
		return fmt.Errorf("the checked copy of %s kept a write-ahead log beside it; nothing was restored", portalDBName)
	}

	aside, moved, err := moveAside(cfg, m.Files)
	if err != nil {
		return err
	}
	for _, f := range m.Files {
		if err := os.Rename(staged[f.Name], cfg.dataPath(f.Name)); err != nil {
			return fmt.Errorf("put %s in place: %w (the previous files are in %s)", f.Name, err, aside)
		}
		delete(staged, f.Name)
	}
	if err := syncDir(cfg.Data); err != nil {
		return err
	}
	if err := recordRestore(ctx, cfg, *from, m, aside); err != nil {
		return fmt.Errorf("record the restore in the audit trail: %w", err)
	}

	fmt.Fprintf(stdout, "restored the backup of %s into %s:\n", m.CreatedAt.Format(time.RFC3339), cfg.Data)
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "  %-10s schema %d, taken %s\n", f.Name, f.SchemaVersion, f.TakenAt.Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "the audit trail verifies: %d events\n", res.Events)
	if len(moved) > 0 {
		fmt.Fprintf(stdout, "the files it replaced (%s) are in %s\n", strings.Join(moved, ", "), aside)
	}
	if n := sumKept(m.KeptKeys); n > 0 {
		fmt.Fprintf(stdout, "%d kept private keys open with the key-encryption key %s\n", n, kek.ID())
	}
	fmt.Fprintln(stdout, "start the portal; its first sync settles any change made upstream after the backup")
	return nil
}

// readBackup reads and checks a backup directory's manifest and files.
func readBackup(dir string) (backupManifest, error) {
	var m backupManifest
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return m, usagef("the backup directory %s does not exist", dir)
	}
	if err != nil {
		return m, fmt.Errorf("backup directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return m, usagef("%s is a file: --from takes the directory `portal backup --to` wrote", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return m, usagef("%s has no %s: it is not a backup made by `portal backup`, or that backup did not finish", dir, manifestName)
	}
	if err != nil {
		return m, fmt.Errorf("read the manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, usagef("the manifest %s is not valid: %v", filepath.Join(dir, manifestName), describeJSONError(err))
	}
	if m.Format != manifestFormat {
		return m, usagef("the backup in %s has format %d; this portal (%s) reads format %d", dir, m.Format, version, manifestFormat)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if f.Name != portalDBName && f.Name != simDBName {
			return m, usagef("the manifest names %q, which no backup holds (only %s and %s): the backup was changed by hand", f.Name, portalDBName, simDBName)
		}
		if seen[f.Name] {
			return m, usagef("the manifest names %s twice", f.Name)
		}
		seen[f.Name] = true
		sum, size, err := fileDigest(filepath.Join(dir, f.Name), false)
		if errors.Is(err, os.ErrNotExist) {
			return m, usagef("the backup lacks %s, which its manifest names: it is incomplete. Nothing was restored.", f.Name)
		}
		if err != nil {
			return m, fmt.Errorf("read %s: %w", f.Name, err)
		}
		if sum != f.SHA256 || size != f.Size {
			return m, usagef("%s in %s does not match its checksum in the manifest: the backup is damaged or was changed. Nothing was restored.", f.Name, dir)
		}
	}
	if !seen[portalDBName] {
		return m, usagef("the backup in %s holds no %s", dir, portalDBName)
	}
	return m, nil
}

// configuredKEK loads the key-encryption key restore's configuration names, without making
// one: nil when none is configured and the data directory has none.
func configuredKEK(cfg Config) (*keys.KEK, error) {
	switch {
	case cfg.kek != "":
		k, err := keys.ParseKEK(cfg.kek)
		if err != nil {
			return nil, fmt.Errorf("PORTAL_KEK: %w", err)
		}
		return k, nil
	case cfg.KEKFile != "":
		return keys.LoadKEKFile(cfg.KEKFile)
	}
	path := cfg.dataPath("kek")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return keys.LoadKEKFile(path)
}

// checkBackupKEK refuses a restore whose kept private keys the configured key-encryption key
// cannot open: the portal would refuse to start on it.
func checkBackupKEK(m backupManifest, kek *keys.KEK, cfg Config) error {
	var foreign []string
	for _, id := range slices.Sorted(maps.Keys(m.KeptKeys)) {
		if kek == nil || id != kek.ID() {
			foreign = append(foreign, fmt.Sprintf("%d under %s", m.KeptKeys[id], id))
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	have := "no key-encryption key is configured and " + cfg.dataPath("kek") + " does not exist"
	if kek != nil {
		have = "the configured key-encryption key is " + kek.ID()
	}
	return usagef("the backup holds kept private keys sealed under another key-encryption key (%s), but %s. "+
		"Put the key-encryption key that was backed up separately at %s (or set PORTAL_KEK_FILE) and restore again; "+
		"without it those private keys are lost. Nothing was restored.", strings.Join(foreign, ", "), have, cfg.dataPath("kek"))
}

// copyChecked copies a backed-up file to dst (mode 0600, synced) and checks the copy's digest.
func copyChecked(src, dst string, f backupFile) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_ = os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("stage %s: %w", f.Name, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("stage %s: %w", f.Name, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("stage %s: %w", f.Name, err)
	}
	sum, _, err := fileDigest(dst, true)
	if err != nil {
		return err
	}
	if sum != f.SHA256 {
		return fmt.Errorf("the staged copy of %s does not match its checksum: the disk may be failing. Nothing was restored", f.Name)
	}
	return nil
}

// verifyStagedPortal opens the staged portal database as the portal would (migrating it when
// the backup is older than this portal), verifies its audit trail and its kept keys.
func verifyStagedPortal(ctx context.Context, path string, kek *keys.KEK, cfg Config) (audit.VerifyResult, error) {
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		return audit.VerifyResult{}, fmt.Errorf("the backed-up %s cannot be opened: %w. Nothing was restored", portalDBName, err)
	}
	defer db.Close()
	res, err := audit.NewLog(db, nil).Verify(ctx)
	var broken *audit.BrokenError
	if errors.As(err, &broken) {
		return res, fmt.Errorf("%w in the backup: event %d: %s. Nothing was restored", errAuditBroken, broken.ID, broken.Reason)
	}
	if err != nil {
		return res, fmt.Errorf("verify the backup's audit trail: %w", err)
	}
	if kek != nil {
		if err := checkKEK(ctx, db, kek); err != nil {
			return res, fmt.Errorf("%w. Nothing was restored", err)
		}
	}
	return res, db.Close()
}

// moveAside moves the databases a restore replaces (with their journals) into a new
// before-restore-* directory in the data directory.
func moveAside(cfg Config, files []backupFile) (string, []string, error) {
	var present []string
	for _, f := range files {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(cfg.dataPath(f.Name + suffix)); err == nil {
				present = append(present, f.Name+suffix)
			}
		}
	}
	if len(present) == 0 {
		return "", nil, nil
	}
	aside := cfg.dataPath("before-restore-" + time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Mkdir(aside, 0o700); err != nil {
		return "", nil, fmt.Errorf("make a directory for the files the restore replaces: %w", err)
	}
	for i, name := range present {
		if err := os.Rename(cfg.dataPath(name), filepath.Join(aside, name)); err != nil {
			// Put back what moved, so the directory is as it was.
			for _, back := range present[:i] {
				_ = os.Rename(filepath.Join(aside, back), cfg.dataPath(back))
			}
			return "", nil, fmt.Errorf("move %s aside: %w. Nothing was restored", name, err)
		}
	}
	return aside, present, nil
}

// recordRestore writes the restore into the restored audit trail.
func recordRestore(ctx context.Context, cfg Config, from string, m backupManifest, aside string) error {
	db, err := store.Open(ctx, cfg.dataPath(portalDBName), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	files := make([]string, 0, len(m.Files))
	for _, f := range m.Files {
		files = append(files, f.Name)
	}
	ev := audit.New(audit.Meta{Actor: "cli"}, "portal.restore", audit.Success, map[string]any{
		"from": from, "backup_created_at": m.CreatedAt, "backup_version": m.Version, "files": files, "moved_aside_to": aside})
	if err := audit.NewLog(db, nil).Append(ctx, ev); err != nil {
		return err
	}
	return db.Close()
}
