package maskinporten

import (
	"context"
	"net/http"
	"time"

	"portal/internal/calltrace"
)

// Call and Trace are the shared call records, so one trace follows a whole chain.
type (
	Call  = calltrace.Call
	Trace = calltrace.Trace
)

// WithTrace returns a context whose upstream calls are recorded in t.
func WithTrace(ctx context.Context, t *Trace) context.Context { return calltrace.WithTrace(ctx, t) }

// ServerTiming sums the dur values of a Server-Timing header.
func ServerTiming(h http.Header) (time.Duration, bool) { return calltrace.ServerTiming(h) }

func traceFrom(ctx context.Context) *Trace { return calltrace.From(ctx) }

func maskedHeader(h http.Header) http.Header { return calltrace.MaskedHeader(h) }
