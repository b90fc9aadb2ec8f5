package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/auth"
	"portal/internal/clients"
	"portal/templates"
)

const keyOverviewURL = "/keys"

// maxOverviewRows bounds the overview page; the filters narrow it further.
const maxOverviewRows = 500

// dashboardKeys is how many expiring keys the dashboard lists before pointing to the overview.
const dashboardKeys = 10

// maxWithinDays bounds the "expires within" filter; keys live at most a year.
const maxWithinDays = 3650

// keyOverviewQuery is the overview's filter form as submitted.
type keyOverviewQuery struct {
	Env, Team, Within string
}

// parse checks the form against the environments the portal has; messages are per field.
func (s *Server) parseKeyOverview(q keyOverviewQuery) (clients.ExpiryFilter, map[string]string) {
	var f clients.ExpiryFilter
	bad := map[string]string{}
	if q.Env != "" {
		if _, ok := s.findEnv(q.Env); !ok {
			bad["env"] = "Choose one of the environments."
		}
		f.Env = q.Env
	}
	if q.Team != "" {
		id, err := strconv.ParseInt(q.Team, 10, 64)
		if err != nil || id <= 0 {
			bad["team"] = "Choose one of the teams."
		}
		f.TeamID = id
	}
	if q.Within != "" {
		n, err := strconv.Atoi(q.Within)
		if err != nil || n < 1 || n > maxWithinDays {
			bad["within"] = fmt.Sprintf("Enter a whole number of days from 1 to %d, or leave it empty.", maxWithinDays)
		}
		f.Within = n
	}
	return f, bad
}

func (s *Server) overviewEnvLabel(name string) string {
	if e, ok := s.findEnv(name); ok && e.Label != "" {
		return e.Label
	}
	return name
}

// overviewRows shapes keys for the overview and the dashboard panel.
func (s *Server) overviewRows(keys []clients.KeyExpiry) []templates.KeyOverviewRow {
	now := s.cfg.Now()
	out := make([]templates.KeyOverviewRow, 0, len(keys))
	for _, k := range keys {
		r := templates.KeyOverviewRow{Env: s.overviewEnvLabel(k.Env), URL: integrationURL(k.Env, k.ClientID), Name: k.Name,
			ClientID: k.ClientID, Team: k.Team, Kid: k.Kid, Alg: k.Alg, Custody: custodyLabels[k.Custody]}
		if !k.Expires.IsZero() {
			r.Expires = k.Expires.UTC().Format(dateFormat)
			r.DaysLeft, r.Color = expiry(k.Expires, now)
			if !k.Expires.After(now) {
				r.DaysLeft = "expired" // the date is beside it
			}
		}
		out = append(out, r)
	}
	return out
}

// overviewTeams are the teams the overview can filter by: every team for admins, one's own otherwise.
func (s *Server) overviewTeams(c echo.Context, p *auth.Principal, selected string) ([]templates.Option, error) {
	opts := []templates.Option{{Value: "", Label: "Any team", Selected: selected == ""}}
	if p.IsAdmin() {
		teams, err := s.deps.Auth.ListTeams(c.Request().Context())
		if err != nil {
			return nil, err
		}
		for _, t := range teams {
			v := strconv.FormatInt(t.ID, 10)
			opts = append(opts, templates.Option{Value: v, Label: t.Name, Selected: v == selected})
		}
		return opts, nil
	}
	for _, t := range p.Teams {
		v := strconv.FormatInt(t.TeamID, 10)
		opts = append(opts, templates.Option{Value: v, Label: t.TeamName, Selected: v == selected})
	}
	return opts, nil
}

func (s *Server) showKeyOverview(c echo.Context) error {
	if s.deps.Clients == nil {
		return errNotFound
	}
	p := principal(c)
	qp := c.QueryParams()
	q := keyOverviewQuery{Env: strings.TrimSpace(qp.Get("env")), Team: strings.TrimSpace(qp.Get("team")),
		Within: strings.TrimSpace(qp.Get("within"))}
	props := templates.KeyOverviewProps{Layout: s.layout(c, "Keys", "Keys"), Action: keyOverviewURL,
		Within: templates.Field{Value: q.Within}}
	props.Envs = append(props.Envs, templates.Option{Value: "", Label: "Both environments", Selected: q.Env == ""})
	for _, e := range s.cfg.Envs {
		props.Envs = append(props.Envs, templates.Option{Value: e.Name, Label: e.Label, Selected: e.Name == q.Env})
	}
	teams, err := s.overviewTeams(c, p, q.Team)
	if err != nil {
		return err
	}
	props.Teams = teams

	f, bad := s.parseKeyOverview(q)
	if len(bad) > 0 {
		props.Error = "Check the filters: " + strings.Join(overviewMessages(bad), " ")
		props.Within.Error = bad["within"]
		return render(c, http.StatusUnprocessableEntity, templates.KeyOverviewPage(props))
	}
	keys, err := s.deps.Clients.KeyExpiries(c.Request().Context(), p, f)
	if err != nil {
		return err
	}
	switch n := len(keys); {
	case n == 0:
		props.CountText = "No keys match."
	case n == 1:
		props.CountText = "1 key."
	case n > maxOverviewRows:
		props.CountText = fmt.Sprintf("The %d soonest of %d keys. Narrow the filters to see the rest.", maxOverviewRows, n)
		keys = keys[:maxOverviewRows]
	default:
		props.CountText = fmt.Sprintf("%d keys.", n)
	}
	props.Rows = s.overviewRows(keys)
	return render(c, http.StatusOK, templates.KeyOverviewPage(props))
}

// overviewMessages lists a field-message map's messages in a stable order.
func overviewMessages(m map[string]string) []string {
	var out []string
	for _, k := range []string{"env", "team", "within"} {
		if v, ok := m[k]; ok {
			out = append(out, v)
		}
	}
	return out
}

// expiringKeys fills the dashboard's panel with the person's keys that expire within 30 days.
// The dashboard is where everyone lands, so a failure here is logged and the panel left out.
func (s *Server) expiringKeys(c echo.Context, p *auth.Principal, props *templates.DashboardProps) {
	if s.deps.Clients == nil {
		return
	}
	const days = 30
	keys, err := s.deps.Clients.KeyExpiries(c.Request().Context(), p, clients.ExpiryFilter{Within: days})
	if err != nil {
		s.log.Warn("dashboard: expiring keys", "request_id", requestID(c), "err", err)
		return
	}
	if len(keys) > dashboardKeys {
		props.ExpiringMore = fmt.Sprintf("%d more not listed here.", len(keys)-dashboardKeys)
		keys = keys[:dashboardKeys]
	}
	props.ExpiringKeys = s.overviewRows(keys)
	props.ExpiringURL = keyOverviewURL + "?" + url.Values{"within": {strconv.Itoa(days)}}.Encode()
}
