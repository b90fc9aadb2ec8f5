package web

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"portal/internal/clients"
)

// Limits on what a form may carry; anything beyond is refused before it reaches a service.
const (
	maxFormFields     = 64
	maxFieldBytes     = 8 << 10
	maxPasswordField  = 1024
	maxEmailFieldSize = 320
)

var errFormTooLarge = errors.New("the form has too many or too large fields")
var errFormEncoding = errors.New("the form contains text that is not valid UTF-8")

// checkForm refuses forms with too many fields, oversized values or invalid UTF-8, so every
// decoder below can trust what it reads.
func checkForm(v url.Values) error {
	if len(v) > maxFormFields {
		return errFormTooLarge
	}
	for k, vals := range v {
		if len(vals) > maxFormFields || !utf8.ValidString(k) || len(k) > 128 {
			return errFormTooLarge
		}
		for _, s := range vals {
			if len(s) > maxFieldBytes {
				return errFormTooLarge
			}
			if !utf8.ValidString(s) {
				return errFormEncoding
			}
		}
	}
	return nil
}

// field returns a trimmed single value, cut to max bytes.
func field(v url.Values, name string, max int) string {
	s := strings.TrimSpace(v.Get(name))
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
	}
	return s
}

// secret returns a single value untrimmed: spaces in passwords are significant.
func secret(v url.Values, name string) (string, bool) {
	s := v.Get(name)
	return s, len(s) <= maxPasswordField
}

type loginForm struct {
	Email    string
	Password string
	Next     string
}

func parseLoginForm(v url.Values) (loginForm, error) {
	if err := checkForm(v); err != nil {
		return loginForm{}, err
	}
	pw, ok := secret(v, "password")
	if !ok {
		return loginForm{}, errFormTooLarge
	}
	return loginForm{Email: field(v, "email", maxEmailFieldSize), Password: pw, Next: safeNext(v.Get("next"))}, nil
}

// safeNext keeps a post-login redirect on this site: only a local absolute path is allowed,
// never a scheme-relative URL or one with a host.
func safeNext(next string) string {
	if next == "" || len(next) > 512 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

type accountForm struct {
	Token    string
	Email    string
	Name     string
	Password string
	Confirm  string
	Current  string
}

func parseAccountForm(v url.Values) (accountForm, error) {
	if err := checkForm(v); err != nil {
		return accountForm{}, err
	}
	var f accountForm
	var ok1, ok2, ok3 bool
	f.Password, ok1 = secret(v, "password")
	f.Confirm, ok2 = secret(v, "confirm")
	f.Current, ok3 = secret(v, "current")
	if !ok1 || !ok2 || !ok3 {
		return f, errFormTooLarge
	}
	f.Token = field(v, "token", 128)
	f.Email = field(v, "email", maxEmailFieldSize)
	f.Name = field(v, "name", 400)
	return f, nil
}

type userForm struct {
	Email string
	Name  string
	Role  string
}

func parseUserForm(v url.Values) (userForm, error) {
	if err := checkForm(v); err != nil {
		return userForm{}, err
	}
	return userForm{Email: field(v, "email", maxEmailFieldSize), Name: field(v, "name", 400), Role: field(v, "role", 32)}, nil
}

type nameForm struct{ Name string }

func parseNameForm(v url.Values) (nameForm, error) {
	if err := checkForm(v); err != nil {
		return nameForm{}, err
	}
	return nameForm{Name: field(v, "name", 400)}, nil
}

type teamForm struct {
	Name  string
	Owner bool // make the creator an owner
}

func parseTeamForm(v url.Values) (teamForm, error) {
	if err := checkForm(v); err != nil {
		return teamForm{}, err
	}
	return teamForm{Name: field(v, "name", 400), Owner: v.Get("owner") != ""}, nil
}

type flagForm struct{ Disabled bool }

func parseFlagForm(v url.Values) (flagForm, error) {
	if err := checkForm(v); err != nil {
		return flagForm{}, err
	}
	b, err := strconv.ParseBool(field(v, "disabled", 8))
	if err != nil {
		return flagForm{}, errors.New("choose whether the user is disabled")
	}
	return flagForm{Disabled: b}, nil
}

// parseID reads a positive integer path parameter.
func parseID(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// integrationForm is the create, edit, copy and deactivate forms of an integration.
type integrationForm struct {
	Name        string
	Description string
	TeamID      int64
	Scopes      []string
	Key         string
	Version     string
	ConfirmName string
	Preset      string
	Confirm     bool
}

func parseIntegrationForm(v url.Values) (integrationForm, error) {
	if err := checkForm(v); err != nil {
		return integrationForm{}, err
	}
	// Text fields are not cut here: the domain says when one is too long, so nothing typed is
	// silently lost.
	f := integrationForm{Name: field(v, "name", maxFieldBytes), Description: field(v, "description", maxFieldBytes),
		Key: field(v, "key", 128), Version: field(v, "version", 64), ConfirmName: field(v, "confirm_name", maxFieldBytes),
		Preset: field(v, "preset", 32), Confirm: v.Get("confirm") == "1"}
	if t := field(v, "team", 20); t != "" {
		id, ok := parseID(t)
		if !ok {
			return f, errors.New("choose a team from the list")
		}
		f.TeamID = id
	}
	for _, sc := range v["scopes"] {
		if sc = strings.TrimSpace(sc); sc != "" && len(sc) <= 256 {
			f.Scopes = append(f.Scopes, sc)
		}
	}
	return f, nil
}

// parseIntegrationQuery reads the list's query string. It is lenient: a value it does not
// understand falls back to the default instead of failing the page.
func parseIntegrationQuery(v url.Values) clients.Query {
	q := clients.Query{Text: field(v, "q", 200), Scope: field(v, "scope", 256), Status: field(v, "status", 16),
		NoKeys: v.Get("nokeys") == "1", Expiring: v.Get("expiring") == "1", Unowned: v.Get("unowned") == "1",
		Privileged: v.Get("privileged") == "1"}
	if !utf8.ValidString(q.Text) || !utf8.ValidString(q.Scope) {
		q.Text, q.Scope = "", ""
	}
	switch q.Status {
	case clients.StatusActive, clients.StatusInactive, clients.StatusAll:
	default:
		q.Status = clients.StatusActive
	}
	if id, ok := parseID(v.Get("team")); ok {
		q.TeamID = id
	}
	sort := v.Get("sort")
	if strings.HasPrefix(sort, "-") {
		q.Desc, sort = true, sort[1:]
	}
	switch sort {
	case clients.SortName, clients.SortClientID, clients.SortTeam, clients.SortKeyExpiry, clients.SortLastChange:
		q.Sort = sort
	default:
		q.Sort, q.Desc = clients.SortName, false
	}
	if n, err := strconv.Atoi(v.Get("page")); err == nil && n > 0 && n <= 1_000_000 {
		q.Page = n
	} else {
		q.Page = 1
	}
	return q
}
