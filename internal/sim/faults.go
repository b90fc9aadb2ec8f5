package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Upstreams that faults can be set for.
const (
	UpstreamMaskinporten = "maskinporten"
	UpstreamSelfService  = "selfservice"
	UpstreamPlatform     = "platform"
)

var upstreams = [...]string{UpstreamMaskinporten, UpstreamSelfService, UpstreamPlatform}

func upstreamIndex(u string) int {
	for i, v := range upstreams {
		if v == u {
			return i
		}
	}
	return -1
}

// Faults says how one upstream of one environment misbehaves. Rates are shares of requests in
// [0, 1], drawn independently per request in the order reset, timeout, 5xx, malformed.
type Faults struct {
	Latency       time.Duration // added before every answer
	ErrorRate     float64       // answered with ErrorStatus and the upstream's error body
	ErrorStatus   int           // 500-599; 0 means 503
	TimeoutRate   float64       // never answered: held until the client gives up or TimeoutAfter
	TimeoutAfter  time.Duration // bound for a held request, then 504; 0 means one minute
	ResetRate     float64       // connection closed without an answer (TCP reset)
	MalformedRate float64       // the real answer with its body cut short and garbled
}

func (f Faults) zero() bool { return f == Faults{} }

// faultsJSON is the admin API's wire form, with durations as Go duration strings ("250ms").
type faultsJSON struct {
	Latency       string  `json:"latency,omitempty"`
	ErrorRate     float64 `json:"error_rate,omitempty"`
	ErrorStatus   int     `json:"error_status,omitempty"`
	TimeoutRate   float64 `json:"timeout_rate,omitempty"`
	TimeoutAfter  string  `json:"timeout_after,omitempty"`
	ResetRate     float64 `json:"reset_rate,omitempty"`
	MalformedRate float64 `json:"malformed_rate,omitempty"`
}

// MarshalJSON writes durations as strings such as "250ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{ErrorRate: f.ErrorRate, ErrorStatus: f.ErrorStatus, TimeoutRate: f.TimeoutRate,
		ResetRate: f.ResetRate, MalformedRate: f.MalformedRate}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	if f.TimeoutAfter != 0 {
		j.TimeoutAfter = f.TimeoutAfter.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads durations as strings such as "250ms".
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	out := Faults{ErrorRate: j.ErrorRate, ErrorStatus: j.ErrorStatus, TimeoutRate: j.TimeoutRate,
		ResetRate: j.ResetRate, MalformedRate: j.MalformedRate}
	var err error
	if j.Latency != "" {
		if out.Latency, err = time.ParseDuration(j.Latency); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if j.TimeoutAfter != "" {
		if out.TimeoutAfter, err = time.ParseDuration(j.TimeoutAfter); err != nil {
			return fmt.Errorf("timeout_after: %w", err)
		}
	}
	*f = out
	return nil
}

func (f Faults) validate() error {
	for name, r := range map[string]float64{"error_rate": f.ErrorRate, "timeout_rate": f.TimeoutRate,
		"reset_rate": f.ResetRate, "malformed_rate": f.MalformedRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%s must be between 0 and 1", name)
		}
	}
	if f.ErrorStatus != 0 && (f.ErrorStatus < 500 || f.ErrorStatus > 599) {
		return fmt.Errorf("error_status must be 5xx")
	}
	if f.Latency < 0 || f.TimeoutAfter < 0 {
		return fmt.Errorf("durations must not be negative")
	}
	return nil
}

// errorBody writes the body an upstream gives with a 5xx; it depends on the upstream.
type errorBody func(w http.ResponseWriter, status int)

// withFaults injects the faults currently set in p. The common case (no faults) costs one
// atomic load.
func withFaults(p *atomic.Pointer[Faults], body errorBody, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := p.Load()
		if f == nil {
			next.ServeHTTP(w, r)
			return
		}
		if f.Latency > 0 || f.TimeoutRate > 0 {
			// Read the body before holding the request: only then does net/http watch the
			// connection and cancel the request's context when the client gives up, so an
			// abandoned request neither holds on nor is carried out after the delay.
			readBody(r)
		}
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
			addTiming(w, "fault-latency", f.Latency)
		}
		if hit(f.ResetRate) {
			resetConnection(w)
			return
		}
		if hit(f.TimeoutRate) {
			bound := f.TimeoutAfter
			if bound == 0 {
				bound = time.Minute
			}
			t := time.NewTimer(bound)
			defer t.Stop()
			select {
			case <-t.C:
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusGatewayTimeout)
				_, _ = w.Write([]byte("upstream request timeout\n"))
			case <-r.Context().Done():
			}
			return
		}
		if hit(f.ErrorRate) {
			status := f.ErrorStatus
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			body(w, status)
			return
		}
		if hit(f.MalformedRate) {
			rec := &recorder{header: http.Header{}}
			next.ServeHTTP(rec, r)
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			b := rec.body.Bytes()
			b = append(b[:len(b)/2:len(b)/2], "\x00<!--"...)
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			w.WriteHeader(rec.status)
			_, _ = w.Write(b)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxHeldBody bounds what readBody buffers; every request the simulators take is far smaller.
const maxHeldBody = 1 << 20

// readBody reads r's body into memory and puts the bytes back; a body over maxHeldBody stays
// partly unread and is passed on as it is.
func readBody(r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxHeldBody))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), errReader{err}, r.Body), r.Body}
}

// errReader returns its error, or EOF when there is none, so a read error reaches the handler.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

func hit(rate float64) bool {
	return rate > 0 && (rate >= 1 || rand.Float64() < rate)
}

// resetConnection closes the client's connection without an answer; with linger 0 the kernel
// sends a TCP reset instead of a clean close.
func resetConnection(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort the stream, which net/http turns into a reset.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// recorder buffers an answer so a malformed variant of it can be written.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// timingWriter adds the Server-Timing header with the time spent so far when the header is
// written, which is the simulator's own processing time.
type timingWriter struct {
	http.ResponseWriter
	start   time.Time
	extra   []byte
	written bool
}

func (t *timingWriter) stamp() {
	if t.written {
		return
	}
	t.written = true
	d := time.Since(t.start)
	v := make([]byte, 0, 64)
	v = append(v, t.extra...)
	v = append(v, "sim;dur="...)
	v = strconv.AppendFloat(v, float64(d.Microseconds())/1000, 'f', 3, 64)
	t.ResponseWriter.Header().Set("Server-Timing", string(v))
}

func (t *timingWriter) WriteHeader(code int) {
	t.stamp()
	t.ResponseWriter.WriteHeader(code)
}

func (t *timingWriter) Write(b []byte) (int, error) {
	t.stamp()
	return t.ResponseWriter.Write(b)
}

func (t *timingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// Hijack keeps connection resets possible through the timing wrapper.
func (t *timingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(t.ResponseWriter).Hijack()
}

func addTiming(w http.ResponseWriter, name string, d time.Duration) {
	for {
		if tw, ok := w.(*timingWriter); ok {
			tw.extra = append(tw.extra, name...)
			tw.extra = append(tw.extra, ";dur="...)
			tw.extra = strconv.AppendFloat(tw.extra, float64(d.Microseconds())/1000, 'f', 3, 64)
			tw.extra = append(tw.extra, ", "...)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// withTiming stamps every answer with a Server-Timing header.
func withTiming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &timingWriter{ResponseWriter: w, start: time.Now()}
		next.ServeHTTP(tw, r)
		if !tw.written {
			// Handlers that write nothing still answer 200 with the header.
			tw.stamp()
		}
	})
}

// clock is an environment's "now": the wall clock plus an adjustable offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }
