package clients_test

// The integrations service against the simulators (internal/sim) over HTTP and a real SQLite
// file per test: both environments, the create/update/deactivate paths with their intents,
// fault injection on the self-service API, drift, authorization, list filters and copying to
// production.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/sim"
	"portal/internal/store"
)

const (
	readScope   = "altinn:serviceowner/instances.read"
	writeScope  = "altinn:serviceowner/instances.write"
	brokerRead  = "altinn:broker.read"
	brokerWrite = "altinn:broker.write"
	krrScope    = "krr:global/kontaktinformasjon.read" // REQUESTED, not usable
	tt02Only    = "ttd:test/only-in-tt02.read"         // seeded in tt02 only (copy test)
)

var preset = []string{readScope, writeScope}

// keyPool is generated once per test binary: 8 keys for each simulator's fresh state and six
// for client key sets. Key generation dominates the cost of a simulator otherwise.
var keyPool = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var pool []*rsa.PrivateKey
	for range 14 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		pool = append(pool, k)
	}
	return pool, nil
})

func pool(t *testing.T) []*rsa.PrivateKey {
	t.Helper()
	p, err := keyPool()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hooked is the Upstream the service gets: the real client, with hooks a test sets to inject
// faults right before a write, lose a write's answer, or hold a sync's client list.
type hooked struct {
	clients.Upstream
	mu          sync.Mutex
	beforeWrite func(op string)
	afterCreate func(ctx context.Context, out *maskinporten.Registration, err error) (*maskinporten.Registration, error)
	afterKeys   func(out *maskinporten.JWKS, err error) (*maskinporten.JWKS, error)
	listGate    chan struct{} // when set, ListClients waits until it is closed
	listEntered chan struct{} // when set, closed by the next ListClients that waits on listGate
	gets        int
	jwksReads   map[string]int // GetJWKS calls per client id
}

func (h *hooked) GetJWKS(ctx context.Context, id string) (*maskinporten.JWKS, error) {
	h.mu.Lock()
	if h.jwksReads == nil {
		h.jwksReads = map[string]int{}
	}
	h.jwksReads[id]++
	h.mu.Unlock()
	return h.Upstream.GetJWKS(ctx, id)
}

func (h *hooked) jwksReadsOf(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.jwksReads[id]
}

func (h *hooked) set(f func(h *hooked)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *hooked) before(op string) {
	h.mu.Lock()
	f := h.beforeWrite
	h.mu.Unlock()
	if f != nil {
		f(op)
	}
}

func (h *hooked) ListClients(ctx context.Context, inactive bool) ([]maskinporten.Registration, error) {
	h.mu.Lock()
	gate, entered := h.listGate, h.listEntered
	h.listEntered = nil
	h.mu.Unlock()
	if entered != nil {
		close(entered)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Upstream.ListClients(ctx, inactive)
}

func (h *hooked) GetClient(ctx context.Context, id string) (*maskinporten.Registration, error) {
	h.mu.Lock()
	h.gets++
	h.mu.Unlock()
	return h.Upstream.GetClient(ctx, id)
}

func (h *hooked) getCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gets
}

func (h *hooked) CreateClient(ctx context.Context, r maskinporten.Registration) (*maskinporten.Registration, error) {
	h.before("create")
	out, err := h.Upstream.CreateClient(ctx, r)
	h.mu.Lock()
	f := h.afterCreate
	h.mu.Unlock()
	if f != nil {
		return f(ctx, out, err)
	}
	return out, err
}

func (h *hooked) UpdateClient(ctx context.Context, id string, r maskinporten.Registration) (*maskinporten.Registration, error) {
	h.before("update")
	return h.Upstream.UpdateClient(ctx, id, r)
}

func (h *hooked) DeleteClient(ctx context.Context, id string) error {
	h.before("deactivate")
	return h.Upstream.DeleteClient(ctx, id)
}

func (h *hooked) ReplaceJWKS(ctx context.Context, id string, ks []maskinporten.JWK) (*maskinporten.JWKS, error) {
	h.before("keys")
	out, err := h.Upstream.ReplaceJWKS(ctx, id, ks)
	h.mu.Lock()
	f := h.afterKeys
	h.mu.Unlock()
	if f != nil {
		return f(out, err)
	}
	return out, err
}

// sentBodies records the JSON bodies of writes to the self-service API, to check what the
// portal sends rather than what the simulator keeps.
type sentBodies struct {
	base http.RoundTripper
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	Method, Path string
	Body         map[string]any
}

func (s *sentBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && (req.Method == http.MethodPost || req.Method == http.MethodPut) && strings.Contains(req.URL.Path, "/selfservice/") {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		s.mu.Lock()
		s.sent = append(s.sent, sent{Method: req.Method, Path: req.URL.Path, Body: m})
		s.mu.Unlock()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	return s.base.RoundTrip(req)
}

func (s *sentBodies) all() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

type worldOptions struct {
	timeout time.Duration // the maskinporten client's per-call timeout; default 10 s
	seed    *sim.SeedFile
	now     func() time.Time // the service's clock
	// privileged are each environment's configured privileged scopes.
	privileged []string
	// allowRS384RS512 lists the environments that offer RS384 and RS512 keys.
	allowRS384RS512 []string
	// mpConfig adjusts an environment's maskinporten client before it is made.
	mpConfig func(t *testing.T, s *sim.Sim, env string, cfg *maskinporten.Config)
}

// world is one simulator serving tt02 and prod, a fresh database with two teams, the service
// over both environments, and a principal for each role.
type world struct {
	sim  *sim.Sim
	db   *store.DB
	svc  *clients.Service
	mp   map[string]*maskinporten.Client // direct access, as someone outside the portal
	up   map[string]*hooked
	sent *sentBodies
	envs []clients.Env // as the service got them

	teamA, teamB int64

	admin, ownerA, memberA, viewerA, memberB *auth.Principal
}

var labels = map[string]string{"tt02": "TT02", "prod": "Production"}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	ctx := t.Context()
	keys := pool(t)
	srv := httptest.NewUnstartedServer(nil)
	cfg := sim.Config{
		BaseURL: "http://" + srv.Listener.Addr().String(),
		DataDir: t.TempDir(),
		GenerateKey: func() func() (*rsa.PrivateKey, error) {
			var mu sync.Mutex
			next := 0
			return func() (*rsa.PrivateKey, error) {
				mu.Lock()
				defer mu.Unlock()
				k := keys[next%8]
				next++
				return k, nil
			}
		}(),
		AppInstances: 1,
	}
	if o.seed != nil {
		b, err := json.Marshal(o.seed)
		if err != nil {
			t.Fatal(err)
		}
		cfg.SeedFile = filepath.Join(t.TempDir(), "seed.json")
		if err := os.WriteFile(cfg.SeedFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sim.Open(ctx, cfg)
	if err != nil {
		srv.Listener.Close()
		t.Fatalf("open sim: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sim: %v", err)
		}
	})
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	w := &world{sim: s, db: db, mp: map[string]*maskinporten.Client{}, up: map[string]*hooked{},
		sent: &sentBodies{base: srv.Client().Transport}}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if w.teamA, err = store.InsertTeam(ctx, tx, "Team A", time.Now()); err != nil {
			return err
		}
		w.teamB, err = store.InsertTeam(ctx, tx, "Team B", time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.admin = &auth.Principal{UserID: 1, Email: "admin@example.no", Role: auth.RoleAdmin}
	w.ownerA = member(2, "owner-a", w.teamA, "Team A", auth.TeamOwner)
	w.memberA = member(3, "member-a", w.teamA, "Team A", auth.TeamMember)
	w.viewerA = member(4, "viewer-a", w.teamA, "Team A", auth.TeamViewer)
	w.memberB = member(5, "member-b", w.teamB, "Team B", auth.TeamMember)

	timeout := o.timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var envs []clients.Env
	for _, env := range sim.Environments {
		a, err := s.AdminCredentials(env)
		if err != nil {
			t.Fatal(err)
		}
		mcfg := maskinporten.Config{
			Issuer: a.Issuer, SelfServiceURL: a.SelfServiceURL,
			HTTPClient: &http.Client{Transport: w.sent},
			Timeout:    timeout, Backoff: 10 * time.Millisecond,
			Admin: adminCredentials(t, a),
		}
		if o.mpConfig != nil {
			o.mpConfig(t, s, env, &mcfg)
		}
		mp, err := maskinporten.New(mcfg)
		if err != nil {
			t.Fatal(err)
		}
		w.mp[env] = mp
		w.up[env] = &hooked{Upstream: mp}
		envs = append(envs, clients.Env{Name: env, Label: labels[env], Prod: env == "prod", Issuer: a.Issuer, Upstream: w.up[env],
			PrivilegedScopes: o.privileged, AllowRS384RS512: slices.Contains(o.allowRS384RS512, env)})
	}
	w.envs = envs
	w.svc, err = clients.New(db, envs, clients.Options{Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.svc.Close)
	// Runs first: whatever a test did, the audit chain must still hold.
	t.Cleanup(func() { w.verifyAudit(t) })
	return w
}

func member(id int64, name string, team int64, teamName, role string) *auth.Principal {
	return &auth.Principal{UserID: id, Email: name + "@example.no", Role: auth.RoleMember,
		Teams: []auth.TeamRole{{TeamID: team, TeamName: teamName, Role: role}}}
}

func adminCredentials(t *testing.T, a sim.AdminCredentials) *maskinporten.Credentials {
	t.Helper()
	key, err := keys.ParsePrivate([]byte(a.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := []byte(a.CertificateChainPEM); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return &maskinporten.Credentials{ClientID: a.ClientID, Signer: maskinporten.Signer{Key: key, Chain: chain}, Scopes: a.Scopes}
}

func meta(p *auth.Principal) audit.Meta {
	return audit.Meta{ActorID: p.UserID, Actor: p.Email, RequestID: "req-test"}
}

func draft(name string, team int64, scopes ...string) clients.Draft {
	return clients.Draft{Name: name, Description: "Integration " + name, TeamID: team, Scopes: scopes, Key: clients.NewKey()}
}

func (w *world) create(t *testing.T, p *auth.Principal, env string, d clients.Draft) string {
	t.Helper()
	id, err := w.svc.Create(t.Context(), p, meta(p), env, d)
	if err != nil {
		t.Fatalf("create %q in %s: %v", d.Name, env, err)
	}
	if id == "" {
		t.Fatalf("create %q in %s: no client id", d.Name, env)
	}
	return id
}

// syncOK runs a sync until one succeeds: the first may join a sync that started while the
// upstream was failing.
func (w *world) syncOK(t *testing.T, env string) clients.SyncResult {
	t.Helper()
	var last error
	for range 3 {
		res, err := w.svc.Sync(t.Context(), env)
		if err == nil {
			return res
		}
		last = err
	}
	t.Fatalf("sync %s: %v", env, last)
	return clients.SyncResult{}
}

// upstreamNamed lists the clients upstream (inactive ones too) with a name.
func (w *world) upstreamNamed(t *testing.T, env, name string) []maskinporten.Registration {
	t.Helper()
	list, err := w.mp[env].ListClients(t.Context(), true)
	if err != nil {
		t.Fatalf("list upstream %s: %v", env, err)
	}
	var out []maskinporten.Registration
	for _, r := range list {
		if r.ClientName == name {
			out = append(out, r)
		}
	}
	return out
}

func (w *world) upstream(t *testing.T, env, id string) maskinporten.Registration {
	t.Helper()
	list, err := w.mp[env].ListClients(t.Context(), true)
	if err != nil {
		t.Fatalf("list upstream %s: %v", env, err)
	}
	for _, r := range list {
		if r.ClientID == id {
			return r
		}
	}
	t.Fatalf("client %s is not upstream in %s", id, env)
	return maskinporten.Registration{}
}

// rows reads the whole mirror of env.
func (w *world) rows(t *testing.T, env string) map[string]store.Integration {
	t.Helper()
	var out map[string]store.Integration
	err := w.db.Tx(t.Context(), func(tx *sql.Tx) error {
		var err error
		out, err = store.IntegrationsTx(t.Context(), tx, env)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (w *world) row(t *testing.T, env, id string) store.Integration {
	t.Helper()
	it, err := w.db.Integration(t.Context(), env, id)
	if err != nil {
		t.Fatalf("mirror row %s/%s: %v", env, id, err)
	}
	return it
}

func (w *world) rowsNamed(t *testing.T, env, name string) []store.Integration {
	t.Helper()
	var out []store.Integration
	for _, it := range w.rows(t, env) {
		if it.Name == name {
			out = append(out, it)
		}
	}
	return out
}

func (w *world) intent(t *testing.T, env, key string) store.Intent {
	t.Helper()
	var in store.Intent
	err := w.db.Tx(t.Context(), func(tx *sql.Tx) error {
		var err error
		in, err = store.IntentByKeyTx(t.Context(), tx, env, key)
		return err
	})
	if err != nil {
		t.Fatalf("intent %s/%s: %v", env, key, err)
	}
	return in
}

func (w *world) events(t *testing.T, env, id string) []audit.Event {
	t.Helper()
	evs, err := audit.NewLog(w.db, nil).ForTarget(t.Context(), env, id, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// event returns the newest event of an action about a target.
func (w *world) event(t *testing.T, env, id, action, outcome string) audit.Event {
	t.Helper()
	var actions []string
	for _, ev := range w.events(t, env, id) {
		if ev.Action == action && ev.Outcome == outcome {
			return ev
		}
		actions = append(actions, ev.Action+"/"+ev.Outcome)
	}
	t.Fatalf("no %s/%s event for %s/%s; have %v", action, outcome, env, id, actions)
	return audit.Event{}
}

func (w *world) verifyAudit(t *testing.T) {
	t.Helper()
	res, err := audit.NewLog(w.db, nil).Verify(context.WithoutCancel(t.Context()))
	if err != nil {
		t.Errorf("audit chain after %d events: %v", res.Events, err)
	}
}

// wantKind checks that err is a problem of kind k.
func wantKind(t *testing.T, err error, k problem.Kind) *problem.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", k)
	}
	pe, ok := problem.As(err)
	if !ok || pe.Kind != k {
		t.Fatalf("err = %v (kind %v), want kind %v", err, problem.KindOf(err), k)
	}
	return pe
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	pe := wantKind(t, err, problem.KindInvalid)
	if pe.Fields[field] == "" {
		t.Fatalf("no message for field %q; fields %v (%v)", field, pe.Fields, err)
	}
}

// rsaJWK is a public key of the pool as a JWK with an optional exp.
func rsaJWK(t *testing.T, kid string, exp time.Time) maskinporten.JWK {
	t.Helper()
	k := pool(t)[8]
	j := maskinporten.JWK{Kty: "RSA", Kid: kid, Alg: "RS256", Use: "sig",
		N: base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
	if !exp.IsZero() {
		j.Exp = exp.Unix()
	}
	return j
}

func TestCreateWithAltinnPreset(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()

	form, err := w.svc.NewForm(ctx, w.ownerA, "tt02")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(form.Preset, preset) {
		t.Errorf("preset %v, want %v", form.Preset, preset)
	}
	if form.Draft.TeamID != w.teamA || form.Draft.Key == "" {
		t.Errorf("form draft %+v: want team A preselected and a key", form.Draft)
	}
	var names []string
	for _, sc := range form.Scopes {
		names = append(names, sc.Name)
	}
	for _, want := range []string{readScope, writeScope, brokerRead} {
		if !slices.Contains(names, want) {
			t.Errorf("usable scopes %v lack %s", names, want)
		}
	}
	for _, not := range []string{krrScope, "altinn:portal/enduser", "skatteetaten:inntekt"} {
		if slices.Contains(names, not) {
			t.Errorf("usable scopes %v include %s", names, not)
		}
	}

	d := form.Draft
	d.Name, d.Description, d.Scopes = "Instances reader", "Reads our app instances", form.Preset
	id := w.create(t, w.ownerA, "tt02", d)

	up, err := w.mp["tt02"].GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(up.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]any{"integration_type": "maskinporten", "application_type": "web",
		"token_endpoint_auth_method": "private_key_jwt", "client_name": "Instances reader", "description": "Reads our app instances"} {
		if raw[field] != want {
			t.Errorf("upstream %s = %v, want %v", field, raw[field], want)
		}
	}
	if gt := up.GrantTypes; !slices.Equal(gt, []string{maskinporten.GrantType}) {
		t.Errorf("grant_types %v, want [%s]", gt, maskinporten.GrantType)
	}
	if !slices.Equal(slices.Sorted(slices.Values(up.Scopes)), preset) {
		t.Errorf("upstream scopes %v, want %v", up.Scopes, preset)
	}
	for _, legacy := range []string{"client_type", "token_reference"} {
		if _, ok := raw[legacy]; ok {
			t.Errorf("upstream client has legacy field %s", legacy)
		}
	}
	// What the portal sent, not only what the simulator kept.
	var posts int
	for _, s := range w.sent.all() {
		if s.Method != http.MethodPost || !strings.HasSuffix(s.Path, "/clients") {
			continue
		}
		posts++
		for _, legacy := range []string{"client_type", "token_reference", "client_id", "created", "last_updated"} {
			if _, ok := s.Body[legacy]; ok {
				t.Errorf("create request carries %s: %v", legacy, s.Body)
			}
		}
		if s.Body["integration_type"] != "maskinporten" || s.Body["token_endpoint_auth_method"] != "private_key_jwt" {
			t.Errorf("create request %v", s.Body)
		}
	}
	if posts != 1 {
		t.Errorf("%d create requests, want 1", posts)
	}

	row := w.row(t, "tt02", id)
	if row.TeamID != w.teamA || row.TeamName != "Team A" || row.CreatedBy != w.ownerA.UserID || !row.Active || row.Drift != "" {
		t.Errorf("mirror row team %d %q, created by %d, active %v, drift %q", row.TeamID, row.TeamName, row.CreatedBy, row.Active, row.Drift)
	}
	if !slices.Equal(row.Scopes, preset) || row.Name != "Instances reader" {
		t.Errorf("mirror row %q %v", row.Name, row.Scopes)
	}
	ev := w.event(t, "tt02", id, "integration.create", audit.Success)
	if ev.Env != "tt02" || ev.Target != id || ev.TargetType != "integration" || ev.TeamID != w.teamA || ev.ActorID != w.ownerA.UserID {
		t.Errorf("create event %+v", ev)
	}
	var details map[string]json.RawMessage
	if err := json.Unmarshal(ev.Details, &details); err != nil || len(details["after"]) == 0 {
		t.Errorf("create event details %s: want the client JSON as after", ev.Details)
	}

	det, err := w.svc.Get(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if det.Summary.Team != "Team A" || !det.CanChange || !det.CanCopy || det.Issuer == "" || len(det.Events) == 0 {
		t.Errorf("detail: team %q, can change %v, can copy %v, issuer %q, %d events", det.Summary.Team, det.CanChange, det.CanCopy, det.Issuer, len(det.Events))
	}
	if !strings.Contains(det.Example.Claims, id) || !strings.Contains(det.Example.Claims, det.Issuer) {
		t.Errorf("example grant claims %s lack the client id or issuer", det.Example.Claims)
	}
	if len(det.Scopes) != 2 || det.Scopes[0].Description == "" {
		t.Errorf("detail scopes %+v: want descriptions from the catalogue", det.Scopes)
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()

	t.Run("sequential", func(t *testing.T) {
		d := draft("Twice sent", w.teamA, preset...)
		first := w.create(t, w.ownerA, "tt02", d)
		second := w.create(t, w.ownerA, "tt02", d)
		if first != second {
			t.Errorf("second submit gave %s, first %s", second, first)
		}
		if n := len(w.upstreamNamed(t, "tt02", d.Name)); n != 1 {
			t.Errorf("%d clients upstream, want 1", n)
		}
		if n := len(w.rowsNamed(t, "tt02", d.Name)); n != 1 {
			t.Errorf("%d mirror rows, want 1", n)
		}
		// The same key in another environment is another form.
		prod := w.create(t, w.ownerA, "prod", d)
		if prod == first {
			t.Errorf("prod create returned the tt02 client")
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		d := draft("Double clicked", w.teamA, preset...)
		var wg sync.WaitGroup
		ids := make([]string, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { ids[i], errs[i] = w.svc.Create(ctx, w.ownerA, meta(w.ownerA), "tt02", d) })
		}
		wg.Wait()
		var got string
		for i := range 2 {
			switch {
			case errs[i] == nil:
				if got != "" && ids[i] != got {
					t.Errorf("two submits gave two clients: %s and %s", got, ids[i])
				}
				got = ids[i]
			default:
				// The second submit waits for the first and answers as it does.
				t.Errorf("submit %d: %v", i, errs[i])
			}
		}
		if got == "" {
			t.Fatalf("neither submit succeeded: %v", errs)
		}
		if n := len(w.upstreamNamed(t, "tt02", d.Name)); n != 1 {
			t.Errorf("%d clients upstream, want 1", n)
		}
		if again := w.create(t, w.ownerA, "tt02", d); again != got {
			t.Errorf("a reload gave %s, want %s", again, got)
		}
		w.syncOK(t, "tt02")
		if rows := w.rowsNamed(t, "tt02", d.Name); len(rows) != 1 || rows[0].TeamID != w.teamA {
			t.Errorf("mirror rows %+v, want one owned by team A", rows)
		}
	})
}

func TestCreateLostAnswerIsAdoptedBySync(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	up := w.up["tt02"]
	w.syncOK(t, "tt02") // the admin client becomes an unowned row; only the new client may be adopted

	type result struct {
		out *maskinporten.Registration
		err error
	}
	tests := []struct {
		name string
		// after turns the answer of a create that was carried out upstream into what the
		// service sees; cancel ends the person's request.
		after func(ctx context.Context, cancel context.CancelFunc, r result) result
		// callFailed: the service saw the upstream call fail, so it says the outcome is
		// unknown and audits the attempt as a failure. Otherwise its local write fails.
		callFailed bool
	}{
		{"upstream answer lost", func(_ context.Context, _ context.CancelFunc, r result) result {
			return result{nil, context.DeadlineExceeded}
		}, true},
		{"person left during the call", func(ctx context.Context, cancel context.CancelFunc, r result) result {
			cancel()
			return result{nil, ctx.Err()}
		}, true},
		{"person left before the local write", func(_ context.Context, cancel context.CancelFunc, r result) result {
			cancel()
			return r
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			gate := make(chan struct{})
			up.set(func(h *hooked) {
				h.listGate = gate
				h.afterCreate = func(ctx context.Context, out *maskinporten.Registration, err error) (*maskinporten.Registration, error) {
					if err != nil {
						return out, err
					}
					r := tt.after(ctx, cancel, result{out, err})
					return r.out, r.err
				}
			})
			d := draft("Lost: "+tt.name, w.teamA, preset...)
			before := w.rows(t, "tt02")

			_, err := w.svc.Create(reqCtx, w.memberA, meta(w.memberA), "tt02", d)
			up.set(func(h *hooked) { h.afterCreate = nil })
			if tt.callFailed {
				pe := wantKind(t, err, problem.KindUpstream)
				if !strings.Contains(pe.Message, "TT02") || !strings.Contains(pe.Message, "may have been created") ||
					!strings.Contains(pe.Message, "Team A") {
					t.Errorf("message %q: want the environment, that the outcome is unknown, and the team", pe.Message)
				}
			} else if err == nil {
				t.Fatal("create succeeded without its local write")
			}
			created := w.upstreamNamed(t, "tt02", d.Name)
			if len(created) != 1 {
				t.Fatalf("%d clients upstream, want 1", len(created))
			}
			id := created[0].ClientID
			if after := w.rows(t, "tt02"); !reflect.DeepEqual(before, after) {
				t.Errorf("mirror changed before the sync: %d rows, was %d", len(after), len(before))
			}
			if in := w.intent(t, "tt02", d.Key); in.State != store.IntentOpen {
				t.Errorf("intent %s, want open", in.State)
			}
			if _, err := w.db.Integration(ctx, "tt02", id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("mirror row for %s: %v, want none yet", id, err)
			}
			// An attempt whose outcome is unknown is audited as a failure.
			var failed bool
			evs, err := audit.NewLog(w.db, nil).Recent(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Action == "integration.create" && ev.Outcome == audit.Failure && strings.Contains(string(ev.Details), d.Name) {
					failed = true
				}
			}
			if failed != tt.callFailed {
				t.Errorf("integration.create failure event for the attempt: %v, want %v", failed, tt.callFailed)
			}

			close(gate) // the sync the failure started may now read the list
			up.set(func(h *hooked) { h.listGate = nil })
			res := w.syncOK(t, "tt02")
			if res.Adopted != 1 || res.Unowned != 0 {
				t.Errorf("sync adopted %d and found %d unowned, want 1 and 0", res.Adopted, res.Unowned)
			}
			row := w.row(t, "tt02", id)
			if row.TeamID != w.teamA || row.CreatedBy != w.memberA.UserID || row.Drift != "" {
				t.Errorf("adopted row: team %d, created by %d, drift %q", row.TeamID, row.CreatedBy, row.Drift)
			}
			if in := w.intent(t, "tt02", d.Key); in.State != store.IntentDone || in.ClientID != id {
				t.Errorf("intent %s for %q, want done for %s", in.State, in.ClientID, id)
			}
			if n := len(w.upstreamNamed(t, "tt02", d.Name)); n != 1 {
				t.Errorf("%d clients upstream after the sync, want 1", n)
			}
			w.event(t, "tt02", id, "integration.create", audit.Success)
			// A reload of the form now answers with the adopted client.
			if again := w.create(t, w.memberA, "tt02", d); again != id {
				t.Errorf("resubmit gave %s, want %s", again, id)
			}
		})
	}
}

func TestUpstreamFaults(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{timeout: 2 * time.Second})
	ctx := t.Context()
	up := w.up["tt02"]
	w.syncOK(t, "tt02")

	faults := []struct {
		name   string
		faults sim.Faults
	}{
		// The simulator holds the request past the client's 2 s timeout; it notices the client
		// giving up on a request with a body only at TimeoutAfter, so keep that short.
		{"timeout", sim.Faults{TimeoutRate: 1, TimeoutAfter: 3 * time.Second}},
		{"500", sim.Faults{ErrorRate: 1, ErrorStatus: 500}},
		{"malformed body", sim.Faults{MalformedRate: 1}},
		{"connection reset", sim.Faults{ResetRate: 1}},
	}
	for _, op := range []string{"create", "update", "deactivate"} {
		for _, f := range faults {
			t.Run(op+"/"+f.name, func(t *testing.T) {
				var id string
				name := op + " under " + f.name
				if op != "create" {
					id = w.create(t, w.ownerA, "tt02", draft(name, w.teamA, preset...))
				}
				before := w.rows(t, "tt02")
				gate := make(chan struct{})
				up.set(func(h *hooked) {
					h.listGate = gate // the sync a failure starts waits until the faults are gone
					h.beforeWrite = func(string) {
						if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, f.faults); err != nil {
							t.Error(err)
						}
					}
				})
				d := draft(name, w.teamA, preset...)
				var err error
				switch op {
				case "create":
					_, err = w.svc.Create(ctx, w.ownerA, meta(w.ownerA), "tt02", d)
				case "update":
					d.Description = "changed under " + f.name
					err = w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "tt02", id, d)
				case "deactivate":
					err = w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", id, name, d.Key)
				}
				up.set(func(h *hooked) { h.beforeWrite = nil })

				// A deactivation answered with a garbled body was carried out: DELETE's answer
				// has no body to read.
				carriedOut := op == "deactivate" && f.name == "malformed body"
				if carriedOut {
					if err != nil {
						t.Errorf("deactivate: %v", err)
					}
				} else {
					if err == nil {
						t.Fatalf("%s succeeded under %s", op, f.name)
					}
					if k := problem.KindOf(err); k != problem.KindUpstream && k != problem.KindInvalid {
						t.Errorf("kind %v (%v), want upstream or invalid", k, err)
					}
					pe, _ := problem.As(err)
					if pe == nil || !strings.Contains(pe.Message, "TT02") {
						t.Errorf("message of %v does not name the environment", err)
					}
					if after := w.rows(t, "tt02"); !reflect.DeepEqual(before, after) {
						t.Errorf("mirror changed by a failed %s", op)
					}
					if in := w.intent(t, "tt02", d.Key); in.State == store.IntentDone {
						t.Errorf("intent done after a failure")
					}
				}

				if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{}); err != nil {
					t.Fatal(err)
				}
				close(gate)
				up.set(func(h *hooked) { h.listGate = nil })
				w.syncOK(t, "tt02")

				upNamed := w.upstreamNamed(t, "tt02", name)
				rows := w.rowsNamed(t, "tt02", name)
				if len(upNamed) > 1 || len(rows) != len(upNamed) {
					t.Fatalf("%d clients upstream and %d mirror rows named %q", len(upNamed), len(rows), name)
				}
				switch op {
				case "create":
					if len(rows) == 1 && rows[0].TeamID != w.teamA {
						t.Errorf("created client not adopted by team A: %+v", rows[0])
					}
					if f.name == "malformed body" && len(rows) != 1 {
						t.Errorf("a create answered with a garbled body was carried out, but no client was found")
					}
				case "update", "deactivate":
					u := w.upstream(t, "tt02", id)
					row := w.row(t, "tt02", id)
					if row.Description != u.Description || row.Active != u.Active || row.Drift != "" || row.TeamID != w.teamA {
						t.Errorf("mirror %q active %v drift %q team %d; upstream %q active %v",
							row.Description, row.Active, row.Drift, row.TeamID, u.Description, u.Active)
					}
				}
			})
		}
	}

	t.Run("refusal", func(t *testing.T) {
		// 100 characters pass the portal's check; 300 bytes are more than Digdir takes.
		d := draft(strings.Repeat("€", clients.MaxNameLength), w.teamA, preset...)
		before := w.rows(t, "tt02")
		_, err := w.svc.Create(ctx, w.ownerA, meta(w.ownerA), "tt02", d)
		wantField(t, err, "name")
		if pe, _ := problem.As(err); !strings.Contains(pe.Message, "TT02") || !strings.Contains(pe.Message, "Nothing was changed") {
			t.Errorf("message %q", pe.Message)
		}
		if in := w.intent(t, "tt02", d.Key); in.State != store.IntentFailed {
			t.Errorf("intent %s after a refusal, want failed", in.State)
		}
		if after := w.rows(t, "tt02"); !reflect.DeepEqual(before, after) {
			t.Errorf("mirror changed by a refused create")
		}
		if n := len(w.upstreamNamed(t, "tt02", d.Name)); n != 0 {
			t.Errorf("%d clients upstream after a refusal", n)
		}
		// The same form again is refused without going upstream.
		_, err = w.svc.Create(ctx, w.ownerA, meta(w.ownerA), "tt02", d)
		wantKind(t, err, problem.KindConflict)
	})
}

func TestValidation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	tests := []struct {
		name  string
		p     *auth.Principal
		edit  func(d *clients.Draft)
		field string
	}{
		{"missing name", w.ownerA, func(d *clients.Draft) { d.Name = "  " }, "name"},
		{"name on two lines", w.ownerA, func(d *clients.Draft) { d.Name = "a\nb" }, "name"},
		{"name too long", w.ownerA, func(d *clients.Draft) { d.Name = strings.Repeat("n", clients.MaxNameLength+1) }, "name"},
		{"missing description", w.ownerA, func(d *clients.Draft) { d.Description = "" }, "description"},
		{"description too long", w.ownerA, func(d *clients.Draft) {
			d.Description = strings.Repeat("d", clients.MaxDescriptionLength+1)
		}, "description"},
		{"no team", w.ownerA, func(d *clients.Draft) { d.TeamID = 0 }, "team"},
		{"someone else's team", w.ownerA, func(d *clients.Draft) { d.TeamID = w.teamB }, "team"},
		{"unknown team, admin", w.admin, func(d *clients.Draft) { d.TeamID = 9999 }, "team"},
		{"scope only requested", w.ownerA, func(d *clients.Draft) { d.Scopes = []string{readScope, krrScope} }, "scopes"},
		{"scope not granted", w.ownerA, func(d *clients.Draft) { d.Scopes = []string{"skatteetaten:inntekt"} }, "scopes"},
		{"scope for ID-porten only", w.ownerA, func(d *clients.Draft) { d.Scopes = []string{"altinn:portal/enduser"} }, "scopes"},
		{"unknown scope", w.ownerA, func(d *clients.Draft) { d.Scopes = []string{"no:such.scope"} }, "scopes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := draft("Valid name", w.teamA, preset...)
			tt.edit(&d)
			_, err := w.svc.Create(ctx, tt.p, meta(tt.p), "tt02", d)
			wantField(t, err, tt.field)
			if pe, _ := problem.As(err); len(pe.Fields) != 1 {
				t.Errorf("fields %v, want only %s", pe.Fields, tt.field)
			}
		})
	}
	t.Run("every field at once", func(t *testing.T) {
		_, err := w.svc.Create(ctx, w.ownerA, meta(w.ownerA), "tt02", clients.Draft{Scopes: []string{krrScope}, Key: clients.NewKey()})
		pe := wantKind(t, err, problem.KindInvalid)
		for _, f := range []string{"name", "description", "team", "scopes"} {
			if pe.Fields[f] == "" {
				t.Errorf("no message for %s: %v", f, pe.Fields)
			}
		}
	})
	t.Run("expired form key", func(t *testing.T) {
		d := draft("Valid name", w.teamA, preset...)
		d.Key = "short"
		_, err := w.svc.Create(ctx, w.ownerA, meta(w.ownerA), "tt02", d)
		wantKind(t, err, problem.KindInvalid)
	})
	if n := len(w.upstreamNamed(t, "tt02", "Valid name")); n != 0 {
		t.Errorf("%d clients created by invalid forms", n)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()

	t.Run("GET-modify-PUT", func(t *testing.T) {
		id := w.create(t, w.ownerA, "tt02", draft("Editable", w.teamA, preset...))
		form, err := w.svc.EditForm(ctx, w.memberA, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		d := form.Draft
		if d.Name != "Editable" || d.TeamID != w.teamA || d.Version == "" || !slices.Equal(d.Scopes, preset) {
			t.Fatalf("edit form draft %+v", d)
		}
		d.Name, d.Description, d.Scopes = "Edited", "New words", []string{readScope, brokerRead}
		plan, err := w.svc.PlanUpdate(ctx, w.memberA, "tt02", id, d)
		if err != nil {
			t.Fatal(err)
		}
		var fields []string
		for _, c := range plan.Changes {
			fields = append(fields, c.Field)
		}
		if !slices.Equal(fields, []string{"name", "description", "scopes"}) || plan.Changes[1].Before != "Integration Editable" || plan.Changes[1].After != "New words" {
			t.Errorf("plan changes %+v", plan.Changes)
		}
		if !slices.Equal(plan.Removed, []string{writeScope}) || !slices.Equal(plan.Added, []string{brokerRead}) || plan.NeedsName {
			t.Errorf("plan removed %v added %v needs name %v", plan.Removed, plan.Added, plan.NeedsName)
		}
		if u := w.upstream(t, "tt02", id); u.ClientName != "Editable" {
			t.Errorf("planning changed upstream: %q", u.ClientName)
		}

		if err := w.svc.Update(ctx, w.memberA, meta(w.memberA), "tt02", id, d); err != nil {
			t.Fatal(err)
		}
		// The same form sent again (a double click) succeeds as the first did; its version is
		// now stale, but it is the same change, not a conflicting one.
		if err := w.svc.Update(ctx, w.memberA, meta(w.memberA), "tt02", id, d); err != nil {
			t.Errorf("repeated edit: %v", err)
		}
		u := w.upstream(t, "tt02", id)
		if u.ClientName != "Edited" || u.Description != "New words" || !slices.Equal(slices.Sorted(slices.Values(u.Scopes)), []string{brokerRead, readScope}) {
			t.Errorf("upstream after update: %q %q %v", u.ClientName, u.Description, u.Scopes)
		}
		if u.AccessTokenLifetime == 0 || u.IntegrationType != "maskinporten" {
			t.Errorf("update lost fields: lifetime %d, type %q", u.AccessTokenLifetime, u.IntegrationType)
		}
		row := w.row(t, "tt02", id)
		if row.Name != "Edited" || row.Description != "New words" || !slices.Equal(row.Scopes, []string{brokerRead, readScope}) {
			t.Errorf("mirror after update: %q %q %v", row.Name, row.Description, row.Scopes)
		}
		for _, s := range w.sent.all() {
			if s.Method != http.MethodPut {
				continue
			}
			for _, f := range []string{"created", "last_updated", "client_secret", "client_type", "token_reference"} {
				if _, ok := s.Body[f]; ok {
					t.Errorf("PUT carries %s", f)
				}
			}
			for _, f := range []string{"access_token_lifetime", "authorization_lifetime", "refresh_token_lifetime"} {
				if v, ok := s.Body[f]; ok && v == float64(0) {
					t.Errorf("PUT carries %s: 0", f)
				}
			}
		}
		ev := w.event(t, "tt02", id, "integration.update", audit.Success)
		if ev.Env != "tt02" || ev.ActorID != w.memberA.UserID || !strings.Contains(string(ev.Details), "before") {
			t.Errorf("update event %+v", ev)
		}
	})

	t.Run("stale version", func(t *testing.T) {
		id := w.create(t, w.ownerA, "tt02", draft("Stale", w.teamA, preset...))
		form, err := w.svc.EditForm(ctx, w.ownerA, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := w.mp["tt02"].GetClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		cur.Description = "changed in Digdir's portal meanwhile"
		if _, err := w.mp["tt02"].UpdateClient(ctx, id, *cur); err != nil {
			t.Fatal(err)
		}
		d := form.Draft
		d.Name = "Stale edit"
		wantKind(t, w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "tt02", id, d), problem.KindConflict)
		if u := w.upstream(t, "tt02", id); u.ClientName != "Stale" {
			t.Errorf("stale edit reached upstream: %q", u.ClientName)
		}
	})

	t.Run("nothing to change", func(t *testing.T) {
		id := w.create(t, w.ownerA, "tt02", draft("Unchanged", w.teamA, preset...))
		form, err := w.svc.EditForm(ctx, w.ownerA, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "tt02", id, form.Draft), problem.KindInvalid)
	})

	t.Run("invalid edit", func(t *testing.T) {
		id := w.create(t, w.ownerA, "tt02", draft("Invalid edit", w.teamA, preset...))
		form, err := w.svc.EditForm(ctx, w.ownerA, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		d := form.Draft
		d.Scopes = append(d.Scopes, krrScope)
		wantField(t, w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "tt02", id, d), "scopes")
	})

	t.Run("production scope removal needs the name", func(t *testing.T) {
		id := w.create(t, w.ownerA, "prod", draft("Prod reader", w.teamA, preset...))
		form, err := w.svc.EditForm(ctx, w.ownerA, "prod", id)
		if err != nil {
			t.Fatal(err)
		}
		d := form.Draft
		d.Scopes = []string{readScope}
		plan, err := w.svc.PlanUpdate(ctx, w.ownerA, "prod", id, d)
		if err != nil {
			t.Fatal(err)
		}
		if !plan.NeedsName || plan.Name != "Prod reader" {
			t.Errorf("plan needs name %v (%q), want true", plan.NeedsName, plan.Name)
		}
		for _, typed := range []string{"", "prod reader", "Prod"} {
			d.ConfirmName = typed
			wantField(t, w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "prod", id, d), "confirm_name")
		}
		if u := w.upstream(t, "prod", id); len(u.Scopes) != 2 {
			t.Fatalf("scopes removed without confirmation: %v", u.Scopes)
		}
		d.ConfirmName = "Prod reader"
		if err := w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "prod", id, d); err != nil {
			t.Fatal(err)
		}
		if u := w.upstream(t, "prod", id); !slices.Equal(u.Scopes, []string{readScope}) {
			t.Errorf("upstream scopes %v, want [%s]", u.Scopes, readScope)
		}
		// Adding a scope in production needs no confirmation.
		form, err = w.svc.EditForm(ctx, w.ownerA, "prod", id)
		if err != nil {
			t.Fatal(err)
		}
		d = form.Draft
		d.Scopes = append(d.Scopes, writeScope)
		if err := w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "prod", id, d); err != nil {
			t.Errorf("adding a scope in prod: %v", err)
		}
	})

	t.Run("team only stays local", func(t *testing.T) {
		id := w.create(t, w.admin, "tt02", draft("Moving team", w.teamA, preset...))
		lastUpdated := w.upstream(t, "tt02", id).LastUpdated
		puts := len(w.sent.all())
		form, err := w.svc.EditForm(ctx, w.admin, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		d := form.Draft
		d.TeamID = w.teamB
		plan, err := w.svc.PlanUpdate(ctx, w.admin, "tt02", id, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Changes) != 1 || plan.Changes[0].Before != "Team A" || plan.Changes[0].After != "Team B" {
			t.Errorf("plan %+v", plan.Changes)
		}
		if err := w.svc.Update(ctx, w.admin, meta(w.admin), "tt02", id, d); err != nil {
			t.Fatal(err)
		}
		if n := len(w.sent.all()); n != puts {
			t.Errorf("a team change sent %d writes upstream", n-puts)
		}
		if u := w.upstream(t, "tt02", id); !u.LastUpdated.Time.Equal(lastUpdated.Time) {
			t.Errorf("upstream changed by a team change")
		}
		if row := w.row(t, "tt02", id); row.TeamID != w.teamB {
			t.Errorf("mirror team %d, want team B", row.TeamID)
		}
		ev := w.event(t, "tt02", id, "integration.assign", audit.Success)
		if ev.TeamID != w.teamB {
			t.Errorf("assign event team %d", ev.TeamID)
		}
		// Team A's owner lost it.
		_, err = w.svc.Get(ctx, w.ownerA, "tt02", id)
		wantKind(t, err, problem.KindNotFound)
		// A team owner cannot hand an integration to a team they are not on.
		id2 := w.create(t, w.ownerA, "tt02", draft("Not yours to give", w.teamA, preset...))
		form, err = w.svc.EditForm(ctx, w.ownerA, "tt02", id2)
		if err != nil {
			t.Fatal(err)
		}
		d = form.Draft
		d.TeamID = w.teamB
		wantField(t, w.svc.Update(ctx, w.ownerA, meta(w.ownerA), "tt02", id2, d), "team")
	})

	t.Run("no drift after portal changes", func(t *testing.T) {
		w.syncOK(t, "tt02")
		for id, row := range w.rows(t, "tt02") {
			// "Stale" was changed outside the portal by its test; everything else only through it.
			if outside := row.Name == "Stale"; (row.Drift != "") != outside {
				t.Errorf("%s (%s): drift %q, want drift %v", id, row.Name, row.Drift, outside)
			}
		}
	})
}

func TestDeactivate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.create(t, w.ownerA, "tt02", draft("To retire", w.teamA, preset...))

	for _, typed := range []string{"", "to retire", "To retir"} {
		err := w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", id, typed, clients.NewKey())
		wantField(t, err, "confirm_name")
	}
	if u := w.upstream(t, "tt02", id); !u.Active {
		t.Fatal("deactivated without the name")
	}
	key := clients.NewKey()
	if err := w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", id, " To retire ", key); err != nil {
		t.Fatal(err)
	}
	if u := w.upstream(t, "tt02", id); u.Active {
		t.Error("still active upstream")
	}
	if row := w.row(t, "tt02", id); row.Active {
		t.Error("still active in the mirror")
	}
	w.event(t, "tt02", id, "integration.deactivate", audit.Success)
	// A double submit of the same form succeeds as the first did; a new form is told why not.
	if err := w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "To retire", key); err != nil {
		t.Errorf("repeated deactivation: %v", err)
	}
	wantKind(t, w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "To retire", clients.NewKey()), problem.KindConflict)

	find := func(status string) bool {
		t.Helper()
		pg, err := w.svc.List(ctx, w.ownerA, "tt02", clients.Query{Text: "to retire", Status: status})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(pg.Items, func(s clients.Summary) bool { return s.ClientID == id })
	}
	w.syncOK(t, "tt02")
	for status, want := range map[string]bool{"": false, clients.StatusActive: false, clients.StatusInactive: true, clients.StatusAll: true} {
		if got := find(status); got != want {
			t.Errorf("status %q finds it: %v, want %v", status, got, want)
		}
	}
	if row := w.row(t, "tt02", id); row.Active || row.Drift != "" {
		t.Errorf("after sync: active %v, drift %q", row.Active, row.Drift)
	}
	det, err := w.svc.Get(ctx, w.ownerA, "tt02", id)
	if err != nil || det.Summary.Active {
		t.Errorf("detail of an inactive integration: %v, active %v", err, det.Summary.Active)
	}

	// Digdir keeps a deactivated client as it was; its owning team can still change.
	form, err := w.svc.EditForm(ctx, w.admin, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	d := form.Draft
	d.Name = "Renamed after retirement"
	wantKind(t, w.svc.Update(ctx, w.admin, meta(w.admin), "tt02", id, d), problem.KindInvalid)
	d = form.Draft
	d.TeamID = w.teamB
	if err := w.svc.Update(ctx, w.admin, meta(w.admin), "tt02", id, d); err != nil {
		t.Fatalf("team change of an inactive integration: %v", err)
	}
	if row := w.row(t, "tt02", id); row.TeamID != w.teamB {
		t.Errorf("team %d, want %d", row.TeamID, w.teamB)
	}
}

func TestDrift(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.create(t, w.ownerA, "tt02", draft("Drifting", w.teamA, preset...))
	if res := w.syncOK(t, "tt02"); res.Drifted != 0 {
		t.Errorf("a client created through the portal drifted on the first sync")
	}

	cur, err := w.mp["tt02"].GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cur.Description = "Changed in Digdir's own portal"
	cur.Scopes = []string{readScope}
	if _, err := w.mp["tt02"].UpdateClient(ctx, id, *cur); err != nil {
		t.Fatal(err)
	}
	if res := w.syncOK(t, "tt02"); res.Drifted != 1 {
		t.Errorf("sync found %d drifted, want 1", res.Drifted)
	}
	pg, err := w.svc.List(ctx, w.memberA, "tt02", clients.Query{Text: "drifting"})
	if err != nil || len(pg.Items) != 1 || !pg.Items[0].Drifted {
		t.Fatalf("list: %v, %+v: want one drifted", err, pg.Items)
	}
	det, err := w.svc.Get(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]clients.FieldChange{}
	for _, c := range det.Drift {
		changes[c.Field] = c
	}
	if c := changes["description"]; c.Before != "Integration Drifting" || c.After != "Changed in Digdir's own portal" {
		t.Errorf("description drift %+v", c)
	}
	if _, ok := changes["scopes"]; !ok {
		t.Errorf("no scopes drift in %+v", det.Drift)
	}
	if _, ok := changes["last_updated"]; ok {
		t.Errorf("last_updated reported as drift")
	}
	if det.DriftSince.IsZero() {
		t.Error("no drift time")
	}
	ev := w.event(t, "tt02", id, "integration.changed_outside", audit.Success)
	if ev.TeamID != w.teamA || !strings.Contains(string(ev.Details), "Changed in Digdir") {
		t.Errorf("drift event %+v", ev)
	}
	// A second sync reports nothing new.
	if res := w.syncOK(t, "tt02"); res.Drifted != 0 {
		t.Errorf("the same drift reported again")
	}
	if n := len(slices.DeleteFunc(w.events(t, "tt02", id), func(e audit.Event) bool { return e.Action != "integration.changed_outside" })); n != 1 {
		t.Errorf("%d drift events, want 1", n)
	}

	wantKind(t, w.svc.Acknowledge(ctx, w.viewerA, meta(w.viewerA), "tt02", id), problem.KindForbidden)
	if err := w.svc.Acknowledge(ctx, w.memberA, meta(w.memberA), "tt02", id); err != nil {
		t.Fatal(err)
	}
	if row := w.row(t, "tt02", id); row.Drift != "" {
		t.Errorf("drift after acknowledge: %s", row.Drift)
	}
	w.event(t, "tt02", id, "integration.acknowledge_drift", audit.Success)
	if res := w.syncOK(t, "tt02"); res.Drifted != 0 {
		t.Errorf("acknowledged drift reported again")
	}

	// Keys added outside the portal are drift too.
	if _, err := w.mp["tt02"].ReplaceJWKS(ctx, id, []maskinporten.JWK{rsaJWK(t, "outside-1", time.Time{})}); err != nil {
		t.Fatal(err)
	}
	if res := w.syncOK(t, "tt02"); res.Drifted != 1 {
		t.Errorf("a key added outside: %d drifted, want 1", res.Drifted)
	}
	det, err = w.svc.Get(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(det.Drift) != 1 || det.Drift[0].Field != "keys" || !strings.Contains(det.Drift[0].After, "outside-1") {
		t.Errorf("key drift %+v", det.Drift)
	}
	if len(det.Keys) != 1 || det.Keys[0].Kid != "outside-1" || det.Keys[0].Bits != 2048 || det.Keys[0].FirstSeen.IsZero() {
		t.Errorf("keys %+v", det.Keys)
	}
	if err := w.svc.Acknowledge(ctx, w.memberA, meta(w.memberA), "tt02", id); err != nil {
		t.Fatal(err)
	}

	// A change through the portal is not drift.
	form, err := w.svc.EditForm(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	d := form.Draft
	d.Description = "Changed through the portal"
	if err := w.svc.Update(ctx, w.memberA, meta(w.memberA), "tt02", id, d); err != nil {
		t.Fatal(err)
	}
	if res := w.syncOK(t, "tt02"); res.Drifted != 0 {
		t.Errorf("a portal change was reported as drift")
	}
	if row := w.row(t, "tt02", id); row.Drift != "" || row.Description != "Changed through the portal" {
		t.Errorf("after a portal change: %q, drift %s", row.Description, row.Drift)
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	const ok = problem.Kind(-1)
	tests := []struct {
		role                                      string
		p                                         *auth.Principal
		sees                                      bool
		get, edit, create, update, copy, deactive problem.Kind
	}{
		{"admin", w.admin, true, ok, ok, ok, ok, ok, ok},
		{"owner", w.ownerA, true, ok, ok, ok, ok, ok, ok},
		{"member", w.memberA, true, ok, ok, ok, ok, ok, ok},
		{"viewer", w.viewerA, true, ok, problem.KindForbidden, problem.KindForbidden, problem.KindForbidden, problem.KindForbidden, problem.KindForbidden},
		// Creating for a team one is not on is a form error on the team field.
		{"other team", w.memberB, false, problem.KindNotFound, problem.KindNotFound, problem.KindInvalid, problem.KindNotFound, problem.KindNotFound, problem.KindNotFound},
	}
	check := func(t *testing.T, op string, err error, want problem.Kind) {
		t.Helper()
		switch {
		case want == ok && err != nil:
			t.Errorf("%s: %v, want success", op, err)
		case want != ok && problem.KindOf(err) != want:
			t.Errorf("%s: %v (kind %v), want %v", op, err, problem.KindOf(err), want)
		}
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			name := "Owned by A, tried by " + tt.role
			id := w.create(t, w.admin, "tt02", draft(name, w.teamA, preset...))

			pg, err := w.svc.List(ctx, tt.p, "tt02", clients.Query{Status: clients.StatusAll})
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.ContainsFunc(pg.Items, func(s clients.Summary) bool { return s.ClientID == id }); got != tt.sees {
				t.Errorf("list shows it: %v, want %v", got, tt.sees)
			}
			_, err = w.svc.Get(ctx, tt.p, "tt02", id)
			check(t, "get", err, tt.get)
			_, err = w.svc.EditForm(ctx, tt.p, "tt02", id)
			check(t, "edit form", err, tt.edit)
			_, err = w.svc.Create(ctx, tt.p, meta(tt.p), "tt02", draft("Created by "+tt.role, w.teamA, readScope))
			check(t, "create for team A", err, tt.create)
			d := draft(name, w.teamA, preset...)
			d.Description = "Changed by " + tt.role
			check(t, "update", w.svc.Update(ctx, tt.p, meta(tt.p), "tt02", id, d), tt.update)
			_, err = w.svc.Copy(ctx, tt.p, meta(tt.p), "tt02", id, clients.NewKey())
			check(t, "copy", err, tt.copy)
			check(t, "deactivate", w.svc.Deactivate(ctx, tt.p, meta(tt.p), "tt02", id, name, clients.NewKey()), tt.deactive)

			u := w.upstream(t, "tt02", id)
			if tt.update == ok && (u.Description != d.Description || u.Active) {
				t.Errorf("upstream after update and deactivate: %q, active %v", u.Description, u.Active)
			}
			if tt.update != ok && (u.Description != "Integration "+name || !u.Active) {
				t.Errorf("refused changes reached upstream: %q, active %v", u.Description, u.Active)
			}
			if copies := len(w.upstreamNamed(t, "prod", name)); copies != map[bool]int{true: 1, false: 0}[tt.copy == ok] {
				t.Errorf("%d copies in prod", copies)
			}
		})
	}

	t.Run("unowned only for admins", func(t *testing.T) {
		w.syncOK(t, "tt02") // the admin client is upstream with no team
		pg, err := w.svc.List(ctx, w.admin, "tt02", clients.Query{Unowned: true})
		if err != nil {
			t.Fatal(err)
		}
		if pg.Total < 1 || slices.ContainsFunc(pg.Items, func(s clients.Summary) bool { return s.TeamID != 0 }) {
			t.Fatalf("admin's unowned list: %+v", pg.Items)
		}
		unowned := pg.Items[0].ClientID
		for _, p := range []*auth.Principal{w.ownerA, w.memberA, w.viewerA, w.memberB} {
			for _, q := range []clients.Query{{Unowned: true}, {Status: clients.StatusAll}, {Text: unowned}} {
				pg, err := w.svc.List(ctx, p, "tt02", q)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range pg.Items {
					if s.TeamID == 0 || p.TeamRoleOf(s.TeamID) == "" {
						t.Errorf("%s sees %s (team %d) with %+v", p.Email, s.ClientID, s.TeamID, q)
					}
				}
			}
			_, err := w.svc.Get(ctx, p, "tt02", unowned)
			wantKind(t, err, problem.KindNotFound)
		}
		if _, err := w.svc.Get(ctx, w.admin, "tt02", unowned); err != nil {
			t.Errorf("admin get unowned: %v", err)
		}
	})

	t.Run("form", func(t *testing.T) {
		_, err := w.svc.NewForm(ctx, w.viewerA, "tt02")
		wantKind(t, err, problem.KindForbidden)
		f, err := w.svc.NewForm(ctx, w.admin, "tt02")
		if err != nil || len(f.Teams) != 2 {
			t.Errorf("admin form: %v, teams %+v", err, f.Teams)
		}
		_, err = w.svc.NewForm(ctx, w.admin, "nowhere")
		wantKind(t, err, problem.KindNotFound)
	})
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	alpha := w.create(t, w.ownerA, "tt02", clients.Draft{Name: "Alpha reader", Description: "Reads instances nightly",
		TeamID: w.teamA, Scopes: []string{readScope}, Key: clients.NewKey()})
	beta := w.create(t, w.memberB, "tt02", clients.Draft{Name: "beta writer", Description: "Uploads files to the broker",
		TeamID: w.teamB, Scopes: []string{writeScope, brokerRead}, Key: clients.NewKey()})
	gamma := w.create(t, w.ownerA, "tt02", clients.Draft{Name: "Gamma", Description: "Retired",
		TeamID: w.teamA, Scopes: []string{brokerWrite}, Key: clients.NewKey()})
	if err := w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", gamma, "Gamma", clients.NewKey()); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	if _, err := w.mp["tt02"].ReplaceJWKS(ctx, alpha, []maskinporten.JWK{rsaJWK(t, "alpha-1", soon)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.mp["tt02"].ReplaceJWKS(ctx, beta, []maskinporten.JWK{rsaJWK(t, "beta-1", time.Time{})}); err != nil {
		t.Fatal(err)
	}
	w.syncOK(t, "tt02")
	a, _ := w.sim.AdminCredentials("tt02")
	admin := a.ClientID

	if row := w.row(t, "tt02", alpha); row.KeyCount != 1 || !row.NextKeyExpiry.Equal(soon) {
		t.Errorf("alpha keys %d expiring %v, want 1 at %v", row.KeyCount, row.NextKeyExpiry, soon)
	}

	tests := []struct {
		name string
		p    *auth.Principal
		q    clients.Query
		want []string // in order
	}{
		{"default: active, by name", w.admin, clients.Query{}, []string{alpha, beta, admin}},
		{"search name", w.admin, clients.Query{Text: "ALPHA"}, []string{alpha}},
		{"search client id", w.admin, clients.Query{Text: beta[:13]}, []string{beta}},
		{"search description", w.admin, clients.Query{Text: "files to the"}, []string{beta}},
		{"search scope", w.admin, clients.Query{Text: "broker.read"}, []string{beta}},
		{"search nothing", w.admin, clients.Query{Text: "zzz"}, nil},
		{"team", w.admin, clients.Query{TeamID: w.teamA, Status: clients.StatusAll}, []string{alpha, gamma}},
		{"inactive", w.admin, clients.Query{Status: clients.StatusInactive}, []string{gamma}},
		{"all", w.admin, clients.Query{Status: clients.StatusAll}, []string{alpha, beta, gamma, admin}},
		{"scope exact", w.admin, clients.Query{Scope: writeScope}, []string{beta}},
		{"scope prefix is not a scope", w.admin, clients.Query{Scope: "altinn:broker"}, nil},
		{"no keys", w.admin, clients.Query{NoKeys: true}, []string{admin}},
		{"expiring", w.admin, clients.Query{Expiring: true}, []string{alpha}},
		{"unowned", w.admin, clients.Query{Unowned: true}, []string{admin}},
		{"sort by name, descending", w.admin, clients.Query{Desc: true}, []string{admin, beta, alpha}},
		{"sort by team", w.admin, clients.Query{Sort: store.SortTeam}, []string{alpha, beta, admin}},
		{"sort by expiry", w.admin, clients.Query{Sort: store.SortKeyExpiry}, []string{alpha, beta, admin}},
		{"team member sees own team", w.ownerA, clients.Query{Status: clients.StatusAll}, []string{alpha, gamma}},
		{"team member cannot filter to another team", w.ownerA, clients.Query{TeamID: w.teamB}, nil},
		{"viewer sees own team", w.viewerA, clients.Query{}, []string{alpha}},
		{"other team", w.memberB, clients.Query{Text: "a"}, []string{beta}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pg, err := w.svc.List(ctx, tt.p, "tt02", tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range pg.Items {
				got = append(got, s.ClientID)
			}
			if !slices.Equal(got, tt.want) || pg.Total != len(tt.want) {
				t.Errorf("got %v (total %d), want %v", names(w, got), pg.Total, names(w, tt.want))
			}
		})
	}

	t.Run("summary", func(t *testing.T) {
		pg, err := w.svc.List(ctx, w.ownerA, "tt02", clients.Query{Text: "alpha"})
		if err != nil || len(pg.Items) != 1 {
			t.Fatalf("%v %+v", err, pg.Items)
		}
		s := pg.Items[0]
		// The key was posted outside the portal, which the mirror reports as drift.
		if s.Team != "Team A" || s.KeyCount != 1 || !s.NextKeyExpiry.Equal(soon) || !s.Active || !s.Drifted || !slices.Equal(s.Scopes, []string{readScope}) {
			t.Errorf("summary %+v", s)
		}
		if pg.Sync.Never || !pg.Sync.OK || pg.Sync.FinishedAt.IsZero() || !pg.CanAdd || !pg.CanSync {
			t.Errorf("page %+v", pg)
		}
		if pg.Query.Status != clients.StatusActive || pg.Query.Page != 1 {
			t.Errorf("query echoed as %+v", pg.Query)
		}
		pg, err = w.svc.List(ctx, w.viewerA, "tt02", clients.Query{})
		if err != nil || pg.CanAdd {
			t.Errorf("viewer may add: %v %v", err, pg.CanAdd)
		}
	})

	t.Run("paging", func(t *testing.T) {
		now := time.Now()
		err := w.db.Tx(ctx, func(tx *sql.Tx) error {
			for i := range 55 {
				id := "paged-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
				if err := store.PutIntegration(ctx, tx, store.Integration{Env: "tt02", ClientID: id, Name: "Paged " + id,
					Description: "filler", Active: true, TeamID: w.teamA, Raw: "{}", JWKS: `{"keys":[]}`,
					FirstSeen: now, LastChange: now, SyncedAt: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			page, items, first int
		}{{1, 50, 0}, {2, 5, 50}, {3, 0, -1}, {0, 50, 0}} {
			pg, err := w.svc.List(ctx, w.ownerA, "tt02", clients.Query{Text: "paged-", Sort: store.SortClientID, Page: tt.page})
			if err != nil {
				t.Fatal(err)
			}
			if pg.Total != 55 || pg.Pages != 2 || len(pg.Items) != tt.items {
				t.Errorf("page %d: total %d, pages %d, %d items; want 55, 2, %d", tt.page, pg.Total, pg.Pages, len(pg.Items), tt.items)
			}
			if tt.first >= 0 && len(pg.Items) > 0 {
				want := "paged-" + string(rune('a'+tt.first/26)) + string(rune('a'+tt.first%26))
				if pg.Items[0].ClientID != want {
					t.Errorf("page %d starts with %s, want %s", tt.page, pg.Items[0].ClientID, want)
				}
			}
		}
	})
}

func names(w *world, ids []string) []string {
	rows := map[string]string{}
	for _, env := range []string{"tt02"} {
		pg, _ := w.svc.List(context.Background(), w.admin, env, clients.Query{Status: clients.StatusAll})
		for _, s := range pg.Items {
			rows[s.ClientID] = s.Name
		}
	}
	var out []string
	for _, id := range ids {
		out = append(out, rows[id])
	}
	return out
}

func TestCopyToProduction(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: &sim.SeedFile{
		Envs:   []string{"tt02"},
		Scopes: []sim.SeedScope{{Name: tt02Only, Description: "Only in TT02", OwnerOrgNo: "991825827", AllowedIntegrationTypes: []string{"maskinporten"}}},
		Grants: []sim.SeedGrant{{Scope: tt02Only, ConsumerOrgNo: sim.DefaultOrgNo, State: "APPROVED"}},
	}})
	ctx := t.Context()

	t.Run("preset", func(t *testing.T) {
		id := w.create(t, w.memberA, "tt02", draft("Copied", w.teamA, preset...))
		if _, err := w.mp["tt02"].ReplaceJWKS(ctx, id, []maskinporten.JWK{rsaJWK(t, "test-only", time.Time{})}); err != nil {
			t.Fatal(err)
		}
		plan, err := w.svc.PlanCopy(ctx, w.memberA, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Missing) != 0 || !slices.Equal(plan.Draft.Scopes, preset) || plan.Team != "Team A" || plan.Target.Name != "prod" {
			t.Errorf("plan %+v", plan)
		}
		key := clients.NewKey()
		prodID, err := w.svc.Copy(ctx, w.memberA, meta(w.memberA), "tt02", id, key)
		if err != nil {
			t.Fatal(err)
		}
		u := w.upstream(t, "prod", prodID)
		if u.ClientName != "Copied" || u.Description != "Integration Copied" || !slices.Equal(slices.Sorted(slices.Values(u.Scopes)), preset) {
			t.Errorf("prod client %q %q %v", u.ClientName, u.Description, u.Scopes)
		}
		set, err := w.mp["prod"].GetJWKS(ctx, prodID)
		if err != nil || len(set.Keys) != 0 {
			t.Errorf("prod client keys: %v, %+v; keys are never copied", err, set)
		}
		row := w.row(t, "prod", prodID)
		if row.TeamID != w.teamA || row.KeyCount != 0 {
			t.Errorf("prod mirror row team %d, %d keys", row.TeamID, row.KeyCount)
		}
		ev := w.event(t, "prod", prodID, "integration.create", audit.Success)
		if !strings.Contains(string(ev.Details), id) {
			t.Errorf("copy event %s does not name the source", ev.Details)
		}
		again, err := w.svc.Copy(ctx, w.memberA, meta(w.memberA), "tt02", id, key)
		if err != nil || again != prodID {
			t.Errorf("second copy with the same key: %s, %v; want %s", again, err, prodID)
		}
		if n := len(w.upstreamNamed(t, "prod", "Copied")); n != 1 {
			t.Errorf("%d prod clients, want 1", n)
		}
	})

	t.Run("scope missing in production", func(t *testing.T) {
		id := w.create(t, w.memberA, "tt02", draft("Needs a grant", w.teamA, readScope, tt02Only))
		plan, err := w.svc.PlanCopy(ctx, w.memberA, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(plan.Missing, []string{tt02Only}) || !slices.Equal(plan.Draft.Scopes, []string{readScope}) {
			t.Errorf("plan missing %v, scopes %v", plan.Missing, plan.Draft.Scopes)
		}
		prodID, err := w.svc.Copy(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.NewKey())
		if err != nil {
			t.Fatal(err)
		}
		if u := w.upstream(t, "prod", prodID); !slices.Equal(u.Scopes, []string{readScope}) {
			t.Errorf("prod scopes %v", u.Scopes)
		}
	})

	t.Run("only from test", func(t *testing.T) {
		id := w.create(t, w.memberA, "prod", draft("Already prod", w.teamA, readScope))
		_, err := w.svc.PlanCopy(ctx, w.memberA, "prod", id)
		wantKind(t, err, problem.KindNotFound)
	})
}

func TestSyncRecordsFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	w.syncOK(t, "tt02")
	if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	_, err := w.svc.Sync(ctx, "tt02")
	pe := wantKind(t, err, problem.KindUpstream)
	if !strings.Contains(pe.Message, "TT02") {
		t.Errorf("message %q", pe.Message)
	}
	st, err := w.db.SyncStateOf(ctx, "tt02")
	if err != nil {
		t.Fatal(err)
	}
	if st.OK || st.LastOKAt.IsZero() || !strings.Contains(st.Message, "TT02") {
		t.Errorf("sync state %+v: want a failure that keeps the last good sync", st)
	}
	// The list still answers from the mirror and says the sync failed.
	pg, err := w.svc.List(ctx, w.admin, "tt02", clients.Query{})
	if err != nil || pg.Sync.OK || pg.Total == 0 {
		t.Errorf("list during an outage: %v, sync %+v, %d rows", err, pg.Sync, pg.Total)
	}

	// A sync cut short when the service stops still records its failure.
	if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	defer close(gate)
	entered := make(chan struct{})
	w.up["tt02"].set(func(h *hooked) { h.listGate, h.listEntered = gate, entered })
	done := make(chan error, 1)
	go func() {
		_, err := w.svc.Sync(context.Background(), "tt02")
		done <- err
	}()
	<-entered // the sync is waiting for the client list
	w.svc.Close()
	if err := <-done; err == nil {
		t.Error("a sync cut short succeeded")
	}
	cut, err := w.db.SyncStateOf(ctx, "tt02")
	if err != nil {
		t.Fatal(err)
	}
	if cut.OK || cut.StartedAt.Equal(st.StartedAt) {
		t.Errorf("sync state %+v: the cut-short sync was not recorded (the one before: %+v)", cut, st)
	}
}

func TestDetailRefreshesOnlyWhenStale(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	w := newWorld(t, worldOptions{now: clock})
	ctx := t.Context()
	id := w.create(t, w.ownerA, "tt02", draft("Viewed", w.teamA, preset...))
	up := w.up["tt02"]

	gets := up.getCount()
	if _, err := w.svc.Get(ctx, w.ownerA, "tt02", id); err != nil {
		t.Fatal(err)
	}
	if n := up.getCount() - gets; n != 0 {
		t.Errorf("a fresh row was read upstream %d times", n)
	}
	// A sync that finds the client unchanged makes its row fresh too.
	advance(2 * time.Minute)
	w.syncOK(t, "tt02")
	gets = up.getCount()
	if _, err := w.svc.Get(ctx, w.ownerA, "tt02", id); err != nil {
		t.Fatal(err)
	}
	if n := up.getCount() - gets; n != 0 {
		t.Errorf("a row synced just now was read upstream %d times", n)
	}
	// Changed outside; the view after a minute re-reads it and finds the drift.
	cur, err := w.mp["tt02"].GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cur.Description = "Changed outside"
	if _, err := w.mp["tt02"].UpdateClient(ctx, id, *cur); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Minute)
	gets = up.getCount()
	det, err := w.svc.Get(ctx, w.ownerA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if n := up.getCount() - gets; n != 1 || det.Summary.Description != "Changed outside" || len(det.Drift) == 0 || det.Stale != "" {
		t.Errorf("stale view: %d upstream reads, description %q, drift %+v, stale %q", n, det.Summary.Description, det.Drift, det.Stale)
	}
	// When upstream does not answer, the mirror is shown with a note.
	advance(2 * time.Minute)
	if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{ErrorRate: 1, ErrorStatus: 502}); err != nil {
		t.Fatal(err)
	}
	det, err = w.svc.Get(ctx, w.ownerA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if det.Stale == "" || !strings.Contains(det.Stale, "TT02") || det.Summary.Description != "Changed outside" {
		t.Errorf("view during an outage: stale %q, description %q", det.Stale, det.Summary.Description)
	}
	if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{}); err != nil {
		t.Fatal(err)
	}

	// Digdir shows a deactivated client only in the list (inactive=true), never alone; its
	// page must not claim Digdir forgot it.
	if err := w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "Viewed", clients.NewKey()); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Minute)
	det, err = w.svc.Get(ctx, w.ownerA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if det.Stale != "" || det.Summary.Active {
		t.Errorf("view of an inactive integration: stale %q, active %v", det.Stale, det.Summary.Active)
	}
}

// TestSyncMirrorsOnlyMaskinportenClients: Digdir lists every kind of client the organisation
// has; the sync mirrors only the Maskinporten ones, never reads the others' key sets, and
// counts them per kind for the environment page.
func TestSyncMirrorsOnlyMaskinportenClients(t *testing.T) {
	t.Parallel()
	login := sim.SeedClient{ClientID: "login-1", ClientOrgNo: sim.DefaultOrgNo, ClientName: "Citizen login",
		Description: "ID-porten login", IntegrationType: "idporten"}
	login2 := sim.SeedClient{ClientID: "login-2", ClientOrgNo: sim.DefaultOrgNo, ClientName: "Staff login",
		Description: "ID-porten login", IntegrationType: "idporten"}
	krr := sim.SeedClient{ClientID: "krr-1", ClientOrgNo: sim.DefaultOrgNo, ClientName: "Contact register",
		Description: "KRR lookups", IntegrationType: "krr"}
	mp := sim.SeedClient{ClientID: "mp-1", ClientOrgNo: sim.DefaultOrgNo, ClientName: "Reader",
		Description: "Maskinporten reader", Scopes: []string{"altinn:serviceowner/instances.read"}}
	w := newWorld(t, worldOptions{seed: &sim.SeedFile{Envs: []string{"tt02"},
		Clients: []sim.SeedClient{login, login2, krr, mp}}})

	// The simulator lists every kind, as the real API does.
	all, err := w.mp["tt02"].ListClients(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, r := range all {
		kinds[r.ClientID] = r.IntegrationType
	}
	if kinds["login-1"] != "idporten" || kinds["krr-1"] != "krr" || kinds["mp-1"] != "maskinporten" {
		t.Fatalf("upstream kinds %v", kinds)
	}

	// A mirror that took a login client in before the kinds were told apart lets it go.
	now := time.Now()
	err = w.db.Tx(t.Context(), func(tx *sql.Tx) error {
		return store.PutIntegration(t.Context(), tx, store.Integration{Env: "tt02", ClientID: "login-1", Name: "Citizen login",
			Raw: `{"client_id":"login-1","integration_type":"idporten"}`, JWKS: `{"keys":[]}`, FirstSeen: now, LastChange: now, SyncedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	res := w.syncOK(t, "tt02")
	rows := w.rows(t, "tt02")
	for _, id := range []string{"login-1", "login-2", "krr-1"} {
		if _, ok := rows[id]; ok {
			t.Errorf("%s (another kind) is in the mirror", id)
		}
		if n := w.up["tt02"].jwksReadsOf(id); n != 0 {
			t.Errorf("%s: its key set was read %d times", id, n)
		}
	}
	if _, ok := rows["mp-1"]; !ok {
		t.Errorf("the Maskinporten client is not in the mirror")
	}
	if res.Clients != len(all)-3 || res.Unowned != len(all)-3 || res.OtherCount() != 3 {
		t.Errorf("result %+v, %d listed", res, len(all))
	}
	info, err := w.svc.SyncStatus(t.Context(), "tt02")
	if err != nil {
		t.Fatal(err)
	}
	if info.OtherKinds["idporten"] != 2 || info.OtherKinds["krr"] != 1 || info.OtherCount() != 3 {
		t.Errorf("other kinds %v", info.OtherKinds)
	}
	if got, want := info.OtherKindsText(), "3 clients of other kinds (idporten 2, krr 1) are not managed here."; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	// The unowned-integrations audit names none of them.
	ev := w.event(t, "tt02", "", "integration.sync.unowned", audit.Success)
	for _, id := range []string{"login-1", "login-2", "krr-1"} {
		if strings.Contains(string(ev.Details), id) {
			t.Errorf("unowned event names %s: %s", id, ev.Details)
		}
	}

	// A failed sync keeps the last count.
	if err := w.sim.SetFaults("tt02", "selfservice", sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	_, _ = w.svc.Sync(t.Context(), "tt02")
	w.sim.SetFaults("tt02", "selfservice", sim.Faults{})
	info, err = w.svc.SyncStatus(t.Context(), "tt02")
	if err != nil || info.OK || info.OtherCount() != 3 {
		t.Errorf("after a failed sync: %v, ok %v, other kinds %v", err, info.OK, info.OtherKinds)
	}
	// prod has none.
	w.syncOK(t, "prod")
	if info, _ := w.svc.SyncStatus(t.Context(), "prod"); info.OtherKindsText() != "" || info.OtherKinds == nil {
		t.Errorf("prod other kinds %v %q", info.OtherKinds, info.OtherKindsText())
	}
}

// TestScopeAccessRefusedOffersCatalogue: an admin client registered with dcr.read and
// dcr.write only (as many are) cannot list the organisation's scope access; creating an
// integration goes on with the whole Maskinporten catalogue, says access could not be checked,
// and Digdir still refuses a scope the organisation lacks.
func TestScopeAccessRefusedOffersCatalogue(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{mpConfig: func(t *testing.T, s *sim.Sim, env string, cfg *maskinporten.Config) {
		full, err := maskinporten.New(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := full.CreateClient(t.Context(), maskinporten.Registration{ClientName: "admin without scopes.write",
			Description: "self-service admin", IntegrationType: maskinporten.IntegrationMaskinporten,
			Scopes: []string{"idporten:dcr.read", "idporten:dcr.write"}})
		if err != nil {
			t.Fatal(err)
		}
		cred := *cfg.Admin
		cred.ClientID = reg.ClientID
		cfg.Admin = &cred
	}})
	ctx := t.Context()
	f, err := w.svc.NewForm(ctx, w.memberA, "tt02")
	if err != nil {
		t.Fatalf("form: %v", err)
	}
	if !f.AccessUnchecked {
		t.Fatal("the form does not say access could not be checked")
	}
	idx := map[string]clients.Scope{}
	for _, sc := range f.Scopes {
		idx[sc.Name] = sc
	}
	// Granted, not granted (REQUESTED) and open to all: all offered; only the open one checked.
	for name, unchecked := range map[string]bool{
		"altinn:serviceowner/instances.read": true, "krr:global/kontaktinformasjon.read": true, "altinn:broker.read": false,
	} {
		sc, ok := idx[name]
		if !ok || sc.Unchecked != unchecked {
			t.Errorf("%s: offered %v, unchecked %v (want %v)", name, ok, sc.Unchecked, unchecked)
		}
	}
	if _, ok := idx["altinn:portal/enduser"]; ok {
		t.Error("an ID-porten-only scope is offered")
	}
	id := w.create(t, w.memberA, "tt02", draft("Unchecked", w.teamA, "altinn:serviceowner/instances.read"))
	if u := w.upstream(t, "tt02", id); !slices.Equal(u.Scopes, []string{"altinn:serviceowner/instances.read"}) {
		t.Errorf("created with %v", u.Scopes)
	}
	_, err = w.svc.Create(ctx, w.memberA, meta(w.memberA), "tt02", draft("Lacks access", w.teamA, "krr:global/kontaktinformasjon.read"))
	if err == nil || !strings.Contains(err.Error(), "does not have access") {
		t.Errorf("a scope the organisation lacks: %v", err)
	}
}
