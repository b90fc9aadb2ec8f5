//go:build unix

package main

// The crash test (issue 8, "Crash safety"): the portal runs as a process of its own, a stream of
// mutations goes to it over HTTP as a signed-in administrator, and it is killed with SIGKILL at
// a random moment, then started again on the same data directory, many times over. After every
// restart the database opens, `portal audit verify` passes, every change that got a success
// answer is there (upstream in the simulator and in the mirror after one sync), no create made
// two clients, and every integration the stream created belongs to the team it was created for.
//
// The binary under test is built without -race (it is killed and restarted many times, and
// restarts faster without it); the test itself runs under -race as usual. Cycles come from
// PORTAL_CRASH_CYCLES (default 20; `make soak` runs hundreds) and the random choices from
// PORTAL_CRASH_SEED (logged, so a failing run can be replayed: the kill moments are the same,
// though where exactly a kill lands still depends on timing).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/store"
)

const (
	crashEnv          = "tt02"
	crashPrefix       = "crash-"
	crashMaxClients   = 20
	crashStartTimeout = 60 * time.Second
	crashStopTimeout  = 30 * time.Second
	crashOpTimeout    = 30 * time.Second
	crashPassword     = "correct horse battery"
	crashEmail        = "crash@example.no"
)

// crashSeeds are seeds that once found a defect; each runs a few cycles first in every run.
var crashSeeds = []uint64{}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills the portal many times")
	}
	cycles := 20
	if v := os.Getenv("PORTAL_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PORTAL_CRASH_CYCLES=%q is not a positive number", v)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PORTAL_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PORTAL_CRASH_SEED=%q is not a number", v)
		}
		seed = n
	}
	bin := buildPortalBinary(t)
	for _, s := range crashSeeds {
		t.Run(fmt.Sprintf("regression-%d", s), func(t *testing.T) { runCrashCycles(t, bin, s, 5) })
	}
	t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) { runCrashCycles(t, bin, seed, cycles) })
}

func runCrashCycles(t *testing.T, bin string, seed uint64, cycles int) {
	t.Logf("seed %d, %d cycles (replay with PORTAL_CRASH_SEED=%d PORTAL_CRASH_CYCLES=%d)", seed, cycles, seed, cycles)
	started := time.Now()
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := newCrashHarness(t, bin, time.Duration(1+rng.IntN(1500))*time.Millisecond)
	m := &crashModel{prefix: crashPrefix, team: h.setup(), rng: rng}
	ops, startKills := 0, 0
	for cycle := 1; cycle <= cycles; cycle++ {
		delay := time.Duration(50+rng.IntN(1200)) * time.Millisecond
		aim, offset := rng.IntN(2) == 0, time.Duration(rng.IntN(8_000))*time.Microsecond
		n := h.streamThenKill(m, delay, aim, offset)
		ops += n
		if rng.IntN(8) == 0 {
			// Now and then the restart itself is killed: start-up must be crash safe too.
			h.proc.startAndKill(time.Duration(rng.IntN(500)) * time.Millisecond)
			startKills++
		}
		h.proc.start()
		if err := h.verify(m); err != nil {
			t.Fatalf("cycle %d (seed %d, killed %s into the stream (aimed %v, %s into a mutation), after %d mutations): %v\n%s",
				cycle, seed, delay, aim, offset, n, err, h.proc.logs)
		}
	}
	h.proc.stop()
	settled, err := h.settledBySync()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cycles (%d restarts killed while starting), %d mutations sent, %d acknowledged, %d changes whose answer a kill cut off settled by a sync, %d integrations: %s",
		cycles, startKills, ops, m.acked, settled, len(m.clients), time.Since(started).Round(time.Millisecond))
}

// buildPortalBinary builds the portal command into the test's temporary directory.
func buildPortalBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the portal with")
	}
	out := filepath.Join(t.TempDir(), "portal")
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// freeAddr returns a loopback address free a moment ago; the portal keeps the same addresses
// across restarts, so the simulators' issuer and the session cookie stay valid.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// childEnv is the environment without PORTAL_* settings of whoever runs the tests.
func childEnv() []string {
	// The journey signs in as an administrator with a password only.
	env := []string{"PORTAL_REQUIRE_SECOND_FACTOR=none"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTAL_") {
			env = append(env, kv)
		}
	}
	return env
}

// portalProc is `portal serve` running as a process.
type portalProc struct {
	t                  *testing.T
	bin, dir           string
	addr, simAddr, URL string
	cmd                *exec.Cmd
	exited             chan struct{}
	logs               *browserLog
}

func newPortalProc(t *testing.T, bin, dir string) *portalProc {
	p := &portalProc{t: t, bin: bin, dir: dir, addr: freeAddr(t), simAddr: freeAddr(t)}
	p.URL = "http://" + p.addr
	t.Cleanup(p.stop)
	return p
}

func (p *portalProc) launch() {
	p.t.Helper()
	p.logs = &browserLog{}
	cmd := exec.Command(p.bin, "serve", "--data", p.dir, "--addr", p.addr, "--sim-addr", p.simAddr)
	cmd.Env = childEnv()
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start the portal: %v", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.exited)
}

// startAndKill starts the portal and kills it after delay, wherever its start has got to
// (migrations, the simulators' first seeding, the start-up sync).
func (p *portalProc) startAndKill(delay time.Duration) {
	p.launch()
	select {
	case <-time.After(delay):
	case <-p.exited:
		p.t.Fatalf("the portal stopped by itself while starting:\n%s", p.logs)
	}
	p.kill()
}

// start starts the portal and waits until it listens.
func (p *portalProc) start() {
	p.t.Helper()
	p.launch()
	ctx, cancel := context.WithTimeout(context.Background(), crashStartTimeout)
	defer cancel()
	if _, err := p.logs.waitFor(ctx, p.exited, browserListeningPattern); err != nil {
		p.t.Fatalf("the portal did not start on %s: %v\n%s", p.dir, err, p.logs)
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *portalProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// stop asks the process to stop and waits, killing it when it takes too long.
func (p *portalProc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(crashStopTimeout):
		p.t.Errorf("the portal did not stop within %s of SIGTERM", crashStopTimeout)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
	p.cmd = nil
}

// runPortalCLI runs one portal command against a data directory and returns its output.
func runPortalCLI(bin, stdin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// crashWeb is a signed-in browser without the browser: a cookie jar and forms.
type crashWeb struct {
	base string
	hc   *http.Client
	csrf string
}

func newCrashWeb(base string) *crashWeb {
	jar, _ := cookiejar.New(nil)
	return &crashWeb{base: base, hc: &http.Client{Jar: jar, Timeout: crashOpTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type crashPage struct {
	status   int
	location string
	doc      *goquery.Document
	body     string
}

func (w *crashWeb) do(ctx context.Context, method, path string, form url.Values) (crashPage, error) {
	var body io.Reader
	if form != nil {
		if form.Get("_csrf") == "" {
			form.Set("_csrf", w.csrf)
		}
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, body)
	if err != nil {
		return crashPage{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return crashPage{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return crashPage{}, err
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(b))
	if err != nil {
		return crashPage{}, err
	}
	if tok, ok := doc.Find(`input[name="_csrf"]`).First().Attr("value"); ok && tok != "" {
		w.csrf = tok
	}
	return crashPage{status: resp.StatusCode, location: resp.Header.Get("Location"), doc: doc, body: string(b)}, nil
}

func (w *crashWeb) get(ctx context.Context, path string) (crashPage, error) {
	p, err := w.do(ctx, http.MethodGet, path, nil)
	if err == nil && p.status != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d %s", path, p.status, p.location)
	}
	return p, err
}

// post sends a form and wants the 303 of a change carried out.
func (w *crashWeb) post(ctx context.Context, path string, form url.Values) (crashPage, error) {
	p, err := w.do(ctx, http.MethodPost, path, form)
	if err == nil && p.status != http.StatusSeeOther {
		msg := strings.Join(strings.Fields(p.doc.Find(`.ds-alert, [data-testid="error"], .ds-validation-message`).Text()), " ")
		err = fmt.Errorf("POST %s: status %d: %s", path, p.status, msg)
	}
	return p, err
}

func (w *crashWeb) signIn(ctx context.Context) error {
	if _, err := w.get(ctx, "/login"); err != nil {
		return err
	}
	if _, err := w.post(ctx, "/login", url.Values{"email": {crashEmail}, "password": {crashPassword}}); err != nil {
		return err
	}
	// The anti-forgery token changes at sign-in: take the session's from a page.
	_, err := w.get(ctx, "/")
	return err
}

func hidden(doc *goquery.Selection, name string) string {
	v, _ := doc.Find(`input[name="` + name + `"]`).First().Attr("value")
	return v
}

// crashKeys are public keys to upload, made once for the test binary.
var crashKeys = sync.OnceValues(func() ([]string, error) {
	out := make([]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			k, err := rsa.GenerateKey(rand.Reader, keys.DefaultBits)
			if err != nil {
				errs[i] = err
				return
			}
			der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
})

// crashModel is what the stream believes: every acknowledged change, and per integration the
// one change that may or may not have happened (sent, but no success answer).
type crashModel struct {
	prefix  string // of the names of the integrations it creates
	team    int64
	rng     *mrand.Rand
	seq     int
	acked   int
	clients []*crashClient
	// creates sent without a success answer: the integration may exist
	pendingCreates []string
}

type crashClient struct {
	id, name, desc string
	kids           map[string]crashKey
	pending        *crashPending
}

type crashKey struct {
	custody string // kept or uploaded; "" when it was added by a change that got no answer
	pool    int    // index into crashKeys for an upload, else -1
}

type crashPending struct {
	op   string // edit, add, delete
	desc string
	kid  string
	key  crashKey
}

func (m *crashModel) next() int { m.seq++; return m.seq }

// poolFree lists the upload keys the integration does not hold (Digdir refuses one key twice).
func (c *crashClient) poolFree(n int) []int {
	var free []int
	for i := range n {
		used := false
		for _, k := range c.kids {
			used = used || k.pool == i
		}
		if !used {
			free = append(free, i)
		}
	}
	return free
}

// crashHarness runs the portal and the checks against it.
type crashHarness struct {
	// mutations hears of each mutation as it is sent, when a kill is waiting for one
	mutations chan struct{}
	t         *testing.T
	bin       string
	dir       string
	proc      *portalProc
	web       *crashWeb
	admin     *maskinporten.Client
}

// newCrashHarness starts a portal on a fresh data directory with an administrator. A
// firstKill above zero kills the very first start after that long, before starting it again.
func newCrashHarness(t *testing.T, bin string, firstKill time.Duration) *crashHarness {
	dir := t.TempDir()
	if out, err := runPortalCLI(bin, crashPassword+"\n", "user", "add", "--data", dir, "--email", crashEmail, "--name", "Crash Admin", "--role", "admin"); err != nil {
		t.Fatalf("portal user add: %v\n%s", err, out)
	}
	h := &crashHarness{t: t, bin: bin, dir: dir, proc: newPortalProc(t, bin, dir), mutations: make(chan struct{})}
	if firstKill > 0 {
		h.proc.startAndKill(firstKill)
	}
	h.proc.start()
	h.web = newCrashWeb(h.proc.URL)
	return h
}

// setup signs in and makes the team the stream creates integrations for.
func (h *crashHarness) setup() int64 {
	t := h.t
	ctx, cancel := context.WithTimeout(t.Context(), crashOpTimeout)
	defer cancel()
	if err := h.web.signIn(ctx); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if _, err := h.web.get(ctx, "/admin/teams"); err != nil {
		t.Fatal(err)
	}
	p, err := h.web.post(ctx, "/admin/teams", url.Values{"name": {"Crash team"}})
	if err != nil {
		t.Fatalf("create team: %v", err)
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(p.location, "/teams/"), 10, 64)
	if err != nil {
		t.Fatalf("team created at %q", p.location)
	}
	if _, err := crashKeys(); err != nil {
		t.Fatal(err)
	}
	h.connectAdmin()
	return id
}

// connectAdmin makes the client that reads the simulator as the portal's admin client does.
func (h *crashHarness) connectAdmin() {
	a, signer := chainAdmin(h.t, h.dir)
	hc := &http.Client{Transport: &http.Transport{}, Timeout: crashOpTimeout}
	h.t.Cleanup(hc.CloseIdleConnections)
	var err error
	h.admin, err = maskinporten.New(maskinporten.Config{Issuer: a.Issuer, SelfServiceURL: a.SelfServiceURL, HTTPClient: hc,
		Admin: &maskinporten.Credentials{ClientID: a.ClientID, Signer: signer, Scopes: []string{"idporten:dcr.read", "idporten:dcr.write"}}})
	if err != nil {
		h.t.Fatal(err)
	}
}

// streamThenKill runs the mutation stream and kills the portal with SIGKILL after delay; it
// returns how many mutations were sent.
// With aim set, the kill waits for the next mutation after delay and comes offset after it
// was sent, so that kills land inside requests that change something far more often than
// at an unaimed moment, which mostly falls between them.
func (h *crashHarness) streamThenKill(m *crashModel, delay time.Duration, aim bool, offset time.Duration) int {
	ctx, cancel := context.WithCancel(context.Background())
	done := h.stream(ctx, m)
	time.Sleep(delay) // the random moment of the crash
	if aim {
		select {
		case <-h.mutations:
			time.Sleep(offset)
		case <-time.After(crashOpTimeout):
		}
	}
	h.proc.kill()
	cancel()
	return <-done
}

// mutating tells a waiting kill that a mutation is being sent.
func (h *crashHarness) mutating() {
	select {
	case h.mutations <- struct{}{}:
	default:
	}
}

// stream sends mutations until ctx ends, then sends how many it sent. m belongs to the stream
// until then.
func (h *crashHarness) stream(ctx context.Context, m *crashModel) <-chan int {
	done := make(chan int, 1)
	go func() {
		n := 0
		for ctx.Err() == nil {
			if h.step(ctx, m) {
				n++
			}
		}
		done <- n
	}()
	return done
}

// step sends one mutation, recording it as acknowledged only on a success answer. It reports
// whether a mutation was sent.
func (h *crashHarness) step(ctx context.Context, m *crashModel) bool {
	var ready []*crashClient
	for _, c := range m.clients {
		if c.pending == nil {
			ready = append(ready, c)
		}
	}
	r := m.rng.IntN(100)
	switch {
	case r < 15 && len(m.clients)+len(m.pendingCreates) < crashMaxClients || len(ready) == 0:
		if len(m.clients)+len(m.pendingCreates) >= crashMaxClients {
			<-ctx.Done() // nothing left to change
			return false
		}
		return h.create(ctx, m)
	}
	c := ready[m.rng.IntN(len(ready))]
	switch {
	case r < 45:
		return h.edit(ctx, m, c)
	case len(c.kids) >= 4 || r < 65 && len(c.kids) > 0:
		return h.deleteKey(ctx, m, c)
	case r < 85:
		return h.upload(ctx, m, c)
	default:
		return h.generate(ctx, m, c)
	}
}

func (h *crashHarness) create(ctx context.Context, m *crashModel) bool {
	p, err := h.web.get(ctx, "/envs/"+crashEnv+"/integrations/new")
	if err != nil {
		return false
	}
	n := m.next()
	name, desc := fmt.Sprintf("%s%d", m.prefix, n), fmt.Sprintf("created %d", n)
	form := url.Values{"name": {name}, "description": {desc}, "team": {strconv.FormatInt(m.team, 10)},
		"scopes": clients.AltinnServiceOwnerScopes, "key": {hidden(p.doc.Selection, "key")}}
	m.pendingCreates = append(m.pendingCreates, name)
	h.mutating()
	p, err = h.web.post(ctx, "/envs/"+crashEnv+"/integrations", form)
	if err != nil {
		h.note(ctx, err)
		return true
	}
	id := strings.TrimPrefix(p.location, "/envs/"+crashEnv+"/integrations/")
	m.pendingCreates = slices.DeleteFunc(m.pendingCreates, func(s string) bool { return s == name })
	m.clients = append(m.clients, &crashClient{id: id, name: name, desc: desc, kids: map[string]crashKey{}})
	m.acked++
	return true
}

func (h *crashHarness) edit(ctx context.Context, m *crashModel, c *crashClient) bool {
	base := "/envs/" + crashEnv + "/integrations/" + c.id
	p, err := h.web.get(ctx, base+"/edit")
	if err != nil {
		return false
	}
	desc := fmt.Sprintf("edited %d", m.next())
	form := url.Values{"name": {c.name}, "description": {desc}, "team": {strconv.FormatInt(m.team, 10)},
		"scopes": clients.AltinnServiceOwnerScopes, "key": {hidden(p.doc.Selection, "key")},
		"version": {hidden(p.doc.Selection, "version")}, "confirm": {"1"}}
	c.pending = &crashPending{op: "edit", desc: desc}
	h.mutating()
	if _, err := h.web.post(ctx, base+"/edit", form); err != nil {
		h.note(ctx, err)
		return true
	}
	c.desc, c.pending = desc, nil
	m.acked++
	return true
}

// keysForm reads the version and form key of an integration's keys page.
func (h *crashHarness) keysForm(ctx context.Context, c *crashClient) (url.Values, bool) {
	p, err := h.web.get(ctx, "/envs/"+crashEnv+"/integrations/"+c.id+"/keys")
	if err != nil {
		return nil, false
	}
	f := p.doc.Find(`[data-testid="upload-form"]`)
	return url.Values{"version": {hidden(f, "version")}, "key": {hidden(f, "key")}}, true
}

func (h *crashHarness) upload(ctx context.Context, m *crashModel, c *crashClient) bool {
	pool, _ := crashKeys()
	free := c.poolFree(len(pool))
	if len(free) == 0 {
		return h.generate(ctx, m, c)
	}
	form, ok := h.keysForm(ctx, c)
	if !ok {
		return false
	}
	i := free[m.rng.IntN(len(free))]
	kid := fmt.Sprintf("%su%d", m.prefix, m.next())
	form.Set("key_text", pool[i])
	form.Set("upload_kid", kid)
	form.Set("upload_alg", "RS256")
	c.pending = &crashPending{op: "add", kid: kid, key: crashKey{custody: clients.CustodyUploaded, pool: i}}
	h.mutating()
	if _, err := h.web.post(ctx, "/envs/"+crashEnv+"/integrations/"+c.id+"/keys/upload", form); err != nil {
		h.note(ctx, err)
		return true
	}
	c.kids[kid], c.pending = c.pending.key, nil
	m.acked++
	return true
}

var crashJobPattern = regexp.MustCompile(`/keys/generated/([^/?]+)`)

func (h *crashHarness) generate(ctx context.Context, m *crashModel, c *crashClient) bool {
	base := "/envs/" + crashEnv + "/integrations/" + c.id + "/keys"
	form, ok := h.keysForm(ctx, c)
	if !ok {
		return false
	}
	kid := fmt.Sprintf("%sg%d", m.prefix, m.next())
	gen := url.Values{"kid": {kid}, "bits": {"2048"}, "alg": {"RS256"}, "custody": {clients.CustodyKept},
		"version": form["version"], "key": form["key"]}
	p, err := h.web.post(ctx, base+"/generate", gen)
	if err != nil {
		return false // nothing changes before the key is added
	}
	job := crashJobPattern.FindStringSubmatch(p.location)
	if job == nil {
		h.note(ctx, fmt.Errorf("generation went to %q", p.location))
		return false
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for progress := p.location; ; {
		p, err = h.web.get(ctx, progress)
		if err != nil {
			return false
		}
		state, _ := p.doc.Find(`[data-testid="generation"]`).Attr("data-state")
		if state == "done" {
			break
		}
		if state != "queued" && state != "running" {
			h.note(ctx, fmt.Errorf("generation %s: state %q", job[1], state))
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	c.pending = &crashPending{op: "add", kid: kid, key: crashKey{custody: clients.CustodyKept, pool: -1}}
	h.mutating()
	if _, err := h.web.post(ctx, base+"/generated/"+job[1], form); err != nil {
		h.note(ctx, err)
		return true
	}
	c.kids[kid], c.pending = c.pending.key, nil
	m.acked++
	return true
}

func (h *crashHarness) deleteKey(ctx context.Context, m *crashModel, c *crashClient) bool {
	kids := slices.Sorted(maps.Keys(c.kids))
	kid := kids[m.rng.IntN(len(kids))]
	base := "/envs/" + crashEnv + "/integrations/" + c.id + "/keys/delete"
	p, err := h.web.get(ctx, base+"?"+url.Values{"kid": {kid}}.Encode())
	if err != nil {
		return false
	}
	form := url.Values{"kid": {kid}, "version": {hidden(p.doc.Selection, "version")}, "key": {hidden(p.doc.Selection, "key")}}
	c.pending = &crashPending{op: "delete", kid: kid}
	h.mutating()
	if _, err := h.web.post(ctx, base, form); err != nil {
		h.note(ctx, err)
		return true
	}
	delete(c.kids, kid)
	c.pending = nil
	m.acked++
	return true
}

// note logs a mutation the portal refused; one cut off by the kill is expected and silent.
func (h *crashHarness) note(ctx context.Context, err error) {
	var ue *url.Error
	if ctx.Err() == nil && !errors.As(err, &ue) {
		h.t.Logf("no success answer (the change stays uncertain until the next check): %v", err)
	}
}

// verify checks the restarted portal against the model and settles what was uncertain.
func (h *crashHarness) verify(m *crashModel) error {
	ctx, cancel := context.WithTimeout(h.t.Context(), 2*crashOpTimeout)
	defer cancel()
	// One sync: the start-up sync or this one, whichever runs first (they are shared).
	if p, err := h.web.do(ctx, http.MethodGet, "/envs/"+crashEnv+"/integrations", nil); err != nil || p.status != http.StatusOK {
		if err := h.web.signIn(ctx); err != nil {
			return fmt.Errorf("sign in after the restart: %w", err)
		}
	}
	if _, err := h.web.post(ctx, "/envs/"+crashEnv+"/integrations/sync", url.Values{}); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	up, err := h.upstream(ctx)
	if err != nil {
		return err
	}
	byName := map[string][]maskinporten.Registration{}
	for _, r := range up {
		if strings.HasPrefix(r.ClientName, crashPrefix) {
			byName[r.ClientName] = append(byName[r.ClientName], r)
		}
	}
	var problems []string
	for name, regs := range byName {
		if len(regs) > 1 {
			problems = append(problems, fmt.Sprintf("%d clients named %s upstream: one create made several", len(regs), name))
		}
	}
	// Creates that got no answer: they either happened (once) or not at all.
	for _, name := range m.pendingCreates {
		if regs := byName[name]; len(regs) > 0 {
			m.clients = append(m.clients, &crashClient{id: regs[0].ClientID, name: name, desc: regs[0].Description, kids: map[string]crashKey{}})
		}
	}
	m.pendingCreates = nil
	known := map[string]*crashClient{}
	for _, c := range m.clients {
		known[c.id] = c
	}
	for name, regs := range byName {
		if known[regs[0].ClientID] == nil {
			problems = append(problems, fmt.Sprintf("upstream has %s (%s), which the stream never asked for", name, regs[0].ClientID))
		}
	}
	mirror, records, err := h.mirror(ctx)
	if err != nil {
		return err
	}
	for _, c := range m.clients {
		problems = append(problems, h.checkClient(ctx, m, c, mirror[c.id], records[c.id])...)
	}
	for id, row := range mirror {
		if strings.HasPrefix(row.name, crashPrefix) && known[id] == nil {
			problems = append(problems, fmt.Sprintf("the mirror has %s (%s), which the stream never asked for", row.name, id))
		}
	}
	if out, err := runPortalCLI(h.bin, "", "audit", "verify", "--data", h.dir); err != nil {
		problems = append(problems, fmt.Sprintf("portal audit verify: %v: %s", err, out))
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// checkClient compares one integration upstream and in the mirror with the model, then takes
// the upstream state as the model's (settling the uncertain change).
func (h *crashHarness) checkClient(ctx context.Context, m *crashModel, c *crashClient, row crashRow, recs map[string]crashRecord) []string {
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s (%s): ", c.name, c.id)+fmt.Sprintf(format, args...))
	}
	reg, err := h.admin.GetClient(ctx, c.id)
	if err != nil {
		fail("acknowledged create missing upstream: %v", err)
		return problems
	}
	set, err := h.admin.GetJWKS(ctx, c.id)
	if err != nil {
		fail("key set: %v", err)
		return problems
	}
	upKids := kidsOf(set.Keys)
	want := slices.Sorted(maps.Keys(c.kids))
	okDesc := reg.Description == c.desc
	okKids := slices.Equal(upKids, want)
	if p := c.pending; p != nil {
		switch p.op {
		case "edit":
			okDesc = okDesc || reg.Description == p.desc
		case "add":
			okKids = okKids || slices.Equal(upKids, slices.Sorted(slices.Values(append(slices.Clone(want), p.kid))))
		case "delete":
			okKids = okKids || slices.Equal(upKids, slices.DeleteFunc(slices.Clone(want), func(k string) bool { return k == p.kid }))
		}
	}
	if !okDesc {
		fail("description upstream %q, acknowledged %q", reg.Description, c.desc)
	}
	if !okKids {
		fail("keys upstream %v, acknowledged %v", upKids, want)
	}
	if reg.ClientName != c.name || !reg.Active {
		fail("upstream name %q, active %v", reg.ClientName, reg.Active)
	}
	// The mirror after one sync: the same client, owned by the team it was created for.
	switch {
	case row.name == "":
		fail("not in the mirror after a sync")
	case !row.team.Valid:
		fail("no owning team in the mirror: ownership lost")
	case row.team.Int64 != m.team:
		fail("owned by team %d, created for %d", row.team.Int64, m.team)
	}
	if row.name != "" && (row.name != reg.ClientName || row.desc != reg.Description || !slices.Equal(row.kids, upKids) || !row.active) {
		fail("mirror %q/%q/%v/active=%v, upstream %q/%q/%v", row.name, row.desc, row.kids, row.active, reg.ClientName, reg.Description, upKids)
	}
	if row.drifted {
		// Every change here came through the portal: one whose answer a kill cut off must be
		// settled as the portal's own, not shown as made outside it.
		fail("marked as changed outside the portal")
	}
	// Settle the model on what is upstream; acknowledged keys keep their custody record.
	next := map[string]crashKey{}
	for _, kid := range upKids {
		k, ok := c.kids[kid]
		if !ok && c.pending != nil && c.pending.kid == kid {
			k = crashKey{pool: c.pending.key.pool} // custody unknown: the answer was lost
		}
		if ok && k.custody != "" {
			rec, has := recs[kid]
			switch {
			case !has:
				fail("acknowledged key %s has no custody record", kid)
			case rec.custody != k.custody:
				fail("key %s custody %q, acknowledged %q", kid, rec.custody, k.custody)
			case k.custody == clients.CustodyKept && !rec.sealed:
				fail("kept key %s has no sealed private key", kid)
			}
		}
		next[kid] = k
	}
	c.kids, c.desc, c.pending = next, reg.Description, nil
	return problems
}

func (h *crashHarness) upstream(ctx context.Context) ([]maskinporten.Registration, error) {
	list, err := h.admin.ListClients(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("list clients in the simulator: %w", err)
	}
	return list, nil
}

type crashRow struct {
	name, desc      string
	team            sql.NullInt64
	active, drifted bool
	kids            []string
}

type crashRecord struct {
	custody string
	sealed  bool
}

// mirror reads the portal's mirror of the environment and its key custody records.
func (h *crashHarness) mirror(ctx context.Context) (map[string]crashRow, map[string]map[string]crashRecord, error) {
	db, err := sql.Open("sqlite", store.DSN(filepath.Join(h.dir, "portal.db"), true))
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT i.client_id, i.name, i.description, i.team_id, i.active, i.drifted, d.jwks
		FROM integrations i JOIN integration_docs d ON d.env = i.env AND d.client_id = i.client_id WHERE i.env = ?`, crashEnv)
	if err != nil {
		return nil, nil, fmt.Errorf("read the mirror: %w", err)
	}
	defer rows.Close()
	out := map[string]crashRow{}
	for rows.Next() {
		var id, jwks string
		var r crashRow
		if err := rows.Scan(&id, &r.name, &r.desc, &r.team, &r.active, &r.drifted, &jwks); err != nil {
			return nil, nil, err
		}
		var set maskinporten.JWKS
		if err := json.Unmarshal([]byte(jwks), &set); err != nil {
			return nil, nil, fmt.Errorf("mirrored key set of %s: %w", id, err)
		}
		r.kids = kidsOf(set.Keys)
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	recs := map[string]map[string]crashRecord{}
	krows, err := db.QueryContext(ctx, `SELECT client_id, kid, custody, sealed IS NOT NULL FROM integration_keys WHERE env = ?`, crashEnv)
	if err != nil {
		return nil, nil, fmt.Errorf("read the key records: %w", err)
	}
	defer krows.Close()
	for krows.Next() {
		var id, kid string
		var r crashRecord
		if err := krows.Scan(&id, &kid, &r.custody, &r.sealed); err != nil {
			return nil, nil, err
		}
		if recs[id] == nil {
			recs[id] = map[string]crashRecord{}
		}
		recs[id][kid] = r
	}
	return out, recs, krows.Err()
}

// settledBySync counts the changes carried out upstream whose local record a kill prevented,
// which a sync then completed: proof that kills landed in the window that matters.
func (h *crashHarness) settledBySync() (int, error) {
	db, err := sql.Open("sqlite", store.DSN(filepath.Join(h.dir, "portal.db"), true))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT COUNT(*) FROM integration_intents WHERE message = 'settled by sync'`).Scan(&n)
	return n, err
}

func kidsOf(ks []maskinporten.JWK) []string {
	out := make([]string, 0, len(ks))
	for _, k := range ks {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}
