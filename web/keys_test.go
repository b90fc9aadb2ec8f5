package web_test

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/audit"
	"portal/internal/clients"
	"portal/internal/keys"
)

// keysPage opens an integration's keys page and returns it with the values every key form
// carries (the key set's version and a fresh idempotency key).
func keysPage(t *testing.T, c *client, path string) (page, url.Values) {
	t.Helper()
	p := c.get(path)
	if p.status != http.StatusOK {
		t.Fatalf("keys page: %d %s", p.status, p.body)
	}
	v := url.Values{}
	p.doc.Find(`form[data-testid="generate-form"] input[type="hidden"], form[data-testid="upload-form"] input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		val, _ := s.Attr("value")
		v.Set(n, val)
	})
	return p, v
}

func kids(p page) []string {
	var out []string
	p.doc.Find(`[data-testid="key-row"]`).Each(func(_ int, s *goquery.Selection) {
		k, _ := s.Attr("data-kid")
		out = append(out, k)
	})
	return out
}

// generateKey runs the generation flow through the pages and returns the final response.
func generateKey(t *testing.T, c *client, keysPath string, form url.Values) page {
	t.Helper()
	p := c.post(keysPath+"/generate", form)
	if p.status != http.StatusSeeOther {
		t.Fatalf("start generation: %d %s", p.status, p.body)
	}
	progress := p.header.Get("Location")
	deadline := time.Now().Add(60 * time.Second)
	for {
		p = c.get(progress)
		state, _ := p.doc.Find(`[data-testid="generation"]`).Attr("data-state")
		if state == "done" {
			break
		}
		if state == "failed" || time.Now().After(deadline) {
			t.Fatalf("generation %s: %s", state, p.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	add := url.Values{}
	p.doc.Find(`[data-testid="generation"] form input`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		val, _ := s.Attr("value")
		add.Set(n, val)
	})
	return c.post(strings.SplitN(progress, "?", 2)[0], add)
}

func TestKeysLifecycleInTest(t *testing.T) {
	a, c, team := signedInTeamMember(t)
	id, err := a.clients.Create(t.Context(), a.principalOf("dev@example.no"), metaFor(), "tt02", clients.Draft{Name: "Keyed",
		Description: "Gets keys", TeamID: mustID(t, team), Scopes: clients.AltinnServiceOwnerScopes, Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	path := "/envs/tt02/integrations/" + id + "/keys"
	p, form := keysPage(t, c, path)
	if p.doc.Find(`[data-testid="no-keys"]`).Length() != 1 {
		t.Fatal("a new integration shows keys")
	}
	suggested, _ := p.doc.Find(`#kid`).Attr("value")
	if !keys.ValidKID(suggested) || !strings.Contains(suggested, "keyed-tt02-") {
		t.Fatalf("suggested kid %q", suggested)
	}

	// Generate a key the portal keeps.
	form.Set("kid", suggested)
	form.Set("bits", "2048")
	form.Set("alg", "RS256")
	form.Set("custody", clients.CustodyKept)
	if p = generateKey(t, c, path, form); p.status != http.StatusSeeOther {
		t.Fatalf("add generated key: %d %s", p.status, p.body)
	}
	p, form = keysPage(t, c, path)
	if got := kids(p); len(got) != 1 || got[0] != suggested {
		t.Fatalf("kids after generation: %v", got)
	}
	if got := text(p, `[data-testid="custody"]`); got != "kept by the portal (encrypted)" {
		t.Fatalf("custody %q", got)
	}
	if strings.Contains(p.body, "PRIVATE KEY") {
		t.Fatal("a kept key's private half reached a page")
	}
	kept, err := a.clients.KeptKey(t.Context(), a.principalOf("dev@example.no"), "tt02", id, suggested)
	if err != nil || kept.Bits() != 2048 {
		t.Fatalf("kept key: %v", err)
	}

	// Upload a public key as PEM, with a kid since PEM names none.
	pub := simKeyPool[0].Public()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	form.Set("key_text", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	form.Set("upload_kid", "uploaded-1")
	if p = c.post(path+"/upload", form); p.status != http.StatusSeeOther {
		t.Fatalf("upload: %d %s", p.status, p.body)
	}

	// A private key is refused, said to be exposed, not echoed and not stored.
	p, form = keysPage(t, c, path)
	privDER, _ := x509.MarshalPKCS8PrivateKey(simKeyPool[1])
	private := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	form.Set("key_text", private)
	form.Set("upload_kid", "oops")
	p = c.post(path+"/upload", form)
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(text(p, `[data-testid="form-error"]`), "exposed") {
		t.Fatalf("private upload: %d %s", p.status, text(p, `[data-testid="form-error"]`))
	}
	body := strings.Split(private, "\n")[1]
	if strings.Contains(p.body, body) || strings.Contains(a.logs.String(), body) {
		t.Fatal("the private key was echoed or logged")
	}
	if got := kids(p); len(got) != 2 {
		t.Fatalf("kids after the refused upload: %v", got)
	}

	// A change made from a page showing an old key set is refused.
	stale := form.Get("version")
	p, form = keysPage(t, c, path)
	old := url.Values{"version": {"0000000000000000"}, "key": {clients.NewKey()}, "kid": {"uploaded-1"}}
	if p = c.post(path+"/renew", old); p.status != http.StatusConflict {
		t.Fatalf("stale renew: %d", p.status)
	}
	_ = stale

	// Renew, then delete both keys; the last goes with DELETE.
	form.Set("kid", "uploaded-1")
	if p = c.post(path+"/renew", form); p.status != http.StatusSeeOther {
		t.Fatalf("renew: %d %s", p.status, p.body)
	}
	for _, kid := range []string{"uploaded-1", suggested} {
		p, form = keysPage(t, c, path)
		cp := c.get(path + "/delete?kid=" + url.QueryEscape(kid))
		if cp.status != http.StatusOK {
			t.Fatalf("confirm delete: %d", cp.status)
		}
		if kid == suggested && !strings.Contains(cp.body, "last key") {
			t.Error("deleting the last key gives no warning")
		}
		del := url.Values{}
		cp.doc.Find(`[data-testid="confirm-form"] input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
			n, _ := s.Attr("name")
			v, _ := s.Attr("value")
			del.Set(n, v)
		})
		if r := c.post(path+"/delete", del); r.status != http.StatusSeeOther {
			t.Fatalf("delete %s: %d %s", kid, r.status, r.body)
		}
	}
	p, _ = keysPage(t, c, path)
	if got := kids(p); len(got) != 0 {
		t.Fatalf("kids after deleting all: %v", got)
	}
	if _, err := a.clients.KeptKey(t.Context(), a.principalOf("dev@example.no"), "tt02", id, suggested); err == nil {
		t.Fatal("a deleted key's private half is still kept")
	}
	for _, ev := range mustRecent(t, a) {
		if strings.Contains(string(ev.Details), "PRIVATE") || strings.Contains(string(ev.Details), `"d"`) {
			t.Fatalf("audit event %s holds key material: %s", ev.Action, ev.Details)
		}
	}
}

func TestKeysInProductionAreHandedOutOnce(t *testing.T) {
	a, c, team := signedInTeamMember(t)
	id, err := a.clients.Create(t.Context(), a.principalOf("dev@example.no"), metaFor(), "prod", clients.Draft{Name: "Prod keyed",
		Description: "Gets a production key", TeamID: mustID(t, team), Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	path := "/envs/prod/integrations/" + id + "/keys"
	p, form := keysPage(t, c, path)
	if p.doc.Find(`#custody option[value="kept"]`).Length() != 0 {
		t.Fatal("production offers to keep private keys")
	}
	form.Set("kid", "prod-key-1")
	form.Set("bits", "2048")
	form.Set("alg", "RS256")
	form.Set("custody", clients.CustodyKept)
	if p = c.post(path+"/generate", form); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("kept in prod: %d", p.status)
	}
	form.Set("custody", clients.CustodyHandedOut)
	p = generateKey(t, c, path, form)
	if p.status != http.StatusOK || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("hand-out page: %d %q", p.status, p.header.Get("Cache-Control"))
	}
	priv, err := keys.ParsePrivate([]byte(text(p, `[data-testid="private-pem"]`)))
	if err != nil {
		t.Fatalf("handed-out PEM: %v", err)
	}
	if _, err := keys.ParsePrivate([]byte(text(p, `[data-testid="private-jwk"]`))); err != nil {
		t.Fatalf("handed-out JWK: %v", err)
	}
	kp, _ := keysPage(t, c, path)
	if got := text(kp, `[data-testid="key-row"] code.portal-thumb`); got != priv.Thumbprint() {
		t.Fatalf("the handed-out key is not the registered one: %s vs %s", got, priv.Thumbprint())
	}
	if got := text(kp, `[data-testid="custody"]`); got != "handed out once" {
		t.Fatalf("custody %q", got)
	}
	if _, err := a.clients.KeptKey(t.Context(), a.principalOf("dev@example.no"), "prod", id, "prod-key-1"); err == nil {
		t.Fatal("the portal kept a handed-out key")
	}

	// Deleting a production key needs the integration's name.
	cp := c.get(path + "/delete?kid=prod-key-1")
	del := url.Values{}
	cp.doc.Find(`[data-testid="confirm-form"] input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		v, _ := s.Attr("value")
		del.Set(n, v)
	})
	if r := c.post(path+"/delete", del); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("prod delete without the name: %d", r.status)
	}
	del.Set("confirm_name", "Prod keyed")
	if r := c.post(path+"/delete", del); r.status != http.StatusSeeOther {
		t.Fatalf("prod delete: %d %s", r.status, r.body)
	}
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustRecent(t *testing.T, a *app) []audit.Event {
	t.Helper()
	evs, err := audit.NewLog(a.db, nil).Recent(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
