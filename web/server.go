// Package web is the portal's HTTP face: echo setup, routes, middleware, handlers and error
// pages. Handlers stay thin: decode the form, call one domain method, render the result.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/labstack/echo/v4"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/identity"
	"portal/internal/metrics"
	"portal/internal/mfa"
	"portal/internal/tryit"
)

// Env is what the web layer shows of one environment.
type Env struct {
	Name        string // tt02, prod
	Label       string
	Simulated   bool
	Issuer      string
	TokenURL    string
	SelfService string
	Platform    string
	Org         string
	OrgNo       string
	AdminClient string
	Problem     string // a configuration problem to show, if any
}

// Config is the web layer's configuration.
type Config struct {
	OrgName        string
	PublicURL      string // the portal's address as people reach it, for links handed out
	Envs           []Env
	SecureCookies  bool // Secure, __Host- cookies: whenever the public URL is https
	TrustedProxies []netip.Prefix
	BodyLimit      string // echo size, e.g. "1M"
	FlashKey       []byte // signs the flash cookie and keys the anti-forgery tokens; 32 bytes or more
	Log            *slog.Logger
	Now            func() time.Time
	// MetricsToken is the bearer token /metrics requires; without one /metrics is not served.
	MetricsToken string
	// Metrics records request durations; the upstream clients record into the same. Nil
	// gives the server metrics of its own.
	Metrics *metrics.Metrics
}

// Pinger answers whether the database works, for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Check is one live health check of an environment's upstreams.
type Check struct {
	Name   string
	OK     bool
	Detail string
	Took   time.Duration
}

// Notifier also delivers one-time links by email or webhook, in the background. The pages keep
// showing the link to copy. The methods report whether the message was queued.
type Notifier interface {
	SendInvitation(to, team, role, inviter, link string, expires time.Time) bool
	SendPasswordLink(to, name, link string) bool
}

// EnvChecker checks an environment's upstreams live.
type EnvChecker interface {
	Check(ctx context.Context, env string) []Check
}

// Deps are the domain services handlers call.
type Deps struct {
	Auth     *auth.Service
	Sessions *auth.SessionStore
	Audit    *audit.Log
	DB       Pinger
	Health   EnvChecker        // optional
	Clients  *clients.Service  // optional: without it the portal has no integration pages
	Tryit    *tryit.Service    // optional: without it (or Clients) the portal has no try pages
	Notify   Notifier          // optional: without it links are only shown to copy
	Identity *identity.Service // optional: sign-in through OpenID Providers
	// Factors, when set, adds second factors (TOTP, passkeys, recovery codes) and their policy.
	Factors *mfa.Service
}

// Server holds what handlers need.
type Server struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	e     *echo.Echo
	flash *securecookie.SecureCookie
	// csrfKey makes the anti-forgery tokens (csrf.go); derived from the flash key.
	csrfKey []byte

	metrics    *metrics.Metrics
	routePaths map[string]bool // registered route templates, the only route labels
	health     *healthCache    // nil without deps.Health
}

// New builds the HTTP handler.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyLimit == "" {
		cfg.BodyLimit = "1M"
	}
	if len(cfg.FlashKey) < 32 {
		return nil, errors.New("web: flash key must be at least 32 bytes")
	}
	if deps.Auth == nil || deps.Sessions == nil || deps.DB == nil {
		return nil, errors.New("web: auth, sessions and db are required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	s := &Server{cfg: cfg, deps: deps, log: cfg.Log, flash: securecookie.New(cfg.FlashKey, nil), metrics: cfg.Metrics}
	s.flash.MaxAge(300)
	if deps.Health != nil {
		s.health = newHealthCache(deps.Health, cfg.Now)
	}
	m := hmac.New(sha256.New, cfg.FlashKey)
	m.Write([]byte("portal csrf key"))
	s.csrfKey = m.Sum(nil)
	s.e = s.newEcho()
	s.routes()
	s.routePaths = map[string]bool{}
	for _, r := range s.e.Routes() {
		s.routePaths[r.Path] = true
	}
	return s, nil
}

// Handler returns the portal's http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// Routes lists every registered route as "METHOD path", for tests that must cover them all.
func (s *Server) Routes() []*echo.Route { return s.e.Routes() }

func (s *Server) meta(c echo.Context) audit.Meta {
	m := audit.Meta{Address: c.RealIP(), RequestID: requestID(c)}
	if p := principal(c); p != nil {
		m.ActorID, m.Actor = p.UserID, p.Email
	}
	return m
}
