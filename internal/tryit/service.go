// Package tryit runs the access chain of one Maskinporten integration live, step by step, for
// a person in the portal or a script: a JWT grant, Maskinporten's token, Altinn's token
// exchange, and Storage's instances, instance details and data downloads. Each step comes
// back as a Step a page or a JSON line can show (request with secrets masked, status, timing
// split between the portal and the upstream, response, a curl command), and every failure is
// explained in words: what Maskinporten, the exchange or Storage said, and what the local
// checks of the grant found (Explain does the same for text a person pastes).
//
// Grants and tokens live in memory only, for the person who asked: never in the database, the
// logs or the audit trail. A try is audited once, as integration.try, with who, where, the
// scopes and each step's outcome and timing.
package tryit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"portal/internal/altinn"
	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/maskinporten"
	"portal/internal/problem"
)

// ActionTry is the audit action of a try.
const ActionTry = "integration.try"

// Defaults for Config.
const (
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxOpen     = 500
	// DefaultMaxPerPerson bounds one person's open tries; a sixth try ends their oldest.
	DefaultMaxPerPerson = 5
	maxAuditedSteps     = 50
)

// How a grant was signed, for the audit trail and the page.
const (
	SourceKept    = "kept"    // server-side, with a key the portal keeps
	SourceBrowser = "browser" // in the person's browser; the key never left their machine
	SourcePasted  = "pasted"  // signed elsewhere and pasted
)

// Config configures New.
type Config struct {
	Envs    []Env
	Clients *clients.Service
	Audit   *audit.Log
	Log     *slog.Logger
	Now     func() time.Time
	// IdleTimeout is how long an unfinished try stays open between steps; then it is audited
	// and forgotten. Default 15 minutes.
	IdleTimeout time.Duration
	// MaxOpen bounds the tries held open at once; the oldest is finished first. Default 500.
	MaxOpen int
	// MaxPerPerson bounds one person's open tries: starting one more finishes their oldest
	// (audited), so each tab or script run still gets a try. Default 5.
	MaxPerPerson int
}

// Service runs tries for people in the portal.
type Service struct {
	envs    map[string]Env
	clients *clients.Service
	audit   *audit.Log
	log     *slog.Logger
	now     func() time.Time
	idle    time.Duration
	maxOpen int
	perUser int

	mu   sync.Mutex
	open map[string]*Try
	apps map[string][]string // env -> appIds that returned instances, newest first (suggestions)
}

// maxSeenApps bounds the suggestions kept per environment.
const maxSeenApps = 20

// OpenProgress says which steps succeeded in the tries of a team's integrations in env that are
// still open (their audit event is written when they end), for the onboarding checklist.
func (s *Service) OpenProgress(env string, teamID int64) map[string]bool {
	out := map[string]bool{}
	if s == nil {
		return out
	}
	s.mu.Lock()
	var tries []*Try
	for _, t := range s.open {
		if t.env.Name == env && t.target.TeamID == teamID {
			tries = append(tries, t)
		}
	}
	s.mu.Unlock()
	for _, t := range tries {
		for _, st := range t.Steps() {
			if st.OK {
				out[st.Name] = true
			}
		}
	}
	return out
}

// SeenApps lists the appIds whose instances were read in env since the portal started, newest
// first, to suggest on the try page.
func (s *Service) SeenApps(env string) []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.apps[env])
}

func (s *Service) sawApp(env, app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.DeleteFunc(slices.Clone(s.apps[env]), func(a string) bool { return a == app })
	s.apps[env] = append([]string{app}, list[:min(len(list), maxSeenApps-1)]...)
}

// New builds the service. Every environment needs a Maskinporten client.
func New(cfg Config) (*Service, error) {
	if cfg.Clients == nil || cfg.Audit == nil {
		return nil, errors.New("tryit: the integrations service and the audit log are required")
	}
	s := &Service{envs: map[string]Env{}, clients: cfg.Clients, audit: cfg.Audit, log: cfg.Log, now: cfg.Now,
		idle: cfg.IdleTimeout, maxOpen: cfg.MaxOpen, perUser: cfg.MaxPerPerson, open: map[string]*Try{}, apps: map[string][]string{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.idle <= 0 {
		s.idle = DefaultIdleTimeout
	}
	if s.maxOpen <= 0 {
		s.maxOpen = DefaultMaxOpen
	}
	if s.perUser <= 0 {
		s.perUser = DefaultMaxPerPerson
	}
	for _, e := range cfg.Envs {
		if e.Name == "" || e.Maskinporten == nil {
			return nil, fmt.Errorf("tryit: environment %q needs a name and a Maskinporten client", e.Name)
		}
		s.envs[e.Name] = e
	}
	return s, nil
}

// Try is one person's try of one integration: the steps run so far and, in memory only, the
// grant and tokens they produced. A page keeps its ID and resumes it for the next step.
type Try struct {
	ID string

	svc    *Service
	userID int64 // whose try it is; nobody else resumes it
	meta   audit.Meta
	env    Env
	target clients.TryTarget
	chain  *Chain

	mu       sync.Mutex
	p        *auth.Principal // as loaded for the latest request that resumed the try
	lastUsed time.Time
	sources  []string
	finished bool
	audited  int // steps already in the audit trail (a finished Run all is audited at once)
}

// Start opens a try of an integration for p, who must be allowed to change it (viewers may
// not try). The try stays open for further steps until Finish, until it is idle too long,
// until p's rights change (DropPerson) or until p starts more than MaxPerPerson others.
func (s *Service) Start(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string) (*Try, error) {
	if p == nil {
		return nil, problem.New(problem.KindUnauthenticated, "Sign in to try an integration.")
	}
	e, ok := s.envs[env]
	if !ok {
		return nil, problem.New(problem.KindNotFound, "There is no environment called "+env+" to try in.")
	}
	target, err := s.clients.TryTarget(ctx, p, env, clientID)
	if err != nil {
		return nil, err
	}
	if !target.Active {
		return nil, problem.New(problem.KindConflict, "This integration is inactive: Maskinporten issues no tokens for it.")
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	t := &Try{ID: hex.EncodeToString(id[:]), svc: s, userID: p.UserID, p: p, meta: m, env: e, target: target, lastUsed: s.now()}
	t.chain = NewChain(e, targetOf(target), s.now)
	s.sweep(ctx)
	s.mu.Lock()
	s.open[t.ID] = t
	done := s.overPerson(p.UserID)
	s.mu.Unlock()
	s.finishAll(ctx, done, "audit a try ended by a newer one")
	return t, nil
}

// overPerson takes userID's oldest tries out while they have more than perUser open. The
// caller holds s.mu and finishes what it returns.
func (s *Service) overPerson(userID int64) []*Try {
	var mine []*Try
	for _, t := range s.open {
		if t.userID == userID {
			mine = append(mine, t)
		}
	}
	if len(mine) <= s.perUser {
		return nil
	}
	slices.SortFunc(mine, func(a, b *Try) int { return a.used().Compare(b.used()) })
	done := mine[:len(mine)-s.perUser]
	for _, t := range done {
		delete(s.open, t.ID)
	}
	return done
}

func (s *Service) finishAll(ctx context.Context, done []*Try, what string) {
	for _, t := range done {
		if err := t.finish(context.WithoutCancel(ctx)); err != nil {
			s.log.Error(what, "env", t.env.Name, "client_id", t.target.ClientID, "err", err)
		}
	}
}

// DropPerson finishes (and audits) every open try of userID, forgetting its grant and tokens.
// The auth service calls it after a change that may take rights away from the person.
func (s *Service) DropPerson(userID int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	var done []*Try
	for id, t := range s.open {
		if t.userID == userID {
			done = append(done, t)
			delete(s.open, id)
		}
	}
	s.mu.Unlock()
	s.finishAll(context.Background(), done, "audit a try ended by a change of its person's rights")
}

func targetOf(t clients.TryTarget) *Target {
	return &Target{ClientID: t.ClientID, OrgNo: t.OrgNo, Scopes: t.Scopes, Keys: t.Keys, Kept: t.Kept, Usable: t.Usable}
}

// Resume returns p's open try with id, once p is found to be still allowed to try its
// integration: p is the person as loaded for this request, with their current role and
// memberships, checked against the integration's current team. A try whose person has lost
// the right is finished on the spot. The steps that follow act as p (a kept key is opened for
// p), never as the person the try started with.
func (s *Service) Resume(ctx context.Context, p *auth.Principal, id string) (*Try, error) {
	s.sweep(ctx)
	s.mu.Lock()
	t, ok := s.open[id]
	s.mu.Unlock()
	if !ok || p == nil || t.userID != p.UserID {
		return nil, problem.New(problem.KindNotFound, "This try has ended (tries close after a while without a step). Start a new one.")
	}
	if err := s.clients.MayTry(ctx, p, t.env.Name, t.target.ClientID); err != nil {
		if pe, isProblem := problem.As(err); isProblem && (pe.Kind == problem.KindNotFound || pe.Kind == problem.KindForbidden) {
			if ferr := t.Finish(context.WithoutCancel(ctx)); ferr != nil {
				s.log.Error("audit a try whose person lost the right to it", "try", t.ID, "err", ferr)
			}
		}
		return nil, err
	}
	t.mu.Lock()
	t.p = p
	t.lastUsed = s.now()
	t.mu.Unlock()
	return t, nil
}

// principal is the person the try acts as: the one loaded for the latest Resume.
func (t *Try) principal() *auth.Principal {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.p
}

// sweep finishes tries idle longer than IdleTimeout, and the oldest when too many are open.
func (s *Service) sweep(ctx context.Context) {
	now := s.now()
	s.mu.Lock()
	var done []*Try
	for id, t := range s.open {
		if now.Sub(t.used()) > s.idle {
			done = append(done, t)
			delete(s.open, id)
		}
	}
	for len(s.open) >= s.maxOpen {
		var oldest *Try
		for _, t := range s.open {
			if oldest == nil || t.used().Before(oldest.used()) {
				oldest = t
			}
		}
		done = append(done, oldest)
		delete(s.open, oldest.ID)
	}
	s.mu.Unlock()
	for _, t := range done {
		if err := t.finish(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("audit an idle try", "env", t.env.Name, "client_id", t.target.ClientID, "err", err)
		}
	}
}

// Close finishes every open try, auditing each.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	open := s.open
	s.open = map[string]*Try{}
	s.mu.Unlock()
	var errs []error
	for _, t := range open {
		errs = append(errs, t.finish(ctx))
	}
	return errors.Join(errs...)
}

func (t *Try) used() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastUsed
}

func (t *Try) touch() {
	t.mu.Lock()
	t.lastUsed = t.svc.now()
	t.mu.Unlock()
}

// Prepare shows the grant before signing: header (with kid) and claims, and the signing input
// a browser signs. The scopes must be the client's.
func (t *Try) Prepare(req GrantRequest, kid string) (Preview, error) {
	t.touch()
	if err := t.checkRequest(req); err != nil {
		return Preview{}, err
	}
	k, ok := (&Target{Keys: t.target.Keys}).key(kid)
	if !ok {
		return Preview{}, problem.Invalid("Pick one of the integration's keys.", map[string]string{"kid": "not a key of this integration"})
	}
	if req.Alg == "" {
		req.Alg = k.Alg
	}
	p, err := t.chain.Prepare(req, t.target.ClientID, maskinporten.Header{Alg: req.Alg, Kid: kid})
	if err != nil {
		return Preview{}, problem.Invalid(grantProblem(err), nil)
	}
	return p, nil
}

func (t *Try) checkRequest(req GrantRequest) error {
	fields := map[string]string{}
	if len(req.Scopes) == 0 {
		fields["scopes"] = "pick at least one scope"
	}
	var foreign []string
	for _, s := range req.Scopes {
		if !slices.Contains(t.target.Scopes, s) {
			foreign = append(foreign, s)
		}
	}
	if len(foreign) > 0 {
		fields["scopes"] = "not on this integration: " + strings.Join(foreign, ", ")
	}
	if req.Lifetime < 0 || req.Lifetime > maskinporten.MaxGrantLifetime {
		fields["lifetime"] = "at most 120 seconds"
	}
	if len(fields) > 0 {
		return problem.Invalid("The grant cannot be made as asked.", fields)
	}
	return nil
}

// SignWithKeptKey makes the grant and signs it server-side with the key the portal keeps for
// kid (step 1). The key is opened for this signature only.
func (t *Try) SignWithKeptKey(ctx context.Context, req GrantRequest, kid string) Step {
	t.touch()
	if err := t.checkRequest(req); err != nil {
		f := Finding{Code: GrantScopeNotOnClient, Severity: SeverityError, Title: "The grant cannot be made as asked",
			Cause: problemMessage(err), Fix: "Ask for some of the integration's own scopes, for at most 120 seconds."}
		if pe, ok := problem.As(err); ok && pe.Fields["scopes"] == "" {
			f.Code = GrantLifetime
		}
		return t.chain.refuse(StepGrant, problemMessage(err), f)
	}
	key, err := t.svc.clients.KeptKey(ctx, t.principal(), t.env.Name, t.target.ClientID, kid)
	if err != nil {
		msg := problemMessage(err)
		if _, ok := problem.As(err); !ok {
			t.svc.log.Error("open a kept key for a try", "env", t.env.Name, "client_id", t.target.ClientID, "kid", kid, "err", err)
			msg = "The portal could not open the key it keeps; its log has the details."
		}
		return t.chain.refuse(StepGrant, msg, Finding{Code: GrantKeyNotKept, Severity: SeverityError,
			Title: "The portal cannot sign with " + kid, Cause: msg,
			Fix: "Pick a key the portal keeps, or sign in the browser (or elsewhere) with a key you hold."})
	}
	alg := req.Alg
	if alg == "" {
		alg = string(key.Alg)
	}
	t.addSource(SourceKept + ":" + kid)
	return t.chain.Sign(req, t.target.ClientID, maskinporten.Signer{Key: key, KeyID: kid, Alg: alg})
}

func problemMessage(err error) string {
	if pe, ok := problem.As(err); ok {
		msg := pe.Message
		for _, f := range slices.Sorted(maps.Keys(pe.Fields)) {
			msg += " " + f + ": " + pe.Fields[f] + "."
		}
		return msg
	}
	return err.Error()
}

// UseGrant takes a grant signed in the browser (SourceBrowser) or pasted (SourcePasted) as
// step 1.
func (t *Try) UseGrant(grant, source string) Step {
	t.touch()
	if source != SourceBrowser {
		source = SourcePasted
	}
	t.addSource(source)
	return t.chain.UseGrant(grant)
}

func (t *Try) addSource(s string) {
	t.mu.Lock()
	if !slices.Contains(t.sources, s) {
		t.sources = append(t.sources, s)
	}
	t.mu.Unlock()
}

// Token gets a Maskinporten token with the grant (step 2).
func (t *Try) Token(ctx context.Context) Step { t.touch(); return t.chain.Token(ctx) }

// Exchange gets an Altinn token with the Maskinporten token (step 3).
func (t *Try) Exchange(ctx context.Context, test bool) Step {
	t.touch()
	return t.chain.Exchange(ctx, test)
}

// Instances queries Storage (step 4).
func (t *Try) Instances(ctx context.Context, q altinn.InstanceQuery) Step {
	t.touch()
	st := t.chain.Instances(ctx, q)
	if st.OK && q.AppID != "" {
		t.svc.sawApp(t.env.Name, q.AppID)
	}
	return st
}

// PlatformGet sends a GET with the Altinn token to a path on the platform host (step 4's
// other choice).
func (t *Try) PlatformGet(ctx context.Context, pathQuery string) Step {
	t.touch()
	return t.chain.PlatformGet(ctx, pathQuery)
}

// NextInstances shows the next page of the last query.
func (t *Try) NextInstances(ctx context.Context) Step { t.touch(); return t.chain.NextInstances(ctx) }

// Instance shows one instance with its data elements.
func (t *Try) Instance(ctx context.Context, id string) Step {
	t.touch()
	return t.chain.Instance(ctx, id)
}

// Download opens a data element for streaming; the caller copies the body through and closes
// it.
func (t *Try) Download(ctx context.Context, instanceID, dataID string) (Step, *altinn.Download) {
	t.touch()
	return t.chain.Download(ctx, instanceID, dataID)
}

// Last returns the latest full step with name, to show it again (or Revealed) to the person
// who ran it.
func (t *Try) Last(name string) (Step, bool) { t.touch(); return t.chain.Last(name) }

// Steps lists the steps run so far.
func (t *Try) Steps() []Step { return t.chain.Steps() }

// RunGrant says how RunAll makes its grant: signed with the kept key KID, or the Assertion
// signed elsewhere (Source SourceBrowser or SourcePasted).
type RunGrant struct {
	Request   GrantRequest
	KID       string
	Assertion string
	Source    string
}

// RunAll runs the grant, token, exchange and instances in order, as plan says, stopping at the
// first failure; the whole run is bounded (Env.RunTimeout).
func (t *Try) RunAll(ctx context.Context, g RunGrant, plan Plan) []Step {
	t.touch()
	steps := t.chain.RunAll(ctx, plan, func() Step {
		if g.Assertion != "" {
			return t.UseGrant(g.Assertion, g.Source)
		}
		return t.SignWithKeptKey(ctx, g.Request, g.KID)
	})
	// A run ends here, so it is audited now; steps the person takes afterwards on the same
	// try are audited when the try ends.
	if err := t.flush(context.WithoutCancel(ctx)); err != nil {
		t.svc.log.Error("audit a try", "try", t.ID, "err", err)
	}
	return steps
}

// flush audits the steps not audited yet, keeping the try open.
func (t *Try) flush(ctx context.Context) error {
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return nil
	}
	steps := t.chain.Steps()
	from := t.audited
	t.audited = len(steps)
	sources := slices.Clone(t.sources)
	t.mu.Unlock()
	if from >= len(steps) {
		return nil
	}
	return t.svc.audit.Append(ctx, auditEvent(t.meta, t.env.Name, t.target, steps[from:], sources))
}

// RunAll opens a try, runs it all and finishes it, in one call.
func (s *Service) RunAll(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string, g RunGrant, plan Plan) ([]Step, error) {
	t, err := s.Start(ctx, p, m, env, clientID)
	if err != nil {
		return nil, err
	}
	steps := t.RunAll(ctx, g, plan)
	return steps, t.Finish(ctx)
}

// Explain is Explain for a person in the portal: it knows the environment's issuers and, when
// clientID (or the pasted grant or token) names an integration p may try, that integration's
// keys and scopes.
func (s *Service) Explain(ctx context.Context, p *auth.Principal, env, clientID, text string) (Explanation, error) {
	e, ok := s.envs[env]
	if !ok {
		return Explanation{}, problem.New(problem.KindNotFound, "There is no environment called "+env+".")
	}
	c := Context{Env: e.Name, Issuer: e.Maskinporten.Issuer(), OtherIssuers: e.OtherIssuers,
		TokenURL: e.Maskinporten.TokenEndpoint(), Now: s.now()}
	if clientID != "" {
		t, err := s.clients.TryTarget(ctx, p, env, clientID)
		if err != nil {
			return Explanation{}, err
		}
		c.Target = targetOf(t)
	}
	x, err := Explain(text, c)
	if err != nil {
		return Explanation{}, problem.Wrap(problem.KindInvalid, err.Error(), err)
	}
	if c.Target == nil && x.ClientID != "" {
		// The grant names its client: explain again knowing it, if p may try it. Otherwise
		// the checks that need it are left out, and nothing tells whether it exists.
		if t, err := s.clients.TryTarget(ctx, p, env, x.ClientID); err == nil {
			c.Target = targetOf(t)
			if again, err := Explain(text, c); err == nil {
				x = again
			}
		}
	}
	return x, nil
}

// Env returns a configured environment.
func (s *Service) Env(name string) (Env, bool) {
	e, ok := s.envs[name]
	return e, ok
}
