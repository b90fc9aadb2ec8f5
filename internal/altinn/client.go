// Package altinn is the adapter for one Altinn platform environment: it
// exchanges Maskinporten tokens for Altinn tokens and reads instances and
// data from Storage as a service owner. It knows nothing of users or teams.
package altinn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"portal/internal/breaker"
)

// Defaults for Config.
const (
	DefaultTimeout = 10 * time.Second
	DefaultRetries = 2
	DefaultBackoff = 250 * time.Millisecond

	maxBackoff   = 2 * time.Second
	maxBodyBytes = 32 << 20
	maxErrBytes  = 64 << 10
)

// Config describes one environment's platform.
type Config struct {
	// PlatformURL is the platform base, e.g. https://platform.tt02.altinn.no.
	PlatformURL string
	// HTTPClient defaults to a client without its own timeout; every call is
	// bounded by Timeout through its context instead.
	HTTPClient *http.Client
	// Timeout bounds each call, retries included; for downloads it bounds
	// the wait for the response headers. Default 10 s.
	Timeout time.Duration
	// Retries is how many times a GET is retried after a network error or a
	// 5xx. Default 2; negative disables.
	Retries int
	// Backoff is the first retry delay; it doubles up to 2 s. Default 250 ms.
	Backoff time.Duration
	// Breaker, when set, puts a circuit breaker in front of the token
	// exchange and another in front of Storage. An open breaker fails calls
	// at once with a *CircuitOpenError, and retries stop at it.
	Breaker *BreakerSettings
	// Name labels the environment in breaker errors, e.g. "TT02". Default:
	// the platform's host.
	Name string
}

// Circuit breaking, as the breaker package has it, so callers need only this package.
type (
	BreakerSettings  = breaker.Settings
	CircuitOpenError = breaker.OpenError
)

// ErrCircuitOpen matches a *CircuitOpenError: the call was not sent.
var ErrCircuitOpen = breaker.ErrOpen

// Client talks to one Altinn platform. Safe for concurrent use.
type Client struct {
	base    string
	http    *http.Client
	timeout time.Duration
	retries int
	backoff time.Duration
	// exchange and storage guard the two upstreams; nil without Config.Breaker.
	exchange, storage *breaker.Breaker
}

// New checks cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.PlatformURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("altinn platform URL %q is not an absolute http(s) URL", cfg.PlatformURL)
	}
	c := &Client{
		base:    strings.TrimSuffix(cfg.PlatformURL, "/"),
		http:    cfg.HTTPClient,
		timeout: cfg.Timeout,
		retries: cfg.Retries,
		backoff: cfg.Backoff,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.retries == 0 {
		c.retries = DefaultRetries
	} else if c.retries < 0 {
		c.retries = 0
	}
	if c.backoff <= 0 {
		c.backoff = DefaultBackoff
	}
	if cfg.Breaker != nil {
		name := cfg.Name
		if name == "" {
			name = u.Host
		}
		c.exchange = breaker.New(name+" Altinn token exchange", *cfg.Breaker)
		c.storage = breaker.New(name+" Altinn Storage", *cfg.Breaker)
	}
	return c, nil
}

// PlatformURL is the platform base URL.
func (c *Client) PlatformURL() string { return c.base }

// ExchangeURL is the Maskinporten token exchange endpoint.
func (c *Client) ExchangeURL() string {
	return c.base + "/authentication/api/v1/exchange/maskinporten"
}

// InstancesURL is Storage's instances collection.
func (c *Client) InstancesURL() string { return c.base + "/storage/api/v1/instances" }

// Kinds of refusals, matched by errors.Is on *Error.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
)

// ProblemDetails is an RFC 7807 body as ASP.NET Core writes it.
type ProblemDetails struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title,omitempty"`
	Status   int    `json:"status,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	TraceID  string `json:"traceId,omitempty"`
}

// Error is a non-2xx answer from the platform.
type Error struct {
	Op     string // e.g. "exchange", "list instances"
	Status int
	// Problem is set when the body was problem-details JSON.
	Problem *ProblemDetails
	// Text is the body when it was plain text (Storage answers 400s so),
	// shortened; empty otherwise.
	Text string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "altinn %s: %d", e.Op, e.Status)
	switch {
	case e.Problem != nil:
		if e.Problem.Title != "" {
			b.WriteString(" " + e.Problem.Title)
		}
		if e.Problem.Detail != "" {
			b.WriteString(": " + e.Problem.Detail)
		}
		if e.Problem.TraceID != "" {
			b.WriteString(" (trace id " + e.Problem.TraceID + ")")
		}
	case e.Text != "":
		b.WriteString(": " + e.Text)
	}
	return b.String()
}

// Is maps the status to ErrBadRequest, ErrUnauthorized, ErrForbidden or ErrNotFound.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// ParseError reads an error body: problem-details JSON, or plain text. It
// never fails.
func ParseError(op string, status int, body []byte) *Error {
	e := &Error{Op: op, Status: status}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var raw map[string]any
		if json.Unmarshal(trimmed, &raw) == nil && isProblem(raw) {
			p := &ProblemDetails{}
			p.Type, _ = raw["type"].(string)
			p.Title, _ = raw["title"].(string)
			p.Detail, _ = raw["detail"].(string)
			p.Instance, _ = raw["instance"].(string)
			p.TraceID, _ = raw["traceId"].(string)
			if s, ok := raw["status"].(float64); ok && s >= 100 && s < 600 {
				p.Status = int(s)
			}
			e.Problem = p
			return e
		}
	}
	e.Text = shorten(body)
	return e
}

func isProblem(m map[string]any) bool {
	for _, k := range []string{"type", "title", "detail", "status"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// shorten makes a body printable and short, for error messages. Platform
// error bodies carry no secrets of ours.
func shorten(b []byte) string {
	const n = 300
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// outgoing is one GET to the platform.
type outgoing struct {
	op     string
	url    string
	token  string
	accept string
	// stream leaves a 2xx body open for the caller.
	stream bool
}

// response is a response whose body is either read (body) or open (open).
type response struct {
	status int
	header http.Header
	body   []byte
	open   io.ReadCloser
}

// get sends a GET with bounded retries on network errors and 5xx, and
// records each attempt in the context's trace.
func (c *Client) get(ctx context.Context, req outgoing) (*response, error) {
	delay := c.backoff
	var lastErr error
	attempts := 1 + c.retries
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			if err := wait(ctx, delay); err != nil {
				return nil, fmt.Errorf("%s: %w (after: %w)", req.op, err, lastErr)
			}
			delay = min(delay*2, maxBackoff)
		}
		resp, err := c.once(ctx, req, attempt)
		if err != nil {
			lastErr = err
			// Never retry into an open breaker: it would only fail again.
			if ctx.Err() != nil || errors.Is(err, ErrCircuitOpen) {
				return nil, err
			}
			continue
		}
		if resp.status >= 500 && attempt < attempts {
			lastErr = fmt.Errorf("%s: upstream answered %d", req.op, resp.status)
			continue
		}
		return resp, nil
	}
	return nil, lastErr
}

func (c *Client) once(ctx context.Context, req outgoing, attempt int) (*response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, req.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", req.op, err)
	}
	hr.Header.Set("Authorization", "Bearer "+req.token)
	if req.accept != "" {
		hr.Header.Set("Accept", req.accept)
	}
	call := Call{Op: req.op, Method: hr.Method, URL: req.url, Attempt: attempt,
		Start: time.Now(), RequestHeader: maskedHeader(hr.Header)}
	t := traceFrom(ctx)
	resp, err := c.do(hr, req.url)
	if err != nil {
		call.Latency = time.Since(call.Start)
		call.Err = err
		t.Add(call)
		return nil, fmt.Errorf("%s: %w", req.op, err)
	}
	call.Status = resp.StatusCode
	call.ResponseHeader = maskedHeader(resp.Header)
	call.Upstream, call.HasUpstream = ServerTiming(resp.Header)
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if req.stream && ok {
		call.Latency = time.Since(call.Start)
		t.Add(call)
		return &response{status: resp.StatusCode, header: resp.Header, open: resp.Body}, nil
	}
	defer resp.Body.Close()
	limit := int64(maxBodyBytes)
	if !ok {
		limit = maxErrBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	call.Latency = time.Since(call.Start)
	if err == nil && int64(len(data)) > limit {
		if ok {
			err = errors.New("response body too large")
		} else {
			data = data[:limit] // an error body is only shown, so a prefix will do
		}
	}
	if err != nil {
		call.Err = err
		t.Add(call)
		return nil, fmt.Errorf("%s: read response: %w", req.op, err)
	}
	t.Add(call)
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// do sends hr through the breaker of the upstream it goes to, if any.
func (c *Client) do(hr *http.Request, u string) (*http.Response, error) {
	b := c.storage
	if strings.HasPrefix(u, c.base+"/authentication/") {
		b = c.exchange
	}
	if b == nil {
		return c.http.Do(hr)
	}
	return b.Do(c.http, hr)
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// getJSON performs a bounded GET and decodes a 2xx JSON body into out.
func (c *Client) getJSON(ctx context.Context, op, u, token string, out any) error {
	if token == "" {
		return fmt.Errorf("altinn %s: no token", op)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.get(ctx, outgoing{op: op, url: u, token: token, accept: "application/json"})
	if err != nil {
		return fmt.Errorf("altinn %w", err)
	}
	if resp.status < 200 || resp.status > 299 {
		return ParseError(op, resp.status, resp.body)
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("altinn %s: decode response: %w", op, err)
	}
	return nil
}
