package sim

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// FuzzParseGrant feeds arbitrary assertions to the grant parser: it must never panic, and what
// it accepts must be three parts whose signing input is the first two.
func FuzzParseGrant(f *testing.F) {
	seeds := []string{
		"",
		"a.b.c",
		"...",
		b64(`{"alg":"RS256","kid":"k"}`) + "." + b64(`{"iss":"c","aud":"x","iat":1,"exp":2,"scope":"s"}`) + ".c2ln",
		b64(`{"alg":"RS256","x5c":["AAAA"]}`) + "." + b64(`{"iss":"c","foo":1}`) + ".c2ln",
		b64(`{"alg":"RS256","x5c":"AAAA"}`) + "." + b64(`{"iat":1.5e3,"exp":"12"}`) + ".c2ln",
		b64(`{"alg":null,"kid":null,"x5c":null}`) + "." + b64(`{}`) + ".c2ln",
		b64(`[]`) + "." + b64(`{}`) + ".c2ln",
		b64(`{"alg":"RS256"}`) + "." + b64(`{"aud":["a","b"],"resource":["r"],"authorization_details":[{}]}`) + ".c2ln",
		b64(`{"alg":"RS256"}`) + "." + b64(`{} {}`) + ".c2ln",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := parseGrant(s)
		if err != nil {
			return
		}
		if strings.Count(s, ".") != 2 || !strings.HasPrefix(s, string(g.signingInput)+".") {
			t.Fatalf("accepted %q with signing input %q", s, g.signingInput)
		}
		_, _ = numericDate(g.claims.Iat)
		_, _ = numericDate(g.claims.Exp)
		_, _ = audience(g.claims.Aud)
		_, _ = resources(g.claims.Resource)
		if g.x5c != nil {
			_, _ = parseX5C(g.x5c)
		}
	})
}

// FuzzQueryParams feeds arbitrary query strings to the self-service API's parameter parsers.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{
		"", "inactive=true", "inactive=TRUE&inactive=false", "accessible_for_all=true&integration_type=MASKINPORTEN&inactive=false",
		"delegated_sources=true", "integration_type=foo", "accessible_for_all=%00", "integration_type=&integration_type=idporten",
	} {
		f.Add(s)
	}
	sc := &Scope{Name: "a:b", Active: true, AllowedIntegrationTypes: []string{"maskinporten"}}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		v, fes := parseBoolParam(q, "inactive")
		if len(fes) > 0 && v {
			t.Fatal("true with an error")
		}
		filt, fes := parseScopeFilter(q)
		if len(fes) == 0 {
			_ = filt.match(sc)
		}
	})
}
