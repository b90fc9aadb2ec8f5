package sim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// routes builds the handler for everything under /sim/.
func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	for _, env := range Environments {
		w := s.worlds[env]
		base := "/sim/" + env

		mp := http.NewServeMux()
		mp.HandleFunc("GET "+base+"/maskinporten/.well-known/oauth-authorization-server", w.serveMetadata)
		mp.HandleFunc("GET "+base+"/maskinporten/jwk", w.serveJWKS)
		mp.HandleFunc("POST "+base+"/maskinporten/token", w.serveToken)
		mp.HandleFunc("GET "+base+"/maskinporten/errors/{code}", w.serveErrorPage)
		mux.Handle(base+"/maskinporten/", withFaults(&w.faults[0], w.mpServerError, mp))

		ss := http.NewServeMux()
		w.selfServiceRoutes(ss, base+"/selfservice")
		mux.Handle(base+"/selfservice/", withFaults(&w.faults[1], ssServerError, ss))

		ap := http.NewServeMux()
		w.apRoutes(ap, base+"/ansattporten")
		mux.Handle(base+"/ansattporten/", ap)

		mux.Handle(base+"/platform/", withFaults(&w.faults[2], platformServerError,
			http.StripPrefix(base+"/platform", w.platform.Handler())))
	}
	if s.cfg.AdminAPI {
		s.adminRoutes(mux)
	}
	return withTiming(mux)
}

func (w *world) mpServerError(rw http.ResponseWriter, status int) {
	w.writeTokenError(rw, &mpError{status: status, err: "server_error", desc: "Internal server error (simulated fault)"})
}

func ssServerError(rw http.ResponseWriter, status int) {
	writeAPIError(rw, status, generalError("Internal server error (simulated fault)"))
}

// platformServerError answers like ASP.NET Core: ProblemDetails.
func platformServerError(rw http.ResponseWriter, status int) {
	rw.Header().Set("Content-Type", "application/problem+json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(map[string]any{
		"type":    "https://tools.ietf.org/html/rfc9110#section-15.6",
		"title":   http.StatusText(status),
		"status":  status,
		"traceId": "00-" + traceID() + "-" + traceID()[:16] + "-00",
	})
}

// verifyAccessToken checks a Maskinporten access token of this environment: our key, our
// issuer, not expired.
func (w *world) verifyAccessToken(tok string, now time.Time) (*accessClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errTokenInvalid
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errTokenInvalid
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &h); err != nil || h.Alg != "RS256" {
		return nil, errTokenInvalid
	}
	if h.Kid != w.mpKid {
		return nil, errors.New("not signed by this environment's Maskinporten")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errTokenInvalid
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&w.mpKey.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, errors.New("bad signature")
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errTokenInvalid
	}
	var c accessClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, errTokenInvalid
	}
	if c.Iss != w.issuer {
		return nil, errors.New("wrong issuer")
	}
	if c.Exp <= now.Unix() {
		return nil, errors.New("token expired")
	}
	return &c, nil
}
