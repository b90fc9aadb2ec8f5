package clients

import (
	"context"
	"encoding/json"
	"slices"

	"portal/internal/auth"
	"portal/internal/maskinporten"
	"portal/internal/store"
)

// TryTarget is what trying an integration's access chain live needs to know about it: the
// client as last read from Digdir, its public keys with their expiry, which private keys the
// portal keeps, and which scopes the organisation may use.
type TryTarget struct {
	Env      Env
	ClientID string
	Name     string
	TeamID   int64
	Team     string
	OrgNo    string // client_orgno, "" when Digdir did not say
	Active   bool
	Scopes   []string           // registered on the client
	Keys     []maskinporten.JWK // public keys as Digdir lists them
	Kept     []string           // kids whose private key the portal keeps, sorted
	// Usable lists the scopes the organisation may use in the environment (granted to it or
	// open to all); nil when the catalogue could not be read.
	Usable []string
	// Stale says why the mirror's copy is used instead of a fresh read; "" when fresh enough.
	Stale string
}

// TryTarget returns an integration for a live try by p. Trying acts as the integration, so it
// needs the same rights as a change: admins and the team's owners and members, not viewers.
// The client is re-read from Digdir when the mirror is older than MaxAge.
func (s *Service) TryTarget(ctx context.Context, p *auth.Principal, env, clientID string) (TryTarget, error) {
	e, err := s.env(env)
	if err != nil {
		return TryTarget{}, err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return TryTarget{}, err
	}
	it, stale, err := s.refreshIfStale(ctx, e, it, func() (store.Integration, error) { return s.changeable(ctx, p, env, clientID) })
	if err != nil {
		return TryTarget{}, err
	}
	t := TryTarget{Env: e.Env, ClientID: it.ClientID, Name: it.Name, TeamID: it.TeamID, Team: it.TeamName,
		Active: it.Active, Scopes: slices.Clone(it.Scopes), Stale: stale}
	var raw struct {
		OrgNo string `json:"client_orgno"`
	}
	if json.Unmarshal([]byte(it.Raw), &raw) == nil {
		t.OrgNo = raw.OrgNo
	}
	var set maskinporten.JWKS
	_ = json.Unmarshal([]byte(it.JWKS), &set)
	t.Keys = set.Keys
	records, err := s.db.KeyRecords(ctx, env, it.ClientID)
	if err != nil {
		return TryTarget{}, err
	}
	for kid, rec := range records {
		if rec.Custody == CustodyKept && len(rec.Sealed) > 0 {
			t.Kept = append(t.Kept, kid)
		}
	}
	slices.Sort(t.Kept)
	if e.Upstream != nil {
		if usable, err := s.usableScopes(ctx, e); err == nil {
			t.Usable = make([]string, 0, len(usable))
			for _, sc := range usable {
				t.Usable = append(t.Usable, sc.Name)
			}
		}
	}
	return t, nil
}
