package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"portal/internal/audit"
	"portal/internal/keys"
	"portal/internal/mfa"
	"portal/internal/store"
)

// actionKeysRekey is the audit action of `portal keys rekey`.
const actionKeysRekey = "keys.rekey"

const keysUsage = `usage:
  portal keys new-kek --out FILE           write a new key-encryption key to FILE (mode 0600; never overwrites)
  portal keys rekey --new-kek-file FILE    re-seal every kept private key under the KEK in FILE and switch to it
                                           (stop the portal first)`

// errKEKMismatch says kept keys are sealed under a key-encryption key the portal was not given.
var errKEKMismatch = errors.New("kept private keys are sealed under another key-encryption key")

// runKeys dispatches `portal keys SUBCOMMAND`.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", keysUsage)
	}
	switch args[0] {
	case "new-kek":
		return runNewKEK(args[1:], stdout, stderr)
	case "rekey":
		return runRekey(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, keysUsage)
		return nil
	}
	return usagef("unknown keys command %q\n%s", args[0], keysUsage)
}

// runNewKEK writes a fresh key-encryption key file for a later rekey.
func runNewKEK(args []string, stdout, stderr io.Writer) error {
	set := newFlagSet("keys new-kek", stderr)
	out := set.String("out", "", "path of the new key-encryption key file (must not exist)")
	if err := parseFlags(set, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("keys new-kek needs --out FILE")
	}
	k, err := keys.CreateKEKFile(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote key-encryption key %s to %s (mode 0600); back it up apart from the database, then run: portal keys rekey --new-kek-file %s\n",
		k.ID(), *out, *out)
	return nil
}

// kekOrigin says where the current key-encryption key came from, which decides how a rekey
// switches the portal to the new one.
type kekOrigin int

const (
	kekFromDataDir kekOrigin = iota // data/kek, the embedded default: the rekey replaces it
	kekFromEnv                      // PORTAL_KEK
	kekFromEnvFile                  // PORTAL_KEK_FILE
	kekFromConfig                   // kek_file in the config file
)

func currentKEKOrigin(cfg Config, getenv func(string) string) kekOrigin {
	switch {
	case cfg.kek != "":
		return kekFromEnv
	case getenv("PORTAL_KEK_FILE") != "":
		return kekFromEnvFile
	case cfg.KEKFile != "":
		return kekFromConfig
	}
	return kekFromDataDir
}

// runRekey re-seals every kept private key under a new key-encryption key in one transaction,
// then switches the portal to that key.
func runRekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var newFile *string
	cfg, err := commandConfig("keys rekey", args, getenv, stderr, func(f *flag.FlagSet) {
		newFile = f.String("new-kek-file", "", "the new key-encryption key file (make one with: portal keys new-kek --out FILE)")
	})
	if err != nil {
		return err
	}
	if *newFile == "" {
		return usagef("keys rekey needs --new-kek-file FILE (make one with: portal keys new-kek --out FILE)")
	}
	log := newLogger(cfg, stderr)
	next, err := keys.LoadKEKFile(*newFile)
	if err != nil {
		return usagef("--new-kek-file: %v (make a new key-encryption key with: portal keys new-kek --out FILE)", err)
	}
	origin := currentKEKOrigin(cfg, getenv)
	if origin == kekFromDataDir {
		// loadKEK would create a missing data/kek, and there is nothing to rekey from then.
		if _, err := os.Lstat(cfg.dataPath("kek")); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no current key-encryption key: %s does not exist (the portal creates it on first start); if the portal uses another one, set PORTAL_KEK_FILE or kek_file to it", cfg.dataPath("kek"))
		}
	}
	cur, err := loadKEK(cfg, log)
	if err != nil {
		return fmt.Errorf("current key-encryption key: %w", err)
	}
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	if cur.ID() == next.ID() {
		// Already switched, for example by an earlier run: check, change nothing.
		if err := checkKEK(ctx, db, cur); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the portal already uses key-encryption key %s and every kept private key is sealed under it: nothing to do\n", cur.ID())
		return nil
	}

	var res rekeyResult
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if res, err = resealAll(ctx, tx, cur, next); err != nil {
			return err
		}
		// TOTP secrets are sealed under the same key-encryption key.
		if res.totp, err = mfa.ResealTOTPSecrets(ctx, tx, cur, next); err != nil {
			return err
		}
		details := map[string]any{"count": res.resealed, "already": res.already, "old_kek_id": cur.ID(), "new_kek_id": next.ID()}
		if res.totp > 0 {
			details["totp_secrets"] = res.totp
		}
		ev := audit.New(audit.Meta{Actor: "cli"}, actionKeysRekey, audit.Success, details)
		ev.TargetType, ev.Target = "kek", next.ID()
		_, err = audit.Record(ctx, tx, ev, time.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("rekey refused, nothing was changed: %w", err)
	}
	fmt.Fprintf(stdout, "re-sealed %s under key-encryption key %s", plural(res.resealed, "kept private key"), next.ID())
	if res.already > 0 {
		fmt.Fprintf(stdout, " (%d already were)", res.already)
	}
	if res.totp > 0 {
		fmt.Fprintf(stdout, ", and %s", plural(res.totp, "TOTP secret"))
	}
	fmt.Fprintln(stdout)
	return switchKEK(stdout, cfg, origin, cur, next, *newFile)
}

// rekeyResult counts what a rekey did.
type rekeyResult struct {
	resealed int // moved from the current KEK to the new one
	already  int // sealed under the new KEK before this run (an interrupted earlier rekey)
	totp     int // TOTP secrets moved to the new KEK
}

// resealAll re-seals every kept key from cur to next inside tx, verifying each. A key sealed
// under any other KEK stops the whole rekey, so none is left behind unnoticed.
func resealAll(ctx context.Context, tx *sql.Tx, cur, next *keys.KEK) (rekeyResult, error) {
	var res rekeyResult
	recs, err := store.SealedKeysTx(ctx, tx)
	if err != nil {
		return res, err
	}
	var move []store.KeyRecord
	var unknown []string
	for _, r := range recs {
		id, err := keys.SealedKEKID(r.Sealed)
		if err != nil {
			return res, fmt.Errorf("kept key %s: %w", keyName(r), err)
		}
		switch id {
		case next.ID():
			res.already++
		case cur.ID():
			move = append(move, r)
		default:
			unknown = append(unknown, fmt.Sprintf("%s (sealed under key-encryption key %s)", keyName(r), id))
		}
	}
	if len(unknown) > 0 {
		return res, fmt.Errorf("%w: neither the current key-encryption key %s nor the new one %s sealed these %d:\n  - %s\ngive the portal the key-encryption key that sealed them, or delete those keys, before rekeying",
			errKEKMismatch, cur.ID(), next.ID(), len(unknown), strings.Join(unknown, "\n  - "))
	}
	for _, r := range move {
		if err := resealOne(ctx, tx, cur, next, r); err != nil {
			return res, fmt.Errorf("kept key %s: %w", keyName(r), err)
		}
		res.resealed++
	}
	return res, nil
}

// resealOne moves one key to next and checks, before the commit, that it opens under next to
// the same private key.
func resealOne(ctx context.Context, tx *sql.Tx, cur, next *keys.KEK, r store.KeyRecord) error {
	before, err := keys.Open(cur, r.Env, r.ClientID, r.KID, r.Sealed)
	if err != nil {
		return err
	}
	defer clear(before)
	sealed, err := keys.Reseal(cur, next, r.Env, r.ClientID, r.KID, r.Sealed)
	if err != nil {
		return err
	}
	after, err := keys.Open(next, r.Env, r.ClientID, r.KID, sealed)
	if err != nil {
		return fmt.Errorf("re-sealed key does not open under the new key-encryption key: %w", err)
	}
	defer clear(after)
	if !bytes.Equal(before, after) {
		return errors.New("re-sealed key opens to something else under the new key-encryption key")
	}
	return store.ResealKey(ctx, tx, r.Env, r.ClientID, r.KID, sealed, next.ID())
}

func keyName(r store.KeyRecord) string { return r.Env + "/" + r.ClientID + "/" + r.KID }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// switchKEK makes the portal use next after the keys were re-sealed. It replaces data/kek in the
// embedded default; a KEK the operator configured is theirs to change, so it says what to change.
func switchKEK(stdout io.Writer, cfg Config, origin kekOrigin, cur, next *keys.KEK, newFile string) error {
	abs, err := filepath.Abs(newFile)
	if err != nil {
		abs = newFile
	}
	keepOld := "keep the old key-encryption key only until a database backup taken after this rekey exists (older backups need it), then destroy it"
	switch origin {
	case kekFromDataDir:
		path := cfg.dataPath("kek")
		old, err := replaceDataKEK(path, cur, next, newFile)
		if err != nil {
			return fmt.Errorf("the kept keys are re-sealed under key-encryption key %s, but %s still holds the old one: %w; run the same command again to finish", next.ID(), path, err)
		}
		fmt.Fprintf(stdout, "%s now holds key-encryption key %s; the old one (%s) is kept as %s: %s\n", path, next.ID(), cur.ID(), old, keepOld)
		fmt.Fprintf(stdout, "%s is a copy of the new key: keep it as its backup, apart from the database, or destroy it\n", newFile)
		fmt.Fprintln(stdout, "start the portal again: it uses the new key-encryption key from now on")
	case kekFromEnv:
		fmt.Fprintf(stdout, "the old key-encryption key came from PORTAL_KEK; before the portal starts again, unset PORTAL_KEK and set:\n  PORTAL_KEK_FILE=%s\n%s\n", abs, keepOld)
	case kekFromEnvFile:
		fmt.Fprintf(stdout, "the old key-encryption key came from PORTAL_KEK_FILE (%s, not changed); before the portal starts again, set:\n  PORTAL_KEK_FILE=%s\n%s\n", cfg.KEKFile, abs, keepOld)
	case kekFromConfig:
		fmt.Fprintf(stdout, "the old key-encryption key came from kek_file in %s (%s, not changed); before the portal starts again, set there:\n  \"kek_file\": %q\n(or PORTAL_KEK_FILE=%s)\n%s\n", cfg.configFile, cfg.KEKFile, abs, abs, keepOld)
	}
	return nil
}

// replaceDataKEK keeps the current data/kek as data/kek.old-ID and atomically puts the new key's
// file contents in its place, both mode 0600. Each step can be repeated after a crash.
func replaceDataKEK(path string, cur, next *keys.KEK, newFile string) (oldPath string, err error) {
	oldPath = path + ".old-" + cur.ID()
	oldData, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	defer clear(oldData)
	err = writeKEKFile(oldPath, oldData, cur, false)
	if errors.Is(err, fs.ErrExist) {
		// Left by an interrupted run: fine if it holds the same key.
		k, lerr := keys.LoadKEKFile(oldPath)
		if lerr != nil || k.ID() != cur.ID() {
			return "", fmt.Errorf("%s exists and does not hold key-encryption key %s; not replacing it", oldPath, cur.ID())
		}
		err = nil
	}
	if err != nil {
		return "", err
	}
	newData, err := os.ReadFile(newFile)
	if err != nil {
		return "", err
	}
	defer clear(newData)
	return oldPath, writeKEKFile(path, newData, next, true)
}

// writeKEKFile writes a key-encryption key file with mode 0600 through a synced temporary file,
// checks that it loads as want, and moves it into place: replacing path, or only creating it
// (an error matching fs.ErrExist when path exists).
func writeKEKFile(path string, data []byte, want *keys.KEK, replace bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".kek-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(0o600))
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	k, err := keys.LoadKEKFile(tmp.Name())
	if err != nil {
		return err
	}
	if k.ID() != want.ID() {
		return fmt.Errorf("write %s: the written file holds key-encryption key %s, not %s (did it change meanwhile?)", path, k.ID(), want.ID())
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

// checkKEK returns an error naming both key-encryption keys when any kept private key is sealed
// under a KEK other than kek, so the portal does not start with keys it cannot open.
func checkKEK(ctx context.Context, db *store.DB, kek *keys.KEK) error {
	tx, err := db.Reader().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("check key-encryption key: %w", err)
	}
	defer tx.Rollback()
	recs, err := store.SealedKeysTx(ctx, tx)
	if err != nil {
		return fmt.Errorf("check key-encryption key: %w", err)
	}
	byKEK := map[string][]string{}
	n := 0
	for _, r := range recs {
		id, err := keys.SealedKEKID(r.Sealed)
		if err != nil {
			id = "unknown (damaged)"
		}
		if id != kek.ID() {
			byKEK[id] = append(byKEK[id], keyName(r))
			n++
		}
	}
	if n == 0 {
		return nil
	}
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(byKEK)) {
		names := byKEK[id]
		more := ""
		if len(names) > 3 {
			names, more = names[:3], fmt.Sprintf(" and %d more", len(byKEK[id])-3)
		}
		parts = append(parts, fmt.Sprintf("key-encryption key %s seals %s%s", id, strings.Join(names, ", "), more))
	}
	return fmt.Errorf("%w: the portal was given key-encryption key %s, but %d of %d kept private keys are sealed under another (%s); give the portal the key-encryption key that sealed them (PORTAL_KEK_FILE, kek_file or PORTAL_KEK), or finish an interrupted rekey with: portal keys rekey --new-kek-file FILE",
		errKEKMismatch, kek.ID(), n, len(recs), strings.Join(parts, "; "))
}
