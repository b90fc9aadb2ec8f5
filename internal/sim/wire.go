package sim

import "encoding/json"

// Wire types, written from shared/reference/upstreams.md and deliberately not shared with the
// portal's clients.

const grantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// amrBusinessCertificate is client_amr for a client that signed its grant with a business
// certificate (x5c), the only kind the self-service API accepts (§2.2).
const amrBusinessCertificate = "virksomhetssertifikat"

// metadata is Maskinporten's RFC 8414 document (§1.1).
type metadata struct {
	Issuer                      string   `json:"issuer"`
	TokenEndpoint               string   `json:"token_endpoint"`
	JWKSURI                     string   `json:"jwks_uri"`
	TokenEndpointAuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
	GrantTypes                  []string `json:"grant_types_supported"`
	TokenEndpointAuthSigningAlg []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	AuthorizationDetailsTypes   []string `json:"authorization_details_types_supported"`
}

// tokenResponse is the token endpoint's success body (§1.5).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// orgRef is an ISO 6523 organisation reference as in the consumer and supplier claims.
type orgRef struct {
	Authority string `json:"authority"`
	ID        string `json:"ID"`
}

func iso6523(orgno string) orgRef {
	return orgRef{Authority: "iso6523-actorid-upis", ID: "0192:" + orgno}
}

// accessClaims are the claims of a Maskinporten access token (§1.6).
type accessClaims struct {
	Aud              any     `json:"aud,omitempty"`
	Scope            string  `json:"scope"`
	Iss              string  `json:"iss"`
	ClientAmr        string  `json:"client_amr"`
	TokenType        string  `json:"token_type"`
	Exp              int64   `json:"exp"`
	Iat              int64   `json:"iat"`
	ClientID         string  `json:"client_id"`
	Jti              string  `json:"jti"`
	Consumer         orgRef  `json:"consumer"`
	Supplier         *orgRef `json:"supplier,omitempty"`
	DelegationSource string  `json:"delegation_source,omitempty"`
	Pid              string  `json:"pid,omitempty"`
}

// tokenError is Maskinporten's error body (§1.8).
type tokenError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorURI         string `json:"error_uri,omitempty"`
}

// Scope is a scope object as /scopes/all returns it (§2.6).
type Scope struct {
	Prefix                     string   `json:"prefix"`
	Subscope                   string   `json:"subscope"`
	Name                       string   `json:"name"`
	Description                string   `json:"description"`
	LongDescription            string   `json:"long_description,omitempty"`
	Active                     bool     `json:"active"`
	Created                    string   `json:"created"`
	LastUpdated                string   `json:"last_updated"`
	AllowedIntegrationTypes    []string `json:"allowed_integration_types"`
	OwnerOrgno                 string   `json:"owner_orgno"`
	TokenType                  string   `json:"token_type"`
	Visibility                 string   `json:"visibility"`
	RequiresUserConsent        bool     `json:"requires_user_consent"`
	RequiresUserAuthentication bool     `json:"requires_user_authentication"`
	RequiresPseudonymousTokens bool     `json:"requires_pseudonymous_tokens"`
	DelegationSource           string   `json:"delegation_source,omitempty"`
	AtMaxAge                   int      `json:"at_max_age"`
	AuthorizationMaxLifetime   int      `json:"authorization_max_lifetime"`
	AccessibleForAll           bool     `json:"accessible_for_all"`
	Protected                  bool     `json:"protected"`
	SupportsEuropeanBusinesses bool     `json:"supports_european_businesses"`
}

// allowsMaskinporten says whether a Maskinporten client may use the scope (empty list = any).
func (sc *Scope) allowsMaskinporten() bool {
	if len(sc.AllowedIntegrationTypes) == 0 {
		return true
	}
	for _, t := range sc.AllowedIntegrationTypes {
		if t == "maskinporten" {
			return true
		}
	}
	return false
}

// scopeAccess is an access object of /scopes/access/all (§2.6).
type scopeAccess struct {
	Scope         string `json:"scope"`
	State         string `json:"state"`
	Created       string `json:"created"`
	ConsumerOrgno string `json:"consumer_orgno"`
	LastUpdated   string `json:"last_updated"`
	OwnerOrgno    string `json:"owner_orgno"`
}

// client is the self-service API's client model (§2.4), as stored and returned.
type client struct {
	ClientID                          string   `json:"client_id"`
	ClientName                        string   `json:"client_name"`
	Description                       string   `json:"description"`
	Scopes                            []string `json:"scopes"`
	AuthorizationLifetime             int      `json:"authorization_lifetime"`
	AccessTokenLifetime               int      `json:"access_token_lifetime"`
	RefreshTokenLifetime              int      `json:"refresh_token_lifetime"`
	RefreshTokenUsage                 string   `json:"refresh_token_usage"`
	FrontchannelLogoutSessionRequired bool     `json:"frontchannel_logout_session_required"`
	TokenEndpointAuthMethod           string   `json:"token_endpoint_auth_method"`
	GrantTypes                        []string `json:"grant_types"`
	IntegrationType                   string   `json:"integration_type"`
	ApplicationType                   string   `json:"application_type"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	LastUpdated                       string   `json:"last_updated"`
	Created                           string   `json:"created"`
	ClientOrgno                       string   `json:"client_orgno"`
	SupplierOrgno                     string   `json:"supplier_orgno,omitempty"`
	Active                            bool     `json:"active"`
}

// clientRequest is what POST and PUT /clients accept; pointers tell absent from zero.
type clientRequest struct {
	ClientName              *string   `json:"client_name"`
	Description             *string   `json:"description"`
	Scopes                  []string  `json:"scopes"`
	AuthorizationLifetime   *int      `json:"authorization_lifetime"`
	AccessTokenLifetime     *int      `json:"access_token_lifetime"`
	RefreshTokenLifetime    *int      `json:"refresh_token_lifetime"`
	RefreshTokenUsage       *string   `json:"refresh_token_usage"`
	TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method"`
	GrantTypes              *[]string `json:"grant_types"`
	IntegrationType         *string   `json:"integration_type"`
	ApplicationType         *string   `json:"application_type"`
	ClientSecret            *string   `json:"client_secret"`
	RedirectURIs            []string  `json:"redirect_uris"`
	ClientOrgno             *string   `json:"client_orgno"`

	// Members the server sets. Digdir asks for the GET result without them on PUT (§2.4);
	// only their presence matters.
	Created     json.RawMessage `json:"created"`
	LastUpdated json.RawMessage `json:"last_updated"`
	JWKSURI     json.RawMessage `json:"jwks_uri"`
}

// readOnlyMembers names the server-set members present in r.
func (r *clientRequest) readOnlyMembers() []string {
	var out []string
	for _, m := range []struct {
		name string
		v    json.RawMessage
	}{{"created", r.Created}, {"last_updated", r.LastUpdated}, {"jwks_uri", r.JWKSURI}} {
		if m.v != nil {
			out = append(out, m.name)
		}
	}
	return out
}

// jwk is a key of a client's key set. Known members are typed; anything else is refused when
// it is a private member and otherwise kept as posted.
type jwk struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid"`
	Alg string   `json:"alg,omitempty"`
	Use string   `json:"use,omitempty"`
	E   string   `json:"e,omitempty"`
	N   string   `json:"n,omitempty"`
	X5c []string `json:"x5c,omitempty"`
	Exp *int64   `json:"exp,omitempty"`
}

// jwksBody is the body of GET/POST /clients/{id}/jwks (§2.5).
type jwksBody struct {
	Keys        []json.RawMessage `json:"keys"`
	Created     string            `json:"created,omitempty"`
	LastUpdated string            `json:"last_updated,omitempty"`
}

// apiError is Digdir's error body (§2.7).
type apiError struct {
	Status        int          `json:"status"`
	Timestamp     string       `json:"timestamp"`
	CorrelationID string       `json:"correlation_id"`
	Errors        []fieldError `json:"errors"`
	Error         string       `json:"error"`
	Description   string       `json:"error_description"`
}

type fieldError struct {
	ErrorMessage    string `json:"errorMessage"`
	IsFieldError    bool   `json:"isFieldError"`
	ObjectName      string `json:"objectName,omitempty"`
	FieldIdentifier string `json:"fieldIdentifier,omitempty"`
}
