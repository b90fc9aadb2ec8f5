package web_test

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

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
