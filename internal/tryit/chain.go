package tryit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
)

// DefaultRunTimeout bounds a whole RunAll; each upstream call is bounded by its client's own
// timeout as well.
const DefaultRunTimeout = 60 * time.Second

// Env is one environment's upstreams, as a chain uses them.
type Env struct {
	Name         string // tt02, prod
	Label        string
	Maskinporten *maskinporten.Client
	// Altinn is the platform paired with this Maskinporten; nil leaves out the exchange and
	// Storage steps.
	Altinn *altinn.Client
	// OtherIssuers are the other environments' Maskinporten issuers, to recognise a grant that
	// was made for one of them.
	OtherIssuers []string
	// TestToggle offers ?test=true on the exchange (tt02 only).
	TestToggle bool
	// RunTimeout bounds RunAll; 0 means DefaultRunTimeout.
	RunTimeout time.Duration
}

func (e Env) label() string {
	if e.Label != "" {
		return e.Label
	}
	return e.Name
}

// GrantRequest is what a person asks a grant for.
type GrantRequest struct {
	Scopes      []string
	Resource    []string // optional audience restriction
	ConsumerOrg string   // optional, for Altinn API delegation
	Lifetime    time.Duration
	Alg         string // RS256 (default), RS384 or RS512
}

// Preview is a grant before signing: its header and claims as they will be signed, and the
// exact signing input for a signer elsewhere (the browser) to sign.
type Preview struct {
	Header       json.RawMessage
	Claims       json.RawMessage
	SigningInput string // base64url(header) "." base64url(claims)
	Findings     []Finding
}

// Plan is what RunAll does after the grant: the token always, then the exchange when
// Exchange or Instances is set, then the first page of Instances when it is set.
type Plan struct {
	Exchange  bool
	Test      bool // ?test=true on the exchange, where offered
	Instances *altinn.InstanceQuery
}

// Chain runs the steps for one client in one environment and keeps, in memory only, the
// grant and the tokens each step hands on to the next. Steps run one at a time; a Chain is
// safe for concurrent use.
type Chain struct {
	env    Env
	target *Target
	now    func() time.Time

	mu          sync.Mutex
	grant       string
	mpToken     string
	altinnToken string
	page        *altinn.InstancePage
	query       *altinn.InstanceQuery
	steps       []Step
	last        map[string]Step // the latest full step of each name, in memory only, for a page
}

// NewChain starts a chain; target may be nil when the client is not known to the portal (the
// checks that need it are then skipped). now defaults to time.Now.
func NewChain(env Env, target *Target, now func() time.Time) *Chain {
	if now == nil {
		now = time.Now
	}
	return &Chain{env: env, target: target, now: now}
}

// Env is the chain's environment.
func (c *Chain) Env() Env { return c.env }

// Steps returns summaries of the steps run so far, in order: outcome, timing and findings,
// without requests, responses or secrets.
func (c *Chain) Steps() []Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.steps)
}

// context is what the explanations know.
func (c *Chain) context(now time.Time, sent bool) Context {
	mp := c.env.Maskinporten
	return Context{Env: c.env.Name, Issuer: mp.Issuer(), OtherIssuers: c.env.OtherIssuers, TokenURL: mp.TokenEndpoint(),
		Target: c.target, Now: now, Sent: sent}
}

// maxHistory bounds the steps a chain remembers.
const maxHistory = 1000

// record remembers a summary of s (outcome, timing, findings; no request, response body or
// secret) and returns s.
func (c *Chain) record(s Step) Step {
	s.Total = max(s.Total, 0)
	sum := Step{Name: s.Name, Title: s.Title, At: s.At, OK: s.OK, Error: s.Error, Status: s.Status, Total: s.Total,
		Upstream: s.Upstream, HasUpstream: s.HasUpstream, Sign: s.Sign, Findings: s.Findings}
	if s.Name == StepGrant && s.Response.Token != nil {
		// The grant's claims (never its value) say which scopes were tried.
		sum.Response.Token = &TokenView{Kind: s.Response.Token.Kind, Claims: s.Response.Token.Claims,
			Issued: s.Response.Token.Issued, Expires: s.Response.Token.Expires}
	}
	if len(c.steps) >= maxHistory {
		c.steps = slices.Delete(c.steps, 0, 1)
	}
	c.steps = append(c.steps, sum)
	if c.last == nil {
		c.last = map[string]Step{}
	}
	// A step makes the later steps' results stale: they no longer follow from it.
	if i := slices.Index(stepOrder, s.Name); i >= 0 {
		for _, later := range stepOrder[i+1:] {
			delete(c.last, later)
		}
	}
	// A platform GET is step 4's other choice, beside the instances: a new grant or token
	// makes it stale, and it makes nothing stale.
	if s.Name == StepGrant || s.Name == StepToken || s.Name == StepExchange {
		delete(c.last, StepPlatform)
	}
	c.last[s.Name] = s
	return s
}

var stepOrder = []string{StepGrant, StepToken, StepExchange, StepInstances, StepInstance, StepData}

// Last returns the latest full step with name (request, response and, for Revealed and
// Secret, its secrets), for a page that shows it again; false when none ran or the chain
// forgot its secrets.
func (c *Chain) Last(name string) (Step, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.last[name]
	return s, ok
}

// failed makes a step that failed before any call, with a reason.
func (c *Chain) failed(name, msg string, fs ...Finding) Step {
	s := newStep(name, c.now())
	s.Error = msg
	s.Findings = fs
	return c.record(s)
}

// refuse records a step refused before it could run, for callers outside the chain's lock.
func (c *Chain) refuse(name, msg string, fs ...Finding) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed(name, msg, fs...)
}

// claims builds a grant's claims for the chain's client.
func (c *Chain) claims(req GrantRequest, clientID string) (maskinporten.GrantClaims, error) {
	g := c.env.Maskinporten.Grant(clientID, req.Scopes...)
	g.Resource, g.ConsumerOrg, g.Lifetime = req.Resource, req.ConsumerOrg, req.Lifetime
	return g.Claims(c.now())
}

// Prepare shows the grant that Sign would make, signed with header h, and the signing input
// for a signer elsewhere. Findings say what the local checks expect Maskinporten to refuse.
func (c *Chain) Prepare(req GrantRequest, clientID string, h maskinporten.Header) (Preview, error) {
	if h.Alg == "" {
		h.Alg = maskinporten.RS256
	}
	if _, ok := hashOf(h.Alg); !ok {
		return Preview{}, fmt.Errorf("%w: algorithm %q is not RS256, RS384 or RS512", maskinporten.ErrInvalidGrant, h.Alg)
	}
	claims, err := c.claims(req, clientID)
	if err != nil {
		return Preview{}, err
	}
	hj, _ := json.Marshal(h)
	cj, _ := json.Marshal(claims)
	p := Preview{SigningInput: b64(hj) + "." + b64(cj)}
	p.Header, _ = json.MarshalIndent(h, "", "  ")
	p.Claims, _ = json.MarshalIndent(claims, "", "  ")
	// Checked as a grant with an empty signature: everything but the signature.
	for _, f := range CheckGrant(p.SigningInput+".AA", c.context(c.now(), true)) {
		if f.Code != GrantSignature {
			p.Findings = append(p.Findings, f)
		}
	}
	return p, nil
}

// Sign makes and signs a grant for the chain's client with s (step 1), timing the RSA
// signature on its own.
func (c *Chain) Sign(req GrantRequest, clientID string, s maskinporten.Signer) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	st := newStep(StepGrant, c.now())
	if req.Alg != "" {
		s.Alg = req.Alg
	}
	claims, err := c.claims(req, clientID)
	if err != nil {
		st.Error = grantProblem(err)
		st.Total = time.Since(start)
		return c.record(st)
	}
	signStart := time.Now()
	grant, err := s.Sign(claims)
	st.Sign = time.Since(signStart)
	if err != nil {
		st.Error = grantProblem(err)
		st.Total = time.Since(start)
		return c.record(st)
	}
	return c.record(c.useGrant(st, grant, start))
}

// UseGrant takes a grant signed elsewhere, in the browser or pasted (step 1). A private key
// pasted by mistake is refused without being read.
func (c *Chain) UseGrant(grant string) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	st := newStep(StepGrant, c.now())
	grant = strings.TrimSpace(grant)
	if LooksPrivate(grant) {
		st.Error = privateKeyMessage
		return c.record(st)
	}
	if len(grant) > 7 && strings.EqualFold(grant[:7], "bearer ") {
		grant = strings.TrimSpace(grant[7:])
	}
	if _, err := maskinporten.Decode(grant); err != nil {
		st.Findings = CheckGrant(grant, c.context(c.now(), true))
		st.Error = "This is not a signed JWT grant."
		st.Total = time.Since(start)
		return c.record(st)
	}
	return c.record(c.useGrant(st, grant, start))
}

// useGrant keeps a grant for the token step and forgets the tokens of the one before.
func (c *Chain) useGrant(st Step, grant string, start time.Time) Step {
	c.grant, c.mpToken, c.altinnToken, c.page, c.query = grant, "", "", nil, nil
	st.OK = true
	st.out = secret{placeholder: PlaceholderGrant, value: grant}
	st.Response.Token = viewToken(KindGrant, grant)
	st.Findings = CheckGrant(grant, c.context(c.now(), true))
	st.Total = time.Since(start)
	return st
}

func grantProblem(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, maskinporten.ErrInvalidGrant.Error()+": ")
	return "The grant cannot be made: " + msg + "."
}

// Token posts the grant to Maskinporten's token endpoint (step 2).
func (c *Chain) Token(ctx context.Context) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grant == "" {
		return c.failed(StepToken, "There is no grant yet: make one first (step 1).")
	}
	mp := c.env.Maskinporten
	start := time.Now()
	st := newStep(StepToken, c.now())
	sentAt := c.now()
	tr := &maskinporten.Trace{}
	tok, err := mp.Token(maskinporten.WithTrace(ctx, tr), c.grant)
	st.Total = time.Since(start)
	form := url.Values{"grant_type": {maskinporten.GrantType}}.Encode() + "&assertion=" + PlaceholderGrant
	st.fromTrace(tr.Calls(), form)
	st.in = secret{placeholder: PlaceholderGrant, value: c.grant}
	st.curlT = fmt.Sprintf("curl -sS -X POST %s \\\n  -H 'Content-Type: application/x-www-form-urlencoded' \\\n  --data-urlencode 'grant_type=%s' \\\n  --data-urlencode \"assertion=%s\"",
		shellQuote(mp.TokenEndpoint()), maskinporten.GrantType, PlaceholderGrant)
	st.Curl = st.curlT
	gc := c.context(sentAt, true)
	var mpErr *maskinporten.Error
	switch {
	case err == nil:
		st.OK = true
		c.mpToken, c.altinnToken, c.page, c.query = tok.AccessToken, "", nil, nil
		st.out = secret{placeholder: PlaceholderMaskinporten, value: tok.AccessToken}
		st.Response.Body = strings.ReplaceAll(string(tok.Raw), tok.AccessToken, PlaceholderMaskinporten)
		st.Response.Token = viewToken(KindMaskinporten, tok.AccessToken)
		st.Findings = tokenFindings(c.grant, tok)
	case errors.As(err, &mpErr):
		st.Error = mpErr.Error()
		st.Response.Body = errorBody(mpErr)
		st.Findings = ExplainMaskinporten(mpErr, c.grant, gc)
	default:
		f := ExplainTransport(err, "Maskinporten", st.Total)
		st.Error = f.Title + "."
		st.Findings = append([]Finding{f}, blocking(CheckGrant(c.grant, gc))...)
	}
	return c.record(st)
}

// tokenFindings notes what is worth knowing about an issued token.
func tokenFindings(grant string, tok *maskinporten.TokenResponse) []Finding {
	var fs []Finding
	asked := []string{}
	if d, err := maskinporten.Decode(grant); err == nil {
		asked = d.Scopes()
	}
	got := strings.Fields(tok.Scope)
	var missing []string
	for _, s := range asked {
		if !slices.Contains(got, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 && len(got) > 0 {
		fs = append(fs, Finding{Code: TokenNarrowed, Severity: SeverityWarning, Title: "Maskinporten issued fewer scopes than asked: " + strings.Join(missing, ", ") + " left out",
			Cause: "Maskinporten may issue the permitted subset of the requested scopes instead of refusing.",
			Fix:   "Check that those scopes are on the client and that the organisation has access to them."})
	}
	if !strings.Contains(tok.Scope, "altinn:serviceowner") {
		fs = append(fs, Finding{Code: TokenNoServiceOwn, Severity: SeverityInfo, Title: "The token has no altinn:serviceowner scope",
			Cause: "Altinn will exchange it, but without urn:altinn:org: Storage will not see a service owner.",
			Fix:   "To read instances, ask for altinn:serviceowner/instances.read."})
	}
	return fs
}

// errorBody rebuilds a token error body for display (it holds no secret).
func errorBody(e *maskinporten.Error) string {
	if e.Code == "" {
		return e.Body
	}
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		URI         string `json:"error_uri,omitempty"`
	}{e.Code, e.Description, e.URI})
	return string(b)
}

func blocking(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity == SeverityError {
			out = append(out, f)
		}
	}
	return out
}

// Exchange trades the Maskinporten token for an Altinn token (step 3). test adds ?test=true,
// offered in tt02 only.
func (c *Chain) Exchange(ctx context.Context, test bool) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	al := c.env.Altinn
	switch {
	case al == nil:
		return c.failed(StepExchange, "No Altinn platform is configured for "+c.env.label()+".")
	case c.mpToken == "":
		return c.failed(StepExchange, "There is no Maskinporten token yet: get one first (step 2).")
	case test && !c.env.TestToggle:
		return c.failed(StepExchange, "test=true is offered in tt02 only.")
	}
	start := time.Now()
	st := newStep(StepExchange, c.now())
	tr := &maskinporten.Trace{}
	tok, err := al.Exchange(maskinporten.WithTrace(ctx, tr), c.mpToken, test)
	st.Total = time.Since(start)
	st.fromTrace(tr.Calls(), "")
	u := al.ExchangeURL()
	if test {
		u += "?test=true"
	}
	st.in = secret{placeholder: PlaceholderMaskinporten, value: c.mpToken}
	st.curlT = fmt.Sprintf("curl -sS %s \\\n  -H \"Authorization: Bearer %s\"", shellQuote(u), PlaceholderMaskinporten)
	st.Curl = st.curlT
	var aErr *altinn.Error
	switch {
	case err == nil:
		st.OK = true
		c.altinnToken, c.page, c.query = tok, nil, nil
		st.out = secret{placeholder: PlaceholderAltinn, value: tok}
		st.Response.Body = PlaceholderAltinn
		st.Response.Token = viewToken(KindAltinn, tok)
		st.Findings = CheckAltinnToken(tok)
	case errors.As(err, &aErr):
		st.Error = aErr.Error()
		st.Response.Body = errorText(aErr)
		st.Findings = ExplainExchange(aErr, c.mpToken, c.context(c.now(), true))
	default:
		f := ExplainTransport(err, "Altinn's token exchange", st.Total)
		st.Error = f.Title + "."
		st.Findings = []Finding{f}
	}
	return c.record(st)
}

func errorText(e *altinn.Error) string {
	if e.Problem != nil {
		b, _ := json.Marshal(e.Problem)
		return string(b)
	}
	return e.Text
}

// RunAll runs the chain from the grant: grant makes step 1 (signing it or taking one signed
// elsewhere), then the token, the exchange and the instances as plan says. It stops at the
// first step that fails; the whole run is bounded by the environment's RunTimeout.
func (c *Chain) RunAll(ctx context.Context, plan Plan, grant func() Step) []Step {
	timeout := c.env.RunTimeout
	if timeout <= 0 {
		timeout = DefaultRunTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []Step
	run := func(s Step) bool {
		out = append(out, s)
		return s.OK
	}
	if !run(grant()) || !run(c.Token(ctx)) {
		return out
	}
	if !plan.Exchange && plan.Instances == nil {
		return out
	}
	if !run(c.Exchange(ctx, plan.Test && c.env.TestToggle)) || plan.Instances == nil {
		return out
	}
	run(c.Instances(ctx, *plan.Instances))
	return out
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
