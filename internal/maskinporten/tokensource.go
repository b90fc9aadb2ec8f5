package maskinporten

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// TokenProvider hands out bearer tokens for the self-service API.
type TokenProvider interface {
	Token(ctx context.Context) (string, error)
	// Invalidate drops the cached token, e.g. after a 401.
	Invalidate()
}

// Credentials identify a client that gets its own tokens: the portal's
// admin client, typically signing with its business certificate (x5c).
type Credentials struct {
	ClientID string
	Signer   Signer
	Scopes   []string
}

// refreshMargin is how long before expiry a cached token is replaced, so a
// token is never sent in its last seconds.
const refreshMargin = 30 * time.Second

// TokenSource caches one client's access token until shortly before it
// expires; concurrent callers share one token request.
type TokenSource struct {
	c    *Client
	cred Credentials

	mu        sync.Mutex
	token     string
	granted   []string // the scopes the current token's answer carried
	refreshAt time.Time
	gen       uint64 // bumped by Invalidate so a late fetch does not resurrect
	flight    *flight[string]
}

// NewTokenSource returns a cached token source for cred in this environment.
func (c *Client) NewTokenSource(cred Credentials) (*TokenSource, error) {
	if _, err := cred.Signer.Header(); err != nil {
		return nil, err
	}
	if _, err := c.Grant(cred.ClientID, cred.Scopes...).Claims(c.now()); err != nil {
		return nil, err
	}
	return &TokenSource{c: c, cred: cred}, nil
}

// Token returns a valid access token, fetching one when the cache is empty
// or about to expire.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.token != "" && s.c.now().Before(s.refreshAt) {
		t := s.token
		s.mu.Unlock()
		return t, nil
	}
	f := s.flight
	if f == nil {
		f = newFlight[string]()
		s.flight = f
		gen := s.gen
		// Detached from this caller's cancellation: others may be waiting.
		fctx := context.WithoutCancel(ctx)
		go func() {
			tok, err := s.fetch(fctx, gen)
			s.mu.Lock()
			s.flight = nil
			s.mu.Unlock()
			f.finish(tok, err)
		}()
	}
	s.mu.Unlock()
	return f.wait(ctx)
}

func (s *TokenSource) fetch(ctx context.Context, gen uint64) (string, error) {
	start := s.c.now()
	g := s.c.Grant(s.cred.ClientID, s.cred.Scopes...)
	g.IssuedAt = start
	claims, err := g.Claims(start)
	if err != nil {
		return "", err
	}
	assertion, err := s.cred.Signer.Sign(claims)
	if err != nil {
		return "", err
	}
	tr, err := s.c.Token(ctx, assertion)
	if err != nil {
		return "", fmt.Errorf("admin token for %s: %w", s.cred.ClientID, err)
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	margin := min(refreshMargin, life/4)
	s.mu.Lock()
	if s.gen == gen {
		s.token = tr.AccessToken
		s.granted = nil
		if tr.Scope != "" {
			s.granted = strings.Fields(tr.Scope)
		}
		// Counted from before the request, so network time only shortens it.
		s.refreshAt = start.Add(life - margin)
	}
	s.mu.Unlock()
	return tr.AccessToken, nil
}

// Invalidate drops the cached token; the next Token call fetches a new one.
func (s *TokenSource) Invalidate() {
	s.mu.Lock()
	s.token = ""
	s.gen++
	s.mu.Unlock()
}

// flight is one shared in-progress computation.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func newFlight[T any]() *flight[T] { return &flight[T]{done: make(chan struct{})} }

func (f *flight[T]) finish(v T, err error) {
	f.val, f.err = v, err
	close(f.done)
}

func (f *flight[T]) wait(ctx context.Context) (T, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// invalidateToken drops the cached token only if it is still tok.
func (s *TokenSource) invalidateToken(tok string) {
	s.mu.Lock()
	if s.token == tok {
		s.token = ""
		s.gen++
	}
	s.mu.Unlock()
}

// Granted returns the scopes Maskinporten issued with the cached token, nil before one.
func (s *TokenSource) Granted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" {
		return nil
	}
	return s.granted
}

// Scopes returns the scopes this source asks for.
func (s *TokenSource) Scopes() []string { return s.cred.Scopes }
