package tryit_test

import (
	"slices"
	"testing"
	"time"

	"portal/internal/altinn"
	"portal/internal/tryit"
)

// BenchmarkRunAll measures "Run all" against the simulators as the page runs it: open a try
// (authorization, the integration from the mirror), sign the grant with a kept key (unseal,
// RSA signature), token, exchange, the first page of instances, and the audit event. It
// reports the portal's own overhead per run at p50 and p95: the run's wall time less the
// simulators' time from their Server-Timing headers and less the grant's RSA signature. The
// budget (issue 6) is under 10 ms at p95.
func BenchmarkRunAll(b *testing.B) {
	w := newWorld(b, worldOptions{})
	ctx := b.Context()
	id := w.integration(b, "Bench", 0, "bench-1", true, readScope, writeScope)
	g := tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope}}, KID: "bench-1"}
	plan := tryit.Plan{Exchange: true, Instances: &altinn.InstanceQuery{AppID: appID, Size: 10}}
	var overhead, steps []time.Duration
	for b.Loop() {
		start := time.Now()
		run, err := w.svc.RunAll(ctx, w.member, meta(w.member), "tt02", id, g, plan)
		total := time.Since(start)
		if err != nil || len(run) != 4 || !run[3].OK {
			b.Fatalf("run: %v, %d steps", err, len(run))
		}
		var upstream, sign, own time.Duration
		for _, s := range run {
			upstream += s.Upstream
			sign += s.Sign
			own += s.Overhead()
		}
		overhead = append(overhead, total-upstream-sign)
		steps = append(steps, own)
	}
	b.ReportMetric(ms(percentile(overhead, 50)), "overhead-p50-ms")
	b.ReportMetric(ms(percentile(overhead, 95)), "overhead-p95-ms")
	b.ReportMetric(ms(percentile(steps, 95)), "steps-only-p95-ms")
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
