package main

import (
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// privilegedHook records the privileged-scope notices a webhook receives.
type privilegedHook struct {
	mu   sync.Mutex
	seen []string // "client scopes to recipients"
}

func (h *privilegedHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type string
		Data struct {
			ClientID string   `json:"client_id"`
			Scopes   []string `json:"scopes"`
			Link     string   `json:"link"`
			To       []string `json:"administrators"`
		}
	}
	json.NewDecoder(r.Body).Decode(&body)
	if body.Type != "privileged_scopes" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, body.Data.ClientID+" "+strings.Join(body.Data.Scopes, ",")+" "+body.Data.Link+" to "+strings.Join(body.Data.To, ","))
}

func (h *privilegedHook) sent() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

// TestPrivilegedScopeNotices: each finding (a client and its set of privileged scopes) is told
// to the administrators once, across restarts; a changed scope set is told again.
func TestPrivilegedScopeNotices(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	put := func(scopes ...string) {
		t.Helper()
		if err := db.Tx(ctx, func(tx *sql.Tx) error {
			return store.PutPrivilegedFinding(ctx, tx, store.PrivilegedFinding{Env: "tt02", ClientID: "rogue", Scopes: scopes, FoundAt: now})
		}); err != nil {
			t.Fatal(err)
		}
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		for _, u := range []struct{ email, role string }{{"boss@example.no", "admin"}, {"dev@example.no", "member"}} {
			if _, err := store.InsertUser(ctx, tx, store.User{Email: u.email, Name: u.email, Role: u.role}, now); err != nil {
				return err
			}
		}
		return store.PutIntegration(ctx, tx, store.Integration{Env: "tt02", ClientID: "rogue", Name: "Rogue", Active: true,
			Scopes: []string{"idporten:dcr.write"}, Raw: "{}", JWKS: `{"keys":[]}`, FirstSeen: now, LastChange: now, SyncedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := clients.New(db, []clients.Env{{Name: "tt02"}}, clients.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	hook := &privilegedHook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	// run is what the syncs after a start do: a fresh notifier each time, as after a restart.
	run := func(times int) {
		n := notify.New(notify.Config{Webhook: notify.Webhook{URL: srv.URL, Secret: []byte(strings.Repeat("s", 32))}})
		w := &privilegedWarner{clients: svc, db: db, notify: n, public: "https://portal.example", log: slog.New(slog.DiscardHandler)}
		for range times {
			w.warn(ctx, "tt02")
		}
		if err := n.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const link = "https://portal.example/envs/tt02/integrations/rogue to boss@example.no"
	steps := []struct {
		name  string
		setup func()
		want  []string
	}{
		{"a new finding is told once", func() { put("idporten:dcr.write") }, []string{"rogue idporten:dcr.write " + link}},
		{"a restart tells nothing again", func() {}, []string{"rogue idporten:dcr.write " + link}},
		{"a changed scope set is a new finding", func() { put("idporten:dcr.modify", "idporten:dcr.write") },
			[]string{"rogue idporten:dcr.write " + link, "rogue idporten:dcr.modify,idporten:dcr.write " + link}},
	}
	for _, st := range steps {
		st.setup()
		run(3)
		if got := hook.sent(); !slices.Equal(got, st.want) {
			t.Errorf("%s:\n got %v\nwant %v", st.name, got, st.want)
		}
	}
}
