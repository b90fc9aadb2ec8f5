package altinn_test

// The client against the simulated platform (internal/sim) over HTTP, for the refusals of
// the token exchange and Storage.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/altinn"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/sim"
)

const (
	simReadScope  = "altinn:serviceowner/instances.read"
	simWriteScope = "altinn:serviceowner/instances.write"
	simApp        = "ttd/soknad-om-tilskudd"
)

// simKeyPool is generated once per test binary: 8 keys for the simulator's fresh state and
// one for the test's client.
var simKeyPool = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var pool []*rsa.PrivateKey
	for range 9 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		pool = append(pool, k)
	}
	return pool, nil
})

// simPlatform is a fresh simulator behind an httptest server whose address is its public
// base URL, with a Maskinporten client of the service owner that may ask for read and write.
type simPlatform struct {
	sim      *sim.Sim
	al       *altinn.Client
	mp       *maskinporten.Client
	clientID string
	signer   maskinporten.Signer
}

func newSimPlatform(t *testing.T) *simPlatform {
	t.Helper()
	pool, err := simKeyPool()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	var mu sync.Mutex
	next := 0
	s, err := sim.Open(t.Context(), sim.Config{
		BaseURL: "http://" + srv.Listener.Addr().String(),
		DataDir: t.TempDir(),
		GenerateKey: func() (*rsa.PrivateKey, error) {
			mu.Lock()
			defer mu.Unlock()
			k := pool[next%8]
			next++
			return k, nil
		},
		AppInstances: 5,
	})
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

	a, err := s.AdminCredentials("tt02")
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := keys.ParsePrivate([]byte(a.PrivateKeyPEM))
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
	mp, err := maskinporten.New(maskinporten.Config{Issuer: a.Issuer, SelfServiceURL: a.SelfServiceURL, HTTPClient: srv.Client(),
		Now: func() time.Time { n, _ := s.Now("tt02"); return n },
		Admin: &maskinporten.Credentials{ClientID: a.ClientID, Signer: maskinporten.Signer{Key: adminKey, Chain: chain},
			Scopes: a.Scopes}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := mp.CreateClient(t.Context(), maskinporten.Registration{
		ClientName: "storage reader", Description: "altinn sim tests",
		IntegrationType: maskinporten.IntegrationMaskinporten, ApplicationType: maskinporten.ApplicationWeb,
		TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT, GrantTypes: []string{maskinporten.GrantType},
		Scopes: []string{simReadScope, simWriteScope},
	})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	key, err := keys.NewPrivateKey(pool[8], "altinn-sim-1", keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	j := key.PublicJWK()
	if _, err := mp.ReplaceJWKS(t.Context(), reg.ClientID, []maskinporten.JWK{{Kty: j.Kty, Kid: j.Kid, Alg: j.Alg, Use: j.Use, E: j.E, N: j.N}}); err != nil {
		t.Fatalf("post jwks: %v", err)
	}
	al, err := altinn.New(altinn.Config{PlatformURL: a.PlatformURL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return &simPlatform{sim: s, al: al, mp: mp, clientID: reg.ClientID, signer: maskinporten.Signer{Key: key, KeyID: key.KID}}
}

// maskinportenToken gets a token for the test's client with scopes.
func (p *simPlatform) maskinportenToken(t *testing.T, scopes ...string) string {
	t.Helper()
	assertion, err := maskinporten.SignGrant(p.mp.Grant(p.clientID, scopes...), p.signer)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := p.mp.Token(t.Context(), assertion)
	if err != nil {
		t.Fatalf("maskinporten token: %v", err)
	}
	return tr.AccessToken
}

func (p *simPlatform) altinnToken(t *testing.T, scopes ...string) string {
	t.Helper()
	tok, err := p.al.Exchange(t.Context(), p.maskinportenToken(t, scopes...), false)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

func wantAltinnError(t *testing.T, err error, status int, kind error, text string) {
	t.Helper()
	var e *altinn.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *altinn.Error", err)
	}
	if e.Status != status || !errors.Is(err, kind) {
		t.Errorf("status %d (%v), want %d", e.Status, err, status)
	}
	if text != "" && !strings.Contains(e.Error(), text) {
		t.Errorf("%q lacks %q", e.Error(), text)
	}
}

func TestSimExchangeErrors(t *testing.T) {
	p := newSimPlatform(t)
	read := p.maskinportenToken(t, simReadScope)
	prodAdmin, err := p.sim.AdminCredentials("prod")
	if err != nil {
		t.Fatal(err)
	}
	prodPlatform, err := altinn.New(altinn.Config{PlatformURL: prodAdmin.PlatformURL})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		al    *altinn.Client
		token string
		shift time.Duration
	}{
		{"not a token", p.al, "not.a.token", 0},
		{"signature broken", p.al, read[:len(read)-4] + "AAAA", 0},
		{"token of another environment", prodPlatform, read, 0},
		{"expired token", p.al, read, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.shift != 0 {
				if _, err := p.sim.ShiftClock("tt02", tt.shift); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.sim.SetClockOffset("tt02", 0) })
			}
			_, err := tt.al.Exchange(t.Context(), tt.token, false)
			wantAltinnError(t, err, http.StatusUnauthorized, altinn.ErrUnauthorized, "")
		})
	}
	// The same token is accepted before and after the refusals.
	if _, err := p.al.Exchange(t.Context(), read, false); err != nil {
		t.Fatalf("exchange of a valid token: %v", err)
	}
}

func TestSimStorageErrors(t *testing.T) {
	p := newSimPlatform(t)
	read := p.altinnToken(t, simReadScope)
	writeOnly := p.altinnToken(t, simWriteScope)
	adminMP, err := p.mp.AdminTokens().Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	noOrg, err := p.al.Exchange(t.Context(), adminMP, false) // no altinn:serviceowner scope, so no org claim
	if err != nil {
		t.Fatal(err)
	}
	page, err := p.al.Instances(t.Context(), read, altinn.InstanceQuery{AppID: simApp})
	if err != nil || len(page.Instances) == 0 {
		t.Fatalf("instances with the read scope: %v, %+v", err, page)
	}
	inst := page.Instances[0]
	const missing = "00000000-0000-0000-0000-000000000000"
	party, _, _ := strings.Cut(inst.ID, "/")

	tests := []struct {
		name   string
		call   func(ctx context.Context) error
		status int
		kind   error
		text   string
	}{
		{"list without the read scope", func(ctx context.Context) error {
			_, err := p.al.Instances(ctx, writeOnly, altinn.InstanceQuery{AppID: simApp})
			return err
		}, 403, altinn.ErrForbidden, ""},
		{"list with a token without org", func(ctx context.Context) error {
			_, err := p.al.Instances(ctx, noOrg, altinn.InstanceQuery{AppID: simApp})
			return err
		}, 400, altinn.ErrBadRequest, ""},
		{"list without org or appId", func(ctx context.Context) error {
			_, err := p.al.Instances(ctx, read, altinn.InstanceQuery{})
			return err
		}, 400, altinn.ErrBadRequest, "Org or AppId must be defined."},
		{"list another org's app", func(ctx context.Context) error {
			_, err := p.al.Instances(ctx, read, altinn.InstanceQuery{AppID: "digdir/some-app"})
			return err
		}, 403, altinn.ErrForbidden, ""},
		{"list with a bad date expression", func(ctx context.Context) error {
			_, err := p.al.Instances(ctx, read, altinn.InstanceQuery{AppID: simApp, Created: []altinn.DateFilter{{Op: altinn.GT, Value: "yesterday"}}})
			return err
		}, 400, altinn.ErrBadRequest, "yesterday"},
		{"list with a broken token", func(ctx context.Context) error {
			_, err := p.al.Instances(ctx, read[:len(read)-4]+"AAAA", altinn.InstanceQuery{AppID: simApp})
			return err
		}, 401, altinn.ErrUnauthorized, ""},
		{"unknown instance", func(ctx context.Context) error {
			_, err := p.al.Instance(ctx, read, party+"/"+missing)
			return err
		}, 404, altinn.ErrNotFound, "Unable to find instance"},
		{"unknown data element", func(ctx context.Context) error {
			d, err := p.al.Data(ctx, read, inst.ID, missing)
			if err == nil {
				d.Body.Close()
			}
			return err
		}, 404, altinn.ErrNotFound, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAltinnError(t, tt.call(t.Context()), tt.status, tt.kind, tt.text)
		})
	}
}
