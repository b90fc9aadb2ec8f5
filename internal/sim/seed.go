package sim

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Well-known organisations of the default world.
const (
	digdirOrgNo = "991825827" // Digitaliseringsdirektoratet, owns the altinn: and idporten: scopes
	navOrgNo    = "889640782"
	skattOrgNo  = "974761076"
	brregOrgNo  = "974760673"
)

// Scopes the seeded admin client holds: what production admin clients are registered with
// (NAV's digdirator asks for these three; nobody uses idporten:dcr.modify).
var adminScopes = []string{"idporten:dcr.read", "idporten:dcr.write", "idporten:scopes.write"}

// SeedFile is the format of Config.SeedFile, a JSON document that adds to the default world
// of each environment named in Envs (both when empty). Seeding is idempotent: entries that
// exist are left as they are, so the file can be applied at every start.
//
//	{
//	  "envs": ["tt02"],
//	  "orgs": [{"orgno": "310456780", "code": "abc", "name": "ABC Etat", "service_owner": true}],
//	  "scopes": [{"name": "abc:data.read", "description": "Read ABC data",
//	              "owner_orgno": "310456780", "accessible_for_all": false,
//	              "allowed_integration_types": ["maskinporten"], "at_max_age": 0,
//	              "delegation_source": ""}],
//	  "grants": [{"scope": "abc:data.read", "consumer_orgno": "313554430", "state": "APPROVED"}],
//	  "delegations": [{"consumer_orgno": "310456780", "supplier_orgno": "313554430", "scope": "abc:data.read"}],
//	  "clients": [{"client_id": "optional-id", "client_orgno": "313554430", "client_name": "reader",
//	               "integration_type": "maskinporten",
//	               "description": "Reads data", "scopes": ["abc:data.read"],
//	               "access_token_lifetime": 600,
//	               "keys": [{"kty": "RSA", "kid": "reader-1", "use": "sig", "alg": "RS256",
//	                         "e": "AQAB", "n": "...", "exp": 1893456000}]}],
//	  "apps": [{"org": "abc", "app": "soknad", "instances": 200}]
//	}
//
// A client without client_id gets one derived from its environment, organisation and name, so
// re-seeding finds it again. Keys without exp live one year from when they are first seeded.
// integration_type defaults to maskinporten; clients of the other kinds Digdir lists
// (idporten, api_klient, ansattporten, krr, eformidling) get that kind's login-client defaults
// and no keys, so GET /clients answers with every kind as the real API does.
type SeedFile struct {
	Envs        []string         `json:"envs"`
	Orgs        []SeedOrg        `json:"orgs"`
	Scopes      []SeedScope      `json:"scopes"`
	Grants      []SeedGrant      `json:"grants"`
	Delegations []SeedDelegation `json:"delegations"`
	Clients     []SeedClient     `json:"clients"`
	Apps        []SeedApp        `json:"apps"`
}

// SeedOrg is an organisation; service owners are in Altinn's org registry.
type SeedOrg struct {
	OrgNo        string `json:"orgno"`
	Code         string `json:"code"`
	Name         string `json:"name"`
	ServiceOwner bool   `json:"service_owner"`
}

// SeedScope is a scope of the catalogue; its prefix is the part of the name before ':'.
type SeedScope struct {
	Name                    string   `json:"name"`
	Description             string   `json:"description"`
	OwnerOrgNo              string   `json:"owner_orgno"`
	AccessibleForAll        bool     `json:"accessible_for_all"`
	AllowedIntegrationTypes []string `json:"allowed_integration_types"`
	AtMaxAge                int      `json:"at_max_age"`
	DelegationSource        string   `json:"delegation_source"`
	Visibility              string   `json:"visibility"`
}

// SeedGrant gives consumer_orgno access to a scope; state defaults to APPROVED.
type SeedGrant struct {
	Scope         string `json:"scope"`
	ConsumerOrgNo string `json:"consumer_orgno"`
	State         string `json:"state"`
}

// SeedDelegation lets supplier_orgno ask for tokens on behalf of consumer_orgno (consumer_org).
type SeedDelegation struct {
	ConsumerOrgNo string `json:"consumer_orgno"`
	SupplierOrgNo string `json:"supplier_orgno"`
	Scope         string `json:"scope"`
}

// SeedClient is a client with optional public keys; a Maskinporten client unless
// IntegrationType names another kind.
type SeedClient struct {
	ClientID            string            `json:"client_id"`
	IntegrationType     string            `json:"integration_type"`
	ClientOrgNo         string            `json:"client_orgno"`
	ClientName          string            `json:"client_name"`
	Description         string            `json:"description"`
	Scopes              []string          `json:"scopes"`
	AccessTokenLifetime int               `json:"access_token_lifetime"`
	Keys                []json.RawMessage `json:"keys"`
}

// SeedApp is an Altinn app with at least Instances instances.
type SeedApp struct {
	Org       string `json:"org"`
	App       string `json:"app"`
	Instances int    `json:"instances"`
}

// ReadSeedFile reads and checks a seed file.
func ReadSeedFile(path string) (*SeedFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seed file: %w", err)
	}
	var f SeedFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("seed file %s: %w", path, err)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("seed file %s: %w", path, err)
	}
	return &f, nil
}

func (f *SeedFile) check() error {
	var errs []error
	for _, e := range f.Envs {
		if e != "tt02" && e != "prod" {
			errs = append(errs, fmt.Errorf("envs: unknown environment %q", e))
		}
	}
	for i, o := range f.Orgs {
		if !isOrgNo(o.OrgNo) {
			errs = append(errs, fmt.Errorf("orgs[%d]: orgno %q is not 9 digits", i, o.OrgNo))
		}
		if o.ServiceOwner && o.Code == "" {
			errs = append(errs, fmt.Errorf("orgs[%d]: a service owner needs a code", i))
		}
	}
	for i, s := range f.Scopes {
		if p, sub, ok := strings.Cut(s.Name, ":"); !ok || p == "" || sub == "" {
			errs = append(errs, fmt.Errorf("scopes[%d]: name %q is not prefix:subscope", i, s.Name))
		}
		if !isOrgNo(s.OwnerOrgNo) {
			errs = append(errs, fmt.Errorf("scopes[%d]: owner_orgno %q is not 9 digits", i, s.OwnerOrgNo))
		}
	}
	for i, g := range f.Grants {
		if g.Scope == "" || !isOrgNo(g.ConsumerOrgNo) {
			errs = append(errs, fmt.Errorf("grants[%d]: scope and a 9-digit consumer_orgno are required", i))
		}
		switch g.State {
		case "", "APPROVED", "REQUESTED", "DENIED":
		default:
			errs = append(errs, fmt.Errorf("grants[%d]: state %q is not APPROVED, REQUESTED or DENIED", i, g.State))
		}
	}
	for i, d := range f.Delegations {
		if !isOrgNo(d.ConsumerOrgNo) || !isOrgNo(d.SupplierOrgNo) || d.Scope == "" {
			errs = append(errs, fmt.Errorf("delegations[%d]: consumer_orgno, supplier_orgno and scope are required", i))
		}
	}
	for i, c := range f.Clients {
		if !isOrgNo(c.ClientOrgNo) || c.ClientName == "" {
			errs = append(errs, fmt.Errorf("clients[%d]: client_orgno and client_name are required", i))
		}
		if len(c.Keys) > maxKeys {
			errs = append(errs, fmt.Errorf("clients[%d]: at most %d keys", i, maxKeys))
		}
		switch c.IntegrationType {
		case "", "maskinporten":
		case "idporten", "api_klient", "ansattporten", "krr", "eformidling":
			if len(c.Keys) > 0 {
				errs = append(errs, fmt.Errorf("clients[%d]: only maskinporten clients are seeded with keys", i))
			}
		default:
			errs = append(errs, fmt.Errorf("clients[%d]: integration_type %q is not one of maskinporten, idporten, api_klient, ansattporten, krr, eformidling", i, c.IntegrationType))
		}
	}
	for i, a := range f.Apps {
		if a.Org == "" || a.App == "" || a.Instances < 0 {
			errs = append(errs, fmt.Errorf("apps[%d]: org and app are required", i))
		}
	}
	return errors.Join(errs...)
}

func (f *SeedFile) appliesTo(env string) bool {
	if len(f.Envs) == 0 {
		return true
	}
	for _, e := range f.Envs {
		if e == env {
			return true
		}
	}
	return false
}

func (w *world) delegationSource() string {
	if w.name == "prod" {
		return "https://www.altinn.no/"
	}
	return "https://tt02.altinn.no/"
}

// seedDefault makes the default world: the service owner and a few other organisations, a
// realistic scope catalogue, the service owner's grants and its admin client.
func (w *world) seedDefault(ctx context.Context) error {
	cfg := w.s.cfg
	orgs := []SeedOrg{
		{OrgNo: cfg.OrgNo, Code: cfg.OrgCode, Name: cfg.OrgName, ServiceOwner: true},
		{OrgNo: digdirOrgNo, Code: "digdir", Name: "Digitaliseringsdirektoratet", ServiceOwner: true},
		{OrgNo: navOrgNo, Code: "nav", Name: "Arbeids- og velferdsetaten", ServiceOwner: true},
		{OrgNo: skattOrgNo, Code: "skd", Name: "Skatteetaten", ServiceOwner: true},
		{OrgNo: brregOrgNo, Code: "brg", Name: "Brønnøysundregistrene", ServiceOwner: true},
	}
	ds := w.delegationSource()
	mp := []string{"maskinporten"}
	scopes := []SeedScope{
		{Name: "altinn:serviceowner/instances.read", Description: "Service owner access to read instances of the owner's apps", OwnerOrgNo: digdirOrgNo, AllowedIntegrationTypes: mp, AtMaxAge: 3600},
		{Name: "altinn:serviceowner/instances.write", Description: "Service owner access to write instances of the owner's apps", OwnerOrgNo: digdirOrgNo, AllowedIntegrationTypes: mp, AtMaxAge: 3600},
		{Name: "idporten:dcr.read", Description: "Read client registrations of the own organisation", OwnerOrgNo: digdirOrgNo, AllowedIntegrationTypes: mp},
		{Name: "idporten:dcr.write", Description: "Create and change client registrations of the own organisation", OwnerOrgNo: digdirOrgNo, AllowedIntegrationTypes: mp},
		{Name: "idporten:dcr.modify", Description: "Change existing client registrations of the own organisation", OwnerOrgNo: digdirOrgNo, AllowedIntegrationTypes: mp},
		{Name: "idporten:scopes.write", Description: "Administer own API scopes and access to them", OwnerOrgNo: digdirOrgNo, AllowedIntegrationTypes: mp},
		{Name: "altinn:events.subscribe", Description: "Altinn Events: read and subscribe to events", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: mp, AtMaxAge: 3600},
		{Name: "altinn:broker.read", Description: "Altinn Broker: download files", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: mp, AtMaxAge: 3600},
		{Name: "altinn:broker.write", Description: "Altinn Broker: upload files", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: mp, AtMaxAge: 3600},
		{Name: "altinn:correspondence.read", Description: "Altinn Correspondence: read messages", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: mp, AtMaxAge: 3600},
		{Name: "altinn:correspondence.write", Description: "Altinn Correspondence: send messages", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: mp, AtMaxAge: 3600},
		{Name: "altinn:events.subscribe", Description: "Altinn Events: read and subscribe to events", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: mp},
		{Name: "altinn:authentication/systemuser.request.read", Description: "Read system user requests", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: mp},
		{Name: "altinn:portal/enduser", Description: "End-user portal access (ID-porten only)", OwnerOrgNo: digdirOrgNo, AccessibleForAll: true, AllowedIntegrationTypes: []string{"idporten"}},
		{Name: "krr:global/kontaktinformasjon.read", Description: "Contact and reservation register: read contact information", OwnerOrgNo: digdirOrgNo, AllowedIntegrationTypes: mp},
		{Name: "nav:pensjon/v3/alderspensjon", Description: "NAV: retirement pension data", OwnerOrgNo: navOrgNo, AllowedIntegrationTypes: mp, DelegationSource: ds},
		{Name: "nav:aareg/v1/arbeidsforhold", Description: "NAV: employment register", OwnerOrgNo: navOrgNo, AllowedIntegrationTypes: mp, DelegationSource: ds},
		{Name: "skatteetaten:inntekt", Description: "Skatteetaten: income data", OwnerOrgNo: skattOrgNo, AllowedIntegrationTypes: mp, AtMaxAge: 600, DelegationSource: ds},
		{Name: "folkeregister:deling/offentligmedhjemmel", Description: "Folkeregisteret: sharing with legal basis", OwnerOrgNo: skattOrgNo, AllowedIntegrationTypes: mp},
		{Name: "brreg:enhetsregisteret/roller.read", Description: "Brønnøysundregistrene: roles", OwnerOrgNo: brregOrgNo, AllowedIntegrationTypes: mp},
	}
	var grants []SeedGrant
	for _, s := range []string{"altinn:serviceowner/instances.read", "altinn:serviceowner/instances.write",
		"idporten:dcr.read", "idporten:dcr.write", "idporten:dcr.modify", "idporten:scopes.write"} {
		grants = append(grants, SeedGrant{Scope: s, ConsumerOrgNo: cfg.OrgNo, State: "APPROVED"})
	}
	grants = append(grants, SeedGrant{Scope: "krr:global/kontaktinformasjon.read", ConsumerOrgNo: cfg.OrgNo, State: "REQUESTED"})
	for _, o := range []string{navOrgNo, skattOrgNo, brregOrgNo} {
		grants = append(grants,
			SeedGrant{Scope: "altinn:serviceowner/instances.read", ConsumerOrgNo: o, State: "APPROVED"},
			SeedGrant{Scope: "altinn:serviceowner/instances.write", ConsumerOrgNo: o, State: "APPROVED"})
	}
	if err := w.applySeed(ctx, &SeedFile{Orgs: orgs, Scopes: scopes, Grants: grants}); err != nil {
		return err
	}
	return w.upsertAdminClient(ctx)
}

// upsertAdminClient keeps the seeded admin client as documented: the service owner's, with
// adminScopes and no keys (it authenticates with its business certificate).
func (w *world) upsertAdminClient(ctx context.Context) error {
	now := timestamp(w.clock.now())
	c := client{
		ClientID:    w.adminClientID,
		ClientName:  w.s.cfg.OrgName + " - selvbetjening (simulator)",
		Description: "Admin client for Digdir's self-service API, seeded by the simulator",
		Scopes:      adminScopes,
		ClientOrgno: w.s.cfg.OrgNo,
		Active:      true,
		Created:     now,
		LastUpdated: now,
	}
	applyClientDefaults(&c)
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	_, err = w.s.wdb.ExecContext(ctx, `INSERT INTO sim_clients (env, client_id, client_orgno, active, body)
		VALUES (?, ?, ?, 1, ?)
		ON CONFLICT (env, client_id) DO UPDATE SET client_orgno = excluded.client_orgno, active = 1,
		body = json_set(excluded.body, '$.created', json_extract(sim_clients.body, '$.created'))`,
		w.name, c.ClientID, c.ClientOrgno, string(body))
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	_, err = w.s.wdb.ExecContext(ctx, `DELETE FROM sim_client_keys WHERE env = ? AND client_id = ?`, w.name, c.ClientID)
	if err != nil {
		return fmt.Errorf("admin client keys: %w", err)
	}
	return nil
}

// applySeed adds what f describes to the environment, leaving existing entries alone.
func (w *world) applySeed(ctx context.Context, f *SeedFile) error {
	if !f.appliesTo(w.name) {
		return nil
	}
	now := w.clock.now()
	ts := timestamp(now)
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	for _, o := range f.Orgs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sim_orgs (env, orgno, code, name, service_owner) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, w.name, o.OrgNo, o.Code, o.Name, o.ServiceOwner); err != nil {
			return fmt.Errorf("org %s: %w", o.OrgNo, err)
		}
	}
	for _, s := range f.Scopes {
		prefix, sub, _ := strings.Cut(s.Name, ":")
		vis := s.Visibility
		if vis == "" {
			vis = "PUBLIC"
		}
		types := s.AllowedIntegrationTypes
		if types == nil {
			types = []string{}
		}
		sc := Scope{
			Prefix: prefix, Subscope: sub, Name: s.Name, Description: s.Description, Active: true,
			Created: ts, LastUpdated: ts, AllowedIntegrationTypes: types, OwnerOrgno: s.OwnerOrgNo,
			TokenType: "SELF_CONTAINED", Visibility: vis, DelegationSource: s.DelegationSource,
			AtMaxAge: s.AtMaxAge, AuthorizationMaxLifetime: s.AtMaxAge, AccessibleForAll: s.AccessibleForAll,
		}
		body, err := json.Marshal(sc)
		if err != nil {
			return fmt.Errorf("scope %s: %w", s.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sim_scopes (env, name, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			w.name, s.Name, string(body)); err != nil {
			return fmt.Errorf("scope %s: %w", s.Name, err)
		}
	}
	for _, g := range f.Grants {
		state := g.State
		if state == "" {
			state = "APPROVED"
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sim_scope_access (env, scope, consumer_orgno, state, created, last_updated)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, w.name, g.Scope, g.ConsumerOrgNo, state, ts, ts); err != nil {
			return fmt.Errorf("grant %s to %s: %w", g.Scope, g.ConsumerOrgNo, err)
		}
	}
	for _, d := range f.Delegations {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sim_delegations (env, consumer_orgno, supplier_orgno, scope)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, w.name, d.ConsumerOrgNo, d.SupplierOrgNo, d.Scope); err != nil {
			return fmt.Errorf("delegation: %w", err)
		}
	}
	for _, sc := range f.Clients {
		if err := w.seedClient(ctx, tx, sc, now); err != nil {
			return fmt.Errorf("client %s: %w", sc.ClientName, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// seedNamespace derives stable client ids for seeded clients without one.
var seedNamespace = uuid.MustParse("5b8f0f5e-7f55-4c8e-9a3d-2c1e6a0b9d41")

func (w *world) seedClient(ctx context.Context, tx *sql.Tx, sc SeedClient, now time.Time) error {
	id := sc.ClientID
	if id == "" {
		id = uuid.NewSHA1(seedNamespace, []byte(w.name+"/"+sc.ClientOrgNo+"/"+sc.ClientName)).String()
	}
	var exists int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM sim_clients WHERE env = ? AND client_id = ?`, w.name, id).Scan(&exists)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	ts := timestamp(now)
	c := client{
		ClientID: id, ClientName: sc.ClientName, Description: sc.Description, Scopes: sc.Scopes,
		AccessTokenLifetime: sc.AccessTokenLifetime, ClientOrgno: sc.ClientOrgNo, Active: true,
		Created: ts, LastUpdated: ts, JWKSURI: clientJWKSURI(id),
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	if sc.IntegrationType != "" && sc.IntegrationType != "maskinporten" {
		// A login client as the real API shows one; the simulated Maskinporten never issues
		// it tokens, since it has neither keys nor the jwt-bearer grant.
		c.IntegrationType = sc.IntegrationType
		c.TokenEndpointAuthMethod = "client_secret_basic"
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
		c.JWKSURI = ""
	}
	applyClientDefaults(&c)
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	jwksTS := ""
	if len(sc.Keys) > 0 {
		jwksTS = ts
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sim_clients (env, client_id, client_orgno, active, body, jwks_created, jwks_updated)
		VALUES (?, ?, ?, 1, ?, ?, ?)`, w.name, id, sc.ClientOrgNo, string(body), jwksTS, jwksTS); err != nil {
		return err
	}
	if len(sc.Keys) == 0 {
		return nil
	}
	keys, fes := checkKeySet(sc.Keys, now)
	if len(fes) > 0 {
		return fmt.Errorf("keys: %s", fes[0].ErrorMessage)
	}
	return insertKeys(ctx, tx, w.name, id, keys)
}
