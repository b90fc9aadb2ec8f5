package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/clients"
	"portal/internal/metrics"
)

// observeRequest records every answered request's duration under its route template, so
// fifty integrations' pages are one series, and requests no route matched are one more.
func (s *Server) observeRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if !s.routePaths[route] {
			route = metrics.UnmatchedRoute
		}
		s.metrics.ObserveRequest(c.Request().Method, route, c.Response().Status, time.Since(start))
		return nil
	}
}

// serveMetrics answers Prometheus. Some labels name integrations (key expiry), so it is served
// only with a configured token, and only to requests that carry it.
func (s *Server) serveMetrics(c echo.Context) error {
	if s.cfg.MetricsToken == "" {
		return errNotFound
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if !bearerMatches(c.Request().Header.Get(echo.HeaderAuthorization), s.cfg.MetricsToken) {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="portal metrics"`)
		return c.String(http.StatusUnauthorized, "a valid bearer token is required\n")
	}
	snap, err := s.metricsSnapshot(c.Request().Context())
	if err != nil {
		return err
	}
	s.metrics.Handler(snap).ServeHTTP(c.Response(), c.Request())
	return nil
}

// metricsSnapshot reads what the scrape reports of the portal's state: each environment's
// last sync, the audit chain (verifying only the events since the stored checkpoint), and
// every key's expiry.
func (s *Server) metricsSnapshot(ctx context.Context) (metrics.Snapshot, error) {
	var snap metrics.Snapshot
	if s.deps.Clients != nil {
		for _, e := range s.deps.Clients.Envs() {
			info, err := s.deps.Clients.SyncStatus(ctx, e.Name)
			if err != nil {
				return snap, err
			}
			snap.Syncs = append(snap.Syncs, metrics.Sync{Env: e.Name, Never: info.Never, Running: info.Running, OK: info.OK,
				FinishedAt: info.FinishedAt, LastOKAt: info.LastOKAt, Clients: info.Clients})
		}
		keys, err := s.deps.Clients.AllKeyExpiries(ctx, clients.ExpiryFilter{})
		if err != nil {
			return snap, err
		}
		for _, k := range keys {
			snap.Keys = append(snap.Keys, metrics.KeyExpiry{Env: k.Env, ClientID: k.ClientID, Kid: k.Kid, Expires: k.Expires})
		}
	}
	if s.deps.Audit != nil {
		st, err := s.deps.Audit.VerifyIncremental(ctx)
		if err != nil {
			return snap, err
		}
		snap.Chain = &metrics.Chain{VerifiedThrough: st.LastID, OK: st.Broken == nil}
	}
	return snap, nil
}

// bearerMatches compares an Authorization header's bearer token with want in constant time
// (over hashes, so the length does not leak either).
func bearerMatches(header, want string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	exp := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(got[:], exp[:]) == 1
}
