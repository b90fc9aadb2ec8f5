package keys

import (
	"context"
	"crypto/rsa"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeGen stands in for RSA generation: it counts concurrent calls and holds
// each call until the test releases it.
type fakeGen struct {
	key     *rsa.PrivateKey
	entered chan int // bits of each call, as it starts
	release chan struct{}
	fail    error

	active, peak, calls atomic.Int32
}

func newFakeGen(t *testing.T) *fakeGen {
	return &fakeGen{key: key2048(t).RSA(), entered: make(chan int, 100), release: make(chan struct{})}
}

func (f *fakeGen) generate(bits int) (*rsa.PrivateKey, error) {
	f.calls.Add(1)
	n := f.active.Add(1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	f.entered <- bits
	<-f.release
	f.active.Add(-1)
	return f.key, f.fail
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestGenerator(t *testing.T, cfg GeneratorConfig, f *fakeGen) *Generator {
	g := NewGenerator(cfg)
	g.generate = f.generate
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		g.Close()
	})
	return g
}

func countStates(t *testing.T, g *Generator, ids []JobID) map[State]int {
	t.Helper()
	n := map[State]int{}
	for _, id := range ids {
		st, err := g.Status(id)
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		n[st.State]++
	}
	return n
}

func TestGeneratorBoundsConcurrency(t *testing.T) {
	if Cores() < 2 {
		t.Skip("needs two cores to run two workers")
	}
	f := newFakeGen(t)
	g := newTestGenerator(t, GeneratorConfig{Workers: 2, MaxQueue: 20}, f)
	var ids []JobID
	for range 10 {
		id, err := g.Start(2048, RS256)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Both workers are busy and blocked; nothing else can have started.
	<-f.entered
	<-f.entered
	if got := countStates(t, g, ids); got[Running] != 2 || got[Queued] != 8 {
		t.Fatalf("states = %v, want 2 running and 8 queued", got)
	}
	if f.active.Load() != 2 {
		t.Fatalf("active = %d", f.active.Load())
	}
	// Queue positions count the jobs ahead.
	last, _ := g.Status(ids[9])
	if last.Ahead != 7 {
		t.Errorf("last job has %d ahead, want 7", last.Ahead)
	}
	close(f.release)
	for _, id := range ids {
		st, err := g.Wait(t.Context(), id)
		if err != nil || st.State != Done {
			t.Fatalf("Wait: %+v, %v", st, err)
		}
	}
	if p := f.peak.Load(); p != 2 {
		t.Errorf("peak concurrency = %d, want 2", p)
	}
	if c := f.calls.Load(); c != 10 {
		t.Errorf("calls = %d, want 10", c)
	}
}

func TestGeneratorWorkersNeverExceedCores(t *testing.T) {
	tests := []struct{ workers, want int }{
		{0, max(1, Cores()-1)},
		{-3, max(1, Cores()-1)},
		{1, 1},
		{1000, Cores()},
	}
	for _, tt := range tests {
		g := NewGenerator(GeneratorConfig{Workers: tt.workers})
		if got := g.Workers(); got != tt.want {
			t.Errorf("Workers(%d) = %d, want %d", tt.workers, got, tt.want)
		}
		g.Close()
	}
}

func TestGeneratorLifecycle(t *testing.T) {
	clk := &clock{now: testNow}
	f := newFakeGen(t)
	g := newTestGenerator(t, GeneratorConfig{Workers: 1, MaxQueue: 2, Keep: time.Minute, Now: clk.Now}, f)

	first, err := g.Start(4096, RS384)
	if err != nil {
		t.Fatal(err)
	}
	if bits := <-f.entered; bits != 4096 {
		t.Errorf("generated %d bits", bits)
	}
	second, _ := g.Start(2048, "")
	third, _ := g.Start(2048, RS512)
	if _, err := g.Start(2048, RS256); !errors.Is(err, ErrBusy) {
		t.Fatalf("fourth start with a full queue: %v", err)
	}

	st, _ := g.Status(first)
	if st.State != Running || st.Bits != 4096 || st.Alg != RS384 || !st.Started.Equal(testNow) || st.Complete() {
		t.Errorf("first = %+v", st)
	}
	st, _ = g.Status(third)
	if st.State != Queued || st.Ahead != 1 || st.Alg != RS512 {
		t.Errorf("third = %+v", st)
	}
	if _, err := g.Take(first); !errors.Is(err, ErrNotReady) {
		t.Errorf("Take while running: %v", err)
	}
	st, _ = g.Status(second)
	if st.Alg != RS256 {
		t.Errorf("default alg = %q", st.Alg)
	}

	// Cancelling a queued job means it is never generated.
	g.Cancel(second)
	if _, err := g.Status(second); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("Status after Cancel: %v", err)
	}

	// A Wait that gives up reports the context's error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.Wait(ctx, first); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with cancelled context: %v", err)
	}

	clk.Add(10 * time.Second)
	close(f.release)
	st, err = g.Wait(t.Context(), first)
	if err != nil || st.State != Done || !st.Complete() || !st.Finished.Equal(testNow.Add(10*time.Second)) {
		t.Fatalf("Wait = %+v, %v", st, err)
	}
	key, err := g.Take(first)
	if err != nil || key.Alg != RS384 || key.KID != "" || key.Bits() != 2048 {
		t.Fatalf("Take = %v, %v", key, err)
	}
	// Handed out once.
	if _, err := g.Take(first); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("second Take: %v", err)
	}

	// Untaken results are forgotten after Keep.
	if st, err := g.Wait(t.Context(), third); err != nil || st.State != Done {
		t.Fatalf("third: %+v %v", st, err)
	}
	clk.Add(time.Minute + time.Second)
	if _, err := g.Status(third); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("Status after Keep: %v", err)
	}
	if c := f.calls.Load(); c != 2 {
		t.Errorf("generate called %d times, want 2 (cancelled job skipped)", c)
	}
	if _, err := g.Wait(t.Context(), "nope"); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("Wait unknown: %v", err)
	}
}

func TestGeneratorFailure(t *testing.T) {
	f := newFakeGen(t)
	f.fail = errors.New("entropy source broken")
	g := newTestGenerator(t, GeneratorConfig{Workers: 1}, f)
	close(f.release)
	id, err := g.Start(2048, RS256)
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.Wait(t.Context(), id)
	if err != nil || st.State != Failed || st.Err == nil {
		t.Fatalf("Wait = %+v, %v", st, err)
	}
	if _, err := g.Take(id); !errors.Is(err, f.fail) {
		t.Errorf("Take = %v", err)
	}
	if _, err := g.Generate(t.Context(), 2048, RS256); !errors.Is(err, f.fail) {
		t.Errorf("Generate = %v", err)
	}
}

func TestGeneratorRefusesBadRequests(t *testing.T) {
	g := NewGenerator(GeneratorConfig{Workers: 1})
	defer g.Close()
	for _, bits := range []int{0, 1024, 3072, 8192} {
		if _, err := g.Start(bits, RS256); !errors.Is(err, ErrUnsupportedSize) {
			t.Errorf("Start(%d) = %v", bits, err)
		}
	}
	if _, err := g.Start(2048, "ES256"); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("Start(ES256) = %v", err)
	}
}

func TestGeneratorClose(t *testing.T) {
	f := newFakeGen(t)
	g := NewGenerator(GeneratorConfig{Workers: 1, MaxQueue: 4})
	g.generate = f.generate
	running, _ := g.Start(2048, RS256)
	<-f.entered
	queued, _ := g.Start(2048, RS256)

	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	// Close waits for the running generation: release it once Close has
	// begun, which Start reports.
	for {
		if _, err := g.Start(2048, RS256); errors.Is(err, ErrGeneratorClosed) {
			break
		}
		runtime.Gosched()
	}
	close(f.release)
	<-closed
	if st, err := g.Status(queued); err != nil || st.State != Failed || !errors.Is(st.Err, ErrGeneratorClosed) {
		t.Errorf("queued job after Close: %+v, %v", st, err)
	}
	if st, err := g.Status(running); err != nil || st.State != Done {
		t.Errorf("running job after Close: %+v, %v", st, err)
	}
	g.Close() // twice is fine
}

func TestGenerateContextEnds(t *testing.T) {
	f := newFakeGen(t)
	g := newTestGenerator(t, GeneratorConfig{Workers: 1}, f)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-f.entered
		cancel()
	}()
	if _, err := g.Generate(ctx, 2048, RS256); !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate = %v", err)
	}
}

// The shared fixture key comes from a real Generator with RSA-2048.
func TestGenerate2048(t *testing.T) {
	k := key2048(t)
	if k.Bits() != 2048 || k.Alg != RS256 || k.RSA().E != 65537 {
		t.Fatalf("key = %v, E %d", k, k.RSA().E)
	}
	if err := k.RSA().Validate(); err != nil {
		t.Fatal(err)
	}
}

// The one 4096-bit generation in the tests.
func TestGenerate4096(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA-4096 generation takes seconds")
	}
	g := NewGenerator(GeneratorConfig{Workers: 1})
	defer g.Close()
	k, err := g.Generate(t.Context(), 4096, RS512)
	if err != nil {
		t.Fatal(err)
	}
	if k.Bits() != 4096 || k.Alg != RS512 {
		t.Fatalf("key = %v", k)
	}
	if err := k.RSA().Validate(); err != nil {
		t.Fatal(err)
	}
}

func benchmarkGenerate(b *testing.B, bits int) {
	g := NewGenerator(GeneratorConfig{Workers: 1})
	defer g.Close()
	for b.Loop() {
		if _, err := g.Generate(b.Context(), bits, RS256); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate2048(b *testing.B) { benchmarkGenerate(b, 2048) }
func BenchmarkGenerate4096(b *testing.B) { benchmarkGenerate(b, 4096) }
