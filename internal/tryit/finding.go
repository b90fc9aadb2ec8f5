package tryit

import (
	"slices"
	"time"

	"portal/internal/maskinporten"
)

// Severity ranks a finding.
type Severity string

// Severities, most serious first.
const (
	SeverityError   Severity = "error"   // this makes (or made) the step fail
	SeverityWarning Severity = "warning" // works now, or may not work, but deserves a look
	SeverityInfo    Severity = "info"    // worth knowing
)

// Finding is one explanation: what is wrong, why, and what to do, in words a person can act on.
// Code is stable, for tests and for a page to link help to.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Cause    string   `json:"cause,omitempty"`
	Fix      string   `json:"fix,omitempty"`
	Ref      string   `json:"ref,omitempty"` // an MP code, error_uri or document to read
}

// Target is the client a chain runs as, as far as the portal knows it. The checks that need a
// member are skipped when it is empty.
type Target struct {
	ClientID string
	OrgNo    string
	Scopes   []string           // registered on the client
	Keys     []maskinporten.JWK // the client's public keys, with their expiry
	Kept     []string           // kids whose private key the portal keeps
	// Usable lists the scopes the organisation may use (granted to it or open to all); nil
	// when unknown.
	Usable []string
}

// key returns the client's key with kid.
func (t *Target) key(kid string) (maskinporten.JWK, bool) {
	if t == nil {
		return maskinporten.JWK{}, false
	}
	for _, k := range t.Keys {
		if k.Kid == kid {
			return k, true
		}
	}
	return maskinporten.JWK{}, false
}

func (t *Target) kids() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.Keys))
	for _, k := range t.Keys {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}

// Context is what the explanations know besides the text they look at: the environment, the
// client and the time. Zero members mean unknown, and the checks that need them are skipped.
type Context struct {
	Env          string
	Issuer       string   // this environment's Maskinporten issuer, the only valid aud
	OtherIssuers []string // the other environments' issuers
	TokenURL     string
	Target       *Target
	// Now is when the grant was sent, or the time of the analysis.
	Now time.Time
	// Sent says the grant was just sent to Maskinporten, so its times are judged strictly; a
	// grant pasted for analysis may have been used long ago.
	Sent bool
}

// Finding codes. Maskinporten's refusals (mp.*), local checks of a grant (grant.*), the
// exchange (exchange.*), Storage (storage.*) and the network (upstream.*).
const (
	MPClientUnknown       = "mp.client_unknown"         // MP-100
	MPAudience            = "mp.audience"               // MP-110
	MPCertificate         = "mp.certificate"            // MP-120
	MPKeyExpired          = "mp.key_expired"            // MP-121
	MPCertOrgNo           = "mp.certificate_orgno"      // MP-122
	MPX5C                 = "mp.x5c"                    // MP-123
	MPSignature           = "mp.signature"              // MP-124
	MPGrantExpired        = "mp.grant_expired"          // MP-130
	MPInvalidParameter    = "mp.invalid_parameter"      // MP-011
	MPJTIReused           = "mp.jti_reused"             // MP-012
	MPScopeNotOnClient    = "mp.scope_not_on_client"    // MP-200
	MPScopeNotMaskinport  = "mp.scope_not_maskinporten" // MP-201
	MPScopeNotGranted     = "mp.scope_not_granted"      // MP-250
	MPScopeNotDelegated   = "mp.scope_not_delegated"    // MP-251
	MPAuthorizationDetail = "mp.authorization_details"  // MP-301..303
	MPUnknownKid          = "mp.unknown_kid"
	MPKidRequired         = "mp.kid_required"
	MPKidOrX5C            = "mp.kid_or_x5c"
	MPAlgorithm           = "mp.algorithm"
	MPUnknownClaims       = "mp.unknown_claims"
	MPLifetime            = "mp.lifetime"
	MPClockAhead          = "mp.clock_ahead"
	MPClockBehind         = "mp.clock_behind"
	MPNotYetValid         = "mp.not_yet_valid"
	MPMissingClaim        = "mp.missing_claim"
	MPConsumerOrgOwn      = "mp.consumer_org_own"
	MPGrantType           = "mp.grant_type"
	MPServerError         = "mp.server_error"
	MPUnreadable          = "mp.unreadable"
	MPOther               = "mp.other"

	GrantMalformed        = "grant.malformed"
	GrantAlgorithm        = "grant.algorithm"
	GrantKidAndX5C        = "grant.kid_and_x5c"
	GrantNoKidOrX5C       = "grant.no_kid_or_x5c"
	GrantKidUnknown       = "grant.kid_unknown"
	GrantKeyNotKept       = "grant.key_not_kept"
	GrantKeyExpired       = "grant.key_expired"
	GrantKeyExpiring      = "grant.key_expiring"
	GrantSignature        = "grant.signature_mismatch"
	GrantKeyCertificate   = "grant.key_certificate"
	GrantX5CWithKeys      = "grant.x5c_with_keys"
	GrantX5CInvalid       = "grant.x5c_invalid"
	GrantCertExpired      = "grant.certificate_expired"
	GrantCertNotYetValid  = "grant.certificate_not_yet_valid"
	GrantCertOrgNo        = "grant.certificate_orgno"
	GrantIssuer           = "grant.iss"
	GrantAudOtherEnv      = "grant.aud_other_env"
	GrantAudTokenURL      = "grant.aud_token_url"
	GrantAudSlash         = "grant.aud_slash"
	GrantAudWrong         = "grant.aud_wrong"
	GrantAudMissing       = "grant.aud_missing"
	GrantTimesMissing     = "grant.times_missing"
	GrantLifetime         = "grant.lifetime"
	GrantExpBeforeIat     = "grant.exp_before_iat"
	GrantExpired          = "grant.expired"
	GrantIatFuture        = "grant.iat_future"
	GrantIatOld           = "grant.iat_old"
	GrantJTIMissing       = "grant.jti_missing"
	GrantScopeMissing     = "grant.scope_missing"
	GrantScopeNotOnClient = "grant.scope_not_on_client"
	GrantScopeNotUsable   = "grant.scope_not_usable"
	GrantUnknownClaims    = "grant.unknown_claims"
	GrantResource         = "grant.resource"
	GrantConsumerOrg      = "grant.consumer_org"

	TokenNarrowed      = "token.narrowed"
	TokenNoServiceOwn  = "token.no_serviceowner_scope"
	ExchangeExpired    = "exchange.token_expired"
	ExchangeOtherEnv   = "exchange.other_env"
	ExchangeRefused    = "exchange.unauthorized"
	ExchangeNoOrg      = "exchange.no_org"
	ExchangeProvider   = "exchange.provider"
	ExchangeGone       = "exchange.gone"
	ExchangeNoConsumer = "exchange.no_consumer"

	StorageNoOrgClaim   = "storage.no_org_claim"
	StorageOrgOrApp     = "storage.org_or_app"
	StorageAppRequired  = "storage.app_required"
	StorageDateFilter   = "storage.date_filter"
	StorageBadRequest   = "storage.bad_request"
	StorageNoReadScope  = "storage.no_read_scope"
	StorageOtherOrg     = "storage.other_org"
	StorageForbidden    = "storage.forbidden"
	StorageUnauthorized = "storage.unauthorized"
	StorageNotFound     = "storage.not_found"

	UpstreamTimeout     = "upstream.timeout"
	UpstreamUnreachable = "upstream.unreachable"
	UpstreamServerError = "upstream.server_error"
	UpstreamUnreadable  = "upstream.unreadable"
	UpstreamCircuitOpen = "upstream.circuit_open"
)

// HasFinding reports whether fs holds a finding with code.
func HasFinding(fs []Finding, code string) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Code == code })
}
