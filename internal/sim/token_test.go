package sim_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"portal/internal/sim"
)

const (
	otherOrg  = "311234560"
	readScope = "altinn:serviceowner/instances.read"
)

const testSeed = `{
  "orgs": [{"orgno": "311234560", "code": "", "name": "Kunde AS"}],
  "grants": [
    {"scope": "nav:pensjon/v3/alderspensjon", "consumer_orgno": "311234560"},
    {"scope": "skatteetaten:inntekt", "consumer_orgno": "311234560"}
  ],
  "delegations": [{"consumer_orgno": "311234560", "supplier_orgno": "313554430", "scope": "nav:pensjon/v3/alderspensjon"}],
  "clients": [
    {"client_id": "seeded-odd-client", "client_orgno": "313554430", "client_name": "odd", "description": "odd scopes",
     "scopes": ["altinn:portal/enduser", "nav:pensjon/v3/alderspensjon", "altinn:serviceowner/instances.read"],
     "access_token_lifetime": 600, "keys": [KEY1]},
    {"client_id": "seeded-supplier", "client_orgno": "313554430", "client_name": "supplier", "description": "delegation",
     "scopes": [], "keys": [KEY2]}
  ]
}`

// fixture is a simulator with a client made through the API (kid "main-1"), two seeded ones
// and certificates for the x5c cases.
type fixture struct {
	*harness
	adminID   string
	adminKey  *rsa.PrivateKey
	adminCert []*x509.Certificate
	mainID    string
}

func newFixture(t testing.TB, mutate ...func(*sim.Config)) *fixture {
	t.Helper()
	k1, _ := json.Marshal(publicJWK(clientKey(t, 1), "seed-odd"))
	k2, _ := json.Marshal(publicJWK(clientKey(t, 2), "seed-sup"))
	seed := strings.NewReplacer("KEY1", string(k1), "KEY2", string(k2)).Replace(testSeed)
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(path, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, append([]func(*sim.Config){func(c *sim.Config) { c.SeedFile = path }}, mutate...)...)
	creds, err := h.sim.AdminCredentials("tt02")
	if err != nil {
		t.Fatal(err)
	}
	key, chain := parseCreds(t, creds)
	f := &fixture{harness: h, adminID: creds.ClientID, adminKey: key, adminCert: chain}
	f.mainID = h.newClient("tt02", h.adminToken("tt02"),
		[]string{readScope, "altinn:serviceowner/instances.write", "altinn:broker.read"}, clientKey(t, 0), "main-1")
	return f
}

func (f *fixture) mainGrant(scope string) grant {
	return grant{key: clientKey(f.t, 0), kid: "main-1", claims: baseClaims(f.mainID, scope, f.now("tt02"))}
}

func (f *fixture) cert(env string, key *rsa.PrivateKey, req sim.CertificateRequest) []*x509.Certificate {
	f.t.Helper()
	leaf, ca, err := f.sim.IssueBusinessCertificate(env, &key.PublicKey, req)
	if err != nil {
		f.t.Fatal(err)
	}
	return []*x509.Certificate{leaf, ca}
}

var traceSuffix = regexp.MustCompile(` \(trace_id: [0-9a-f]{32}\)$`)

func TestTokenGrantRules(t *testing.T) {
	f := newFixture(t)
	now := f.now("tt02")
	with := func(g grant, k string, v any) grant {
		c := map[string]any{}
		for kk, vv := range g.claims {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		g.claims = c
		return g
	}
	admin := func(scope string) grant {
		return grant{key: f.adminKey, x5c: f.adminCert, claims: baseClaims(f.adminID, scope, now)}
	}
	odd := func(scope string) grant {
		return grant{key: clientKey(t, 1), kid: "seed-odd", claims: baseClaims("seeded-odd-client", scope, now)}
	}
	sup := func(scope, consumer string) grant {
		g := grant{key: clientKey(t, 2), kid: "seed-sup", claims: baseClaims("seeded-supplier", scope, now)}
		return with(g, "consumer_org", consumer)
	}
	hdr := func(g grant, k string, v any) grant {
		g.headers = map[string]any{k: v}
		return g
	}
	reused := f.mainGrant(readScope)
	if res := f.token("tt02", reused.sign(t)); res.status != 200 {
		t.Fatalf("first use of jti: %d %v", res.status, res.body)
	}

	cases := []struct {
		name   string
		g      grant
		status int
		err    string
		code   string // MP-nnn, "" when the body has no error_uri
		desc   string
		check  func(t *testing.T, claims map[string]any, body map[string]any)
	}{
		{name: "kid RS256", g: f.mainGrant(readScope), status: 200, check: func(t *testing.T, c, b map[string]any) {
			if c["client_amr"] != "private_key_jwt" || c["client_id"] != f.mainID || c["scope"] != readScope {
				t.Errorf("claims %v", c)
			}
			if _, ok := c["aud"]; ok {
				t.Errorf("aud without resource: %v", c["aud"])
			}
			cons := c["consumer"].(map[string]any)
			if cons["authority"] != "iso6523-actorid-upis" || cons["ID"] != "0192:"+sim.DefaultOrgNo {
				t.Errorf("consumer %v", cons)
			}
			if b["expires_in"] != 119.0 || b["token_type"] != "Bearer" {
				t.Errorf("body %v", b)
			}
			if c["exp"].(float64)-c["iat"].(float64) != 120 {
				t.Errorf("lifetime %v", c["exp"].(float64)-c["iat"].(float64))
			}
			if len(c["jti"].(string)) != 43 {
				t.Errorf("jti %q", c["jti"])
			}
		}},
		{name: "kid RS384", g: func() grant { g := f.mainGrant(readScope); g.alg = jose.RS384; return g }(), status: 200},
		{name: "kid RS512", g: func() grant { g := f.mainGrant(readScope); g.alg = jose.RS512; return g }(), status: 200},
		{name: "two scopes", g: f.mainGrant(readScope + " altinn:broker.read"), status: 200, check: func(t *testing.T, c, _ map[string]any) {
			if c["scope"] != readScope+" altinn:broker.read" {
				t.Errorf("scope %v", c["scope"])
			}
		}},
		{name: "typ header, nbf and sub tolerated", g: with(with(hdr(f.mainGrant(readScope), "typ", "JWT"), "nbf", now.Unix()), "sub", f.mainID), status: 200},
		{name: "no jti", g: with(f.mainGrant(readScope), "jti", nil), status: 200},
		{name: "resource gives aud", g: with(f.mainGrant(readScope), "resource", []string{"https://api.example.no"}), status: 200,
			check: func(t *testing.T, c, _ map[string]any) {
				if c["aud"] != "https://api.example.no" {
					t.Errorf("aud %v", c["aud"])
				}
			}},
		{name: "resource as string", g: with(f.mainGrant(readScope), "resource", "https://api.example.no"), status: 400, err: "invalid_request", code: "MP-011"},
		{name: "x5c organizationIdentifier", g: admin("idporten:dcr.read"), status: 200, check: func(t *testing.T, c, _ map[string]any) {
			if c["client_amr"] != "virksomhetssertifikat" {
				t.Errorf("client_amr %v", c["client_amr"])
			}
		}},
		{name: "x5c serialNumber", g: grant{key: clientKey(t, 4), claims: baseClaims(f.adminID, "idporten:dcr.read", now),
			x5c: f.cert("tt02", clientKey(t, 4), sim.CertificateRequest{OrgNo: sim.DefaultOrgNo, SerialNumberStyle: true})}, status: 200},
		{name: "x5c leaf only", g: grant{key: f.adminKey, x5c: f.adminCert[:1], claims: baseClaims(f.adminID, "idporten:dcr.read", now)}, status: 200},
		{name: "alg HS256", g: hdr(f.mainGrant(readScope), "alg", "HS256"), status: 400, err: "invalid_grant", desc: "Unsupported signing algorithm"},
		{name: "alg none", g: hdr(f.mainGrant(readScope), "alg", "none"), status: 400, err: "invalid_grant"},
		{name: "neither kid nor x5c", g: hdr(f.mainGrant(readScope), "kid", nil), status: 400, err: "invalid_grant", desc: "Either kid or x5c"},
		{name: "both kid and x5c", g: hdr(f.mainGrant(readScope), "x5c", x5cStrings(f.adminCert)), status: 400, err: "invalid_grant", desc: "Either kid or x5c"},
		{name: "unknown kid", g: func() grant { g := f.mainGrant(readScope); g.kid = "nope"; return g }(), status: 400, err: "invalid_grant",
			desc: "Invalid assertion. Client authentication failed. Unknown key identifier (kid) for client."},
		{name: "x5c on client with keys", g: grant{key: f.adminKey, x5c: f.adminCert, claims: baseClaims(f.mainID, readScope, now)}, status: 400,
			err: "invalid_grant", desc: "The client requires pre-registered jwk and no key identifier (kid) provided"},
		{name: "x5c not an array", g: hdr(admin("idporten:dcr.read"), "x5c", x5cStrings(f.adminCert)[0]), status: 400, err: "invalid_grant", code: "MP-123"},
		{name: "x5c not DER", g: hdr(admin("idporten:dcr.read"), "x5c", []string{"AAAA"}), status: 400, err: "invalid_grant", code: "MP-123"},
		{name: "x5c from another CA", g: grant{key: clientKey(t, 3), claims: baseClaims(f.adminID, "idporten:dcr.read", now),
			x5c: f.cert("prod", clientKey(t, 3), sim.CertificateRequest{OrgNo: sim.DefaultOrgNo})}, status: 400, err: "invalid_grant", code: "MP-120",
			desc: "The JWT is signed with an invalid certificate."},
		{name: "x5c expired certificate", g: grant{key: clientKey(t, 3), claims: baseClaims(f.adminID, "idporten:dcr.read", now),
			x5c: f.cert("tt02", clientKey(t, 3), sim.CertificateRequest{OrgNo: sim.DefaultOrgNo, NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(0, 0, -1)})},
			status: 400, err: "invalid_grant", code: "MP-120"},
		{name: "x5c other organisation", g: grant{key: clientKey(t, 3), claims: baseClaims(f.adminID, "idporten:dcr.read", now),
			x5c: f.cert("tt02", clientKey(t, 3), sim.CertificateRequest{OrgNo: otherOrg})}, status: 400, err: "invalid_grant", code: "MP-122"},
		{name: "x5c signed with another key", g: grant{key: clientKey(t, 3), x5c: f.adminCert, claims: baseClaims(f.adminID, "idporten:dcr.read", now)},
			status: 400, err: "invalid_grant", code: "MP-124"},
		{name: "bad signature", g: func() grant { g := f.mainGrant(readScope); g.key = clientKey(t, 3); return g }(), status: 400, err: "invalid_grant", code: "MP-124",
			desc: "Invalid assertion. Client authentication failed. Invalid JWT signature."},
		{name: "unknown client", g: with(f.mainGrant(readScope), "iss", "no-such-client"), status: 400, err: "invalid_grant", code: "MP-100",
			desc: "Invalid assertion. Client authentication failed."},
		{name: "aud token endpoint", g: with(f.mainGrant(readScope), "aud", issuer("tt02")+"token"), status: 400, err: "invalid_grant", code: "MP-110"},
		{name: "aud without slash", g: with(f.mainGrant(readScope), "aud", strings.TrimSuffix(issuer("tt02"), "/")), status: 400, err: "invalid_grant", code: "MP-110"},
		{name: "aud of prod", g: with(f.mainGrant(readScope), "aud", issuer("prod")), status: 400, err: "invalid_grant", code: "MP-110"},
		{name: "aud missing", g: with(f.mainGrant(readScope), "aud", nil), status: 400, err: "invalid_grant", code: "MP-110"},
		{name: "lifetime over 120 s", g: with(with(f.mainGrant(readScope), "iat", now.Unix()), "exp", now.Unix()+121), status: 400, err: "invalid_grant", desc: "more than 120 seconds"},
		{name: "expired grant", g: with(with(f.mainGrant(readScope), "iat", now.Unix()-9), "exp", now.Unix()-1), status: 400, err: "invalid_grant", code: "MP-130", desc: "JWT is expired"},
		{name: "iat in the future", g: with(with(f.mainGrant(readScope), "iat", now.Unix()+30), "exp", now.Unix()+100), status: 400, err: "invalid_grant", desc: "Issue time is after now"},
		{name: "iat too old", g: with(with(f.mainGrant(readScope), "iat", now.Unix()-60), "exp", now.Unix()+60), status: 400, err: "invalid_grant", desc: "10 seconds"},
		{name: "iat missing", g: with(f.mainGrant(readScope), "iat", nil), status: 400, err: "invalid_grant", desc: "iat"},
		{name: "nbf in the future", g: with(f.mainGrant(readScope), "nbf", now.Unix()+60), status: 400, err: "invalid_grant", desc: "nbf"},
		{name: "jti reused", g: reused, status: 400, err: "invalid_grant", code: "MP-012", desc: "Grant is used before"},
		{name: "jti reused in a new grant", g: with(with(f.mainGrant(readScope), "jti", reused.claims["jti"]), "exp", now.Unix()+60),
			status: 400, err: "invalid_grant", code: "MP-012", desc: "Grant is used before"},
		{name: "unknown claim", g: with(f.mainGrant(readScope), "foo", "bar"), status: 400, err: "invalid_request", desc: "Invalid assertion"},
		{name: "scope missing", g: with(f.mainGrant(readScope), "scope", nil), status: 400, err: "invalid_scope"},
		{name: "scope not on client", g: f.mainGrant(readScope + " altinn:broker.write"), status: 400, err: "invalid_scope", code: "MP-200",
			desc: "Token request contains invalid scopes for client, altinn:broker.write"},
		{name: "unknown scope", g: f.mainGrant("altinn:serviceowners/read"), status: 400, err: "invalid_scope", code: "MP-200"},
		{name: "scope not for maskinporten", g: odd("altinn:portal/enduser"), status: 400, err: "invalid_scope", code: "MP-201"},
		{name: "scope not granted", g: odd("nav:pensjon/v3/alderspensjon"), status: 403, err: "forbidden", code: "MP-250",
			desc: "Consumer has not been granted access to the scope nav:pensjon/v3/alderspensjon."},
		{name: "client lifetime lowered by at_max_age", g: odd(readScope), status: 200, check: func(t *testing.T, _ map[string]any, b map[string]any) {
			if b["expires_in"] != 599.0 {
				t.Errorf("expires_in %v, want 599 (client 600 s, scope 3600 s)", b["expires_in"])
			}
		}},
		{name: "consumer_org delegated", g: sup("nav:pensjon/v3/alderspensjon", otherOrg), status: 200, check: func(t *testing.T, c, _ map[string]any) {
			if c["consumer"].(map[string]any)["ID"] != "0192:"+otherOrg || c["supplier"].(map[string]any)["ID"] != "0192:"+sim.DefaultOrgNo {
				t.Errorf("consumer %v supplier %v", c["consumer"], c["supplier"])
			}
			if c["delegation_source"] != "https://tt02.altinn.no/" {
				t.Errorf("delegation_source %v", c["delegation_source"])
			}
		}},
		{name: "consumer_org not delegated", g: sup("skatteetaten:inntekt", otherOrg), status: 403, err: "forbidden", code: "MP-251",
			desc: "Consumer 311234560 has not delegated access to the scope skatteetaten:inntekt to supplier 313554430."},
		{name: "consumer_org own organisation", g: sup("nav:pensjon/v3/alderspensjon", sim.DefaultOrgNo), status: 400, err: "invalid_request",
			desc: "The combination consumer_org in claim and delegation scope on client is invalid"},
		{name: "authorization_details unknown type", g: with(f.mainGrant(readScope), "authorization_details", []any{map[string]any{"type": "urn:x"}}),
			status: 400, err: "invalid_request", code: "MP-301"},
		{name: "authorization_details unknown field", g: with(f.mainGrant(readScope), "authorization_details", []any{map[string]any{"type": "urn:altinn:systemuser", "x": 1}}),
			status: 400, err: "invalid_request", code: "MP-302"},
	}
	jwks := f.publishedKeys("tt02")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.token("tt02", tc.g.sign(t))
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %v", res.status, tc.status, res.body)
			}
			if res.header.Get("Server-Timing") == "" {
				t.Error("no Server-Timing header")
			}
			if tc.status == 200 {
				claims := verifyToken(t, res.body["access_token"].(string), jwks)
				if claims["iss"] != issuer("tt02") || claims["token_type"] != "Bearer" {
					t.Errorf("claims %v", claims)
				}
				if tc.check != nil {
					tc.check(t, claims, res.body)
				}
				return
			}
			checkTokenError(t, res.body, tc.err, tc.code, tc.desc)
		})
	}
}

func checkTokenError(t *testing.T, body map[string]any, wantErr, code, desc string) {
	t.Helper()
	if body["error"] != wantErr {
		t.Errorf("error %v, want %s (%v)", body["error"], wantErr, body)
	}
	d, _ := body["error_description"].(string)
	if !traceSuffix.MatchString(d) {
		t.Errorf("error_description %q does not end with a trace id", d)
	}
	if desc != "" && !strings.Contains(d, desc) {
		t.Errorf("error_description %q does not contain %q", d, desc)
	}
	uri, hasURI := body["error_uri"]
	switch {
	case code == "" && hasURI:
		t.Errorf("unexpected error_uri %v", uri)
	case code != "" && uri != baseURL+"/sim/tt02/maskinporten/errors/"+code:
		t.Errorf("error_uri %v, want .../errors/%s", uri, code)
	}
}

func (h *harness) publishedKeys(env string) jose.JSONWebKeySet {
	h.t.Helper()
	resp, err := h.srv.Client().Get(h.srv.URL + "/sim/" + env + "/maskinporten/jwk")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		h.t.Fatal(err)
	}
	return set
}

// verifyToken checks an access token against a published JWKS with go-jose.
func verifyToken(t *testing.T, tok string, set jose.JSONWebKeySet) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", parsed.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("verify token: %v", err)
	}
	return claims
}

func TestTokenRequestParameters(t *testing.T) {
	f := newFixture(t)
	bearer := "urn:ietf:params:oauth:grant-type:jwt-bearer"
	cases := []struct {
		name   string
		form   url.Values
		status int
		err    string
		code   string
	}{
		{"missing grant_type", url.Values{"assertion": {f.mainGrant(readScope).sign(t)}}, 400, "invalid_request", ""},
		{"other grant_type", url.Values{"grant_type": {"client_credentials"}, "assertion": {f.mainGrant(readScope).sign(t)}}, 400, "unsupported_grant_type", ""},
		{"missing assertion", url.Values{"grant_type": {bearer}}, 400, "invalid_request", ""},
		{"assertion not a JWT", url.Values{"grant_type": {bearer}, "assertion": {"abc"}}, 400, "invalid_request", "MP-011"},
		{"assertion header not JSON", url.Values{"grant_type": {bearer}, "assertion": {"YWJj.e30.c2ln"}}, 400, "invalid_request", "MP-011"},
		{"extra parameters ignored", url.Values{"grant_type": {bearer}, "assertion": {f.mainGrant(readScope).sign(t)},
			"client_id": {"x"}, "scope": {"y"}, "resource": {"z"}}, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.postToken("tt02", tc.form)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %v", res.status, tc.status, res.body)
			}
			if tc.status != 200 {
				checkTokenError(t, res.body, tc.err, tc.code, "")
			}
		})
	}
	t.Run("GET not allowed", func(t *testing.T) {
		resp, err := f.srv.Client().Get(f.srv.URL + "/sim/tt02/maskinporten/token")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestTokenQuirks(t *testing.T) {
	f := newFixture(t, func(c *sim.Config) {
		c.Quirks = sim.Quirks{AllowUnknownClaims: true, AcceptAudienceWithoutSlash: true, NarrowScopes: true, ForbiddenStatus: 400}
	})
	g := f.mainGrant(readScope + " altinn:broker.write")
	g.claims["foo"] = "bar"
	g.claims["aud"] = strings.TrimSuffix(issuer("tt02"), "/")
	res := f.token("tt02", g.sign(t))
	if res.status != 200 || res.body["scope"] != readScope {
		t.Fatalf("lenient grant: %d %v", res.status, res.body)
	}
	odd := grant{key: clientKey(t, 1), kid: "seed-odd", claims: baseClaims("seeded-odd-client", "nav:pensjon/v3/alderspensjon", f.now("tt02"))}
	if res := f.token("tt02", odd.sign(t)); res.status != 400 || res.body["error"] != "forbidden" {
		t.Errorf("forbidden status quirk: %d %v", res.status, res.body)
	}
}

func TestMetadataAndJWKS(t *testing.T) {
	h := newHarness(t)
	for _, env := range sim.Environments {
		resp, err := h.srv.Client().Get(h.srv.URL + "/sim/" + env + "/maskinporten/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		iss := issuer(env)
		if md["issuer"] != iss || md["token_endpoint"] != iss+"token" || md["jwks_uri"] != iss+"jwk" {
			t.Errorf("%s metadata not self-consistent: %v", env, md)
		}
		if resp.Header.Get("Server-Timing") == "" {
			t.Error("no Server-Timing header")
		}
		set := h.publishedKeys(env)
		if len(set.Keys) != 1 || set.Keys[0].Algorithm != "RS256" || set.Keys[0].Use != "sig" || !set.Keys[0].IsPublic() {
			t.Errorf("%s jwks: %+v", env, set)
		}
	}
	if h.publishedKeys("tt02").Keys[0].KeyID == h.publishedKeys("prod").Keys[0].KeyID {
		t.Error("tt02 and prod share a signing key")
	}
}

// A token from one environment is worthless in the other.
func TestEnvironmentsAreSeparate(t *testing.T) {
	h := newHarness(t)
	tt02 := h.adminToken("tt02")
	var out map[string]any
	if st := h.api("prod", "GET", "/clients", tt02, nil, &out); st != http.StatusUnauthorized {
		t.Errorf("tt02 token in prod: %d", st)
	}
	// The tt02 admin certificate is not from prod's CA.
	creds, _ := h.sim.AdminCredentials("tt02")
	prodCreds, _ := h.sim.AdminCredentials("prod")
	key, chain := parseCreds(t, creds)
	c := baseClaims(prodCreds.ClientID, "idporten:dcr.read", h.now("prod"))
	c["aud"] = issuer("prod")
	res := h.token("prod", grant{key: key, x5c: chain, claims: c}.sign(t))
	if res.status != 400 || !strings.HasSuffix(res.body["error_uri"].(string), "/sim/prod/maskinporten/errors/MP-120") {
		t.Errorf("tt02 certificate in prod: %d %v", res.status, res.body)
	}
	if creds.ClientID == prodCreds.ClientID {
		t.Error("both environments have the same admin client")
	}
}
