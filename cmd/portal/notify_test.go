package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/clients"
	"portal/internal/notify"
	"portal/internal/store"
)

func TestNotifyConfig(t *testing.T) {
	dir := t.TempDir()
	secret := strings.Repeat("w", 32)
	file := filepath.Join(dir, "notify.json")
	os.WriteFile(file, []byte(`{"smtp_host": "smtp.example.no", "smtp_from": "Portal <portal@example.no>", "smtp_username": "portal",
		"smtp_password": "from-the-file", "webhook_url": "https://hooks.example.no/portal", "webhook_secret": "`+secret+`"}`), 0o600)
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from-a-secret-file\n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		problem []string // all reported at once
	}{
		{"off by default", nil, nil, func(t *testing.T, c Config) {
			if c.SMTPHost != "" || c.WebhookURL != "" || newNotifier(c, slog.New(slog.DiscardHandler)).Enabled() {
				t.Error("a channel is on")
			}
		}, nil},
		{"config file, starttls on 587 by default", []string{"--config", file}, nil, func(t *testing.T, c Config) {
			if c.SMTPPort != 587 || c.SMTPTLS != "starttls" || c.SMTPPassword != "from-the-file" || c.WebhookSecret != secret {
				t.Errorf("%+v", c.notifyConfig)
			}
		}, nil},
		{"environment over the file, password from a file", []string{"--config", file}, map[string]string{
			"PORTAL_SMTP_TLS": "tls", "PORTAL_SMTP_PASSWORD_FILE": pwFile, "PORTAL_WEBHOOK_URL": "http://localhost:9000/hook"},
			func(t *testing.T, c Config) {
				if c.SMTPPort != 465 || c.SMTPPassword != "from-a-secret-file" || c.WebhookURL != "http://localhost:9000/hook" {
					t.Errorf("%+v", c.notifyConfig)
				}
			}, nil},
		{"every problem at once", nil, map[string]string{"PORTAL_SMTP_HOST": "smtp.example.no", "PORTAL_SMTP_PORT": "70000",
			"PORTAL_SMTP_FROM": "not an address", "PORTAL_SMTP_TLS": "ssl", "PORTAL_SMTP_USERNAME": "portal",
			"PORTAL_WEBHOOK_URL": "http://hooks.example.no/secret-in-path", "PORTAL_WEBHOOK_SECRET": "short-secret"}, nil, []string{
			"smtp_port 70000 must be between 1 and 65535", `smtp_from "not an address" is not an email address`,
			`smtp_tls "ssl": use none, starttls or tls`, "smtp_username and smtp_password", "webhook_url must use https",
			"webhook_secret (or PORTAL_WEBHOOK_SECRET) must be at least 32 characters"}},
		{"smtp without host, secret without url, missing file", nil, map[string]string{"PORTAL_SMTP_FROM": "p@example.no",
			"PORTAL_WEBHOOK_SECRET": secret, "PORTAL_SMTP_PASSWORD_FILE": filepath.Join(dir, "none")}, nil, []string{
			"smtp_from is set but smtp_host is not", "webhook_secret is set but webhook_url is not", "PORTAL_SMTP_PASSWORD_FILE"}},
		{"no from address, port not a number", nil, map[string]string{"PORTAL_SMTP_HOST": "smtp.example.no", "PORTAL_SMTP_PORT": "x"}, nil,
			[]string{"smtp_from must name the sender", `PORTAL_SMTP_PORT "x" must be a port number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := commandConfig("serve", tt.args, func(k string) string { return tt.env[k] }, io.Discard, nil)
			if tt.problem != nil {
				if err == nil {
					t.Fatal("no problem reported")
				}
				for _, p := range tt.problem {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("problems lack %q:\n%v", p, err)
					}
				}
				for _, leak := range []string{"short-secret", "secret-in-path"} {
					if strings.Contains(err.Error(), leak) {
						t.Errorf("a secret was echoed: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

// hookRecorder is a webhook receiver that keeps the key-expiry warnings it gets.
type hookRecorder struct {
	mu       sync.Mutex
	warnings []map[string]any
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type string
		Data map[string]any
	}
	json.NewDecoder(r.Body).Decode(&body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if body.Type == "key_expiry" {
		h.warnings = append(h.warnings, body.Data)
	}
}

// sent lists "kid@threshold to owners" in the order sent.
func (h *hookRecorder) sent() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, d := range h.warnings {
		out = append(out, fmt.Sprintf("%s@%v to %v", d["kid"], d["threshold"], d["owners"]))
	}
	return out
}

func TestKeyExpiryWarnings(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		team, err := store.InsertTeam(ctx, tx, "Skatt", start)
		if err != nil {
			return err
		}
		orphans, err := store.InsertTeam(ctx, tx, "Ownerless", start)
		if err != nil {
			return err
		}
		for _, u := range []struct{ email, role string }{{"o1@example.no", "owner"}, {"m1@example.no", "member"}, {"o2@example.no", "owner"}} {
			id, err := store.InsertUser(ctx, tx, store.User{Email: u.email, Name: u.email, Role: "member"}, start)
			if err != nil {
				return err
			}
			if err := store.PutMember(ctx, tx, team, id, u.role, start); err != nil {
				return err
			}
			if u.role == "member" {
				if err := store.PutMember(ctx, tx, orphans, id, "member", start); err != nil {
					return err
				}
			}
		}
		for _, it := range []struct {
			id   string
			team int64
			exps map[string]time.Time
		}{
			{"skatt", team, map[string]time.Time{"far": start.Add(40 * day), "near": start.Add(5*day + time.Hour)}},
			{"orphan", orphans, map[string]time.Time{"lonely": start.Add(3 * day)}},
			{"unowned", 0, map[string]time.Time{"nobody": start.Add(3 * day)}},
		} {
			var keys []string
			next := time.Time{}
			for kid, exp := range it.exps {
				keys = append(keys, fmt.Sprintf(`{"kty":"RSA","kid":%q,"alg":"RS256","use":"sig","exp":%d}`, kid, exp.Unix()))
				if next.IsZero() || exp.Before(next) {
					next = exp
				}
			}
			if err := store.PutIntegration(ctx, tx, store.Integration{Env: "tt02", ClientID: it.id, Name: "Integration " + it.id, Active: true,
				TeamID: it.team, Raw: "{}", JWKS: `{"keys":[` + strings.Join(keys, ",") + `]}`, KeyCount: len(keys), NextKeyExpiry: next,
				FirstSeen: start, LastChange: start, SyncedAt: start}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clock := start
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	svc, err := clients.New(db, []clients.Env{{Name: "tt02"}, {Name: "prod"}}, clients.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	rec := &hookRecorder{}
	hook := httptest.NewServer(rec)
	defer hook.Close()

	// run advances the clock in half-day steps over [from, to), warning at each step, as the
	// daily loop would (more often, to show that repeats are harmless), with a fresh notifier
	// as after a restart.
	run := func(from, to time.Time) {
		n := notify.New(notify.Config{Webhook: notify.Webhook{URL: hook.URL, Secret: []byte(strings.Repeat("s", 32))}})
		w := expiryWarner{clients: svc, db: db, notify: n, log: slog.New(slog.DiscardHandler)}
		for at := from; at.Before(to); at = at.Add(12 * time.Hour) {
			mu.Lock()
			clock = at
			mu.Unlock()
			w.warnFunc()(ctx, at)
		}
		if err := n.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	owners := "[o1@example.no o2@example.no]"
	run(start, start.Add(20*day))
	want := []string{"near@7 to " + owners, "near@1 to " + owners, "far@30 to " + owners}
	if got := rec.sent(); !slices.Equal(got, want) {
		t.Errorf("first 20 days\n got %v\nwant %v", got, want)
	}
	// A restart on day 20 sends nothing twice; then the far key's 7- and 1-day warnings come.
	run(start.Add(20*day), start.Add(50*day))
	want = append(want, "far@7 to "+owners, "far@1 to "+owners)
	if got := rec.sent(); !slices.Equal(got, want) {
		t.Errorf("after a restart\n got %v\nwant %v", got, want)
	}

	// Without a channel there is no warning step at all.
	if (expiryWarner{notify: notify.New(notify.Config{})}).warnFunc() != nil {
		t.Error("a warning step without a channel")
	}
}
