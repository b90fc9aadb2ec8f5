package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"portal/internal/audit"
	"portal/internal/store"
)

// effectiveConfig is the configuration as the audit trail records it: every setting that
// shapes the portal's behaviour, and for secrets only where they come from, never their value.
func effectiveConfig(cfg Config) map[string]string {
	out := map[string]string{
		"addr": cfg.Addr, "data": cfg.Data, "public_url": cfg.PublicURL, "sim_addr": cfg.SimAddr,
		"sim_public_url": cfg.SimPublicURL, "sim_admin_api": fmt.Sprint(cfg.SimAdminAPI), "sim_seed": cfg.SimSeed,
		"tls_cert": cfg.TLSCert, "tls_key": cfg.TLSKey, "trusted_proxies": fmt.Sprint(cfg.TrustedProxies),
		"org_name": cfg.OrgName, "org_code": cfg.OrgCode, "org_number": cfg.OrgNo,
		"session_idle_timeout": time.Duration(cfg.IdleTimeout).String(), "session_max_lifetime": time.Duration(cfg.MaxLifetime).String(),
		"shutdown_timeout": time.Duration(cfg.ShutdownTimeout).String(), "sync_interval": time.Duration(cfg.SyncInterval).String(),
		"sync_concurrency": fmt.Sprint(cfg.SyncConcurrency), "log_level": cfg.LogLevel, "log_format": cfg.LogFormat,
		"metrics": fmt.Sprint(cfg.MetricsToken != ""),
	}
	if cfg.SecureCookies != nil {
		out["secure_cookies"] = fmt.Sprint(*cfg.SecureCookies)
	}
	switch {
	case cfg.sessionKey != nil:
		out["session_key"] = "configured"
	default:
		out["session_key"] = "data directory"
	}
	switch {
	case cfg.kek != "":
		out["kek"] = "PORTAL_KEK"
	case cfg.KEKFile != "":
		out["kek"] = "file " + cfg.KEKFile
	default:
		out["kek"] = "data directory"
	}
	for name, e := range cfg.Envs {
		p := "environments." + name + "."
		out[p+"label"] = e.Label
		out[p+"simulated"] = fmt.Sprint(e.Simulated())
		out[p+"maskinporten_issuer"] = e.Issuer
		out[p+"selfservice_url"] = e.SelfServiceURL
		out[p+"platform_url"] = e.PlatformURL
		out[p+"admin_file"] = e.AdminFile
		out[p+"key_custody"] = fmt.Sprint(e.KeyCustody)
		out[p+"privileged_scopes"] = fmt.Sprint(e.PrivilegedScopes)
	}
	return out
}

// recordStart appends a portal.start event with the version and how the effective
// configuration differs from the one the previous start recorded.
func recordStart(ctx context.Context, db *store.DB, cfg Config, log *slog.Logger) error {
	l := audit.NewLog(db, nil)
	now := effectiveConfig(cfg)
	prev, err := l.Query(ctx, audit.Filter{Action: "portal.start", Limit: 1})
	if err != nil {
		return err
	}
	type change struct {
		Field  string `json:"field"`
		Before string `json:"before"`
		After  string `json:"after"`
	}
	var changes []change
	first := len(prev) == 0
	if !first {
		var d struct {
			Config map[string]string `json:"config"`
		}
		_ = json.Unmarshal(prev[0].Details, &d)
		keys := map[string]bool{}
		for k := range d.Config {
			keys[k] = true
		}
		for k := range now {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			if d.Config[k] != now[k] {
				changes = append(changes, change{Field: k, Before: d.Config[k], After: now[k]})
			}
		}
	}
	ev := audit.New(audit.Meta{Actor: "system"}, "portal.start", audit.Success,
		map[string]any{"version": version, "first_start": first, "config": now, "changes": changes})
	if err := l.Append(ctx, ev); err != nil {
		return err
	}
	if len(changes) > 0 {
		log.Info("configuration changed since the last start", "changes", len(changes))
	}
	return nil
}
