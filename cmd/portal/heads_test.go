package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"portal/internal/audit"
	"portal/internal/store"
)

// headsTrail makes a data directory with n audit events and returns it with the heads the
// portal would have published for them, as its JSON log writes them.
func headsTrail(t *testing.T, n int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		if _, _, err := runOnce(t, []string{"user", "add", "--data", dir, "--email", fmt.Sprintf("u%d@example.no", i), "--name", "U", "--role", "member"},
			nil, "correct horse battery\n"); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT id, hash FROM audit_events ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString(`{"time":"2026-12-08T01:00:00Z","level":"INFO","msg":"portal listening","url":"http://127.0.0.1:8080"}` + "\n")
	for rows.Next() {
		var id int64
		var hash string
		if err := rows.Scan(&id, &hash); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, `{"time":"2026-12-08T01:00:00Z","level":"INFO","msg":"audit chain head","id":%d,"hash":"%s"}`+"\n", id, hash)
	}
	heads := filepath.Join(t.TempDir(), "heads.jsonl")
	if err := os.WriteFile(heads, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, heads
}

// rewriteConsistently changes event 2 and recomputes every hash after it, as someone who can
// write the database could: the chain alone still verifies.
func rewriteConsistently(t *testing.T, dir string) {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(dir, "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := audit.NewLog(db, nil).Recent(t.Context(), 1000)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec("DROP TRIGGER audit_events_no_update"); err != nil {
		t.Fatal(err)
	}
	prev := audit.GenesisHash
	for i := len(evs) - 1; i >= 0; i-- { // Recent is newest first
		ev := evs[i]
		if ev.ID == 2 {
			ev.Actor = "someone else"
		}
		ev.PrevHash = prev
		if ev.Hash, err = audit.HashOf(ev); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec("UPDATE audit_events SET actor = ?, prev_hash = ?, hash = ? WHERE id = ?", ev.Actor, ev.PrevHash, ev.Hash, ev.ID); err != nil {
			t.Fatal(err)
		}
		prev = ev.Hash
	}
}

func TestAuditVerifyHeads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		heads   string // replaces the published heads when set
		usage   bool   // exit status 2
		broken  bool   // exit status 1
		message string
	}{
		{name: "matching heads", message: "all 3 published heads match"},
		{name: "rewritten consistently", tamper: rewriteConsistently, broken: true, message: "event 2 has hash"},
		{name: "truncated", tamper: func(t *testing.T, dir string) {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "portal.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{"DROP TRIGGER audit_events_no_delete", "DELETE FROM audit_events WHERE id = 3"} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
		}, broken: true, message: "event 3 was published but the chain ends at 2"},
		{name: "not JSON", heads: "{\"id\":1,\"hash\":\"" + strings.Repeat("a", 64) + "\"}\nnot json\n", usage: true, message: "line 2: not JSON"},
		{name: "no hash", heads: `{"id":1}`, usage: true, message: `line 1: needs "id"`},
		{name: "short hash", heads: `{"id":1,"hash":"abc"}`, usage: true, message: "64 hex digits"},
		{name: "empty", heads: "\n", usage: true, message: "holds no heads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, heads := headsTrail(t, 3)
			if tt.tamper != nil {
				tt.tamper(t, dir)
			}
			if tt.heads != "" {
				if err := os.WriteFile(heads, []byte(tt.heads), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.name == "rewritten consistently" {
				// The chain on its own no longer tells.
				if out, _, err := runOnce(t, []string{"audit", "verify", "--data", dir}, nil, ""); err != nil {
					t.Fatalf("the rewritten chain does not verify on its own, so the test proves nothing: %v\n%s", err, out)
				}
			}
			out, _, err := runOnce(t, []string{"audit", "verify", "--data", dir, "--heads", heads}, nil, "")
			var ue usageError
			switch {
			case tt.usage:
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.message) {
					t.Fatalf("err = %v, want a usage error with %q", err, tt.message)
				}
			case tt.broken:
				if !errors.Is(err, errAuditBroken) || !strings.Contains(out, tt.message) {
					t.Fatalf("err = %v, want a broken trail with %q:\n%s", err, tt.message, out)
				}
			default:
				if err != nil || !strings.Contains(out, tt.message) {
					t.Fatalf("err = %v, want %q:\n%s", err, tt.message, out)
				}
			}
		})
	}
	var ue usageError
	if _, _, err := runOnce(t, []string{"audit", "verify", "--data", t.TempDir(), "--heads", filepath.Join(t.TempDir(), "none")}, nil, ""); !errors.As(err, &ue) {
		t.Fatalf("a missing heads file: %v", err)
	}
}

// TestAuditHeadPublishedAtStart: each start logs the chain's head, and the portal's own JSON
// log, as written, is a heads file `portal audit verify --heads` takes.
func TestAuditHeadPublishedAtStart(t *testing.T) {
	t.Parallel()
	dir, _ := headsTrail(t, 2)
	err, logs := serveBriefly(t, dir, nil, "--log-format", "json")
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, `"msg":"audit chain head","id":`) {
		t.Fatalf("no head in the log:\n%s", logs)
	}
	file := filepath.Join(t.TempDir(), "portal.log")
	if err := os.WriteFile(file, []byte(logs), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runOnce(t, []string{"audit", "verify", "--data", dir, "--heads", file}, nil, "")
	if err != nil || !strings.Contains(out, "published heads match") {
		t.Fatalf("verify against the log: %v\n%s", err, out)
	}
	rewriteConsistently(t, dir)
	if out, _, err := runOnce(t, []string{"audit", "verify", "--data", dir, "--heads", file}, nil, ""); !errors.Is(err, errAuditBroken) {
		t.Fatalf("a rewrite after the start went unnoticed: %v\n%s", err, out)
	}
}

// TestAuditHeadOnMetrics: /metrics shows the head last published, number and hash, the same as
// the log line, so a scraper keeps copies of it too.
func TestAuditHeadOnMetrics(t *testing.T) {
	t.Parallel()
	dir, _ := headsTrail(t, 3)
	token := strings.Repeat("m", 32)
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"metrics_token": "`+token+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var scraped string
	err, logs := serveBriefly(t, dir, func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("scrape: %v", err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		scraped = string(b)
	}, "--config", cfg, "--addr", addr, "--log-format", "json")
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	m := regexp.MustCompile(`"msg":"audit chain head","id":(\d+),"hash":"([0-9a-f]{64})"`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no head in the log:\n%s", logs)
	}
	for _, want := range []string{
		"portal_audit_chain_published_head_event_id " + m[1],
		`portal_audit_chain_published_head_info{hash="` + m[2] + `",id="` + m[1] + `"} 1`,
	} {
		if !strings.Contains(scraped, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, scraped)
		}
	}
}
