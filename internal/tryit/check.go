package tryit

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"portal/internal/maskinporten"
)

// clockTolerance is how far Maskinporten lets iat stray from its own clock (§1.4).
const clockTolerance = 10 * time.Second

// expiringSoon is when a key's coming expiry becomes worth a warning.
const expiringSoon = 14 * 24 * time.Hour

// knownGrantClaims are the claims Maskinporten documents (plus nbf and sub, which are
// tolerated); others may be refused with "Invalid assertion" (§1.4).
var knownGrantClaims = map[string]bool{
	"aud": true, "iss": true, "iat": true, "exp": true, "nbf": true, "jti": true, "scope": true,
	"resource": true, "pid": true, "consumer_org": true, "iss_onbehalfof": true,
	"authorization_details": true, "sub": true,
}

var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// CheckGrant runs the local checks on a grant (a compact JWS) against what the portal knows of
// the environment and the client: header, key and certificate, audience, times, jti and scopes.
// It returns what it found wrong or worth knowing; nothing means every check that could run
// passed.
func CheckGrant(grant string, c Context) []Finding {
	d, err := maskinporten.Decode(grant)
	if err != nil {
		return []Finding{{Code: GrantMalformed, Severity: SeverityError, Title: "The grant is not a signed JWT",
			Cause: strings.TrimPrefix(err.Error(), maskinporten.ErrMalformedJWT.Error()+": ") + ".",
			Fix:   "A grant is three base64url parts joined by dots (header.claims.signature), signed with the client's RSA key.",
			Ref:   "MP-011"}}
	}
	return checkDecoded(grant, d, c)
}

func checkDecoded(grant string, d *maskinporten.Decoded, c Context) []Finding {
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	var fs []Finding
	add := func(f Finding) { fs = append(fs, f) }

	// Header: algorithm, then exactly one of kid and x5c.
	hash, algOK := hashOf(d.Alg())
	if !algOK {
		add(Finding{Code: GrantAlgorithm, Severity: SeverityError, Title: fmt.Sprintf("The grant is signed with %q", d.Alg()),
			Cause: "Maskinporten accepts grants signed with RS256, RS384 or RS512 only.",
			Fix:   "Sign the grant with the client's RSA key using RS256."})
	}
	_, kidPresent := d.Header["kid"]
	chain, x5cPresent, x5cArray := d.X5C()
	switch {
	case kidPresent && x5cPresent:
		add(Finding{Code: GrantKidAndX5C, Severity: SeverityError, Title: "The grant's header has both kid and x5c",
			Cause: "Maskinporten wants exactly one of them: kid for a key registered on the client, x5c for a business certificate.",
			Fix:   "Send kid when the client has registered keys; send x5c only for a client without keys."})
	case !kidPresent && !x5cPresent:
		add(Finding{Code: GrantNoKidOrX5C, Severity: SeverityError, Title: "The grant's header has neither kid nor x5c",
			Cause: "Maskinporten cannot tell which key to check the signature with.",
			Fix:   "Put the kid of one of the client's keys in the header (or, for a client without keys, the business certificate chain in x5c)."})
	}
	signingInput, sig := splitSigned(grant)
	t := c.Target

	if kidPresent && t != nil {
		kid := d.Kid()
		key, ok := t.key(kid)
		switch {
		case !ok:
			known := "The client has no keys registered."
			if kids := t.kids(); len(kids) > 0 {
				known = "The client's keys are " + strings.Join(kids, ", ") + "."
			}
			add(Finding{Code: GrantKidUnknown, Severity: SeverityError, Title: fmt.Sprintf("kid %q is not registered on client %s", kid, t.ClientID),
				Cause: "Maskinporten looks the kid up among the keys registered on the client named in iss. " + known,
				Fix:   "Sign with one of the client's keys, or add this key to the integration first. A new key takes up to two minutes to reach Maskinporten."})
		default:
			if exp := key.Expires(); !exp.IsZero() && !exp.After(now) {
				add(Finding{Code: GrantKeyExpired, Severity: SeverityError, Title: fmt.Sprintf("Key %s expired %s", kid, exp.Format(time.RFC3339)),
					Cause: "Digdir keeps a key for one year after it is posted; after that Maskinporten refuses grants signed with it.",
					Fix:   "Add a new key to the integration (rotate), sign with it, and remove the expired one.", Ref: "MP-121"})
			} else if !exp.IsZero() && exp.Sub(now) < expiringSoon {
				add(Finding{Code: GrantKeyExpiring, Severity: SeverityWarning, Title: fmt.Sprintf("Key %s expires %s", kid, exp.Format(time.RFC3339)),
					Cause: "After that Maskinporten refuses grants signed with it.",
					Fix:   "Rotate the key before it expires."})
			}
			if pub := jwkPublic(key); pub != nil && algOK && sig != nil && !verify(pub, hash, signingInput, sig) {
				add(Finding{Code: GrantSignature, Severity: SeverityError, Title: fmt.Sprintf("The signature does not match key %s", kid),
					Cause: "The grant was signed with another private key than the one registered under this kid, or changed after signing.",
					Fix:   "Sign with the private key whose public half is registered as " + kid + ", and send the grant as signed.", Ref: "MP-124"})
			}
			if len(key.X5C) > 0 {
				fs = append(fs, checkKeyCertificate(key, now)...)
			}
		}
	}

	if x5cPresent {
		switch {
		case !x5cArray:
			add(Finding{Code: GrantX5CInvalid, Severity: SeverityError, Title: "x5c is not an array of strings",
				Cause: "Maskinporten wants x5c as a JSON array of base64 DER certificates, leaf first.",
				Fix:   `Send "x5c": ["<base64 leaf>", "<base64 intermediate>"], not a single string.`, Ref: "MP-123"})
		case t != nil && len(t.Keys) > 0:
			add(Finding{Code: GrantX5CWithKeys, Severity: SeverityError, Title: "The client has registered keys, so it must sign with kid",
				Cause: "Once a client has keys registered, Maskinporten only accepts grants naming one of them in kid.",
				Fix:   "Sign with one of the client's keys (" + strings.Join(t.kids(), ", ") + ") and put its kid in the header instead of x5c."})
		}
		if x5cArray {
			fs = append(fs, checkX5C(chain, t, now, hash, algOK, signingInput, sig)...)
		}
	}

	// Claims.
	iss, _ := d.ClaimString("iss")
	if t != nil && t.ClientID != "" && iss != t.ClientID {
		add(Finding{Code: GrantIssuer, Severity: SeverityError, Title: fmt.Sprintf("iss is %q, not the client id %s", iss, t.ClientID),
			Cause: "iss names the client the grant is for; Maskinporten answers MP-100 for a client it does not know.",
			Fix:   "Put the integration's client id in iss.", Ref: "MP-100"})
	}
	fs = append(fs, checkAudience(d, c)...)
	fs = append(fs, checkTimes(d, c, now)...)
	if jti, ok := d.ClaimString("jti"); !ok || strings.TrimSpace(jti) == "" {
		add(Finding{Code: GrantJTIMissing, Severity: SeverityWarning, Title: "The grant has no jti",
			Cause: "jti is a unique id per grant; Maskinporten uses it to refuse a grant sent twice (MP-012).",
			Fix:   "Give every grant a fresh random jti, such as a UUID."})
	}
	fs = append(fs, checkScopes(d, t)...)
	var unknown []string
	for name := range d.Claims {
		if !knownGrantClaims[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		add(Finding{Code: GrantUnknownClaims, Severity: SeverityWarning, Title: "Claims Maskinporten does not document: " + strings.Join(unknown, ", "),
			Cause: `Digdir says claims outside its list give 400 "Invalid assertion".`,
			Fix:   "Leave them out of the grant."})
	}
	if v, ok := d.Claims["resource"]; ok {
		if arr, isArr := v.([]any); !isArr || len(arr) == 0 || !allStrings(arr) {
			add(Finding{Code: GrantResource, Severity: SeverityError, Title: "resource is not an array of strings",
				Cause: "Maskinporten currently takes resource only as an array.",
				Fix:   `Send "resource": ["https://api.example.no/"].`, Ref: "MP-011"})
		}
	}
	if v, ok := d.Claims["consumer_org"]; ok {
		co, _ := v.(string)
		switch {
		case !isOrgNo(co):
			add(Finding{Code: GrantConsumerOrg, Severity: SeverityError, Title: "consumer_org is not a 9-digit organisation number",
				Cause: "consumer_org names the organisation a supplier acts for, as a string of 9 digits.",
				Fix:   "Send the consumer's organisation number as a string, or leave the claim out.", Ref: "MP-011"})
		case t != nil && t.OrgNo != "" && co == t.OrgNo:
			add(Finding{Code: GrantConsumerOrg, Severity: SeverityError, Title: "consumer_org is the client's own organisation",
				Cause: "consumer_org is for acting on behalf of another organisation through delegation; Maskinporten refuses the client's own number.",
				Fix:   "Leave consumer_org out when the organisation asks for itself."})
		}
	}
	return fs
}

func checkAudience(d *maskinporten.Decoded, c Context) []Finding {
	raw, present := d.Claims["aud"]
	auds := d.Audience()
	if !present || len(auds) == 0 {
		return []Finding{{Code: GrantAudMissing, Severity: SeverityError, Title: "The grant has no aud",
			Cause: "aud must be the Maskinporten issuer the grant is sent to.",
			Fix:   fmt.Sprintf("Set aud to %q.", c.Issuer), Ref: "MP-110"}}
	}
	if c.Issuer == "" {
		return nil
	}
	if arr, ok := raw.([]any); ok && len(arr) != 1 {
		return []Finding{{Code: GrantAudWrong, Severity: SeverityError, Title: fmt.Sprintf("aud holds %d values", len(arr)),
			Cause: "Maskinporten wants aud as one value: its issuer identifier.",
			Fix:   fmt.Sprintf("Set aud to %q.", c.Issuer), Ref: "MP-110"}}
	}
	aud := auds[0]
	switch {
	case aud == c.Issuer:
		return nil
	case slices.Contains(c.OtherIssuers, aud):
		return []Finding{{Code: GrantAudOtherEnv, Severity: SeverityError, Title: fmt.Sprintf("aud is another environment's issuer (%s)", aud),
			Cause: fmt.Sprintf("The grant was made for another Maskinporten environment than %s, whose issuer is %s. Each environment accepts only its own issuer as aud, and clients and keys exist per environment.", envName(c.Env), c.Issuer),
			Fix:   fmt.Sprintf("Set aud to %q and use a client and key registered in %s.", c.Issuer, envName(c.Env)), Ref: "MP-110"}}
	case aud == c.TokenURL || strings.HasSuffix(strings.TrimSuffix(aud, "/"), "/token"):
		return []Finding{{Code: GrantAudTokenURL, Severity: SeverityError, Title: "aud is the token endpoint, not the issuer",
			Cause: "Digdir: using the token-endpoint URL as audience is no longer valid. Some guides (Altinn's among them) still show it.",
			Fix:   fmt.Sprintf("Set aud to the issuer %q.", c.Issuer), Ref: "MP-110"}}
	case aud+"/" == c.Issuer:
		return []Finding{{Code: GrantAudSlash, Severity: SeverityError, Title: "aud lacks the issuer's trailing slash",
			Cause: "aud must equal the issuer identifier exactly, trailing slash included.",
			Fix:   fmt.Sprintf("Set aud to %q.", c.Issuer), Ref: "MP-110"}}
	}
	return []Finding{{Code: GrantAudWrong, Severity: SeverityError, Title: fmt.Sprintf("aud is %q", aud),
		Cause: fmt.Sprintf("aud must be this environment's Maskinporten issuer, %s.", c.Issuer),
		Fix:   fmt.Sprintf("Set aud to %q.", c.Issuer), Ref: "MP-110"}}
}

func checkTimes(d *maskinporten.Decoded, c Context, now time.Time) []Finding {
	iat, okI := d.ClaimTime("iat")
	exp, okE := d.ClaimTime("exp")
	if !okI || !okE {
		var missing []string
		if !okI {
			missing = append(missing, "iat")
		}
		if !okE {
			missing = append(missing, "exp")
		}
		return []Finding{{Code: GrantTimesMissing, Severity: SeverityError, Title: "The grant lacks " + strings.Join(missing, " and ") + " as numbers",
			Cause: "iat and exp are required NumericDates: seconds since 1970 in UTC.",
			Fix:   "Set iat to the time of signing and exp to at most 120 seconds later."}}
	}
	var fs []Finding
	life := exp.Sub(iat)
	switch {
	case life <= 0:
		fs = append(fs, Finding{Code: GrantExpBeforeIat, Severity: SeverityError, Title: "exp is not after iat",
			Cause: "The grant expires before (or when) it is issued.",
			Fix:   "Set exp to iat plus at most 120 seconds."})
	case life > maskinporten.MaxGrantLifetime:
		fs = append(fs, Finding{Code: GrantLifetime, Severity: SeverityError, Title: fmt.Sprintf("exp - iat is %s, more than 120 s", life.Round(time.Second)),
			Cause: "Maskinporten accepts grants that live at most 120 seconds.",
			Fix:   "Set exp to iat plus at most 120 seconds; make a new grant for every token request."})
	}
	ahead := iat.Sub(now)
	switch {
	case c.Sent && !exp.After(now):
		fs = append(fs, Finding{Code: GrantExpired, Severity: SeverityError, Title: fmt.Sprintf("The grant had expired when it was sent (exp %s)", exp.Format(time.RFC3339)),
			Cause: "A grant is good for at most two minutes after iat.",
			Fix:   "Sign a new grant right before each token request.", Ref: "MP-130"})
	case !c.Sent && !exp.After(now):
		fs = append(fs, Finding{Code: GrantExpired, Severity: SeverityInfo, Title: fmt.Sprintf("This grant expired %s", exp.Format(time.RFC3339)),
			Cause: "A grant is good for at most two minutes; this one can no longer be used (which is expected of a grant that was already sent).",
			Fix:   "Sign a new grant for a new token request.", Ref: "MP-130"})
	}
	switch {
	case ahead > clockTolerance:
		fs = append(fs, Finding{Code: GrantIatFuture, Severity: SeverityError, Title: fmt.Sprintf("iat is %s in the future", ahead.Round(time.Second)),
			Cause: "The clock of the machine that signed the grant is ahead; Maskinporten accepts iat only within 10 seconds of its own clock (\"Issue time is after now\").",
			Fix:   "Synchronise that machine's clock with NTP."})
	case c.Sent && -ahead > clockTolerance:
		fs = append(fs, Finding{Code: GrantIatOld, Severity: SeverityError, Title: fmt.Sprintf("iat was %s old when the grant was sent", (-ahead).Round(time.Second)),
			Cause: "Maskinporten accepts iat only within 10 seconds of its own clock: the signing machine's clock is behind, or the grant waited before it was sent.",
			Fix:   "Sign the grant right before sending it, and synchronise the signing machine's clock with NTP."})
	}
	return fs
}

func checkScopes(d *maskinporten.Decoded, t *Target) []Finding {
	scopes := d.Scopes()
	if len(scopes) == 0 {
		return []Finding{{Code: GrantScopeMissing, Severity: SeverityError, Title: "The grant asks for no scope",
			Cause: "scope is required: a space-separated list of the scopes wanted.",
			Fix:   "Put one or more of the client's scopes in scope."}}
	}
	if t == nil {
		return nil
	}
	_, delegated := d.Claims["consumer_org"]
	var notOnClient, notUsable []string
	for _, s := range scopes {
		if t.Scopes != nil && !slices.Contains(t.Scopes, s) && !delegated {
			notOnClient = append(notOnClient, s)
			continue
		}
		if t.Usable != nil && !slices.Contains(t.Usable, s) && !delegated {
			notUsable = append(notUsable, s)
		}
	}
	var fs []Finding
	if len(notOnClient) > 0 {
		fs = append(fs, Finding{Code: GrantScopeNotOnClient, Severity: SeverityError, Title: "Not registered on the client: " + strings.Join(notOnClient, ", "),
			Cause: "Maskinporten issues only scopes registered on the client (invalid_scope, MP-200). The client has: " + listOrNone(t.Scopes) + ".",
			Fix:   "Ask only for the client's scopes, or add the scope to the integration first (it takes up to two minutes to reach Maskinporten).", Ref: "MP-200"})
	}
	if len(notUsable) > 0 {
		fs = append(fs, Finding{Code: GrantScopeNotUsable, Severity: SeverityError, Title: "The organisation has no access to: " + strings.Join(notUsable, ", "),
			Cause: "The scope is on the client, but its owner has not granted the organisation access to it in this environment (forbidden, MP-250).",
			Fix:   "Ask the scope's owner for access (for altinn:serviceowner/* scopes, Digdir), separately for test and production.", Ref: "MP-250"})
	}
	return fs
}

// checkKeyCertificate looks at a certificate registered with a key (x5c on the JWK).
func checkKeyCertificate(key maskinporten.JWK, now time.Time) []Finding {
	der, err := base64.StdEncoding.DecodeString(key.X5C[0])
	if err != nil {
		return nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	var fs []Finding
	if pub := jwkPublic(key); pub != nil {
		if cp, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !cp.Equal(pub) {
			fs = append(fs, Finding{Code: GrantKeyCertificate, Severity: SeverityWarning, Title: fmt.Sprintf("The certificate registered with key %s is for another key", key.Kid),
				Cause: "The key's x5c holds a certificate whose public key differs from the key's n and e.",
				Fix:   "Register the key again with its own certificate, or without one."})
		}
	}
	if now.After(cert.NotAfter) {
		fs = append(fs, Finding{Code: GrantKeyCertificate, Severity: SeverityWarning, Title: fmt.Sprintf("The certificate registered with key %s expired %s", key.Kid, cert.NotAfter.Format(time.RFC3339)),
			Cause: "A key registered with a certificate is tied to it; Maskinporten may refuse it once the certificate has expired.",
			Fix:   "Register a new key (with a valid certificate, if you want the key tied to one)."})
	}
	return fs
}

// checkX5C looks at a business certificate chain sent in a grant's header.
func checkX5C(chain []string, t *Target, now time.Time, hash crypto.Hash, algOK bool, input, sig []byte) []Finding {
	if len(chain) == 0 {
		return []Finding{{Code: GrantX5CInvalid, Severity: SeverityError, Title: "x5c is empty",
			Cause: "x5c must hold the business certificate, leaf first.", Ref: "MP-123"}}
	}
	der, err := base64.StdEncoding.DecodeString(chain[0])
	var leaf *x509.Certificate
	if err == nil {
		leaf, err = x509.ParseCertificate(der)
	}
	if err != nil {
		return []Finding{{Code: GrantX5CInvalid, Severity: SeverityError, Title: "The first x5c entry is not a certificate",
			Cause: "Each x5c entry is a certificate's DER in standard base64 (not base64url, not PEM).",
			Fix:   "Put the business certificate's DER, base64-encoded, first in x5c.", Ref: "MP-123"}}
	}
	var fs []Finding
	switch {
	case now.After(leaf.NotAfter):
		fs = append(fs, Finding{Code: GrantCertExpired, Severity: SeverityError, Title: "The business certificate expired " + leaf.NotAfter.Format(time.RFC3339),
			Cause: "Maskinporten refuses grants signed with an expired certificate (MP-120).",
			Fix:   "Order a new business certificate and sign with it.", Ref: "MP-120"})
	case now.Before(leaf.NotBefore):
		fs = append(fs, Finding{Code: GrantCertNotYetValid, Severity: SeverityError, Title: "The business certificate is valid only from " + leaf.NotBefore.Format(time.RFC3339),
			Cause: "Maskinporten refuses a certificate before its validity starts (MP-120); the signing machine's clock may also be wrong.",
			Fix:   "Wait until the certificate is valid, or check the clock.", Ref: "MP-120"})
	}
	if no, ok := certOrgNo(leaf); ok && t != nil && t.OrgNo != "" && no != t.OrgNo {
		fs = append(fs, Finding{Code: GrantCertOrgNo, Severity: SeverityError, Title: fmt.Sprintf("The certificate is %s's, the client belongs to %s", no, t.OrgNo),
			Cause: "Maskinporten accepts a business certificate only for clients of the organisation it was issued to (MP-122).",
			Fix:   "Sign with your own organisation's business certificate.", Ref: "MP-122"})
	}
	if pub, ok := leaf.PublicKey.(*rsa.PublicKey); ok && algOK && sig != nil && !verify(pub, hash, input, sig) {
		fs = append(fs, Finding{Code: GrantSignature, Severity: SeverityError, Title: "The signature does not match the certificate in x5c",
			Cause: "The grant was signed with another private key than the certificate's, or changed after signing.",
			Fix:   "Sign with the business certificate's own private key.", Ref: "MP-124"})
	}
	return fs
}

// certOrgNo reads the organisation number of a business certificate: organizationIdentifier
// "NTRNO-<orgno>", or serialNumber.
func certOrgNo(c *x509.Certificate) (string, bool) {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidOrganizationIdentifier) {
			if v, ok := n.Value.(string); ok {
				if no, ok := strings.CutPrefix(v, "NTRNO-"); ok && isOrgNo(no) {
					return no, true
				}
			}
		}
	}
	if isOrgNo(c.Subject.SerialNumber) {
		return c.Subject.SerialNumber, true
	}
	return "", false
}

func hashOf(alg string) (crypto.Hash, bool) {
	switch alg {
	case maskinporten.RS256:
		return crypto.SHA256, true
	case maskinporten.RS384:
		return crypto.SHA384, true
	case maskinporten.RS512:
		return crypto.SHA512, true
	}
	return 0, false
}

// splitSigned returns a compact JWS's signing input and signature (nil when unreadable).
func splitSigned(jws string) ([]byte, []byte) {
	jws = strings.TrimSpace(jws)
	i := strings.LastIndexByte(jws, '.')
	if i < 0 {
		return nil, nil
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(jws[i+1:], "="))
	if err != nil || len(sig) == 0 {
		return nil, nil
	}
	return []byte(jws[:i]), sig
}

// verify checks an RS* signature; keys too small to check count as matching, so they are
// left to Maskinporten's verdict.
func verify(pub *rsa.PublicKey, hash crypto.Hash, input, sig []byte) bool {
	if pub.N.BitLen() < 1024 {
		return true
	}
	h := hash.New()
	h.Write(input)
	return rsa.VerifyPKCS1v15(pub, hash, h.Sum(nil), sig) == nil
}

// jwkPublic reads an RSA JWK's public key; nil when it cannot.
func jwkPublic(k maskinporten.JWK) *rsa.PublicKey {
	if k.Kty != "RSA" || k.N == "" || k.E == "" {
		return nil
	}
	n, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.N, "="))
	if err != nil || len(n) == 0 || len(n) > 2048 {
		return nil
	}
	e, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.E, "="))
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil
	}
	ev := new(big.Int).SetBytes(e)
	if !ev.IsInt64() || ev.Int64() < 3 {
		return nil
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev.Int64())}
}

func isOrgNo(s string) bool {
	if len(s) != 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allStrings(a []any) bool {
	for _, v := range a {
		if s, ok := v.(string); !ok || s == "" {
			return false
		}
	}
	return true
}

func listOrNone(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ", ")
}

func envName(env string) string {
	if env == "" {
		return "this environment"
	}
	return env
}
