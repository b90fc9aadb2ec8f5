package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"portal/internal/identity"
	"portal/internal/sim"
)

// ProviderFileConfig is one OpenID Provider in the config file (oidc_providers). See the
// README, "Signing in with Entra ID or Ansattporten".
type ProviderFileConfig struct {
	Name         string   `json:"name"` // URL segment: /login/oidc/{name}
	DisplayName  string   `json:"display_name"`
	Issuer       string   `json:"issuer"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`      // or:
	SecretFile   string   `json:"client_secret_file"` // a file holding it, or:
	KeyFile      string   `json:"private_key_file"`   // PEM key for private_key_jwt
	KeyID        string   `json:"key_id"`
	AssertionAud string   `json:"assertion_audience"` // private_key_jwt aud: "" (the issuer) or "token_endpoint"
	Scopes       []string `json:"scopes"`
	ACRValues    []string `json:"acr_values"`
	// AuthorizationDetails is sent as is (Ansattporten's authorization_details).
	AuthorizationDetails json.RawMessage   `json:"authorization_details"`
	ExtraParams          map[string]string `json:"extra_params"`
	Rules                []identity.Rule   `json:"rules"`
	Unmatched            string            `json:"unmatched"` // refuse (default) or approval
}

// providerConfigs turns the file's providers into the identity package's, reading secrets
// and keys from their files. Messages name the provider and the field, never a secret.
func (c *Config) providerConfigs() ([]identity.ProviderConfig, []string) {
	var out []identity.ProviderConfig
	var problems []string
	seen := map[string]bool{}
	for i, f := range c.Providers {
		where := fmt.Sprintf("oidc_providers[%d]", i)
		if f.Name != "" {
			where = "oidc_providers." + f.Name
		}
		pc := identity.ProviderConfig{Name: f.Name, DisplayName: f.DisplayName, Issuer: f.Issuer, ClientID: f.ClientID,
			ClientSecret: f.ClientSecret, KeyID: f.KeyID, AssertionAudience: f.AssertionAud, Scopes: f.Scopes, ACRValues: f.ACRValues,
			AuthorizationDetails: f.AuthorizationDetails, ExtraParams: f.ExtraParams, Rules: f.Rules, Unmatched: f.Unmatched}
		if pc.DisplayName == "" {
			pc.DisplayName = f.Name
		}
		if f.SecretFile != "" {
			if f.ClientSecret != "" {
				problems = append(problems, where+": set client_secret or client_secret_file, not both")
				continue
			}
			b, err := os.ReadFile(f.SecretFile)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s.client_secret_file %s cannot be read", where, f.SecretFile))
				continue
			}
			pc.ClientSecret = strings.TrimSpace(string(b))
		}
		if f.KeyFile != "" {
			b, err := os.ReadFile(f.KeyFile)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s.private_key_file %s cannot be read", where, f.KeyFile))
				continue
			}
			pc.PrivateKey = b
		}
		if f.AssertionAud != "" && f.AssertionAud != "token_endpoint" {
			problems = append(problems, where+`.assertion_audience: leave it out (the issuer) or set "token_endpoint"`)
			continue
		}
		if err := pc.Check(); err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		if seen[pc.Name] {
			problems = append(problems, where+": another provider has this name; each needs its own")
			continue
		}
		seen[pc.Name] = true
		out = append(out, pc)
	}
	return out, problems
}

// allSimulated reports whether every environment runs against the simulators: only then is
// the simulated Ansattporten offered, since anyone may pick anyone there, administrators too.
func allSimulated(cfg Config) bool {
	for _, e := range cfg.Envs {
		if !e.Simulated() {
			return false
		}
	}
	return len(cfg.Envs) > 0
}

// SimTeam is the team the simulated Ansattporten's Read right maps to, when it exists.
const SimTeam = "Demo"

// simAnsattporten is the simulated Ansattporten of tt02 as a provider: configured as the
// real one would be (acr_values, authorization_details for an Altinn service, rules on the
// rights for the organisation number), marked simulated.
func simAnsattporten(cfg Config, simBase, secret string) identity.ProviderConfig {
	return identity.ProviderConfig{Name: "ansattporten-sim", DisplayName: "Ansattporten (simulated)", Simulated: true,
		Issuer: strings.TrimRight(simBase, "/") + "/sim/tt02/ansattporten", ClientID: sim.AnsattportenClientID, ClientSecret: secret,
		Scopes: []string{"openid", "profile"}, ACRValues: []string{"substantial", "high"},
		AuthorizationDetails: json.RawMessage(`[{"type":"ansattporten:altinn:service","resource":"urn:altinn:resource:5613:1"}]`),
		Rules: []identity.Rule{
			{AuthorizationDetails: &identity.RightMatch{Org: cfg.OrgNo, Right: "Write"}, Admin: true},
			{AuthorizationDetails: &identity.RightMatch{Org: cfg.OrgNo, Right: "Read"}, Team: SimTeam, TeamRole: "member"},
		}}
}
