package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portal/internal/clients"
	"portal/internal/store"
)

func TestMetricsTokenConfig(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("t", 32)
	file := filepath.Join(dir, "metrics.json")
	os.WriteFile(file, []byte(`{"metrics_token": "`+good+`"}`), 0o600)
	short := filepath.Join(dir, "short.json")
	os.WriteFile(short, []byte(`{"metrics_token": "too short"}`), 0o600)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(strings.Repeat("f", 40)+"\n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // the token
		problem string // or the problem reported
	}{
		{"off by default", nil, nil, "", ""},
		{"config file", []string{"--config", file}, nil, good, ""},
		{"environment wins over the file", []string{"--config", file}, map[string]string{"PORTAL_METRICS_TOKEN": strings.Repeat("e", 33)}, strings.Repeat("e", 33), ""},
		{"from a file", nil, map[string]string{"PORTAL_METRICS_TOKEN_FILE": tokenFile}, strings.Repeat("f", 40), ""},
		{"short in the file", []string{"--config", short}, nil, "", "metrics token must be at least 32"},
		{"short in the environment", nil, map[string]string{"PORTAL_METRICS_TOKEN": "short"}, "", "metrics token must be at least 32"},
		{"missing file", nil, map[string]string{"PORTAL_METRICS_TOKEN_FILE": filepath.Join(dir, "none")}, "", "PORTAL_METRICS_TOKEN_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := commandConfig("serve", tt.args, func(k string) string { return tt.env[k] }, io.Discard, nil)
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err = %v, want %q", err, tt.problem)
				}
				if strings.Contains(err.Error(), "too short") || strings.Contains(err.Error(), "short\"") {
					t.Error("the token was echoed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MetricsToken != tt.want {
				t.Errorf("token %q, want %q", cfg.MetricsToken, tt.want)
			}
		})
	}
}

func TestLogExpiringKeys(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		for _, it := range []struct {
			env, id string
			active  bool
			exps    map[string]time.Time
		}{
			{"tt02", "soon", true, map[string]time.Time{"soon-1": now.Add(3*day + time.Hour), "soon-2": now.Add(90 * day)}},
			{"prod", "gone", true, map[string]time.Time{"gone-1": now.Add(-36 * time.Hour)}},
			{"tt02", "retired", false, map[string]time.Time{"retired-1": now.Add(day)}},
		} {
			var keys []string
			next := time.Time{}
			for kid, exp := range it.exps {
				keys = append(keys, fmt.Sprintf(`{"kty":"RSA","kid":%q,"alg":"RS256","use":"sig","exp":%d}`, kid, exp.Unix()))
				if next.IsZero() || exp.Before(next) {
					next = exp
				}
			}
			if err := store.PutIntegration(ctx, tx, store.Integration{Env: it.env, ClientID: it.id, Name: it.id, Active: it.active,
				Raw: "{}", JWKS: `{"keys":[` + strings.Join(keys, ",") + `]}`, KeyCount: len(keys), NextKeyExpiry: next,
				FirstSeen: now, LastChange: now, SyncedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := clients.New(db, []clients.Env{{Name: "tt02"}, {Name: "prod"}}, clients.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	var buf bytes.Buffer
	logExpiringKeys(ctx, svc, slog.New(slog.NewJSONHandler(&buf, nil)), now)
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		delete(m, "time")
		got = append(got, m)
	}
	want := []map[string]any{
		{"level": "WARN", "msg": "key expires soon", "env": "prod", "client_id": "gone", "kid": "gone-1",
			"expires": now.Add(-36 * time.Hour).Format(time.RFC3339), "days_left": float64(-2)},
		{"level": "WARN", "msg": "key expires soon", "env": "tt02", "client_id": "soon", "kid": "soon-1",
			"expires": now.Add(3*day + time.Hour).Format(time.RFC3339), "days_left": float64(3)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("log lines\n got %v\nwant %v", got, want)
	}
}
