package tryit_test

// Explain and the local grant checks on their own: error bodies as the upstreams send them
// (reference §1.8, §3, §4), grants with each mistake, tokens, and private keys pasted by
// mistake. No simulator is needed.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"portal/internal/maskinporten"
	"portal/internal/tryit"
)

const (
	testIssuer = "https://test.maskinporten.no/"
	prodIssuer = "https://maskinporten.no/"
	clientID   = "826acbbc-ee17-4946-af92-cf4885ebe951"
	orgNo      = "313554430"
)

var explainNow = time.Date(2025, 9, 10, 10, 0, 0, 0, time.UTC)

func jwkOf(k *rsa.PrivateKey, kid string, exp time.Time) maskinporten.JWK {
	return maskinporten.JWK{Kty: "RSA", Kid: kid, Alg: "RS256", Use: "sig",
		N: base64.RawURLEncoding.EncodeToString(k.N.Bytes()), E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		Exp: exp.Unix()}
}

// explainContext is tt02 with a client holding key 0 as "k1" until a year on.
func explainContext(tb testing.TB) tryit.Context {
	return tryit.Context{Env: "tt02", Issuer: testIssuer, OtherIssuers: []string{prodIssuer}, TokenURL: testIssuer + "token",
		Now: explainNow, Sent: true,
		Target: &tryit.Target{ClientID: clientID, OrgNo: orgNo, Scopes: []string{"altinn:serviceowner/instances.read", "krr:global/kontaktinformasjon.read"},
			Keys:   []maskinporten.JWK{jwkOf(clientKey(tb, 0), "k1", explainNow.AddDate(1, 0, 0))},
			Usable: []string{"altinn:serviceowner/instances.read"}}}
}

func goodClaims() map[string]any {
	return map[string]any{"aud": testIssuer, "iss": clientID, "scope": "altinn:serviceowner/instances.read",
		"iat": explainNow.Unix(), "exp": explainNow.Unix() + 120, "jti": "a1b2c3"}
}

func TestTryExplainMaskinportenErrors(t *testing.T) {
	t.Parallel()
	c := explainContext(t)
	for _, tc := range []struct {
		name, text, code string
		status           int
	}{
		{"expired key, captured", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Expired key. (trace_id: 356666143081bbec11d293753e9702ca)","error_uri":"https://maskinporten.no/errors/MP-121"}`, tryit.MPKeyExpired, 0},
		{"with the status line", "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n" + `{"error":"invalid_scope","error_description":"Token request contains invalid scopes for client, altinn:serviceowners/read (trace_id: bd1d0e3bfb1c7a7bd99fd447714a316c)","error_uri":"https://test.maskinporten.no/errors/MP-200"}`, tryit.MPScopeNotOnClient, 400},
		{"forbidden without uri", `{"error":"forbidden","error_description":"Consumer has not been granted access to the scope folkeregister:deling/offentligutenhjemmel. (correlation id: 2d4fa134-eacb-eae8-63f4-eeb2ea408979)"}`, tryit.MPScopeNotGranted, 0},
		{"not delegated", `{"error":"forbidden","error_description":"Consumer 958935420 has not delegated access to the scope folkeregister:deling/offentligutenhjemmel to supplier 920204368. (correlation id: 2d4fa134-eacb-eae8-63f4-eeb2ea408979)"}`, tryit.MPScopeNotDelegated, 0},
		{"unknown kid", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Unknown key identifier (kid) for client. (correlation id: 2d4fa134-eacb-eae8-63f4-eeb2ea408979)"}`, tryit.MPUnknownKid, 0},
		{"kid required", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Invalid JWT. The client requires pre-registered jwk and no key identifier (kid) provided"}`, tryit.MPKidRequired, 0},
		{"client unknown", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed."}`, tryit.MPClientUnknown, 0},
		{"aud on the Skyporten issuer", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Invalid JWT claim aud"}`, tryit.MPAudience, 0},
		{"reused", `{"error":"invalid_grant","error_description":"Grant is used before","error_uri":"https://test.maskinporten.no/errors/MP-012"}`, tryit.MPJTIReused, 0},
		{"signature", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Invalid JWT signature.","error_uri":"https://test.maskinporten.no/errors/MP-124"}`, tryit.MPSignature, 0},
		{"certificate", `{"error":"invalid_grant","error_description":"x","error_uri":"https://test.maskinporten.no/errors/MP-120"}`, tryit.MPCertificate, 0},
		{"orgno", `{"error":"invalid_grant","error_description":"x","error_uri":"https://test.maskinporten.no/errors/MP-122"}`, tryit.MPCertOrgNo, 0},
		{"x5c", `{"error":"invalid_grant","error_description":"Invalid JWT header x5c"}`, tryit.MPX5C, 0},
		{"expired grant", `{"error":"invalid_grant","error_description":"JWT is expired","error_uri":"https://test.maskinporten.no/errors/MP-130"}`, tryit.MPGrantExpired, 0},
		{"parameter", `{"error":"invalid_request","error_description":"Invalid assertion. Invalid parameter value","error_uri":"https://test.maskinporten.no/errors/MP-011"}`, tryit.MPInvalidParameter, 0},
		{"integration type", `{"error":"invalid_scope","error_description":"Token request contains scopes not allowed for maskinporten, altinn:portal/enduser"}`, tryit.MPScopeNotMaskinport, 0},
		{"authorization details", `{"error":"invalid_request","error_description":"Unknown authorization details type","error_uri":"https://test.maskinporten.no/errors/MP-301"}`, tryit.MPAuthorizationDetail, 0},
		{"lifetime", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Invalid JWT. exp - iat is more than 120 seconds"}`, tryit.MPLifetime, 0},
		{"clock ahead", `{"error":"invalid_grant","error_description":"Issue time is after now"}`, tryit.MPClockAhead, 0},
		{"clock behind", `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Invalid JWT. Issue time is more than 10 seconds before now"}`, tryit.MPClockBehind, 0},
		{"unknown claims", `{"error":"invalid_request","error_description":"Invalid assertion. Unknown claims in JWT: foo"}`, tryit.MPUnknownClaims, 0},
		{"own consumer_org", `{"error":"invalid_request","error_description":"Validation of JWT claim failed: The combination consumer_org in claim and delegation scope on client is invalid"}`, tryit.MPConsumerOrgOwn, 0},
		{"server error", "HTTP/2 503\n\n" + `{"error":"server_error","error_description":"Temporarily unavailable"}`, tryit.MPServerError, 503},
		{"something else", `{"error":"temporarily_unavailable"}`, tryit.MPOther, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := tryit.Explain(tc.text, c)
			if err != nil {
				t.Fatal(err)
			}
			if x.Kind != tryit.ExplainedMaskinportenError || x.Status != tc.status || len(x.Findings) == 0 || x.Findings[0].Code != tc.code {
				t.Fatalf("kind %s, status %d, findings:\n%s", x.Kind, x.Status, describe(x.Findings))
			}
			f := x.Findings[0]
			if f.Severity != tryit.SeverityError || f.Cause == "" || f.Fix == "" || !strings.Contains(f.Cause, "Maskinporten answered") {
				t.Errorf("finding %+v", f)
			}
		})
	}
	// The trace id is kept for Digdir's support; the MP code is the reference.
	x, _ := tryit.Explain(`{"error":"invalid_grant","error_description":"Expired key. (trace_id: 356666143081bbec11d293753e9702ca)","error_uri":"https://maskinporten.no/errors/MP-121"}`, c)
	if f := x.Findings[0]; !strings.Contains(f.Cause, "356666143081bbec11d293753e9702ca") || !strings.HasPrefix(f.Ref, "MP-121") {
		t.Errorf("finding %+v", f)
	}
}

func TestTryExplainAltinnErrors(t *testing.T) {
	t.Parallel()
	c := explainContext(t)
	for _, tc := range []struct {
		name, text string
		codes      []string
		status     int
	}{
		{"exchange 401", `{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.2","title":"Unauthorized","status":401,"traceId":"00-abc-def-00"}`,
			[]string{tryit.ExchangeRefused, tryit.StorageUnauthorized}, 401},
		{"empty 401", "HTTP/1.1 401 Unauthorized\r\n\r\n", []string{tryit.ExchangeRefused}, 401},
		{"empty 403 from Storage", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", []string{tryit.StorageForbidden}, 403},
		{"410", `{"type":"https://docs.altinn.studio","title":"Virksomhetsbruker is no longer available","status":410,"detail":"gone"}`, []string{tryit.ExchangeGone}, 410},
		{"no org or app", `"Org or AppId must be defined."`, []string{tryit.StorageOrgOrApp}, 400},
		{"no org or app, bare", "Org or AppId must be defined.", []string{tryit.StorageOrgOrApp}, 400},
		{"cross-org", "HTTP/1.1 400 Bad Request\n\nAppId must be defined.", []string{tryit.StorageAppRequired}, 400},
		{"date", "Invalid date expression: gt:2025-13 for query key: created", []string{tryit.StorageDateFilter}, 400},
		{"provider", "Invalid token provider: foo. Trusted token providers are 'Maskinporten', 'Id-porten' and 'AltinnStudio'.", []string{tryit.ExchangeProvider}, 400},
		{"no org claim", `{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"Bad Request","status":400,"traceId":"00-1"}`, []string{tryit.StorageNoOrgClaim}, 400},
		{"not found", `{"title":"Not Found","status":404,"detail":"Unable to find instance 0b7e"}`, []string{tryit.StorageNotFound}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			if strings.HasPrefix(text, `"`) {
				text = strings.Trim(text, `"`)
			}
			x, err := tryit.Explain(text, c)
			if err != nil {
				t.Fatal(err)
			}
			if x.Kind != tryit.ExplainedAltinnError || x.Status != tc.status {
				t.Fatalf("kind %s status %d", x.Kind, x.Status)
			}
			for _, code := range tc.codes {
				if !tryit.HasFinding(x.Findings, code) {
					t.Errorf("no %s in:\n%s", code, describe(x.Findings))
				}
			}
		})
	}
}

func TestTryExplainGrants(t *testing.T) {
	t.Parallel()
	k0, k1 := clientKey(t, 0), clientKey(t, 1)
	c := explainContext(t)
	sign := func(k *rsa.PrivateKey, header map[string]any, change func(map[string]any)) string {
		claims := goodClaims()
		if change != nil {
			change(claims)
		}
		return signRaw(t, k, header, claims)
	}
	kid := map[string]any{"alg": "RS256", "kid": "k1"}
	leaf := func(org string, notAfter time.Time) string {
		tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Org", SerialNumber: org},
			NotBefore: notAfter.AddDate(-2, 0, 0), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k1.PublicKey, k1)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	for _, tc := range []struct {
		name  string
		grant string
		ctx   func(*tryit.Context)
		codes []string // wanted; empty means no finding at all
	}{
		{"good", sign(k0, kid, nil), nil, nil},
		{"other environment", sign(k0, kid, func(m map[string]any) { m["aud"] = prodIssuer }), nil, []string{tryit.GrantAudOtherEnv}},
		{"token endpoint", sign(k0, kid, func(m map[string]any) { m["aud"] = testIssuer + "token" }), nil, []string{tryit.GrantAudTokenURL}},
		{"legacy token endpoint", sign(k0, kid, func(m map[string]any) { m["aud"] = "https://maskinporten.no/token" }), nil, []string{tryit.GrantAudTokenURL}},
		{"no slash", sign(k0, kid, func(m map[string]any) { m["aud"] = "https://test.maskinporten.no" }), nil, []string{tryit.GrantAudSlash}},
		{"two audiences", sign(k0, kid, func(m map[string]any) { m["aud"] = []string{testIssuer, prodIssuer} }), nil, []string{tryit.GrantAudWrong}},
		{"no aud", sign(k0, kid, func(m map[string]any) { delete(m, "aud") }), nil, []string{tryit.GrantAudMissing}},
		{"lifetime", sign(k0, kid, func(m map[string]any) { m["exp"] = explainNow.Unix() + 121 }), nil, []string{tryit.GrantLifetime}},
		{"exp before iat", sign(k0, kid, func(m map[string]any) { m["exp"] = explainNow.Unix() - 1 }), nil, []string{tryit.GrantExpBeforeIat, tryit.GrantExpired}},
		{"no times", sign(k0, kid, func(m map[string]any) { m["iat"] = "now" }), nil, []string{tryit.GrantTimesMissing}},
		{"clock ahead", sign(k0, kid, func(m map[string]any) { m["iat"], m["exp"] = explainNow.Unix()+60, explainNow.Unix()+120 }), nil, []string{tryit.GrantIatFuture}},
		{"sent late", sign(k0, kid, func(m map[string]any) { m["iat"], m["exp"] = explainNow.Unix()-30, explainNow.Unix()+90 }), nil, []string{tryit.GrantIatOld}},
		{"pasted long after", sign(k0, kid, nil), func(c *tryit.Context) { c.Sent, c.Now = false, explainNow.Add(time.Hour) }, []string{tryit.GrantExpired}},
		{"no jti", sign(k0, kid, func(m map[string]any) { delete(m, "jti") }), nil, []string{tryit.GrantJTIMissing}},
		{"scope not on client", sign(k0, kid, func(m map[string]any) { m["scope"] = "altinn:serviceowner/instances.write" }), nil, []string{tryit.GrantScopeNotOnClient}},
		{"scope not granted", sign(k0, kid, func(m map[string]any) { m["scope"] = "krr:global/kontaktinformasjon.read" }), nil, []string{tryit.GrantScopeNotUsable}},
		{"no scope", sign(k0, kid, func(m map[string]any) { m["scope"] = " " }), nil, []string{tryit.GrantScopeMissing}},
		{"wrong iss", sign(k0, kid, func(m map[string]any) { m["iss"] = "someone-else" }), nil, []string{tryit.GrantIssuer}},
		{"unknown claims", sign(k0, kid, func(m map[string]any) { m["foo"] = 1 }), nil, []string{tryit.GrantUnknownClaims}},
		{"resource string", sign(k0, kid, func(m map[string]any) { m["resource"] = "https://api.example.no/" }), nil, []string{tryit.GrantResource}},
		{"own consumer_org", sign(k0, kid, func(m map[string]any) { m["consumer_org"] = orgNo }), nil, []string{tryit.GrantConsumerOrg}},
		{"bad consumer_org", sign(k0, kid, func(m map[string]any) { m["consumer_org"] = 123 }), nil, []string{tryit.GrantConsumerOrg}},
		{"unknown kid", sign(k0, map[string]any{"alg": "RS256", "kid": "k9"}, nil), nil, []string{tryit.GrantKidUnknown}},
		{"signed with another key", sign(k1, kid, nil), nil, []string{tryit.GrantSignature}},
		{"expired key", sign(k0, kid, nil), func(c *tryit.Context) { c.Target.Keys[0].Exp = explainNow.Add(-time.Hour).Unix() }, []string{tryit.GrantKeyExpired}},
		{"key expiring", sign(k0, kid, nil), func(c *tryit.Context) { c.Target.Keys[0].Exp = explainNow.Add(72 * time.Hour).Unix() }, []string{tryit.GrantKeyExpiring}},
		{"HS256", sign(k0, map[string]any{"alg": "HS256", "kid": "k1"}, nil), nil, []string{tryit.GrantAlgorithm}},
		{"neither kid nor x5c", sign(k0, map[string]any{"alg": "RS256"}, nil), nil, []string{tryit.GrantNoKidOrX5C}},
		{"both kid and x5c", sign(k0, map[string]any{"alg": "RS256", "kid": "k1", "x5c": []string{"AA=="}}, nil), nil, []string{tryit.GrantKidAndX5C}},
		{"x5c as a string", sign(k1, map[string]any{"alg": "RS256", "x5c": "AA=="}, nil), nil, []string{tryit.GrantX5CInvalid}},
		{"x5c on a client with keys", sign(k1, map[string]any{"alg": "RS256", "x5c": []string{leaf(orgNo, explainNow.AddDate(1, 0, 0))}}, nil), nil, []string{tryit.GrantX5CWithKeys}},
		{"certificate of another org", sign(k1, map[string]any{"alg": "RS256", "x5c": []string{leaf("999888777", explainNow.AddDate(1, 0, 0))}}, nil),
			func(c *tryit.Context) { c.Target.Keys = nil }, []string{tryit.GrantCertOrgNo}},
		{"expired certificate", sign(k1, map[string]any{"alg": "RS256", "x5c": []string{leaf(orgNo, explainNow.Add(-time.Hour))}}, nil),
			func(c *tryit.Context) { c.Target.Keys = nil }, []string{tryit.GrantCertExpired}},
		{"certificate of another key", sign(k0, map[string]any{"alg": "RS256", "x5c": []string{leaf(orgNo, explainNow.AddDate(1, 0, 0))}}, nil),
			func(c *tryit.Context) { c.Target.Keys = nil }, []string{tryit.GrantSignature}},
		{"good certificate", sign(k1, map[string]any{"alg": "RS256", "x5c": []string{leaf(orgNo, explainNow.AddDate(1, 0, 0))}}, nil),
			func(c *tryit.Context) { c.Target.Keys = nil }, nil},
		{"not a JWS", "abc.def", nil, []string{tryit.GrantMalformed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := explainContext(t)
			if tc.ctx != nil {
				tc.ctx(&c)
			}
			fs := tryit.CheckGrant(tc.grant, c)
			if len(tc.codes) == 0 && len(fs) > 0 {
				t.Fatalf("findings on a good grant:\n%s", describe(fs))
			}
			for _, code := range tc.codes {
				if !tryit.HasFinding(fs, code) {
					t.Errorf("no %s in:\n%s", code, describe(fs))
				}
			}
			for _, f := range fs {
				if f.Title == "" || f.Severity == "" {
					t.Errorf("incomplete %+v", f)
				}
			}
		})
	}
	// Pasted, a grant is recognised and explained the same way, and names its client.
	x, err := tryit.Explain("Bearer "+sign(k0, kid, func(m map[string]any) { m["aud"] = prodIssuer }), c)
	if err != nil || x.Kind != tryit.ExplainedGrant || x.ClientID != clientID || !tryit.HasFinding(x.Findings, tryit.GrantAudOtherEnv) ||
		x.Token == nil || x.Token.Value != "" {
		t.Fatalf("pasted grant: %v %+v", err, x)
	}
}

func TestTryExplainTokens(t *testing.T) {
	t.Parallel()
	c := explainContext(t)
	unsigned := func(claims map[string]any) string {
		h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "mp"})
		b, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
	}
	consumer := map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:" + orgNo}
	mpTok := unsigned(map[string]any{"iss": prodIssuer, "client_id": clientID, "consumer": consumer, "scope": "altinn:broker.read",
		"iat": explainNow.Unix() - 600, "exp": explainNow.Unix() - 480})
	x, err := tryit.Explain(mpTok, c)
	if err != nil || x.Kind != tryit.ExplainedMaskinportenToken {
		t.Fatalf("%v %+v", err, x)
	}
	for _, code := range []string{tryit.ExchangeOtherEnv, tryit.ExchangeExpired, tryit.TokenNoServiceOwn} {
		if !tryit.HasFinding(x.Findings, code) {
			t.Errorf("no %s in:\n%s", code, describe(x.Findings))
		}
	}
	// A token response body is explained by its token.
	body, _ := json.Marshal(map[string]any{"access_token": mpTok, "token_type": "Bearer", "expires_in": 119})
	if x, err := tryit.Explain(string(body), c); err != nil || x.Kind != tryit.ExplainedMaskinportenToken {
		t.Errorf("token response: %v %+v", err, x)
	}
	altinnTok := unsigned(map[string]any{"iss": "https://platform.tt02.altinn.no/authentication/api/v1/openid/", "scope": "altinn:broker.read",
		"urn:altinn:orgNumber": orgNo, "consumer": consumer, "iat": explainNow.Unix(), "exp": explainNow.Unix() + 1800})
	x, err = tryit.Explain(altinnTok, c)
	if err != nil || x.Kind != tryit.ExplainedAltinnToken || !tryit.HasFinding(x.Findings, tryit.ExchangeNoOrg) {
		t.Fatalf("altinn token: %v %+v\n%s", err, x, describe(x.Findings))
	}
}

func TestTryExplainRefusesPrivateKeys(t *testing.T) {
	t.Parallel()
	k := clientKey(t, 2)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	pkcs1 := x509.MarshalPKCS1PrivateKey(k)
	jwk := jwkOf(k, "k", time.Time{})
	privJWK, _ := json.Marshal(map[string]string{"kty": "RSA", "kid": "k", "n": jwk.N, "e": jwk.E,
		"d": base64.RawURLEncoding.EncodeToString(k.D.Bytes())})
	cert := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: explainNow, NotAfter: explainNow.AddDate(1, 0, 0)}
	certDER, _ := x509.CreateCertificate(rand.Reader, cert, cert, &k.PublicKey, k)
	parsed, _ := x509.ParseCertificate(certDER)
	pfx, err := pkcs12.Legacy.Encode(k, parsed, nil, "secret")
	if err != nil {
		t.Fatal(err)
	}
	header, _ := json.Marshal(map[string]any{"alg": "RS256", "jwk": json.RawMessage(privJWK)})
	for name, text := range map[string]string{
		"PKCS#8 PEM":           string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		"PKCS#1 PEM":           string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1})),
		"encrypted PEM":        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI\n-----END ENCRYPTED PRIVATE KEY-----",
		"OpenSSH":              "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
		"private JWK":          string(privJWK),
		"JWK set":              `{"keys":[` + string(privJWK) + `]}`,
		"credentials file":     `{"client_id":"x","private_key_pem":"MIIEvQ..."}`,
		"base64 PKCS#8":        base64.StdEncoding.EncodeToString(pkcs8),
		"base64 PKCS#1, lines": wrap(base64.StdEncoding.EncodeToString(pkcs1)),
		"base64 PKCS#12":       base64.StdEncoding.EncodeToString(pfx),
		"JWS wrapping a key":   base64.RawURLEncoding.EncodeToString(header) + ".e30.c2ln",
	} {
		t.Run(name, func(t *testing.T) {
			if !tryit.LooksPrivate(text) {
				t.Fatal("not recognised as a private key")
			}
			_, err := tryit.Explain(text, explainContext(t))
			if !errors.Is(err, tryit.ErrPrivateKey) {
				t.Fatalf("got %v", err)
			}
			for _, line := range strings.Split(text, "\n") {
				if len(line) > 8 && strings.Contains(err.Error(), line) {
					t.Fatal("the refusal quotes the input")
				}
			}
		})
	}
	for _, text := range []string{"hello", "{}", `{"foo":1}`, "a.b", "HTTP/1.1 500 Internal Server Error\n\n"} {
		if _, err := tryit.Explain(text, explainContext(t)); !errors.Is(err, tryit.ErrUnrecognised) {
			t.Errorf("%q: %v", text, err)
		}
	}
	if _, err := tryit.Explain(strings.Repeat("a", tryit.MaxExplainInput+1), explainContext(t)); !errors.Is(err, tryit.ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	// Public material is not refused.
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	for _, text := range []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), base64.StdEncoding.EncodeToString(certDER),
		`{"kty":"RSA","n":"` + jwk.N + `","e":"AQAB"}`} {
		if tryit.LooksPrivate(text) {
			t.Errorf("public material refused: %.40q", text)
		}
	}
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s
}

// TestTryExplainPointsTheRightWay: refusals whose cause is elsewhere than the words suggest
// say where to look: an unknown client whose grant was made for the other environment, and a
// bare 404 from a token endpoint URL that is wrong.
func TestTryExplainPointsTheRightWay(t *testing.T) {
	t.Parallel()
	c := explainContext(t)
	prodGrant := goodClaims()
	prodGrant["aud"] = prodIssuer
	unknown := &maskinporten.Error{Status: 400, Code: "invalid_grant", Description: "Invalid assertion. Client authentication failed.",
		URI: "https://test.maskinporten.no/errors/MP-100", MPCode: "MP-100"}
	for _, tc := range []struct {
		name  string
		err   *maskinporten.Error
		grant string
		want  []string
		not   []string
	}{
		{"MP-100 with production's aud", unknown, grant(t, 0, "k1", prodGrant),
			[]string{"another environment", "aud is " + prodIssuer, "Send the grant to the environment whose issuer is " + prodIssuer}, nil},
		{"MP-100 with this environment's aud", unknown, grant(t, 0, "k1", goodClaims()),
			[]string{"Maskinporten does not know the client"}, []string{"another environment's issuer"}},
		{"404 without a code", &maskinporten.Error{Status: 404}, "",
			[]string{"token endpoint URL (" + testIssuer + "token) is probably wrong", "maskinporten_issuer"}, []string{"()"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := tryit.ExplainMaskinporten(tc.err, tc.grant, c)
			got := fs[0].Title + " | " + fs[0].Cause + " | " + fs[0].Fix
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("says %q:\n%s", w, got)
				}
			}
		})
	}
}
