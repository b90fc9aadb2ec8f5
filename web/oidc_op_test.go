package web_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// testOP is a real OpenID Provider (zitadel/oidc's certified op package) over a small
// in-memory storage: one client, a few people with groups and authorization_details.
type testOP struct {
	srv *httptest.Server
	st  *opStorage
}

type opUser struct {
	Email   string
	Name    string
	Groups  []string
	Details any // authorization_details, as Ansattporten returns it
}

// newTestOP starts a provider with one confidential client whose redirect URI is given.
func newTestOP(t interface {
	Helper()
	Fatal(...any)
	Cleanup(func())
}, clientID, secret, redirectURI, postLogout string, key *rsa.PrivateKey) *testOP {
	t.Helper()
	st := &opStorage{key: key, users: map[string]*opUser{}, reqs: map[string]*opAuthReq{}, codes: map[string]string{},
		client: &opClient{id: clientID, secret: secret, redirect: []string{redirectURI}, postLogout: []string{postLogout}, lifetime: time.Hour}}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	provider, err := op.NewOpenIDProvider(issuer, &op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPrivateKeyJWT: true}, st, op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// The login step: the test's browser names the person (the test client adds user=).
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		id, user := r.URL.Query().Get("authRequestID"), r.URL.Query().Get("user")
		if err := st.complete(id, user); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, op.AuthCallbackURL(provider)(op.ContextWithIssuer(r.Context(), issuer), id), http.StatusFound)
	})
	mux.Handle("/oauth/token", st.tamper(provider))
	mux.Handle("/", provider)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &testOP{srv: srv, st: st}
}

func (o *testOP) issuer() string { return o.srv.URL }

// ---- the storage ----

type opStorage struct {
	mu     sync.Mutex
	key    *rsa.PrivateKey
	client *opClient
	users  map[string]*opUser
	reqs   map[string]*opAuthReq
	codes  map[string]string // code -> auth request id
	ended  []string          // people whose session ended (end_session)

	// mutate, when set, rewrites the ID token's claims in the token response and signs it
	// again with signWith (or the provider's own key): a test-only switch that makes the
	// provider misbehave on purpose.
	mutate   func(claims map[string]any)
	signWith *rsa.PrivateKey
}

func (s *opStorage) setUser(sub string, u opUser) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[sub] = &u
}

func (s *opStorage) misbehave(mutate func(map[string]any), signWith *rsa.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mutate, s.signWith = mutate, signWith
}

func (s *opStorage) complete(id, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reqs[id]
	if !ok {
		return errors.New("no such auth request")
	}
	if _, ok := s.users[user]; !ok {
		return errors.New("no such user")
	}
	r.subject, r.done, r.authTime = user, true, time.Now()
	return nil
}

func (s *opStorage) endedSessions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ended...)
}

type opAuthReq struct {
	id string
	oidc.AuthRequest
	subject  string
	done     bool
	authTime time.Time
}

func (r *opAuthReq) GetID() string { return r.id }
func (r *opAuthReq) GetACR() string {
	if len(r.ACRValues) > 0 {
		return r.ACRValues[0]
	}
	return ""
}
func (r *opAuthReq) GetAMR() []string                   { return []string{"pwd"} }
func (r *opAuthReq) GetAudience() []string              { return []string{r.ClientID} }
func (r *opAuthReq) GetAuthTime() time.Time             { return r.authTime }
func (r *opAuthReq) GetClientID() string                { return r.ClientID }
func (r *opAuthReq) GetNonce() string                   { return r.Nonce }
func (r *opAuthReq) GetRedirectURI() string             { return r.RedirectURI }
func (r *opAuthReq) GetResponseType() oidc.ResponseType { return r.ResponseType }
func (r *opAuthReq) GetResponseMode() oidc.ResponseMode { return r.ResponseMode }
func (r *opAuthReq) GetScopes() []string                { return r.Scopes }
func (r *opAuthReq) GetState() string                   { return r.State }
func (r *opAuthReq) GetSubject() string                 { return r.subject }
func (r *opAuthReq) Done() bool                         { return r.done }
func (r *opAuthReq) GetCodeChallenge() *oidc.CodeChallenge {
	if r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *opStorage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := &opAuthReq{id: randomID(), AuthRequest: *r}
	s.reqs[req.id] = req
	return req, nil
}

func (s *opStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.reqs[id]; ok {
		return r, nil
	}
	return nil, errors.New("auth request not found")
}

func (s *opStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.reqs[s.codes[code]]; ok {
		return r, nil
	}
	return nil, errors.New("code not found")
}

func (s *opStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *opStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.reqs, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *opStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return randomID(), time.Now().Add(5 * time.Minute), nil
}

func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not offered")
}

func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errors.New("refresh tokens are not offered")
}

func (s *opStorage) TerminateSession(_ context.Context, userID, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = append(s.ended, userID)
	return nil
}

func (s *opStorage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type opKey struct{ k *rsa.PrivateKey }

func (k opKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k opKey) Key() any                                    { return k.k }
func (k opKey) ID() string                                  { return "op-key" }

type opPub struct{ k *rsa.PublicKey }

func (k opPub) ID() string                         { return "op-key" }
func (k opPub) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k opPub) Use() string                        { return "sig" }
func (k opPub) Key() any                           { return k.k }

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) { return opKey{s.key}, nil }
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{opPub{&s.key.PublicKey}}, nil
}

func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.client.id {
		return nil, errors.New("unknown client")
	}
	return s.client, nil
}

func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.client.id || secret != s.client.secret || s.client.key != nil {
		return errors.New("wrong client credentials")
	}
	return nil
}

func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the person's claims in the ID token.
func (s *opStorage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, _ []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[r.GetSubject()]
	if !ok {
		return errors.New("no such user")
	}
	info.Subject = r.GetSubject()
	info.Email, info.EmailVerified, info.Name = u.Email, true, u.Name
	if u.Groups != nil {
		info.AppendClaims("groups", u.Groups)
	}
	if u.Details != nil {
		info.AppendClaims("authorization_details", u.Details)
	}
	return nil
}

func (s *opStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return nil
}
func (s *opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return nil
}
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
func (s *opStorage) GetKeyByIDAndClientID(_ context.Context, kid, clientID string) (*jose.JSONWebKey, error) {
	if s.client.key == nil || clientID != s.client.id || kid != "client-key" {
		return nil, errors.New("no such client key")
	}
	return &jose.JSONWebKey{Key: s.client.key, KeyID: kid, Algorithm: "RS256", Use: "sig"}, nil
}
func (s *opStorage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}
func (s *opStorage) Health(context.Context) error { return nil }

// tamper rewrites the ID token of a token response when a test asks the provider to
// misbehave; otherwise it passes the response through untouched.
func (s *opStorage) tamper(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		mutate, signWith := s.mutate, s.signWith
		s.mu.Unlock()
		if mutate == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		raw, _ := body["id_token"].(string)
		parts := strings.Split(raw, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		claims := map[string]any{}
		_ = json.Unmarshal(payload, &claims)
		mutate(claims)
		key := s.key
		if signWith != nil {
			key = signWith
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "op-key").WithType("JWT"))
		b, _ := json.Marshal(claims)
		jws, err := signer.Sign(b)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body["id_token"], _ = jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

// ---- the client ----

type opClient struct {
	id, secret string
	// key, when set, is the only way the client authenticates: private_key_jwt under kid "client-key".
	key        *rsa.PublicKey
	redirect   []string
	postLogout []string
	lifetime   time.Duration
}

func (c *opClient) GetID() string                       { return c.id }
func (c *opClient) RedirectURIs() []string              { return c.redirect }
func (c *opClient) PostLogoutRedirectURIs() []string    { return c.postLogout }
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *opClient) AuthMethod() oidc.AuthMethod {
	if c.key != nil {
		return oidc.AuthMethodPrivateKeyJWT
	}
	return oidc.AuthMethodBasic
}
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *opClient) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *opClient) IDTokenLifetime() time.Duration       { return c.lifetime }
func (c *opClient) DevMode() bool                        { return true }
func (c *opClient) IsScopeAllowed(string) bool           { return false }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
