package web_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/clients"
)

// sentRecorder keeps every request a client sends, URL and body, to check what left the
// "browser".
type sentRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	sent []string
}

func (r *sentRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	decoded, err := url.QueryUnescape(string(body))
	if err != nil {
		decoded = string(body)
	}
	r.mu.Lock()
	r.sent = append(r.sent, req.URL.String()+"\n"+string(body)+"\n"+decoded)
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func recordSent(c *client) *sentRecorder {
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	r := &sentRecorder{base: base}
	c.hc.Transport = r
	return r
}

// privateMarkers are pieces of a private key that must never travel: its PEM armour and body,
// its private exponent and primes as a JWK writes them.
func privateMarkers(t *testing.T, k *rsa.PrivateKey) []string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "\n")
	b64 := base64.RawURLEncoding.EncodeToString
	return []string{"PRIVATE KEY", lines[3], lines[len(lines)/2], b64(k.D.Bytes())[:40], b64(k.Primes[0].Bytes())[:40], b64(k.Primes[1].Bytes())[:40]}
}

func (r *sentRecorder) mustNotCarry(t *testing.T, markers []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) == 0 {
		t.Fatal("no request was recorded")
	}
	for _, s := range r.sent {
		for _, m := range markers {
			if strings.Contains(s, m) {
				t.Fatalf("a request carried private key material %q: %.200s", m, s)
			}
		}
	}
}

// hiddenOf collects the hidden inputs of the form matched by sel.
func hiddenOf(p page, sel string) url.Values {
	v := url.Values{}
	p.doc.Find(sel + ` input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		val, _ := s.Attr("value")
		v.Set(n, val)
	})
	return v
}

func rotationState(t *testing.T, c *client, path string) page {
	t.Helper()
	p := c.get(path)
	if p.status != http.StatusOK {
		t.Fatalf("rotation page: %d %s", p.status, p.body)
	}
	return p
}

func stateOf(p page) string {
	s, _ := p.doc.Find(`[data-testid="rotation"]`).Attr("data-state")
	return s
}

func stepStatus(p page, step string) string {
	s, _ := p.doc.Find(`[data-testid="step-` + step + `"]`).Attr("data-status")
	return s
}

func publicPEM(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// uploadOnKeysPage adds a public key as kid on the keys page.
func uploadOnKeysPage(t *testing.T, c *client, keysPath string, k *rsa.PrivateKey, kid string) {
	t.Helper()
	_, form := keysPage(t, c, keysPath)
	form.Set("key_text", publicPEM(t, k))
	form.Set("upload_kid", kid)
	if p := c.post(keysPath+"/upload", form); p.status != http.StatusSeeOther {
		t.Fatalf("upload %s: %d %s", kid, p.status, p.body)
	}
}

func TestRotationThroughThePagesWithKeptKey(t *testing.T) {
	a, c, team := signedInTeamMember(t)
	sent := recordSent(c)
	id, err := a.clients.Create(t.Context(), a.principalOf("dev@example.no"), metaFor(), "tt02", clients.Draft{Name: "Rotating",
		Description: "Gets its key rotated", TeamID: mustID(t, team), Scopes: clients.AltinnServiceOwnerScopes, Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	keysPath := "/envs/tt02/integrations/" + id + "/keys"
	rotate := keysPath + "/rotate"
	uploadOnKeysPage(t, c, keysPath, simKeyPool[1], "old-1")

	// The keys page leads to the rotation of each key.
	kp, _ := keysPage(t, c, keysPath)
	link, _ := kp.doc.Find(`[data-kid="old-1"] [data-testid="rotate-key"]`).Attr("href")
	if link != rotate+"?old=old-1" {
		t.Fatalf("rotate link %q", link)
	}
	p := rotationState(t, c, link)
	if stateOf(p) != "" || stepStatus(p, "start") != "current" {
		t.Fatalf("before starting: state %q, start %q", stateOf(p), stepStatus(p, "start"))
	}
	if v, _ := p.doc.Find(`input[name="old_kid"][checked]`).Attr("value"); v != "old-1" {
		t.Fatalf("preselected old key %q", v)
	}
	if r := c.post(rotate, url.Values{"old_kid": {"old-1"}}); r.status != http.StatusSeeOther {
		t.Fatalf("start: %d %s", r.status, r.body)
	}

	// Add the new key: generated, kept by the portal.
	p = rotationState(t, c, rotate)
	if stateOf(p) != clients.RotationStarted || stepStatus(p, "start") != "done" || stepStatus(p, "add") != "current" {
		t.Fatalf("after starting: %q %s", stateOf(p), text(p, `[data-testid="rotation-steps"]`))
	}
	form := hiddenOf(p, `form[data-testid="generate-form"]`)
	form.Set("kid", "new-kept")
	form.Set("bits", "2048")
	form.Set("alg", "RS256")
	form.Set("custody", clients.CustodyKept)
	if r := generateKey(t, c, rotate, form); r.status != http.StatusSeeOther || r.header.Get("Location") != rotate {
		t.Fatalf("add generated key: %d %s %s", r.status, r.header.Get("Location"), r.body)
	}

	// Prove it: the portal signs, in the background, and the page polls.
	p = rotationState(t, c, rotate)
	if stateOf(p) != clients.RotationAdded || p.doc.Find(`[data-testid="prove-form"]`).Length() != 1 || p.doc.Find(`[data-signer]`).Length() != 0 {
		t.Fatalf("after adding: %q %s", stateOf(p), text(p, `main`))
	}
	if r := c.post(rotate+"/prove", hiddenOf(p, `form[data-testid="prove-form"]`)); r.status != http.StatusSeeOther {
		t.Fatalf("prove: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, c.base+rotate+"/proof", nil)
		req.Header.Set("HX-Request", "true")
		r := c.do(req)
		state, _ := r.doc.Find(`[data-testid="proof-status"]`).Attr("data-state")
		if r.status != http.StatusOK {
			t.Fatalf("proof status: %d %s", r.status, r.body)
		}
		if state != "running" {
			if state != "ok" || r.header.Get("HX-Refresh") != "true" {
				t.Fatalf("proof ended %q (refresh %q): %s", state, r.header.Get("HX-Refresh"), r.body)
			}
			break
		}
		if trig, _ := r.doc.Find(`#proof-poll`).Attr("hx-trigger"); trig != "every 1s" || r.doc.Find(`#proof-poll [data-testid="check-again"]`).Length() != 1 {
			t.Fatal("a running proof's status does not poll, or offers no way to check without JavaScript")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proof still runs: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Switch: the page gives the settings to copy.
	p = rotationState(t, c, rotate)
	if stateOf(p) != clients.RotationProved {
		t.Fatalf("after the proof: %q %s", stateOf(p), text(p, `main`))
	}
	for sel, want := range map[string]string{"#setting-kid": "new-kept", "#setting-client-id": id, "#setting-scopes": strings.Join(clients.AltinnServiceOwnerScopes, " ")} {
		if v, _ := p.doc.Find(sel).Attr("value"); v != want {
			t.Errorf("%s = %q, want %q", sel, v, want)
		}
	}
	if v, _ := p.doc.Find("#setting-token-endpoint").Attr("value"); !strings.HasSuffix(v, "/token") {
		t.Errorf("token endpoint %q", v)
	}
	// A kept key is never shown, so the switch step hands nothing out.
	if how := text(p, `[data-testid="switch-how"]`); !strings.Contains(how, "no private key to hand out") || strings.Contains(how, "Give every system") {
		t.Errorf("the switch step for a kept key says %q", how)
	}
	if r := c.post(rotate+"/switch", hiddenOf(p, `form[data-testid="switch-form"]`)); r.status != http.StatusSeeOther {
		t.Fatalf("switch: %d %s", r.status, r.body)
	}

	// Retire the old key; test needs no typed name.
	p = rotationState(t, c, rotate)
	if stateOf(p) != clients.RotationSwitched || p.doc.Find(`#confirm_name`).Length() != 0 {
		t.Fatalf("after switching: %q", stateOf(p))
	}
	r := c.post(rotate+"/retire", hiddenOf(p, `form[data-testid="retire-form"]`))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != keysPath {
		t.Fatalf("retire: %d %s", r.status, r.body)
	}
	kp, _ = keysPage(t, c, keysPath)
	if got := kids(kp); len(got) != 1 || got[0] != "new-kept" {
		t.Fatalf("kids after the rotation: %v", got)
	}
	if !strings.Contains(text(kp, `[data-testid="flash"]`), "new-kept replaced old-1") {
		t.Fatalf("flash %q", text(kp, `[data-testid="flash"]`))
	}
	// A page still polling a finished rotation is told to reload instead.
	req, _ := http.NewRequest(http.MethodGet, c.base+rotate+"/proof", nil)
	req.Header.Set("HX-Request", "true")
	if r := c.do(req); r.status != http.StatusNoContent || r.header.Get("HX-Refresh") != "true" {
		t.Fatalf("polling a finished rotation: %d %q", r.status, r.header.Get("HX-Refresh"))
	}
	if p = rotationState(t, c, rotate); stateOf(p) != "" {
		t.Fatalf("after the rotation the page shows %q", stateOf(p))
	}
	sent.mustNotCarry(t, privateMarkers(t, simKeyPool[1]))
	for _, ev := range mustRecent(t, a) {
		if strings.Contains(string(ev.Details), "PRIVATE") || strings.Contains(string(ev.Details), "eyJ") {
			t.Fatalf("audit event %s holds key material or a token: %s", ev.Action, ev.Details)
		}
	}
}

// signGrant signs the prepared header and claims as signer.js does: base64url of each JSON
// text, RS256 over "header.claims".
func signGrant(t *testing.T, header, claims string, k *rsa.PrivateKey) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestRotationWithBrowserSignedGrantInProduction(t *testing.T) {
	a, c, team := signedInTeamMember(t)
	sent := recordSent(c)
	id, err := a.clients.Create(t.Context(), a.principalOf("dev@example.no"), metaFor(), "prod", clients.Draft{Name: "Signed here",
		Description: "Proves its key in the browser", TeamID: mustID(t, team), Scopes: clients.AltinnServiceOwnerScopes, Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	keysPath := "/envs/prod/integrations/" + id + "/keys"
	rotate := keysPath + "/rotate"
	uploadOnKeysPage(t, c, keysPath, simKeyPool[1], "old-1")
	if r := c.post(rotate, url.Values{"old_kid": {"old-1"}}); r.status != http.StatusSeeOther {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	// The new key's public half is uploaded; its private half stays with the person.
	newKey := simKeyPool[2]
	p := rotationState(t, c, rotate)
	form := hiddenOf(p, `form[data-testid="upload-form"]`)
	form.Set("key_text", publicPEM(t, newKey))
	form.Set("upload_kid", "new-browser")
	if r := c.post(rotate+"/upload", form); r.status != http.StatusSeeOther {
		t.Fatalf("upload the new key: %d %s", r.status, r.body)
	}

	// The page prepares the grant and offers the signer: a nameless file input outside any
	// form, and a form that posts only the grant.
	p = rotationState(t, c, rotate)
	if stateOf(p) != clients.RotationAdded {
		t.Fatalf("after adding: %q %s", stateOf(p), text(p, "main"))
	}
	signer := p.doc.Find(`[data-signer]`)
	header, _ := signer.Attr("data-signer-header")
	claims, _ := signer.Attr("data-signer-claims")
	if !strings.Contains(header, `"kid":"new-browser"`) || !strings.Contains(claims, `"iss":"`+id+`"`) {
		t.Fatalf("prepared grant: %s %s", header, claims)
	}
	file := p.doc.Find(`#signer-file`)
	if file.Length() != 1 || file.Closest("form").Length() != 0 {
		t.Fatal("the key file input is missing or inside a form")
	}
	if _, named := file.Attr("name"); named {
		t.Fatal("the key file input has a name")
	}
	if p.doc.Find(`#signer-sign`).Length() != 1 || p.doc.Find(`form#grant-form input[type="hidden"][name="grant"]`).Length() != 1 {
		t.Fatal("no sign button or grant field")
	}
	if p.doc.Find(`script[src="/static/js/signer.js"]`).Length() != 1 || !strings.Contains(text(p, `[data-testid="signer"]`), "never leaves your machine") {
		t.Fatal("the signer script or its promise is missing")
	}
	if r := c.get("/static/js/signer.js"); r.status != http.StatusOK || !strings.Contains(r.body, "crypto.subtle.sign") {
		t.Fatalf("signer.js: %d", r.status)
	}
	proveForm := hiddenOf(p, `form#grant-form`)

	// A grant signed with another key is refused before Maskinporten sees it, and not echoed.
	wrong := signGrant(t, header, claims, simKeyPool[3])
	proveForm.Set("grant", wrong)
	r := c.post(rotate+"/prove", proveForm)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(text(r, `[data-testid="form-error"]`), "not signed by the private key") {
		t.Fatalf("wrong key: %d %s", r.status, text(r, `[data-testid="form-error"]`))
	}
	if strings.Contains(r.body, wrong) {
		t.Fatal("the refused grant was echoed")
	}

	// The grant signed with the new key proves it.
	p = rotationState(t, c, rotate)
	signer = p.doc.Find(`[data-signer]`)
	header, _ = signer.Attr("data-signer-header")
	claims, _ = signer.Attr("data-signer-claims")
	proveForm = hiddenOf(p, `form#grant-form`)
	proveForm.Set("grant", signGrant(t, header, claims, newKey))
	if got := len(proveForm); got != 2 {
		t.Fatalf("the grant form posts %d fields (%v), want _csrf and grant", got, proveForm)
	}
	if r = c.post(rotate+"/prove", proveForm); r.status != http.StatusSeeOther {
		t.Fatalf("prove: %d %s", r.status, text(r, `[data-testid="form-error"]`))
	}
	p = rotationState(t, c, rotate)
	if stateOf(p) != clients.RotationProved || !strings.Contains(text(p, `[data-testid="flash"]`), "works") {
		t.Fatalf("after the proof: %q %s", stateOf(p), text(p, "main"))
	}
	if how := text(p, `[data-testid="switch-how"]`); !strings.Contains(how, "matches the certificate or JWK you uploaded") {
		t.Errorf("the switch step for an uploaded key says %q", how)
	}
	if r = c.post(rotate+"/switch", hiddenOf(p, `form[data-testid="switch-form"]`)); r.status != http.StatusSeeOther {
		t.Fatalf("switch: %d", r.status)
	}

	// Production asks for the integration's name before deleting the old key.
	p = rotationState(t, c, rotate)
	retire := hiddenOf(p, `form[data-testid="retire-form"]`)
	if r = c.post(rotate+"/retire", retire); r.status != http.StatusUnprocessableEntity || text(r, `[data-testid="confirm_name-error"]`) == "" {
		t.Fatalf("retire without the name: %d", r.status)
	}
	retire.Set("confirm_name", "Signed here")
	if r = c.post(rotate+"/retire", retire); r.status != http.StatusSeeOther {
		t.Fatalf("retire: %d %s", r.status, text(r, `[data-testid="form-error"]`))
	}
	kp, _ := keysPage(t, c, keysPath)
	if got := kids(kp); len(got) != 1 || got[0] != "new-browser" {
		t.Fatalf("kids after the rotation: %v", got)
	}
	sent.mustNotCarry(t, append(privateMarkers(t, newKey), privateMarkers(t, simKeyPool[1])...))
	if logs := a.logs.String(); strings.Contains(logs, "eyJ") {
		t.Fatal("a grant reached the log")
	}
}
