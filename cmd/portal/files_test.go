package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// listeningEitherFormat finds the "portal listening" line in a text or a JSON log.
var listeningEitherFormat = regexp.MustCompile(`(?:msg="portal listening" url=(\S+)|"msg":"portal listening","url":"([^"]+)")`)

// serveBriefly runs `portal serve` on dir until it listens (then stops it) or fails, and
// returns the error and the log.
func serveBriefly(t *testing.T, dir string, whileUp func(), args ...string) (error, string) {
	t.Helper()
	logs := &browserLog{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		done <- run(ctx, append([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--sim-addr", "127.0.0.1:0"}, args...),
			func(string) string { return "" }, strings.NewReader(""), io.Discard, logs)
	}()
	wctx, wcancel := context.WithTimeout(t.Context(), browserStartTimeout)
	defer wcancel()
	if _, err := logs.waitFor(wctx, stopped, listeningEitherFormat); err != nil {
		select {
		case err := <-done:
			return err, logs.String()
		default:
			t.Fatalf("neither listening nor stopped: %v\n%s", err, logs)
		}
	}
	if whileUp != nil {
		whileUp()
	}
	cancel()
	return <-done, logs.String()
}

// TestDataFilesPrivate: every file the portal and its simulators create in the data directory
// is the owner's only, the -wal and -shm files of both databases included, whatever the umask.
func TestDataFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	var checked []string
	err, logs := serveBriefly(t, dir, func() {
		for _, name := range []string{"portal.db", "portal.db-wal", "portal.db-shm", "sim.db", "sim.db-wal", "sim.db-shm", "session.key"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			checked = append(checked, d.Name())
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s has mode %04o, want 0600", d.Name(), perm)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	t.Logf("checked %v", checked)
}

// TestDataDirAndSessionKeyModes: a data directory others may write is refused (exit status 2)
// with what to do, one others may read is a warning, and a session key others may read is
// refused like a loose key-encryption key.
func TestDataDirAndSessionKeyModes(t *testing.T) {
	t.Run("world-writable directory", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range [][]string{{"migrate", "--data", dir}, {"audit", "verify", "--data", dir}} {
			_, _, err := runOnce(t, cmd, nil, "")
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "chmod 700") {
				t.Errorf("%s: err = %v, want a usage error naming %s and what to do", cmd[0], err, dir)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "portal.db")); err == nil {
			t.Error("portal.db was created in a world-writable directory")
		}
	})
	t.Run("world-readable directory", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_, logs, err := runOnce(t, []string{"migrate", "--data", dir}, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs, "data directory may be read") || !strings.Contains(logs, "chmod 700") {
			t.Errorf("no warning in the log:\n%s", logs)
		}
	})
	t.Run("loose session key", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		key := filepath.Join(dir, "session.key")
		if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		err, logs := serveBriefly(t, dir, nil)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("err = %v, want a usage error naming %s and what to do\n%s", err, key, logs)
		}
	})
}
