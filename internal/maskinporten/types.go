package maskinporten

import (
	"bytes"
	"encoding/json"
	"time"
)

// Values the portal uses when creating Maskinporten clients.
const (
	IntegrationMaskinporten = "maskinporten"
	ApplicationWeb          = "web"
	AuthPrivateKeyJWT       = "private_key_jwt"
)

// Registration is a client registration as the self-service API sends it
// (RFC 7591 naming). Every member is omitted when zero, so an update can
// drop zero lifetimes (the API refuses access_token_lifetime 0) and
// server-set members. Legacy client_type/token_reference are not modelled
// and so never sent.
type Registration struct {
	ClientID                          string       `json:"client_id,omitempty"`
	ClientName                        string       `json:"client_name,omitempty"`
	Description                       string       `json:"description,omitempty"`
	ClientOrgno                       string       `json:"client_orgno,omitempty"`
	SupplierOrgno                     string       `json:"supplier_orgno,omitempty"`
	IntegrationType                   string       `json:"integration_type,omitempty"`
	ApplicationType                   string       `json:"application_type,omitempty"`
	TokenEndpointAuthMethod           string       `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes                        []string     `json:"grant_types,omitempty"`
	Scopes                            []string     `json:"scopes,omitempty"`
	AccessTokenLifetime               int          `json:"access_token_lifetime,omitempty"`
	AuthorizationLifetime             int          `json:"authorization_lifetime,omitempty"`
	RefreshTokenLifetime              int          `json:"refresh_token_lifetime,omitempty"`
	RefreshTokenUsage                 string       `json:"refresh_token_usage,omitempty"`
	RedirectURIs                      []string     `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs            []string     `json:"post_logout_redirect_uris,omitempty"`
	FrontchannelLogoutURI             string       `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool         `json:"frontchannel_logout_session_required,omitempty"`
	ClientURI                         string       `json:"client_uri,omitempty"`
	SSODisabled                       bool         `json:"sso_disabled,omitempty"`
	CodeChallengeMethod               string       `json:"code_challenge_method,omitempty"`
	JWKSURI                           string       `json:"jwks_uri,omitempty"`
	ClientSecret                      string       `json:"client_secret,omitempty"`
	OnBehalfOf                        []OnBehalfOf `json:"onbehalfof,omitempty"`
	Active                            bool         `json:"active,omitempty"`
	Created                           Time         `json:"created,omitzero"`
	LastUpdated                       Time         `json:"last_updated,omitzero"`

	// Raw is the JSON exactly as the API returned it; filled on decode.
	Raw json.RawMessage `json:"-"`
}

// OnBehalfOf is an onbehalfof registration (ID-porten clients only).
type OnBehalfOf struct {
	OnBehalfOf  string `json:"onbehalfof,omitempty"`
	Name        string `json:"name,omitempty"`
	Orgno       string `json:"orgno,omitempty"`
	Description string `json:"description,omitempty"`
	ClientURI   string `json:"client_uri,omitempty"`
	Created     Time   `json:"created,omitzero"`
	LastUpdated Time   `json:"last_updated,omitzero"`
}

// UnmarshalJSON decodes r and keeps the raw JSON.
func (r *Registration) UnmarshalJSON(b []byte) error {
	type plain Registration
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = Registration(p)
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// registrationBody is a Registration as the portal sends it: scopes always present (an
// absent list may leave Digdir's old scopes in place), server-set members never.
type registrationBody struct {
	Registration
	Scopes []string `json:"scopes"`
}

// forUpdate drops what the server sets (created, last_updated, the relative jwks_uri, a
// secret), as Digdir asks for GET-modify-PUT, and always carries scopes, even empty.
func (r Registration) forUpdate() registrationBody {
	r.Created, r.LastUpdated = Time{}, Time{}
	r.JWKSURI = ""
	r.ClientSecret = ""
	r.Raw = nil
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	r.Scopes = nil
	return registrationBody{Registration: r, Scopes: scopes}
}

// JWK is a public key on a client. Exp is the expiry the API reports (epoch
// seconds); posting it back unchanged keeps the key's expiry.
type JWK struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid,omitempty"`
	Alg string   `json:"alg,omitempty"`
	Use string   `json:"use,omitempty"`
	E   string   `json:"e,omitempty"`
	N   string   `json:"n,omitempty"`
	X5C []string `json:"x5c,omitempty"`
	X5T string   `json:"x5t,omitempty"`
	Exp int64    `json:"exp,omitempty"`
}

// Expires is Exp as a time, zero when absent.
func (k JWK) Expires() time.Time {
	if k.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(k.Exp, 0).UTC()
}

// JWKS is a client's key set.
type JWKS struct {
	Keys        []JWK `json:"keys"`
	Created     Time  `json:"created,omitzero"`
	LastUpdated Time  `json:"last_updated,omitzero"`
}

// Scope is a scope as listed by /scopes/all.
type Scope struct {
	Prefix                     string   `json:"prefix"`
	Subscope                   string   `json:"subscope"`
	Name                       string   `json:"name"`
	Description                string   `json:"description,omitempty"`
	LongDescription            string   `json:"long_description,omitempty"`
	Active                     bool     `json:"active"`
	Created                    Time     `json:"created,omitzero"`
	LastUpdated                Time     `json:"last_updated,omitzero"`
	AllowedIntegrationTypes    []string `json:"allowed_integration_types,omitempty"`
	OwnerOrgno                 string   `json:"owner_orgno,omitempty"`
	TokenType                  string   `json:"token_type,omitempty"`
	Visibility                 string   `json:"visibility,omitempty"`
	RequiresUserConsent        bool     `json:"requires_user_consent"`
	RequiresUserAuthentication bool     `json:"requires_user_authentication"`
	RequiresPseudonymousTokens bool     `json:"requires_pseudonymous_tokens"`
	DelegationSource           string   `json:"delegation_source,omitempty"`
	AtMaxAge                   int      `json:"at_max_age,omitempty"`
	AuthorizationMaxLifetime   int      `json:"authorization_max_lifetime,omitempty"`
	AccessibleForAll           bool     `json:"accessible_for_all"`
	Protected                  bool     `json:"protected"`
	SupportsEuropeanBusinesses bool     `json:"supports_european_businesses"`
}

// AllowsIntegration reports whether a client of type t may use the scope
// (an empty list allows any type).
func (s Scope) AllowsIntegration(t string) bool {
	if len(s.AllowedIntegrationTypes) == 0 {
		return true
	}
	for _, a := range s.AllowedIntegrationTypes {
		if a == t {
			return true
		}
	}
	return false
}

// Access states of a scope grant.
const (
	AccessRequested = "REQUESTED"
	AccessApproved  = "APPROVED"
	AccessDenied    = "DENIED"
)

// ScopeAccess is one organisation's access to a scope.
type ScopeAccess struct {
	Scope         string `json:"scope"`
	State         string `json:"state"`
	ConsumerOrgno string `json:"consumer_orgno"`
	OwnerOrgno    string `json:"owner_orgno,omitempty"`
	Created       Time   `json:"created,omitzero"`
	LastUpdated   Time   `json:"last_updated,omitzero"`
}

// Time is a timestamp as the self-service API writes it (ISO 8601, with or
// without offset or fraction). Decoding is lenient: a value it cannot read
// becomes zero instead of failing the whole object.
type Time struct{ time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02",
}

// UnmarshalJSON accepts any value; only a readable string timestamp
// yields a non-zero time.
func (t *Time) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	for _, l := range timeLayouts {
		if v, err := time.Parse(l, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return nil
}

// MarshalJSON writes RFC 3339 with fraction.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.Time.Format(time.RFC3339Nano))
}
