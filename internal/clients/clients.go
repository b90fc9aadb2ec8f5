// Package clients is the portal's view of each environment's Maskinporten integrations: a
// mirror of Digdir's clients and key sets with what Digdir does not keep (owning team, who
// created it, first sighting of keys, drift), and every change to them, authorised here from
// the person's role and teams, recorded as an intent before it goes upstream, and audited.
package clients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/store"
)

// Upstream is the part of Digdir's self-service API the portal uses; *maskinporten.Client
// implements it against the real API and the simulators alike.
type Upstream interface {
	ListClients(ctx context.Context, inactive bool) ([]maskinporten.Registration, error)
	GetClient(ctx context.Context, id string) (*maskinporten.Registration, error)
	CreateClient(ctx context.Context, r maskinporten.Registration) (*maskinporten.Registration, error)
	UpdateClient(ctx context.Context, id string, r maskinporten.Registration) (*maskinporten.Registration, error)
	DeleteClient(ctx context.Context, id string) error
	GetJWKS(ctx context.Context, id string) (*maskinporten.JWKS, error)
	ReplaceJWKS(ctx context.Context, id string, keys []maskinporten.JWK) (*maskinporten.JWKS, error)
	DeleteJWKS(ctx context.Context, id string) error
	ScopesAll(ctx context.Context, f maskinporten.ScopeFilter) ([]maskinporten.Scope, error)
	ScopeAccessAll(ctx context.Context, f maskinporten.ScopeFilter) ([]maskinporten.ScopeAccess, error)
	// The token endpoint, for proving a rotated key with a live token request.
	Token(ctx context.Context, assertion string) (*maskinporten.TokenResponse, error)
	Grant(clientID string, scopes ...string) maskinporten.Grant
	Issuer() string
	TokenEndpoint() string
}

// Env is one environment the service manages.
type Env struct {
	Name  string // tt02, prod
	Label string
	// Prod asks for the integration's name to be typed before any destructive or
	// scope-removing change.
	Prod     bool
	Issuer   string // Maskinporten issuer, for example grants
	Upstream Upstream
	// Problem explains why the environment has no upstream (a configuration mistake).
	Problem string
	// Keys says how generated keys may be held; nil takes DefaultKeyPolicy.
	Keys *KeyPolicy
	// AdminClient is the client id of the portal's own admin client (from its credentials
	// file): shown read-only, never changed through the portal.
	AdminClient string
	// AdminScopes are the scopes its credentials file says it holds; they are privileged.
	AdminScopes []string
	// PrivilegedScopes extend DefaultPrivilegedScopes (a trailing * matches a prefix).
	PrivilegedScopes []string
	// AllowRS384RS512 offers RS384 and RS512 keys besides RS256 (off: Digdir's admin API
	// page supports only RS256).
	AllowRS384RS512 bool
}

// Options tune the service; zero values take the defaults.
type Options struct {
	Log *slog.Logger
	Now func() time.Time
	// SyncConcurrency bounds parallel key-set reads during a sync (default 4).
	SyncConcurrency int
	// MaxAge is how old the mirror may be before a view refreshes it (default 1 minute).
	MaxAge time.Duration
	// IntentTTL is how long an unresolved intent waits for a sync to find its client (default 24 h).
	IntentTTL time.Duration
	// PropagationDelay is how long Digdir may take to list a change it accepted (default 2
	// minutes). An intent an earlier process left open (it stopped mid-change) that a sync
	// listing at least this long after the intent does not find upstream was never carried
	// out: it is failed at once instead of blocking a resend for IntentTTL.
	PropagationDelay time.Duration
	// ScopeCacheTTL is how long the organisation's usable scopes are kept (default 5 minutes).
	ScopeCacheTTL time.Duration
	// KEK seals the private keys the portal keeps; without it no key can be kept.
	KEK *keys.KEK
	// Generator generates keys off the request path; without it keys cannot be generated.
	Generator *keys.Generator
	// ProofInterval is how long a rotation's proof waits between token requests (default 10 s).
	ProofInterval time.Duration
	// ProofWindow is how long a rotation's proof keeps trying (default 3 minutes): Digdir says a
	// key change takes up to two minutes to reach Maskinporten.
	ProofWindow time.Duration
	// MinSyncInterval is how long "Sync now" waits between syncs of an environment, whoever
	// asks (default 30 s).
	MinSyncInterval time.Duration
	// AfterSync, when set, runs after each successful sync (in the sync's goroutine), for
	// example to tell administrators about new privileged-scope findings.
	AfterSync func(ctx context.Context, env string)
}

// Service manages integrations.
type Service struct {
	db    *store.DB
	audit *audit.Log
	envs  map[string]*envState
	order []string
	log   *slog.Logger
	now   func() time.Time
	opts  Options
	// started is when this process's service began: an open intent older than it has nobody
	// carrying it out any more (the process that recorded it has stopped).
	started time.Time

	ctx    context.Context // background syncs; cancelled by Close
	cancel context.CancelFunc
	gens   sync.Map // keys.JobID -> generation: who started which key generation
	proofs sync.Map // rotation id -> *proofRun: rotation proofs running in the background

	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
	wg     sync.WaitGroup
}

type envState struct {
	Env
	syncMu  sync.Mutex
	running *syncRun // the sync in flight, shared by everyone who asks meanwhile
	// lastAsked is when someone last pressed "Sync now" here (guarded by syncMu).
	lastAsked time.Time

	scopeMu    sync.Mutex
	scopes     []Scope
	scopesRead time.Time
}

// New returns a service over db for envs.
func New(db *store.DB, envs []Env, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("clients: a database is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SyncConcurrency <= 0 {
		opts.SyncConcurrency = 4
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Minute
	}
	if opts.IntentTTL <= 0 {
		opts.IntentTTL = 24 * time.Hour
	}
	if opts.PropagationDelay <= 0 {
		opts.PropagationDelay = 2 * time.Minute
	}
	if opts.ScopeCacheTTL <= 0 {
		opts.ScopeCacheTTL = 5 * time.Minute
	}
	if opts.MinSyncInterval <= 0 {
		opts.MinSyncInterval = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{db: db, audit: audit.NewLog(db, opts.Now), envs: map[string]*envState{}, log: opts.Log, now: opts.Now,
		opts: opts, ctx: ctx, cancel: cancel, started: opts.Now()}
	for _, e := range envs {
		if e.Name == "" {
			cancel()
			return nil, errors.New("clients: an environment needs a name")
		}
		if e.Upstream == nil && e.Problem == "" {
			e.Problem = "no self-service API is configured for this environment"
		}
		s.envs[e.Name] = &envState{Env: e}
		s.order = append(s.order, e.Name)
	}
	return s, nil
}

// Close stops background syncs and waits for them.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// goBackground runs f in the background unless the service is closing; it reports whether f
// was started.
func (s *Service) goBackground(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// Envs lists the environments in configuration order.
func (s *Service) Envs() []Env {
	out := make([]Env, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.envs[n].Env)
	}
	return out
}

func (s *Service) env(name string) (*envState, error) {
	e, ok := s.envs[name]
	if !ok {
		return nil, problem.New(problem.KindNotFound, "There is no environment called "+name+".")
	}
	return e, nil
}

func (e *envState) upstream() (Upstream, error) {
	if e.Upstream == nil {
		return nil, problem.New(problem.KindUpstream, fmt.Sprintf("%s cannot be reached: %s.", e.label(), e.Problem))
	}
	return e.Upstream, nil
}

func (e *envState) label() string {
	if e.Label != "" {
		return e.Label
	}
	return e.Name
}

// Who may do what. Someone outside an integration's team does not learn it exists.

func canSee(p *auth.Principal, teamID int64) bool {
	return p.IsAdmin() || teamID != 0 && p.TeamRoleOf(teamID) != ""
}

func canChange(p *auth.Principal, teamID int64) bool {
	if p.IsAdmin() {
		return true
	}
	r := p.TeamRoleOf(teamID)
	return teamID != 0 && (r == auth.TeamOwner || r == auth.TeamMember)
}

var errNoIntegration = problem.New(problem.KindNotFound, "There is no such integration, or you are not on its team.")

func errReadOnly(team string) error {
	return problem.New(problem.KindForbidden, "You can look at this integration but not change it: changes need an owner or member of team "+team+".")
}

// visible reads a mirror row the person may see.
func (s *Service) visible(ctx context.Context, p *auth.Principal, env, clientID string) (store.Integration, error) {
	it, err := s.db.Integration(ctx, env, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return it, errNoIntegration
	}
	if err != nil {
		return it, err
	}
	if !canSee(p, it.TeamID) {
		return it, errNoIntegration
	}
	return it, nil
}

// changeable reads a mirror row the person may change. Nobody changes the portal's own admin
// client through the portal.
func (s *Service) changeable(ctx context.Context, p *auth.Principal, env, clientID string) (store.Integration, error) {
	it, err := s.visible(ctx, p, env, clientID)
	if err != nil {
		return it, err
	}
	if e := s.envs[env]; e != nil && e.isPortalClient(clientID) {
		return it, errPortalClient(e)
	}
	if !canChange(p, it.TeamID) {
		return it, errReadOnly(it.TeamName)
	}
	return it, nil
}

// teamsFor lists the teams the person may give an integration to: their own where they are
// owner or member; every team for admins.
func (s *Service) teamsFor(ctx context.Context, p *auth.Principal) ([]Team, error) {
	if p.IsAdmin() {
		all, err := s.db.ListTeams(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]Team, 0, len(all))
		for _, t := range all {
			out = append(out, Team{ID: t.ID, Name: t.Name})
		}
		return out, nil
	}
	var out []Team
	for _, t := range p.Teams {
		if t.Role == auth.TeamOwner || t.Role == auth.TeamMember {
			out = append(out, Team{ID: t.TeamID, Name: t.TeamName})
		}
	}
	return out, nil
}

// Team is a team an integration can belong to.
type Team struct {
	ID   int64
	Name string
}
