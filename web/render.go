package web

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"portal/templates"
)

// render writes component with status, rendering into a buffer first so a failure mid-way
// becomes an error page instead of half a page.
func render(c echo.Context, status int, component templ.Component) error {
	var buf bytes.Buffer
	if err := component.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// layout builds the page frame for the current person.
func (s *Server) layout(c echo.Context, title, current string) templates.Layout {
	l := templates.Layout{Title: title, OrgName: s.cfg.OrgName, CSRF: csrfToken(c), SignOut: "/logout", Account: "/account"}
	if msg, kind := s.takeFlash(c); msg != "" {
		l.Flash, l.FlashKind = msg, kind
	}
	p := principal(c)
	if p == nil {
		return l
	}
	l.User = &templates.User{Name: p.Name, Email: p.Email, IsAdmin: p.IsAdmin()}
	l.PropagationNote = strings.Contains(c.Path(), "/integrations") || c.Path() == keyOverviewURL
	currentEnv := c.Param("env")
	for _, e := range s.cfg.Envs {
		link := "/envs/" + e.Name
		if strings.Contains(c.Path(), "/integrations") {
			link = integrationsURL(e.Name) // switching environment keeps to the integrations
		}
		l.Envs = append(l.Envs, templates.EnvLink{Name: e.Name, Label: e.Label, URL: link,
			Simulated: e.Simulated, Current: e.Name == currentEnv})
	}
	nav := []templates.NavLink{{Label: "Overview", URL: "/"}}
	if s.deps.Clients != nil && len(s.cfg.Envs) > 0 {
		env := s.cfg.Envs[0].Name
		if _, ok := s.findEnv(currentEnv); ok {
			env = currentEnv
		}
		nav = append(nav, templates.NavLink{Label: "Getting started", URL: "/onboarding"},
			templates.NavLink{Label: "Integrations", URL: integrationsURL(env)})
		nav = append(nav, templates.NavLink{Label: "Keys", URL: keyOverviewURL})
	}
	if p.IsAdmin() {
		nav = append(nav, templates.NavLink{Label: "Users", URL: "/admin/users"}, templates.NavLink{Label: "Teams", URL: "/admin/teams"},
			templates.NavLink{Label: "Environments", URL: "/admin/environments"}, templates.NavLink{Label: "Audit", URL: "/audit"})
	} else if _, err := auditScope(p); err == nil {
		nav = append(nav, templates.NavLink{Label: "Audit", URL: "/audit"})
	}
	for i := range nav {
		nav[i].Current = nav[i].Label == current
	}
	l.Nav = nav
	return l
}

const flashCookie = "portal_flash"

type flash struct {
	Msg  string
	Kind string
}

// setFlash leaves a one-time message for the page the person is sent to next.
func (s *Server) setFlash(c echo.Context, kind, msg string) {
	v, err := s.flash.Encode(flashCookie, flash{Msg: msg, Kind: kind})
	if err != nil {
		return
	}
	c.SetCookie(s.cookie(flashCookie, v, 300))
}

func (s *Server) takeFlash(c echo.Context) (string, string) {
	ck, err := c.Cookie(s.cookieName(flashCookie))
	if err != nil {
		return "", ""
	}
	c.SetCookie(s.cookie(flashCookie, "", -1))
	var f flash
	if err := s.flash.Decode(flashCookie, ck.Value, &f); err != nil {
		return "", ""
	}
	return f.Msg, f.Kind
}

// redirect answers a successful POST: 303 to the next page (POST-redirect-GET).
func redirect(c echo.Context, to string) error {
	return c.Redirect(http.StatusSeeOther, to)
}

func formValues(c echo.Context) (url.Values, error) {
	return c.FormParams()
}

// decodeForm reads the request's form and runs one typed decoder over it; anything it
// cannot read is a 400 with a message, never a half-decoded form.
func decodeForm[T any](c echo.Context, parse func(url.Values) (T, error)) (T, error) {
	v, err := formValues(c)
	if err != nil {
		var zero T
		return zero, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	f, err := parse(v)
	if err != nil {
		return f, echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	return f, nil
}
