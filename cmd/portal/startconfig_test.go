package main

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"portal/internal/audit"
)

func TestRecordStartDiffsTheConfiguration(t *testing.T) {
	cfg := defaultConfig()
	cfg.Data = t.TempDir()
	cfg.sessionKey = []byte("session-key-that-must-never-be-written-anywhere")
	cfg.kek = "kek-value-that-must-never-be-written-anywhere"
	cfg.MetricsToken = "metrics-token-that-must-never-be-written-anywhere"
	db, err := openStore(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	if err := recordStart(t.Context(), db, cfg, log); err != nil {
		t.Fatal(err)
	}
	if err := recordStart(t.Context(), db, cfg, log); err != nil {
		t.Fatal(err)
	}
	cfg.SyncConcurrency = 8
	cfg.MetricsToken = ""
	if err := recordStart(t.Context(), db, cfg, log); err != nil {
		t.Fatal(err)
	}
	evs, err := audit.NewLog(db, nil).Query(t.Context(), audit.Filter{Action: "portal.start"})
	if err != nil || len(evs) != 3 {
		t.Fatalf("%d start events: %v", len(evs), err)
	}
	type details struct {
		First   bool `json:"first_start"`
		Changes []struct {
			Field, Before, After string
		} `json:"changes"`
	}
	var newest, middle, oldest details
	for i, d := range []*details{&newest, &middle, &oldest} {
		if err := json.Unmarshal(evs[i].Details, d); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"session-key-that", "kek-value-that", "metrics-token-that"} {
			if strings.Contains(string(evs[i].Details), secret) {
				t.Fatalf("a secret reached the audit trail: %s", evs[i].Details)
			}
		}
	}
	if !oldest.First || middle.First || len(middle.Changes) != 0 {
		t.Fatalf("first %+v, second %+v", oldest, middle)
	}
	got := map[string]string{}
	for _, c := range newest.Changes {
		got[c.Field] = c.Before + " -> " + c.After
	}
	if len(got) != 2 || got["sync_concurrency"] != "4 -> 8" || got["metrics"] != "true -> false" {
		t.Fatalf("changes %v", got)
	}
}
