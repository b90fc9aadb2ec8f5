package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/identity"
	"portal/internal/problem"
	"portal/templates"
)

const (
	// oidcStateCookie binds a sign-in started at a provider to this browser: the callback's
	// state must equal it. Lax, so it comes back on the provider's top-level redirect.
	oidcStateCookie = "portal_oidc_state"
	// idpCookie remembers which provider the session came from, for its sign-out. It only
	// names a provider; the ID token hint is looked up for the signed-in person.
	idpCookie = "portal_idp"
)

func (s *Server) providerLinks(next string) []templates.ProviderLink {
	var out []templates.ProviderLink
	for _, p := range s.deps.Identity.Providers() {
		u := "/login/oidc/" + url.PathEscape(p.Name)
		if n := safeNext(next); n != "/" {
			u += "?" + url.Values{"next": {n}}.Encode()
		}
		label := "Sign in with " + p.DisplayName
		out = append(out, templates.ProviderLink{URL: u, Label: label, Simulated: p.Simulated})
	}
	return out
}

// startOIDC sends the browser to the provider's authorization endpoint.
func (s *Server) startOIDC(c echo.Context) error {
	authURL, state, err := s.deps.Identity.Begin(c.Request().Context(), c.Param("provider"), safeNext(c.QueryParam("next")))
	if err != nil {
		return s.oidcFailed(c, err)
	}
	c.SetCookie(&http.Cookie{Name: oidcStateCookie, Value: state, Path: "/login/oidc/", HttpOnly: true, Secure: s.cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: 600})
	return c.Redirect(http.StatusSeeOther, authURL)
}

// oidcCallback completes the sign-in the provider sends the browser back with.
func (s *Server) oidcCallback(c echo.Context) error {
	q := c.QueryParams()
	cb := identity.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), Description: q.Get("error_description")}
	if ck, err := c.Cookie(oidcStateCookie); err == nil {
		cb.BoundState = ck.Value
	}
	// The state is single use whatever happens next.
	c.SetCookie(&http.Cookie{Name: oidcStateCookie, Value: "", Path: "/login/oidc/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies})
	name := c.Param("provider")
	res, err := s.deps.Identity.Complete(c.Request().Context(), name, cb, s.meta(c))
	if err != nil {
		return s.oidcFailed(c, err)
	}
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), res.User.ID); err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: idpCookie, Value: res.Provider, Path: "/", HttpOnly: true, Secure: s.cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode})
	return redirect(c, safeNext(res.Next))
}

// oidcFailed shows the sign-in page with what went wrong, in words a person can act on.
func (s *Server) oidcFailed(c echo.Context, err error) error {
	pe, ok := problem.As(err)
	if !ok {
		return err
	}
	return render(c, statusOf(err), templates.LoginPage(templates.LoginProps{Layout: s.layout(c, "Sign in", ""), Action: "/login",
		Error: pe.Message, Next: "/", Providers: s.providerLinks("")}))
}

// providerLogoutURL is the provider's end-session address for the signed-in person, "" when
// they did not come through a provider that publishes one.
func (s *Server) providerLogoutURL(c echo.Context) string {
	ck, err := c.Cookie(idpCookie)
	p := principal(c)
	if err != nil || p == nil || s.deps.Identity == nil {
		return ""
	}
	c.SetCookie(&http.Cookie{Name: idpCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies})
	return s.deps.Identity.LogoutURL(c.Request().Context(), ck.Value, p.UserID, s.absPath("/login"))
}

// formActionCSP is the policy with the providers' origins added to form-action: the sign-out
// form's redirect to a provider's end-session endpoint is part of the form's navigation.
func (s *Server) formActionCSP() string {
	origins := s.deps.Identity.Origins()
	if len(origins) == 0 {
		return csp
	}
	return strings.Replace(csp, "form-action 'self'", "form-action 'self' "+strings.Join(origins, " "), 1)
}

func (s *Server) absPath(path string) string {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return path
	}
	return u.JoinPath(path).String()
}
