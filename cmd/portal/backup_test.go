//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBackupUnderLoad backs up a serving portal while a stream of mutations runs against it,
// restores into a fresh data directory with the same key-encryption key, starts the portal
// there and finds every change acknowledged before the backup started, with the audit trail
// intact. The stream's changes during the backup touch only integrations of their own: the
// backup may or may not hold them, but nothing may be duplicated.
func TestBackupUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the portal")
	}
	bin := buildPortalBinary(t)
	h := newCrashHarness(t, bin, 0)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 1))
	before := &crashModel{prefix: crashPrefix, team: h.setup(), rng: rng}

	// Changes acknowledged before the backup starts.
	ctx, cancel := context.WithCancel(t.Context())
	done := h.stream(ctx, before)
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	if before.acked == 0 || len(before.clients) == 0 {
		t.Fatalf("no change acknowledged before the backup (%d integrations)", len(before.clients))
	}

	// The backup, while other changes are being made.
	load := &crashModel{prefix: "load-", team: before.team, rng: mrand.New(mrand.NewPCG(seed, 2))}
	ctx, cancel = context.WithCancel(t.Context())
	done = h.stream(ctx, load)
	time.Sleep(300 * time.Millisecond)
	bk := filepath.Join(t.TempDir(), "backup")
	out, err := runPortalCLI(bin, "", "backup", "--data", h.dir, "--to", bk)
	if err != nil {
		t.Fatalf("portal backup: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	sent := <-done
	t.Logf("%d changes acknowledged before the backup; %d sent around it (%d acknowledged)\n%s", before.acked, sent, load.acked, out)
	if !strings.Contains(out, "key-encryption key is NOT in this backup") {
		t.Errorf("backup does not remind that the key-encryption key is kept apart:\n%s", out)
	}
	entries, err := os.ReadDir(bk)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if fi, _ := e.Info(); fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want owner-only", e.Name(), fi.Mode().Perm())
		}
	}
	if want := []string{"manifest.json", "portal.db", "sim.db"}; !slices.Equal(names, want) {
		t.Fatalf("backup holds %v, want %v (and never the key-encryption key)", names, want)
	}
	var m backupManifest
	b, _ := os.ReadFile(filepath.Join(bk, manifestName))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if sumKept(m.KeptKeys) == 0 {
		t.Logf("no kept keys in the backup; the key-encryption key checks were not exercised")
	}

	// Restore refuses while the portal serves the directory.
	if out, err := runPortalCLI(bin, "", "restore", "--data", h.dir, "--from", bk); err == nil || !strings.Contains(out, "is running on the data directory") {
		t.Errorf("restore while serving: %v\n%s", err, out)
	}
	h.proc.stop()

	// Into a fresh data directory: without the key-encryption key it refuses when keys are kept.
	fresh := t.TempDir()
	if sumKept(m.KeptKeys) > 0 {
		out, err := runPortalCLI(bin, "", "restore", "--data", fresh, "--from", bk)
		if err == nil || !strings.Contains(out, "without it those private keys are lost") {
			t.Errorf("restore without the key-encryption key: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(fresh, "portal.db")); err == nil {
			t.Errorf("a refused restore left portal.db behind")
		}
	}
	kek, err := os.ReadFile(filepath.Join(h.dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fresh, "kek"), kek, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runPortalCLI(bin, "", "restore", "--data", fresh, "--from", bk)
	if err != nil {
		t.Fatalf("portal restore: %v\n%s", err, out)
	}
	t.Logf("restore:\n%s", out)

	// The restored portal, on the same addresses as before.
	r := &crashHarness{t: t, bin: bin, dir: fresh, web: h.web}
	r.proc = &portalProc{t: t, bin: bin, dir: fresh, addr: h.proc.addr, simAddr: h.proc.simAddr, URL: h.proc.URL}
	t.Cleanup(r.proc.stop)
	r.proc.start()
	r.connectAdmin()
	if err := r.verify(before); err != nil {
		t.Fatalf("after the restore: %v\n%s", err, r.proc.logs)
	}
	up, err := r.upstream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, reg := range up {
		seen[reg.ClientName]++
	}
	for _, name := range slices.Sorted(maps.Keys(seen)) {
		if strings.HasPrefix(name, load.prefix) && seen[name] > 1 {
			t.Errorf("%d clients named %s after the restore", seen[name], name)
		}
	}
}

// TestBackupMistakes checks that every mistake with backup and restore gets a clear message
// and changes nothing.
func TestBackupMistakes(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runOnce(t, []string{"migrate", "--data", dir}, nil, ""); err != nil {
		t.Fatal(err)
	}
	bk := filepath.Join(t.TempDir(), "bk")
	out, _, err := runOnce(t, []string{"backup", "--data", dir, "--to", bk}, nil, "")
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.Contains(out, "Back it up separately") {
		t.Errorf("no reminder of the key-encryption key:\n%s", out)
	}
	// A copy of the backup that a case may spoil.
	spoilt := func(t *testing.T, spoil func(dir string)) string {
		d := filepath.Join(t.TempDir(), "bk")
		if err := os.CopyFS(d, os.DirFS(bk)); err != nil {
			t.Fatal(err)
		}
		spoil(d)
		return d
	}
	editManifest := func(edit func(m *backupManifest)) func(string) {
		return func(d string) {
			var m backupManifest
			b, _ := os.ReadFile(filepath.Join(d, manifestName))
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			edit(&m)
			b, _ = json.Marshal(m)
			os.WriteFile(filepath.Join(d, manifestName), b, 0o600)
		}
	}
	notEmpty := t.TempDir()
	os.WriteFile(filepath.Join(notEmpty, "old"), []byte("x"), 0o600)
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, []byte("x"), 0o600)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"backup without --to", []string{"backup", "--data", dir}, "backup needs --to"},
		{"backup into a non-empty directory", []string{"backup", "--data", dir, "--to", notEmpty}, "is not empty"},
		{"backup onto a file", []string{"backup", "--data", dir, "--to", aFile}, "is a file"},
		{"backup of a directory without a portal", []string{"backup", "--data", t.TempDir(), "--to", t.TempDir()}, "there is no portal database"},
		{"restore without --from", []string{"restore", "--data", t.TempDir()}, "restore needs --from"},
		{"restore from nowhere", []string{"restore", "--data", t.TempDir(), "--from", filepath.Join(dir, "nope")}, "does not exist"},
		{"restore from a data directory", []string{"restore", "--data", t.TempDir(), "--from", dir}, "not a backup made by `portal backup`"},
		{"restore of a damaged file", []string{"restore", "--data", t.TempDir(), "--from", spoilt(t, func(d string) {
			f, _ := os.OpenFile(filepath.Join(d, portalDBName), os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte("damage"))
			f.Close()
		})}, "does not match its checksum"},
		{"restore of an incomplete backup", []string{"restore", "--data", t.TempDir(), "--from", spoilt(t, func(d string) {
			os.Remove(filepath.Join(d, portalDBName))
		})}, "lacks portal.db"},
		{"restore of a foreign file", []string{"restore", "--data", t.TempDir(), "--from", spoilt(t, editManifest(func(m *backupManifest) {
			m.Files = append(m.Files, backupFile{Name: "kek"})
		}))}, `names "kek", which no backup holds`},
		{"restore of a newer format", []string{"restore", "--data", t.TempDir(), "--from", spoilt(t, editManifest(func(m *backupManifest) {
			m.Format = 99
		}))}, "has format 99"},
		{"restore of a broken manifest", []string{"restore", "--data", t.TempDir(), "--from", spoilt(t, func(d string) {
			os.WriteFile(filepath.Join(d, manifestName), []byte("{"), 0o600)
		})}, "manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runOnce(t, tt.args, nil, "")
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error saying %q", err, tt.want)
			}
		})
	}

	// A good restore over an existing portal moves its files aside and keeps them.
	out, _, err = runOnce(t, []string{"restore", "--data", dir, "--from", bk}, nil, "")
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "before-restore-*", portalDBName))
	if len(aside) != 1 || !strings.Contains(out, "are in") {
		t.Errorf("the replaced portal.db was not kept aside (%v):\n%s", aside, out)
	}
	out, _, err = runOnce(t, []string{"audit", "verify", "--data", dir}, nil, "")
	if err != nil || !strings.HasPrefix(out, "ok:") {
		t.Errorf("audit verify after the restore: %v %s", err, out)
	}
}
