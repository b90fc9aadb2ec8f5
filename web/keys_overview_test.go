package web_test

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/clients"
	"portal/internal/maskinporten"
	"portal/internal/store"
	"portal/web"
)

const metricsToken = "metrics-token-for-the-tests-0123456789"

// expiryWorld is a simulator-backed app with a metrics token and keys posted outside the portal:
// team Payments has Payroll (tt02: pay-soon in 3 days, pay-late in 100, kept by the portal),
// Ledger (prod: led-mid in 20 days) and the deactivated Retired (tt02: ret-soon in 2 days);
// team Archive has Archiver (tt02: arc-soon in 10 days).
type expiryWorld struct {
	*app
	ids     map[string]string // integration name -> client id
	exp     map[string]time.Time
	archive int64
}

func newExpiryWorld(t *testing.T) *expiryWorld {
	t.Helper()
	a := newSimApp(t, func(c *web.Config) { c.MetricsToken = metricsToken })
	ctx := t.Context()
	a.addUser("admin@example.no", "admin")
	adminP := adminPrincipal(t, a)
	payments, err := a.auth.CreateTeam(ctx, adminP, "Payments", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	archive, err := a.auth.CreateTeam(ctx, adminP, "Archive", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	a.addUser("dev@example.no", "member")
	a.addUser("archivist@example.no", "member")
	a.addUser("lonely@example.no", "member")
	if err := a.auth.PutMember(ctx, adminP, payments.ID, "dev@example.no", "viewer", metaFor()); err != nil {
		t.Fatal(err)
	}
	if err := a.auth.PutMember(ctx, adminP, archive.ID, "archivist@example.no", "member", metaFor()); err != nil {
		t.Fatal(err)
	}

	key, err := simKeys()()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)
	ups := map[string]*maskinporten.Client{}
	for _, env := range []string{"tt02", "prod"} {
		ups[env] = simUpstream(t, a.sim, hc, env)
	}
	now := time.Now().Truncate(time.Second)
	w := &expiryWorld{app: a, ids: map[string]string{}, exp: map[string]time.Time{}, archive: archive.ID}
	for _, it := range []struct {
		env, name string
		team      int64
		kids      map[string]int // kid -> days until it expires
	}{
		{"tt02", "Payroll", payments.ID, map[string]int{"pay-soon": 3, "pay-late": 100}},
		{"prod", "Ledger", payments.ID, map[string]int{"led-mid": 20}},
		{"tt02", "Retired", payments.ID, map[string]int{"ret-soon": 2}},
		{"tt02", "Archiver", archive.ID, map[string]int{"arc-soon": 10}},
	} {
		id, err := a.clients.Create(ctx, adminP, metaFor(), it.env, clients.Draft{Name: it.name, Description: "Keys for the overview",
			TeamID: it.team, Scopes: clients.AltinnServiceOwnerScopes, Key: clients.NewKey()})
		if err != nil {
			t.Fatalf("create %s: %v", it.name, err)
		}
		w.ids[it.name] = id
		var set []maskinporten.JWK
		for kid, days := range it.kids {
			w.exp[kid] = now.Add(time.Duration(days) * 24 * time.Hour)
			set = append(set, maskinporten.JWK{Kty: "RSA", Kid: kid, Alg: "RS256", Use: "sig",
				N: base64.RawURLEncoding.EncodeToString(key.N.Bytes()), E: "AQAB", Exp: w.exp[kid].Unix()})
		}
		if _, err := ups[it.env].ReplaceJWKS(ctx, id, set); err != nil {
			t.Fatalf("keys of %s: %v", it.name, err)
		}
	}
	if err := a.clients.Deactivate(ctx, adminP, metaFor(), "tt02", w.ids["Retired"], "Retired", clients.NewKey()); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"tt02", "prod"} {
		if _, err := a.clients.Sync(ctx, env); err != nil {
			t.Fatalf("sync %s: %v", env, err)
		}
	}
	err = a.db.Tx(ctx, func(tx *sql.Tx) error {
		return store.PutKeyRecord(ctx, tx, store.KeyRecord{Env: "tt02", ClientID: w.ids["Payroll"], KID: "pay-late",
			Custody: store.CustodyKept, Sealed: []byte("sealed"), KEKID: "test", CreatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *expiryWorld) signedIn(email string) *client {
	c := w.client()
	c.login(email)
	return c
}

func rowKids(p page, sel string) []string {
	var out []string
	p.doc.Find(sel).Each(func(_ int, s *goquery.Selection) {
		kid, _ := s.Attr("data-kid")
		out = append(out, kid)
	})
	return out
}

func TestKeyOverview(t *testing.T) {
	w := newExpiryWorld(t)
	dev := w.signedIn("dev@example.no")

	t.Run("columns", func(t *testing.T) {
		p := dev.get("/keys")
		if p.status != http.StatusOK {
			t.Fatalf("status %d: %s", p.status, p.body)
		}
		if got, want := rowKids(p, `[data-testid="key-row"]`), []string{"pay-soon", "led-mid", "pay-late"}; !slices.Equal(got, want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
		if href, _ := p.doc.Find(`nav a:contains("Keys")`).Attr("href"); href != "/keys" {
			t.Errorf("nav link to the overview: %q", href)
		}
		tests := []struct {
			kid, env, href, team, days, color, custody string
		}{
			{"pay-soon", "Test (tt02)", "/envs/tt02/integrations/" + w.ids["Payroll"], "Payments", "2 days left", "danger", "added outside the portal"},
			{"led-mid", "Production", "/envs/prod/integrations/" + w.ids["Ledger"], "Payments", "19 days left", "warning", "added outside the portal"},
			{"pay-late", "Test (tt02)", "/envs/tt02/integrations/" + w.ids["Payroll"], "Payments", "99 days left", "", "kept by the portal (encrypted)"},
		}
		for _, tt := range tests {
			row := p.doc.Find(`[data-testid="key-row"][data-kid="` + tt.kid + `"]`)
			cell := func(id string) string { return strings.TrimSpace(row.Find(`[data-testid="` + id + `"]`).Text()) }
			href, _ := row.Find(`[data-testid="key-integration"]`).Attr("href")
			days := row.Find(`[data-testid="key-days-left"]`)
			level, _ := days.Attr("data-level")
			if cell("key-env") != tt.env || href != tt.href || cell("key-team") != tt.team || cell("key-custody") != tt.custody {
				t.Errorf("%s: env %q, link %q, team %q, custody %q", tt.kid, cell("key-env"), href, cell("key-team"), cell("key-custody"))
			}
			// Whole days left, rounded down: a key posted to expire in 3 days has 2 and a bit.
			if strings.TrimSpace(days.Text()) != tt.days || level != tt.color {
				t.Errorf("%s: %q coloured %q, want %q coloured %q", tt.kid, days.Text(), level, tt.days, tt.color)
			}
			if date := w.exp[tt.kid].UTC().Format("2006-01-02"); !strings.HasPrefix(cell("key-expires"), date) {
				t.Errorf("%s: expires %q, want the date %s", tt.kid, cell("key-expires"), date)
			}
			if !strings.Contains(row.Text(), "RS256") {
				t.Errorf("%s: no alg in %q", tt.kid, row.Text())
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		admin := w.signedIn("admin@example.no")
		tests := []struct {
			who   *client
			query string
			want  []string
		}{
			{dev, "env=prod", []string{"led-mid"}},
			{dev, "env=tt02", []string{"pay-soon", "pay-late"}},
			{dev, "within=30", []string{"pay-soon", "led-mid"}},
			{dev, "within=5&env=tt02", []string{"pay-soon"}},
			{dev, "within=1", nil},
			{dev, "team=" + itoa(w.archive), nil}, // not one's own team: nothing, not an error
			{dev, "env=&team=&within=", []string{"pay-soon", "led-mid", "pay-late"}},
			{admin, "", []string{"pay-soon", "arc-soon", "led-mid", "pay-late"}},
			{admin, "team=" + itoa(w.archive), []string{"arc-soon"}},
			{admin, "within=15&env=tt02", []string{"pay-soon", "arc-soon"}},
		}
		for _, tt := range tests {
			p := tt.who.get("/keys?" + tt.query)
			if p.status != http.StatusOK {
				t.Errorf("%s: status %d", tt.query, p.status)
				continue
			}
			if got := rowKids(p, `[data-testid="key-row"]`); !slices.Equal(got, tt.want) {
				t.Errorf("%s: rows %v, want %v", tt.query, got, tt.want)
			}
		}
		// The form shows the filters it applied.
		p := dev.get("/keys?env=prod&within=30")
		if v, _ := p.doc.Find(`#env option[selected]`).Attr("value"); v != "prod" {
			t.Errorf("selected environment %q", v)
		}
		if v, _ := p.doc.Find(`#within`).Attr("value"); v != "30" {
			t.Errorf("within %q", v)
		}
		if n := p.doc.Find(`#team option`).Length(); n != 2 {
			t.Errorf("a member can filter by %d team options, want any + their own", n)
		}
	})

	t.Run("refused filters", func(t *testing.T) {
		for _, q := range []string{"within=0", "within=-3", "within=abc", "within=99999", "env=nowhere", "team=x"} {
			p := dev.get("/keys?" + q)
			if p.status != http.StatusUnprocessableEntity || p.doc.Find(`[data-testid="form-error"]`).Length() != 1 ||
				p.doc.Find(`[data-testid="key-row"]`).Length() != 0 {
				t.Errorf("%s: status %d", q, p.status)
			}
			if strings.HasPrefix(q, "within") && p.doc.Find(`[data-testid="within-error"]`).Length() != 1 {
				t.Errorf("%s: no message at the field", q)
			}
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		tests := []struct {
			email string
			want  []string
		}{
			{"dev@example.no", []string{"pay-soon", "led-mid"}},
			{"archivist@example.no", []string{"arc-soon"}},
			{"admin@example.no", []string{"pay-soon", "arc-soon", "led-mid"}},
			{"lonely@example.no", nil},
		}
		for _, tt := range tests {
			p := w.signedIn(tt.email).get("/")
			if p.status != http.StatusOK {
				t.Fatalf("%s: status %d", tt.email, p.status)
			}
			got := rowKids(p, `[data-testid="expiring-key"]`)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: panel lists %v, want %v", tt.email, got, tt.want)
			}
			panel := p.doc.Find(`[data-testid="expiring-keys"]`)
			if tt.want == nil {
				if panel.Length() != 0 {
					t.Errorf("%s: a panel without keys", tt.email)
				}
				continue
			}
			if href, _ := panel.Find(`[data-testid="expiring-all"]`).Attr("href"); href != "/keys?within=30" {
				t.Errorf("%s: link to the overview %q", tt.email, href)
			}
			if href, _ := panel.Find(`[data-kid="pay-soon"] a`).Attr("href"); tt.email == "dev@example.no" && href != "/envs/tt02/integrations/"+w.ids["Payroll"] {
				t.Errorf("pay-soon links to %q", href)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		get := func(auth string) page {
			req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/metrics", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			return w.client().do(req)
		}
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + metricsToken + "x", "Basic " + metricsToken, metricsToken} {
			p := get(auth)
			if p.status != http.StatusUnauthorized || !strings.HasPrefix(p.header.Get("WWW-Authenticate"), "Bearer") ||
				strings.Contains(p.body, "portal_key") {
				t.Errorf("%q: status %d, %q", auth, p.status, p.body)
			}
		}
		// A signed-in person's session is no token either.
		if p := dev.get("/metrics"); p.status != http.StatusUnauthorized {
			t.Errorf("with a session: %d", p.status)
		}

		p := get("Bearer " + metricsToken)
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Fatalf("status %d, %s: %s", p.status, p.header.Get("Content-Type"), p.body)
		}
		if len(p.header.Values("Set-Cookie")) != 0 {
			t.Errorf("metrics set cookies: %v", p.header.Values("Set-Cookie"))
		}
		if !strings.Contains(p.body, "\n# HELP portal_key_expiry_timestamp_seconds ") ||
			!strings.Contains(p.body, "\n# TYPE portal_key_expiry_timestamp_seconds gauge\n") {
			t.Fatalf("no key expiry gauge described: %s", p.body)
		}
		// Every key of every active integration; Retired's key is left out.
		got := map[string]float64{}
		for k, v := range samples(t, p.body) {
			if strings.HasPrefix(k, "portal_key_expiry_timestamp_seconds{") {
				got[k] = v
			}
		}
		want := map[string]float64{}
		for _, k := range []struct{ env, name, kid string }{
			{"tt02", "Payroll", "pay-soon"}, {"tt02", "Archiver", "arc-soon"}, {"prod", "Ledger", "led-mid"}, {"tt02", "Payroll", "pay-late"},
		} {
			want[fmt.Sprintf(`portal_key_expiry_timestamp_seconds{client_id="%s",env="%s",kid="%s"}`, w.ids[k.name], k.env, k.kid)] =
				float64(w.exp[k.kid].Unix())
		}
		if !maps.Equal(got, want) {
			t.Errorf("samples\n%v\nwant\n%v", got, want)
		}
	})
}

func TestMetricsNeedAConfiguredToken(t *testing.T) {
	a := newApp(t)
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if p := a.client().do(req); p.status != http.StatusNotFound {
			t.Errorf("%q: status %d, want 404 without a configured token", auth, p.status)
		}
	}
}
