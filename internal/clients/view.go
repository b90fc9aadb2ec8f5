package clients

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/maskinporten"
	"portal/internal/store"
)

// Key is a public key on a client as the detail page shows it.
type Key struct {
	Kid       string
	Kty       string
	Alg       string
	Use       string
	Bits      int
	Expires   time.Time
	FirstSeen time.Time
	HasCert   bool
}

// Event is an audit event about an integration.
type Event struct {
	At      time.Time
	Actor   string
	Action  string
	Outcome string
	Details string
}

// Field is one member of the client JSON, for display.
type Field struct {
	Name  string
	Value string
}

// Detail is everything the integration page shows.
type Detail struct {
	Env        Env
	Summary    Summary
	Fields     []Field
	Raw        string // pretty-printed, as Digdir returns it
	Scopes     []Scope
	Keys       []Key
	Events     []Event
	Drift      []FieldChange
	DriftSince time.Time
	Issuer     string
	Example    Example
	Version    string
	CanChange  bool
	// CanEdit: every field may be edited; an inactive integration offers only its owning
	// team (CanChange without CanEdit), as Digdir keeps a deactivated client as it was.
	CanEdit       bool
	CanDeactivate bool
	CanCopy       bool // an active tt02 integration that can be copied to production
	// Deactivated says who deactivated an inactive integration in the portal and when; nil
	// when the portal has no record of it (deactivated outside the portal).
	Deactivated *Deactivation
	CopyTarget  string
	Stale       string // why the page shows the mirror without a fresh read
	SyncedAt    time.Time
	ClientOrgNo string
	// PortalClient is set on the portal's own admin client: read-only, no team.
	PortalClient bool
	// Privileged lists the privileged scopes it holds (see DefaultPrivilegedScopes).
	Privileged []string
}

// Deactivation is who deactivated an integration in the portal, and when.
type Deactivation struct {
	By string // the person's name (their email when the account is gone)
	At time.Time
}

// Example is a ready-made grant for the client: header and claims, unsigned.
type Example struct {
	Header string
	Claims string
}

// version identifies the content of a client as Digdir returned it (last_updated aside), so an
// edit can refuse when the client changed after the form was shown.
func version(raw []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		sum := sha256.Sum256(raw)
		return hex.EncodeToString(sum[:8])
	}
	delete(m, "last_updated")
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(canonicalJSON(m[k])))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Get returns an integration p may see, re-reading it upstream when the mirror is older than
// MaxAge. When upstream does not answer, the mirror is shown with a note saying so.
func (s *Service) Get(ctx context.Context, p *auth.Principal, env, clientID string) (Detail, error) {
	e, err := s.env(env)
	if err != nil {
		return Detail{}, err
	}
	it, err := s.visible(ctx, p, env, clientID)
	if err != nil {
		return Detail{}, err
	}
	it, stale, err := s.refreshIfStale(ctx, e, it, func() (store.Integration, error) { return s.visible(ctx, p, env, clientID) })
	if err != nil {
		return Detail{}, err
	}
	return s.detail(ctx, p, e, it, stale)
}

// refreshIfStale re-reads an integration from Digdir when the mirror's copy is older than
// MaxAge, then reads the row again with reread. When Digdir does not answer, the mirror's copy
// stays and stale says why.
func (s *Service) refreshIfStale(ctx context.Context, e *envState, it store.Integration, reread func() (store.Integration, error)) (store.Integration, string, error) {
	// A sync that finds a client unchanged leaves its row (and SyncedAt) alone, so the last
	// good sync counts as a sighting too.
	seen := it.SyncedAt
	if st, err := s.db.SyncStateOf(ctx, e.Name); err == nil && st.LastOKAt.After(seen) {
		seen = st.LastOKAt
	}
	// Digdir returns a deactivated client only in the list (inactive=true), which the sync reads.
	if e.Upstream == nil || !it.Active || s.now().Sub(seen) <= s.opts.MaxAge {
		return it, "", nil
	}
	if err := s.refresh(ctx, e, it.ClientID); err != nil {
		return it, problemMessage(err), nil
	}
	fresh, err := reread()
	return fresh, "", err
}

func (s *Service) detail(ctx context.Context, p *auth.Principal, e *envState, it store.Integration, stale string) (Detail, error) {
	d := Detail{Env: e.Env, Summary: summary(it), Issuer: e.Issuer, Version: version([]byte(it.Raw)), Stale: stale,
		CanChange: canChange(p, it.TeamID) && !e.isPortalClient(it.ClientID), SyncedAt: it.SyncedAt,
		PortalClient: e.isPortalClient(it.ClientID)}
	pol, err := s.policyOf(ctx, e)
	if err != nil {
		return d, err
	}
	d.Privileged = pol.among(it.Scopes)
	var pretty bytes.Buffer
	if json.Indent(&pretty, []byte(it.Raw), "", "  ") == nil {
		d.Raw = pretty.String()
	} else {
		d.Raw = it.Raw
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal([]byte(it.Raw), &m)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d.Fields = append(d.Fields, Field{Name: k, Value: canonicalJSON(m[k])})
	}
	if v, ok := m["client_orgno"]; ok {
		d.ClientOrgNo = canonicalJSON(v)
	}

	// Scope descriptions come from the catalogue when it can be read; the page works without.
	var known map[string]Scope
	if e.Upstream != nil {
		if usable, err := s.usableScopes(ctx, e); err == nil {
			known = scopeIndex(usable)
		}
	}
	for _, name := range it.Scopes {
		sc, ok := known[name]
		if !ok {
			sc = Scope{Name: name}
		}
		d.Scopes = append(d.Scopes, sc)
	}

	seen, err := s.db.KeysFirstSeen(ctx, e.Name, it.ClientID)
	if err != nil {
		return d, err
	}
	var set maskinporten.JWKS
	_ = json.Unmarshal([]byte(it.JWKS), &set)
	for _, k := range set.Keys {
		d.Keys = append(d.Keys, Key{Kid: k.Kid, Kty: k.Kty, Alg: k.Alg, Use: k.Use, Bits: modulusBits(k.N),
			Expires: k.Expires(), FirstSeen: seen[k.Kid], HasCert: len(k.X5C) > 0})
	}

	events, err := s.audit.ForTarget(ctx, e.Name, it.ClientID, 20)
	if err != nil {
		return d, err
	}
	for _, ev := range events {
		d.Events = append(d.Events, Event{At: ev.At, Actor: ev.Actor, Action: ev.Action, Outcome: ev.Outcome, Details: string(ev.Details)})
	}
	if dr, ok := parseDrift(it.Drift); ok {
		d.Drift, d.DriftSince = dr.Changes, dr.DetectedAt
	}
	d.Example = exampleGrant(e.Issuer, it, set.Keys, s.now())
	d.CanEdit, d.CanDeactivate = d.CanChange && it.Active, d.CanChange && it.Active
	if !it.Active {
		if d.Deactivated, err = s.deactivation(ctx, e.Name, it.ClientID); err != nil {
			return d, err
		}
	}
	if target, ok := s.envs["prod"]; ok && e.Name != "prod" && d.CanChange && it.Active && target.Upstream != nil {
		d.CanCopy, d.CopyTarget = true, target.Name
	}
	return d, nil
}

func summary(r store.Integration) Summary {
	return Summary{ClientID: r.ClientID, Name: r.Name, Description: r.Description, TeamID: r.TeamID, Team: r.TeamName,
		Scopes: r.Scopes, KeyCount: r.KeyCount, NextKeyExpiry: r.NextKeyExpiry, Active: r.Active, LastChange: r.LastChange,
		Drifted: r.Drift != ""}
}

func modulusBits(n string) int {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n, "="))
	if err != nil || len(b) == 0 {
		return 0
	}
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0
	}
	bits := len(b) * 8
	for top := b[0]; top&0x80 == 0; top <<= 1 {
		bits--
	}
	return bits
}

// exampleGrant is the grant this client would send: the first key's kid (or a placeholder),
// this environment's issuer as aud, the client's scopes, a two-minute lifetime.
func exampleGrant(issuer string, it store.Integration, keys []maskinporten.JWK, now time.Time) Example {
	kid, alg := "<the kid of one of this client's keys>", "RS256"
	if len(keys) > 0 {
		kid = keys[0].Kid
		if keys[0].Alg != "" {
			alg = keys[0].Alg
		}
	}
	header := indentJSON(map[string]string{"alg": alg, "kid": kid})
	iat := now.Unix()
	claims := indentJSON(struct {
		Aud   string `json:"aud"`
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
		Jti   string `json:"jti"`
	}{issuer, it.ClientID, strings.Join(it.Scopes, " "), iat, iat + 120, "<a new random value for every grant>"})
	return Example{Header: header, Claims: claims}
}

// indentJSON writes v as indented JSON the way a person types it: without the \u003c escapes
// json.Marshal uses to make JSON safe inside HTML (the templates escape it for HTML already).
func indentJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// deactivation finds the portal's record of deactivating a client: one indexed read of the
// audit log, and the person's name.
func (s *Service) deactivation(ctx context.Context, env, clientID string) (*Deactivation, error) {
	evs, err := s.audit.Query(ctx, audit.Filter{Env: env, Target: clientID, Action: "integration.deactivate", Outcome: audit.Success, Limit: 1})
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	ev := evs[0]
	d := &Deactivation{By: ev.Actor, At: ev.At}
	if ev.ActorID != 0 {
		if u, err := s.db.UserByID(ctx, ev.ActorID); err == nil {
			d.By = u.Name
		}
	}
	return d, nil
}

// IntegrationRef names one client of one environment.
type IntegrationRef struct {
	Env      string
	ClientID string
}

// IntegrationNames gives the mirror's names of these clients, for showing a name beside a
// client id (the audit trail): one query per environment, whatever the number of refs. Only
// names of integrations p may see are given.
func (s *Service) IntegrationNames(ctx context.Context, p *auth.Principal, refs []IntegrationRef) (map[IntegrationRef]string, error) {
	byEnv := map[string][]string{}
	for _, r := range refs {
		if !slices.Contains(byEnv[r.Env], r.ClientID) {
			byEnv[r.Env] = append(byEnv[r.Env], r.ClientID)
		}
	}
	out := map[IntegrationRef]string{}
	for env, ids := range byEnv {
		rows, err := s.db.IntegrationRows(ctx, env, ids)
		if err != nil {
			return nil, err
		}
		for _, it := range rows {
			if canSee(p, it.TeamID) {
				out[IntegrationRef{Env: env, ClientID: it.ClientID}] = it.Name
			}
		}
	}
	return out, nil
}
