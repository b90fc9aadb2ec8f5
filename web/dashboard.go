package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/templates"
)

func (s *Server) envSummary(e Env) templates.EnvSummary {
	return templates.EnvSummary{Name: e.Name, Label: e.Label, URL: "/envs/" + e.Name, Simulated: e.Simulated, Issuer: e.Issuer,
		TokenURL: e.TokenURL, SelfService: e.SelfService, Platform: e.Platform, Org: e.Org, OrgNo: e.OrgNo,
		AdminClient: e.AdminClient, Problem: e.Problem}
}

func (s *Server) dashboard(c echo.Context) error {
	p := principal(c)
	props := templates.DashboardProps{Layout: s.layout(c, "Overview", "Overview"), Name: p.Name, Admin: p.IsAdmin()}
	for _, e := range s.cfg.Envs {
		props.Envs = append(props.Envs, s.envSummary(e))
	}
	for _, t := range p.Teams {
		props.Teams = append(props.Teams, templates.TeamRoleView{Team: t.TeamName, URL: teamURL(t.TeamID), Role: t.Role})
	}
	if p.IsAdmin() {
		teams, err := s.deps.Auth.ListTeams(c.Request().Context())
		if err != nil {
			return err
		}
		if len(teams) == 0 {
			props.Setup = append(props.Setup, "Create a team under Teams: every integration belongs to one.")
		}
	}
	if len(p.Teams) == 0 {
		hint, err := s.noTeamHint(c, "You are not in a team yet, and every integration belongs to one.")
		if err != nil {
			return err
		}
		props.NoTeam = hint
	}
	s.expiringKeys(c, p, &props)
	return render(c, http.StatusOK, templates.DashboardPage(props))
}

func (s *Server) findEnv(name string) (Env, bool) {
	for _, e := range s.cfg.Envs {
		if e.Name == name {
			return e, true
		}
	}
	return Env{}, false
}

func (s *Server) showEnv(c echo.Context) error {
	e, ok := s.findEnv(c.Param("env"))
	if !ok {
		return errNotFound
	}
	props := templates.EnvProps{Layout: s.layout(c, e.Label, ""), Env: s.envSummary(e)}
	if s.deps.Clients != nil {
		if info, err := s.deps.Clients.SyncStatus(c.Request().Context(), e.Name); err == nil {
			props.OtherKinds = info.OtherKindsText()
		}
		// Non-administrators see their teams' figures only, never the organisation's.
		n, err := s.deps.Clients.Counts(c.Request().Context(), principal(c), e.Name)
		if err != nil {
			return err
		}
		props.Integrations = fmt.Sprintf("%d active, %d of them changed outside the portal (your teams')", n.Integrations, n.Drifted)
		if n.OrgWide {
			props.Integrations = fmt.Sprintf("%d active, %d of them changed outside the portal (the whole organisation)", n.Integrations, n.Drifted)
		}
	}
	if s.health != nil {
		checks, at, err := s.health.get(c.Request().Context(), e.Name)
		if err != nil {
			return err
		}
		props.Checks, props.CheckedAt = checkViews(checks), showTime(at)
	}
	return render(c, http.StatusOK, templates.EnvPage(props))
}

func checkViews(checks []Check) []templates.CheckView {
	var out []templates.CheckView
	for _, ch := range checks {
		out = append(out, templates.CheckView{Name: ch.Name, OK: ch.OK, Detail: ch.Detail, Took: ch.Took.Round(time.Millisecond).String()})
	}
	return out
}

// noTeamHint says what a person in no team does next: administrators create one, others learn
// who their administrators are.
func (s *Server) noTeamHint(c echo.Context, lead string) (templates.NoTeamHint, error) {
	if principal(c).IsAdmin() {
		return templates.NoTeamHint{Lead: lead, Admin: true, CreateURL: "/admin/teams"}, nil
	}
	admins, err := s.deps.Auth.Administrators(c.Request().Context())
	if err != nil {
		return templates.NoTeamHint{}, err
	}
	names := make([]string, 0, len(admins))
	for _, a := range admins {
		names = append(names, a.Name+" ("+a.Email+")")
	}
	return templates.NoTeamHint{Lead: lead, Admins: strings.Join(names, " or ")}, nil
}
