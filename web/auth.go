package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/auth"
	"portal/internal/problem"
	"portal/templates"
)

func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.deps.DB.Ping(c.Request().Context()); err != nil {
		s.log.Error("readiness: database does not answer", "err", err)
		return c.String(http.StatusServiceUnavailable, "database unavailable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

func (s *Server) showLogin(c echo.Context) error {
	if principal(c) != nil {
		return redirect(c, safeNext(c.QueryParam("next")))
	}
	needs, err := s.deps.Auth.NeedsSetup(c.Request().Context())
	if err != nil {
		return err
	}
	l := s.layout(c, "Sign in", "")
	next := safeNext(c.QueryParam("next"))
	if next != "/" {
		// Sent here from a page that needs a session: say why, and go back there afterwards.
		l.Flash, l.FlashKind = "Sign in to continue.", "info"
	}
	if needs {
		l.Flash, l.FlashKind = "The portal has no users yet. Open the setup link printed in the portal's log when it started, or run `portal user add`.", "info"
	}
	return render(c, http.StatusOK, templates.LoginPage(templates.LoginProps{Layout: l, Action: "/login", Next: next,
		Providers: s.providerLinks(c.QueryParam("next")), Passkey: s.passkeySignInProps(c, next)}))
}

func (s *Server) login(c echo.Context) error {
	f, err := decodeForm(c, parseLoginForm)
	if err != nil {
		return err
	}
	u, err := s.deps.Auth.Login(c.Request().Context(), f.Email, f.Password, s.meta(c))
	if err != nil {
		status := statusOf(err)
		if status != http.StatusUnauthorized && status != http.StatusTooManyRequests && status != http.StatusForbidden {
			return err
		}
		pe, _ := problem.As(err)
		msg := pe.Message
		if until, ok := auth.ThrottledUntil(err); ok {
			// The same words for every email, known or not: only the time differs, and it
			// follows from the attempts the asker made.
			msg = "Too many attempts. Try again after " + until.UTC().Format("15:04") + " UTC."
			setRetryAfter(c, err)
		}
		return render(c, status, templates.LoginPage(templates.LoginProps{Layout: s.layout(c, "Sign in", ""), Action: "/login",
			Email: f.Email, Error: msg, Next: f.Next, Providers: s.providerLinks(f.Next), Passkey: s.passkeySignInProps(c, f.Next)}))
	}
	// A person with a second factor gives it before any session starts.
	if started, err := s.startSecondFactor(c, u.ID, f.Next); started || err != nil {
		return err
	}
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), u.ID); err != nil {
		return err
	}
	return redirect(c, f.Next)
}

func (s *Server) logout(c echo.Context) error {
	if p := principal(c); p != nil {
		if err := s.deps.Auth.RecordSignOut(c.Request().Context(), p, s.meta(c)); err != nil {
			return err
		}
	}
	// Where the person signed in through a provider that publishes end_session_endpoint,
	// its session ends too; it sends them back to the sign-in page.
	endAt := s.providerLogoutURL(c)
	if err := s.deps.Sessions.End(c.Response(), c.Request()); err != nil {
		return err
	}
	s.setFlash(c, "info", "You are signed out.")
	if endAt != "" {
		return c.Redirect(http.StatusSeeOther, endAt)
	}
	return redirect(c, "/login")
}

func (s *Server) showSetup(c echo.Context) error {
	token := c.QueryParam("token")
	if err := s.deps.Auth.CheckToken(c.Request().Context(), token, "setup"); err != nil {
		return problem.New(problem.KindNotFound, "This setup link is not valid: it was used already, has expired, or the portal is set up. Restart the portal for a new link while it has no users, or sign in.")
	}
	return render(c, http.StatusOK, templates.SetupPage(templates.SetupProps{Layout: s.layout(c, "Set up", ""), Action: "/setup", Token: token}))
}

func (s *Server) setup(c echo.Context) error {
	f, err := decodeForm(c, parseAccountForm)
	if err != nil {
		return err
	}
	u, err := s.deps.Auth.CompleteSetup(c.Request().Context(), f.Token, auth.NewAccount{Email: f.Email, Name: f.Name, Password: f.Password, Confirm: f.Confirm}, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		return render(c, http.StatusUnprocessableEntity, templates.SetupPage(templates.SetupProps{
			Layout: s.layout(c, "Set up", ""), Action: "/setup", Token: f.Token, Error: pe.Message,
			Email: templates.Field{Value: f.Email, Error: pe.Fields["email"]}, Name: templates.Field{Value: f.Name, Error: pe.Fields["name"]},
			Password: templates.Field{Error: pe.Fields["password"]}, Confirm: templates.Field{Error: pe.Fields["confirm"]}}))
	}
	if err != nil {
		return err
	}
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), u.ID); err != nil {
		return err
	}
	s.setFlash(c, "success", "The portal is set up and you are signed in as its administrator. Next: create a team and add people.")
	return redirect(c, "/")
}

func (s *Server) showSetPassword(c echo.Context) error {
	token := c.QueryParam("token")
	if err := s.deps.Auth.CheckToken(c.Request().Context(), token, "set_password"); err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.SetPasswordPage(templates.SetPasswordProps{Layout: s.layout(c, "Choose a password", ""),
		Action: "/password/set", Token: token}))
}

func (s *Server) setPassword(c echo.Context) error {
	f, err := decodeForm(c, parseAccountForm)
	if err != nil {
		return err
	}
	u, err := s.deps.Auth.SetPasswordWithLink(c.Request().Context(), f.Token, f.Password, f.Confirm, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		return render(c, http.StatusUnprocessableEntity, templates.SetPasswordPage(templates.SetPasswordProps{
			Layout: s.layout(c, "Choose a password", ""), Action: "/password/set", Token: f.Token, Error: pe.Message,
			Password: templates.Field{Error: pe.Fields["password"]}, Confirm: templates.Field{Error: pe.Fields["confirm"]}}))
	}
	if err != nil {
		return err
	}
	// The link stands for the password only: a person with a second factor still gives it.
	if started, err := s.startSecondFactor(c, u.ID, "/"); started || err != nil {
		return err
	}
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), u.ID); err != nil {
		return err
	}
	s.setFlash(c, "success", "Your password is set and you are signed in.")
	return redirect(c, "/")
}

func (s *Server) showAccount(c echo.Context) error {
	return render(c, http.StatusOK, templates.AccountPage(s.accountProps(c, nil)))
}

func (s *Server) accountProps(c echo.Context, pe *problem.Error) templates.AccountProps {
	p := principal(c)
	props := templates.AccountProps{Layout: s.layout(c, "Your account", ""), Action: "/account/password", Name: p.Name, Email: p.Email, Role: p.Role}
	for _, t := range p.Teams {
		props.Teams = append(props.Teams, templates.TeamRoleView{Team: t.TeamName, URL: teamURL(t.TeamID), Role: t.Role, Source: t.Source})
	}
	if pe != nil {
		props.Error = pe.Message
		props.Current.Error, props.Password.Error, props.Confirm.Error = pe.Fields["current"], pe.Fields["password"], pe.Fields["confirm"]
	}
	return props
}

func (s *Server) changePassword(c echo.Context) error {
	f, err := decodeForm(c, parseAccountForm)
	if err != nil {
		return err
	}
	p := principal(c)
	err = s.deps.Auth.ChangePassword(c.Request().Context(), p, f.Current, f.Password, f.Confirm, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		return render(c, http.StatusUnprocessableEntity, templates.AccountPage(s.accountProps(c, pe)))
	}
	if err != nil {
		return err
	}
	// Every session ended with the change, this one too; start a fresh one.
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), p.UserID); err != nil {
		return err
	}
	s.setFlash(c, "success", "Your password is changed. You were signed out everywhere else.")
	return redirect(c, "/account")
}

var errNotFound = problem.New(problem.KindNotFound, "There is nothing at this address. Check the link, or start from the overview.")

func teamURL(id int64) string { return "/teams/" + itoa(id) }

// absURL builds a link to hand to someone, from the configured public URL, never from the
// request's Host header, which a client controls.
func (s *Server) absURL(path string, q url.Values) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + path + "?" + q.Encode()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
