// Package identity signs people in through OpenID Providers (Entra ID, Ansattporten, the
// simulated one): the authorization code flow with PKCE, state and nonce, ID token
// validation (go-oidc), and the rules that map claims to the portal's roles and teams. The
// accounts themselves stay with auth, which matches people by (issuer, subject).
package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/problem"
	"portal/internal/store"
)

// ProviderConfig is one OpenID Provider people may sign in through.
type ProviderConfig struct {
	Name         string // the URL segment: /login/oidc/{name}
	DisplayName  string // "Sign in with {display name}"
	Issuer       string
	ClientID     string
	ClientSecret string // client_secret_basic; or:
	// PrivateKey (PEM, PKCS#8 or PKCS#1 RSA, or EC) authenticates with private_key_jwt; KeyID
	// is its kid; AssertionAudience the assertion's aud (default the issuer, as Ansattporten
	// wants; Entra wants the token endpoint: set "token_endpoint").
	PrivateKey        []byte
	KeyID             string
	AssertionAudience string
	Scopes            []string // default openid profile email
	// ACRValues are sent as acr_values and the ID token's acr must be one of them.
	ACRValues            []string
	AuthorizationDetails json.RawMessage // sent as authorization_details, e.g. Ansattporten's
	ExtraParams          map[string]string
	Rules                []Rule
	// Unmatched says what happens to a first-time person no rule matches: "refuse" (default)
	// or "approval" (an account waiting for an administrator).
	Unmatched string
	Simulated bool // the built-in simulator: marked as such wherever it appears
}

// Check validates a provider's configuration; the message names the field to fix.
func (c ProviderConfig) Check() error {
	switch {
	case c.Name == "" || strings.Trim(c.Name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
		return fmt.Errorf("provider name %q: use lower-case letters, digits and '-'", c.Name)
	case c.Issuer == "":
		return fmt.Errorf("provider %s: issuer is required", c.Name)
	case c.ClientID == "":
		return fmt.Errorf("provider %s: client_id is required", c.Name)
	case c.ClientSecret == "" && len(c.PrivateKey) == 0:
		return fmt.Errorf("provider %s: set client_secret, or private_key_file for private_key_jwt", c.Name)
	case c.ClientSecret != "" && len(c.PrivateKey) > 0:
		return fmt.Errorf("provider %s: set client_secret or private_key_file, not both", c.Name)
	case c.Unmatched != "" && c.Unmatched != "refuse" && c.Unmatched != "approval":
		return fmt.Errorf("provider %s: unmatched must be refuse or approval", c.Name)
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("provider %s: issuer %q is not an http(s) URL", c.Name, c.Issuer)
	}
	for k := range c.ExtraParams {
		switch k {
		case "state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri", "client_id", "response_type", "scope",
			"acr_values", "authorization_details":
			return fmt.Errorf("provider %s: extra_params may not set %s (the portal sets it; acr_values and authorization_details have their own keys)", c.Name, k)
		}
	}
	if len(c.AuthorizationDetails) > 0 && !json.Valid(c.AuthorizationDetails) {
		return fmt.Errorf("provider %s: authorization_details is not valid JSON", c.Name)
	}
	if len(c.PrivateKey) > 0 {
		if _, err := parseKey(c.PrivateKey); err != nil {
			return fmt.Errorf("provider %s: private key: %w", c.Name, err)
		}
	}
	for i, r := range c.Rules {
		if err := r.check(); err != nil {
			return fmt.Errorf("provider %s, rule %d: %w", c.Name, i+1, err)
		}
	}
	return nil
}

// Options configure the service.
type Options struct {
	PublicURL string // the portal's URL; redirect URIs hang below it
	// HTTPClient talks to the providers; its Timeout bounds discovery, JWKS and token calls
	// (default 10 s).
	HTTPClient *http.Client
	FlowTTL    time.Duration // how long a started sign-in may take, default 10 min
	Now        func() time.Time
	Log        *slog.Logger
}

// Service signs people in through the configured providers.
type Service struct {
	db        *store.DB
	auth      *auth.Service
	opts      Options
	providers []*provider
}

type provider struct {
	cfg ProviderConfig
	key crypto.Signer

	mu        sync.Mutex
	op        *oidc.Provider // discovered once, then cached (go-oidc caches the keys)
	failedAt  time.Time
	endSess   string
	discovery error
}

// New returns the service; each provider's configuration must pass Check.
func New(db *store.DB, a *auth.Service, cfgs []ProviderConfig, opts Options) (*Service, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.FlowTTL == 0 {
		opts.FlowTTL = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, auth: a, opts: opts}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if err := c.Check(); err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("provider %s is configured twice", c.Name)
		}
		seen[c.Name] = true
		p := &provider{cfg: c}
		if len(c.PrivateKey) > 0 {
			p.key, _ = parseKey(c.PrivateKey)
		}
		s.providers = append(s.providers, p)
	}
	return s, nil
}

// Provider is a provider as the sign-in page lists it.
type Provider struct {
	Name        string
	DisplayName string
	Simulated   bool
}

// Providers lists the configured providers in configuration order.
func (s *Service) Providers() []Provider {
	if s == nil {
		return nil
	}
	out := make([]Provider, 0, len(s.providers))
	for _, p := range s.providers {
		out = append(out, Provider{Name: p.cfg.Name, DisplayName: p.cfg.DisplayName, Simulated: p.cfg.Simulated})
	}
	return out
}

var errUnknownProvider = problem.New(problem.KindNotFound, "There is no such sign-in provider. Go back to the sign-in page and choose one of those listed.")

func (s *Service) provider(name string) (*provider, error) {
	if s != nil {
		for _, p := range s.providers {
			if p.cfg.Name == name {
				return p, nil
			}
		}
	}
	return nil, errUnknownProvider
}

func (s *Service) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, s.opts.HTTPClient)
}

// discover fetches the provider's metadata once and caches it; a failure is retried at most
// every 30 s, so a provider that is down does not hold every sign-in page.
func (s *Service) discover(ctx context.Context, p *provider) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.op != nil {
		return p.op, nil
	}
	if p.discovery != nil && s.opts.Now().Sub(p.failedAt) < 30*time.Second {
		return nil, p.discovery
	}
	// The context carries the bounded client only, so the key set go-oidc keeps outlives
	// this request.
	op, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), s.opts.HTTPClient), p.cfg.Issuer)
	if err != nil {
		s.opts.Log.Warn("provider discovery failed", "provider", p.cfg.Name, "err", err)
		p.discovery = problem.Wrap(problem.KindUnavailable, p.cfg.DisplayName+" does not answer at the moment. Try again in a minute, or sign in with a password.", err)
		p.failedAt = s.opts.Now()
		return nil, p.discovery
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = op.Claims(&meta)
	p.op, p.endSess, p.discovery = op, meta.EndSession, nil
	return op, nil
}

func (s *Service) redirectURI(p *provider) string {
	return strings.TrimRight(s.opts.PublicURL, "/") + "/login/oidc/" + p.cfg.Name + "/callback"
}

func (s *Service) oauth(p *provider, op *oidc.Provider) *oauth2.Config {
	scopes := p.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	ep := op.Endpoint()
	if p.key != nil {
		ep.AuthStyle = oauth2.AuthStyleInParams
	} else {
		ep.AuthStyle = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: ep,
		RedirectURL: s.redirectURI(p), Scopes: scopes}
}

func random() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Begin starts a sign-in at the provider: it records state, nonce and PKCE verifier and
// returns the provider's authorization URL and the state, which the caller binds to the
// browser (a cookie) so a callback from another browser is refused.
func (s *Service) Begin(ctx context.Context, name, next string) (authURL, state string, err error) {
	p, err := s.provider(name)
	if err != nil {
		return "", "", err
	}
	op, err := s.discover(ctx, p)
	if err != nil {
		return "", "", err
	}
	state, err = random()
	if err != nil {
		return "", "", err
	}
	nonce, err := random()
	if err != nil {
		return "", "", err
	}
	verifier := oauth2.GenerateVerifier()
	now := s.opts.Now().UTC()
	if err := s.db.InsertOIDCFlow(ctx, store.OIDCFlow{StateHash: hash(state), Provider: name, Nonce: nonce, Verifier: verifier,
		Next: next, CreatedAt: now, ExpiresAt: now.Add(s.opts.FlowTTL)}); err != nil {
		return "", "", err
	}
	params := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if len(p.cfg.ACRValues) > 0 {
		params = append(params, oauth2.SetAuthURLParam("acr_values", strings.Join(p.cfg.ACRValues, " ")))
	}
	if len(p.cfg.AuthorizationDetails) > 0 {
		params = append(params, oauth2.SetAuthURLParam("authorization_details", string(p.cfg.AuthorizationDetails)))
	}
	for k, v := range p.cfg.ExtraParams {
		params = append(params, oauth2.SetAuthURLParam(k, v))
	}
	return s.oauth(p, op).AuthCodeURL(state, params...), state, nil
}

// Callback is what came back from the provider to the redirect URI.
type Callback struct {
	State       string // from the query
	BoundState  string // from the browser's cookie
	Code        string
	Error       string // error and error_description, when the provider refused
	Description string
}

// Result is a completed sign-in.
type Result struct {
	User     store.User
	Next     string
	Provider string
}

var errFlow = problem.New(problem.KindInvalid,
	"This sign-in could not be completed: it was started in another browser or tab, has expired, or was used already. Start again from the sign-in page.")

// errToken is said for every way an ID token fails validation; the log says which.
var errToken = problem.New(problem.KindUnauthenticated,
	"The identity provider's answer could not be verified, so you are not signed in. Start again from the sign-in page; if it keeps happening, tell an administrator.")

// Complete finishes a sign-in: the state must match the browser's and a flow not yet used;
// the code is exchanged with the verifier; the ID token's signature, issuer, audience,
// expiry, nonce (and acr, when required) are checked; then the rules decide who gets in.
// Every refusal is audited.
func (s *Service) Complete(ctx context.Context, name string, cb Callback, m audit.Meta) (Result, error) {
	p, err := s.provider(name)
	if err != nil {
		return Result{}, err
	}
	if cb.State == "" || cb.BoundState == "" || cb.State != cb.BoundState {
		return Result{}, s.refuse(ctx, p, m, "state does not match the browser's", errFlow)
	}
	flow, err := s.db.TakeOIDCFlow(ctx, hash(cb.State))
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, s.refuse(ctx, p, m, "unknown or used state", errFlow)
	}
	if err != nil {
		return Result{}, err
	}
	if flow.Provider != name || !s.opts.Now().Before(flow.ExpiresAt) {
		return Result{}, s.refuse(ctx, p, m, "state of another provider, or expired", errFlow)
	}
	if cb.Error != "" {
		msg := "The identity provider did not sign you in"
		if cb.Error == "access_denied" {
			msg = "You cancelled the sign-in, or the identity provider refused it"
		}
		return Result{}, s.refuse(ctx, p, m, "provider answered "+cb.Error,
			problem.New(problem.KindForbidden, msg+". Start again from the sign-in page, or sign in with a password."))
	}
	if cb.Code == "" {
		return Result{}, s.refuse(ctx, p, m, "no code", errFlow)
	}
	op, err := s.discover(ctx, p)
	if err != nil {
		return Result{}, err
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(flow.Verifier)}
	if p.key != nil {
		assertion, err := s.clientAssertion(p, op)
		if err != nil {
			return Result{}, err
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", assertion))
	}
	tok, err := s.oauth(p, op).Exchange(s.ctx(ctx), cb.Code, opts...)
	if err != nil {
		s.opts.Log.Warn("code exchange refused", "provider", name, "err", redactOAuthErr(err))
		return Result{}, s.refuse(ctx, p, m, "code exchange refused", errToken)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Result{}, s.refuse(ctx, p, m, "no id_token in the token response", errToken)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: s.opts.Now}).Verify(s.ctx(ctx), raw)
	if err != nil {
		s.opts.Log.Warn("ID token refused", "provider", name, "err", err)
		return Result{}, s.refuse(ctx, p, m, "id token refused: "+reason(err), errToken)
	}
	if idt.Nonce != flow.Nonce {
		return Result{}, s.refuse(ctx, p, m, "id token nonce does not match", errToken)
	}
	claims := map[string]json.RawMessage{}
	if err := idt.Claims(&claims); err != nil {
		return Result{}, s.refuse(ctx, p, m, "id token claims unreadable", errToken)
	}
	if len(p.cfg.ACRValues) > 0 {
		var acr string
		_ = json.Unmarshal(claims["acr"], &acr)
		if !slices.Contains(p.cfg.ACRValues, acr) {
			return Result{}, s.refuse(ctx, p, m, "acr "+acr+" is not one of those required",
				problem.New(problem.KindForbidden, "You signed in at a lower security level than this portal requires. Start again and sign in with "+strings.Join(p.cfg.ACRValues, " or ")+"."))
		}
	}
	var who struct {
		Email    string `json:"email"`
		Verified *bool  `json:"email_verified"`
		Name     string `json:"name"`
		Pref     string `json:"preferred_username"`
	}
	_ = idt.Claims(&who)
	email := who.Email
	if who.Verified != nil && !*who.Verified {
		email = ""
	}
	g := Apply(p.cfg.Rules, claims)
	u, err := s.auth.SignInExternal(ctx, auth.ExternalSignIn{Provider: p.cfg.Name, Issuer: idt.Issuer, Subject: idt.Subject,
		Email: email, Name: firstNonEmpty(who.Name, who.Pref), IDToken: raw,
		Matched: g.Matched, Admin: g.Admin, Teams: g.Teams, WaitForApproval: p.cfg.Unmatched == "approval"}, m)
	if err != nil {
		return Result{}, err
	}
	return Result{User: u, Next: flow.Next, Provider: p.cfg.Name}, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// reason names a validation failure for the audit without echoing the token.
func reason(err error) string {
	var exp *oidc.TokenExpiredError
	switch msg := err.Error(); {
	case errors.As(err, &exp):
		return "expired"
	case strings.Contains(msg, "audience"):
		return "wrong audience"
	case strings.Contains(msg, "issuer") || strings.Contains(msg, "different provider"):
		return "wrong issuer"
	case strings.Contains(msg, "signature"):
		return "bad signature"
	default:
		return "invalid"
	}
}

// redactOAuthErr keeps the provider's error code and drops the body, which might echo
// what was sent.
func redactOAuthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return "provider answered " + re.ErrorCode
		}
		return fmt.Sprintf("provider answered status %d", re.Response.StatusCode)
	}
	return err.Error()
}

func (s *Service) refuse(ctx context.Context, p *provider, m audit.Meta, why string, answer error) error {
	ev := audit.New(m, audit.ActionSignIn, audit.Denied, map[string]any{"provider": p.cfg.Name, "reason": why})
	ev.TargetType, ev.Target = "provider", p.cfg.Name
	if err := audit.NewLog(s.db, s.opts.Now).Append(ctx, ev); err != nil {
		return err
	}
	return answer
}

// clientAssertion signs the private_key_jwt client assertion (RFC 7523).
func (s *Service) clientAssertion(p *provider, op *oidc.Provider) (string, error) {
	aud := p.cfg.AssertionAudience
	switch aud {
	case "":
		aud = p.cfg.Issuer
	case "token_endpoint":
		aud = op.Endpoint().TokenURL
	}
	alg := jose.RS256
	if _, ok := p.key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if p.cfg.KeyID != "" {
		opts = opts.WithHeader("kid", p.cfg.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: p.key}, opts)
	if err != nil {
		return "", fmt.Errorf("client assertion signer: %w", err)
	}
	jti, err := random()
	if err != nil {
		return "", err
	}
	now := s.opts.Now()
	return jwt.Signed(signer).Claims(jwt.Claims{Issuer: p.cfg.ClientID, Subject: p.cfg.ClientID, Audience: jwt.Audience{aud},
		ID: jti, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
}

func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("not a signing key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("neither PKCS#8, PKCS#1 RSA nor EC")
}

// Origins are the providers' issuer origins, where their end-session endpoints are expected.
func (s *Service) Origins() []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, p := range s.providers {
		if o := origin(p.cfg.Issuer); o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || strings.ContainsAny(u.Host, " ;'") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// LogoutURL returns where to send a person signing out who signed in through the named
// provider: its end_session_endpoint with id_token_hint and post_logout_redirect_uri, or ""
// when the provider publishes none (or is unknown).
func (s *Service) LogoutURL(ctx context.Context, name string, userID int64, after string) string {
	p, err := s.provider(name)
	if err != nil {
		return ""
	}
	if _, err := s.discover(ctx, p); err != nil || p.endSess == "" {
		return ""
	}
	u, err := url.Parse(p.endSess)
	if err != nil || origin(p.endSess) != origin(p.cfg.Issuer) {
		// The sign-out form may only lead to the issuer's origin (form-action).
		return ""
	}
	q := u.Query()
	if hint, err := s.auth.LastIDToken(ctx, userID, name); err == nil && hint != "" {
		q.Set("id_token_hint", hint)
	}
	q.Set("client_id", p.cfg.ClientID)
	q.Set("post_logout_redirect_uri", after)
	u.RawQuery = q.Encode()
	return u.String()
}
