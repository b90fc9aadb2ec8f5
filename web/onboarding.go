package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"portal/internal/problem"
	"portal/templates"
)

// showOnboarding shows a team's checklist from an invitation to a working token: the team in
// ?team=, or the person's first team.
func (s *Server) showOnboarding(c echo.Context) error {
	if s.deps.Clients == nil {
		return errNotFound
	}
	ctx, p := c.Request().Context(), principal(c)
	type team struct {
		id   int64
		name string
	}
	var teams []team
	if p.IsAdmin() {
		all, err := s.deps.Auth.ListTeams(ctx)
		if err != nil {
			return err
		}
		for _, t := range all {
			teams = append(teams, team{t.ID, t.Name})
		}
	} else {
		for _, t := range p.Teams {
			teams = append(teams, team{t.TeamID, t.TeamName})
		}
	}
	if len(teams) == 0 {
		return problem.New(problem.KindNotFound, "You are not on a team yet. Ask an administrator or a team owner for an invitation.")
	}
	id := teams[0].id
	if v, ok := parseID(c.QueryParam("team")); ok {
		id = v
	}
	cl, err := s.deps.Clients.Onboarding(ctx, p, id, func(env string) map[string]bool { return s.deps.Tryit.OpenProgress(env, id) })
	if err != nil {
		return err
	}
	props := templates.OnboardingProps{Layout: s.layout(c, "Getting started", "Getting started"), Team: cl.Team, Total: len(cl.Items)}
	for _, t := range teams {
		props.Teams = append(props.Teams, templates.Option{Value: strconv.FormatInt(t.id, 10), Label: t.name, Selected: t.id == id})
	}
	for _, it := range cl.Items {
		if it.Done {
			props.Done++
		}
		props.Items = append(props.Items, templates.OnboardingItem{Key: it.Key, Title: it.Title, Done: it.Done, Next: it.Key == cl.Next,
			Detail: it.Detail, URL: it.URL, Action: it.Action, WhoCan: it.WhoCan})
	}
	return render(c, http.StatusOK, templates.OnboardingPage(props))
}
