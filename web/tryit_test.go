package web_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/clients"
)

// tryFixture is a team member with an Altinn integration in tt02 and a key the portal keeps.
func tryFixture(t *testing.T) (*app, *client, string, string) {
	t.Helper()
	return tryFixtureWith(t, clients.AltinnServiceOwnerScopes)
}

// tryFixtureWith is tryFixture with the integration's scopes.
func tryFixtureWith(t *testing.T, scopes []string) (*app, *client, string, string) {
	t.Helper()
	a, c, team := signedInTeamMember(t)
	id, err := a.clients.Create(t.Context(), a.principalOf("dev@example.no"), metaFor(), "tt02", clients.Draft{Name: "Tried",
		Description: "Gets tried", TeamID: mustID(t, team), Scopes: scopes, Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	path := "/envs/tt02/integrations/" + id + "/keys"
	_, form := keysPage(t, c, path)
	form.Set("kid", "tried-kept")
	form.Set("bits", "2048")
	form.Set("alg", "RS256")
	form.Set("custody", clients.CustodyKept)
	if p := generateKey(t, c, path, form); p.status != http.StatusSeeOther {
		t.Fatalf("add generated key: %d %s", p.status, p.body)
	}
	return a, c, id, "/envs/tt02/integrations/" + id + "/try"
}

// formOf returns a form's fields as a browser would send them (checked boxes only).
func formOf(p page, sel string) url.Values {
	v := url.Values{}
	p.doc.Find(sel + ` input, ` + sel + ` select`).Each(func(_ int, s *goquery.Selection) {
		n, ok := s.Attr("name")
		if !ok {
			return
		}
		if typ, _ := s.Attr("type"); typ == "checkbox" {
			if _, on := s.Attr("checked"); !on {
				return
			}
		}
		if goquery.NodeName(s) == "select" {
			val, _ := s.Find("option[selected]").Attr("value")
			v.Add(n, val)
			return
		}
		val, _ := s.Attr("value")
		v.Add(n, val)
	})
	return v
}

func stepOK(t *testing.T, p page, name string) {
	t.Helper()
	r := p.doc.Find(`[data-testid="result-` + name + `"]`)
	if ok, _ := r.Attr("data-ok"); ok != "true" {
		t.Fatalf("step %s not ok (%d): %s", name, r.Length(), strings.TrimSpace(r.Text()))
	}
}

func TestTryRunAllWithKeptKeyInTest(t *testing.T) {
	a, c, id, path := tryFixture(t)
	p := c.get("/envs/tt02/integrations/" + id)
	if href, _ := p.doc.Find(`[data-testid="try-it"]`).Attr("href"); href != path {
		t.Fatalf("try link %q", href)
	}
	p = c.get(path)
	if p.status != http.StatusOK {
		t.Fatalf("try page: %d %s", p.status, p.body)
	}
	if !strings.Contains(text(p, `[data-testid="preview-claims"]`), "altinn:serviceowner") ||
		!strings.Contains(text(p, `[data-testid="preview-header"]`), "tried-kept") {
		t.Fatalf("preview: %s", p.doc.Find(`[data-testid="grant-preview"]`).Text())
	}
	if !strings.Contains(p.doc.Find(`[data-testid="signer"]`).Text(), "private key never leaves your machine") {
		t.Fatal("the signer does not say the key stays on the machine")
	}
	form := formOf(p, `form[data-testid="grant-form"]`)
	// "Run all" lands at the results, not at the top of the page.
	if action, _ := p.doc.Find(`[data-testid="run-all"]`).Attr("formaction"); action != path+"/grant#results" {
		t.Errorf("run all posts to %q", action)
	}
	form.Set("how", "run")
	form.Set("org", "ttd") // the simulator's service owner
	form.Set("test", "true")
	p = c.post(path+"/grant", form)
	if p.status != http.StatusOK {
		t.Fatalf("run all: %d %s", p.status, p.body)
	}
	if p.doc.Find(`#results [data-testid="result-grant"]`).Length() != 1 {
		t.Error("the results region does not hold the run's first result")
	}
	// The portal signed this grant: the page shows that grant, not a preview of another.
	if p.doc.Find(`[data-testid="grant-preview"]`).Length() != 0 || p.doc.Find(`[data-signer]`).Length() != 0 {
		t.Error("after a run with the kept key the page still offers a preview and the browser signer")
	}
	for _, s := range []string{"grant", "token", "exchange", "instances"} {
		stepOK(t, p, s)
	}
	if !strings.Contains(text(p, `[data-testid="result-exchange"] [data-testid="step-request"]`), "test=true") {
		t.Error("the exchange did not ask for test=true")
	}
	tok := p.doc.Find(`[data-testid="result-token"]`)
	if !strings.Contains(tok.Find(`[data-testid="curl"]`).Text(), "$GRANT") || tok.Find(`[data-testid="secret"]`).Length() != 0 {
		t.Fatalf("token step shows a secret unasked: %s", tok.Text())
	}
	if tok.Find(`[data-testid="claims"] tr`).Length() < 3 {
		t.Error("the token's claims are not shown")
	}
	if n, _ := tok.Find(`[data-testid="countdown"]`).Attr("data-countdown"); n == "" {
		t.Error("the token's expiry has no countdown")
	}
	if n := p.doc.Find(`[data-testid="result-exchange"] [data-testid="tokens-side-by-side"] [data-testid="claims"]`).Length(); n != 2 {
		t.Errorf("the Altinn token is not beside the Maskinporten token (%d tables)", n)
	}
	masked := p.body

	// Reveal the Maskinporten token: shown on this answer only.
	rv := formOf(p, `[data-testid="result-token"] form`)
	p = c.post(path+"/reveal", rv)
	secret := text(p, `[data-testid="result-token"] [data-testid="secret"]`)
	if p.status != http.StatusOK || strings.Count(secret, ".") != 2 {
		t.Fatalf("reveal: %d %q", p.status, secret)
	}
	if strings.Contains(masked, secret) || strings.Contains(a.logs.String(), secret) {
		t.Fatal("the token reached a page unasked, or the log")
	}
	events := mustRecent(t, a)
	for _, e := range events {
		if b, _ := json.Marshal(e); strings.Contains(string(b), secret) {
			t.Fatal("the token reached the audit trail")
		}
	}

	// Details of the first instance, then download its first data element.
	det := formOf(p, `[data-testid="instances"] tbody tr:first-child form`)
	p = c.post(path+"/instance", det)
	stepOK(t, p, "instance")
	href, ok := p.doc.Find(`[data-testid="download"]`).First().Attr("href")
	if !ok {
		t.Fatalf("no download link: %s", p.doc.Find(`[data-testid="result-instance"]`).Text())
	}
	req, _ := http.NewRequest(http.MethodGet, c.base+href, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || len(body) == 0 {
		t.Fatalf("download: %d %v %d bytes", resp.StatusCode, resp.Header, len(body))
	}

	// A viewer may not try.
	a.addUser("look@example.no", "member")
	if err := a.auth.PutMember(t.Context(), adminPrincipal(t, a), mustID(t, teamOf(t, a, "dev@example.no")), "look@example.no", "viewer", metaFor()); err != nil {
		t.Fatal(err)
	}
	v := a.client()
	v.login("look@example.no")
	if p := v.get(path); p.status != http.StatusForbidden {
		t.Fatalf("viewer: %d", p.status)
	}
}

func teamOf(t *testing.T, a *app, email string) string {
	t.Helper()
	p := a.principalOf(email)
	if len(p.Teams) == 0 {
		t.Fatal("no team")
	}
	return itoa(p.Teams[0].TeamID)
}

func TestTryExplainsAPastedGrantForTheOtherEnvironment(t *testing.T) {
	a, c, id, path := tryFixture(t)
	cred, err := a.sim.AdminCredentials("prod")
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	now := time.Now().Unix()
	grant := b64(map[string]string{"alg": "RS256", "kid": "tried-kept"}) + "." +
		b64(map[string]any{"aud": cred.Issuer, "iss": id, "scope": clients.AltinnServiceOwnerScopes[0], "iat": now, "exp": now + 60, "jti": "x1"}) +
		"." + base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
	p := c.get(path)
	form := formOf(p, `form[data-testid="paste-form"]`)
	form.Set("grant_pasted", grant)
	p = c.post(path+"/grant", form)
	if p.status != http.StatusOK {
		t.Fatalf("paste: %d %s", p.status, p.body)
	}
	codes := map[string]bool{}
	p.doc.Find(`[data-testid="result-grant"] [data-testid="finding"]`).Each(func(_ int, s *goquery.Selection) {
		code, _ := s.Attr("data-code")
		codes[code] = true
	})
	if !codes["grant.aud_other_env"] {
		t.Fatalf("findings %v", codes)
	}
	if !strings.Contains(p.doc.Find(`[data-testid="result-grant"]`).Text(), "Fix:") {
		t.Error("no fix shown")
	}
	// The token step fails, and says why.
	p = c.post(path+"/token", formOf(p, `[data-testid="try-step-2"] form`))
	if ok, _ := p.doc.Find(`[data-testid="result-token"]`).Attr("data-ok"); ok != "false" {
		t.Fatalf("token step with a wrong grant: %s", p.doc.Find(`[data-testid="result-token"]`).Text())
	}
	if p.doc.Find(`[data-testid="result-token"] [data-testid="finding"]`).Length() == 0 {
		t.Fatal("a failed token step explains nothing")
	}
}

func TestExplainPage(t *testing.T) {
	a := newSimApp(t)
	a.addUser("dev@example.no", "member")
	c := a.client()
	c.login("dev@example.no")
	if p := c.get("/explain"); p.status != http.StatusOK {
		t.Fatalf("explain page: %d", p.status)
	}
	body := `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Invalid JWT claim aud.","error_uri":"https://docs.digdir.no/docs/Maskinporten/maskinporten_protocol_token#MP-110"}`
	p := c.post("/explain", url.Values{"text": {body}, "env": {"tt02"}})
	if p.status != http.StatusOK {
		t.Fatalf("explain: %d %s", p.status, p.body)
	}
	if code, _ := p.doc.Find(`[data-testid="finding"]`).First().Attr("data-code"); code != "mp.audience" {
		t.Fatalf("finding %q: %s", code, p.doc.Find(`[data-testid="explanation"]`).Text())
	}

	priv := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	p = c.post("/explain", url.Values{"text": {priv}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(text(p, `[data-testid="form-error"]`), "looks like a private key") {
		t.Fatalf("private key: %d %s", p.status, text(p, `[data-testid="form-error"]`))
	}
	if strings.Contains(p.body, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7") {
		t.Fatal("the private key was sent back")
	}
}

// Signing with a kept key shows the signed grant's own claims, once, and no browser signer.
func TestTrySignWithKeptKeyShowsThatGrant(t *testing.T) {
	t.Parallel()
	_, c, _, path := tryFixture(t)
	p := c.get(path)
	form := formOf(p, `form[data-testid="grant-form"]`)
	form.Set("how", "kept")
	p = c.post(path+"/grant", form)
	stepOK(t, p, "grant")
	if p.doc.Find(`[data-testid="grant-preview"]`).Length() != 0 || p.doc.Find(`[data-signer]`).Length() != 0 {
		t.Fatal("a preview with another jti, or the browser signer, beside the signed grant")
	}
	if n := strings.Count(p.doc.Find("main").Text(), "jti"); n != 1 {
		t.Errorf("the page shows %d jti claims, want the signed grant's one", n)
	}
}
