package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/keys"
	"portal/internal/mfa"
	"portal/internal/store"
)

// rekeyFixture is a data directory with a store holding keys sealed under kek.
type rekeyFixture struct {
	dir   string
	kek   *keys.KEK         // the portal's current KEK
	db    *store.DB         // the test's own handle on the data directory's database
	plain map[string][]byte // private key bytes of kept keys, by env/client/kid
}

// newRekeyFixture makes a data directory whose current KEK is at kekPath, or at data/kek when
// kekPath is empty.
func newRekeyFixture(t *testing.T, kekPath string) *rekeyFixture {
	t.Helper()
	dir := t.TempDir()
	if kekPath == "" {
		kekPath = filepath.Join(dir, "kek")
	}
	kek, err := keys.CreateKEKFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(t.Context(), Config{Data: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &rekeyFixture{dir: dir, kek: kek, db: db, plain: map[string][]byte{}}
}

// putKept stores a kept key sealed under kek; it returns the key's sealed bytes.
func (f *rekeyFixture) putKept(t *testing.T, kek *keys.KEK, env, clientID, kid string) []byte {
	t.Helper()
	plain := make([]byte, 48)
	rand.Read(plain)
	sealed, err := keys.Seal(kek, env, clientID, kid, plain)
	if err != nil {
		t.Fatal(err)
	}
	f.plain[env+"/"+clientID+"/"+kid] = plain
	f.put(t, store.KeyRecord{Env: env, ClientID: clientID, KID: kid, Custody: store.CustodyKept, Sealed: sealed, KEKID: kek.ID()})
	return sealed
}

func (f *rekeyFixture) put(t *testing.T, k store.KeyRecord) {
	t.Helper()
	k.CreatedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	err := f.db.Tx(t.Context(), func(tx *sql.Tx) error { return store.PutKeyRecord(t.Context(), tx, k) })
	if err != nil {
		t.Fatal(err)
	}
}

// standardKeys adds three kept keys under the fixture's KEK and one uploaded public key.
func (f *rekeyFixture) standardKeys(t *testing.T) {
	t.Helper()
	f.putKept(t, f.kek, "tt02", "client-a", "a-1")
	f.putKept(t, f.kek, "tt02", "client-a", "a-2")
	f.putKept(t, f.kek, "prod", "client-b", "b-1")
	f.put(t, store.KeyRecord{Env: "tt02", ClientID: "client-a", KID: "uploaded-1", Custody: store.CustodyUploaded})
}

// snapshot is every key row, sealed bytes included, as text.
func (f *rekeyFixture) snapshot(t *testing.T) map[string]string {
	t.Helper()
	rows, err := f.db.Reader().QueryContext(t.Context(),
		"SELECT env, client_id, kid, custody, coalesce(hex(sealed), ''), coalesce(kek_id, '') FROM integration_keys")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var env, client, kid, custody, sealed, kekID string
		if err := rows.Scan(&env, &client, &kid, &custody, &sealed, &kekID); err != nil {
			t.Fatal(err)
		}
		out[env+"/"+client+"/"+kid] = custody + " " + kekID + " " + sealed
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// records returns the kept keys' records.
func (f *rekeyFixture) records(t *testing.T) []store.KeyRecord {
	t.Helper()
	tx, err := f.db.Reader().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	recs, err := store.SealedKeysTx(t.Context(), tx)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// events verifies the audit chain and returns its length.
func (f *rekeyFixture) events(t *testing.T) int64 {
	t.Helper()
	res, err := audit.NewLog(f.db, nil).Verify(t.Context())
	if err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	return res.Events
}

// wantSealedUnder checks every kept key opens to its private key under kek and not under other.
func (f *rekeyFixture) wantSealedUnder(t *testing.T, kek, other *keys.KEK) {
	t.Helper()
	recs := f.records(t)
	if len(recs) != len(f.plain) {
		t.Fatalf("%d kept keys, want %d", len(recs), len(f.plain))
	}
	for _, r := range recs {
		name := keyName(r)
		got, err := keys.Open(kek, r.Env, r.ClientID, r.KID, r.Sealed)
		if err != nil {
			t.Errorf("%s does not open under %s: %v", name, kek.ID(), err)
		} else if !bytes.Equal(got, f.plain[name]) {
			t.Errorf("%s opens to other bytes", name)
		}
		if r.KEKID != kek.ID() {
			t.Errorf("%s: kek_id %q, want %q", name, r.KEKID, kek.ID())
		}
		if _, err := keys.Open(other, r.Env, r.ClientID, r.KID, r.Sealed); !errors.Is(err, keys.ErrWrongKEK) {
			t.Errorf("%s under the other KEK: %v, want ErrWrongKEK", name, err)
		}
	}
}

func newKEKFile(t *testing.T) (string, *keys.KEK) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "new.kek")
	out, _, err := runOnce(t, []string{"keys", "new-kek", "--out", path}, nil, "")
	if err != nil {
		t.Fatalf("keys new-kek: %v", err)
	}
	k, err := keys.LoadKEKFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, k.ID()) {
		t.Errorf("keys new-kek does not name the new KEK id:\n%s", out)
	}
	return path, k
}

func wantMode0600(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
	}
}

func TestRekey(t *testing.T) {
	f := newRekeyFixture(t, "")
	f.standardKeys(t)
	old := f.kek
	newFile, next := newKEKFile(t)
	wantMode0600(t, newFile)
	secret, _ := os.ReadFile(newFile)

	// new-kek never overwrites.
	_, _, err := runOnce(t, []string{"keys", "new-kek", "--out", newFile}, nil, "")
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("new-kek over an existing file: %v", err)
	}
	if again, _ := os.ReadFile(newFile); !bytes.Equal(again, secret) {
		t.Fatal("new-kek changed an existing file")
	}

	args := []string{"keys", "rekey", "--new-kek-file", newFile, "--data", f.dir}
	out, logs, err := runOnce(t, args, nil, "")
	if err != nil {
		t.Fatalf("rekey: %v\n%s", err, logs)
	}
	if !strings.Contains(out, "re-sealed 3 kept private keys under key-encryption key "+next.ID()) {
		t.Errorf("summary:\n%s", out)
	}
	if strings.Contains(out+logs, strings.TrimSpace(string(secret))) {
		t.Error("the new KEK was printed")
	}
	f.wantSealedUnder(t, next, old)
	if snap := f.snapshot(t); snap["tt02/client-a/uploaded-1"] != "uploaded  " {
		t.Errorf("uploaded key changed: %q", snap["tt02/client-a/uploaded-1"])
	}

	// data/kek holds the new KEK; the old one is kept beside it.
	dataKEK := filepath.Join(f.dir, "kek")
	if k, err := keys.LoadKEKFile(dataKEK); err != nil || k.ID() != next.ID() {
		t.Fatalf("data/kek: %v, %v; want KEK %s", k, err, next.ID())
	}
	wantMode0600(t, dataKEK)
	oldFile := dataKEK + ".old-" + old.ID()
	if k, err := keys.LoadKEKFile(oldFile); err != nil || k.ID() != old.ID() {
		t.Fatalf("%s: %v, %v; want KEK %s", oldFile, k, err, old.ID())
	}
	wantMode0600(t, oldFile)
	if !strings.Contains(out, oldFile) {
		t.Errorf("summary does not say where the old KEK is:\n%s", out)
	}

	// One audit event, ids only.
	if n := f.events(t); n != 1 {
		t.Fatalf("%d audit events, want 1", n)
	}
	evs, err := audit.NewLog(f.db, nil).Recent(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	if ev.Action != "keys.rekey" || ev.Actor != "cli" || ev.Outcome != audit.Success {
		t.Errorf("audit event %s by %s: %s", ev.Action, ev.Actor, ev.Outcome)
	}
	var details map[string]any
	if err := json.Unmarshal(ev.Details, &details); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"count": 3.0, "already": 0.0, "old_kek_id": old.ID(), "new_kek_id": next.ID()}
	if fmt.Sprint(details) != fmt.Sprint(want) {
		t.Errorf("details %v, want %v", details, want)
	}

	if err := checkKEK(t.Context(), f.db, next); err != nil {
		t.Errorf("checkKEK with the new KEK: %v", err)
	}
	if err := checkKEK(t.Context(), f.db, old); !errors.Is(err, errKEKMismatch) {
		t.Errorf("checkKEK with the old KEK: %v", err)
	}

	// Running it again changes nothing and succeeds.
	before := f.snapshot(t)
	out, _, err = runOnce(t, args, nil, "")
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("second rekey: %v\n%s", err, out)
	}
	if after := f.snapshot(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("second rekey changed keys")
	}
	if n := f.events(t); n != 1 {
		t.Errorf("second rekey wrote audit events: %d", n)
	}
}

// TestRekeyRefuses checks that every refusal explains itself and changes nothing: not the keys,
// not data/kek, not the audit log.
func TestRekeyRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *rekeyFixture) []string // returns the extra arguments
		usage bool
		want  []string
	}{
		{"no new key file", func(t *testing.T, f *rekeyFixture) []string { return nil },
			true, []string{"--new-kek-file FILE", "portal keys new-kek"}},
		{"missing new key file", func(t *testing.T, f *rekeyFixture) []string {
			return []string{"--new-kek-file", filepath.Join(t.TempDir(), "none")}
		}, true, []string{"--new-kek-file", "no such file", "portal keys new-kek"}},
		{"not a key", func(t *testing.T, f *rekeyFixture) []string {
			p := filepath.Join(t.TempDir(), "bad")
			os.WriteFile(p, []byte("not a key\n"), 0o600)
			return []string{"--new-kek-file", p}
		}, true, []string{"--new-kek-file", "32 random bytes"}},
		{"new key readable by others", func(t *testing.T, f *rekeyFixture) []string {
			p := filepath.Join(t.TempDir(), "open.kek")
			if _, err := keys.CreateKEKFile(p); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, 0o644)
			return []string{"--new-kek-file", p}
		}, true, []string{"--new-kek-file", "chmod 600"}},
		{"key under an unknown KEK", func(t *testing.T, f *rekeyFixture) []string {
			stray, err := keys.CreateKEKFile(filepath.Join(t.TempDir(), "stray.kek"))
			if err != nil {
				t.Fatal(err)
			}
			f.putKept(t, stray, "prod", "client-c", "stray-1")
			p, _ := newKEKFile(t)
			return []string{"--new-kek-file", p}
		}, false, []string{"nothing was changed", "prod/client-c/stray-1", "neither the current key-encryption key"}},
		{"key that does not open", func(t *testing.T, f *rekeyFixture) []string {
			// Sealed under the current KEK, but for another row: its binding does not hold.
			// It sorts last, so the good keys were re-sealed before it failed.
			sealed := f.putKept(t, f.kek, "tt02", "client-a", "a-9")
			f.put(t, store.KeyRecord{Env: "tt02", ClientID: "zz-client", KID: "moved", Custody: store.CustodyKept, Sealed: sealed, KEKID: f.kek.ID()})
			p, _ := newKEKFile(t)
			return []string{"--new-kek-file", p}
		}, false, []string{"nothing was changed", "tt02/zz-client/moved", "does not open"}},
		{"no current KEK", func(t *testing.T, f *rekeyFixture) []string {
			os.Remove(filepath.Join(f.dir, "kek"))
			p, _ := newKEKFile(t)
			return []string{"--new-kek-file", p}
		}, false, []string{"no current key-encryption key", "PORTAL_KEK_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRekeyFixture(t, "")
			f.standardKeys(t)
			extra := tt.setup(t, f)
			keysBefore := f.snapshot(t)
			kekBefore, _ := os.ReadFile(filepath.Join(f.dir, "kek"))

			args := append([]string{"keys", "rekey", "--data", f.dir}, extra...)
			out, _, err := runOnce(t, args, nil, "")
			if err == nil {
				t.Fatalf("rekey succeeded:\n%s", out)
			}
			var ue usageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("usage error = %v, want %v: %v", !tt.usage, tt.usage, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			for name, plain := range f.plain {
				if strings.Contains(strings.ToLower(err.Error()), hex.EncodeToString(plain)) {
					t.Errorf("message shows key material of %s", name)
				}
			}
			if after := f.snapshot(t); fmt.Sprint(after) != fmt.Sprint(keysBefore) {
				t.Errorf("keys changed:\nbefore %v\nafter  %v", keysBefore, after)
			}
			if kekAfter, _ := os.ReadFile(filepath.Join(f.dir, "kek")); !bytes.Equal(kekAfter, kekBefore) {
				t.Error("data/kek changed")
			}
			if old, _ := filepath.Glob(filepath.Join(f.dir, "kek.old-*")); len(old) > 0 {
				t.Errorf("left %v", old)
			}
			if n := f.events(t); n != 0 {
				t.Errorf("%d audit events", n)
			}
		})
	}
}

// TestRekeyConfiguredKEK covers a KEK the operator configured: the keys move, their files stay
// as they are, and the output says exactly what to change.
func TestRekeyConfiguredKEK(t *testing.T) {
	tests := []struct {
		name string
		conf func(t *testing.T, oldFile string) (args []string, env map[string]string)
		want func(newFile string) []string
	}{
		{"PORTAL_KEK_FILE", func(t *testing.T, oldFile string) ([]string, map[string]string) {
			return nil, map[string]string{"PORTAL_KEK_FILE": oldFile}
		}, func(newFile string) []string {
			return []string{"came from PORTAL_KEK_FILE", "\n  PORTAL_KEK_FILE=" + newFile + "\n"}
		}},
		{"PORTAL_KEK", func(t *testing.T, oldFile string) ([]string, map[string]string) {
			b, err := os.ReadFile(oldFile)
			if err != nil {
				t.Fatal(err)
			}
			return nil, map[string]string{"PORTAL_KEK": strings.TrimSpace(string(b))}
		}, func(newFile string) []string {
			return []string{"unset PORTAL_KEK", "\n  PORTAL_KEK_FILE=" + newFile + "\n"}
		}},
		{"kek_file", func(t *testing.T, oldFile string) ([]string, map[string]string) {
			conf := filepath.Join(t.TempDir(), "portal.json")
			b, _ := json.Marshal(map[string]string{"kek_file": oldFile})
			os.WriteFile(conf, b, 0o600)
			return []string{"--config", conf}, nil
		}, func(newFile string) []string { return []string{"kek_file in", `"kek_file": "` + newFile + `"`} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldFile := filepath.Join(t.TempDir(), "old.kek")
			f := newRekeyFixture(t, oldFile)
			f.standardKeys(t)
			oldBytes, _ := os.ReadFile(oldFile)
			newFile, next := newKEKFile(t)
			newBytes, _ := os.ReadFile(newFile)
			extra, env := tt.conf(t, oldFile)
			args := append([]string{"keys", "rekey", "--new-kek-file", newFile, "--data", f.dir}, extra...)

			out, logs, err := runOnce(t, args, env, "")
			if err != nil {
				t.Fatalf("rekey: %v\n%s", err, logs)
			}
			for _, w := range tt.want(newFile) {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out+logs, strings.TrimSpace(string(oldBytes))) {
				t.Error("the old KEK was printed")
			}
			f.wantSealedUnder(t, next, f.kek)
			if b, _ := os.ReadFile(oldFile); !bytes.Equal(b, oldBytes) {
				t.Error("the configured KEK file changed")
			}
			if b, _ := os.ReadFile(newFile); !bytes.Equal(b, newBytes) {
				t.Error("the new KEK file changed")
			}
			if _, err := os.Stat(filepath.Join(f.dir, "kek")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data/kek appeared: %v", err)
			}

			// Until the operator switches, running it again is safe: nothing left to move.
			before := f.snapshot(t)
			out, _, err = runOnce(t, args, env, "")
			if err != nil || !strings.Contains(out, "re-sealed 0 kept private keys") || !strings.Contains(out, "(3 already were)") {
				t.Fatalf("second rekey: %v\n%s", err, out)
			}
			if after := f.snapshot(t); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Error("second rekey changed keys")
			}
			// Once switched, there is nothing to do.
			out, _, err = runOnce(t, []string{"keys", "rekey", "--new-kek-file", newFile, "--data", f.dir},
				map[string]string{"PORTAL_KEK_FILE": newFile}, "")
			if err != nil || !strings.Contains(out, "nothing to do") {
				t.Fatalf("rekey after the switch: %v\n%s", err, out)
			}
			if n := f.events(t); n != 2 {
				t.Errorf("%d audit events, want 2", n)
			}
		})
	}
}

// TestRekeyFinishesInterrupted resumes a rekey whose transaction committed but whose switch of
// data/kek did not finish: keys already under the new KEK stay byte for byte, others move.
func TestRekeyFinishesInterrupted(t *testing.T) {
	f := newRekeyFixture(t, "")
	newFile, next := newKEKFile(t)
	f.putKept(t, f.kek, "tt02", "client-a", "a-1")
	f.putKept(t, next, "tt02", "client-a", "a-2")
	f.put(t, store.KeyRecord{Env: "tt02", ClientID: "client-a", KID: "uploaded-1", Custody: store.CustodyUploaded})
	// The old KEK was already copied aside.
	dataKEK := filepath.Join(f.dir, "kek")
	oldBytes, _ := os.ReadFile(dataKEK)
	os.WriteFile(dataKEK+".old-"+f.kek.ID(), oldBytes, 0o600)
	before := f.snapshot(t)

	out, logs, err := runOnce(t, []string{"keys", "rekey", "--new-kek-file", newFile, "--data", f.dir}, nil, "")
	if err != nil {
		t.Fatalf("rekey: %v\n%s", err, logs)
	}
	if !strings.Contains(out, "re-sealed 1 kept private key under key-encryption key "+next.ID()+" (1 already were)") {
		t.Errorf("summary:\n%s", out)
	}
	after := f.snapshot(t)
	if after["tt02/client-a/a-2"] != before["tt02/client-a/a-2"] {
		t.Error("a key already under the new KEK was re-sealed")
	}
	if after["tt02/client-a/a-1"] == before["tt02/client-a/a-1"] {
		t.Error("the key under the old KEK was not re-sealed")
	}
	f.wantSealedUnder(t, next, f.kek)
	if k, err := keys.LoadKEKFile(dataKEK); err != nil || k.ID() != next.ID() {
		t.Fatalf("data/kek: %v, %v", k, err)
	}
	if b, _ := os.ReadFile(dataKEK + ".old-" + f.kek.ID()); !bytes.Equal(b, oldBytes) {
		t.Error("the kept old KEK changed")
	}
	f.events(t)
}

func TestCheckKEK(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *rekeyFixture, other *keys.KEK)
		want  []string // empty: no error
	}{
		{"no keys", func(t *testing.T, f *rekeyFixture, other *keys.KEK) {}, nil},
		{"only uploaded keys", func(t *testing.T, f *rekeyFixture, other *keys.KEK) {
			f.put(t, store.KeyRecord{Env: "tt02", ClientID: "c", KID: "up", Custody: store.CustodyUploaded})
			f.put(t, store.KeyRecord{Env: "prod", ClientID: "c", KID: "gone", Custody: store.CustodyHandedOut})
		}, nil},
		{"all under the KEK", func(t *testing.T, f *rekeyFixture, other *keys.KEK) { f.standardKeys(t) }, nil},
		{"one under another", func(t *testing.T, f *rekeyFixture, other *keys.KEK) {
			f.standardKeys(t)
			f.putKept(t, other, "prod", "client-z", "z-1")
		}, []string{"1 of 4 kept private keys", "prod/client-z/z-1"}},
		{"many under another", func(t *testing.T, f *rekeyFixture, other *keys.KEK) {
			for i := range 5 {
				f.putKept(t, other, "tt02", "client-y", fmt.Sprintf("y-%d", i))
			}
		}, []string{"5 of 5 kept private keys", "tt02/client-y/y-0", "and 2 more"}},
		{"damaged", func(t *testing.T, f *rekeyFixture, other *keys.KEK) {
			f.put(t, store.KeyRecord{Env: "tt02", ClientID: "c", KID: "bad", Custody: store.CustodyKept, Sealed: []byte("garbage"), KEKID: f.kek.ID()})
		}, []string{"damaged", "tt02/c/bad"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRekeyFixture(t, "")
			other, err := keys.CreateKEKFile(filepath.Join(t.TempDir(), "other.kek"))
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(t, f, other)
			err = checkKEK(t.Context(), f.db, f.kek)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("checkKEK: %v", err)
				}
				return
			}
			if !errors.Is(err, errKEKMismatch) {
				t.Fatalf("checkKEK: %v, want errKEKMismatch", err)
			}
			want := append([]string{f.kek.ID()}, tt.want...)
			if tt.name != "damaged" {
				want = append(want, other.ID())
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestKeysKEKCommandUsage(t *testing.T) {
	for _, args := range [][]string{{"keys"}, {"keys", "frobnicate"}, {"keys", "new-kek"}, {"keys", "new-kek", "--out"}} {
		_, _, err := runOnce(t, args, nil, "")
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	out, _, err := runOnce(t, []string{"help"}, nil, "")
	if err != nil || !strings.Contains(out, "keys rekey") || !strings.Contains(out, "keys new-kek") {
		t.Errorf("help does not list the keys commands:\n%s", out)
	}
}

// TestServeRefusesAForeignKEK: a portal given a key-encryption key that did not seal its kept
// keys stops at start with both ids, instead of failing later on every signature.
func TestServeRefusesAForeignKEK(t *testing.T) {
	f := newRekeyFixture(t, "")
	_, otherKEK := newKEKFile(t)
	f.putKept(t, otherKEK, "tt02", "client-a", "a-1")
	_, _, err := runOnce(t, []string{"serve", "--data", f.dir, "--addr", "127.0.0.1:0", "--sim-addr", "127.0.0.1:0"}, nil, "")
	if err == nil || !strings.Contains(err.Error(), otherKEK.ID()) || !strings.Contains(err.Error(), f.kek.ID()) {
		t.Fatalf("serve with a foreign KEK: %v", err)
	}
}

// TestRekeyTOTPSecrets: TOTP secrets are sealed under the key-encryption key too, so a rekey
// moves them with the kept keys and the authenticator app keeps working.
func TestRekeyTOTPSecrets(t *testing.T) {
	f := newRekeyFixture(t, "")
	f.standardKeys(t)
	ctx := t.Context()
	a, err := auth.NewService(f.db, auth.Options{Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.AddUser(ctx, "ada@example.no", "Ada", "admin", "correct horse battery", audit.Meta{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := &auth.Principal{UserID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role}
	before, err := mfa.New(f.db, mfa.Options{KEK: f.kek, PublicURL: "http://localhost"})
	if err != nil {
		t.Fatal(err)
	}
	en, err := before.BeginTOTP(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	newFile, next := newKEKFile(t)
	out, logs, err := runOnce(t, []string{"keys", "rekey", "--new-kek-file", newFile, "--data", f.dir}, nil, "")
	if err != nil {
		t.Fatalf("rekey: %v\n%s", err, logs)
	}
	if !strings.Contains(out, "and 1 TOTP secret") {
		t.Errorf("summary:\n%s", out)
	}
	after, err := mfa.New(f.db, mfa.Options{KEK: next, PublicURL: "http://localhost"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := after.PendingTOTP(ctx, p)
	if err != nil || again.Secret != en.Secret {
		t.Fatalf("after the rekey the TOTP secret opens to %q, %v; want the one enrolled", again.Secret, err)
	}
	if _, err := before.PendingTOTP(ctx, p); err == nil {
		t.Error("the old key-encryption key still opens the TOTP secret")
	}
}
