package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"portal/bench/benchutil"
)

// groups are the route groups of the chart and the headline.
var groups = []struct {
	name   string
	routes []string
}{
	{"pages", []string{rDashboard, rList, rIntegration, rKeys}}, // full pages: dashboard, lists, integration, keys
	{"htmx partials", []string{rSearch, rFilter}},
	{"audit", []string{rAudit}},
	{"try-it steps", []string{rTryPage, rTryGrant, rTryToken, rTryExchange, rTryInstances}},
	{"token endpoint", []string{rToken}},
	{"healthz", []string{rHealthz}},
	{"static", []string{rStatic}},
}

func groupSamples(rec *benchutil.Recorder, routes []string) []benchutil.Sample {
	var out []benchutil.Sample
	for _, r := range routes {
		out = append(out, rec.Samples(r)...)
	}
	return out
}

func msf(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "–"
	}
	if a/b < 1 {
		return fmt.Sprintf("%.2f×", a/b)
	}
	return fmt.Sprintf("%.1f×", a/b)
}

func dratio(a, b time.Duration) string { return ratio(float64(a), float64(b)) }

func mib(kb int64) string { return fmt.Sprintf("%.0f MiB", float64(kb)/1024) }

func (p phase) cpuPerRequest() time.Duration {
	if p.requests == 0 {
		return 0
	}
	return benchutil.TicksDuration(p.cpu) / time.Duration(p.requests)
}

func (p phase) throughput() float64 {
	if p.window <= 0 {
		return 0
	}
	return float64(p.requests) / p.window.Seconds()
}

func writeReport(dir string, r *result) error {
	var b bytes.Buffer
	o := r.o
	rec := r.rec
	base := r.phases[0]
	baseCPU := base.cpuPerRequest()
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# Portal load benchmark\n\n")
	w("Run %s on %d CPUs (%s/%s, %s). Every ratio (×) compares with a baseline measured in the same run: latencies with `/healthz` "+
		"in the same phase (asked for by a prober %s apart, interleaved with the load), throughput and CPU per request with the "+
		"baseline phase, memory with the resident set after start-up. Absolute times vary between machines; the ratios travel.\n\n",
		time.Now().Format("2006-01-02 15:04"), r.cpus, runtime.GOOS, runtime.GOARCH, runtime.Version(), o.probeEvery)

	browse := r.phases[1]
	bh := benchutil.Summarize(rec.Samples(rHealthz), browse.from, browse.to)
	w("## Headline\n\n")
	w("| figure | value | ratio |\n|---|---:|---:|\n")
	for _, g := range groups[:4] {
		s := benchutil.Summarize(groupSamples(rec, g.routes), browse.from, browse.to)
		w("| p95 %s (browse) | %s | %s |\n", g.name, msf(s.P95), dratio(s.P95, bh.P95))
	}
	if len(r.phases) > 2 {
		tp := r.phases[2]
		th := benchutil.Summarize(rec.Samples(rHealthz), tp.from, tp.to)
		s := benchutil.Summarize(rec.Samples(rToken), tp.from, tp.to)
		w("| p95 token endpoint (tokens) | %s | %s |\n", msf(s.P95), dratio(s.P95, th.P95))
	}
	w("| p95 /healthz interleaved in browse (the baseline above) | %s | %s of /healthz in the baseline phase |\n", msf(bh.P95),
		dratio(bh.P95, benchutil.Summarize(rec.Samples(rHealthz), base.from, base.to).P95))
	for _, p := range r.phases[1:] {
		w("| throughput, %s | %.0f req/s | %s |\n", p.name, p.throughput(), ratio(p.throughput(), base.throughput()))
		w("| server CPU per request, %s | %.0f µs | %s |\n", p.name, float64(p.cpuPerRequest())/1e3, dratio(p.cpuPerRequest(), baseCPU))
	}
	w("| peak memory (VmHWM) | %s | %s of %s after start-up |\n", mib(r.hwm), ratio(float64(r.hwm), float64(r.rssIdle)), mib(r.rssIdle))
	errs, total := 0, 0
	for _, name := range rec.Names() {
		s := benchutil.Summarize(rec.Samples(name), 0, 1<<62)
		errs += s.Errors
		total += s.N
	}
	w("| errors | %d of %d requests | %.3f%% |\n", errs, total, 100*float64(errs)/float64(max(total, 1)))
	w("| seeding | %s | |\n\n", r.seedTook.Round(100*time.Millisecond))

	w("## Seeding\n\n")
	w("A temporary data directory with %d integrations (half in tt02, half in prod, over %d teams with one owner each), "+
		"each with one or two keys drawn from a pool of %d RSA-2048 keys under kids of their own, and %d audit events.\n\n",
		o.integrations, o.teams, o.poolKeys, o.auditEvents)
	w("| step | took |\n|---|---:|\n")
	for _, st := range r.s.steps {
		w("| %s | %s |\n", st.what, st.took.Round(10*time.Millisecond))
	}
	w("| **total** | **%s** |\n\n", r.seedTook.Round(100*time.Millisecond))
	w("Portal start-up until both first syncs finished: %s (%s). The first audit view, which checks the whole chain once and stores a checkpoint: %s. "+
		"After the run, `portal audit verify`: %s.\n\n", r.startTook.Round(100*time.Millisecond), strings.Join(r.syncs, "; "),
		r.firstAudit.Round(time.Millisecond), r.verify)

	w("## Phases\n\n")
	w("- **baseline**: %d workers ask for `/healthz` and `%s` in turn, for %s.\n", o.sessions, staticAsset, o.baseline)
	w("- **browse**: %d signed-in sessions (%d administrators, %d team owners), each a closed loop (think time %s) of list, search and filter (htmx partials), open integration, keys page, audit with filters, and, for owners, the try-it chain with a kept key (page, grant, token, exchange, instances), for %s.\n",
		o.sessions, o.admins, o.sessions-o.admins, o.think, o.browse)
	if o.tokens > 0 {
		w("- **tokens**: %d clients post kid grants (RS256, signed beforehand in rounds by this process) for the seeded tt02 clients to the simulated token endpoint, for %s; CPU and throughput cover the firing windows only.\n",
			o.tokenConc, o.tokens)
	}
	w("\n| phase | measured | requests | req/s | × baseline | server CPU/request | × baseline | RSS max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.phases {
		w("| %s | %s | %d | %.0f | %s | %.0f µs | %s | %s |\n", p.name, p.window.Round(100*time.Millisecond), p.requests, p.throughput(),
			ratio(p.throughput(), base.throughput()), float64(p.cpuPerRequest())/1e3, dratio(p.cpuPerRequest(), baseCPU), mib(p.rssMax))
	}
	w("\nServer CPU is utime+stime of the `portal serve` process (portal and embedded simulators) from /proc/PID/stat, divided by the requests of the phase (prober included).\n\n")

	w("## Latency per route\n\nRatios divide by `/healthz` at the same percentile in the same phase.\n\n")
	for _, p := range r.phases {
		h := benchutil.Summarize(rec.Samples(rHealthz), p.from, p.to)
		w("### %s\n\n", p.name)
		w("| route | requests | errors | req/s | p50 | p95 | p99 | p50 × | p95 × | p99 × |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		names := rec.Names()
		slices.SortStableFunc(names, func(a, b string) int { return routeOrder(a) - routeOrder(b) })
		for _, name := range names {
			s := benchutil.Summarize(rec.Samples(name), p.from, p.to)
			if s.N == 0 {
				continue
			}
			w("| %s | %d | %d | %.1f | %s | %s | %s | %s | %s | %s |\n", name, s.N, s.Errors, float64(s.N)/(p.to-p.from).Seconds(),
				msf(s.P50), msf(s.P95), msf(s.P99), dratio(s.P50, h.P50), dratio(s.P95, h.P95), dratio(s.P99, h.P99))
		}
		w("\n")
	}

	var failures []string
	for _, name := range rec.Names() {
		if f := rec.FirstFailure(name); f != "" {
			failures = append(failures, fmt.Sprintf("- %s: %s", name, oneLine(f)))
		}
	}
	if len(failures) > 0 {
		w("## First failure per route\n\n%s\n\n", strings.Join(failures, "\n"))
	}

	if r.storm != nil {
		w("%s", stormSection(r.storm, rec))
	}

	w("## Latency over time\n\n![p50 and p95 latency per second and route group](latency.png)\n\n")
	w("p95 (thick) and p50 (thin) per second for each route group, on a logarithmic scale; dashed lines mark the phases.\n")

	if err := os.WriteFile(filepath.Join(dir, "report.md"), b.Bytes(), 0o644); err != nil {
		return err
	}
	return writeChart(filepath.Join(dir, "latency.png"), r)
}

func routeOrder(name string) int {
	for i, r := range []string{rHealthz, rStatic, rLogin, rDashboard, rList, rSearch, rFilter, rIntegration, rKeys, rAudit,
		rTryPage, rTryGrant, rTryToken, rTryExchange, rTryInstances, rToken} {
		if r == name {
			return i
		}
	}
	return 100
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func writeChart(path string, r *result) error {
	end := r.phases[len(r.phases)-1].to
	c := benchutil.Chart{Title: "Portal latency per second (ms, log scale)", XLabel: "seconds since the sessions signed in", YLabel: "ms", XStep: 1}
	for i, g := range groups {
		samples := groupSamples(r.rec, g.routes)
		if len(samples) == 0 {
			continue
		}
		col := benchutil.Palette[i%len(benchutil.Palette)]
		for _, q := range []struct {
			name  string
			q     float64
			thick bool
		}{{"p95", 0.95, true}, {"p50", 0.50, false}} {
			per := benchutil.PerInterval(samples, time.Second, end, q.q)
			vals := make([]float64, len(per))
			for j, d := range per {
				vals[j] = -1
				if d >= 0 {
					vals[j] = float64(d) / float64(time.Millisecond)
				}
			}
			c.Series = append(c.Series, benchutil.Series{Name: g.name + " " + q.name, Color: col, Values: vals, Thick: q.thick})
		}
	}
	for _, p := range r.phases {
		c.Markers = append(c.Markers, benchutil.Marker{X: p.from.Seconds(), Label: p.name})
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WritePNG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
