package web_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/altinn"
	"portal/internal/audit"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/sim"
	"portal/internal/store"
	"portal/internal/tryit"
)

// faultTimeout is every upstream call's timeout in these tests: short, so a held or slow
// upstream costs little.
const faultTimeout = time.Second

// faultApp is the app against simulators whose traffic is counted, with short upstream
// timeouts and the given circuit breakers.
type faultApp struct {
	*app
	calls atomic.Int64         // requests that reached the simulators
	plain *maskinporten.Client // tt02 without breaker, for checks outside the portal
	ups   map[string]*maskinporten.Client
}

func newFaultApp(t *testing.T, br *maskinporten.BreakerSettings) *faultApp {
	t.Helper()
	fa := &faultApp{ups: map[string]*maskinporten.Client{}}
	srv := httptest.NewUnstartedServer(nil)
	s, err := sim.Open(t.Context(), sim.Config{BaseURL: "http://" + srv.Listener.Addr().String(), DataDir: t.TempDir(),
		GenerateKey: simKeys(), AppInstances: 1})
	if err != nil {
		srv.Listener.Close()
		t.Fatal(err)
	}
	h := s.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fa.calls.Add(1)
		h.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(func() { s.Close() })
	t.Cleanup(srv.Close)
	// A transport of its own, so idle connections of one test do not serve another.
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(hc.CloseIdleConnections)
	mpClient := func(env string, b *maskinporten.BreakerSettings) *maskinporten.Client {
		return simUpstream(t, s, hc, env, func(c *maskinporten.Config) {
			c.Timeout, c.Backoff, c.Breaker, c.Name = faultTimeout, 20*time.Millisecond, b, strings.ToUpper(env)
		})
	}
	fa.plain = mpClient("tt02", nil)
	fa.app = newAppTry(t, nil, func(db *store.DB) *clients.Service {
		var envs []clients.Env
		for _, env := range []string{"tt02", "prod"} {
			fa.ups[env] = mpClient(env, br)
			envs = append(envs, clients.Env{Name: env, Label: env, Prod: env == "prod", Issuer: "http://sim/" + env + "/maskinporten/",
				Upstream: fa.ups[env]})
		}
		raw := make([]byte, 32)
		rand.Read(raw)
		kek, err := keys.NewKEK(raw)
		if err != nil {
			t.Fatal(err)
		}
		gen := keys.NewGenerator(keys.GeneratorConfig{})
		t.Cleanup(gen.Close)
		// A rotation's proof retries briefly, so a proof that meets a failing Maskinporten
		// ends (and says so) within a test's patience.
		cs, err := clients.New(db, envs, clients.Options{KEK: kek, Generator: gen, ProofInterval: 100 * time.Millisecond, ProofWindow: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}, func(db *store.DB, cs *clients.Service) *tryit.Service {
		return simTryit(t, s, db, cs, fa.ups, func(env, platform string) altinn.Config {
			var ab *altinn.BreakerSettings
			if br != nil {
				ab = &altinn.BreakerSettings{Failures: br.Failures, CoolDown: br.CoolDown}
			}
			return altinn.Config{PlatformURL: platform, HTTPClient: hc, Timeout: faultTimeout,
				Backoff: 20 * time.Millisecond, Breaker: ab, Name: strings.ToUpper(env)}
		})
	})
	fa.sim = s
	return fa
}

// setFaults puts f on every upstream of tt02.
func (fa *faultApp) setFaults(t *testing.T, f sim.Faults) { fa.setFaultsOn(t, nil, f) }

// setFaultsOn puts f on the given upstreams of tt02 (all when none are given) and clears the
// others.
func (fa *faultApp) setFaultsOn(t *testing.T, ups []string, f sim.Faults) {
	t.Helper()
	for _, up := range []string{sim.UpstreamMaskinporten, sim.UpstreamSelfService, sim.UpstreamPlatform} {
		on := f
		if len(ups) > 0 && !slices.Contains(ups, up) {
			on = sim.Faults{}
		}
		if err := fa.sim.SetFaults("tt02", up, on); err != nil {
			t.Fatal(err)
		}
	}
}

// faultFixture is a team member with an integration in tt02 that has a key the portal keeps.
type faultFixture struct {
	*faultApp
	c    *client
	team string
	id   string
	base string // the integration's path
}

func newFaultFixture(t *testing.T, br *maskinporten.BreakerSettings) *faultFixture {
	t.Helper()
	fa := newFaultApp(t, br)
	fa.addUser("admin@example.no", "admin")
	team, err := fa.auth.CreateTeam(t.Context(), adminPrincipal(t, fa.app), "Payments", metaFor())
	if err != nil {
		t.Fatal(err)
	}
	fa.addUser("dev@example.no", "member")
	if err := fa.auth.PutMember(t.Context(), adminPrincipal(t, fa.app), team.ID, "dev@example.no", "member", metaFor()); err != nil {
		t.Fatal(err)
	}
	c := fa.client()
	c.login("dev@example.no")
	id, err := fa.clients.Create(t.Context(), fa.principalOf("dev@example.no"), metaFor(), "tt02", clients.Draft{Name: "Faulty",
		Description: "Meets failing upstreams", TeamID: team.ID, Scopes: clients.AltinnServiceOwnerScopes, Key: clients.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	// One sync first, so the mirror holds what the simulators seeded.
	if _, err := fa.clients.Sync(t.Context(), "tt02"); err != nil {
		t.Fatal(err)
	}
	f := &faultFixture{faultApp: fa, c: c, team: itoa(team.ID), id: id, base: "/envs/tt02/integrations/" + id}
	_, form := keysPage(t, c, f.base+"/keys")
	form.Set("kid", "faulty-kept")
	form.Set("bits", "2048")
	form.Set("alg", "RS256")
	form.Set("custody", clients.CustodyKept)
	if p := generateKey(t, c, f.base+"/keys", form); p.status != http.StatusSeeOther {
		t.Fatalf("add generated key: %d %s", p.status, p.body)
	}
	return f
}

// faultReq is the request a route is exercised with.
type faultReq struct {
	method, path string
	form         url.Values
}

// faultCase says how to exercise one route under faults. prepare runs with the upstreams
// healthy, brings the fixture to the state just before the route's step (whatever an earlier
// fault kind left behind) and returns the request to send once they fail; try marks try-it
// steps, which answer 200 with the failed step explained. creates is how many upstream clients
// the request may create when its outcome is unknown (an answer lost after the write was done).
type faultCase struct {
	prepare func(t *testing.T, f *faultFixture) faultReq
	try     string // the result's name, for try-it steps
	creates int
	// mirror marks pages that may answer 200 from the mirror (or a cache) while the upstream
	// fails: they read, and the portal's promise is that reads work when upstreams are slow.
	mirror bool
	// upstreams, when set, are the only upstreams of tt02 that fail: for a step whose own
	// request reads healthily and whose work goes on in the background against another.
	upstreams []string
	// check, when set, judges the answer in place of the general rules, while the faults
	// still hold (a step running in the background meets them after the answer). It reports
	// whether the step's write succeeded, so that the mirror is compared with Digdir instead
	// of with its state before.
	check func(t *testing.T, f *faultFixture, a faultAnswer) (succeeded bool)
}

// faultAnswer is what the route answered under one fault kind.
type faultAnswer struct {
	p     page
	kind  string
	what  string // route and kind, for messages
	calls int64  // requests that reached the simulators while the route answered
}

func get(path string) func(*testing.T, *faultFixture) faultReq {
	return func(_ *testing.T, f *faultFixture) faultReq {
		return faultReq{method: http.MethodGet, path: strings.ReplaceAll(path, ":id", f.id)}
	}
}

// keysForm is the keys page's form values.
func keysForm(t *testing.T, f *faultFixture) url.Values {
	_, form := keysPage(t, f.c, f.base+"/keys")
	return form
}

// generated runs a key generation up to the page that adds the key and returns its form.
func generated(t *testing.T, f *faultFixture, path string, form url.Values, kid string) faultReq {
	t.Helper()
	form.Set("kid", kid)
	form.Set("bits", "2048")
	form.Set("alg", "RS256")
	form.Set("custody", clients.CustodyKept)
	p := f.c.post(path+"/generate", form)
	if p.status != http.StatusSeeOther {
		t.Fatalf("start generation: %d %s", p.status, p.body)
	}
	progress := p.header.Get("Location")
	deadline := time.Now().Add(60 * time.Second)
	for {
		p = f.c.get(progress)
		state, _ := p.doc.Find(`[data-testid="generation"]`).Attr("data-state")
		if state == "done" {
			break
		}
		if state == "failed" || time.Now().After(deadline) {
			t.Fatalf("generation %s: %s", state, p.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	add := url.Values{}
	p.doc.Find(`[data-testid="generation"] form input`).Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("name")
		val, _ := s.Attr("value")
		add.Set(n, val)
	})
	return faultReq{method: http.MethodPost, path: strings.SplitN(progress, "?", 2)[0], form: add}
}

// tryUpTo opens a try and runs its steps healthy up to the one to fault.
func tryUpTo(t *testing.T, f *faultFixture, step string) (page, string) {
	t.Helper()
	path := f.base + "/try"
	p := f.c.get(path)
	if p.status != http.StatusOK {
		t.Fatalf("try page: %d %s", p.status, p.body)
	}
	form := formOf(p, `form[data-testid="grant-form"]`)
	form.Set("org", "ttd")
	form.Set("test", "true")
	if step == "instance" || step == "data" {
		form.Set("how", "run")
		p = f.c.post(path+"/grant", form)
		stepOK(t, p, "instances")
		return p, path
	}
	form.Set("how", "kept")
	p = f.c.post(path+"/grant", form)
	stepOK(t, p, "grant")
	if step == "token" {
		return p, path
	}
	p = f.c.post(path+"/token", formOf(p, `[data-testid="try-step-2"] form`))
	stepOK(t, p, "token")
	if step == "exchange" {
		return p, path
	}
	p = f.c.post(path+"/exchange", formOf(p, `[data-testid="try-step-3"] form`))
	stepOK(t, p, "exchange")
	return p, path
}

// rotationAt drives the integration's rotation of faulty-old, with the upstreams healthy, to
// state (clients.RotationStarted, RotationAdded, RotationProved or RotationSwitched) and returns
// its page. A rotation an earlier fault left in that state is taken as it is; one left in another
// is cancelled, and faulty-old is added again when a retirement took it. The new key is
// faulty-kept, chosen among the client's keys, so that the portal signs the proof.
func rotationAt(t *testing.T, f *faultFixture, state string) page {
	t.Helper()
	keysPath := f.base + "/keys"
	rotate := keysPath + "/rotate"
	p := rotationState(t, f.c, rotate)
	if stateOf(p) == state {
		return p
	}
	if stateOf(p) != "" {
		if r := f.c.post(rotate+"/cancel", hiddenOf(p, `form[data-testid="cancel-form"]`)); r.status != http.StatusSeeOther {
			t.Fatalf("cancel the rotation at %q: %d %s", stateOf(p), r.status, text(r, "main"))
		}
	}
	if kp, _ := keysPage(t, f.c, keysPath); !slices.Contains(kids(kp), "faulty-old") {
		uploadOnKeysPage(t, f.c, keysPath, simKeyPool[2], "faulty-old")
	}
	steps := []struct {
		state, path string
		form        func(page) url.Values
	}{
		{clients.RotationStarted, rotate, func(page) url.Values { return url.Values{"old_kid": {"faulty-old"}} }},
		{clients.RotationAdded, rotate + "/use", func(p page) url.Values {
			form := formOf(p, `form[data-testid="use-form"]`)
			form.Set("new_kid", "faulty-kept")
			return form
		}},
		{clients.RotationProved, rotate + "/prove", func(p page) url.Values { return hiddenOf(p, `form[data-testid="prove-form"]`) }},
		{clients.RotationSwitched, rotate + "/switch", func(p page) url.Values { return hiddenOf(p, `form[data-testid="switch-form"]`) }},
	}
	p = rotationState(t, f.c, rotate)
	for _, st := range steps {
		if r := f.c.post(st.path, st.form(p)); r.status != http.StatusSeeOther {
			t.Fatalf("rotation step to %s: %d %s", st.state, r.status, text(r, "main"))
		}
		if st.state == clients.RotationProved {
			if got := waitProof(t, f); got != clients.ProofOK {
				t.Fatalf("the healthy proof ended %q", got)
			}
		}
		p = rotationState(t, f.c, rotate)
		if stateOf(p) != st.state {
			t.Fatalf("rotation at %q, want %q: %.300s", stateOf(p), st.state, text(p, "main"))
		}
		if st.state == state {
			return p
		}
	}
	t.Fatalf("no rotation step leads to %q", state)
	return p
}

// waitProof polls the rotation's proof as its page does, until the proof ends, and returns how
// it ended.
func waitProof(t *testing.T, f *faultFixture) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, f.c.base+f.base+"/keys/rotate/proof", nil)
		req.Header.Set("HX-Request", "true")
		r := f.c.do(req)
		if r.status != http.StatusOK {
			t.Fatalf("proof status: %d %s", r.status, r.body)
		}
		state, _ := r.doc.Find(`[data-testid="proof-status"]`).Attr("data-state")
		if state != clients.ProofRunning {
			return state
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proof still runs: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proofWords are what a proof that met each fault kind says about Maskinporten.
var proofWords = map[string]string{
	"latency":   "Maskinporten did not answer in time.",
	"hung":      "Maskinporten did not answer in time.",
	"5xx":       "Maskinporten failed (503).",
	"reset":     "Maskinporten could not be reached.",
	"malformed": "Maskinporten gave an answer the portal cannot read.",
}

// checkFailedProof follows a proof the portal started in the background while Maskinporten
// fails: it ends within its window, the rotation page says why in words that fit the fault and
// offers to try again, and the rotation stays where it was.
func checkFailedProof(t *testing.T, f *faultFixture, a faultAnswer) bool {
	t.Helper()
	rotate := f.base + "/keys/rotate"
	if a.p.status != http.StatusSeeOther || a.p.header.Get("Location") != rotate {
		t.Errorf("%s: the proof did not start: %d %s %.300s", a.what, a.p.status, a.p.header.Get("Location"), text(a.p, "main"))
		return false
	}
	if got := waitProof(t, f); got != clients.ProofFailed {
		t.Errorf("%s: the proof ended %q", a.what, got)
	}
	p := rotationState(t, f.c, rotate)
	result := text(p, `[data-testid="proof-status"] [data-testid="proof-result"]`)
	if want := proofWords[a.kind]; !strings.Contains(result, want) || !strings.Contains(result, "prove the key again") {
		t.Errorf("%s: the proof's result says %q, want %q and how to go on", a.what, result, want)
	}
	if stateOf(p) != clients.RotationAdded || p.doc.Find(`form[data-testid="prove-form"]`).Length() != 1 {
		t.Errorf("%s: after the failed proof the rotation is at %q, prove form %d", a.what, stateOf(p), p.doc.Find(`form[data-testid="prove-form"]`).Length())
	}
	if msg := text(p, "main"); !strings.Contains(msg, "tt02") {
		t.Errorf("%s: the rotation page does not name the environment: %.300s", a.what, msg)
	}
	return false
}

// checkLocalSwitch holds the switch to what it is: the person's word, recorded by the portal
// alone, so it succeeds whatever the upstreams do and asks none of them.
func checkLocalSwitch(t *testing.T, f *faultFixture, a faultAnswer) bool {
	t.Helper()
	if a.p.status != http.StatusSeeOther || a.calls != 0 {
		t.Errorf("%s: %d after %d upstream calls: %.300s", a.what, a.p.status, a.calls, text(a.p, "main"))
	}
	r, err := f.clients.RotationProof(t.Context(), f.principalOf("dev@example.no"), "tt02", f.id)
	if err != nil || r.State != clients.RotationSwitched {
		t.Errorf("%s: the rotation is at %q (%v)", a.what, r.State, err)
	}
	return false
}

// faultCases lists every route that calls an upstream.
func faultCases() map[string]faultCase {
	return map[string]faultCase{
		"POST /envs/:env/integrations/sync": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			return faultReq{method: http.MethodPost, path: "/envs/tt02/integrations/sync"}
		}},
		"GET /envs/:env/integrations":     {mirror: true, prepare: get("/envs/tt02/integrations")},
		"GET /envs/:env/integrations/new": {mirror: true, prepare: get("/envs/tt02/integrations/new")},
		"POST /envs/:env/integrations": {creates: 1, prepare: func(t *testing.T, f *faultFixture) faultReq {
			form := newForm(t, f.c)
			form.Set("name", "Unlucky")
			form.Set("description", "Created while Digdir fails")
			form.Set("team", f.team)
			form["scopes"] = []string{"altinn:serviceowner/instances.read"}
			return faultReq{method: http.MethodPost, path: "/envs/tt02/integrations", form: form}
		}},
		"GET /envs/:env/integrations/:id":      {prepare: get("/envs/tt02/integrations/:id")},
		"GET /envs/:env/integrations/:id/edit": {prepare: get("/envs/tt02/integrations/:id/edit")},
		"POST /envs/:env/integrations/:id/edit": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := f.c.get(f.base + "/edit")
			form := url.Values{}
			p.doc.Find(`form input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) {
				n, _ := s.Attr("name")
				v, _ := s.Attr("value")
				form.Set(n, v)
			})
			form.Set("name", "Faulty")
			form.Set("description", "Edited while Digdir fails")
			form.Set("team", f.team)
			form["scopes"] = clients.AltinnServiceOwnerScopes
			p = f.c.post(f.base+"/edit", form)
			if p.status != http.StatusOK {
				t.Fatalf("edit preview: %d %s", p.status, p.body)
			}
			return faultReq{method: http.MethodPost, path: f.base + "/edit", form: hiddenOf(p, `[data-testid="confirm-form"]`)}
		}},
		"POST /envs/:env/integrations/:id/deactivate": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := f.c.get(f.base + "/deactivate")
			key, _ := p.doc.Find(`input[name="key"]`).Attr("value")
			return faultReq{method: http.MethodPost, path: f.base + "/deactivate", form: url.Values{"key": {key}, "confirm_name": {"Faulty"}}}
		}},
		"GET /envs/:env/integrations/:id/copy": {prepare: get("/envs/tt02/integrations/:id/copy")},
		"POST /envs/:env/integrations/:id/copy": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := f.c.get(f.base + "/copy")
			if p.status != http.StatusOK {
				t.Fatalf("copy form: %d %s", p.status, p.body)
			}
			return faultReq{method: http.MethodPost, path: f.base + "/copy", form: formOf(p, `main form`)}
		}},
		"GET /envs/:env/integrations/:id/keys": {prepare: get("/envs/tt02/integrations/:id/keys")},
		"POST /envs/:env/integrations/:id/keys/generated/:job": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			return generated(t, f, f.base+"/keys", keysForm(t, f), "faulty-new-"+itoa(time.Now().UnixNano()%1e6))
		}},
		"POST /envs/:env/integrations/:id/keys/upload": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			form := keysForm(t, f)
			form.Set("key_text", publicPEM(t, simKeyPool[2]))
			form.Set("upload_kid", "uploaded-faulty")
			return faultReq{method: http.MethodPost, path: f.base + "/keys/upload", form: form}
		}},
		"POST /envs/:env/integrations/:id/keys/renew": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			form := keysForm(t, f)
			form.Set("kid", "faulty-kept")
			return faultReq{method: http.MethodPost, path: f.base + "/keys/renew", form: form}
		}},
		"GET /envs/:env/integrations/:id/keys/delete": {mirror: true, prepare: get("/envs/tt02/integrations/:id/keys/delete?kid=faulty-kept")},
		"POST /envs/:env/integrations/:id/keys/delete": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := f.c.get(f.base + "/keys/delete?kid=faulty-kept")
			if p.status != http.StatusOK {
				t.Fatalf("confirm delete: %d %s", p.status, p.body)
			}
			return faultReq{method: http.MethodPost, path: f.base + "/keys/delete", form: hiddenOf(p, `[data-testid="confirm-form"]`)}
		}},
		"GET /envs/:env/integrations/:id/keys/rotate": {prepare: get("/envs/tt02/integrations/:id/keys/rotate?old=faulty-kept")},
		"POST /envs/:env/integrations/:id/keys/rotate": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			return faultReq{method: http.MethodPost, path: f.base + "/keys/rotate", form: url.Values{"old_kid": {"faulty-kept"}}}
		}},
		"POST /envs/:env/integrations/:id/keys/rotate/upload": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			rotate := f.base + "/keys/rotate"
			p := f.c.get(rotate)
			if stateOf(p) == "" {
				if r := f.c.post(rotate, url.Values{"old_kid": {"faulty-kept"}}); r.status != http.StatusSeeOther {
					t.Fatalf("start rotation: %d %s", r.status, r.body)
				}
				p = f.c.get(rotate)
			}
			form := hiddenOf(p, `form[data-testid="upload-form"]`)
			form.Set("key_text", publicPEM(t, simKeyPool[3]))
			form.Set("upload_kid", "rotated-faulty")
			return faultReq{method: http.MethodPost, path: rotate + "/upload", form: form}
		}},
		"POST /envs/:env/integrations/:id/keys/rotate/generated/:job": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := rotationAt(t, f, clients.RotationStarted)
			return generated(t, f, f.base+"/keys/rotate", hiddenOf(p, `form[data-testid="generate-form"]`), "rotated-new-"+itoa(time.Now().UnixNano()%1e6))
		}},
		"POST /envs/:env/integrations/:id/keys/rotate/use": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			form := formOf(rotationAt(t, f, clients.RotationStarted), `form[data-testid="use-form"]`)
			form.Set("new_kid", "faulty-kept")
			return faultReq{method: http.MethodPost, path: f.base + "/keys/rotate/use", form: form}
		}},
		// The proof's own request reads the new key from the self-service API; its token
		// requests run in the background, so Maskinporten is the one that fails.
		"POST /envs/:env/integrations/:id/keys/rotate/prove": {upstreams: []string{sim.UpstreamMaskinporten}, check: checkFailedProof,
			prepare: func(t *testing.T, f *faultFixture) faultReq {
				p := rotationAt(t, f, clients.RotationAdded)
				return faultReq{method: http.MethodPost, path: f.base + "/keys/rotate/prove", form: hiddenOf(p, `form[data-testid="prove-form"]`)}
			}},
		// The switch records the person's word and asks no upstream: it must succeed however
		// they fail.
		"POST /envs/:env/integrations/:id/keys/rotate/switch": {check: checkLocalSwitch, prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := rotationAt(t, f, clients.RotationProved)
			return faultReq{method: http.MethodPost, path: f.base + "/keys/rotate/switch", form: hiddenOf(p, `form[data-testid="switch-form"]`)}
		}},
		"POST /envs/:env/integrations/:id/keys/rotate/retire": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := rotationAt(t, f, clients.RotationSwitched)
			return faultReq{method: http.MethodPost, path: f.base + "/keys/rotate/retire", form: hiddenOf(p, `form[data-testid="retire-form"]`)}
		}},
		"POST /envs/:env/integrations/:id/try/grant": {try: "token", prepare: func(t *testing.T, f *faultFixture) faultReq {
			p := f.c.get(f.base + "/try")
			form := formOf(p, `form[data-testid="grant-form"]`)
			form.Set("how", "run")
			form.Set("org", "ttd")
			return faultReq{method: http.MethodPost, path: f.base + "/try/grant", form: form}
		}},
		"POST /envs/:env/integrations/:id/try/token": {try: "token", prepare: func(t *testing.T, f *faultFixture) faultReq {
			p, path := tryUpTo(t, f, "token")
			return faultReq{method: http.MethodPost, path: path + "/token", form: formOf(p, `[data-testid="try-step-2"] form`)}
		}},
		"POST /envs/:env/integrations/:id/try/exchange": {try: "exchange", prepare: func(t *testing.T, f *faultFixture) faultReq {
			p, path := tryUpTo(t, f, "exchange")
			return faultReq{method: http.MethodPost, path: path + "/exchange", form: formOf(p, `[data-testid="try-step-3"] form`)}
		}},
		"POST /envs/:env/integrations/:id/try/instances": {try: "instances", prepare: func(t *testing.T, f *faultFixture) faultReq {
			p, path := tryUpTo(t, f, "instances")
			form := formOf(p, `[data-testid="try-step-4"] form`)
			form.Set("org", "ttd")
			return faultReq{method: http.MethodPost, path: path + "/instances", form: form}
		}},
		"POST /envs/:env/integrations/:id/try/instance": {try: "instance", prepare: func(t *testing.T, f *faultFixture) faultReq {
			p, path := tryUpTo(t, f, "instance")
			return faultReq{method: http.MethodPost, path: path + "/instance", form: formOf(p, `[data-testid="instances"] tbody tr:first-child form`)}
		}},
		"POST /envs/:env/integrations/:id/try/next": {try: "instances", prepare: func(t *testing.T, f *faultFixture) faultReq {
			// Pages of one instance, so that there is a next page.
			p, path := tryUpTo(t, f, "instances")
			form := formOf(p, `[data-testid="try-step-4"] form`)
			form.Set("org", "ttd")
			form.Set("size", "1")
			p = f.c.post(path+"/instances", form)
			stepOK(t, p, "instances")
			form = formOf(p, `form:has([data-testid="next-page"])`)
			if len(form) == 0 {
				t.Fatalf("no next page of instances: %.300s", text(p, `[data-testid="result-instances"]`))
			}
			return faultReq{method: http.MethodPost, path: path + "/next", form: form}
		}},
		"POST /envs/:env/integrations/:id/try/get": {try: "platform", prepare: func(t *testing.T, f *faultFixture) faultReq {
			p, path := tryUpTo(t, f, "instances")
			form := formOf(p, `form[data-testid="platform-form"]`)
			form.Set("path", "/storage/api/v1/instances?org=ttd&size=1")
			return faultReq{method: http.MethodPost, path: path + "/get", form: form}
		}},
		"GET /envs/:env/integrations/:id/try/data": {prepare: func(t *testing.T, f *faultFixture) faultReq {
			p, path := tryUpTo(t, f, "data")
			p = f.c.post(path+"/instance", formOf(p, `[data-testid="instances"] tbody tr:first-child form`))
			stepOK(t, p, "instance")
			href, ok := p.doc.Find(`[data-testid="download"]`).First().Attr("href")
			if !ok {
				t.Fatalf("no download link")
			}
			return faultReq{method: http.MethodGet, path: href}
		}},
	}
}

var (
	faultKinds = []struct {
		name string
		f    sim.Faults
	}{
		{"latency", sim.Faults{Latency: 2 * faultTimeout}},
		{"5xx", sim.Faults{ErrorRate: 1, ErrorStatus: http.StatusServiceUnavailable}},
		{"reset", sim.Faults{ResetRate: 1}},
		// Held well past the portal's timeout. The simulator ends a held request when its
		// client gives up; the bound is a backstop should one not.
		{"hung", sim.Faults{TimeoutRate: 1, TimeoutAfter: 3 * faultTimeout}},
		{"malformed", sim.Faults{MalformedRate: 1}},
	}
	leaks     = regexp.MustCompile(`goroutine \d|panic:|\.go:\d|Bearer\s+ey|"access_token"`)
	failWords = regexp.MustCompile(`(?i)fail|did not answer|could not|cannot read|not be reached|timed? ?out|unreadable|stopped calling|not what the protocol|try again`)
)

// TestUpstreamFaults drives every route that calls an upstream while the upstreams of tt02
// misbehave, one way at a time: each answers in time with a message a person can act on, and
// leaves nothing half-written.
func TestUpstreamFaults(t *testing.T) {
	cases := faultCases()
	// The router is the list of routes: an upstream-calling route missing from the table fails.
	probe := newFaultFixture(t, nil)
	seen := map[string]bool{}
	for _, r := range probe.web.Routes() {
		key := r.Method + " " + r.Path
		if seen[key] || strings.HasSuffix(r.Path, "/*") {
			continue
		}
		seen[key] = true
		if _, listed := cases[key]; listed || r.Method != http.MethodGet {
			continue
		}
		// A GET not in the table must not call an upstream.
		path := strings.NewReplacer(":env", "tt02", ":id", probe.id, ":job", "0123456789abcdef0123456789abcdef").Replace(r.Path)
		before := probe.calls.Load()
		probe.c.get(path)
		if n := probe.calls.Load() - before; n != 0 {
			t.Errorf("%s called an upstream %d times but is not in the fault table", key, n)
		}
	}
	// POSTs cannot be probed with an empty form (validation stops them first), so the table
	// of POSTs that do not call out is written down.
	for key := range seen {
		if _, ok := cases[key]; ok || !strings.HasPrefix(key, "POST /envs/:env/integrations") {
			continue
		}
		if !localPOSTs[key] {
			t.Errorf("%s is neither in the fault table nor known to stay local", key)
		}
	}
	for key := range cases {
		if !seen[key] {
			t.Errorf("fault table lists %s, which is not a registered route", key)
		}
	}

	for key, fc := range cases {
		// Slashes would make each path segment a level of -run's pattern.
		t.Run(strings.ReplaceAll(key, "/", "|"), func(t *testing.T) {
			t.Parallel()
			f := newFaultFixture(t, nil)
			for _, kind := range faultKinds {
				runFault(t, f, key, fc, kind.name, kind.f)
			}
		})
	}
}

// localPOSTs are integration routes that change only the portal's own state.
var localPOSTs = map[string]bool{
	"POST /envs/:env/integrations/:id/acknowledge":          true,
	"POST /envs/:env/integrations/:id/keys/generate":        true, // starts a local key generation
	"POST /envs/:env/integrations/:id/keys/rotate/generate": true,
	"POST /envs/:env/integrations/:id/keys/rotate/cancel":   true,
	"POST /envs/:env/integrations/:id/try/reveal":           true,
}

func runFault(t *testing.T, f *faultFixture, key string, fc faultCase, kind string, faults sim.Faults) {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	req := fc.prepare(t, f)
	mirror := mirrorOf(t, f.app)
	upstream, err := f.plain.ListClients(ctx, true)
	if err != nil {
		t.Fatal(err)
	}

	f.setFaultsOn(t, fc.upstreams, faults)
	calls := f.calls.Load()
	// The whole request, however many upstream calls it makes, must end well within this.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	p, err := f.c.send(rctx, req)
	cancel()
	if err != nil {
		f.setFaults(t, sim.Faults{})
		t.Fatalf("%s under %s: no answer in time: %v", key, kind, err)
	}
	what := key + " under " + kind

	// A clear answer: no trace of internals or tokens, and words a person can act on.
	if m := leaks.FindString(p.body); m != "" {
		t.Errorf("%s: the page shows %q", what, m)
	}
	succeeded := false
	if fc.check != nil {
		succeeded = fc.check(t, f, faultAnswer{p: p, kind: kind, what: what, calls: f.calls.Load() - calls})
	}
	after := mirrorOf(t, f.app)
	f.setFaults(t, sim.Faults{})
	switch {
	case fc.check != nil:
	case fc.mirror && p.status == http.StatusOK:
	case kind == "malformed" && strings.HasSuffix(key, "/try/data") && p.status == http.StatusOK:
		// A download passes Storage's bytes through; a body cut short and garbled, with a
		// matching Content-Length, cannot be told from the file.
	case p.status == http.StatusInternalServerError:
		t.Errorf("%s: 500: %s", what, text(p, "main"))
	case fc.try != "":
		r := p.doc.Find(`[data-testid="result-` + fc.try + `"]`)
		if ok, _ := r.Attr("data-ok"); p.status != http.StatusOK || ok != "false" || r.Find(`[data-testid="finding"]`).Length() == 0 {
			t.Errorf("%s: status %d, step %q ok=%q: %s", what, p.status, fc.try, ok, strings.TrimSpace(r.Text()))
		}
	case p.status == http.StatusOK && kind == "latency":
		// A read the portal answers from its mirror when the upstream is slow is fine, if it
		// says the data may be stale.
		fallthrough
	default:
		msg := strings.Join(strings.Fields(p.doc.Find("main").Text()), " ")
		if p.status == http.StatusSeeOther {
			loc := p.header.Get("Location")
			next := f.c.get(loc)
			msg = strings.Join(strings.Fields(next.doc.Find("main").Text()), " ")
			// A write whose answer the portal does not need to read (a deactivation's) may
			// succeed despite a garbled body.
			succeeded = kind == "malformed"
		}
		if !succeeded && (!failWords.MatchString(msg) || !strings.Contains(strings.ToLower(msg), "tt02")) {
			t.Errorf("%s: status %d without a clear message: %.600s", what, p.status, msg)
		}
	}

	// Nothing half-written: the mirror is as it was, and the audit chain holds.
	if succeeded {
		// Then the mirror must say what Digdir says.
		for id, it := range after {
			reg, err := f.plain.GetClient(ctx, id)
			if err == nil && (reg.Active != it.Active || reg.ClientName != it.Name) {
				t.Errorf("%s: succeeded, but the mirror of %s differs from Digdir", what, id)
			}
		}
	} else if d := diffMirror(mirror, after); d != "" {
		t.Errorf("%s: the mirror changed: %s (answer %d %s: %.300s)", what, d, p.status, p.header.Get("Location"), strings.Join(strings.Fields(p.doc.Find("main").Text()), " "))
	}
	if _, err := audit.NewLog(f.db, nil).Verify(ctx); err != nil {
		t.Errorf("%s: audit chain: %v", what, err)
	}
	// Once the upstream is back, one sync settles any unknown outcome: no intent stays open,
	// nothing is unowned, and no more clients exist than the request could have made.
	settle(t, f)
	now, err := f.plain.ListClients(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(now) > len(upstream)+fc.creates {
		t.Errorf("%s: %d upstream clients, was %d", what, len(now), len(upstream))
	}
	// A client the request did create is the team's, not an unowned stranger. Intents for
	// writes that never happened stay open until their time to live, which is by design.
	for id, it := range mirrorOf(t, f.app) {
		if _, known := mirror[id]; !known && it.TeamID == 0 {
			t.Errorf("%s: %s appeared unowned after the sync", what, id)
			_ = f.db.Tx(ctx, func(tx *sql.Tx) error {
				ins, _ := store.OpenIntentsTx(ctx, tx, "tt02")
				for _, in := range ins {
					t.Logf("open intent %s %s at %s", in.Action, in.Request, in.CreatedAt)
				}
				return nil
			})
			t.Logf("row: %s %q %v first seen %s raw %s", it.Name, it.Description, it.Scopes, it.FirstSeen, it.Raw)
		}
	}
	t.Logf("%s: %d %s (%d intents open)", what, p.status, time.Since(start).Round(time.Millisecond), openIntents(t, f.app))
}

// settle syncs tt02 with the upstreams healthy; a sync may already be running.
func settle(t *testing.T, f *faultFixture) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := f.clients.Sync(t.Context(), "tt02")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync after the fault: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *client) send(ctx context.Context, r faultReq) (page, error) {
	var body io.Reader
	form := r.form
	if r.method == http.MethodPost {
		if form == nil {
			form = url.Values{}
		}
		if form.Get("_csrf") == "" {
			form.Set("_csrf", c.csrf())
		}
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, body)
	if err != nil {
		return page{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, err
	}
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(string(b)))
	return page{status: resp.StatusCode, header: resp.Header, body: string(b), doc: doc}, nil
}

func mirrorOf(t *testing.T, a *app) map[string]store.Integration {
	t.Helper()
	var out map[string]store.Integration
	err := a.db.Tx(t.Context(), func(tx *sql.Tx) error {
		var err error
		out, err = store.IntegrationsTx(t.Context(), tx, "tt02")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openIntents(t *testing.T, a *app) int {
	t.Helper()
	var n int
	err := a.db.Tx(t.Context(), func(tx *sql.Tx) error {
		ins, err := store.OpenIntentsTx(t.Context(), tx, "tt02")
		n = len(ins)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// diffMirror names what changed between two mirror snapshots, sync times aside.
func diffMirror(a, b map[string]store.Integration) string {
	var out []string
	for id, x := range a {
		y, ok := b[id]
		if !ok {
			out = append(out, id+" vanished")
			continue
		}
		x.SyncedAt, y.SyncedAt = time.Time{}, time.Time{}
		if x.Name != y.Name || x.Description != y.Description || x.Active != y.Active || x.TeamID != y.TeamID ||
			x.JWKS != y.JWKS || x.KeyCount != y.KeyCount || x.Raw != y.Raw || strings.Join(x.Scopes, " ") != strings.Join(y.Scopes, " ") {
			out = append(out, id+" changed")
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			out = append(out, id+" appeared")
		}
	}
	return strings.Join(out, "; ")
}

// TestDeadUpstreamNoPileUp fires many requests at a page whose upstream never answers: all
// end, the goroutines go back to where they were, and once the breaker is open later requests
// fail at once without reaching the upstream.
func TestDeadUpstreamNoPileUp(t *testing.T) {
	f := newFaultFixture(t, &maskinporten.BreakerSettings{Failures: 3, CoolDown: time.Minute})
	path := f.base + "/keys" // reads the key set from the self-service API
	// Warm up: sessions, CSRF, the admin token and connections exist before the baseline.
	if p := f.c.get(path); p.status != http.StatusOK {
		t.Fatalf("keys page: %d", p.status)
	}
	baseline := runtime.NumGoroutine()

	f.setFaults(t, sim.Faults{TimeoutRate: 1, TimeoutAfter: time.Minute})
	const n = 200
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			p, err := f.c.send(ctx, faultReq{method: http.MethodGet, path: path})
			if err != nil {
				t.Errorf("no answer: %v", err)
				return
			}
			if strings.Contains(p.body, "is failing; the portal stopped calling it") || strings.Contains(p.body, "could not read the keys") ||
				strings.Contains(p.body, "did not answer") {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() == 0 {
		t.Error("no page said that the upstream failed")
	}

	// The breaker is open now: a request fails at once, saying so, and reaches no upstream.
	before := f.calls.Load()
	p := f.c.get(path)
	if f.calls.Load() != before {
		t.Errorf("with the breaker open, %d calls still reached the upstream", f.calls.Load()-before)
	}
	if msg := text(p, "main"); !strings.Contains(msg, "TT02 self-service API is failing; the portal stopped calling it for 60 s after 3 failures") {
		t.Errorf("open breaker: status %d, message %q", p.status, msg)
	}

	f.setFaults(t, sim.Faults{})
	f.c.hc.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		g := runtime.NumGoroutine()
		if g <= baseline+10 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", g, baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
	var oe *maskinporten.CircuitOpenError
	_, err := f.ups["tt02"].ListClients(t.Context(), false)
	if !errors.As(err, &oe) {
		t.Errorf("the client's breaker is not open: %v", err)
	}
}
