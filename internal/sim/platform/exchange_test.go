package platform

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const exchangePath = "/authentication/api/v1/exchange/maskinporten"

func TestExchangeRejects(t *testing.T) {
	f := newFixture(t)
	mp, _, strange := testKeys(t)
	now := f.clock.Now()
	scope := "altinn:serviceowner/instances.read"
	with := func(change func(map[string]any)) string {
		c := mpClaims(now, ttdOrgNo, scope)
		change(c)
		return signJWT(t, mp, mpKid, c)
	}
	tests := []struct {
		name   string
		path   string
		header map[string]string
		status int
	}{
		{"no authorization header", exchangePath, nil, 401},
		{"basic scheme", exchangePath, map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401},
		{"not a JWT", exchangePath, bearer("not-a-token"), 401},
		{"signed by an unknown key", exchangePath, bearer(signJWT(t, strange, mpKid, mpClaims(now, ttdOrgNo, scope))), 401},
		{"unknown kid, unknown key", exchangePath, bearer(signJWT(t, strange, "other", mpClaims(now, ttdOrgNo, scope))), 401},
		{"expired beyond the 10 s skew", exchangePath, bearer(with(func(c map[string]any) { c["exp"] = now.Add(-11 * time.Second).Unix() })), 401},
		{"no exp", exchangePath, bearer(with(func(c map[string]any) { delete(c, "exp") })), 401},
		{"nbf beyond the skew", exchangePath, bearer(with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), 401},
		{"prod issuer", exchangePath, bearer(with(func(c map[string]any) { c["iss"] = "https://maskinporten.no/" })), 401},
		{"no issuer", exchangePath, bearer(with(func(c map[string]any) { delete(c, "iss") })), 401},
		{"no consumer", exchangePath, bearer(with(func(c map[string]any) { delete(c, "consumer") })), 401},
		{"consumer with other authority", exchangePath, bearer(with(func(c map[string]any) {
			c["consumer"] = map[string]any{"authority": "iso6523", "ID": "0192:" + ttdOrgNo}
		})), 401},
		{"consumer ID without icd", exchangePath, bearer(with(func(c map[string]any) {
			c["consumer"] = map[string]any{"authority": "iso6523-actorid-upis", "ID": ttdOrgNo}
		})), 401},
		{"id-porten provider", "/authentication/api/v1/exchange/id-porten", bearer(with(func(map[string]any) {})), 401},
		{"unknown provider without token", "/authentication/api/v1/exchange/foo", nil, 401},
		{"unknown provider", "/authentication/api/v1/exchange/foo", bearer(with(func(map[string]any) {})), 400},
		{"test is not a boolean", exchangePath + "?test=1", bearer(with(func(map[string]any) {})), 400},
		{"enterprise user", exchangePath, map[string]string{
			"Authorization": "Bearer " + with(func(map[string]any) {}), "X-Altinn-EnterpriseUser-Authentication": "dXNlcjpwdw==",
		}, 410},
		{"POST", "", nil, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res response
			if tt.path == "" {
				r, err := f.srv.Client().Post(f.srv.URL+exchangePath, "text/plain", nil)
				if err != nil {
					t.Fatal(err)
				}
				r.Body.Close()
				res.status = r.StatusCode
			} else {
				res = f.get(tt.path, tt.header)
			}
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
			}
			switch tt.status {
			case 401:
				pd := decode[map[string]any](t, res.body)
				if pd["title"] != "Unauthorized" || pd["status"] != float64(401) || !strings.HasPrefix(pd["traceId"].(string), "00-") {
					t.Errorf("body = %s, want ProblemDetails", res.body)
				}
				if ct := res.header.Get("Content-Type"); ct != "application/problem+json; charset=utf-8" {
					t.Errorf("content type = %q", ct)
				}
			case 400:
				if tt.name == "unknown provider" {
					want := "Invalid token provider: foo. Trusted token providers are 'Maskinporten', 'Id-porten' and 'AltinnStudio'."
					if string(res.body) != want || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") {
						t.Errorf("body = %q (%s)", res.body, res.header.Get("Content-Type"))
					}
				}
			case 410:
				if pd := decode[map[string]any](t, res.body); pd["title"] != "Virksomhetsbruker is no longer available" {
					t.Errorf("body = %s", res.body)
				}
			}
		})
	}
}

func TestExchangeIssuesAltinnToken(t *testing.T) {
	tests := []struct {
		name    string
		orgNo   string
		scope   string
		query   string
		wantOrg string // "" means no urn:altinn:org claim
	}{
		{"service owner", ttdOrgNo, "altinn:serviceowner/instances.read altinn:serviceowner/instances.write", "", "ttd"},
		{"scope substring is enough", skdOrgNo, "altinn:serviceowners/read", "", "skd"},
		{"no service-owner scope", ttdOrgNo, "altinn:broker.read", "", ""},
		{"not a service owner", plainOrgNo, "altinn:serviceowner/instances.read", "", ""},
		{"digdir", digdirOrgNo, "altinn:serviceowner/instances.read", "", "digdir"},
		{"digdir with test=true", digdirOrgNo, "altinn:serviceowner/instances.read", "?test=true", "ttd"},
		{"digdir with test=false", digdirOrgNo, "altinn:serviceowner/instances.read", "?test=false", "digdir"},
		{"test=true for another org", skdOrgNo, "altinn:serviceowner/instances.read", "?test=True", "skd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			now := f.clock.Now()
			res := f.get(exchangePath+tt.query, map[string]string{"Authorization": "bearer " + f.mpToken(tt.orgNo, tt.scope)})
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, body %s", res.status, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("content type = %q", ct)
			}
			tok := string(res.body)
			if strings.ContainsAny(tok, "\" \n") {
				t.Fatalf("body is not a bare JWT: %q", tok)
			}
			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			h := jws.Signatures[0].Header
			if h.KeyID != f.p.JWKS().Keys[0].KeyID || len(h.KeyID) != 40 || h.ExtraHeaders["typ"] != "JWT" || h.ExtraHeaders["x5t"] == nil {
				t.Errorf("header = %+v", h)
			}
			if _, err := jws.Verify(f.p.JWKS().Keys[0].Key); err != nil {
				t.Fatalf("signature does not verify with the platform key: %v", err)
			}
			c := jwtClaims(t, tok)
			if got, _ := c["urn:altinn:org"].(string); got != tt.wantOrg {
				t.Errorf("urn:altinn:org = %q, want %q", got, tt.wantOrg)
			}
			want := map[string]any{
				"urn:altinn:orgNumber":          tt.orgNo,
				"urn:altinn:authenticatemethod": "maskinporten",
				"urn:altinn:authlevel":          float64(3),
				"iss":                           testBaseURL + "/authentication/api/v1/openid/",
				"scope":                         tt.scope,
				"client_id":                     "826acbbc-ee17-4946-af92-cf4885ebe951",
				"token_type":                    "Bearer",
				"iat":                           float64(now.Unix()),
				"nbf":                           float64(now.Unix()),
				"exp":                           float64(now.Add(30 * time.Minute).Unix()),
			}
			for k, v := range want {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			for _, k := range []string{"aud", "client_amr", "sid"} {
				if _, ok := c[k]; ok {
					t.Errorf("claim %s should be dropped", k)
				}
			}
			if jti, _ := c["jti"].(string); !isGUID(jti) {
				t.Errorf("jti = %v, want a new GUID", c["jti"])
			}
			if cons, _ := c["consumer"].(map[string]any); cons["ID"] != "0192:"+tt.orgNo {
				t.Errorf("consumer = %v", c["consumer"])
			}
		})
	}
}

func TestExchangeSkewAndOptions(t *testing.T) {
	t.Run("expired within skew", func(t *testing.T) {
		f := newFixture(t)
		mp, _, _ := testKeys(t)
		c := mpClaims(f.clock.Now(), ttdOrgNo, "altinn:serviceowner/instances.read")
		c["exp"] = f.clock.Now().Add(-9 * time.Second).Unix()
		if res := f.get(exchangePath, bearer(signJWT(t, mp, mpKid, c))); res.status != 200 {
			t.Fatalf("status = %d", res.status)
		}
	})
	t.Run("sid instead of jti", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Options.ExchangeSID = true })
		c := jwtClaims(t, f.altinnToken(ttdOrgNo, "altinn:serviceowner/instances.read"))
		if c["jti"] != "ii1YvnPPCUHYlZw9_hVwr1UhLVQUdiNV_QKNru4JJGk" || !isGUID(c["sid"].(string)) {
			t.Errorf("jti = %v, sid = %v", c["jti"], c["sid"])
		}
	})
	t.Run("empty errors", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Options.ExchangeEmptyErrors = true })
		if res := f.get(exchangePath, nil); res.status != 401 || len(res.body) != 0 {
			t.Errorf("status %d body %q", res.status, res.body)
		}
	})
}

func TestOpenIDMetadataAndJWKS(t *testing.T) {
	f := newFixture(t)
	res := f.get("/authentication/api/v1/openid/.well-known/openid-configuration", nil)
	if res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
	doc := decode[map[string]any](t, res.body)
	iss := testBaseURL + "/authentication/api/v1/openid/"
	if doc["issuer"] != iss || doc["jwks_uri"] != iss+".well-known/openid-configuration/jwks" {
		t.Errorf("discovery = %s", res.body)
	}
	res = f.get("/authentication/api/v1/openid/.well-known/openid-configuration/jwks", nil)
	set := decode[struct {
		Keys []struct {
			Kty, Use, Kid, E, N string
			X5c                 []string
		}
	}](t, res.body)
	if len(set.Keys) != 1 {
		t.Fatalf("keys = %s", res.body)
	}
	k := set.Keys[0]
	_, altinn, _ := testKeys(t)
	n, err := base64.StdEncoding.DecodeString(k.N)
	if err != nil || new(big.Int).SetBytes(n).Cmp(altinn.N) != 0 {
		t.Errorf("n is not the standard-base64 modulus: %v", err)
	}
	der, _ := base64.StdEncoding.DecodeString(k.X5c[0])
	cert, err := x509.ParseCertificate(der)
	if err != nil || !cert.PublicKey.(*rsa.PublicKey).Equal(&altinn.PublicKey) {
		t.Fatalf("x5c: %v", err)
	}
	thumb, _ := CertificateThumbprint(altinn)
	if k.Kty != "RSA" || k.Use != "sig" || k.Kid != thumb || k.E != "AQAB" {
		t.Errorf("jwk = %+v", k)
	}
}
