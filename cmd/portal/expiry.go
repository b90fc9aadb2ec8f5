package main

import (
	"context"
	"log/slog"
	"math"
	"time"

	"portal/internal/clients"
)

// expiryLogDays is how near an expiry must be for the daily log line.
const expiryLogDays = 30

// logKeyExpiries warns about every key that expires within 30 days, once at start and then
// every 24 hours until ctx ends, so log-based alerting notices before Maskinporten does.
// When notifications are on, warn (may be nil) also tells the owning teams' owners.
func logKeyExpiries(ctx context.Context, s *clients.Service, log *slog.Logger, warn func(context.Context, time.Time)) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		logExpiringKeys(ctx, s, log, now)
		if warn != nil {
			warn(ctx, now)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logExpiringKeys writes one warning per key of an active integration that expires within
// expiryLogDays of now (expired keys included, with negative days left).
func logExpiringKeys(ctx context.Context, s *clients.Service, log *slog.Logger, now time.Time) {
	keys, err := s.AllKeyExpiries(ctx, clients.ExpiryFilter{Within: expiryLogDays})
	if err != nil {
		if ctx.Err() == nil {
			log.Error("check key expiries", "err", err)
		}
		return
	}
	for _, k := range keys {
		log.Warn("key expires soon", "env", k.Env, "client_id", k.ClientID, "kid", k.Kid,
			"expires", k.Expires.UTC().Format(time.RFC3339), "days_left", int(math.Floor(k.Expires.Sub(now).Hours()/24)))
	}
}
