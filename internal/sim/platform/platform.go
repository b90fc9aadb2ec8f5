// Package platform simulates one environment's Altinn platform: the Maskinporten token
// exchange (authentication), Storage and the Events API's app events, as described in shared/reference/upstreams.md §3 and §4.
package platform

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// ServiceOwner is one entry of Altinn's org registry (altinn-orgs.json).
type ServiceOwner struct {
	Code  string // Altinn org code, e.g. "ttd"
	OrgNo string // 9-digit organisation number
	Name  string
}

// Config wires one environment's platform simulator. The core simulator (package sim) owns the
// SQLite file, the clock and the Maskinporten keys and passes them in.
type Config struct {
	Env     string // "tt02" or "prod"
	BaseURL string // public URL of this platform without trailing slash, e.g. http://127.0.0.1:8081/sim/tt02/platform
	DB      *sql.DB
	Now     func() time.Time

	MaskinportenIssuer string                                                // e.g. http://127.0.0.1:8081/sim/tt02/maskinporten/
	MaskinportenKeys   func(ctx context.Context) (jose.JSONWebKeySet, error) // public keys that sign this environment's Maskinporten tokens
	ServiceOwners      func(ctx context.Context) ([]ServiceOwner, error)     // the org registry

	SigningKey   *rsa.PrivateKey // signs Altinn tokens for this environment (persisted by the core)
	SigningKeyID string          // kid of Altinn tokens; empty means the SHA-1 thumbprint of the signing certificate, as Altinn uses

	Options Options // behaviours the reference marks UNCONFIRMED; the zero value is the default
}

// Options switch behaviours that no public source settles (reference §7). The zero value is
// the simulator's default choice for each.
type Options struct {
	// ExchangeSID makes the exchange keep the Maskinporten jti and add a new "sid", as the current
	// altinn-authentication source does. By default the jti is replaced by a new GUID and no sid
	// is added, as in a captured 2025-09 tt02 token.
	ExchangeSID bool

	// ExchangeEmptyErrors answers exchange failures with an empty 401 instead of the
	// ProblemDetails body ASP.NET Core's [ApiController] defaults produce.
	ExchangeEmptyErrors bool

	// JWKSBase64URL publishes the Altinn JWKS with base64url "n" and "e" (RFC 7518). Altinn writes
	// them with Convert.ToBase64String, i.e. standard base64 with padding, which is the default.
	JWKSBase64URL bool

	// EventsWithoutSubscribeScope lets the Events API's app events answer a token without
	// altinn:events.subscribe, as the real service still does for events from Altinn apps
	// (its documentation recommends the scope and says it may become required). By default
	// the scope is required, so that a client that would break then is caught now.
	EventsWithoutSubscribeScope bool
}

// Platform serves one environment's Altinn platform.
type Platform struct {
	cfg     Config
	signer  *signer
	seedMu  sync.Mutex
	handler http.Handler
}

// New prepares the platform's tables (idempotent) and returns it.
func New(ctx context.Context, cfg Config) (*Platform, error) {
	switch {
	case cfg.Env == "":
		return nil, errors.New("platform: Env is required")
	case cfg.DB == nil:
		return nil, errors.New("platform: DB is required")
	case cfg.SigningKey == nil:
		return nil, errors.New("platform: SigningKey is required")
	case cfg.MaskinportenKeys == nil || cfg.ServiceOwners == nil:
		return nil, errors.New("platform: MaskinportenKeys and ServiceOwners are required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s, err := newSigner(cfg.SigningKey, cfg.SigningKeyID)
	if err != nil {
		return nil, fmt.Errorf("platform %s: signing certificate: %w", cfg.Env, err)
	}
	if err := migrate(ctx, cfg.DB); err != nil {
		return nil, fmt.Errorf("platform %s: migrate: %w", cfg.Env, err)
	}
	p := &Platform{cfg: cfg, signer: s}
	p.handler = http.HandlerFunc(p.route)
	return p, nil
}

// Handler serves requests whose path has had the BaseURL's path stripped, e.g.
// /authentication/api/v1/exchange/maskinporten and /storage/api/v1/instances.
func (p *Platform) Handler() http.Handler {
	return p.handler
}

// Issuer is the iss of Altinn tokens from this platform.
func (p *Platform) Issuer() string {
	return p.cfg.BaseURL + "/authentication/api/v1/openid/"
}

// JWKS returns the public key that signs this platform's Altinn tokens, with its certificate,
// in standard JWK form (the HTTP endpoint mimics Altinn's own encoding instead).
func (p *Platform) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:          &p.cfg.SigningKey.PublicKey,
		KeyID:        p.signer.kid,
		Algorithm:    string(jose.RS256),
		Use:          "sig",
		Certificates: p.signer.certs,
	}}}
}

func (p *Platform) now() time.Time {
	return p.cfg.Now().UTC()
}

// route dispatches on path segments. ASP.NET Core matches literal segments without regard to
// case, ignores a trailing slash and answers an unknown route with an empty 404.
func (p *Platform) route(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	lit := func(i int, s string) bool { return i < len(segs) && strings.EqualFold(segs[i], s) }
	prefix := func(parts ...string) bool {
		for i, s := range parts {
			if !lit(i, s) {
				return false
			}
		}
		return true
	}
	var h func(http.ResponseWriter, *http.Request, []string)
	switch {
	case prefix("authentication", "api", "v1", "exchange") && len(segs) == 5:
		h = func(w http.ResponseWriter, r *http.Request, s []string) { p.exchange(w, r, s[4]) }
	case prefix("authentication", "api", "v1", "openid", ".well-known", "openid-configuration") && len(segs) == 6:
		h = func(w http.ResponseWriter, r *http.Request, _ []string) { p.openIDConfiguration(w) }
	case prefix("authentication", "api", "v1", "openid", ".well-known", "openid-configuration", "jwks") && len(segs) == 7:
		h = func(w http.ResponseWriter, r *http.Request, _ []string) { p.jwksDocument(w) }
	case prefix("storage", "api", "v1", "instances"):
		h = p.storageRoute(segs[4:])
	case prefix("events", "api", "v1", "app") && len(segs) == 6 && segs[4] != "" && segs[5] != "":
		h = func(w http.ResponseWriter, r *http.Request, s []string) { p.appEvents(w, r, s[4], s[5]) }
	}
	if h == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	h(w, r, segs)
}

// storageRoute matches the instance routes after /storage/api/v1/instances, honouring the
// {instanceOwnerPartyId:int} and {instanceGuid:guid} constraints.
func (p *Platform) storageRoute(rest []string) func(http.ResponseWriter, *http.Request, []string) {
	switch len(rest) {
	case 0:
		return func(w http.ResponseWriter, r *http.Request, _ []string) { p.listInstances(w, r) }
	case 1:
		if g, ok := parseGUID(rest[0]); ok {
			return func(w http.ResponseWriter, r *http.Request, _ []string) { p.getInstance(w, r, g) }
		}
		return nil
	}
	party, okParty := parseRouteInt(rest[0])
	g, okGUID := parseGUID(rest[1])
	if !okParty || !okGUID {
		return nil
	}
	switch {
	case len(rest) == 2:
		return func(w http.ResponseWriter, r *http.Request, _ []string) { p.getInstance(w, r, g) }
	case len(rest) == 3 && strings.EqualFold(rest[2], "dataelements"):
		return func(w http.ResponseWriter, r *http.Request, _ []string) { p.listDataElements(w, r, party, g) }
	case len(rest) == 4 && strings.EqualFold(rest[2], "data"):
		d, ok := parseGUID(rest[3])
		if !ok {
			return nil
		}
		return func(w http.ResponseWriter, r *http.Request, _ []string) { p.getData(w, r, party, g, d) }
	}
	return nil
}

// parseRouteInt is the {x:int} route constraint: a 32-bit integer, optional sign.
func parseRouteInt(s string) (int32, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	return int32(n), err == nil
}

// parseGUID is the {x:guid} route constraint; the result is in lower-case D format.
func parseGUID(s string) (string, bool) {
	if strings.HasPrefix(strings.ToLower(s), "urn:") {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}
