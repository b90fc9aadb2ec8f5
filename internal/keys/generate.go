package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Errors of the generator; these are not about a person's input.
var (
	ErrBusy            = errors.New("too many key generations waiting; try again in a minute")
	ErrUnknownJob      = errors.New("no such key generation (finished results are kept for a limited time and handed out once)")
	ErrNotReady        = errors.New("key generation has not finished")
	ErrGeneratorClosed = errors.New("key generator is shut down")
)

// Sizes lists the key sizes the portal generates, default first.
func Sizes() []int { return []int{2048, 4096} }

// CheckSize accepts 2048 and 4096 bits.
func CheckSize(bits int) error {
	if bits != 2048 && bits != 4096 {
		return refuse(ErrUnsupportedSize, fmt.Sprintf("keys of %d bits are not offered: choose 2048 or 4096", bits))
	}
	return nil
}

// GeneratorConfig tunes a Generator; zero values give the defaults.
type GeneratorConfig struct {
	// Workers is how many keys are generated at once: by default one less
	// than the cores (at least one), and never more than the cores, so
	// generation cannot starve request handling.
	Workers int
	// MaxQueue is how many jobs may wait for a worker; Start refuses more
	// with ErrBusy. Default 16.
	MaxQueue int
	// Keep is how long a finished result waits to be taken. Default 15 minutes.
	Keep time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// JobID names a generation. It is random and unguessable, but a handler
// should still tie it to the session that started it.
type JobID string

// State of a generation.
type State int

const (
	Queued State = iota
	Running
	Done
	Failed
)

func (s State) String() string {
	switch s {
	case Queued:
		return "queued"
	case Running:
		return "running"
	case Done:
		return "done"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// JobStatus is what a progress page shows.
type JobStatus struct {
	ID    JobID
	State State
	Bits  int
	Alg   Alg
	// Ahead is how many queued generations run before this one.
	Ahead    int
	Created  time.Time
	Started  time.Time
	Finished time.Time
	Err      error // set when Failed
}

// Complete reports whether the job will change no more.
func (s JobStatus) Complete() bool { return s.State == Done || s.State == Failed }

// Generator generates RSA keys on a fixed pool of workers, off the request
// path: a handler calls Start, shows Status (or blocks in Wait), and collects
// the key once with Take.
type Generator struct {
	workers  int
	keep     time.Duration
	now      func() time.Time
	generate func(bits int) (*rsa.PrivateKey, error) // replaced in tests

	queue chan *job
	wg    sync.WaitGroup

	mu     sync.Mutex
	jobs   map[JobID]*job
	seq    uint64
	closed bool
}

type job struct {
	id        JobID
	seq       uint64
	bits      int
	alg       Alg
	state     State
	created   time.Time
	started   time.Time
	finished  time.Time
	key       *PrivateKey
	err       error
	cancelled bool
	done      chan struct{} // closed when finished or skipped
}

// Cores is the number of cores Go may use, the bound on Workers.
func Cores() int { return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0))) }

// NewGenerator starts the workers; Close stops them.
func NewGenerator(cfg GeneratorConfig) *Generator {
	cores := Cores()
	workers := cfg.Workers
	if workers <= 0 {
		workers = max(1, cores-1)
	}
	workers = min(workers, cores)
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 16
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Generator{
		workers: workers,
		keep:    cfg.Keep,
		now:     cfg.Now,
		generate: func(bits int) (*rsa.PrivateKey, error) {
			return rsa.GenerateKey(rand.Reader, bits)
		},
		queue: make(chan *job, cfg.MaxQueue),
		jobs:  map[JobID]*job{},
	}
	g.wg.Add(workers)
	for range workers {
		go g.work()
	}
	return g
}

// Workers is the number of generations that may run at once.
func (g *Generator) Workers() int { return g.workers }

// Start queues a generation of an RSA key of bits (2048 or 4096) for alg
// (empty means RS256) and returns at once.
func (g *Generator) Start(bits int, alg Alg) (JobID, error) {
	if err := CheckSize(bits); err != nil {
		return "", err
	}
	if alg == "" {
		alg = DefaultAlg
	}
	if _, err := ParseAlg(string(alg)); err != nil {
		return "", err
	}
	var id [16]byte
	rand.Read(id[:])
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return "", ErrGeneratorClosed
	}
	g.purge()
	g.seq++
	j := &job{
		id: JobID(hex.EncodeToString(id[:])), seq: g.seq, bits: bits, alg: alg,
		state: Queued, created: g.now(), done: make(chan struct{}),
	}
	select {
	case g.queue <- j:
	default:
		return "", ErrBusy
	}
	g.jobs[j.id] = j
	return j.id, nil
}

func (g *Generator) work() {
	defer g.wg.Done()
	for j := range g.queue {
		g.mu.Lock()
		if j.cancelled || g.closed {
			j.state, j.err, j.finished = Failed, ErrGeneratorClosed, g.now()
			close(j.done)
			g.mu.Unlock()
			continue
		}
		j.state, j.started = Running, g.now()
		g.mu.Unlock()

		var key *PrivateKey
		raw, err := g.generate(j.bits)
		if err == nil {
			key, err = NewPrivateKey(raw, "", j.alg)
		}

		g.mu.Lock()
		j.finished = g.now()
		if err != nil {
			j.state, j.err = Failed, fmt.Errorf("keys: generate RSA-%d: %w", j.bits, err)
		} else if !j.cancelled {
			j.state, j.key = Done, key
		}
		close(j.done)
		g.mu.Unlock()
	}
}

// purge forgets finished results nobody took in time. Called with g.mu held.
func (g *Generator) purge() {
	cutoff := g.now().Add(-g.keep)
	for id, j := range g.jobs {
		if (j.state == Done || j.state == Failed) && j.finished.Before(cutoff) {
			delete(g.jobs, id)
		}
	}
}

// Status reports where a generation is, without blocking.
func (g *Generator) Status(id JobID) (JobStatus, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.purge()
	j, ok := g.jobs[id]
	if !ok {
		return JobStatus{}, ErrUnknownJob
	}
	st := JobStatus{
		ID: j.id, State: j.state, Bits: j.bits, Alg: j.alg,
		Created: j.created, Started: j.started, Finished: j.finished, Err: j.err,
	}
	if j.state == Queued {
		for _, o := range g.jobs {
			if o.state == Queued && o.seq < j.seq {
				st.Ahead++
			}
		}
	}
	return st, nil
}

// Wait blocks until the generation finishes or ctx ends.
func (g *Generator) Wait(ctx context.Context, id JobID) (JobStatus, error) {
	g.mu.Lock()
	j, ok := g.jobs[id]
	g.mu.Unlock()
	if !ok {
		return JobStatus{}, ErrUnknownJob
	}
	select {
	case <-j.done:
		return g.Status(id)
	case <-ctx.Done():
		return JobStatus{}, fmt.Errorf("keys: wait for key generation: %w", ctx.Err())
	}
}

// Take hands out a finished key once and forgets it. A failed generation
// returns its error (and is forgotten too); an unfinished one ErrNotReady.
func (g *Generator) Take(id JobID) (*PrivateKey, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.jobs[id]
	if !ok {
		return nil, ErrUnknownJob
	}
	switch j.state {
	case Done:
		delete(g.jobs, id)
		return j.key, nil
	case Failed:
		delete(g.jobs, id)
		return nil, j.err
	}
	return nil, ErrNotReady
}

// Cancel forgets a generation; a queued one is skipped, a running one's key
// is dropped when it finishes.
func (g *Generator) Cancel(id JobID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if j, ok := g.jobs[id]; ok {
		j.cancelled = true
		delete(g.jobs, id)
	}
}

// Generate is Start, Wait and Take in one call, for callers that can block
// (the CLI, tests). It gives up, and cancels the job, when ctx ends.
func (g *Generator) Generate(ctx context.Context, bits int, alg Alg) (*PrivateKey, error) {
	id, err := g.Start(bits, alg)
	if err != nil {
		return nil, err
	}
	if _, err := g.Wait(ctx, id); err != nil {
		g.Cancel(id)
		return nil, err
	}
	return g.Take(id)
}

// Close refuses new jobs, skips queued ones and waits for running ones;
// RSA generation cannot be interrupted.
func (g *Generator) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	close(g.queue)
	g.mu.Unlock()
	g.wg.Wait()
}
