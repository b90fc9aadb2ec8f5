// Package maskinporten is the adapter for one Maskinporten environment: it
// builds and signs JWT grants, gets and verifies access tokens, and calls
// Digdir's self-service API for client registrations, keys and scopes.
// It knows nothing of users or teams.
package maskinporten

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"portal/internal/breaker"
)

// Defaults for Config.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultRetries    = 2
	DefaultBackoff    = 250 * time.Millisecond
	DefaultJWKSMaxAge = 24 * time.Hour

	maxBackoff   = 2 * time.Second
	maxBodyBytes = 32 << 20
)

// Config describes one environment. Issuer is required; SelfServiceURL only
// for the self-service API methods.
type Config struct {
	// Issuer is the issuer identifier with its trailing slash, e.g.
	// https://test.maskinporten.no/. It is the aud of every grant; the token
	// endpoint, JWKS and metadata URLs follow from it.
	Issuer string
	// SelfServiceURL is the self-service API base without /api/v1, e.g.
	// https://api.test.samarbeid.digdir.no.
	SelfServiceURL string
	// HTTPClient defaults to a client without its own timeout; every call is
	// bounded by Timeout through its context instead.
	HTTPClient *http.Client
	// Timeout bounds each call, retries included. Default 10 s.
	Timeout time.Duration
	// Retries is how many times a read (GET) is retried after a network
	// error or a 5xx. Default 2; negative disables.
	Retries int
	// Backoff is the first retry delay; it doubles up to 2 s. Default 250 ms.
	Backoff time.Duration
	// JWKSMaxAge is how long Maskinporten's signing keys are cached. Default 24 h.
	JWKSMaxAge time.Duration
	// Now is the clock for grants, token expiry and verification. Default time.Now.
	Now func() time.Time
	// Admin is the portal's own client for the self-service API. Optional.
	// Its tokens ask for AdminScopes per purpose; Admin.Scopes is not used for them.
	Admin *Credentials
	// AdminScopes are the scopes asked for per purpose of a self-service call;
	// empty purposes get DefaultAdminScopes. Each distinct scope set has its
	// own cached token.
	AdminScopes AdminScopes
	// AdminTokens overrides Admin as the source of bearer tokens for every
	// self-service call, whatever its purpose.
	AdminTokens TokenProvider
	// Breaker, when set, puts a circuit breaker in front of each upstream
	// this client calls: one for Maskinporten (token endpoint, metadata,
	// JWKS), one for the self-service API. An open breaker fails calls at
	// once with a *CircuitOpenError, and retries stop at it.
	Breaker *BreakerSettings
	// Name labels the environment in breaker errors, e.g. "TT02". Default:
	// the issuer's host.
	Name string
}

// Circuit breaking, as the breaker package has it, so callers need only this package.
type (
	BreakerSettings  = breaker.Settings
	CircuitOpenError = breaker.OpenError
)

// ErrCircuitOpen matches a *CircuitOpenError: the call was not sent.
var ErrCircuitOpen = breaker.ErrOpen

// ErrNotSent marks a self-service API call that failed before its request
// went out (no admin token): Digdir did nothing.
var ErrNotSent = errors.New("request not sent")

// NotSent reports whether err says the request never reached the upstream:
// a breaker was open, or the admin token could not be had.
func NotSent(err error) bool {
	return errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrNotSent)
}

// Client talks to one environment's Maskinporten and self-service API.
// Safe for concurrent use.
type Client struct {
	issuer      string
	selfService string
	http        *http.Client
	timeout     time.Duration
	retries     int
	backoff     time.Duration
	now         func() time.Time
	admin       TokenProvider // Config.AdminTokens, for every purpose
	adminScopes AdminScopes
	adminBy     map[string]*TokenSource // per scope set (scopeKey), from Config.Admin
	jwks        jwksCache
	// mpBreaker and ssBreaker guard Maskinporten and the self-service API;
	// nil without Config.Breaker.
	mpBreaker, ssBreaker *breaker.Breaker
}

// New checks cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	if err := checkBaseURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("maskinporten issuer: %w", err)
	}
	if cfg.SelfServiceURL != "" {
		if err := checkBaseURL(cfg.SelfServiceURL); err != nil {
			return nil, fmt.Errorf("self-service URL: %w", err)
		}
	}
	c := &Client{
		issuer:      cfg.Issuer,
		selfService: strings.TrimSuffix(cfg.SelfServiceURL, "/"),
		http:        cfg.HTTPClient,
		timeout:     cfg.Timeout,
		retries:     cfg.Retries,
		backoff:     cfg.Backoff,
		now:         cfg.Now,
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
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.Breaker != nil {
		name := cfg.Name
		if name == "" {
			u, _ := url.Parse(cfg.Issuer)
			name = u.Host
		}
		c.mpBreaker = breaker.New(name+" Maskinporten", *cfg.Breaker)
		if c.selfService != "" {
			c.ssBreaker = breaker.New(name+" self-service API", *cfg.Breaker)
		}
	}
	c.jwks.maxAge = cfg.JWKSMaxAge
	if c.jwks.maxAge <= 0 {
		c.jwks.maxAge = DefaultJWKSMaxAge
	}
	c.adminScopes = cfg.AdminScopes.WithDefaults()
	switch {
	case cfg.AdminTokens != nil:
		c.admin = cfg.AdminTokens
	case cfg.Admin != nil:
		c.adminBy = map[string]*TokenSource{}
		for _, p := range []Purpose{PurposeRead, PurposeWrite, PurposeScopeAccess} {
			scopes := c.adminScopes.For(p)
			key := scopeKey(scopes)
			if _, ok := c.adminBy[key]; ok {
				continue
			}
			cred := *cfg.Admin
			cred.Scopes = slices.Clone(scopes)
			ts, err := c.NewTokenSource(cred)
			if err != nil {
				return nil, fmt.Errorf("admin client (%s scopes %s): %w", p, key, err)
			}
			c.adminBy[key] = ts
		}
	}
	return c, nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q has a query or fragment", s)
	}
	return nil
}

// Issuer is the issuer identifier, the aud of grants.
func (c *Client) Issuer() string { return c.issuer }

// TokenEndpoint is the URL grants are posted to.
func (c *Client) TokenEndpoint() string { return c.issuerURL("token") }

// JWKSURI is the URL of Maskinporten's signing keys.
func (c *Client) JWKSURI() string { return c.issuerURL("jwk") }

// MetadataURL is the RFC 8414 metadata document URL.
func (c *Client) MetadataURL() string {
	return c.issuerURL(".well-known/oauth-authorization-server")
}

// SelfServiceURL is the self-service API base URL (without /api/v1).
func (c *Client) SelfServiceURL() string { return c.selfService }

// AdminTokens is the token provider used for the self-service API's reads, or nil.
func (c *Client) AdminTokens() TokenProvider { return c.adminFor(PurposeRead) }

// AdminTokensFor is the token provider used for calls of purpose p, or nil.
func (c *Client) AdminTokensFor(p Purpose) TokenProvider { return c.adminFor(p) }

func (c *Client) issuerURL(p string) string {
	return strings.TrimSuffix(c.issuer, "/") + "/" + p
}

// outgoing is one HTTP request to send.
type outgoing struct {
	op     string
	method string
	url    string
	header http.Header
	body   []byte
	// retry allows retries after network errors and 5xx; only for
	// idempotent requests.
	retry bool
}

// response is a fully read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send performs req with bounded retries and records every attempt in the
// context's trace. The caller's ctx must already carry the call's deadline.
func (c *Client) send(ctx context.Context, req outgoing) (*response, error) {
	attempts := 1
	if req.retry {
		attempts += c.retries
	}
	delay := c.backoff
	var lastErr error
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
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", req.op, err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	call := Call{Op: req.op, Method: req.method, URL: req.url, Attempt: attempt,
		Start: time.Now(), RequestHeader: maskedHeader(hr.Header)}
	t := traceFrom(ctx)
	resp, err := c.do(hr, req.url)
	if err != nil {
		call.Latency = time.Since(call.Start)
		call.Err = err
		t.Add(call)
		return nil, fmt.Errorf("%s: %w", req.op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	call.Latency = time.Since(call.Start)
	call.Status = resp.StatusCode
	call.ResponseHeader = maskedHeader(resp.Header)
	call.Upstream, call.HasUpstream = ServerTiming(resp.Header)
	if err == nil && len(data) > maxBodyBytes {
		err = errors.New("response body too large")
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
	b := c.mpBreaker
	if c.ssBreaker != nil && strings.HasPrefix(u, c.selfService+"/") {
		b = c.ssBreaker
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

// withTimeout bounds one call.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// snippet returns a short, printable prefix of an unexpected body, for
// error messages. Upstream bodies here carry no secrets of ours.
func snippet(b []byte) string {
	const n = 200
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
