package main

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	for _, email := range []string{"a@example.no", "b@example.no", "c@example.no"} {
		if _, _, err := runOnce(t, []string{"user", "add", "--data", dir, "--email", email, "--name", "A", "--role", "member"}, nil,
			"correct horse battery\n"); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := runOnce(t, []string{"audit", "verify", "--data", dir}, nil, "")
	if err != nil || !strings.HasPrefix(out, "ok: 3 events verify") {
		t.Fatalf("verify a sound trail: %v\n%s", err, out)
	}

	// Someone with the database file rewrites the second event behind the portal's back.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_events_no_update", `UPDATE audit_events SET actor = 'someone else' WHERE id = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out, _, err = runOnce(t, []string{"audit", "verify", "--data", dir}, nil, "")
	if !errors.Is(err, errAuditBroken) || !strings.Contains(out, "BROKEN at event 2") {
		t.Fatalf("verify a tampered trail: %v\n%s", err, out)
	}
	var ue usageError
	if _, _, err := runOnce(t, []string{"audit"}, nil, ""); !errors.As(err, &ue) {
		t.Fatalf("audit without a subcommand: %v", err)
	}
}
