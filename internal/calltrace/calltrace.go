// Package calltrace records the HTTP calls the upstream adapters make (status, latency, the
// upstream's own Server-Timing, masked headers), so one trace can follow a whole chain across
// Maskinporten and Altinn.
package calltrace

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Call describes one HTTP exchange with an upstream, for display and timing.
// Header values that carry credentials are masked.
type Call struct {
	Op             string // e.g. "token", "get client"
	Method         string
	URL            string
	Attempt        int // 1 for the first try
	Status         int // 0 when no response arrived
	Err            error
	Start          time.Time
	Latency        time.Duration // until the body was read (or headers, for streams)
	Upstream       time.Duration // sum of the Server-Timing dur values
	HasUpstream    bool          // whether a Server-Timing dur was present
	RequestHeader  http.Header
	ResponseHeader http.Header
}

// Trace collects the calls made with a context carrying it. Safe for
// concurrent use.
type Trace struct {
	mu    sync.Mutex
	calls []Call
}

type traceKey struct{}

// WithTrace returns a context whose upstream calls are recorded in t.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// From returns the trace in ctx, nil when there is none.
func From(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

// Add records a call; a nil trace records nothing.
func (t *Trace) Add(c Call) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.calls = append(t.calls, c)
	t.mu.Unlock()
}

// Calls returns a copy of the recorded calls in order.
func (t *Trace) Calls() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Call(nil), t.calls...)
}

// Latency is the total client-side time of all recorded calls.
func (t *Trace) Latency() time.Duration {
	var d time.Duration
	for _, c := range t.Calls() {
		d += c.Latency
	}
	return d
}

// Upstream is the total time the upstreams reported in Server-Timing.
func (t *Trace) Upstream() time.Duration {
	var d time.Duration
	for _, c := range t.Calls() {
		d += c.Upstream
	}
	return d
}

// ServerTiming sums the dur parameters of all Server-Timing metrics in h
// (milliseconds per the spec). ok is false when no usable dur is present.
func ServerTiming(h http.Header) (total time.Duration, ok bool) {
	var ms float64
	for _, v := range h.Values("Server-Timing") {
		for _, metric := range splitOutsideQuotes(v, ',') {
			params := splitOutsideQuotes(metric, ';')
			for _, p := range params[1:] {
				name, val, found := strings.Cut(p, "=")
				if !found || !strings.EqualFold(strings.TrimSpace(name), "dur") {
					continue
				}
				val = strings.Trim(strings.TrimSpace(val), `"`)
				f, err := strconv.ParseFloat(val, 64)
				// Ignore nonsense rather than let one bad metric poison the sum.
				if err != nil || math.IsNaN(f) || f < 0 || f > 1e9 {
					continue
				}
				ms += f
				ok = true
				break
			}
		}
	}
	if !ok {
		return 0, false
	}
	return time.Duration(ms * float64(time.Millisecond)), true
}

// splitOutsideQuotes splits s at sep, ignoring separators inside quoted
// strings (Server-Timing desc values may contain commas).
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	inQuote, escaped := false, false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// maskedHeader copies h, hiding credentials.
// MaskedHeader copies h with credentials masked.
func MaskedHeader(h http.Header) http.Header {
	out := h.Clone()
	for k := range out {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Cookie", "Set-Cookie":
			out[k] = []string{maskAuth(out.Get(k))}
		}
	}
	return out
}

func maskAuth(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok {
		return scheme + " ****"
	}
	return "****"
}
