package tryit_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"portal/internal/tryit"
)

// FuzzTryExplain feeds Explain's parser (status lines, JSON bodies, plain text, JWS, private
// key detection) arbitrary text. It must never panic, must refuse what looks private without
// quoting it, and must give findings that are complete and encodable. `make test` runs the
// seeds only.
func FuzzTryExplain(f *testing.F) {
	for _, s := range []string{
		`{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Expired key. (trace_id: 356666143081bbec11d293753e9702ca)","error_uri":"https://maskinporten.no/errors/MP-121"}`,
		`{"error":"forbidden","error_description":"Consumer has not been granted access to the scope x. (correlation id: 2d4fa134-eacb-eae8-63f4-eeb2ea408979)"}`,
		"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\n\r\n" + `{"title":"Unauthorized","status":401}`,
		"HTTP/1.1 403 Forbidden\r\n\r\n",
		"Org or AppId must be defined.",
		`{"title":"Bad Request","status":400}`,
		"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJhdWQiOiJodHRwczovL3Rlc3QubWFza2lucG9ydGVuLm5vLyIsImlzcyI6ImMiLCJzY29wZSI6ImEiLCJpYXQiOjEsImV4cCI6MTIxfQ.c2ln",
		"eyJhbGciOiJSUzI1NiIsIng1YyI6WyJBQT09Il19.eyJjbGllbnRfaWQiOiJjIiwiY29uc3VtZXIiOnt9fQ.c2ln",
		"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
		`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}`,
		`{"access_token":"a.b.c"}`,
		"MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==",
		"HTTP/2 500\n\n",
		"",
	} {
		f.Add(s)
	}
	c := tryit.Context{Env: "tt02", Issuer: "https://test.maskinporten.no/", OtherIssuers: []string{"https://maskinporten.no/"},
		TokenURL: "https://test.maskinporten.no/token", Now: explainNow,
		Target: &tryit.Target{ClientID: "c", OrgNo: "313554430", Scopes: []string{"a"}}}
	f.Fuzz(func(t *testing.T, text string) {
		x, err := tryit.Explain(text, c)
		if tryit.LooksPrivate(text) && len(text) <= tryit.MaxExplainInput {
			if !errors.Is(err, tryit.ErrPrivateKey) {
				t.Fatalf("private-looking input not refused: %v", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, tryit.ErrUnrecognised) && !errors.Is(err, tryit.ErrTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if x.Kind == "" {
			t.Fatal("no kind")
		}
		for _, f := range x.Findings {
			if f.Code == "" || f.Title == "" || f.Severity == "" {
				t.Fatalf("incomplete finding %+v", f)
			}
		}
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if x.Token != nil && x.Token.Value != "" {
			t.Fatal("a token's value came out unrevealed")
		}
		if len(text) > 40 && strings.Count(text, ".") == 2 && strings.Contains(string(b), text) {
			t.Fatal("the explanation carries the whole token")
		}
	})
}
