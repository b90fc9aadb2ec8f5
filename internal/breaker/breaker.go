// Package breaker guards calls to one upstream with a circuit breaker, so a dead upstream
// fails fast instead of holding a request (and a goroutine) per caller until its timeout.
//
// A breaker counts consecutive failures: network errors, timeouts and 5xx answers. A 4xx is
// an answer, not a failure. After Settings.Failures of them in a row it opens, and every call
// fails at once with an *OpenError for Settings.CoolDown; then one probe is let through
// (half-open), whose outcome closes the breaker again or reopens it.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults for Settings.
const (
	DefaultFailures = 5
	DefaultCoolDown = 30 * time.Second
)

// Settings configures the breakers of one upstream client.
type Settings struct {
	// Failures is how many failures in a row open the breaker. Default 5.
	Failures int
	// CoolDown is how long an open breaker refuses calls before it lets one probe
	// through. Default 30 s.
	CoolDown time.Duration
	// OnStateChange, when set, is told when a breaker opens, half-opens or closes
	// (states "closed", "half-open", "open"), e.g. for logs or metrics.
	OnStateChange func(name, from, to string)
}

// ErrOpen matches every *OpenError with errors.Is.
var ErrOpen = errors.New("circuit breaker open")

// OpenError says a call was not made because its upstream's breaker is open. Its text is
// safe to show: it names the upstream and the breaker's numbers, nothing else.
type OpenError struct {
	Name     string        // the upstream, e.g. "TT02 self-service API"
	Failures int           // failures in a row that opened the breaker
	CoolDown time.Duration // how long the breaker stays open
	RetryIn  time.Duration // until the next probe may go through
	// First is the first failure of the run that opened the breaker, in words without
	// addresses: "answered 503", "connection refused", "no answer in time".
	First string
}

func (e *OpenError) Error() string {
	msg := fmt.Sprintf("%s is failing; the portal stopped calling it for %s after %d failures in a row",
		e.Name, Seconds(e.CoolDown), e.Failures)
	if e.First != "" {
		msg += " (the first: " + e.First + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Seconds writes d for people: "30 s", "0.5 s".
func Seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// Breaker guards one upstream. Safe for concurrent use.
type Breaker struct {
	name     string
	failures int
	coolDown time.Duration
	cb       *gobreaker.CircuitBreaker[*http.Response]

	mu       sync.Mutex
	openedAt time.Time
	tripped  int    // consecutive failures when it last opened
	streak   int    // failures in a row so far
	first    string // the first failure of the current run, in words
}

// errServer marks a 5xx answer as a failure for the breaker; Do still returns the answer.
var errServer = errors.New("server error")

// canceled carries the error of a call whose caller gave up; the breaker ignores it.
type canceled struct{ err error }

func (c canceled) Error() string { return c.err.Error() }

// New returns a closed breaker for the upstream called name.
func New(name string, s Settings) *Breaker {
	b := &Breaker{name: name, failures: s.Failures, coolDown: s.CoolDown}
	if b.failures <= 0 {
		b.failures = DefaultFailures
	}
	if b.coolDown <= 0 {
		b.coolDown = DefaultCoolDown
	}
	b.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     b.coolDown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if int(c.ConsecutiveFailures) < b.failures {
				return false
			}
			b.mu.Lock()
			b.tripped = int(c.ConsecutiveFailures)
			b.mu.Unlock()
			return true
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.mu.Lock()
				b.openedAt = time.Now()
				if b.tripped == 0 {
					b.tripped = 1 // reopened by a failed probe
				}
				b.mu.Unlock()
			}
			if to == gobreaker.StateClosed {
				b.mu.Lock()
				b.tripped = 0
				b.mu.Unlock()
			}
			if s.OnStateChange != nil {
				s.OnStateChange(name, from.String(), to.String())
			}
		},
		// A call the caller gave up on says nothing about the upstream.
		IsExcluded: func(err error) bool { _, ok := err.(canceled); return ok },
	})
	return b
}

// Name is the upstream's name.
func (b *Breaker) Name() string { return b.name }

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Do sends req with hc unless the breaker is open, in which case it returns an *OpenError
// without sending anything. A 5xx answer is returned as usual and counted as a failure.
func (b *Breaker) Do(hc *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := b.cb.Execute(func() (*http.Response, error) {
		resp, err := hc.Do(req)
		if err != nil {
			if errors.Is(context.Cause(req.Context()), context.Canceled) {
				return nil, canceled{err}
			}
			b.failed(describe(err))
			return nil, err
		}
		if resp.StatusCode >= 500 {
			b.failed(fmt.Sprintf("answered %d", resp.StatusCode))
			return resp, errServer
		}
		b.mu.Lock()
		b.streak, b.first = 0, ""
		b.mu.Unlock()
		return resp, nil
	})
	var c canceled
	switch {
	case errors.As(err, &c):
		return nil, c.err
	case errors.Is(err, errServer):
		return resp, nil
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, b.openError()
	}
	return resp, err
}

// failed notes a failure; the first of a run is kept to say why the breaker opened.
func (b *Breaker) failed(what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streak == 0 {
		b.first = what
	}
	b.streak++
}

// describe puts a transport error into a few words without the URL or address it names.
func describe(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "host name not found"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "network error (" + op.Op + ")"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed without an answer"
	}
	return "network error"
}

func (b *Breaker) openError() *OpenError {
	b.mu.Lock()
	defer b.mu.Unlock()
	retry := b.coolDown - time.Since(b.openedAt)
	if retry < 0 {
		retry = 0 // half-open, its one probe under way
	}
	n := b.tripped
	if n == 0 {
		n = b.failures
	}
	return &OpenError{Name: b.name, Failures: n, CoolDown: b.coolDown, RetryIn: retry, First: b.first}
}
