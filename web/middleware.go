package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"portal/internal/auth"
	"portal/internal/problem"
	"portal/static"
)

const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// sensitive matches names of values that must never be logged.
var sensitive = regexp.MustCompile(`(?i)pass|token|assertion|secret|key|authorization|cookie|jwt|grant|csrf`)

// RedactAttr is a slog ReplaceAttr that hides attributes named like secrets.
func RedactAttr(groups []string, a slog.Attr) slog.Attr {
	if sensitive.MatchString(a.Key) && a.Value.Kind() != slog.KindGroup {
		return slog.String(a.Key, "[REDACTED]")
	}
	return a
}

// redactURI hides the values of query parameters named like secrets (e.g. ?token= on links).
func redactURI(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return u.Path + "?[unparsable]"
	}
	for k := range q {
		if sensitive.MatchString(k) {
			q.Set(k, "REDACTED")
		}
	}
	return u.Path + "?" + q.Encode()
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	if len(s.cfg.TrustedProxies) > 0 {
		var opts []echo.TrustOption
		opts = append(opts, echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false))
		for _, p := range s.cfg.TrustedProxies {
			_, n, err := net.ParseCIDR(p.String())
			if err == nil {
				opts = append(opts, echo.TrustIPRange(n))
			}
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}

	e.Pre(middleware.RemoveTrailingSlashWithConfig(middleware.TrailingSlashConfig{RedirectCode: http.StatusMovedPermanently}))
	e.Use(s.requestID)
	e.Use(s.observeRequest)
	e.Use(s.accessLog)
	e.Use(s.recoverPanic)
	e.Use(securityHeaders(s.formActionCSP()))
	e.Use(middleware.BodyLimit(s.cfg.BodyLimit))
	e.Use(s.loadPrincipal)
	e.Use(s.csrfProtect)
	return e
}

func (s *Server) refuseCrossSite(c echo.Context) error {
	s.log.Warn("cross-site request refused", "request_id", requestID(c), "path", c.Request().URL.Path,
		"sec_fetch_site", c.Request().Header.Get("Sec-Fetch-Site"))
	return echo.NewHTTPError(http.StatusForbidden, "This form was sent from another site or has expired. Reload the page and try again.")
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// requestID gives every request an id for logs and error pages. An id sent by a trusted proxy
// is kept so logs line up; anything else gets a fresh one, so clients cannot forge log lines.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if len(s.cfg.TrustedProxies) == 0 || !requestIDPattern.MatchString(id) || !s.fromTrustedProxy(c) {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func (s *Server) fromTrustedProxy(c echo.Context) bool {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

func securityHeaders(policy string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return securityHeadersWith(policy, next)
	}
}

func securityHeadersWith(policy string, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", policy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if c.Request().TLS != nil || c.Scheme() == "https" {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		r := c.Request()
		attrs := []slog.Attr{
			slog.String("request_id", requestID(c)),
			slog.String("method", r.Method),
			slog.String("uri", redactURI(r.URL)),
			slog.Int("status", c.Response().Status),
			slog.Int64("bytes", c.Response().Size),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote_ip", c.RealIP()),
		}
		if p := principal(c); p != nil {
			attrs = append(attrs, slog.Int64("user_id", p.UserID))
		}
		level := slog.LevelInfo
		if c.Response().Status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
		return nil
	}
}

func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "request_id", requestID(c), "panic", fmt.Sprint(v))
				err = errors.New("internal error")
			}
		}()
		return next(c)
	}
}

// sessionIDKey is where loadPrincipal leaves the signed-in person's session id for csrfProtect.
const sessionIDKey = "session_id"

// sessionless paths (all GET-only) neither read the session nor take part in the CSRF
// protection: static files, health checks, and /metrics, which has its own bearer token.
func sessionless(path string) bool {
	return strings.HasPrefix(path, "/static/") || path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// loadPrincipal puts the signed-in person, if any, in the request context. Requests for static
// files skip it: they need no session and must not touch the database.
func (s *Server) loadPrincipal(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if sessionless(c.Request().URL.Path) {
			return next(c)
		}
		r := c.Request()
		ctx := auth.WithClientAddress(r.Context(), c.RealIP())
		r = r.WithContext(ctx)
		c.SetRequest(r)
		uid, sid, err := s.deps.Sessions.Current(r)
		if err != nil {
			return fmt.Errorf("load session: %w", err)
		}
		if uid != 0 {
			p, err := s.deps.Auth.LoadPrincipal(ctx, uid)
			switch {
			case problem.KindOf(err) == problem.KindUnauthenticated:
				// Disabled or deleted since the session began: treat as signed out.
				if err := s.deps.Sessions.End(c.Response(), r); err != nil {
					return fmt.Errorf("end session: %w", err)
				}
			case err != nil:
				// A database hiccup must not sign people out.
				return fmt.Errorf("load principal: %w", err)
			default:
				c.Set("principal", p)
				c.Set(sessionIDKey, sid)
				c.SetRequest(r.WithContext(auth.WithPrincipal(ctx, p)))
			}
		}
		return next(c)
	}
}

func principal(c echo.Context) *auth.Principal {
	p, _ := c.Get("principal").(*auth.Principal)
	return p
}

// requireUser sends anonymous visitors to the sign-in page, remembering where they were going.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if principal(c) != nil {
			if sent, err := s.requireFactor(c); sent || err != nil {
				return err
			}
			return next(c)
		}
		target := "/login"
		if c.Request().Method == http.MethodGet {
			target += "?next=" + url.QueryEscape(c.Request().URL.RequestURI())
		}
		if c.Request().Header.Get("HX-Request") == "true" {
			c.Response().Header().Set("HX-Redirect", target)
			return c.NoContent(http.StatusUnauthorized)
		}
		return c.Redirect(http.StatusSeeOther, target)
	}
}

func csrfToken(c echo.Context) string {
	t, _ := c.Get("csrf").(string)
	return t
}

// serveStatic serves embedded files with long caching for vendor assets.
func serveStatic() echo.HandlerFunc {
	fs := http.StripPrefix("/static/", http.FileServerFS(static.Files))
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		fs.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
