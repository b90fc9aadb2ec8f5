package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
	"portal/internal/metrics"
	"portal/web"
)

// maskinportenClient builds an environment's Maskinporten and self-service client from its
// admin credentials file, the same way for the simulators and for the real services. Each of
// its two upstreams gets a circuit breaker (defaults: 5 failures in a row, 30 s cool-down).
func maskinportenClient(a adminFile, selfService, env string, scopes maskinporten.AdminScopes, m *metrics.Metrics, log *slog.Logger) (*maskinporten.Client, error) {
	creds, problems := a.credentials("of "+env, false)
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	signer := maskinporten.Signer{Key: creds.Key, Alg: "RS256"}
	if len(creds.Chain) > 0 {
		signer.Chain = creds.Chain
	} else {
		signer.KeyID = creds.Key.KID
	}
	return maskinporten.New(maskinporten.Config{
		Issuer:         a.Issuer,
		SelfServiceURL: selfService,
		HTTPClient:     &http.Client{Transport: maskinportenTransport(m, env, selfService)},
		Timeout:        10 * time.Second,
		Admin:          &maskinporten.Credentials{ClientID: a.ClientID, Signer: signer, Scopes: a.Scopes},
		AdminScopes:    scopes,
		Breaker:        breakerSettings(log),
		Name:           strings.ToUpper(env),
	})
}

// breakerSettings logs when an upstream's circuit breaker opens and closes, so an operator sees
// why calls fail fast; a nil log leaves the defaults alone.
func breakerSettings(log *slog.Logger) *maskinporten.BreakerSettings {
	s := &maskinporten.BreakerSettings{}
	if log != nil {
		s.OnStateChange = func(name, from, to string) {
			if to == "open" {
				log.Warn("upstream failing: calls to it stop for the cool-down", "upstream", name, "was", from)
				return
			}
			log.Info("upstream circuit breaker", "upstream", name, "state", to)
		}
	}
	return s
}

// upstreamClients builds each environment's Maskinporten and self-service client from its admin
// credentials; an environment whose credentials cannot be used gets a problem instead.
func upstreamClients(cfg Config, envs []web.Env, m *metrics.Metrics, log *slog.Logger) (map[string]*maskinporten.Client, map[string]string) {
	clients, problems := map[string]*maskinporten.Client{}, map[string]string{}
	for _, e := range envs {
		ec := cfg.Envs[e.Name]
		path := ec.AdminFile
		if ec.Simulated() {
			path = cfg.dataPath("sim-" + e.Name + "-admin.json")
		}
		a, err := readAdminFile(path)
		if err != nil {
			problems[e.Name] = err.Error()
			continue
		}
		issuer, selfService := a.Issuer, a.SelfServiceURL
		if !ec.Simulated() {
			issuer, selfService = ec.Issuer, ec.SelfServiceURL
		}
		a.Issuer = issuer
		c, err := maskinportenClient(a, selfService, e.Name, ec.AdminScopes, m, log)
		if err != nil {
			problems[e.Name] = err.Error()
			continue
		}
		clients[e.Name] = c
	}
	return clients, problems
}

// envHealth checks each environment's upstreams live, over HTTP.
type envHealth struct {
	clients  map[string]*maskinporten.Client
	problems map[string]string
	altinn   map[string]*altinn.Client // each environment's Altinn platform, for the exchange check
}

// Check answers whether the environment's metadata is reachable, the admin client can get a
// token, and the self-service API answers with it.
func (h *envHealth) Check(ctx context.Context, env string) []web.Check {
	if p, ok := h.problems[env]; ok {
		return []web.Check{{Name: "Admin client configuration", Detail: p}}
	}
	c, ok := h.clients[env]
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out []web.Check
	step := func(name string, f func() (string, error)) bool {
		start := time.Now()
		detail, err := f()
		ch := web.Check{Name: name, OK: err == nil, Detail: detail, Took: time.Since(start)}
		if err != nil {
			ch.Detail = upstreamMessage(err)
		}
		out = append(out, ch)
		return err == nil
	}
	step("Maskinporten metadata", func() (string, error) {
		m, err := c.Metadata(ctx)
		if err != nil {
			return "", err
		}
		if m.Issuer != c.Issuer() {
			// Grants carry the configured issuer as aud; Maskinporten wants its own exactly.
			return "", fmt.Errorf("the metadata names the issuer %q but the configuration says %q: grants would carry the wrong aud "+
				"and be refused (MP-110); set maskinporten_issuer to the metadata's value", m.Issuer, c.Issuer())
		}
		return "issuer " + m.Issuer, nil
	})
	var tokenErr error
	if !step("Admin token", func() (string, error) {
		_, tokenErr = c.AdminTokens().Token(ctx)
		return "obtained with the admin client's business certificate", tokenErr
	}) {
		var me *maskinporten.Error
		if errors.As(tokenErr, &me) && me.NotOAuth() {
			out[len(out)-1].Detail += "; it was asked at " + c.TokenEndpoint()
		}
		return out
	}
	if !step("Self-service API", func() (string, error) {
		// The page shows it to everyone signed in: the organisation's figures stay off it.
		if _, err := c.ListClients(ctx, false); err != nil {
			return "", err
		}
		return "lists the organisation's integrations with the admin token", nil
	}) {
		return out
	}
	// Which groups of calls the admin client's scopes allow: one grant per group, as the
	// calls themselves ask.
	for _, a := range c.CheckAdminAccess(ctx) {
		ch := web.Check{Name: "Admin scopes: " + a.Name, OK: a.Allowed,
			Detail: "asks for " + strings.Join(a.Scopes, " ")}
		switch {
		case a.Problem != "":
			ch.Detail += ": refused: " + upstreamMessageText(a.Problem)
		case len(a.Missing) > 0:
			ch.Detail += ": Maskinporten did not grant " + strings.Join(a.Missing, " ")
		}
		out = append(out, ch)
	}
	if a, ok := h.altinn[env]; ok {
		step("Altinn token exchange", func() (string, error) {
			tok, err := c.AdminTokens().Token(ctx)
			if err != nil {
				return "", err
			}
			if _, err := a.Exchange(ctx, tok, env == "tt02"); err != nil {
				return "", err
			}
			return "Altinn exchanged the admin client's Maskinporten token: it trusts this Maskinporten environment's tokens. " +
				"What an integration may do in Altinn then depends on its own scopes.", nil
		})
	}
	return out
}

// upstreamMessage says what an upstream answered, in words, without tokens or bodies.
func upstreamMessage(err error) string {
	var me *maskinporten.Error
	var ae *maskinporten.APIError
	var xe *altinn.Error
	switch {
	case errors.As(err, &me) && me.NotOAuth():
		return fmt.Sprintf("Maskinporten answered %d without an OAuth error: the token endpoint URL is probably wrong (check maskinporten_issuer)", me.Status)
	case errors.As(err, &me):
		msg := fmt.Sprintf("Maskinporten answered %d %s: %s", me.Status, me.Code, me.Message())
		if me.MPCode != "" {
			msg += " (" + me.MPCode + ")"
		}
		return msg
	case errors.As(err, &ae):
		msg := fmt.Sprintf("the self-service API answered %d", ae.Status)
		if ae.CorrelationID != "" {
			msg += ", correlation id " + ae.CorrelationID
		}
		return msg
	case errors.As(err, &xe):
		return xe.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within 10 seconds"
	}
	// Other errors name the operation and the network failure; keep them short for a table cell.
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// upstreamMessageText shortens a refusal's text for a table cell.
func upstreamMessageText(s string) string {
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
