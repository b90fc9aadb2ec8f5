package main

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
	"portal/internal/metrics"
	"portal/internal/tryit"
	"portal/web"
)

// tryEnvs gives the try pages each environment's Maskinporten client (the one the
// integrations use) and an Altinn client for its platform; environments without a usable
// Maskinporten client are left out.
func tryEnvs(cfg Config, envs []web.Env, ups map[string]*maskinporten.Client, m *metrics.Metrics, log *slog.Logger) ([]tryit.Env, error) {
	var out []tryit.Env
	for _, e := range envs {
		mp, ok := ups[e.Name]
		if !ok {
			continue
		}
		te := tryit.Env{Name: e.Name, Label: e.Label, Maskinporten: mp, TestToggle: e.Name == "tt02"}
		platform := e.Platform
		if ec := cfg.Envs[e.Name]; ec.Simulated() {
			if a, err := readAdminFile(cfg.dataPath("sim-" + e.Name + "-admin.json")); err == nil {
				platform = a.PlatformURL
			}
		}
		if platform != "" {
			al, err := altinn.New(altinn.Config{PlatformURL: platform, HTTPClient: &http.Client{Transport: altinnTransport(m, e.Name, platform)},
				Timeout: 10 * time.Second, Breaker: breakerSettings(log), Name: strings.ToUpper(e.Name)})
			if err != nil {
				return nil, err
			}
			te.Altinn = al
		}
		for _, o := range envs {
			if c, ok := ups[o.Name]; ok && o.Name != e.Name {
				te.OtherIssuers = append(te.OtherIssuers, c.Issuer())
			}
		}
		out = append(out, te)
	}
	return out, nil
}

// altinnClients are the try environments' Altinn clients by environment, for the live checks.
func altinnClients(envs []tryit.Env) map[string]*altinn.Client {
	out := map[string]*altinn.Client{}
	for _, e := range envs {
		if e.Altinn != nil {
			out[e.Name] = e.Altinn
		}
	}
	return out
}
