package tryit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
)

// mpByCode explains Maskinporten's catalogued errors (reference §1.8).
var mpByCode = map[string]Finding{
	"MP-100": {Code: MPClientUnknown, Title: "Maskinporten does not know the client",
		Cause: "The client id in the grant's iss is unknown in this environment: misspelt, deleted or deactivated, or registered in the other environment (tt02 clients exist only in test, production clients only in production).",
		Fix:   "Put the integration's client id in iss and send the grant to the environment the integration lives in."},
	"MP-110": {Code: MPAudience, Title: "The grant's aud is wrong",
		Cause: "aud must be exactly this environment's Maskinporten issuer, with its trailing slash; not the token endpoint and not the other environment's issuer.",
		Fix:   "Set aud to the issuer shown for this environment."},
	"MP-120": {Code: MPCertificate, Title: "The certificate is not accepted",
		Cause: "The business certificate in x5c is expired, not yet valid, revoked, or from the wrong environment (test certificates are refused in production and the other way round).",
		Fix:   "Sign with a valid business certificate for this environment."},
	"MP-121": {Code: MPKeyExpired, Title: "The key has expired",
		Cause: "The key named by kid is registered on the client but past its expiry; Digdir keeps a key for one year after it is posted.",
		Fix:   "Add a new key to the integration (rotate), sign with it, and remove the expired one."},
	"MP-122": {Code: MPCertOrgNo, Title: "The certificate belongs to another organisation",
		Cause: "The business certificate's organisation number differs from the client's organisation.",
		Fix:   "Sign with the business certificate of the organisation that owns the client."},
	"MP-123": {Code: MPX5C, Title: "The x5c header is invalid",
		Cause: "x5c must be a JSON array of base64 (not base64url) DER certificates, leaf first.",
		Fix:   `Send "x5c": ["<leaf>", "<intermediate>"].`},
	"MP-124": {Code: MPSignature, Title: "The grant's signature is invalid",
		Cause: "The grant was signed with another private key than the one registered under its kid (or the certificate in x5c), signed with a key shorter than 2048 bits, or changed after signing.",
		Fix:   "Sign with the private key that matches the registered kid, and send the grant exactly as signed."},
	"MP-130": {Code: MPGrantExpired, Title: "The grant has expired",
		Cause: "exp was already past when Maskinporten read the grant: it was sent late or twice, or the signing machine's clock is behind.",
		Fix:   "Sign a fresh grant right before each token request and keep the signing machine's clock synchronised."},
	"MP-011": {Code: MPInvalidParameter, Title: "A grant value is invalid",
		Cause: "The grant cannot be read, or a claim has the wrong form (resource must be an array, consumer_org nine digits).",
		Fix:   "Check the grant's claims against Digdir's list; the local checks below point at the one at fault."},
	"MP-012": {Code: MPJTIReused, Title: "The grant was used before",
		Cause: "Maskinporten has already seen a grant with this jti; a grant can be used once.",
		Fix:   "Sign a new grant, with a new random jti, for every token request; never resend one."},
	"MP-200": {Code: MPScopeNotOnClient, Title: "A scope is not registered on the client",
		Cause: "Maskinporten issues only scopes that are registered on the client.",
		Fix:   "Ask only for the client's scopes, or add the scope to the integration first (it takes up to two minutes to reach Maskinporten)."},
	"MP-201": {Code: MPScopeNotMaskinport, Title: "A scope cannot be used with Maskinporten",
		Cause: "The scope is not allowed for the client's integration type (for example an ID-porten-only scope).",
		Fix:   "Remove the scope from the request and from the integration."},
	"MP-250": {Code: MPScopeNotGranted, Title: "The organisation has no access to a scope",
		Cause: "The scope is on the client, but its owner has not granted the organisation access to it in this environment.",
		Fix:   "Ask the scope's owner for access (Digdir for altinn:serviceowner/*); test and production are granted separately."},
	"MP-251": {Code: MPScopeNotDelegated, Title: "The consumer has not delegated the scope to you",
		Cause: "With consumer_org, the consumer must have delegated the scope to your organisation in Altinn; delegations made in tt02 do not apply.",
		Fix:   "Ask the consumer to delegate the scope to your organisation, or leave consumer_org out."},
	"MP-301": {Code: MPAuthorizationDetail, Title: "Unknown authorization_details type",
		Fix: "Use urn:altinn:systemuser or urn:altinn:consent, or leave authorization_details out."},
	"MP-302": {Code: MPAuthorizationDetail, Title: "Unknown fields in authorization_details",
		Fix: "Send only the fields the type documents."},
	"MP-303": {Code: MPAuthorizationDetail, Title: "Invalid authorization_details values",
		Fix: "Check the system user or consent named in authorization_details."},
}

// mpCodeByText recognises catalogued errors whose error_uri was lost (pasted without it, or
// older answers), by their description.
var mpCodeByText = []struct{ text, code string }{
	{"expired key", "MP-121"},
	{"invalid jwt claim aud", "MP-110"},
	{"signed with an invalid certificate", "MP-120"},
	{"invalid organization number", "MP-122"},
	{"invalid jwt header x5c", "MP-123"},
	{"invalid jwt signature", "MP-124"},
	{"jwt is expired", "MP-130"},
	{"grant is used before", "MP-012"},
	{"invalid scopes for client", "MP-200"},
	{"not allowed for maskinporten", "MP-201"},
	{"has not been granted access", "MP-250"},
	{"has not delegated access", "MP-251"},
	{"unknown authorization details type", "MP-301"},
	{"unknown fields in the authorization details", "MP-302"},
	{"invalid authorization details values", "MP-303"},
	{"invalid parameter value", "MP-011"},
}

// mpByText explains refusals that come without an MP code, by their description.
var mpByText = []struct {
	text string
	f    Finding
}{
	{"unknown key identifier", Finding{Code: MPUnknownKid, Title: "The kid is not registered on the client",
		Cause: "Maskinporten found no key with the grant's kid among the client's keys: a typo, a key from another client or environment, or a key added less than two minutes ago.",
		Fix:   "Sign with one of the client's keys, or add the key to the integration and wait up to two minutes."}},
	{"requires pre-registered jwk", Finding{Code: MPKidRequired, Title: "The client has keys, so the grant must name one in kid",
		Cause: "A client with registered keys cannot use a business certificate in x5c.",
		Fix:   "Sign with one of the client's keys and put its kid in the header."}},
	{"either kid or x5c", Finding{Code: MPKidOrX5C, Title: "The header needs exactly one of kid and x5c",
		Fix: "Send kid for a registered key, or x5c for a business certificate, not both and not neither."}},
	{"unsupported signing algorithm", Finding{Code: MPAlgorithm, Title: "The signing algorithm is not accepted",
		Fix: "Sign with RS256, RS384 or RS512."}},
	{"unknown claims", Finding{Code: MPUnknownClaims, Title: "The grant has claims Maskinporten does not accept",
		Fix: "Send only the documented claims: aud, iss, iat, exp, jti, scope and the optional resource, consumer_org, pid."}},
	{"exp - iat", Finding{Code: MPLifetime, Title: "The grant lives longer than 120 seconds",
		Cause: "Maskinporten accepts exp - iat of at most 120 seconds.",
		Fix:   "Set exp to iat plus at most 120 seconds."}},
	{"exp is not after iat", Finding{Code: MPLifetime, Title: "exp is not after iat",
		Fix: "Set exp to iat plus at most 120 seconds."}},
	{"issue time is after now", Finding{Code: MPClockAhead, Title: "iat is in the future for Maskinporten",
		Cause: "The clock of the machine that signed the grant is more than 10 seconds ahead of Maskinporten's.",
		Fix:   "Synchronise the signing machine's clock with NTP."}},
	{"issue time is more than", Finding{Code: MPClockBehind, Title: "iat is too old for Maskinporten",
		Cause: "iat was more than 10 seconds before Maskinporten's clock: the signing machine's clock is behind, or the grant waited before it was sent.",
		Fix:   "Sign right before sending and synchronise the signing machine's clock with NTP."}},
	{"not yet valid", Finding{Code: MPNotYetValid, Title: "The grant is not valid yet (nbf)",
		Fix: "Leave nbf out, or set it to the time of signing."}},
	{"missing claim", Finding{Code: MPMissingClaim, Title: "The grant lacks a required claim",
		Fix: "Send aud, iss, iat, exp, scope (and jti)."}},
	{"missing or invalid claim", Finding{Code: MPMissingClaim, Title: "The grant lacks a required claim, or it is not a number",
		Fix: "Send iat and exp as NumericDates: seconds since 1970, as numbers."}},
	{"missing scope", Finding{Code: MPMissingClaim, Title: "The grant asks for no scope",
		Fix: "Put one or more of the client's scopes in scope."}},
	{"consumer_org in claim and delegation scope", Finding{Code: MPConsumerOrgOwn, Title: "consumer_org cannot be used this way",
		Cause: "consumer_org is the client's own organisation, or the scope cannot be delegated.",
		Fix:   "Leave consumer_org out when the organisation asks for itself."}},
	{"unsupported grant type", Finding{Code: MPGrantType, Title: "The grant type is wrong",
		Fix: "Send grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer."}},
}

// ExplainMaskinporten explains a token endpoint refusal, then adds what the local checks of the
// grant that was sent found (grant may be "" when it is unknown).
func ExplainMaskinporten(e *maskinporten.Error, grant string, c Context) []Finding {
	var fs []Finding
	ref := e.MPCode
	if e.URI != "" {
		ref = strings.TrimSpace(e.MPCode + " " + e.URI)
	}
	msg := e.Message()
	said := "Maskinporten answered"
	if e.Status != 0 {
		said += " " + strconv.Itoa(e.Status)
	}
	if e.Code != "" {
		said += " " + e.Code
	}
	if msg != "" {
		said += ": " + strconv.Quote(msg)
	}
	said += "."
	code := e.MPCode
	lowerMsg := strings.ToLower(msg)
	if code == "" {
		for _, m := range mpCodeByText {
			if strings.Contains(lowerMsg, m.text) {
				code = m.code
				break
			}
		}
		if strings.TrimSuffix(lowerMsg, ".") == "invalid assertion. client authentication failed" {
			code = "MP-100"
		}
		if code != "" && ref == "" {
			ref = code
		}
	}
	f, ok := mpByCode[code]
	if !ok {
		for _, m := range mpByText {
			if strings.Contains(lowerMsg, m.text) {
				f, ok = m.f, true
				break
			}
		}
	}
	switch {
	case ok:
	case e.Status >= 500:
		f = Finding{Code: MPServerError, Title: fmt.Sprintf("Maskinporten failed (%d)", e.Status),
			Cause: "The token endpoint had a problem of its own; the grant may be fine.",
			Fix:   "Try again in a moment with a new grant. If it persists, check Digdir's status page."}
	case e.Status == http.StatusNotFound && e.Code == "":
		where := "The token endpoint URL"
		if c.TokenURL != "" {
			where += " (" + c.TokenURL + ")"
		}
		f = Finding{Code: MPUnreadable, Title: "Nothing answered as Maskinporten at the token endpoint (404)",
			Cause: where + " is probably wrong: Maskinporten answers every refusal with an OAuth error, never with a bare 404. An issuer with a wrong path (not ending in the host's root, or without its trailing slash) leads here.",
			Fix:   "Check the environment's maskinporten_issuer: the token endpoint is the issuer followed by token, e.g. https://test.maskinporten.no/token."}
	case e.Code == "" && e.Body != "":
		f = Finding{Code: MPUnreadable, Title: fmt.Sprintf("The token endpoint answered %d with something else than Maskinporten's JSON", e.Status),
			Cause: "A proxy, firewall or wrong URL answered instead of Maskinporten: " + e.Body,
			Fix:   "Check the token endpoint URL and any proxy between the portal and Maskinporten."}
	default:
		f = Finding{Code: MPOther, Title: fmt.Sprintf("Maskinporten refused the grant (%s)", e.Code),
			Fix: "Read Maskinporten's description; the local checks below may point at the cause."}
	}
	if code == "MP-100" && grant != "" {
		// The grant's aud tells which environment it was made for: a client unknown here but
		// made for the other environment's issuer most likely lives there.
		if d, err := maskinporten.Decode(grant); err == nil {
			if auds := d.Audience(); len(auds) == 1 && slices.Contains(c.OtherIssuers, auds[0]) {
				f.Title = "Maskinporten does not know the client here: the grant was made for another environment"
				f.Cause = fmt.Sprintf("The grant's aud is %s, another environment's issuer, while it was sent to %s (issuer %s). The client and its key probably belong to that environment; clients exist in one environment only.",
					auds[0], envName(c.Env), c.Issuer)
				f.Fix = fmt.Sprintf("Send the grant to the environment whose issuer is %s, or use a client registered in %s and set aud to %q.", auds[0], envName(c.Env), c.Issuer)
			}
		}
	}
	f.Severity = SeverityError
	f.Cause = strings.TrimSpace(said + " " + f.Cause)
	if e.TraceID != "" {
		f.Cause += " Trace id for Digdir's support: " + e.TraceID + "."
	} else if e.CorrelationID != "" {
		f.Cause += " Correlation id for Digdir's support: " + e.CorrelationID + "."
	}
	if f.Ref == "" {
		f.Ref = ref
	}
	fs = append(fs, f)
	if grant != "" {
		for _, g := range CheckGrant(grant, c) {
			if g.Severity != SeverityInfo {
				fs = append(fs, g)
			}
		}
	}
	return fs
}

// ExplainExchange explains a refusal of the Altinn token exchange; mpToken is the
// Maskinporten token that was sent ("" when unknown).
func ExplainExchange(e *altinn.Error, mpToken string, c Context) []Finding {
	said := fmt.Sprintf("The exchange answered %d%s.", e.Status, problemText(e))
	switch e.Status {
	case http.StatusUnauthorized:
		return append([]Finding{{Code: ExchangeRefused, Severity: SeverityError, Title: "Altinn did not accept the Maskinporten token",
			Cause: said + " Altinn checks the token's signature against Maskinporten's keys, its expiry (10 s of skew) and that iss is the Maskinporten environment this Altinn environment trusts, and reads the organisation from the consumer claim.",
			Fix:   "Use a fresh token from this environment's Maskinporten (tt02 pairs with test.maskinporten.no, production with maskinporten.no)."}},
			explainMPToken(mpToken, c)...)
	case http.StatusBadRequest:
		if e.Text != "" && strings.Contains(e.Text, "token provider") {
			return []Finding{{Code: ExchangeProvider, Severity: SeverityError, Title: "The exchange URL names an unknown token provider",
				Cause: said, Fix: "Call /authentication/api/v1/exchange/maskinporten."}}
		}
	case http.StatusGone:
		return []Finding{{Code: ExchangeGone, Severity: SeverityError, Title: "Enterprise user (virksomhetsbruker) login is gone",
			Cause: said, Fix: "Leave out the X-Altinn-EnterpriseUser-Authentication header; use a system user or ID-porten where a person is needed."}}
	}
	return []Finding{transportOrStatus(e, said)}
}

// explainMPToken looks at the Maskinporten token an exchange refused.
func explainMPToken(tok string, c Context) []Finding {
	if tok == "" {
		return nil
	}
	d, err := maskinporten.Decode(tok)
	if err != nil {
		return []Finding{{Code: ExchangeRefused, Severity: SeverityError, Title: "The token is not a JWT",
			Fix: "Send the access_token from Maskinporten's response, whole and unchanged."}}
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	var fs []Finding
	if exp, ok := d.ClaimTime("exp"); ok && !exp.After(now.Add(-10*time.Second)) {
		fs = append(fs, Finding{Code: ExchangeExpired, Severity: SeverityError, Title: "The Maskinporten token has expired (" + exp.Format(time.RFC3339) + ")",
			Cause: "Altinn refuses an expired token (it allows 10 seconds of clock skew).",
			Fix:   "Get a new Maskinporten token and exchange it at once."})
	}
	iss, _ := d.ClaimString("iss")
	if c.Issuer != "" && iss != c.Issuer {
		where := "another Maskinporten"
		if slices.Contains(c.OtherIssuers, iss) {
			where = "the other environment's Maskinporten"
		}
		fs = append(fs, Finding{Code: ExchangeOtherEnv, Severity: SeverityError, Title: fmt.Sprintf("The token comes from %s (%s)", where, iss),
			Cause: fmt.Sprintf("This Altinn environment trusts tokens from %s only.", c.Issuer),
			Fix:   "Get the token from the Maskinporten environment that pairs with this Altinn environment."})
	}
	if _, ok := d.ConsumerOrg(); !ok {
		fs = append(fs, Finding{Code: ExchangeNoConsumer, Severity: SeverityError, Title: "The token has no usable consumer claim",
			Cause: `Altinn reads the organisation from consumer {"authority":"iso6523-actorid-upis","ID":"0192:<orgno>"}.`,
			Fix:   "Use a Maskinporten access token, not a grant or another issuer's token."})
	}
	return fs
}

// CheckAltinnToken says what an Altinn token that the exchange issued means for Storage.
func CheckAltinnToken(tok string) []Finding {
	d, err := maskinporten.Decode(tok)
	if err != nil {
		return nil
	}
	if org, ok := d.ClaimString("urn:altinn:org"); ok && org != "" {
		return nil
	}
	scope, _ := d.ClaimString("scope")
	orgNo, _ := d.ClaimString("urn:altinn:orgNumber")
	f := Finding{Code: ExchangeNoOrg, Severity: SeverityWarning, Title: "The Altinn token has no urn:altinn:org",
		Fix: "Ask for altinn:serviceowner/instances.read (and .write) in the grant; the organisation must be a service owner in Altinn's org registry."}
	if !strings.Contains(scope, "altinn:serviceowner") {
		f.Cause = "Altinn adds urn:altinn:org only when the token's scope contains altinn:serviceowner, and this token's scope is " + quoteOrNone(scope) +
			". Without the claim, Storage does not treat the caller as a service owner: listing instances answers 400, reading them 403."
	} else {
		f.Cause = fmt.Sprintf("The scope has altinn:serviceowner, but organisation %s is not a service owner in Altinn's org registry (altinn-orgs.json). Without the claim, Storage answers 400 or 403.", orgNo)
		f.Fix = "Only organisations registered as service owners in Altinn get urn:altinn:org; ask Altinn (or use ?test=true as Digdir in tt02 to act as ttd)."
	}
	return []Finding{f}
}

// ExplainStorage explains a Storage refusal; altinnToken is the token that was sent and q the
// query, when known.
func ExplainStorage(e *altinn.Error, altinnToken string, q *altinn.InstanceQuery) []Finding {
	said := fmt.Sprintf("Storage answered %d%s.", e.Status, problemText(e))
	var org, scope string
	if d, err := maskinporten.Decode(altinnToken); err == nil {
		org, _ = d.ClaimString("urn:altinn:org")
		scope, _ = d.ClaimString("scope")
	}
	text := e.Text
	if e.Problem != nil && e.Problem.Detail != "" {
		text = e.Problem.Detail
	}
	switch e.Status {
	case http.StatusBadRequest:
		switch {
		case strings.Contains(text, "Org or AppId must be defined"):
			return []Finding{{Code: StorageOrgOrApp, Severity: SeverityError, Title: "Storage needs an appId or an org",
				Cause: said, Fix: "Give appId ({org}/{app}) or org in the query."}}
		case strings.Contains(text, "AppId must be defined"):
			return []Finding{{Code: StorageAppRequired, Severity: SeverityError, Title: "Reading another organisation's instances needs an appId",
				Cause: said + " The org asked for is not the token's own (" + quoteOrNone(org) + ").",
				Fix:   "Ask for your own org, or give the other organisation's appId (and have its app's policy allow you)."}}
		case strings.Contains(text, "Invalid date expression"):
			return []Finding{{Code: StorageDateFilter, Severity: SeverityError, Title: "A date filter is invalid",
				Cause: said, Fix: "Write date filters as <op>:<date>, with op gt, gte, lt, lte or eq, e.g. gte:2025-01-01."}}
		case org == "":
			return []Finding{{Code: StorageNoOrgClaim, Severity: SeverityError, Title: "Storage does not see a service owner in the Altinn token",
				Cause: said + " The Altinn token has no urn:altinn:org, so Storage cannot tell whose instances to list.",
				Fix:   "Ask for altinn:serviceowner/instances.read in the grant and exchange the new token; the organisation must be a service owner in Altinn."}}
		}
		return []Finding{{Code: StorageBadRequest, Severity: SeverityError, Title: "Storage refused the query", Cause: said,
			Fix: "Check the query's parameters against Storage's documentation."}}
	case http.StatusForbidden:
		if !strings.Contains(scope, "altinn:serviceowner/instances.read") && altinnToken != "" {
			return []Finding{{Code: StorageNoReadScope, Severity: SeverityError, Title: "The token lacks altinn:serviceowner/instances.read",
				Cause: said + " Storage lets service owners read instances only with the read scope; this token has " + quoteOrNone(scope) + ".",
				Fix:   "Add altinn:serviceowner/instances.read to the integration (and the grant), then get new tokens."}}
		}
		if q != nil {
			want := q.Org
			if want == "" {
				want, _, _ = strings.Cut(q.AppID, "/")
			}
			if want != "" && org != "" && !strings.EqualFold(want, org) {
				return []Finding{{Code: StorageOtherOrg, Severity: SeverityError, Title: fmt.Sprintf("%s's apps are not yours (you are %s)", want, org),
					Cause: said + " A service owner reads its own apps' instances; another organisation's app must permit it in its policy.",
					Fix:   fmt.Sprintf("Ask for an app of %s, or ask %s to permit your organisation.", org, want)}}
			}
		}
		return []Finding{{Code: StorageForbidden, Severity: SeverityError, Title: "Storage did not permit the read",
			Cause: said + " The app's policy does not let this organisation read it.",
			Fix:   "Check that the app belongs to your organisation and that its policy lets the service owner read."}}
	case http.StatusUnauthorized:
		return []Finding{{Code: StorageUnauthorized, Severity: SeverityError, Title: "Storage did not accept the Altinn token",
			Cause: said + " Altinn tokens live 30 minutes and are valid only in the Altinn environment that issued them.",
			Fix:   "Exchange a new Maskinporten token for a fresh Altinn token."}}
	case http.StatusNotFound:
		return []Finding{{Code: StorageNotFound, Severity: SeverityError, Title: "Storage has no such instance or data element",
			Cause: said, Fix: "Pick an instance from the list; ids are {partyId}/{instanceGuid}."}}
	}
	return []Finding{transportOrStatus(e, said)}
}

func transportOrStatus(e *altinn.Error, said string) Finding {
	if e.Status >= 500 {
		return Finding{Code: UpstreamServerError, Severity: SeverityError, Title: fmt.Sprintf("Altinn failed (%d)", e.Status),
			Cause: said + " The platform had a problem of its own; the request may be fine.",
			Fix:   "Try again in a moment. If it persists, check Altinn's status page."}
	}
	return Finding{Code: StorageBadRequest, Severity: SeverityError, Title: fmt.Sprintf("Altinn refused the request (%d)", e.Status), Cause: said}
}

func problemText(e *altinn.Error) string {
	switch {
	case e.Problem != nil && e.Problem.Detail != "":
		return ": " + e.Problem.Title + ": " + e.Problem.Detail
	case e.Problem != nil && e.Problem.Title != "":
		return " " + e.Problem.Title
	case e.Text != "":
		return `: "` + e.Text + `"`
	}
	return " with an empty body"
}

// ExplainTransport explains a call that got no usable answer: a timeout, a refused or reset
// connection, a 5xx after the retries, or a body that could not be read. who names the
// upstream ("Maskinporten", "Altinn's exchange", "Storage"); took is how long the step waited.
func ExplainTransport(err error, who string, took time.Duration) Finding {
	var ne net.Error
	var open *maskinporten.CircuitOpenError
	switch {
	case errors.As(err, &open):
		return Finding{Code: UpstreamCircuitOpen, Severity: SeverityError,
			Title: open.Error(),
			Cause: "Its last calls all failed (timeouts, refused or reset connections, or server errors), so the portal stopped sending it requests for a while instead of making every step wait for its timeout. This step was not sent.",
			Fix:   fmt.Sprintf("Try again in %d s, when the portal sends it one call to see whether it has recovered; if it keeps failing, check the upstream's status page.", max(1, int(math.Ceil(open.RetryIn.Seconds()))))}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return Finding{Code: UpstreamTimeout, Severity: SeverityError,
			Title: fmt.Sprintf("%s did not answer within %s", who, took.Round(100*time.Millisecond)),
			Cause: "The portal gives up on a call after its timeout, so nothing hangs. The upstream is slow or unreachable from the portal.",
			Fix:   "Try again in a moment; if it keeps timing out, check the upstream's status page and the network between the portal and it."}
	case errors.Is(err, context.Canceled):
		return Finding{Code: UpstreamTimeout, Severity: SeverityError, Title: "The request was cancelled",
			Cause: "The run was stopped (the page was left, or the whole run's time limit passed) before " + who + " answered.",
			Fix:   "Run the step again."}
	case strings.Contains(err.Error(), "upstream answered 5"):
		return Finding{Code: UpstreamServerError, Severity: SeverityError, Title: who + " kept failing with a server error",
			Cause: "Every attempt, retries included, got a 5xx answer.",
			Fix:   "Try again in a moment. If it persists, check the upstream's status page."}
	case strings.Contains(err.Error(), "decode response") || strings.Contains(err.Error(), "not a JWT") ||
		strings.Contains(err.Error(), "read response"):
		return Finding{Code: UpstreamUnreadable, Severity: SeverityError, Title: who + " gave an answer the portal cannot read",
			Cause: "The answer was cut short or was not what the protocol says (" + err.Error() + ").",
			Fix:   "Try again; if it persists, a proxy may be rewriting answers."}
	}
	return Finding{Code: UpstreamUnreachable, Severity: SeverityError, Title: who + " could not be reached",
		Cause: "The connection failed: " + err.Error() + ".",
		Fix:   "Check the environment's URL and the network (DNS, proxy, firewall) between the portal and the upstream."}
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return strconv.Quote(s)
}
