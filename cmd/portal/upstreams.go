package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/metrics"
	"portal/web"
)

// maskinportenClient builds an environment's Maskinporten and self-service client from its
// admin credentials file, the same way for the simulators and for the real services. Each of
// its two upstreams gets a circuit breaker (defaults: 5 failures in a row, 30 s cool-down).
func maskinportenClient(a adminFile, selfService, env string, scopes maskinporten.AdminScopes, m *metrics.Metrics, log *slog.Logger) (*maskinporten.Client, error) {
	key, err := keys.ParsePrivate([]byte(a.PrivateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("admin credentials: private key: %w", err)
	}
	var chain []*x509.Certificate
	rest := []byte(a.CertChainPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("admin credentials: certificate chain: %w", err)
		}
		chain = append(chain, c)
	}
	signer := maskinporten.Signer{Key: key, Alg: "RS256"}
	if len(chain) > 0 {
		signer.Chain = chain
	} else {
		signer.KeyID = key.KID
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
		return "issuer " + m.Issuer, nil
	})
	if !step("Admin token", func() (string, error) {
		_, err := c.AdminTokens().Token(ctx)
		return "obtained with the admin client's business certificate", err
	}) {
		return out
	}
	if !step("Self-service API", func() (string, error) {
		cs, err := c.ListClients(ctx, false)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d active integrations", len(cs)), nil
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
	return out
}

// upstreamMessage says what an upstream answered, in words, without tokens or bodies.
func upstreamMessage(err error) string {
	var me *maskinporten.Error
	var ae *maskinporten.APIError
	switch {
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
