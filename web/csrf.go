package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/labstack/echo/v4"
)

// The anti-forgery protection has two layers. A browser's own word on where a state-changing
// request comes from (Sec-Fetch-Site) refuses everything that is not from the portal's own
// origin: "same-site" is refused like "cross-site", since a sibling host under the same domain
// is another party. Then every such request must carry a token bound to who sends it: an HMAC,
// under a server key, of the session id when signed in, or of a random pre-session value kept
// in a cookie for the anonymous forms (sign-in, setup, password links, invitations). The
// session id changes at every sign-in, so a token seen before it is worthless after; a token
// planted together with a cookie (cookie tossing from a sibling host) matches no session.

const (
	csrfCookie   = "portal_csrf" // the pre-session value; never the token itself
	csrfFormName = "_csrf"
	csrfHeader   = "X-CSRF-Token"
	csrfValueLen = 32
)

// csrfProtect runs after loadPrincipal, which records the session id of a signed-in person.
func (s *Server) csrfProtect(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if sessionless(c.Request().URL.Path) {
			return next(c)
		}
		var token string
		if sid, _ := c.Get(sessionIDKey).(string); sid != "" && principal(c) != nil {
			token = s.csrfMAC("session", sid)
			// The anonymous value has served its purpose: the next anonymous visit gets a
			// fresh one, so nothing from before this sign-in is accepted again.
			if _, err := c.Cookie(s.cookieName(csrfCookie)); err == nil {
				c.SetCookie(s.cookie(csrfCookie, "", -1))
			}
		} else {
			token = s.csrfMAC("anonymous", s.preSession(c))
		}
		c.Set("csrf", token)
		c.Response().Header().Add(echo.HeaderVary, echo.HeaderCookie)

		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			return next(c)
		}
		switch r.Header.Get(echo.HeaderSecFetchSite) {
		case "", "same-origin", "none":
		default: // same-site, cross-site, or anything a future browser invents
			return s.refuseCrossSite(c)
		}
		sent := r.Header.Get(csrfHeader)
		if sent == "" {
			sent = c.FormValue(csrfFormName)
		}
		if !hmac.Equal([]byte(sent), []byte(token)) {
			// A form from a session that has since ended (timed out, signed out elsewhere,
			// a new session key) is sent to sign in again, as requireUser would; no handler runs.
			if _, err := c.Cookie(s.deps.Sessions.CookieName()); err == nil && principal(c) == nil {
				return s.requireUser(func(echo.Context) error { return s.refuseCrossSite(c) })(c)
			}
			return s.refuseCrossSite(c)
		}
		return next(c)
	}
}

// preSession returns the request's pre-session value, making (and setting) a fresh one when
// the request has none or a malformed one.
func (s *Server) preSession(c echo.Context) string {
	if ck, err := c.Cookie(s.cookieName(csrfCookie)); err == nil {
		if b, err := base64.RawURLEncoding.DecodeString(ck.Value); err == nil && len(b) == csrfValueLen {
			return ck.Value
		}
	}
	b := make([]byte, csrfValueLen)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	c.SetCookie(s.cookie(csrfCookie, v, 0))
	return v
}

func (s *Server) csrfMAC(kind, value string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("portal csrf v1\x00" + kind + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookieName gives the portal's own cookies the __Host- prefix whenever they are Secure: the
// browser then keeps them to this host, path "/" and HTTPS, and no sibling host can set them.
func (s *Server) cookieName(name string) string {
	if s.cfg.SecureCookies {
		return "__Host-" + name
	}
	return name
}

// cookie is one of the portal's own cookies: HttpOnly, SameSite=Lax, path "/", no domain,
// Secure under TLS. maxAge 0 lasts the browser session; negative deletes.
func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.cookieName(name), Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
}
