package web

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"portal/internal/mfa"
	"portal/internal/problem"
	"portal/templates"
)

// factorCookie holds the id of a half-finished sign-in (right password, second factor due) and
// of a password-less sign-in's challenge. It is no session: only /login/... reads it.
const factorCookie = "portal_factor"

func (s *Server) setFactorCookie(c echo.Context, id string) {
	c.SetCookie(&http.Cookie{Name: factorCookie, Value: id, Path: "/login", HttpOnly: true, Secure: s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: 300})
}

func (s *Server) clearFactorCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: factorCookie, Value: "", Path: "/login", HttpOnly: true, Secure: s.cfg.SecureCookies, MaxAge: -1})
}

func factorID(c echo.Context) string {
	ck, err := c.Cookie(factorCookie)
	if err != nil {
		return ""
	}
	return ck.Value
}

// enrolPaths stay open to a person the policy asks for a second factor they do not have yet.
var enrolPaths = map[string]bool{
	"/account/security": true, "/account/totp": true, "/account/totp/confirm": true,
	"/account/passkeys/options": true, "/account/passkeys": true,
}

// requireFactor sends a person whom the policy asks for a second factor, and who has none, to
// enrolment before anything else.
func (s *Server) requireFactor(c echo.Context) (bool, error) {
	p := principal(c)
	if s.deps.Factors == nil || p == nil || enrolPaths[c.Path()] {
		return false, nil
	}
	must, err := s.deps.Factors.MustEnrol(c.Request().Context(), p)
	if err != nil || !must {
		return false, err
	}
	const target = "/account/security"
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", target)
		return true, c.NoContent(http.StatusForbidden)
	}
	return true, c.Redirect(http.StatusSeeOther, target)
}

// startSecondFactor begins the second step of a sign-in whose password was right, when the
// person has a second factor. It reports whether it did (and answered the request).
func (s *Server) startSecondFactor(c echo.Context, userID int64, next string) (bool, error) {
	if s.deps.Factors == nil {
		return false, nil
	}
	ctx := c.Request().Context()
	has, err := s.deps.Factors.HasFactor(ctx, userID)
	if err != nil || !has {
		return false, err
	}
	id, err := s.deps.Factors.StartSignIn(ctx, userID, next)
	if err != nil {
		return true, err
	}
	// A session begun before (someone else's, on a shared browser) ends here too.
	if err := s.deps.Sessions.End(c.Response(), c.Request()); err != nil {
		return true, err
	}
	s.setFactorCookie(c, id)
	return true, redirect(c, "/login/factor")
}

func (s *Server) passkeySignInProps(c echo.Context, next string) templates.PasskeySignInProps {
	return templates.PasskeySignInProps{Enabled: s.deps.Factors != nil && s.deps.Factors.PasskeysAvailable(), CSRF: csrfToken(c),
		OptionsURL: "/login/passkey/options", FinishURL: "/login/passkey?next=" + url.QueryEscape(next), Next: next}
}

func (s *Server) factorProps(c echo.Context, pd mfa.Pending) templates.FactorProps {
	return templates.FactorProps{Layout: s.layout(c, "Confirm it is you", ""), Email: pd.Email, Action: "/login/factor",
		CancelAction: "/login/factor/cancel", HasTOTP: pd.HasTOTP, HasPasskey: pd.HasPasskey && s.deps.Factors.PasskeysAvailable(),
		PasskeyOptionsURL: "/login/factor/passkey/options", PasskeyFinishURL: "/login/factor/passkey"}
}

func (s *Server) pendingOrRestart(c echo.Context) (mfa.Pending, bool, error) {
	pd, err := s.deps.Factors.Pending(c.Request().Context(), factorID(c))
	if problem.KindOf(err) == problem.KindUnauthenticated {
		s.clearFactorCookie(c)
		s.setFlash(c, "warning", "Your sign-in took too long or was finished already. Sign in again.")
		return pd, false, redirect(c, "/login")
	}
	return pd, err == nil, err
}

func (s *Server) showFactor(c echo.Context) error {
	pd, ok, err := s.pendingOrRestart(c)
	if !ok {
		return err
	}
	return render(c, http.StatusOK, templates.FactorPage(s.factorProps(c, pd)))
}

func (s *Server) verifyFactor(c echo.Context) error {
	pd, ok, err := s.pendingOrRestart(c)
	if !ok {
		return err
	}
	f, err := decodeForm(c, parseCodeForm)
	if err != nil {
		return err
	}
	uid, next, err := s.deps.Factors.VerifyCode(c.Request().Context(), factorID(c), f.Code, s.meta(c))
	if err != nil {
		status := statusOf(err)
		if status != http.StatusUnauthorized && status != http.StatusTooManyRequests {
			return err
		}
		pe, _ := problem.As(err)
		props := s.factorProps(c, pd)
		props.Error = pe.Message
		return render(c, status, templates.FactorPage(props))
	}
	return s.completeSignIn(c, uid, next)
}

func (s *Server) completeSignIn(c echo.Context, userID int64, next string) error {
	s.clearFactorCookie(c)
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), userID); err != nil {
		return err
	}
	return redirect(c, safeNext(next))
}

func (s *Server) cancelFactor(c echo.Context) error {
	if err := s.deps.Factors.CancelSignIn(c.Request().Context(), factorID(c)); err != nil {
		return err
	}
	s.clearFactorCookie(c)
	return redirect(c, "/login")
}

// ---- passkeys (JSON for static/js/passkey.js) ----

type jsonAnswer struct {
	Redirect      string   `json:"redirect,omitempty"`
	Error         string   `json:"error,omitempty"`
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

// jsonError answers a passkey request that failed with the message for people.
func jsonError(c echo.Context, err error) error {
	pe, ok := problem.As(err)
	if !ok || statusOf(err) >= 500 {
		return err
	}
	return c.JSON(statusOf(err), jsonAnswer{Error: pe.Message})
}

func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10))
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "The request could not be read.")
	}
	return b, nil
}

func (s *Server) passkeyFactorOptions(c echo.Context) error {
	opts, err := s.deps.Factors.BeginPasskeyFactor(c.Request().Context(), factorID(c))
	if err != nil {
		return jsonError(c, err)
	}
	return c.JSONBlob(http.StatusOK, opts)
}

func (s *Server) passkeyFactor(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	uid, next, err := s.deps.Factors.FinishPasskeyFactor(c.Request().Context(), factorID(c), body, s.meta(c))
	if err != nil {
		return jsonError(c, err)
	}
	s.clearFactorCookie(c)
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), uid); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, jsonAnswer{Redirect: safeNext(next)})
}

func (s *Server) passkeySignInOptions(c echo.Context) error {
	id, opts, err := s.deps.Factors.BeginPasskeySignIn(c.Request().Context())
	if err != nil {
		return jsonError(c, err)
	}
	s.setFactorCookie(c, id)
	return c.JSONBlob(http.StatusOK, opts)
}

func (s *Server) passkeySignIn(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	uid, err := s.deps.Factors.FinishPasskeySignIn(c.Request().Context(), factorID(c), body, s.meta(c))
	if err != nil {
		return jsonError(c, err)
	}
	s.clearFactorCookie(c)
	if err := s.deps.Sessions.Begin(c.Response(), c.Request(), uid); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, jsonAnswer{Redirect: safeNext(c.QueryParam("next"))})
}

// ---- the account's security page ----

func (s *Server) securityProps(c echo.Context) (templates.SecurityProps, error) {
	p := principal(c)
	ctx := c.Request().Context()
	st, err := s.deps.Factors.Status(ctx, p)
	if err != nil {
		return templates.SecurityProps{}, err
	}
	must, err := s.deps.Factors.MustEnrol(ctx, p)
	if err != nil {
		return templates.SecurityProps{}, err
	}
	props := templates.SecurityProps{Layout: s.layout(c, "Sign-in security", ""), MustEnrol: must, Required: st.Required,
		RecoveryLeft: strconv.Itoa(st.RecoveryLeft), TOTPAction: "/account/totp", RecoveryAction: "/account/recovery-codes",
		PasskeyOptionsURL: "/account/passkeys/options", PasskeyFinishURL: "/account/passkeys", PasskeysOff: !s.deps.Factors.PasskeysAvailable()}
	view := func(f mfa.Factor) templates.FactorView {
		last := "never"
		if !f.LastUsedAt.IsZero() {
			last = showTime(f.LastUsedAt)
		}
		return templates.FactorView{Name: f.Name, Kind: f.Kind, Added: showTime(f.CreatedAt), LastUsed: last,
			RemoveAction: "/account/factors/" + itoa(f.ID) + "/remove"}
	}
	if st.TOTP != nil {
		v := view(*st.TOTP)
		props.TOTP = &v
	}
	for _, k := range st.Passkeys {
		props.Passkeys = append(props.Passkeys, view(k))
	}
	return props, nil
}

func (s *Server) showSecurity(c echo.Context) error {
	props, err := s.securityProps(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.SecurityPage(props))
}

func qrDataURL(png []byte) templ.SafeURL {
	return templ.SafeURL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

func (s *Server) startTOTP(c echo.Context) error {
	en, err := s.deps.Factors.BeginTOTP(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.TOTPEnrolPage(templates.TOTPEnrolProps{Layout: s.layout(c, "Set up an authenticator app", ""),
		QRData: qrDataURL(en.QRPNG), Secret: en.Secret, Action: "/account/totp/confirm"}))
}

func (s *Server) confirmTOTP(c echo.Context) error {
	f, err := decodeForm(c, parseCodeForm)
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	codes, err := s.deps.Factors.ConfirmTOTP(ctx, p, f.Code, s.meta(c))
	if pe, ok := problem.As(err); ok && (pe.Kind == problem.KindInvalid || pe.Kind == problem.KindThrottled) {
		en, perr := s.deps.Factors.PendingTOTP(ctx, p)
		if perr != nil {
			return err // nothing being set up: the message alone
		}
		return render(c, statusOf(err), templates.TOTPEnrolPage(templates.TOTPEnrolProps{Layout: s.layout(c, "Set up an authenticator app", ""),
			QRData: qrDataURL(en.QRPNG), Secret: en.Secret, Action: "/account/totp/confirm", Error: pe.Message, Code: templates.Field{Error: pe.Fields["code"]}}))
	}
	if err != nil {
		return err
	}
	return s.showRecoveryCodes(c, codes, "Your authenticator app is set up.")
}

func (s *Server) showRecoveryCodes(c echo.Context, codes []string, done string) error {
	if len(codes) == 0 {
		s.setFlash(c, "success", done)
		return redirect(c, "/account/security")
	}
	l := s.layout(c, "Your recovery codes", "")
	l.Flash, l.FlashKind = done, "success"
	return render(c, http.StatusOK, templates.RecoveryCodesPage(templates.RecoveryCodesProps{Layout: l, Codes: codes, Next: "/account/security"}))
}

func (s *Server) regenerateRecoveryCodes(c echo.Context) error {
	codes, err := s.deps.Factors.RegenerateRecoveryCodes(c.Request().Context(), principal(c), s.meta(c))
	if err != nil {
		return err
	}
	return s.showRecoveryCodes(c, codes, "New recovery codes are made; the old ones no longer work.")
}

func (s *Server) removeFactor(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("factor"), 10, 64)
	if err != nil {
		return errNotFound
	}
	if err := s.deps.Factors.RemoveFactor(c.Request().Context(), principal(c), id, s.meta(c)); err != nil {
		return err
	}
	s.setFlash(c, "success", "The second factor is removed.")
	return redirect(c, "/account/security")
}

func (s *Server) passkeyRegistrationOptions(c echo.Context) error {
	opts, err := s.deps.Factors.BeginPasskeyRegistration(c.Request().Context(), principal(c))
	if err != nil {
		return jsonError(c, err)
	}
	return c.JSONBlob(http.StatusOK, opts)
}

func (s *Server) registerPasskey(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	codes, err := s.deps.Factors.FinishPasskeyRegistration(c.Request().Context(), principal(c), c.QueryParam("name"), body, s.meta(c))
	if err != nil {
		return jsonError(c, err)
	}
	if len(codes) == 0 {
		s.setFlash(c, "success", "The passkey is added.")
	}
	return c.JSON(http.StatusOK, jsonAnswer{Redirect: "/account/security", RecoveryCodes: codes})
}

// ---- administrators ----

func (s *Server) factorResetProps(c echo.Context, userID int64) (templates.FactorResetProps, error) {
	props := templates.FactorResetProps{CSRF: csrfToken(c)}
	if s.deps.Factors == nil {
		props.Summary = "Second factors are not enabled."
		return props, nil
	}
	st, err := s.deps.Factors.StatusOf(c.Request().Context(), principal(c), userID)
	if err != nil {
		return props, err
	}
	var parts []string
	if st.TOTP != nil {
		parts = append(parts, "an authenticator app")
	}
	if n := len(st.Passkeys); n == 1 {
		parts = append(parts, "1 passkey")
	} else if n > 1 {
		parts = append(parts, strconv.Itoa(n)+" passkeys")
	}
	switch {
	case len(parts) == 0 && st.Required:
		props.Summary = "None yet; the portal will ask for one at the next sign-in."
	case len(parts) == 0:
		props.Summary = "None."
	default:
		props.Summary = strings.Join(parts, " and ") + ", " + strconv.Itoa(st.RecoveryLeft) + " unused recovery codes."
		props.Action = userURL(userID) + "/second-factor/reset"
	}
	return props, nil
}

func (s *Server) resetFactor(c echo.Context) error {
	id, err := s.userID(c)
	if err != nil {
		return err
	}
	u, err := s.deps.Factors.Reset(c.Request().Context(), principal(c), id, s.meta(c))
	if err != nil {
		return err
	}
	msg := "The second factor of " + u.Email + " is reset and their sessions ended. They set up a new one at their next sign-in."
	if n, ok := s.deps.Notify.(FactorResetNotifier); ok && n.SendFactorReset(u.Email, u.Name, principal(c).Email, strings.TrimRight(s.cfg.PublicURL, "/")+"/login") {
		msg += " They were told by email."
	}
	s.setFlash(c, "success", msg)
	return redirect(c, userURL(id))
}

type codeForm struct{ Code string }

func parseCodeForm(v url.Values) (codeForm, error) {
	if err := checkForm(v); err != nil {
		return codeForm{}, err
	}
	code, ok := secret(v, "code")
	if !ok {
		return codeForm{}, errFormTooLarge
	}
	return codeForm{Code: strings.TrimSpace(code)}, nil
}

// FactorResetNotifier tells a person by email that an administrator reset their second factor.
type FactorResetNotifier interface {
	SendFactorReset(to, name, resetBy, signIn string) bool
}
