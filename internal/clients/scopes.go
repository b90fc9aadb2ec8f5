package clients

import (
	"context"
	"slices"
	"strings"

	"portal/internal/maskinporten"
)

// Altinn service owners read and write their apps' instances with these.
var AltinnServiceOwnerScopes = []string{"altinn:serviceowner/instances.read", "altinn:serviceowner/instances.write"}

// Scope is a scope the organisation may put on a Maskinporten client.
type Scope struct {
	Name        string
	Description string
	ForAll      bool // accessible to every organisation, no grant needed
	Privileged  bool // only administrators may give it to an integration (set in forms)
	// Unchecked: Digdir refused to list the organisation's scope access, so whether it may
	// use this scope is not known; Digdir decides when the client is created or changed.
	Unchecked bool
}

// AccessUncheckedText is what a form says when the organisation's scope access could not be
// read and every Maskinporten scope of the catalogue is offered.
const AccessUncheckedText = "Digdir refused to list the scopes this organisation has access to, so access could not be checked: " +
	"every Maskinporten scope is offered, and Digdir refuses the change if the organisation lacks one. " +
	"The admin client needs the scope configured for scope access (admin_scopes.scopes_access) to check it."

// AccessUnchecked reports whether scopes were offered without knowing the organisation's access.
func AccessUnchecked(scopes []Scope) bool {
	return slices.ContainsFunc(scopes, func(sc Scope) bool { return sc.Unchecked })
}

// usableScopes lists what the organisation may use in an environment: scopes granted to it
// (APPROVED) plus those accessible to all, limited to Maskinporten. Cached for a few minutes.
func (s *Service) usableScopes(ctx context.Context, e *envState) ([]Scope, error) {
	e.scopeMu.Lock()
	defer e.scopeMu.Unlock()
	if e.scopes != nil && s.now().Sub(e.scopesRead) < s.opts.ScopeCacheTTL {
		return e.scopes, nil
	}
	up, err := e.upstream()
	if err != nil {
		return nil, err
	}
	inactive := false
	catalogue, err := up.ScopesAll(ctx, maskinporten.ScopeFilter{IntegrationType: maskinporten.IntegrationMaskinporten, Inactive: &inactive})
	if err != nil {
		return nil, upstreamProblem(e, "list the scope catalogue", err, "")
	}
	access, err := up.ScopeAccessAll(ctx, maskinporten.ScopeFilter{IntegrationType: maskinporten.IntegrationMaskinporten, Inactive: &inactive})
	unchecked := false
	switch {
	case err != nil && maskinporten.Refused(err):
		// The scope this call needs is undocumented and the admin client may lack it: go on
		// with the whole catalogue and let Digdir judge each change.
		s.log.Warn("scope access could not be listed; offering every Maskinporten scope", "env", e.Name, "err", err)
		unchecked, access = true, nil
	case err != nil:
		return nil, upstreamProblem(e, "list the organisation's scope access", err, "")
	}
	approved := map[string]bool{}
	for _, a := range access {
		if a.State == maskinporten.AccessApproved {
			approved[a.Scope] = true
		}
	}
	var out []Scope
	seen := map[string]bool{}
	for _, sc := range catalogue {
		if !sc.Active || !sc.AllowsIntegration(maskinporten.IntegrationMaskinporten) || seen[sc.Name] {
			continue
		}
		if sc.AccessibleForAll || approved[sc.Name] || unchecked {
			out = append(out, Scope{Name: sc.Name, Description: sc.Description, ForAll: sc.AccessibleForAll,
				Unchecked: unchecked && !sc.AccessibleForAll})
			seen[sc.Name] = true
		}
	}
	// Private scopes granted to the organisation are not in the public catalogue.
	for name := range approved {
		if !seen[name] {
			out = append(out, Scope{Name: name})
		}
	}
	slices.SortFunc(out, func(a, b Scope) int { return strings.Compare(a.Name, b.Name) })
	e.scopes, e.scopesRead = out, s.now()
	return out, nil
}

// Scopes lists the scopes the organisation may use in env.
func (s *Service) Scopes(ctx context.Context, env string) ([]Scope, error) {
	e, err := s.env(env)
	if err != nil {
		return nil, err
	}
	return s.usableScopes(ctx, e)
}

func scopeIndex(scopes []Scope) map[string]Scope {
	m := make(map[string]Scope, len(scopes))
	for _, sc := range scopes {
		m[sc.Name] = sc
	}
	return m
}
