// Package sim simulates the upstreams of the portal: Maskinporten (token endpoint, JWKS,
// metadata), Digdir's self-service API for clients, keys and scopes, and, through package
// platform, Altinn's token exchange and Storage. Each environment (tt02, prod) is a separate
// world with its own keys, test CA, clock and state, persisted in DataDir/sim.db.
//
// The protocols follow shared/reference/upstreams.md; where the reference marks a behaviour as
// unconfirmed, the choice made here is named in a comment and, where it matters, switchable
// through Quirks.
package sim

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"portal/internal/sim/platform"
)

// Environments the simulator serves.
var Environments = []string{"tt02", "prod"}

// Defaults for the seeded service owner.
const (
	DefaultOrgCode = "ttd"
	DefaultOrgNo   = "313554430"
	DefaultOrgName = "Testdepartementet"
)

// Config configures Open.
type Config struct {
	// BaseURL is the simulators' public base URL, e.g. "http://127.0.0.1:8081". Issuers and
	// audiences derive from it, never from a request's Host header.
	BaseURL string
	// DataDir holds sim.db and the sim-{env}-admin.json files.
	DataDir string

	// The service owner seeded in both environments; defaults DefaultOrgCode, DefaultOrgNo,
	// DefaultOrgName.
	OrgCode string
	OrgNo   string
	OrgName string

	// SeedFile optionally names a JSON file that adds organisations, scopes, grants, clients
	// and apps to the seeded world; see SeedFile for its format.
	SeedFile string

	// AdminAPI enables the fault and clock endpoints under /sim/admin/.
	AdminAPI bool

	// PropagationDelay delays self-service changes before the simulated Maskinporten sees
	// them (Digdir says 0-2 minutes). Measured on each environment's clock.
	PropagationDelay time.Duration

	Quirks Quirks

	// AnsattportenSecret is the client secret the simulated Ansattporten accepts for its one
	// client, AnsattportenClientID; empty, nobody can complete a sign-in there.
	AnsattportenSecret string

	Logger *slog.Logger

	// GenerateKey makes the RSA keys created on first start (signing keys, CAs, admin keys).
	// Nil means 2048-bit keys from crypto/rand; tests pass pre-generated keys.
	GenerateKey func() (*rsa.PrivateKey, error)

	// AppInstances is how many instances the seeded demo app gets; 0 means 180.
	AppInstances int
}

// Quirks switch behaviours the reference leaves unconfirmed.
type Quirks struct {
	// AllowUnknownClaims accepts grant claims the reference does not list instead of answering
	// 400 invalid_request "Invalid assertion".
	AllowUnknownClaims bool
	// AcceptAudienceWithoutSlash accepts the issuer without its trailing slash as aud.
	AcceptAudienceWithoutSlash bool
	// NarrowScopes issues the permitted subset of the requested scopes instead of failing
	// (once observed on TEST).
	NarrowScopes bool
	// ForbiddenStatus is the HTTP status of "forbidden" token errors (MP-250, MP-251); 0 means 403.
	ForbiddenStatus int
	// ScopeAccessScopes are the scopes of which GET /scopes/access/all demands one; empty means
	// idporten:scopes.write (the scope is undocumented; NAV asks for it).
	ScopeAccessScopes []string
}

// Sim serves all simulated environments.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	wdb     *sql.DB // one connection: all writes
	rdb     *sql.DB // reads and the platform simulator
	worlds  map[string]*world
	handler http.Handler

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	jtis *jtiStore
}

// world is one environment.
type world struct {
	s        *Sim
	name     string
	issuer   string // {base}/sim/{env}/maskinporten/
	ssURL    string // {base}/sim/{env}/selfservice
	platURL  string // {base}/sim/{env}/platform
	clock    clock
	faults   [len(upstreams)]atomic.Pointer[Faults]
	view     *view
	certs    certCache
	platform *platform.Platform

	mpKey       *rsa.PrivateKey
	mpKid       string
	tokenHeader string // base64url of the fixed access-token header
	jwks        jose.JSONWebKeySet
	jwksJSON    []byte
	metadata    []byte

	caCert *x509.Certificate
	caKey  *rsa.PrivateKey
	caPool *x509.CertPool

	altinnKey *rsa.PrivateKey
	altinnKid string

	adminClientID string
	adminKey      *rsa.PrivateKey
	adminCert     *x509.Certificate

	apOnce  sync.Once
	apState *apState // the simulated Ansattporten (ansattporten.go)
}

// Open opens or creates the simulator state in cfg.DataDir, seeds the default world and the
// seed file (both idempotent), and writes the admin credential files.
func Open(ctx context.Context, cfg Config) (*Sim, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("sim: data dir: %w", err)
	}
	wdb, rdb, err := openDB(ctx, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Sim{cfg: cfg, log: cfg.Logger, wdb: wdb, rdb: rdb, worlds: map[string]*world{}, stop: make(chan struct{})}
	if err := s.open(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sim: %w", err)
	}
	s.wg.Add(2)
	go s.sweepJTIs()
	go func() {
		defer s.wg.Done()
		s.jtis.run(s.stop)
	}()
	return s, nil
}

func (c *Config) setDefaults() error {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.BaseURL == "" {
		return errors.New("sim: BaseURL is required")
	}
	if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("sim: BaseURL %q is not an http(s) URL", c.BaseURL)
	}
	if c.DataDir == "" {
		return errors.New("sim: DataDir is required")
	}
	if c.OrgCode == "" {
		c.OrgCode = DefaultOrgCode
	}
	if c.OrgNo == "" {
		c.OrgNo = DefaultOrgNo
	}
	if c.OrgName == "" {
		c.OrgName = DefaultOrgName
	}
	if !isOrgNo(c.OrgNo) {
		return fmt.Errorf("sim: OrgNo %q is not a 9-digit organisation number", c.OrgNo)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.GenerateKey == nil {
		c.GenerateKey = defaultGenerateKey
	}
	if c.AppInstances == 0 {
		c.AppInstances = 180
	}
	if c.PropagationDelay < 0 {
		return errors.New("sim: PropagationDelay must not be negative")
	}
	return nil
}

func (s *Sim) open(ctx context.Context) error {
	var err error
	if s.jtis, err = newJTIStore(ctx, s.wdb, s.rdb, s.log); err != nil {
		return err
	}
	var seed *SeedFile
	if s.cfg.SeedFile != "" {
		if seed, err = ReadSeedFile(s.cfg.SeedFile); err != nil {
			return err
		}
	}
	for _, env := range Environments {
		w := &world{
			s:       s,
			name:    env,
			issuer:  s.cfg.BaseURL + "/sim/" + env + "/maskinporten/",
			ssURL:   s.cfg.BaseURL + "/sim/" + env + "/selfservice",
			platURL: s.cfg.BaseURL + "/sim/" + env + "/platform",
		}
		if err := w.loadSecrets(ctx); err != nil {
			return fmt.Errorf("%s: %w", env, err)
		}
		if err := w.seedDefault(ctx); err != nil {
			return fmt.Errorf("%s: seed: %w", env, err)
		}
		if seed != nil {
			if err := w.applySeed(ctx, seed); err != nil {
				return fmt.Errorf("%s: seed file %s: %w", env, s.cfg.SeedFile, err)
			}
		}
		if w.view, err = w.loadView(ctx); err != nil {
			return fmt.Errorf("%s: %w", env, err)
		}
		if err := w.openPlatform(ctx, seed); err != nil {
			return fmt.Errorf("%s: platform: %w", env, err)
		}
		if err := w.writeAdminFile(); err != nil {
			return fmt.Errorf("%s: %w", env, err)
		}
		s.worlds[env] = w
	}
	s.handler = s.routes()
	return nil
}

func (w *world) openPlatform(ctx context.Context, seed *SeedFile) error {
	p, err := platform.New(ctx, platform.Config{
		Env:                w.name,
		BaseURL:            w.platURL,
		DB:                 w.s.rdb,
		Now:                w.clock.now,
		MaskinportenIssuer: w.issuer,
		MaskinportenKeys: func(context.Context) (jose.JSONWebKeySet, error) {
			return w.jwks, nil
		},
		ServiceOwners: w.serviceOwners,
		SigningKey:    w.altinnKey,
		SigningKeyID:  w.altinnKid,
	})
	if err != nil {
		return err
	}
	w.platform = p
	apps := []SeedApp{
		{Org: w.s.cfg.OrgCode, App: "soknad-om-tilskudd", Instances: w.s.cfg.AppInstances},
		{Org: w.s.cfg.OrgCode, App: "melding-om-flytting", Instances: 40},
	}
	if seed != nil && seed.appliesTo(w.name) {
		apps = append(apps, seed.Apps...)
	}
	for _, a := range apps {
		if err := p.SeedApp(ctx, a.Org, a.App, a.Instances); err != nil {
			return fmt.Errorf("seed app %s/%s: %w", a.Org, a.App, err)
		}
	}
	return nil
}

func (w *world) serviceOwners(ctx context.Context) ([]platform.ServiceOwner, error) {
	rows, err := w.s.rdb.QueryContext(ctx,
		`SELECT code, orgno, name FROM sim_orgs WHERE env = ? AND service_owner = 1 ORDER BY code`, w.name)
	if err != nil {
		return nil, fmt.Errorf("service owners: %w", err)
	}
	defer rows.Close()
	var out []platform.ServiceOwner
	for rows.Next() {
		var o platform.ServiceOwner
		if err := rows.Scan(&o.Code, &o.OrgNo, &o.Name); err != nil {
			return nil, fmt.Errorf("service owners: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Handler serves everything under /sim/.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close stops background work and closes the state file.
func (s *Sim) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		err = s.closeDBs()
	})
	return err
}

func (s *Sim) closeDBs() error {
	var errs []error
	if s.jtis != nil {
		errs = append(errs, s.jtis.close())
	}
	errs = append(errs, s.rdb.Close(), s.wdb.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim: close: %w", err)
	}
	return nil
}

func (s *Sim) world(env string) (*world, error) {
	w, ok := s.worlds[env]
	if !ok {
		return nil, fmt.Errorf("sim: unknown environment %q", env)
	}
	return w, nil
}

// SetFaults sets the faults of one upstream (UpstreamMaskinporten, UpstreamSelfService,
// UpstreamPlatform) of one environment; the zero Faults clears them.
func (s *Sim) SetFaults(env, upstream string, f Faults) error {
	w, err := s.world(env)
	if err != nil {
		return err
	}
	i := upstreamIndex(upstream)
	if i < 0 {
		return fmt.Errorf("sim: unknown upstream %q", upstream)
	}
	if err := f.validate(); err != nil {
		return fmt.Errorf("sim: faults: %w", err)
	}
	if f.zero() {
		w.faults[i].Store(nil)
	} else {
		w.faults[i].Store(&f)
	}
	s.log.Info("sim faults set", "env", env, "upstream", upstream, "faults", f)
	return nil
}

// FaultsOf returns the faults currently set for one upstream of one environment.
func (s *Sim) FaultsOf(env, upstream string) (Faults, error) {
	w, err := s.world(env)
	if err != nil {
		return Faults{}, err
	}
	i := upstreamIndex(upstream)
	if i < 0 {
		return Faults{}, fmt.Errorf("sim: unknown upstream %q", upstream)
	}
	if f := w.faults[i].Load(); f != nil {
		return *f, nil
	}
	return Faults{}, nil
}

// ShiftClock moves an environment's clock by d (which may be negative) and returns its new now.
func (s *Sim) ShiftClock(env string, d time.Duration) (time.Time, error) {
	w, err := s.world(env)
	if err != nil {
		return time.Time{}, err
	}
	w.clock.offset.Add(int64(d))
	s.log.Info("sim clock shifted", "env", env, "by", d.String())
	return w.clock.now(), nil
}

// SetClockOffset sets an environment's clock to the wall clock plus offset (0 resets it).
func (s *Sim) SetClockOffset(env string, offset time.Duration) error {
	w, err := s.world(env)
	if err != nil {
		return err
	}
	w.clock.offset.Store(int64(offset))
	s.log.Info("sim clock set", "env", env, "offset", offset.String())
	return nil
}

// Now returns an environment's current simulated time.
func (s *Sim) Now(env string) (time.Time, error) {
	w, err := s.world(env)
	if err != nil {
		return time.Time{}, err
	}
	return w.clock.now(), nil
}

// Issuer returns an environment's Maskinporten issuer (with trailing slash).
func (s *Sim) Issuer(env string) (string, error) {
	w, err := s.world(env)
	if err != nil {
		return "", err
	}
	return w.issuer, nil
}

// IssueBusinessCertificate issues a business certificate from an environment's test CA for
// pub. Grants signed with the matching private key and carrying the certificate (and the CA
// certificate) in x5c are accepted for clients of req.OrgNo.
func (s *Sim) IssueBusinessCertificate(env string, pub *rsa.PublicKey, req CertificateRequest) (leaf, ca *x509.Certificate, err error) {
	w, err := s.world(env)
	if err != nil {
		return nil, nil, err
	}
	if !isOrgNo(req.OrgNo) {
		return nil, nil, fmt.Errorf("sim: organisation number %q is not 9 digits", req.OrgNo)
	}
	if req.OrgName == "" {
		req.OrgName = "Org " + req.OrgNo
	}
	if req.NotBefore.IsZero() {
		req.NotBefore = w.clock.now().Add(-time.Hour)
	}
	if req.NotAfter.IsZero() {
		req.NotAfter = req.NotBefore.AddDate(2, 0, 0)
	}
	leaf, err = issueCertificate(w.caCert, w.caKey, pub, req)
	if err != nil {
		return nil, nil, fmt.Errorf("sim: %w", err)
	}
	return leaf, w.caCert, nil
}
