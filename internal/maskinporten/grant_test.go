package maskinporten

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func verifyRS(t *testing.T, jwt string, pub *rsa.PublicKey, hash crypto.Hash) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("got %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	h := hash.New()
	h.Write([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, hash, h.Sum(nil), sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
}

func TestSignGrant(t *testing.T) {
	key, _, cert := testKeys(t)
	iat := time.Unix(1757498372, 0)
	tests := []struct {
		name       string
		signer     Signer
		grant      Grant
		hash       crypto.Hash
		wantHeader string
		wantClaims string
	}{
		{
			name:       "kid RS256",
			signer:     Signer{Key: key, KeyID: "acme_altinn_2025_Q3"},
			grant:      Grant{Audience: "https://test.maskinporten.no/", ClientID: "826acbbc-ee17-4946-af92-cf4885ebe951", Scopes: []string{"altinn:broker.read", "altinn:broker.write"}, JTI: "j-1", IssuedAt: iat},
			hash:       crypto.SHA256,
			wantHeader: `{"alg":"RS256","kid":"acme_altinn_2025_Q3"}`,
			wantClaims: `{"aud":"https://test.maskinporten.no/","iss":"826acbbc-ee17-4946-af92-cf4885ebe951","scope":"altinn:broker.read altinn:broker.write","iat":1757498372,"exp":1757498492,"jti":"j-1"}`,
		},
		{
			name:       "kid RS512 with resource, consumer_org and short lifetime",
			signer:     Signer{Key: key, KeyID: "k", Alg: RS512},
			grant:      Grant{Audience: "https://maskinporten.no/", ClientID: "c", Scopes: []string{"difitest:test2"}, Resource: []string{"https://api.example/"}, ConsumerOrg: "910753614", Lifetime: 30 * time.Second, JTI: "j-2", IssuedAt: iat},
			hash:       crypto.SHA512,
			wantHeader: `{"alg":"RS512","kid":"k"}`,
			wantClaims: `{"aud":"https://maskinporten.no/","iss":"c","scope":"difitest:test2","resource":["https://api.example/"],"consumer_org":"910753614","iat":1757498372,"exp":1757498402,"jti":"j-2"}`,
		},
		{
			name:       "x5c RS384",
			signer:     Signer{Key: key, Chain: []*x509.Certificate{cert}, Alg: RS384},
			grant:      Grant{Audience: "https://test.maskinporten.no/", ClientID: "admin", Scopes: []string{"idporten:dcr.read"}, JTI: "j-3", IssuedAt: iat},
			hash:       crypto.SHA384,
			wantHeader: `{"alg":"RS384","x5c":["` + base64.StdEncoding.EncodeToString(cert.Raw) + `"]}`,
			wantClaims: `{"aud":"https://test.maskinporten.no/","iss":"admin","scope":"idporten:dcr.read","iat":1757498372,"exp":1757498492,"jti":"j-3"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwt, err := SignGrant(tt.grant, tt.signer)
			if err != nil {
				t.Fatal(err)
			}
			verifyRS(t, jwt, &key.PublicKey, tt.hash)
			d, err := Decode(jwt)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(d.RawHeader); got != tt.wantHeader {
				t.Errorf("header\n got %s\nwant %s", got, tt.wantHeader)
			}
			if got := string(d.RawClaims); got != tt.wantClaims {
				t.Errorf("claims\n got %s\nwant %s", got, tt.wantClaims)
			}
		})
	}
}

func TestSignGrantDefaults(t *testing.T) {
	key, _, _ := testKeys(t)
	jwt, err := SignGrant(Grant{Audience: "https://test.maskinporten.no/", ClientID: "c", Scopes: []string{"s"}}, Signer{Key: key, KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(jwt)
	if err != nil {
		t.Fatal(err)
	}
	if life, ok := d.Lifetime(); !ok || life != MaxGrantLifetime {
		t.Errorf("lifetime = %v, %v; want %v", life, ok, MaxGrantLifetime)
	}
	jti, _ := d.ClaimString("jti")
	if len(jti) != 36 {
		t.Errorf("jti %q is not a UUID", jti)
	}
	if _, ok := d.Claims["resource"]; ok {
		t.Error("resource sent though not asked for")
	}
}

func TestGrantAndSignerErrors(t *testing.T) {
	key, other, cert := testKeys(t)
	good := Grant{Audience: "https://test.maskinporten.no/", ClientID: "c", Scopes: []string{"s"}}
	tests := []struct {
		name   string
		grant  func(Grant) Grant
		signer Signer
	}{
		{"no audience", func(g Grant) Grant { g.Audience = ""; return g }, Signer{Key: key, KeyID: "k"}},
		{"relative audience", func(g Grant) Grant { g.Audience = "/token"; return g }, Signer{Key: key, KeyID: "k"}},
		{"no client", func(g Grant) Grant { g.ClientID = ""; return g }, Signer{Key: key, KeyID: "k"}},
		{"no scope", func(g Grant) Grant { g.Scopes = nil; return g }, Signer{Key: key, KeyID: "k"}},
		{"scope with space", func(g Grant) Grant { g.Scopes = []string{"a b"}; return g }, Signer{Key: key, KeyID: "k"}},
		{"lifetime too long", func(g Grant) Grant { g.Lifetime = 121 * time.Second; return g }, Signer{Key: key, KeyID: "k"}},
		{"negative lifetime", func(g Grant) Grant { g.Lifetime = -time.Second; return g }, Signer{Key: key, KeyID: "k"}},
		{"bad consumer_org", func(g Grant) Grant { g.ConsumerOrg = "12345"; return g }, Signer{Key: key, KeyID: "k"}},
		{"empty resource", func(g Grant) Grant { g.Resource = []string{""}; return g }, Signer{Key: key, KeyID: "k"}},
		{"no key", nil, Signer{KeyID: "k"}},
		{"neither kid nor x5c", nil, Signer{Key: key}},
		{"both kid and x5c", nil, Signer{Key: key, KeyID: "k", Chain: []*x509.Certificate{cert}}},
		{"certificate of another key", nil, Signer{Key: other, Chain: []*x509.Certificate{cert}}},
		{"nil certificate", nil, Signer{Key: key, Chain: []*x509.Certificate{nil}}},
		{"HS256", nil, Signer{Key: key, KeyID: "k", Alg: "HS256"}},
		{"none", nil, Signer{Key: key, KeyID: "k", Alg: "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := good
			if tt.grant != nil {
				g = tt.grant(g)
			}
			_, err := SignGrant(g, tt.signer)
			if !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("err = %v, want ErrInvalidGrant", err)
			}
		})
	}
}

func TestClientGrantUsesIssuerAndClock(t *testing.T) {
	clock := newFakeClock()
	c, err := New(Config{Issuer: "https://test.maskinporten.no/", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := c.Grant("c", "a", "b").Claims(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if claims.Audience != "https://test.maskinporten.no/" || claims.IssuedAt != clock.Now().Unix() || claims.Scope != "a b" {
		t.Errorf("claims = %+v", claims)
	}
	if c.TokenEndpoint() != "https://test.maskinporten.no/token" || c.JWKSURI() != "https://test.maskinporten.no/jwk" {
		t.Errorf("endpoints %s %s", c.TokenEndpoint(), c.JWKSURI())
	}
	b, _ := json.Marshal(claims)
	if strings.Contains(string(b), "consumer_org") {
		t.Errorf("empty consumer_org sent: %s", b)
	}
}
