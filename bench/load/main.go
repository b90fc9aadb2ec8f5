// Command load is `make bench`: it seeds a temporary data directory with 10,000 integrations
// across tt02 and prod (in the simulators and the portal's mirror alike, each with keys from a
// small pool of RSA keys under kids of their own; tt02 keys kept by the portal, sealed under
// its key-encryption key) and 1,000,000 hash-chained audit events, starts `portal serve` on
// free loopback ports with its embedded simulators, and drives it in three phases:
//
//  1. baseline: every worker asks for /healthz and a static asset, the cheapest requests the
//     portal answers, to give the CPU per request and latency everything else is compared to;
//  2. browse: signed-in sessions (administrators and team owners) list, search and filter
//     integrations (htmx partials), open integrations and their keys pages, read the audit
//     trail with filters, and run the try-it chain with a kept key (grant, token, exchange,
//     instances);
//  3. tokens: grants signed beforehand for the seeded clients are posted to the simulated
//     Maskinporten token endpoint;
//  4. sign-in storm: 200 workers sign in over and over with wrong passwords, each attempt from
//     an address of its own, while one session reads pages and one client fetches tokens; the
//     report gives the peak resident size as a ratio to the idle one and the pages' and
//     tokens' p95 during the storm against a calm window just before (--only-signins runs
//     this phase alone, after the baseline).
//
// Throughout, a prober asks for /healthz and a static asset ten times a second, so every
// phase carries its own baseline. The report (report.md and latency.png in --out) gives
// p50/p95/p99 per route, throughput, errors, the server's CPU per request (utime+stime from
// /proc) and its peak memory (VmHWM), each also as a ratio to the baseline, since absolute
// times vary between machines.
//
//	go run ./bench/load --portal bin/portal --out bench/out
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"portal/bench/benchutil"
)

type options struct {
	portal       string
	out          string
	keep         bool
	integrations int
	teams        int
	poolKeys     int
	auditEvents  int
	auditBatch   int
	sessions     int
	admins       int
	think        time.Duration
	baseline     time.Duration
	browse       time.Duration
	tokens       time.Duration
	tokenConc    int
	probeEvery   time.Duration
	signins      int
	stormCalm    time.Duration
	storm        time.Duration
	onlySignins  bool
}

func main() {
	var o options
	flag.StringVar(&o.portal, "portal", "bin/portal", "the portal binary to start as `portal serve`")
	flag.StringVar(&o.out, "out", "bench/out", "directory for report.md and latency.png")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary data directory")
	flag.IntVar(&o.integrations, "integrations", 10_000, "integrations to seed, half in each environment")
	flag.IntVar(&o.teams, "teams", 20, "teams owning the integrations, one owner each")
	flag.IntVar(&o.poolKeys, "pool-keys", 8, "RSA keys generated for the pool the integrations' keys are drawn from")
	flag.IntVar(&o.auditEvents, "audit-events", 1_000_000, "audit events to seed")
	flag.IntVar(&o.auditBatch, "audit-batch", 10_000, "audit events per seeding transaction")
	flag.IntVar(&o.sessions, "sessions", 16, "concurrent signed-in sessions in the browse phase")
	flag.IntVar(&o.admins, "admins", 4, "how many of the sessions are administrators (the rest are team owners)")
	flag.DurationVar(&o.think, "think", 50*time.Millisecond, "pause between a session's actions, so the load is bounded below saturation")
	flag.DurationVar(&o.baseline, "baseline", 15*time.Second, "length of the baseline phase")
	flag.DurationVar(&o.browse, "browse", 150*time.Second, "length of the browse phase")
	flag.DurationVar(&o.tokens, "tokens", 40*time.Second, "length of the token phase (signing rounds included)")
	flag.IntVar(&o.tokenConc, "token-clients", 8, "concurrent clients in the token phase")
	flag.DurationVar(&o.probeEvery, "probe-every", 100*time.Millisecond, "interval of the baseline prober")
	flag.IntVar(&o.signins, "signins", 200, "concurrent sign-ins in the sign-in storm (0 skips it)")
	flag.DurationVar(&o.stormCalm, "storm-calm", 10*time.Second, "the calm window before the storm the pages and tokens are compared with")
	flag.DurationVar(&o.storm, "storm", 20*time.Second, "length of the sign-in storm")
	flag.BoolVar(&o.onlySignins, "only-signins", false, "run only the baseline and the sign-in storm (with small --integrations and --audit-events, a quick run)")
	flag.Parse()
	switch {
	case o.integrations < 2*o.teams || o.teams < 1:
		fatalf("--integrations must be at least twice --teams")
	case o.sessions < 1 || o.admins < 0 || o.admins > o.sessions || o.sessions-o.admins > o.teams:
		fatalf("--sessions must be 1 or more, with at most --admins administrators and at most --teams owners")
	case o.poolKeys < 1 || o.auditBatch < 1 || o.auditEvents < 0 || o.tokenConc < 1 || o.probeEvery <= 0:
		fatalf("--pool-keys, --audit-batch, --token-clients and --probe-every must be positive")
	case o.baseline <= 0 || o.browse <= 0 || o.tokens < 0:
		fatalf("phase lengths must be positive (--tokens 0 skips the token phase)")
	case o.signins < 0 || o.signins > 0 && (o.stormCalm <= 0 || o.storm <= 0):
		fatalf("--signins must be 0 or more, with positive --storm-calm and --storm")
	case o.onlySignins && o.signins == 0:
		fatalf("--only-signins needs --signins")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...)
}

// phase is one measured stretch of the run.
type phase struct {
	name     string
	from, to time.Duration // since the recorder's start
	cpu      uint64        // server CPU ticks over the phase (token phase: over its firing windows)
	window   time.Duration // the time the CPU covers
	requests int           // the requests the CPU is divided by
	rssMax   int64         // kB, sampled
}

type result struct {
	o          options
	s          *seeded
	seedTook   time.Duration
	startTook  time.Duration
	syncs      []string // the portal's own first sync per environment, as it logged it
	firstAudit time.Duration
	rec        *benchutil.Recorder
	phases     []phase
	rssIdle    int64 // kB, after start-up and warm-up
	hwm        int64 // kB, VmHWM at the end
	rssSeries  []float64
	verify     string
	cpus       int
	storm      *stormResult
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "portal-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("data directory %s kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	res := &result{o: o}

	t0 := time.Now()
	s, err := seed(ctx, o, dir)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	res.s, res.seedTook = s, time.Since(t0)
	logf("seeded in %s", res.seedTook.Round(time.Second))

	// The portal itself: free loopback ports, an hourly sync so the phases are not disturbed
	// by a full one (views still refresh a stale integration from upstream after a minute).
	// Loopback is a trusted proxy, so the sign-in storm can come from many addresses. The
	// seeded administrators sign in with a password only.
	cfg, _ := json.Marshal(map[string]any{"addr": "127.0.0.1:0", "sim_addr": "127.0.0.1:0", "data": dir,
		"sync_interval": "1h", "log_level": "info", "trusted_proxies": []string{"127.0.0.1/32"}, "require_second_factor": "none"})
	cfgPath := filepath.Join(dir, "bench-config.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	t0 = time.Now()
	child := benchutil.NewChild(filepath.Join(dir, "portal.log"), o.portal, []string{"serve", "--config", cfgPath},
		"PORTAL_SIM_PUBLIC_URL=", "PORTAL_ADDR=", "PORTAL_SIM_ADDR=", "PORTAL_DATA=", "PORTAL_CONFIG=")
	listening := child.Watch(func(l string) bool { return strings.Contains(l, `msg="portal listening"`) })
	synced := child.WatchAll(func(l string) bool {
		return strings.Contains(l, "msg=synced ") || strings.Contains(l, `msg="sync failed"`)
	})
	if err := child.Start(); err != nil {
		return err
	}
	defer func() {
		child.Stop(20 * time.Second)
		if !o.keep {
			return
		}
		logf("portal log: %s", child.LogPath())
	}()
	line, err := child.Await(ctx, listening, "portal listening line", 3*time.Minute)
	if err != nil {
		return err
	}
	base := benchutil.LogValue(line, "url")
	if err := benchutil.LoopbackOnly(base); err != nil {
		return err
	}
	for range 2 {
		l, err := child.Await(ctx, synced, "first sync", 5*time.Minute)
		if err != nil {
			return err
		}
		res.syncs = append(res.syncs, syncSummary(l))
	}
	res.startTook = time.Since(t0)
	logf("portal pid %d at %s, started and synced in %s: %s", child.PID(), base, res.startTook.Round(time.Second), strings.Join(res.syncs, "; "))

	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	rec := benchutil.NewRecorder(time.Now())
	res.rec = rec

	// Sign everyone in, then warm up: the first audit view checks the whole chain once and
	// stores a checkpoint, which later views build on.
	var sessions []*session
	for i := range o.sessions {
		admin := i < o.admins
		email, team := s.admins[0], 0
		if !admin {
			team = i - o.admins
			email = s.owners[team]
		}
		ss := newSession(base, tr, rec, s, o, email, admin, team, uint64(i+1))
		if err := ss.login(ctx); err != nil {
			return fmt.Errorf("sign in %s: %w", email, err)
		}
		sessions = append(sessions, ss)
	}
	t0 = time.Now()
	if _, err := sessions[0].get(ctx, "warm-up: first audit view", "/audit", false); err != nil {
		return err
	}
	res.firstAudit = time.Since(t0)
	logf("first audit view (checks the chain of %d events): %s", o.auditEvents, res.firstAudit.Round(time.Millisecond))
	for _, env := range []string{"tt02", "prod"} {
		if _, err := sessions[0].get(ctx, "warm-up: list", "/envs/"+env+"/integrations", false); err != nil {
			return err
		}
	}
	pid := child.PID()
	if res.rssIdle, err = benchutil.RSSKB(pid); err != nil {
		return err
	}

	// The prober and the memory sampler run through every phase.
	pctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	var bg sync.WaitGroup
	bg.Go(func() { probe(pctx, base, tr, rec, o.probeEvery) })
	var rssMu sync.Mutex
	bg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				if kb, err := benchutil.RSSKB(pid); err == nil {
					rssMu.Lock()
					res.rssSeries = append(res.rssSeries, float64(kb)/1024)
					rssMu.Unlock()
				}
			}
		}
	})

	measure := func(name string, d time.Duration, load func(ctx context.Context)) (phase, error) {
		ph := phase{name: name, from: time.Since(rec.Start())}
		c0, _, err := benchutil.CPUTicks(pid)
		if err != nil {
			return ph, err
		}
		lctx, cancel := context.WithTimeout(ctx, d)
		var rssMax int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-lctx.Done():
					return
				case <-t.C:
					if kb, err := benchutil.RSSKB(pid); err == nil {
						rssMax = max(rssMax, kb)
					}
				}
			}
		}()
		start := time.Now()
		load(lctx)
		cancel()
		<-done
		ph.window = time.Since(start)
		c1, _, err := benchutil.CPUTicks(pid)
		if err != nil {
			return ph, err
		}
		ph.to = time.Since(rec.Start())
		ph.cpu, ph.rssMax = c1-c0, rssMax
		ph.requests = countIn(rec, ph.from, ph.to)
		logf("phase %s: %d requests in %s", name, ph.requests, ph.window.Round(time.Second))
		return ph, ctx.Err()
	}

	ph, err := measure("baseline", o.baseline, func(ctx context.Context) { hammerBaseline(ctx, base, tr, rec, o.sessions) })
	if err != nil {
		return err
	}
	res.phases = append(res.phases, ph)

	if o.onlySignins {
		return runOnlyStorm(ctx, o, res, dir, base, pid, tr, rec, s, sessions[0], stopProbe, &bg)
	}

	ph, err = measure("browse", o.browse, func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, ss := range sessions {
			wg.Go(func() { ss.run(ctx) })
		}
		wg.Wait()
	})
	if err != nil {
		return err
	}
	res.phases = append(res.phases, ph)

	if o.tokens > 0 {
		var tp tokenPhase
		ph, err = measure("tokens", o.tokens, func(ctx context.Context) {
			tp, err = runTokens(ctx, dir, pid, tr, rec, s, o.tokenConc)
		})
		if err != nil {
			return fmt.Errorf("token phase: %w", err)
		}
		// CPU per token covers the firing windows only: signing happens between them, in
		// this process, while the server idles but for the prober.
		ph.cpu, ph.window, ph.requests = tp.cpu, tp.window, tp.requests
		res.phases = append(res.phases, ph)
	}
	if o.signins > 0 {
		tokenURL, err := simTokenURL(dir)
		if err != nil {
			return err
		}
		if res.storm, err = runStorm(ctx, base, tokenURL, pid, tr, rec, s, sessions[0], o.signins, o.stormCalm, o.storm, res.rssIdle); err != nil {
			return fmt.Errorf("sign-in storm: %w", err)
		}
		logf("%s", stormSection(res.storm, rec))
	}
	stopProbe()
	bg.Wait()
	if res.hwm, err = benchutil.HWMKB(pid); err != nil {
		return err
	}
	child.Stop(20 * time.Second)

	// The chain must still hold after everything the run appended.
	out, err := exec.Command(portalPath(o.portal), "audit", "verify", "--data", dir).CombinedOutput()
	res.verify = strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(res.verify, '\n'); i >= 0 && err == nil {
		res.verify = res.verify[i+1:] // the verdict, after the log lines of opening the database
	}
	if err != nil {
		res.verify = "FAILED: " + res.verify
	}
	logf("audit verify: %s", res.verify)

	res.cpus = runtime.NumCPU()
	if err := writeReport(o.out, res); err != nil {
		return err
	}
	logf("report: %s", filepath.Join(o.out, "report.md"))
	return nil
}

func portalPath(p string) string {
	if !strings.Contains(p, "/") {
		return "./" + p
	}
	return p
}

func syncSummary(line string) string {
	if strings.Contains(line, "sync failed") {
		return benchutil.LogValue(line, "env") + ": FAILED " + benchutil.LogValue(line, "err")
	}
	return fmt.Sprintf("%s: %s clients, %s written, %s drifted, %s unowned, took %s", benchutil.LogValue(line, "env"),
		benchutil.LogValue(line, "clients"), benchutil.LogValue(line, "written"), benchutil.LogValue(line, "drifted"),
		benchutil.LogValue(line, "unowned"), benchutil.LogValue(line, "took"))
}

func countIn(rec *benchutil.Recorder, from, to time.Duration) int {
	n := 0
	for _, name := range rec.Names() {
		for _, x := range rec.Samples(name) {
			if x.At >= from && x.At < to {
				n++
			}
		}
	}
	return n
}

// probe asks for /healthz and a static asset in turn, every interval, without a session.
func probe(ctx context.Context, base string, tr http.RoundTripper, rec *benchutil.Recorder, every time.Duration) {
	ss := &session{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, rec: rec}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if i%2 == 0 {
			_, _ = ss.get(ctx, rHealthz, "/healthz", false)
		} else {
			_, _ = ss.get(ctx, rStatic, staticAsset, false)
		}
	}
}

const staticAsset = "/static/css/portal.css"

// hammerBaseline is the baseline phase: n workers ask for /healthz and the static asset in turn.
func hammerBaseline(ctx context.Context, base string, tr http.RoundTripper, rec *benchutil.Recorder, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ss := &session{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, rec: rec}
			for i := 0; ctx.Err() == nil; i++ {
				if i%2 == 0 {
					_, _ = ss.get(ctx, rHealthz, "/healthz", false)
				} else {
					_, _ = ss.get(ctx, rStatic, staticAsset, false)
				}
			}
		})
	}
	wg.Wait()
}

// simTokenURL is the simulated tt02 token endpoint, from the admin credentials the portal wrote.
func simTokenURL(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "sim-tt02-admin.json"))
	if err != nil {
		return "", err
	}
	var adm struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(b, &adm); err != nil || adm.Issuer == "" {
		return "", fmt.Errorf("no issuer in sim-tt02-admin.json: %v", err)
	}
	if err := benchutil.LoopbackOnly(adm.Issuer); err != nil {
		return "", err
	}
	return adm.Issuer + "token", nil
}

// runOnlyStorm runs the sign-in storm alone and writes a report of it.
func runOnlyStorm(ctx context.Context, o options, res *result, dir, base string, pid int, tr http.RoundTripper, rec *benchutil.Recorder,
	s *seeded, reader *session, stopProbe func(), bg *sync.WaitGroup) error {
	tokenURL, err := simTokenURL(dir)
	if err != nil {
		return err
	}
	if res.storm, err = runStorm(ctx, base, tokenURL, pid, tr, rec, s, reader, o.signins, o.stormCalm, o.storm, res.rssIdle); err != nil {
		return fmt.Errorf("sign-in storm: %w", err)
	}
	stopProbe()
	bg.Wait()
	section := stormSection(res.storm, rec)
	logf("%s", section)
	head := fmt.Sprintf("# Portal load benchmark: sign-in storm only\n\nRun %s on %d CPUs; %d integrations and %d audit events seeded. "+
		"Memory is compared with the resident set after start-up in the same run, latencies with the calm window just before the storm.\n\n",
		time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), o.integrations, o.auditEvents)
	return os.WriteFile(filepath.Join(o.out, "report.md"), []byte(head+section), 0o644)
}
