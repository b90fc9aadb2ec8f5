package clients

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/store"
)

// DefaultPrivilegedScopes are privileged in every environment: Digdir's self-service API scopes,
// which let their holder change every client of the organisation (the portal's own included),
// and administer its API scopes. A trailing * matches any scope starting with what precedes it.
var DefaultPrivilegedScopes = []string{"idporten:dcr*", "idporten:scopes*"}

// policy says which scopes are privileged in an environment: the defaults, the configured
// extras, and every scope the portal's admin client holds (from its credentials file and as
// last mirrored).
type policy struct {
	patterns []string
}

func (p policy) privileged(scope string) bool {
	for _, pat := range p.patterns {
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			if strings.HasPrefix(scope, prefix) {
				return true
			}
		} else if scope == pat {
			return true
		}
	}
	return false
}

// among returns the privileged scopes of scopes, sorted and without repeats.
func (p policy) among(scopes []string) []string {
	var out []string
	for _, sc := range scopes {
		if p.privileged(sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return out
}

// basePolicy is the policy without the admin client's mirrored scopes.
func (e *envState) basePolicy() policy {
	pats := slices.Concat(DefaultPrivilegedScopes, e.PrivilegedScopes, e.AdminScopes)
	return policy{patterns: pats}
}

// policyOf reads the environment's policy, with the scopes the mirror last saw on the admin client.
func (s *Service) policyOf(ctx context.Context, e *envState) (policy, error) {
	p := e.basePolicy()
	if e.AdminClient == "" {
		return p, nil
	}
	it, err := s.db.Integration(ctx, e.Name, e.AdminClient)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return p, nil
	case err != nil:
		return p, err
	}
	p.patterns = append(p.patterns, it.Scopes...)
	return p, nil
}

// PrivilegedScopes lists the patterns of the scopes only administrators may give an integration
// in env (a trailing * matches any scope starting with what precedes it).
func (s *Service) PrivilegedScopes(ctx context.Context, env string) ([]string, error) {
	e, err := s.env(env)
	if err != nil {
		return nil, err
	}
	p, err := s.policyOf(ctx, e)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pat := range p.patterns {
		if !slices.Contains(out, pat) {
			out = append(out, pat)
		}
	}
	slices.Sort(out)
	return out, nil
}

func errPrivileged(scopes []string, e *envState) error {
	return problem.New(problem.KindForbidden, fmt.Sprintf("Only an administrator can give an integration %s in %s: "+
		"these scopes are privileged (whoever holds them can change every integration of the organisation, or its API scopes). "+
		"Nothing was changed; ask an administrator if the integration really needs them.", strings.Join(scopes, ", "), e.label()))
}

// checkPrivileged refuses a person who is not an administrator when scopes adds privileged
// scopes to those the client already has (have).
func (s *Service) checkPrivileged(ctx context.Context, p *auth.Principal, e *envState, scopes, have []string) error {
	if p.IsAdmin() {
		return nil
	}
	pol, err := s.policyOf(ctx, e)
	if err != nil {
		return err
	}
	var added []string
	for _, sc := range pol.among(trimmed(scopes)) {
		if !slices.Contains(have, sc) {
			added = append(added, sc)
		}
	}
	if len(added) > 0 {
		return errPrivileged(added, e)
	}
	return nil
}

func trimmed(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		out = append(out, strings.TrimSpace(sc))
	}
	return out
}

// withoutPrivileged drops the privileged scopes from a form's choices for someone who is not an
// administrator; they never see them offered.
func (s *Service) withoutPrivileged(ctx context.Context, p *auth.Principal, e *envState, scopes []Scope) ([]Scope, error) {
	pol, err := s.policyOf(ctx, e)
	if err != nil {
		return nil, err
	}
	out := make([]Scope, 0, len(scopes))
	for _, sc := range scopes {
		sc.Privileged = pol.privileged(sc.Name)
		if sc.Privileged && !p.IsAdmin() {
			continue
		}
		out = append(out, sc)
	}
	return out, nil
}

// The portal's own admin client: the portal reaches Digdir's API with it, so a change to it
// (a key added, a scope removed, deactivation) can lock the portal out of the environment.

func (e *envState) isPortalClient(clientID string) bool {
	return e.AdminClient != "" && clientID == e.AdminClient
}

func errPortalClient(e *envState) error {
	return problem.New(problem.KindForbidden, fmt.Sprintf("This is the portal's own admin client in %s: the portal reaches Digdir's "+
		"self-service API with it, using the business certificate in its admin credentials file. The portal never changes it "+
		"(a key added here would lock the portal out of %s), and it belongs to no team. Change it, if ever, in Digdir's own tools "+
		"and update the admin credentials file.", e.label(), e.label()))
}

// findPrivileged records which clients hold privileged scopes without being the admin client:
// a new finding or a changed scope set is audited once (and told to administrators once, by
// whoever reads PendingPrivileged); a finding whose client lost its privileged scopes, or is
// gone or inactive, is cleared. mirror is the mirror as the sync found it, for team names. It
// returns how many findings are new.
func (s *Service) findPrivileged(ctx context.Context, tx *sql.Tx, e *envState, list []maskinporten.Registration,
	mirror map[string]store.Integration, now time.Time) (int, error) {
	pol := e.basePolicy()
	for _, reg := range list {
		if e.isPortalClient(reg.ClientID) {
			pol.patterns = append(pol.patterns, reg.Scopes...)
		}
	}
	old, err := store.PrivilegedFindingsTx(ctx, tx, e.Name)
	if err != nil {
		return 0, err
	}
	found := 0
	seen := map[string]bool{}
	for _, reg := range list {
		held := pol.among(reg.Scopes)
		if !reg.Active || e.isPortalClient(reg.ClientID) || len(held) == 0 {
			continue
		}
		seen[reg.ClientID] = true
		if f, ok := old[reg.ClientID]; ok && slices.Equal(f.Scopes, held) {
			continue
		}
		found++
		if err := store.PutPrivilegedFinding(ctx, tx, store.PrivilegedFinding{Env: e.Name, ClientID: reg.ClientID, Scopes: held, FoundAt: now}); err != nil {
			return found, err
		}
		it := mirror[reg.ClientID]
		ev := audit.New(systemMeta, "integration.privileged_scopes", audit.Success, map[string]any{
			"scopes": held, "team": it.TeamName,
			"note": "a client other than the portal's admin client holds privileged scopes: whoever holds its key can change every integration of the organisation"})
		ev.Env, ev.TeamID, ev.TargetType, ev.Target = e.Name, it.TeamID, "integration", reg.ClientID
		if _, err := audit.Record(ctx, tx, ev, now); err != nil {
			return found, err
		}
	}
	for id, f := range old {
		if seen[id] {
			continue
		}
		if err := store.DeletePrivilegedFinding(ctx, tx, e.Name, id); err != nil {
			return found, err
		}
		ev := audit.New(systemMeta, "integration.privileged_scopes_cleared", audit.Success, map[string]any{"scopes_before": f.Scopes})
		ev.Env, ev.TeamID, ev.TargetType, ev.Target = e.Name, mirror[id].TeamID, "integration", id
		if _, err := audit.Record(ctx, tx, ev, now); err != nil {
			return found, err
		}
	}
	return found, nil
}

// Finding is a client holding privileged scopes that is not the portal's admin client.
type Finding struct {
	Env        string
	ClientID   string
	Name       string
	Team       string
	Scopes     []string
	FoundAt    time.Time
	NotifiedAt time.Time
}

// PrivilegedFindings lists the findings in env ("" for all) for an administrator.
func (s *Service) PrivilegedFindings(ctx context.Context, p *auth.Principal, env string) ([]Finding, error) {
	if !p.IsAdmin() {
		return nil, problem.New(problem.KindForbidden, "Only administrators see the privileged-scope findings.")
	}
	if env != "" {
		if _, err := s.env(env); err != nil {
			return nil, err
		}
	}
	return s.findings(ctx, env)
}

func (s *Service) findings(ctx context.Context, env string) ([]Finding, error) {
	rows, err := s.db.PrivilegedFindings(ctx, env)
	if err != nil {
		return nil, err
	}
	out := make([]Finding, 0, len(rows))
	for _, r := range rows {
		out = append(out, Finding{Env: r.Env, ClientID: r.ClientID, Name: r.Name, Team: r.TeamName, Scopes: r.Scopes,
			FoundAt: r.FoundAt, NotifiedAt: r.NotifiedAt})
	}
	return out, nil
}

// PendingPrivileged lists the findings the administrators have not been told about yet, for the
// notifier; ClaimPrivileged marks one told.
func (s *Service) PendingPrivileged(ctx context.Context) ([]Finding, error) {
	all, err := s.findings(ctx, "")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(f Finding) bool { return !f.NotifiedAt.IsZero() }), nil
}

// ClaimPrivileged records that the administrators are told about f now; false when someone
// already did (or the finding changed since it was read), so each finding is told once.
func (s *Service) ClaimPrivileged(ctx context.Context, f Finding) (bool, error) {
	return s.db.ClaimPrivilegedNotice(ctx, f.Env, f.ClientID, f.Scopes, s.now())
}
