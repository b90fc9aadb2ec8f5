package sim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The simulated Ansattporten: an OpenID Provider per environment with the authorization code
// flow (PKCE S256 required), acr, and authorization_details of type
// ansattporten:altinn:service carrying the seeded people's rights for organisations. Its
// wire types are its own, written from Digdir's description, not shared with the portal.

// AnsattportenClientID is the only client the simulated Ansattporten knows.
const AnsattportenClientID = "portal"

const apDetailsType = "ansattporten:altinn:service"

// apPerson is a seeded person in the picker.
type apPerson struct {
	PID    string
	Name   string
	Rights map[string][]string // organisation number -> rights in the requested service
	Note   string              // what the picker says they will get
}

// apPeople are the same in every environment; their rights are for the seeded service owner
// (orgNo) or for an organisation the portal does not serve.
func apPeople(orgNo string) []apPerson {
	return []apPerson{
		{PID: "01017012345", Name: "Kari Nordmann", Rights: map[string][]string{orgNo: {"Read", "Write", "Sign"}},
			Note: "Read, Write and Sign for " + orgNo},
		{PID: "02028012345", Name: "Ola Nordmann", Rights: map[string][]string{orgNo: {"Read"}}, Note: "Read for " + orgNo},
		{PID: "03039012345", Name: "Per Utenfor", Rights: map[string][]string{"999999999": {"Read", "Write"}},
			Note: "rights for another organisation only"},
	}
}

type apRequest struct {
	redirect  string
	state     string
	nonce     string
	challenge string
	acr       string
	details   []apDetailRequest
	expires   time.Time
}

type apCode struct {
	apRequest
	person apPerson
}

type apDetailRequest struct {
	Type     string `json:"type"`
	Resource string `json:"resource"`
}

// apState holds flows under way; a restart of the simulator forgets them, as a real
// provider's expiry would.
type apState struct {
	mu     sync.Mutex
	reqs   map[string]apRequest
	codes  map[string]apCode
	secret string
}

func apRandom() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (w *world) apIssuer() string { return w.s.cfg.BaseURL + "/sim/" + w.name + "/ansattporten" }

// apRoutes registers the provider under {base}/ansattporten.
func (w *world) apRoutes(mux *http.ServeMux, base string) {
	mux.HandleFunc("GET "+base+"/.well-known/openid-configuration", w.apMetadata)
	mux.HandleFunc("GET "+base+"/jwks", w.apJWKS)
	mux.HandleFunc("GET "+base+"/authorize", w.apAuthorize)
	mux.HandleFunc("GET "+base+"/authorize/pick", w.apPick)
	mux.HandleFunc("POST "+base+"/token", w.apToken)
	mux.HandleFunc("GET "+base+"/endsession", w.apEndSession)
}

func (w *world) apMetadata(rw http.ResponseWriter, _ *http.Request) {
	iss := w.apIssuer()
	writeJSON(rw, http.StatusOK, map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
		"jwks_uri": iss + "/jwks", "end_session_endpoint": iss + "/endsession",
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"acr_values_supported":                  []string{"substantial", "high"},
		"authorization_details_types_supported": []string{apDetailsType},
		"scopes_supported":                      []string{"openid", "profile"},
	})
}

func (w *world) apJWKS(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &w.mpKey.PublicKey, KeyID: w.apKid(), Algorithm: "RS256", Use: "sig"}}})
}

// apKid names the environment's signing key as Ansattporten's; the simulator signs with the
// environment's Maskinporten key under its own kid, so no extra key is generated.
func (w *world) apKid() string { return "ansattporten-" + w.mpKid }

// apRedirectOK accepts the portal's callback for a simulated provider only: a simulator has
// no client registration, so the path is the registration.
func apRedirectOK(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" &&
		strings.HasPrefix(p.Path, "/login/oidc/") && strings.HasSuffix(p.Path, "/callback") && p.RawQuery == "" && p.Fragment == ""
}

func apPage(rw http.ResponseWriter, status int, msg string) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(status)
	_ = apTemplate.Execute(rw, map[string]any{"Error": msg})
}

func (w *world) apAuthorize(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != AnsattportenClientID:
		apPage(rw, http.StatusBadRequest, "Unknown client_id: the simulated Ansattporten knows only "+AnsattportenClientID+".")
		return
	case !apRedirectOK(q.Get("redirect_uri")):
		apPage(rw, http.StatusBadRequest, "redirect_uri is not a portal sign-in callback (/login/oidc/{provider}/callback).")
		return
	}
	fail := func(code, desc string) {
		u, _ := url.Parse(q.Get("redirect_uri"))
		v := url.Values{"error": {code}, "error_description": {desc}, "state": {q.Get("state")}}
		u.RawQuery = v.Encode()
		http.Redirect(rw, r, u.String(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
		return
	case q.Get("state") == "" || q.Get("nonce") == "":
		fail("invalid_request", "state and nonce are required")
		return
	case !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		fail("invalid_scope", "the openid scope is required")
		return
	}
	acr := "substantial"
	if v := strings.Fields(q.Get("acr_values")); len(v) > 0 {
		if v[0] != "substantial" && v[0] != "high" {
			fail("invalid_request", "acr_values must be substantial or high")
			return
		}
		acr = v[0]
	}
	var details []apDetailRequest
	if raw := q.Get("authorization_details"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &details); err != nil {
			fail("invalid_authorization_details", "authorization_details is not a JSON array of objects")
			return
		}
		for _, d := range details {
			if d.Type != apDetailsType || d.Resource == "" {
				fail("invalid_authorization_details", "each entry needs type "+apDetailsType+" and a resource")
				return
			}
		}
	}
	id := apRandom()
	st := w.ap()
	st.mu.Lock()
	st.reqs[id] = apRequest{redirect: q.Get("redirect_uri"), state: q.Get("state"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
		acr: acr, details: details, expires: w.clock.now().Add(10 * time.Minute)}
	st.mu.Unlock()
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = apTemplate.Execute(rw, map[string]any{"Env": w.name, "Req": id, "People": apPeople(w.s.cfg.OrgNo), "ACR": acr})
}

func (w *world) apPick(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	st := w.ap()
	st.mu.Lock()
	req, ok := st.reqs[q.Get("req")]
	delete(st.reqs, q.Get("req"))
	st.mu.Unlock()
	if !ok || w.clock.now().After(req.expires) {
		apPage(rw, http.StatusBadRequest, "This sign-in has expired or was used. Start again from the portal.")
		return
	}
	var person *apPerson
	for _, p := range apPeople(w.s.cfg.OrgNo) {
		if p.PID == q.Get("pid") {
			person = &p
		}
	}
	if person == nil {
		apPage(rw, http.StatusBadRequest, "Choose one of the listed people.")
		return
	}
	code := apRandom()
	req.expires = w.clock.now().Add(time.Minute)
	st.mu.Lock()
	st.codes[code] = apCode{apRequest: req, person: *person}
	st.mu.Unlock()
	u, _ := url.Parse(req.redirect)
	u.RawQuery = url.Values{"code": {code}, "state": {req.state}}.Encode()
	http.Redirect(rw, r, u.String(), http.StatusFound)
}

func apTokenError(rw http.ResponseWriter, status int, code, desc string) {
	writeJSON(rw, status, map[string]string{"error": code, "error_description": desc})
}

func (w *world) apToken(rw http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		apTokenError(rw, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	st := w.ap()
	if id != AnsattportenClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(st.secret)) != 1 {
		apTokenError(rw, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		apTokenError(rw, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	st.mu.Lock()
	c, ok := st.codes[r.PostForm.Get("code")]
	delete(st.codes, r.PostForm.Get("code")) // single use, whatever follows
	st.mu.Unlock()
	now := w.clock.now()
	if !ok || now.After(c.expires) {
		apTokenError(rw, http.StatusBadRequest, "invalid_grant", "the code is unknown, used or expired")
		return
	}
	if r.PostForm.Get("redirect_uri") != c.redirect {
		apTokenError(rw, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		apTokenError(rw, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	// Ansattporten's sub is pairwise: the same person has another sub at another client.
	subSum := sha256.Sum256([]byte(w.name + "|" + AnsattportenClientID + "|" + c.person.PID))
	claims := map[string]any{
		"iss": w.apIssuer(), "aud": AnsattportenClientID, "sub": base64.RawURLEncoding.EncodeToString(subSum[:20]),
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "nonce": c.nonce, "acr": c.acr, "amr": []string{"BankID"},
		"pid": c.person.PID, "name": c.person.Name, "auth_time": now.Unix(),
	}
	if len(c.details) > 0 {
		var out []any
		for _, d := range c.details {
			var reportees []any
			for org, rights := range c.person.Rights {
				reportees = append(reportees, map[string]any{"Rights": rights, "Authority": "iso6523-actorid-upis", "ID": "0192:" + org,
					"Name": "Organisation " + org})
			}
			out = append(out, map[string]any{"type": apDetailsType, "resource": d.Resource, "resource_name": "Simulated service " + d.Resource,
				"reportees": reportees})
		}
		claims["authorization_details"] = out
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: w.mpKey}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", w.apKid()))
	if err != nil {
		apTokenError(rw, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	idt, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		apTokenError(rw, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	rw.Header().Set("Cache-Control", "no-store")
	writeJSON(rw, http.StatusOK, map[string]any{"access_token": apRandom(), "token_type": "Bearer", "expires_in": 120, "id_token": idt,
		"scope": "openid profile"})
}

// apEndSession ends the (stateless) provider session and returns to the portal's sign-in page.
func (w *world) apEndSession(rw http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("post_logout_redirect_uri")
	if u, err := url.Parse(to); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Path == "/login" {
		http.Redirect(rw, r, to, http.StatusFound)
		return
	}
	apPage(rw, http.StatusOK, "You are signed out of the simulated Ansattporten.")
}

func (w *world) ap() *apState {
	w.apOnce.Do(func() {
		w.apState = &apState{reqs: map[string]apRequest{}, codes: map[string]apCode{}, secret: w.s.cfg.AnsattportenSecret}
		if w.apState.secret == "" {
			w.apState.secret = apRandom() // nobody can use it: no client is configured
		}
	})
	return w.apState
}

var apTemplate = template.Must(template.New("ap").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ansattporten (simulated)</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
.sim{background:#fff3cd;border:1px solid #e0b000;padding:.5rem 1rem}a.person{display:block;margin:.5rem 0;padding:.75rem;border:1px solid #888;border-radius:4px;text-decoration:none;color:inherit}</style></head>
<body><p class="sim" data-testid="ap-simulated"><strong>Simulated Ansattporten</strong> — a stand-in for Digdir's Ansattporten; nobody is authenticated here.</p>
{{if .Error}}<p role="alert">{{.Error}}</p>{{else}}
<h1>Who are you? ({{.Env}}, {{.ACR}})</h1>
{{range .People}}<a class="person" data-testid="ap-person" href="authorize/pick?req={{$.Req}}&amp;pid={{.PID}}"><strong>{{.Name}}</strong><br><small>{{.Note}}</small></a>{{end}}
{{end}}</body></html>`))
