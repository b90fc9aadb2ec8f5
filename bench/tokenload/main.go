// Command tokenload is the load generator for the simulated Maskinporten token endpoint (issue 3,
// "Speed"). It starts `portal sim` as a child process on a free loopback port with a temporary
// data directory, registers a client with an RSA-2048 key through the simulated self-service API
// (authenticated with the admin client's x5c grant), and then, for each concurrency level, posts
// freshly signed kid grants (a new jti each) to the token endpoint, each client on a kept-alive
// HTTP/1.1 connection of its own with one request in flight.
//
// Grants are signed in rounds before they are fired, while the server is idle, so the client's
// signing neither competes with the server for CPU during a firing window nor counts in the
// server's CPU time. Each round fires at most the grants signed for it and ends well before their
// iat leaves the simulator's ±10 s window. A round fires in short slices, each followed by a
// short measurement of the baseline while the server is idle, because this machine's speed
// drifts within seconds. The server's CPU time (utime+stime from /proc/PID/stat) is read around
// each round's firing, so its idle moments between slices count too.
//
// The report is a Markdown table on stdout: throughput, p50/p99 latency, errors, server CPU per
// issued token, its ratio to one RSA-2048 PKCS#1 v1.5 SHA-256 verification plus one RS256
// signature measured in this process, and the server's RSS at the start and end of each level.
//
//	go run ./bench/tokenload --portal bin/portal --duration 10s
//	go run ./bench/tokenload --portal bin/portal --levels 64 --tokens 100000 --duration 0
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"portal/bench/benchutil"
	"portal/internal/maskinporten"
)

const (
	clockTicks = benchutil.ClockTicks
	loadScope  = "altinn:serviceowner/instances.read"
	// A grant's iat is set this far ahead of its signing time; the simulator accepts iat within
	// ±10 s of its clock, so a grant stays usable from signing until about iatLead+10 s later.
	iatLead = 5 * time.Second
	// roundFire bounds how long one round fires after its signing ended, leaving a margin
	// before the oldest grant of the round expires from the iat window.
	roundFire = 8 * time.Second
	// roundSign bounds how long one round signs.
	roundSign = 3 * time.Second
	// A round fires in slices of sliceFire, each followed by sliceBaseline of baseline
	// measurement with the server idle.
	sliceFire     = 300 * time.Millisecond
	sliceBaseline = 60 * time.Millisecond
)

type options struct {
	portal   string
	levels   []int
	duration time.Duration
	tokens   int
	baseline time.Duration
	maxLevel time.Duration
	keep     bool
}

func main() {
	var o options
	var levels string
	flag.StringVar(&o.portal, "portal", "bin/portal", "the portal binary to start as `portal sim`")
	flag.StringVar(&levels, "levels", "1,16,64", "comma-separated concurrency levels")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "firing time per level (0: no time bound, then --tokens is required)")
	flag.IntVar(&o.tokens, "tokens", 0, "issued tokens per level (0: no count bound)")
	flag.DurationVar(&o.baseline, "baseline", 2*time.Second, "how long to measure the RSA baseline")
	flag.DurationVar(&o.maxLevel, "max-level-time", 5*time.Minute, "hard bound on the wall time of one level, signing included")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary data directory")
	flag.Parse()
	for f := range strings.SplitSeq(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			fatalf("--levels: %q is not a concurrency between 1 and 1024", f)
		}
		o.levels = append(o.levels, n)
	}
	if o.duration <= 0 && o.tokens <= 0 {
		fatalf("give --duration or --tokens (or both)")
	}
	if o.tokens < 0 || o.duration < 0 || o.baseline <= 0 || o.maxLevel <= 0 {
		fatalf("negative or zero bounds")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tokenload: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tokenload: "+format+"\n", args...)
}

// admin is the part of sim-tt02-admin.json the generator needs.
type admin struct {
	Issuer         string   `json:"issuer"`
	SelfServiceURL string   `json:"selfservice_url"`
	ClientID       string   `json:"client_id"`
	Scopes         []string `json:"scopes"`
	ChainPEM       string   `json:"certificate_chain_pem"`
	KeyPEM         string   `json:"private_key_pem"`
}

type levelResult struct {
	conc             int
	issued, errors   int
	window           time.Duration // summed firing time
	cpuTicks         uint64        // server utime+stime over the firing windows
	sysTicks         uint64        // of which stime
	p50, p99         time.Duration
	rssStart, rssEnd int64 // kB
	rssMax           int64
	signed, unused   int
	base             baseline // measured between this level's rounds
}

func run(ctx context.Context, o options) error {
	if !strings.Contains(o.portal, "/") {
		o.portal = "./" + o.portal
	}
	dir, err := os.MkdirTemp("", "tokenload-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("data directory %s kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	srv, err := startServer(ctx, o.portal, dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	logf("server pid %d at %s", srv.pid(), srv.base)

	hc := &http.Client{Timeout: 30 * time.Second}
	adm, err := readAdmin(filepath.Join(dir, "sim-tt02-admin.json"))
	if err != nil {
		return err
	}
	if err := loopbackOnly(adm.Issuer); err != nil {
		return err
	}
	adminToken, err := adminAccessToken(ctx, hc, adm)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	clientID, signer, err := registerClient(ctx, hc, adm, adminToken)
	if err != nil {
		return err
	}
	logf("load client %s with key %s", clientID, signer.KeyID)

	rb := newRSABench()
	base := rb.measure(o.baseline)
	logf("baseline: one verify + one RS256 sign = %.0f µs CPU (%.0f µs wall, %d pairs)",
		micros(base.cpu), micros(base.wall), base.n)

	tokenURL := adm.Issuer + "token"
	var results []levelResult
	for _, conc := range o.levels {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := runLevel(ctx, o, srv, rb, tokenURL, clientID, adm.Issuer, signer, conc)
		if err != nil {
			return fmt.Errorf("level %d: %w", conc, err)
		}
		results = append(results, res)
		logf("level %d done: %d tokens, %d errors", conc, res.issued, res.errors)
	}
	printReport(os.Stdout, o, base, results)
	return nil
}

// ---- the server child process ----

type server struct {
	child *benchutil.Child
	base  string
}

func startServer(ctx context.Context, portal, dir string) (*server, error) {
	c := benchutil.NewChild(filepath.Join(dir, "sim.log"), portal, []string{"sim", "--addr", "127.0.0.1:0", "--data", dir},
		"PORTAL_SIM_PUBLIC_URL=")
	const prefix = "simulators listening on "
	ready := c.Watch(func(l string) bool { return strings.HasPrefix(l, prefix) })
	if err := c.Start(); err != nil {
		return nil, err
	}
	l, err := c.Await(ctx, ready, "listening line", 30*time.Second)
	if err != nil {
		c.Stop(5 * time.Second)
		return nil, err
	}
	u, _, _ := strings.Cut(strings.TrimPrefix(l, prefix), " ")
	s := &server{child: c, base: strings.TrimSuffix(strings.TrimSuffix(u, "/"), "/sim")}
	if err := loopbackOnly(s.base); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) stop() { s.child.Stop(5 * time.Second) }

func (s *server) pid() int { return s.child.PID() }

var (
	cpuTicks     = benchutil.CPUTicks
	rssKB        = benchutil.RSSKB
	loopbackOnly = benchutil.LoopbackOnly
	quantile     = benchutil.Quantile
)

// ---- setup: admin token, load client ----

func readAdmin(path string) (*admin, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var a admin
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a.Issuer == "" || a.ClientID == "" || a.SelfServiceURL == "" {
		return nil, fmt.Errorf("%s: issuer, client_id or selfservice_url missing", path)
	}
	return &a, nil
}

func adminAccessToken(ctx context.Context, hc *http.Client, a *admin) (string, error) {
	var chain []*x509.Certificate
	rest := []byte(a.ChainPEM)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return "", err
		}
		chain = append(chain, c)
	}
	blk, _ := pem.Decode([]byte(a.KeyPEM))
	if blk == nil || len(chain) == 0 {
		return "", errors.New("no key or certificate in the admin file")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return "", err
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return "", errors.New("admin key cannot sign")
	}
	g, err := maskinporten.SignGrant(maskinporten.Grant{Audience: a.Issuer, ClientID: a.ClientID, Scopes: a.Scopes},
		maskinporten.Signer{Key: key, Chain: chain})
	if err != nil {
		return "", err
	}
	status, body, err := postForm(ctx, hc, a.Issuer+"token", g)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("%d %s", status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("no access_token in %s", body)
	}
	return tr.AccessToken, nil
}

func registerClient(ctx context.Context, hc *http.Client, a *admin, token string) (string, maskinporten.Signer, error) {
	api := a.SelfServiceURL + "/api/v1/clients"
	reg := map[string]any{
		"integration_type": "maskinporten", "application_type": "web",
		"client_name": "load", "description": "load test",
		"token_endpoint_auth_method": "private_key_jwt",
		"grant_types":                []string{maskinporten.GrantType},
		"scopes":                     []string{loadScope},
	}
	var created struct {
		ClientID string `json:"client_id"`
	}
	if err := postJSON(ctx, hc, api, token, reg, http.StatusCreated, &created); err != nil {
		return "", maskinporten.Signer{}, fmt.Errorf("create client: %w", err)
	}
	if created.ClientID == "" {
		return "", maskinporten.Signer{}, errors.New("create client: no client_id in the answer")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", maskinporten.Signer{}, err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	kid := "tokenload-" + base64.RawURLEncoding.EncodeToString(rnd[:])
	jwks := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
	}}}
	if err := postJSON(ctx, hc, api+"/"+url.PathEscape(created.ClientID)+"/jwks", token, jwks, 0, nil); err != nil {
		return "", maskinporten.Signer{}, fmt.Errorf("register key: %w", err)
	}
	return created.ClientID, maskinporten.Signer{Key: key, Alg: maskinporten.RS256, KeyID: kid}, nil
}

func postJSON(ctx context.Context, hc *http.Client, u, token string, in any, want int, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if (want != 0 && resp.StatusCode != want) || resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func postForm(ctx context.Context, hc *http.Client, u, assertion string) (int, []byte, error) {
	form := "grant_type=" + url.QueryEscape(maskinporten.GrantType) + "&assertion=" + url.QueryEscape(assertion)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// ---- baseline ----

type baseline struct {
	n         int
	cpu, wall time.Duration // per verify+sign pair
}

// add pools two measurements, weighted by their pairs.
func (b baseline) add(o baseline) baseline {
	n := b.n + o.n
	if n == 0 {
		return b
	}
	return baseline{n: n, cpu: (b.cpu*time.Duration(b.n) + o.cpu*time.Duration(o.n)) / time.Duration(n),
		wall: (b.wall*time.Duration(b.n) + o.wall*time.Duration(o.n)) / time.Duration(n)}
}

// rsaBench measures the baseline with one key made once.
type rsaBench struct {
	key *rsa.PrivateKey
	msg []byte
	sig []byte
}

func newRSABench() *rsaBench {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fatalf("baseline key: %v", err)
	}
	msg := []byte(strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 20))
	sum := sha256.Sum256(msg)
	sig, _ := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	for range 20 { // warm up
		_, _ = rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	}
	return &rsaBench{key: key, msg: msg, sig: sig}
}

// measure times one RSA-2048 PKCS#1 v1.5 SHA-256 verification plus one RS256 signature
// (hashing included) for about d on one goroutine locked to its thread, by thread CPU time and
// wall time.
func (r *rsaBench) measure(d time.Duration) baseline {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, wall0 := threadCPU(), time.Now()
	n := 0
	for n < 1_000_000 && (n == 0 || time.Since(wall0) < d) {
		h := sha256.Sum256(r.msg)
		if err := rsa.VerifyPKCS1v15(&r.key.PublicKey, crypto.SHA256, h[:], r.sig); err != nil {
			fatalf("baseline verify: %v", err)
		}
		h = sha256.Sum256(r.msg)
		if _, err := rsa.SignPKCS1v15(nil, r.key, crypto.SHA256, h[:]); err != nil {
			fatalf("baseline sign: %v", err)
		}
		n++
	}
	wall, cpu := time.Since(wall0), threadCPU()-cpu0
	return baseline{n: n, cpu: cpu / time.Duration(n), wall: wall / time.Duration(n)}
}

// threadCPU is the calling thread's CPU time, exact to the nanosecond (getrusage lags by up to
// a scheduler tick for the running thread, too coarse for short slices).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		fatalf("clock_gettime: %v", err)
	}
	return time.Duration(ts.Nano())
}

// ---- a level ----

func runLevel(ctx context.Context, o options, srv *server, rb *rsaBench, tokenURL, clientID, issuer string, signer maskinporten.Signer, conc int) (levelResult, error) {
	res := levelResult{conc: conc}
	conns := make([]*tokenConn, conc)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	pid := srv.pid()
	var err error
	if res.rssStart, err = rssKB(pid); err != nil {
		return res, err
	}
	res.rssMax = res.rssStart
	hardStop := time.Now().Add(o.maxLevel)
	latencies := make([]time.Duration, 0, 4096)
	var firstErr string
	rate := 0.0 // issued per second of firing, from the previous round
	for {
		remainingTime := time.Duration(1<<62 - 1)
		if o.duration > 0 {
			remainingTime = o.duration - res.window
		}
		remainingCount := 1 << 30
		if o.tokens > 0 {
			remainingCount = o.tokens - res.issued
		}
		if remainingTime <= 0 || remainingCount <= 0 {
			break
		}
		if time.Now().After(hardStop) {
			logf("level %d: stopped by --max-level-time after %d tokens", conc, res.issued)
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// Size the round: what the previous round's rate says the remaining time needs, at most
		// what a round may fire and what is left to issue.
		want := remainingCount
		fire := min(remainingTime, roundFire)
		if rate > 0 {
			want = min(want, int(rate*fire.Seconds()*1.1)+conc)
		} else {
			want = min(want, 200*conc+200)
		}
		grants, err := signRound(signer, issuer, clientID, want)
		if err != nil {
			return res, err
		}
		res.signed += len(grants)
		signedAt := time.Now()

		// Fire in short slices, each followed by a short baseline measurement while the server is
		// idle: the machine's speed drifts within seconds, so both sides see the same machine.
		// The server's CPU is read once around the whole firing phase (cumulative counters),
		// so its idle moments between slices count too.
		t0, s0, err := cpuTicks(pid)
		if err != nil {
			return res, err
		}
		roundEnd := time.Now().Add(fire)
		if d := signedAt.Add(roundFire); d.Before(roundEnd) {
			roundEnd = d
		}
		var lat []time.Duration
		var window time.Duration
		nerr, pos := 0, 0
		ferr := ""
		for pos < len(grants) && time.Now().Before(roundEnd) && ctx.Err() == nil {
			start := time.Now()
			until := start.Add(sliceFire)
			if roundEnd.Before(until) {
				until = roundEnd
			}
			l, ne, fe := fire1(ctx, conns, tokenURL, grants[pos:], until)
			window += time.Since(start)
			pos += len(l) + ne
			lat, nerr = append(lat, l...), nerr+ne
			if ferr == "" {
				ferr = fe
			}
			res.base = res.base.add(rb.measure(sliceBaseline))
			if len(l) == 0 && ne > 0 {
				break
			}
		}
		t1, s1, err := cpuTicks(pid)
		if err != nil {
			return res, err
		}
		if rss, err := rssKB(pid); err == nil && rss > res.rssMax {
			res.rssMax = rss
		}
		res.window += window
		res.cpuTicks += t1 - t0
		res.sysTicks += s1 - s0
		res.issued += len(lat)
		res.errors += nerr
		res.unused += len(grants) - len(lat) - nerr
		latencies = append(latencies, lat...)
		if firstErr == "" && ferr != "" {
			firstErr = ferr
			logf("level %d: first error: %s", conc, ferr)
		}
		if len(lat) > 0 {
			rate = float64(len(lat)) / window.Seconds()
		}
		if len(lat) == 0 && nerr > 0 {
			break // everything failing: stop the level, the table shows it
		}
	}
	if res.rssEnd, err = rssKB(pid); err != nil {
		return res, err
	}
	if res.rssEnd > res.rssMax {
		res.rssMax = res.rssEnd
	}
	slices.Sort(latencies)
	res.p50, res.p99 = quantile(latencies, 0.50), quantile(latencies, 0.99)
	return res, nil
}

// signRound signs up to n kid grants on all cores, each with a fresh jti and iat a little ahead
// of its signing time, stopping early at roundSign.
func signRound(signer maskinporten.Signer, issuer, clientID string, n int) ([]string, error) {
	out := make([]string, n)
	var next atomic.Int64
	var filled atomic.Int64
	stopAt := time.Now().Add(roundSign)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || time.Now().After(stopAt) {
					return
				}
				g := maskinporten.Grant{Audience: issuer, ClientID: clientID, Scopes: []string{loadScope},
					IssuedAt: time.Now().Add(iatLead)}
				s, err := maskinporten.SignGrant(g, signer)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i] = s
				filled.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// Workers stop at roundSign, so the filled grants are a prefix up to a few holes at its end.
	grants := out[:0]
	for _, g := range out {
		if g != "" {
			grants = append(grants, g)
		}
	}
	return grants, nil
}

// fire1 posts grants on len(conns) connections, one request in flight on each, until they
// run out or deadline passes. It returns the latencies of the 200 answers, the number of
// failures and the first failure.
func fire1(ctx context.Context, conns []*tokenConn, tokenURL string, grants []string, deadline time.Time) ([]time.Duration, int, string) {
	conc := len(conns)
	var next atomic.Int64
	lats := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= len(grants) {
					return
				}
				if conns[w] == nil {
					conns[w] = &tokenConn{url: tokenURL}
				}
				t := time.Now()
				status, body, err := conns[w].post(grants[i])
				d := time.Since(t)
				switch {
				case err != nil:
					errs[w]++
					firstErr.CompareAndSwap(nil, "transport: "+err.Error())
				case status != http.StatusOK:
					errs[w]++
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", status, bytes.TrimSpace(body)))
				default:
					lats[w] = append(lats[w], d)
				}
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	n := 0
	for w := range conc {
		all = append(all, lats[w]...)
		n += errs[w]
	}
	fe, _ := firstErr.Load().(string)
	return all, n, fe
}

// tokenConn is one client: a kept-alive HTTP/1.1 connection on which its goroutine writes a
// request and reads the answer itself (net/http's Transport hands both to goroutines of its
// own, which adds client-side latency that leaves the server idle between requests).
type tokenConn struct {
	url  string
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

func (c *tokenConn) post(assertion string) (int, []byte, error) {
	if c.conn == nil {
		u, err := url.Parse(c.url)
		if err != nil {
			return 0, nil, err
		}
		conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
		c.buf = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ", u.RequestURI(), u.Host)
	}
	form := "grant_type=" + url.QueryEscape(maskinporten.GrantType) + "&assertion=" + url.QueryEscape(assertion)
	head := len(c.buf)
	req := strconv.AppendInt(c.buf, int64(len(form)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, form...)
	c.buf = req[:head]
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, body, err
}

func (c *tokenConn) close() {
	if c != nil && c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// ---- report ----

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func printReport(w io.Writer, o options, base baseline, rs []levelResult) {
	bound := []string{}
	if o.duration > 0 {
		bound = append(bound, o.duration.String()+" of firing")
	}
	if o.tokens > 0 {
		bound = append(bound, strconv.Itoa(o.tokens)+" tokens")
	}
	fmt.Fprintf(w, "## Token endpoint load (%s per level, kid grants, RSA-2048, %d CPUs)\n\n", strings.Join(bound, " or "), runtime.NumCPU())
	fmt.Fprintf(w, "Baseline (this process, one goroutine): one RSA-2048 PKCS#1 v1.5 SHA-256 verification + one RS256 signature = **%.0f µs** CPU (%.0f µs wall, %d pairs) before the first level; "+
		"within each level it is measured again for %s after every %s slice of firing (the server idle), and each level's ratio divides by its own.\n\n",
		micros(base.cpu), micros(base.wall), base.n, sliceBaseline, sliceFire)
	fmt.Fprintln(w, "| clients | tokens | errors | tokens/s | p50 | p99 | server CPU/token (sys) | baseline in the level | ratio to baseline | RSS start → end (max) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rs {
		tps, cpuPer, sysPer, ratio := 0.0, 0.0, 0.0, 0.0
		if r.window > 0 {
			tps = float64(r.issued) / r.window.Seconds()
		}
		if r.issued > 0 {
			cpuPer = float64(r.cpuTicks) * 1e6 / clockTicks / float64(r.issued)
			sysPer = float64(r.sysTicks) * 1e6 / clockTicks / float64(r.issued)
		}
		lb := r.base
		if lb.n == 0 {
			lb = base
		}
		if r.issued > 0 {
			ratio = cpuPer / micros(lb.cpu)
		}
		fmt.Fprintf(w, "| %d | %d | %d | %.0f | %s | %s | %.0f µs (%.0f) | %.0f µs | %.2f | %.1f → %.1f MiB (%.1f) |\n",
			r.conc, r.issued, r.errors, tps, ms(r.p50), ms(r.p99), cpuPer, sysPer, micros(lb.cpu), ratio,
			float64(r.rssStart)/1024, float64(r.rssEnd)/1024, float64(r.rssMax)/1024)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Server CPU is utime+stime of the `portal sim` process (/proc, %d Hz ticks) summed over the firing windows; grants are signed between windows.\n", clockTicks)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}
