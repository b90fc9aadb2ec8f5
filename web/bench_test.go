package web_test

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/clients"
	"portal/internal/store"
)

// BenchmarkIntegrationList measures the list page over a mirror of 10,000 integrations:
// a search, one filter and a page of 50, through the whole HTTP stack as a signed-in admin.
// /healthz runs in the same benchmark as the baseline, so the ratio holds across machines.
// Run with: go test -run '^$' -bench IntegrationList ./web/
func BenchmarkIntegrationList(b *testing.B) {
	a := benchApp(b)
	c := a.client()
	c.login("admin@example.no")

	b.Run("healthz", func(b *testing.B) {
		p50, p95 := measureWith(b, c, "/healthz")
		b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(p95.Microseconds()), "p95-µs")
	})
	for _, q := range []string{
		"/envs/tt02/integrations?q=reader&team=3&page=2",
		"/envs/tt02/integrations?q=altinn:serviceowner&expiring=1&sort=expiry",
		"/envs/tt02/integrations?status=all&sort=-changed&page=150",
	} {
		b.Run(q, func(b *testing.B) {
			p50, p95 := measureWith(b, c, q)
			b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(p95.Microseconds()), "p95-µs")
		})
	}
}

// measureWith requests path b.N times and returns the median and 95th percentile latency.
func measureWith(b *testing.B, c *client, path string) (p50, p95 time.Duration) {
	var took []time.Duration
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
		start := time.Now()
		resp, err := c.hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)*95/100]
}

// benchApp is an app whose tt02 mirror holds 10,000 integrations across 10 teams, with no
// upstream (the list reads only the mirror).
func benchApp(b *testing.B) *app {
	a := newAppFull(b, nil, func(db *store.DB) *clients.Service {
		cs, err := clients.New(db, []clients.Env{{Name: "tt02", Label: "Test (tt02)", Problem: "benchmark"}}, clients.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return cs
	})
	a.addUser("admin@example.no", "admin")
	p := adminPrincipal(b, a)
	var teams []int64
	for i := range 10 {
		tm, err := a.auth.CreateTeam(b.Context(), p, fmt.Sprintf("Team %02d", i), metaFor())
		if err != nil {
			b.Fatal(err)
		}
		teams = append(teams, tm.ID)
	}
	words := []string{"reader", "writer", "sync", "export", "archive", "broker", "forms", "ledger", "search", "notify"}
	scopes := [][]string{clients.AltinnServiceOwnerScopes, {"altinn:broker.read"}, {"altinn:correspondence.write", "altinn:broker.write"}, nil}
	now := time.Now().UTC()
	err := a.db.Tx(b.Context(), func(tx *sql.Tx) error {
		for i := range 10_000 {
			id := fmt.Sprintf("%08x-1eba-1bf2-59ed-%012x", i*7919, i)
			it := store.Integration{Env: "tt02", ClientID: id, Name: fmt.Sprintf("%s %s %d", words[i%10], words[(i/10)%10], i),
				Description: "Integration number " + fmt.Sprint(i) + " for " + words[(i/100)%10], Scopes: scopes[i%4],
				Active: i%10 != 0, TeamID: teams[i%10], Raw: fmt.Sprintf(`{"client_id":%q,"active":true}`, id), JWKS: `{"keys":[]}`,
				KeyCount: i % 3, FirstSeen: now, LastChange: now.Add(-time.Duration(i) * time.Minute), SyncedAt: now}
			if it.KeyCount > 0 {
				it.NextKeyExpiry = now.Add(time.Duration(i%400) * 24 * time.Hour)
			}
			if err := store.PutIntegration(b.Context(), tx, it); err != nil {
				return err
			}
		}
		return store.PutSyncState(b.Context(), tx, store.SyncState{Env: "tt02", StartedAt: now, FinishedAt: now, OK: true, Clients: 10_000})
	})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkAudit measures the audit view over 1,000,000 events: a filtered page (team and
// action prefix, newest first) through the whole HTTP stack next to /healthz, and a streamed
// JSON Lines export of every event with the heap sampled while it runs.
// Run with: go test -run '^$' -bench Audit -benchtime 200x -timeout 30m ./web/
func BenchmarkAudit(b *testing.B) {
	const events = 1_000_000
	a := newAppFull(b, nil, nil)
	a.addUser("admin@example.no", "admin")
	ctx := b.Context()
	start := time.Now()
	actions := []string{"integration.create", "integration.update", "key.add", "key.delete", "signin", "integration.try", "key.renew"}
	for done := 0; done < events; {
		err := a.db.Tx(ctx, func(tx *sql.Tx) error {
			for i := 0; i < 10_000 && done < events; i, done = i+1, done+1 {
				ev := audit.New(audit.Meta{ActorID: int64(done%50 + 1), Actor: fmt.Sprintf("user%02d@example.no", done%50), Address: "10.0.0.1",
					RequestID: fmt.Sprintf("r%d", done)}, actions[done%len(actions)], audit.Success, map[string]any{"n": done, "kid": "k1"})
				ev.Env, ev.TeamID, ev.TargetType, ev.Target = []string{"tt02", "prod"}[done%2], int64(done%20+1), "integration", fmt.Sprintf("client-%d", done%5000)
				if _, err := audit.Record(ctx, tx, ev, start.Add(time.Duration(done)*time.Second)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("inserted %d events in %s", events, time.Since(start).Round(time.Second))
	c := a.client()
	c.login("admin@example.no")
	// The portal checks a backlog at start, a batch at a time, before anyone asks; do the same.
	for log := audit.NewLog(a.db, nil); ; {
		st, err := log.VerifyIncremental(ctx)
		if err != nil || st.Broken != nil {
			b.Fatalf("verify the chain: %+v %v", st, err)
		}
		if !st.Behind {
			break
		}
	}

	b.Run("healthz", func(b *testing.B) {
		p50, p95 := measureWith(b, c, "/healthz")
		b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(p95.Microseconds()), "p95-µs")
	})
	for _, q := range []string{"/audit?team=7&action=integration.", "/audit?actor=user07%40example.no&env=prod&before=500000"} {
		b.Run(q, func(b *testing.B) {
			p50, p95 := measureWith(b, c, q)
			b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(p95.Microseconds()), "p95-µs")
		})
	}
	// One export of everything, whatever -benchtime says: it is a million events.
	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		var max uint64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				sampled <- max
				return
			case <-t.C:
				runtime.ReadMemStats(&peak)
				max = maxOf(max, peak.HeapInuse)
			}
		}
	}()
	t0 := time.Now()
	resp, err := c.hc.Get(c.base + "/audit/export?format=jsonl")
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	close(stop)
	maxHeap := <-sampled
	b.Logf("export: %d bytes of %d events in %s: %.0f events/s; heap in use %.1f MiB before, %.1f MiB at most during",
		n, events, took.Round(time.Millisecond), float64(events)/took.Seconds(), float64(before.HeapInuse)/(1<<20), float64(maxHeap)/(1<<20))
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
