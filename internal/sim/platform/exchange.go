package platform

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// altinnTokenLifetime is JwtValidityMinutes in altinn-authentication's appsettings.
const altinnTokenLifetime = 30 * time.Minute

// exchangeSkew is the clock skew the exchange allows on the Maskinporten token's lifetime.
const exchangeSkew = 10 * time.Second

// exchange serves GET /authentication/api/v1/exchange/{tokenProvider} (reference §3).
func (p *Platform) exchange(w http.ResponseWriter, r *http.Request, provider string) {
	q := parseQuery(r.URL.RawQuery)
	// [FromQuery] bool test: a value that is not a boolean fails model binding before the action.
	test := false
	if v, ok := q.first("test"); ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			test = true
		case "false":
		case "":
			writeValidationProblem(w, map[string][]string{"test": {"The value '' is invalid."}})
			return
		default:
			writeValidationProblem(w, map[string][]string{"test": {fmt.Sprintf("The value '%s' is not valid.", v)}})
			return
		}
	}

	// The token is read before the provider is looked at, so a missing token is 401 even for an
	// unknown provider.
	token := ""
	if auth := r.Header.Get("Authorization"); len(auth) >= 7 && strings.EqualFold(auth[:7], "Bearer ") {
		token = strings.TrimSpace(auth[7:])
	}
	if token == "" || !canReadToken(token) {
		p.exchangeUnauthorized(w)
		return
	}
	switch strings.ToLower(provider) {
	case "maskinporten":
	case "id-porten", "altinnstudio":
		// Known providers the simulator does not issue tokens for: their validation fails.
		p.exchangeUnauthorized(w)
		return
	default:
		writeText(w, http.StatusBadRequest, fmt.Sprintf(
			"Invalid token provider: %s. Trusted token providers are 'Maskinporten', 'Id-porten' and 'AltinnStudio'.", provider))
		return
	}

	altinnToken, status, err := p.exchangeMaskinporten(r, token, test)
	switch {
	case status == http.StatusGone:
		writeJSONAs(w, http.StatusGone, "application/problem+json; charset=utf-8", map[string]any{
			"type":   "https://docs.altinn.studio",
			"title":  "Virksomhetsbruker is no longer available",
			"status": http.StatusGone,
			"detail": "Virksomhetsbruker (enterprise user) is no longer available. It has been replaced by Systembruker (system user) or ID-porten, depending on the use case. See https://docs.altinn.studio for migration guidance.",
		})
	case err != nil:
		p.exchangeUnauthorized(w)
	default:
		writeText(w, http.StatusOK, altinnToken)
	}
}

func (p *Platform) exchangeUnauthorized(w http.ResponseWriter) {
	if p.cfg.Options.ExchangeEmptyErrors {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	writeProblem(w, http.StatusUnauthorized)
}

// canReadToken is JwtSecurityTokenHandler.CanReadToken: a bounded JWS or JWE in compact form.
func canReadToken(t string) bool {
	if len(t) > 250*1024 {
		return false
	}
	parts := strings.Split(t, ".")
	if len(parts) != 3 && len(parts) != 5 {
		return false
	}
	for i, part := range parts {
		if part == "" && !(len(parts) == 3 && i == 2) && !(len(parts) == 5 && i == 1) {
			return false
		}
		for j := 0; j < len(part); j++ {
			c := part[j]
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// exchangeMaskinporten validates a Maskinporten token and mints the Altinn token. Any failure
// is a 401, as the real controller's catch-all makes it.
func (p *Platform) exchangeMaskinporten(r *http.Request, token string, test bool) (string, int, error) {
	ctx := r.Context()
	set, err := p.cfg.MaskinportenKeys(ctx)
	if err != nil {
		return "", http.StatusUnauthorized, fmt.Errorf("maskinporten keys: %w", err)
	}
	now := p.now()
	mp, err := verifyJWT(token, set.Keys, now, exchangeSkew)
	if err != nil {
		return "", http.StatusUnauthorized, err
	}
	// Issuer and audience are not validated by the library; the issuer only has to be a
	// substring of the configured metadata URL.
	iss, ok := mp.str("iss")
	metadataURL := p.cfg.MaskinportenIssuer + ".well-known/oauth-authorization-server"
	if !ok || !strings.Contains(metadataURL, iss) {
		return "", http.StatusUnauthorized, errors.New("issuer not accepted")
	}
	orgNo, err := consumerOrgNumber(mp)
	if err != nil {
		return "", http.StatusUnauthorized, err
	}

	issuer := p.Issuer()
	var added claims
	if scope, _ := mp.str("scope"); strings.Contains(scope, "altinn:serviceowner") {
		owners, err := p.cfg.ServiceOwners(ctx)
		if err != nil {
			return "", http.StatusUnauthorized, fmt.Errorf("org registry: %w", err)
		}
		org := ""
		for _, o := range owners {
			if o.OrgNo == orgNo {
				org = o.Code
				break
			}
		}
		if org == "digdir" && test {
			org = "ttd"
		}
		if org != "" {
			added = added.set("urn:altinn:org", org)
		}
	}
	if r.Header.Get("X-Altinn-EnterpriseUser-Authentication") != "" {
		return "", http.StatusGone, errors.New("enterprise user authentication is gone")
	}
	added = added.set("urn:altinn:orgNumber", orgNo)
	added = added.set("urn:altinn:authenticatemethod", "maskinporten")
	added = added.set("urn:altinn:authlevel", 3)

	out := mp.without("aud", "iss", "client_amr", "sid")
	if !p.cfg.Options.ExchangeSID {
		out = out.without("jti")
	}
	out = append(out, added...)
	out = out.set("iss", issuer)
	if p.cfg.Options.ExchangeSID {
		out = out.set("sid", uuid.NewString())
	} else {
		out = out.set("jti", uuid.NewString())
	}
	// The token handler writes iat, nbf and exp from the descriptor, replacing copied values.
	issued := now.Unix()
	out = out.set("exp", now.Add(altinnTokenLifetime).Unix())
	out = out.set("iat", issued)
	out = out.set("nbf", issued)
	signed, err := p.signer.sign(out.marshal())
	if err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("exchange: %w", err)
	}
	return signed, http.StatusOK, nil
}

// consumerOrgNumber reads the organisation number from the ISO 6523 consumer claim.
func consumerOrgNumber(c claims) (string, error) {
	raw, ok := c.raw("consumer")
	if !ok {
		return "", errors.New("no consumer claim")
	}
	// The claim may arrive as an object or as a JSON string holding one.
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var consumer map[string]any
	if err := json.Unmarshal(raw, &consumer); err != nil {
		return "", fmt.Errorf("consumer claim: %w", err)
	}
	if a, _ := consumer["authority"].(string); a != "iso6523-actorid-upis" {
		return "", errors.New("consumer authority is not iso6523-actorid-upis")
	}
	id, ok := consumer["ID"].(string)
	if !ok {
		return "", errors.New("consumer claim has no ID")
	}
	parts := strings.Split(id, ":")
	if len(parts) < 2 || parts[1] == "" {
		return "", errors.New("consumer ID is not <icd>:<orgno>")
	}
	return parts[1], nil
}

// openIDConfiguration serves Altinn's discovery document (OpenIdController).
func (p *Platform) openIDConfiguration(w http.ResponseWriter) {
	base := p.cfg.BaseURL + "/authentication/api/v1/"
	writeJSON(w, http.StatusOK, struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		JwksURI               string   `json:"jwks_uri"`
		ResponseTypes         []string `json:"response_types_supported"`
		SubjectTypes          []string `json:"subject_types_supported"`
		IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
		EndSessionEndpoint    string   `json:"end_session_endpoint"`
	}{
		Issuer:                p.Issuer(),
		AuthorizationEndpoint: base + "authorize/",
		TokenEndpoint:         base + "token/",
		JwksURI:               p.Issuer() + ".well-known/openid-configuration/jwks",
		ResponseTypes:         []string{"token"},
		SubjectTypes:          []string{"pairwise"},
		IDTokenAlgs:           []string{"RS256"},
		EndSessionEndpoint:    base + "openid/logout/",
	})
}

// jwksDocument serves the JWKS as Altinn builds it from its certificates: kty, use, kid (the
// thumbprint), e and n in standard base64, and the x5c chain.
func (p *Platform) jwksDocument(w http.ResponseWriter) {
	enc := base64.StdEncoding.EncodeToString
	if p.cfg.Options.JWKSBase64URL {
		enc = base64.RawURLEncoding.EncodeToString
	}
	pub := p.cfg.SigningKey.PublicKey
	chain := make([]string, len(p.signer.certs))
	for i, c := range p.signer.certs {
		chain[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	type jwk struct {
		Kty string   `json:"kty"`
		Use string   `json:"use"`
		Kid string   `json:"kid"`
		E   string   `json:"e"`
		N   string   `json:"n"`
		X5c []string `json:"x5c"`
	}
	writeJSON(w, http.StatusOK, struct {
		Keys []jwk `json:"keys"`
	}{[]jwk{{
		Kty: "RSA",
		Use: "sig",
		Kid: p.signer.kid,
		E:   enc(big.NewInt(int64(pub.E)).Bytes()),
		N:   enc(pub.N.Bytes()),
		X5c: chain,
	}}})
}
