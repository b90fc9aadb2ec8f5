package audit_test

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/store"
)

// mixed appends events of several actors, teams, environments and actions, an hour apart.
func mixed(t *testing.T) *audit.Log {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	l := audit.NewLog(db, nil)
	rows := []struct {
		actor   int64
		team    int64
		env     string
		target  string
		action  string
		outcome string
	}{
		{1, 0, "", "", "signin", audit.Success},
		{2, 10, "tt02", "client-a", "integration.create", audit.Success},
		{2, 10, "tt02", "client-a", "integration.update", audit.Success},
		{3, 20, "prod", "client-b", "integration.create", audit.Failure},
		{2, 10, "tt02", "client-a", "key.add", audit.Success},
		{3, 20, "prod", "client-b", "integration.create", audit.Success},
		{1, 0, "", "", "signin", audit.Failure},
	}
	for i, r := range rows {
		ev := audit.New(audit.Meta{ActorID: r.actor, Actor: []string{"", "ada@example.no", "bo@example.no", "cy@example.no"}[r.actor]},
			r.action, r.outcome, map[string]any{"i": i})
		ev.TeamID, ev.Env, ev.Target, ev.At = r.team, r.env, r.target, start.Add(time.Duration(i)*time.Hour)
		if r.target != "" {
			ev.TargetType = "integration"
		}
		if err := l.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func ids(evs []audit.Event) []int64 {
	var out []int64
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	l := mixed(t)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    audit.Filter
		want []int64
	}{
		{"everything, newest first", audit.Filter{}, []int64{7, 6, 5, 4, 3, 2, 1}},
		{"actor id", audit.Filter{ActorID: 3}, []int64{6, 4}},
		{"actor name", audit.Filter{Actor: "bo@example.no"}, []int64{5, 3, 2}},
		{"team", audit.Filter{TeamID: 10}, []int64{5, 3, 2}},
		{"visible teams", audit.Filter{Teams: []int64{20}}, []int64{6, 4}},
		{"no visible team", audit.Filter{Teams: []int64{}}, nil},
		{"environment", audit.Filter{Env: "prod"}, []int64{6, 4}},
		{"integration", audit.Filter{Env: "tt02", Target: "client-a"}, []int64{5, 3, 2}},
		{"exact action", audit.Filter{Action: "integration.create"}, []int64{6, 4, 2}},
		{"action prefix", audit.Filter{Action: "integration."}, []int64{6, 4, 3, 2}},
		{"outcome", audit.Filter{Outcome: audit.Failure}, []int64{7, 4}},
		{"time range", audit.Filter{From: start.Add(2 * time.Hour), To: start.Add(4 * time.Hour)}, []int64{4, 3}},
		{"combined", audit.Filter{Action: "integration.", Env: "prod", Outcome: audit.Success}, []int64{6}},
		{"keyset page", audit.Filter{Before: 5, Limit: 2}, []int64{4, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.Query(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Fatalf("ids %v, want %v", ids(got), tt.want)
			}
		})
	}
}

func TestExportStreamsEveryMatch(t *testing.T) {
	_, l := setup(t, 1234)
	var got []int64
	err := l.Export(t.Context(), audit.Filter{Limit: 3}, func(ev audit.Event) error {
		got = append(got, ev.ID)
		return nil
	})
	if err != nil || len(got) != 1234 || got[0] != 1234 || got[1233] != 1 {
		t.Fatalf("export: %v, %d events, first %v", err, len(got), got[:1])
	}
}

func TestVerifyIncremental(t *testing.T) {
	db, l := setup(t, 5)
	st, err := l.VerifyIncremental(t.Context())
	if err != nil || st.Broken != nil || st.LastID != 5 {
		t.Fatalf("first: %+v %v", st, err)
	}
	// An event changed before the checkpoint is not re-read by the page's check (the
	// command checks everything); one changed after it is found.
	for i := 0; i < 3; i++ {
		if err := l.Append(t.Context(), audit.New(audit.Meta{Actor: "x"}, "signin", audit.Success, nil)); err != nil {
			t.Fatal(err)
		}
	}
	err = db.Tx(t.Context(), func(tx *sql.Tx) error {
		for _, q := range []string{"DROP TRIGGER audit_events_no_update", "UPDATE audit_events SET actor = 'eve' WHERE id = 7"} {
			if _, err := tx.ExecContext(t.Context(), q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err = l.VerifyIncremental(t.Context())
	if err != nil || st.Broken == nil || st.Broken.ID != 7 || st.LastID != 6 {
		t.Fatalf("after tampering: %+v %v", st, err)
	}
}

func TestChanges(t *testing.T) {
	tests := []struct {
		name    string
		details string
		want    []audit.Change
	}{
		{"before and after", `{"before":{"client_name":"a","scopes":["x"],"last_updated":"1"},"after":{"client_name":"b","scopes":["x"],"last_updated":"2"}}`,
			[]audit.Change{{Field: "client_name", Before: "a", After: "b"}}},
		{"changes list", `{"changes":[{"field":"description","before":"old","after":"new"}]}`,
			[]audit.Change{{Field: "description", Before: "old", After: "new"}}},
		{"added field", `{"before":{},"after":{"team":"Platform"}}`, []audit.Change{{Field: "team", After: "Platform"}}},
		{"nothing", `{"kid":"k1"}`, nil},
		{"not JSON", `nope`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := audit.Changes(json.RawMessage(tt.details)); !slices.Equal(got, tt.want) {
				t.Fatalf("changes %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestVerifyIncrementalInBatches: a backlog is checked a batch per call, each call moving the
// checkpoint on and saying whether more waits, and a break in a later batch is still found.
func TestVerifyIncrementalInBatches(t *testing.T) {
	db, l := setup(t, 7)
	audit.SetIncrementalBatch(l, 3)
	for _, want := range []struct {
		last   int64
		behind bool
	}{{3, true}, {6, true}, {7, false}, {7, false}} {
		st, err := l.VerifyIncremental(t.Context())
		if err != nil || st.Broken != nil || st.LastID != want.last || st.Behind != want.behind {
			t.Fatalf("got %+v %v, want through %d, behind %v", st, err, want.last, want.behind)
		}
	}
	for i := 0; i < 5; i++ {
		if err := l.Append(t.Context(), audit.New(audit.Meta{Actor: "x"}, "signin", audit.Success, nil)); err != nil {
			t.Fatal(err)
		}
	}
	err := db.Tx(t.Context(), func(tx *sql.Tx) error {
		for _, q := range []string{"DROP TRIGGER audit_events_no_update", "UPDATE audit_events SET actor = 'eve' WHERE id = 11"} {
			if _, err := tx.ExecContext(t.Context(), q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := l.VerifyIncremental(t.Context()); err != nil || st.Broken != nil || st.LastID != 10 || !st.Behind {
		t.Fatalf("first batch of the new events: %+v %v", st, err)
	}
	if st, err := l.VerifyIncremental(t.Context()); err != nil || st.Broken == nil || st.Broken.ID != 11 {
		t.Fatalf("the break in the next batch: %+v %v", st, err)
	}
}
