package sim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// mpError is a token endpoint failure (§1.8). code is the MP-nnn catalogue code, "" when the
// reference shows none for the case.
type mpError struct {
	status int
	err    string
	desc   string
	code   string
}

func (e *mpError) Error() string { return e.err + ": " + e.desc }

func invalidGrant(code, desc string) *mpError {
	return &mpError{status: http.StatusBadRequest, err: "invalid_grant", desc: desc, code: code}
}

func invalidRequest(code, desc string) *mpError {
	return &mpError{status: http.StatusBadRequest, err: "invalid_request", desc: desc, code: code}
}

const authFailed = "Invalid assertion. Client authentication failed."

// The catalogue of error texts, from Digdir's troubleshooting page (§1.8).
var mpCatalogue = map[string]string{
	"MP-011": "Invalid assertion. Invalid parameter value",
	"MP-012": "Grant is used before",
	"MP-100": authFailed,
	"MP-110": authFailed + " Invalid JWT claim aud",
	"MP-120": authFailed + " The JWT is signed with an invalid certificate.",
	"MP-121": authFailed + " Expired key.",
	"MP-122": "Invalid JWT. Invalid organization number for client. Does not match certificate orgno",
	"MP-123": "Invalid JWT header x5c",
	"MP-124": authFailed + " Invalid JWT signature.",
	"MP-130": "JWT is expired",
	"MP-200": "Token request contains invalid scopes for client",
	"MP-201": "Token request contains scopes not allowed for maskinporten",
	"MP-250": "Consumer has not been granted access to the scope",
	"MP-251": "Consumer has not delegated access to the scope to supplier",
	"MP-301": "Unknown authorization details type",
	"MP-302": "Unknown fields in the authorization details",
	"MP-303": "Invalid authorization details values",
}

func catalogued(code string) *mpError {
	return invalidGrant(code, mpCatalogue[code])
}

func traceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (w *world) writeTokenError(rw http.ResponseWriter, e *mpError) {
	body := tokenError{Error: e.err, ErrorDescription: e.desc + " (trace_id: " + traceID() + ")"}
	if e.code != "" {
		body.ErrorURI = strings.TrimSuffix(w.issuer, "/") + "/errors/" + e.code
	}
	writeJSON(rw, e.status, body)
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, "encode response", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Content-Length", strconv.Itoa(len(b)))
	rw.WriteHeader(status)
	_, _ = rw.Write(b)
}

func (w *world) serveMetadata(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(w.metadata)
}

func (w *world) serveJWKS(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = rw.Write(w.jwksJSON)
}

// serveErrorPage explains an MP-nnn code at the error_uri the error bodies point to.
func (w *world) serveErrorPage(rw http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	text, ok := mpCatalogue[code]
	if !ok {
		http.NotFound(rw, r)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(rw, "%s (simulated Maskinporten, %s)\n\n%s\n", code, w.name, text)
}

// serveToken is the token endpoint (§1.2). Its cost is one RSA verification, one RS256
// signature and a jti decided in memory (see jtiStore).
func (w *world) serveToken(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 128<<10)
	if err := r.ParseForm(); err != nil {
		w.writeTokenError(rw, invalidRequest("", "Invalid request: the body is not a form"))
		return
	}
	// Only grant_type and assertion matter; other parameters are ignored (RFC 6749 §3.2).
	gt := r.PostForm.Get("grant_type")
	switch {
	case gt == "":
		w.writeTokenError(rw, invalidRequest("", "Missing required parameter: grant_type"))
		return
	case gt != grantTypeJWTBearer:
		w.writeTokenError(rw, &mpError{status: http.StatusBadRequest, err: "unsupported_grant_type",
			desc: "Unsupported grant type: " + gt})
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		w.writeTokenError(rw, invalidRequest("", "Missing required parameter: assertion"))
		return
	}
	resp, e := w.issue(r, assertion)
	if e != nil {
		w.writeTokenError(rw, e)
		return
	}
	rw.Header().Set("Cache-Control", "no-store")
	writeJSON(rw, http.StatusOK, resp)
}

// issue checks a grant and returns the token response.
func (w *world) issue(r *http.Request, assertion string) (*tokenResponse, *mpError) {
	now := w.clock.now()
	q := w.s.cfg.Quirks
	g, err := parseGrant(assertion)
	if err != nil {
		return nil, invalidRequest("MP-011", mpCatalogue["MP-011"]+": "+err.Error())
	}
	if g.hash == 0 {
		return nil, invalidGrant("", authFailed+" Invalid JWT. Unsupported signing algorithm "+strconv.Quote(g.alg)+", use RS256, RS384 or RS512")
	}
	if g.hasKid == (g.x5c != nil) {
		return nil, invalidGrant("", authFailed+" Invalid JWT. Either kid or x5c must be present, and not both")
	}
	if len(g.unknown) > 0 && !q.AllowUnknownClaims {
		return nil, invalidRequest("", "Invalid assertion. Unknown claims in JWT: "+strings.Join(g.unknown, ", "))
	}
	c := &g.claims
	if c.Iss == nil || *c.Iss == "" {
		return nil, invalidGrant("MP-100", authFailed+" Missing claim iss")
	}
	cl := w.view.client(*c.Iss, now)
	if cl == nil || !cl.active || cl.intType != "maskinporten" {
		return nil, catalogued("MP-100")
	}

	// Authenticate the client: a registered key (kid) or a business certificate (x5c).
	var pub *rsa.PublicKey
	amr := "private_key_jwt"
	if g.hasKid {
		k, ok := cl.keys[g.kid]
		if !ok {
			return nil, invalidGrant("", authFailed+" Unknown key identifier (kid) for client.")
		}
		if k.exp <= now.Unix() {
			return nil, catalogued("MP-121")
		}
		pub = k.pub
	} else {
		if len(cl.keys) > 0 {
			return nil, invalidGrant("", authFailed+" Invalid JWT. The client requires pre-registered jwk and no key identifier (kid) provided")
		}
		ce, e := w.verifyChain(g.x5c, now)
		if e != nil {
			return nil, e
		}
		if ce.orgNo != cl.orgNo {
			return nil, catalogued("MP-122")
		}
		var ok bool
		if pub, ok = ce.leaf.PublicKey.(*rsa.PublicKey); !ok {
			return nil, catalogued("MP-120")
		}
		amr = amrBusinessCertificate
	}
	if pub.N.BitLen() < 2048 {
		return nil, catalogued("MP-124")
	}
	h := g.hash.New()
	h.Write(g.signingInput)
	if err := rsa.VerifyPKCS1v15(pub, g.hash, h.Sum(nil), g.sig); err != nil {
		return nil, catalogued("MP-124")
	}

	aud, ok := audience(c.Aud)
	if !ok || (aud != w.issuer && !(q.AcceptAudienceWithoutSlash && aud+"/" == w.issuer)) {
		return nil, catalogued("MP-110")
	}
	iat, ok := numericDate(c.Iat)
	if !ok {
		return nil, invalidGrant("", authFailed+" Missing or invalid claim iat")
	}
	exp, ok := numericDate(c.Exp)
	if !ok {
		return nil, invalidGrant("", authFailed+" Missing or invalid claim exp")
	}
	n := now.Unix()
	if exp <= n {
		return nil, catalogued("MP-130")
	}
	if exp-iat > 120 {
		return nil, invalidGrant("", authFailed+" Invalid JWT. exp - iat is more than 120 seconds")
	}
	if exp <= iat {
		return nil, invalidGrant("", authFailed+" Invalid JWT. exp is not after iat")
	}
	if iat > n+10 {
		return nil, invalidGrant("", "Issue time is after now")
	}
	if iat < n-10 {
		return nil, invalidGrant("", authFailed+" Invalid JWT. Issue time is more than 10 seconds before now")
	}
	if nbf, ok := numericDate(c.Nbf); c.Nbf != nil && (!ok || nbf > n+10) {
		return nil, invalidGrant("", authFailed+" Invalid JWT. The JWT is not yet valid (nbf)")
	}
	res, ok := resources(c.Resource)
	if !ok {
		return nil, invalidRequest("MP-011", mpCatalogue["MP-011"]+" for resource: an array of strings is required")
	}
	if len(c.AuthorizationDetails) > 0 {
		return nil, w.checkAuthorizationDetails(c.AuthorizationDetails)
	}

	consumer, supplier, delegSource, scopes, e := w.checkScopes(cl, c)
	if e != nil {
		return nil, e
	}

	// The jti is recorded last, so only a grant that would give a token uses it up. It is kept
	// while the grant could still be valid.
	if c.Jti != nil && *c.Jti != "" {
		if e := w.useJTI(r, cl.id, *c.Jti, exp); e != nil {
			return nil, e
		}
	}

	life := w.lifetime(cl, scopes)
	claims := accessClaims{
		Scope:     strings.Join(scopes, " "),
		Iss:       w.issuer,
		ClientAmr: amr,
		TokenType: "Bearer",
		Iat:       n,
		Exp:       n + int64(life),
		ClientID:  cl.id,
		Jti:       newJTI(),
		Consumer:  iso6523(consumer),
	}
	if supplier != "" {
		s := iso6523(supplier)
		claims.Supplier = &s
		claims.DelegationSource = delegSource
	}
	if c.Pid != nil {
		claims.Pid = *c.Pid
	}
	switch len(res) {
	case 0:
	case 1:
		claims.Aud = res[0]
	default:
		claims.Aud = res
	}
	tok, err := w.sign(&claims)
	if err != nil {
		w.s.log.Error("sign access token", "env", w.name, "err", err)
		return nil, &mpError{status: http.StatusInternalServerError, err: "server_error", desc: "Could not issue token"}
	}
	return &tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(life) - 1, Scope: claims.Scope}, nil
}

// checkScopes applies the scope rules and consumer_org delegation (§1.4, §1.8) and returns the
// consumer, the supplier (delegation only), the delegation source and the scopes to issue.
func (w *world) checkScopes(cl *mpClient, c *grantClaims) (consumer, supplier, source string, issued []string, e *mpError) {
	if c.Scope == nil || strings.TrimSpace(*c.Scope) == "" {
		return "", "", "", nil, &mpError{status: http.StatusBadRequest, err: "invalid_scope", desc: "Missing scope in JWT grant"}
	}
	requested := strings.Fields(*c.Scope)
	forbidden := w.s.cfg.Quirks.ForbiddenStatus
	if forbidden == 0 {
		forbidden = http.StatusForbidden
	}
	consumer = cl.orgNo
	if c.ConsumerOrg != nil {
		co := *c.ConsumerOrg
		if !isOrgNo(co) {
			return "", "", "", nil, invalidRequest("MP-011", mpCatalogue["MP-011"]+" for consumer_org")
		}
		if co == cl.orgNo {
			return "", "", "", nil, invalidRequest("", "Validation of JWT claim failed: The combination consumer_org in claim and delegation scope on client is invalid")
		}
		consumer, supplier = co, cl.orgNo
	}
	var notOnClient, notMP, notGranted, notDelegated []string
	for _, s := range requested {
		sc := w.view.scope(s)
		delegable := supplier != "" && sc != nil && sc.DelegationSource != ""
		switch {
		case !cl.scopes[s] && !delegable:
			notOnClient = append(notOnClient, s)
		case sc == nil || !sc.Active:
			notOnClient = append(notOnClient, s)
		case !sc.allowsMaskinporten():
			notMP = append(notMP, s)
		case !w.view.granted(s, consumer):
			notGranted = append(notGranted, s)
		case supplier != "" && !w.view.delegated(consumer, supplier, s):
			notDelegated = append(notDelegated, s)
		default:
			issued = append(issued, s)
			if supplier != "" {
				source = sc.DelegationSource
			}
		}
	}
	if w.s.cfg.Quirks.NarrowScopes && len(issued) > 0 {
		return consumer, supplier, source, dedupe(issued), nil
	}
	switch {
	case len(notOnClient) > 0:
		return "", "", "", nil, &mpError{status: http.StatusBadRequest, err: "invalid_scope",
			desc: mpCatalogue["MP-200"] + ", " + strings.Join(notOnClient, " "), code: "MP-200"}
	case len(notMP) > 0:
		return "", "", "", nil, &mpError{status: http.StatusBadRequest, err: "invalid_scope",
			desc: mpCatalogue["MP-201"] + ", " + strings.Join(notMP, " "), code: "MP-201"}
	case len(notGranted) > 0:
		return "", "", "", nil, &mpError{status: forbidden, err: "forbidden",
			desc: "Consumer has not been granted access to the scope " + notGranted[0] + ".", code: "MP-250"}
	case len(notDelegated) > 0:
		return "", "", "", nil, &mpError{status: forbidden, err: "forbidden",
			desc: "Consumer " + consumer + " has not delegated access to the scope " + notDelegated[0] + " to supplier " + supplier + ".", code: "MP-251"}
	}
	return consumer, supplier, source, dedupe(issued), nil
}

func dedupe(ss []string) []string {
	out := ss[:0]
	seen := make(map[string]bool, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// checkAuthorizationDetails validates RAR requests (§6). System users and consents are not
// simulated, so a well-formed request is answered as one naming no known system user.
func (w *world) checkAuthorizationDetails(raw json.RawMessage) *mpError {
	var ds []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ds); err != nil || len(ds) != 1 {
		return invalidRequest("MP-303", mpCatalogue["MP-303"])
	}
	var typ string
	if err := json.Unmarshal(ds[0]["type"], &typ); err != nil {
		return invalidRequest("MP-301", mpCatalogue["MP-301"])
	}
	allowed := map[string]map[string]bool{
		"urn:altinn:systemuser": {"type": true, "systemuser_org": true, "externalRef": true},
		"urn:altinn:consent":    {"type": true, "id": true, "from": true},
	}
	fields, ok := allowed[typ]
	if !ok {
		return invalidRequest("MP-301", mpCatalogue["MP-301"])
	}
	for k := range ds[0] {
		if !fields[k] {
			return invalidRequest("MP-302", mpCatalogue["MP-302"])
		}
	}
	return invalidRequest("MP-303", mpCatalogue["MP-303"]+": no such "+strings.TrimPrefix(typ, "urn:altinn:")+" in the simulator")
}

// lifetime is the client's access_token_lifetime (default 120 s), lowered by the smallest
// positive at_max_age of the issued scopes (§1.7).
func (w *world) lifetime(cl *mpClient, scopes []string) int {
	life := cl.lifetime
	if life <= 0 {
		life = 120
	}
	for _, s := range scopes {
		if sc := w.view.scope(s); sc != nil && sc.AtMaxAge > 0 && sc.AtMaxAge < life {
			life = sc.AtMaxAge
		}
	}
	return life
}

func (w *world) useJTI(r *http.Request, clientID, jti string, exp int64) *mpError {
	// Kept ten seconds past exp to cover the iat tolerance.
	replayed, err := w.s.jtis.use(r.Context(), w.name, clientID, jti, exp+10)
	if err != nil {
		w.s.log.Error("record jti", "env", w.name, "client_id", clientID, "err", err)
		return &mpError{status: http.StatusInternalServerError, err: "server_error", desc: "Could not record grant"}
	}
	if replayed {
		return catalogued("MP-012")
	}
	return nil
}

func newJTI() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sign makes a compact RS256 JWS with the environment's key and fixed header.
func (w *world) sign(claims *accessClaims) (string, error) {
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	buf := make([]byte, 0, len(w.tokenHeader)+1+base64.RawURLEncoding.EncodedLen(len(pb))+1+342)
	buf = append(buf, w.tokenHeader...)
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, pb)
	sum := sha256.Sum256(buf)
	sig, err := rsa.SignPKCS1v15(nil, w.mpKey, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig)
	return string(buf), nil
}

// verifyChain checks an x5c chain against the environment's CA at now and reads the
// organisation number of its leaf.
func (w *world) verifyChain(raw []byte, now time.Time) (*certEntry, *mpError) {
	ders, err := parseX5C(raw)
	if err != nil {
		return nil, invalidGrant("MP-123", mpCatalogue["MP-123"]+": "+err.Error())
	}
	key := chainKey(ders)
	if e := w.certs.get(key); e != nil {
		if now.Before(e.notBefore) || now.After(e.notAfter) {
			return nil, catalogued("MP-120")
		}
		return e, nil
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, d := range ders {
		if certs[i], err = x509.ParseCertificate(d); err != nil {
			return nil, invalidGrant("MP-123", mpCatalogue["MP-123"]+": certificate "+strconv.Itoa(i)+" is not DER X.509")
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: w.caPool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, catalogued("MP-120")
	}
	e := &certEntry{leaf: certs[0], notBefore: certs[0].NotBefore, notAfter: certs[0].NotAfter}
	for _, c := range chains[0] {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	no, ok := certOrgNo(certs[0])
	if !ok {
		return nil, catalogued("MP-122")
	}
	e.orgNo = no
	w.certs.put(key, e)
	return e, nil
}

var errTokenInvalid = errors.New("invalid token")
