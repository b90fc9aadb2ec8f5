package tryit_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/altinn"
	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/sim"
	"portal/internal/store"
	"portal/internal/tryit"
)

const (
	readScope   = "altinn:serviceowner/instances.read"
	writeScope  = "altinn:serviceowner/instances.write"
	brokerRead  = "altinn:broker.read"
	appID       = "ttd/soknad-om-tilskudd"
	simKeys     = 8 // the simulator's own keys: Maskinporten, Altinn, CA and admin, per environment
	clientKeys  = 3
	instanceCnt = 5
)

// keyPool is generated once per test binary; key generation dominates a simulator's start.
var keyPool = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var out []*rsa.PrivateKey
	for range simKeys + clientKeys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
})

func pool(tb testing.TB) []*rsa.PrivateKey {
	tb.Helper()
	p, err := keyPool()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// clientKey is the i-th key for clients (0..clientKeys-1).
func clientKey(tb testing.TB, i int) *rsa.PrivateKey { return pool(tb)[simKeys+i] }

type worldOptions struct {
	timeout time.Duration // per upstream call; default 10 s
}

// world is one simulator on an httptest server, a fresh portal database with a team, the
// integrations service and the try service over both environments, all on the simulator's
// tt02 clock.
type world struct {
	sim     *sim.Sim
	db      *store.DB
	kek     *keys.KEK
	clients *clients.Service
	svc     *tryit.Service
	mp      map[string]*maskinporten.Client
	al      map[string]*altinn.Client
	envs    map[string]tryit.Env
	issuer  map[string]string
	now     func() time.Time
	team    int64

	admin, member, viewer, outsider *auth.Principal
}

func newWorld(tb testing.TB, o worldOptions) *world {
	tb.Helper()
	ctx := tb.Context()
	ks := pool(tb)
	srv := httptest.NewUnstartedServer(nil)
	var mu sync.Mutex
	next := 0
	s, err := sim.Open(ctx, sim.Config{
		BaseURL: "http://" + srv.Listener.Addr().String(),
		DataDir: tb.TempDir(),
		GenerateKey: func() (*rsa.PrivateKey, error) {
			mu.Lock()
			defer mu.Unlock()
			k := ks[next%simKeys]
			next++
			return k, nil
		},
		AppInstances: instanceCnt,
	})
	if err != nil {
		srv.Listener.Close()
		tb.Fatalf("open sim: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	srv.Config.Handler = s.Handler()
	srv.Start()
	tb.Cleanup(srv.Close)

	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "portal.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	kekBytes := make([]byte, 32)
	_, _ = rand.Read(kekBytes)
	kek, err := keys.NewKEK(kekBytes)
	if err != nil {
		tb.Fatal(err)
	}
	// The portal's clock is the simulator's: clocks in sync, as they should be, even when a
	// test moves the simulator's.
	now := func() time.Time {
		t, err := s.Now("tt02")
		if err != nil {
			panic(err)
		}
		return t
	}
	w := &world{sim: s, db: db, kek: kek, mp: map[string]*maskinporten.Client{}, al: map[string]*altinn.Client{},
		envs: map[string]tryit.Env{}, issuer: map[string]string{}, now: now}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		w.team, err = store.InsertTeam(ctx, tx, "Team A", time.Now())
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	w.admin = &auth.Principal{UserID: 1, Email: "admin@example.no", Role: auth.RoleAdmin}
	w.member = &auth.Principal{UserID: 2, Email: "member@example.no", Role: auth.RoleMember,
		Teams: []auth.TeamRole{{TeamID: w.team, TeamName: "Team A", Role: auth.TeamMember}}}
	w.viewer = &auth.Principal{UserID: 3, Email: "viewer@example.no", Role: auth.RoleMember,
		Teams: []auth.TeamRole{{TeamID: w.team, TeamName: "Team A", Role: auth.TeamViewer}}}
	w.outsider = &auth.Principal{UserID: 4, Email: "outsider@example.no", Role: auth.RoleMember}

	timeout := o.timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	httpClient := &http.Client{Transport: srv.Client().Transport}
	var cenvs []clients.Env
	for _, env := range sim.Environments {
		a, err := s.AdminCredentials(env)
		if err != nil {
			tb.Fatal(err)
		}
		w.issuer[env] = a.Issuer
		mp, err := maskinporten.New(maskinporten.Config{Issuer: a.Issuer, SelfServiceURL: a.SelfServiceURL,
			HTTPClient: httpClient, Timeout: timeout, Backoff: 10 * time.Millisecond, Now: now, Admin: adminCredentials(tb, a)})
		if err != nil {
			tb.Fatal(err)
		}
		al, err := altinn.New(altinn.Config{PlatformURL: a.PlatformURL, HTTPClient: httpClient, Timeout: timeout, Backoff: 10 * time.Millisecond})
		if err != nil {
			tb.Fatal(err)
		}
		w.mp[env], w.al[env] = mp, al
		cenvs = append(cenvs, clients.Env{Name: env, Label: env, Prod: env == "prod", Issuer: a.Issuer, Upstream: mp})
	}
	var tenvs []tryit.Env
	for _, env := range sim.Environments {
		var others []string
		for _, o := range sim.Environments {
			if o != env {
				others = append(others, w.issuer[o])
			}
		}
		e := tryit.Env{Name: env, Label: env, Maskinporten: w.mp[env], Altinn: w.al[env], OtherIssuers: others, TestToggle: env == "tt02"}
		w.envs[env] = e
		tenvs = append(tenvs, e)
	}
	w.clients, err = clients.New(db, cenvs, clients.Options{Now: now, KEK: kek})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.clients.Close)
	w.svc, err = tryit.New(tryit.Config{Envs: tenvs, Clients: w.clients, Audit: audit.NewLog(db, now), Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

func adminCredentials(tb testing.TB, a sim.AdminCredentials) *maskinporten.Credentials {
	tb.Helper()
	key, err := keys.ParsePrivate([]byte(a.PrivateKeyPEM))
	if err != nil {
		tb.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := []byte(a.CertificateChainPEM); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			tb.Fatal(err)
		}
		chain = append(chain, c)
	}
	return &maskinporten.Credentials{ClientID: a.ClientID, Signer: maskinporten.Signer{Key: key, Chain: chain}, Scopes: a.Scopes}
}

func meta(p *auth.Principal) audit.Meta {
	return audit.Meta{ActorID: p.UserID, Actor: p.Email, RequestID: "req-test"}
}

// integration creates a tt02 integration of the team with scopes and gives it client key i
// as kid, kept by the portal (sealed) when kept is set.
func (w *world) integration(tb testing.TB, name string, i int, kid string, kept bool, scopes ...string) string {
	tb.Helper()
	ctx := tb.Context()
	id, err := w.clients.Create(ctx, w.member, meta(w.member), "tt02", clients.Draft{Name: name, Description: "Integration " + name,
		TeamID: w.team, Scopes: scopes, Key: clients.NewKey()})
	if err != nil {
		tb.Fatalf("create %s: %v", name, err)
	}
	w.addKey(tb, id, i, kid, kept)
	return id
}

// addKey uploads client key i's public half as kid and, when kept, seals its private half as
// the portal does for a generated key it keeps.
func (w *world) addKey(tb testing.TB, id string, i int, kid string, kept bool) {
	tb.Helper()
	ctx := tb.Context()
	ks, err := w.clients.Keys(ctx, w.member, "tt02", id)
	if err != nil {
		tb.Fatal(err)
	}
	k := clientKey(tb, i)
	jwk, _ := json.Marshal(map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
	if _, err := w.clients.UploadKey(ctx, w.member, meta(w.member), "tt02", id, clients.UploadRequest{Data: jwk},
		clients.KeyChange{Version: ks.Version, Key: clients.NewKey()}); err != nil {
		tb.Fatalf("upload key %s: %v", kid, err)
	}
	if !kept {
		return
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	sealed, err := keys.Seal(w.kek, "tt02", id, kid, der)
	if err != nil {
		tb.Fatal(err)
	}
	err = w.db.Tx(ctx, func(tx *sql.Tx) error {
		return store.PutKeyRecord(ctx, tx, store.KeyRecord{Env: "tt02", ClientID: id, KID: kid, Custody: store.CustodyKept,
			Sealed: sealed, KEKID: w.kek.ID(), CreatedBy: w.member.UserID, CreatedAt: time.Now()})
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// grant signs claims with client key i under header kid, as a browser or another tool would,
// without the checks maskinporten.Grant makes.
func grant(tb testing.TB, i int, kid string, claims map[string]any) string {
	tb.Helper()
	return signRaw(tb, clientKey(tb, i), map[string]any{"alg": "RS256", "kid": kid}, claims)
}

func signRaw(tb testing.TB, k *rsa.PrivateKey, header, claims map[string]any) string {
	tb.Helper()
	hj, _ := json.Marshal(header)
	cj, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(cj)
	return input + "." + signInput(tb, k, input)
}

// signInput signs a signing input with RS256, as the browser's signer does.
func signInput(tb testing.TB, k *rsa.PrivateKey, input string) string {
	tb.Helper()
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

// claims are a valid grant's claims for id in tt02 at the world's now, with changes.
func (w *world) claims(id string, scope string, change func(map[string]any)) map[string]any {
	now := w.now().Unix()
	c := map[string]any{"aud": w.issuer["tt02"], "iss": id, "scope": scope, "iat": now, "exp": now + 120,
		"jti": base64.RawURLEncoding.EncodeToString(big.NewInt(time.Now().UnixNano()).Bytes())}
	if change != nil {
		change(c)
	}
	return c
}

func (w *world) start(tb testing.TB, p *auth.Principal, id string) *tryit.Try {
	tb.Helper()
	t, err := w.svc.Start(tb.Context(), p, meta(p), "tt02", id)
	if err != nil {
		tb.Fatalf("start a try of %s: %v", id, err)
	}
	return t
}

func wantKind(tb testing.TB, err error, k problem.Kind) {
	tb.Helper()
	if got := problem.KindOf(err); err == nil || got != k {
		tb.Fatalf("got %v (kind %v), want kind %v", err, got, k)
	}
}

// wantFindings fails unless the step failed with every code among its findings.
func wantFindings(tb testing.TB, s tryit.Step, codes ...string) {
	tb.Helper()
	if s.OK {
		tb.Fatalf("step %s succeeded, want a failure with %v", s.Name, codes)
	}
	for _, c := range codes {
		if !tryit.HasFinding(s.Findings, c) {
			tb.Errorf("step %s: no finding %s among:\n%s", s.Name, c, describe(s.Findings))
		}
	}
	for _, f := range s.Findings {
		if f.Title == "" || f.Severity == "" || f.Code == "" {
			tb.Errorf("incomplete finding %+v", f)
		}
	}
}

func describe(fs []tryit.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.Code + " [" + string(f.Severity) + "] " + f.Title + " | " + f.Cause + " | " + f.Fix + "\n")
	}
	return b.String()
}

func signerFor(tb testing.TB, i int, kid string) maskinporten.Signer {
	tb.Helper()
	return maskinporten.Signer{Key: clientKey(tb, i), KeyID: kid, Alg: maskinporten.RS256}
}
