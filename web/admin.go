package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/auth"
	"portal/internal/problem"
	"portal/templates"
)

func roleOptions(selected string) []templates.Option {
	return []templates.Option{
		{Value: auth.RoleMember, Label: "Member", Selected: selected != auth.RoleAdmin},
		{Value: auth.RoleAdmin, Label: "Administrator", Selected: selected == auth.RoleAdmin},
	}
}

func teamRoleOptions(selected string) []templates.Option {
	opts := []templates.Option{{Value: auth.TeamMember, Label: "Member (changes the team's integrations)"},
		{Value: auth.TeamOwner, Label: "Owner (also manages the team)"}, {Value: auth.TeamViewer, Label: "Viewer (reads only)"}}
	for i := range opts {
		opts[i].Selected = opts[i].Value == selected
	}
	if selected == "" {
		opts[0].Selected = true
	}
	return opts
}

func userURL(id int64) string { return "/admin/users/" + itoa(id) }

func (s *Server) usersProps(c echo.Context) (templates.AdminUsersProps, error) {
	ctx := c.Request().Context()
	p := principal(c)
	users, teams, err := s.deps.Auth.ListUsers(ctx, p)
	if err != nil {
		return templates.AdminUsersProps{}, err
	}
	props := templates.AdminUsersProps{Layout: s.layout(c, "Users", "Users"), Action: "/admin/users", Roles: roleOptions("")}
	emails := make(map[int64]string, len(users))
	for _, u := range users {
		emails[u.ID] = u.Email
	}
	for _, u := range users {
		row := templates.UserRow{URL: userURL(u.ID), Name: u.Name, Email: u.Email, Role: u.Role, Disabled: u.Disabled,
			Pending: u.PendingApproval, Created: createdText(u.CreatedVia, u.CreatedAt, emails[u.CreatedBy])}
		var names []string
		for _, m := range teams[u.ID] {
			names = append(names, m.TeamName+" ("+m.Role+")")
		}
		row.Teams = strings.Join(names, ", ")
		props.Users = append(props.Users, row)
	}
	return props, nil
}

func (s *Server) listUsers(c echo.Context) error {
	props, err := s.usersProps(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.AdminUsersPage(props))
}

func (s *Server) createUser(c echo.Context) error {
	f, err := decodeForm(c, parseUserForm)
	if err != nil {
		return err
	}
	u, token, err := s.deps.Auth.CreateUser(c.Request().Context(), principal(c), f.Email, f.Name, f.Role, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		props, lerr := s.usersProps(c)
		if lerr != nil {
			return lerr
		}
		props.Error = pe.Message
		props.Email = templates.Field{Value: f.Email, Error: pe.Fields["email"]}
		props.Name = templates.Field{Value: f.Name, Error: pe.Fields["name"]}
		props.Roles = roleOptions(f.Role)
		return render(c, http.StatusUnprocessableEntity, templates.AdminUsersPage(props))
	}
	if err != nil {
		return err
	}
	link := s.absURL("/password/set", url.Values{"token": {token}})
	sent := ""
	if s.deps.Notify != nil && s.deps.Notify.SendPasswordLink(u.Email, u.Name, link) {
		sent = " It is also being sent to " + u.Email + "."
	}
	return render(c, http.StatusCreated, templates.LinkPage(templates.LinkProps{Layout: s.layout(c, "User added", "Users"),
		Heading: u.Name + " is added",
		Text:    "Give this link to " + u.Email + " yourself. It works once, for 72 hours, and lets them choose a password. It is not shown again." + sent,
		Link:    link, Back: userURL(u.ID)}))
}

func (s *Server) userID(c echo.Context) (int64, error) {
	id, ok := parseID(c.Param("id"))
	if !ok {
		return 0, errNotFound
	}
	return id, nil
}

func (s *Server) showUser(c echo.Context) error {
	id, err := s.userID(c)
	if err != nil {
		return err
	}
	p := principal(c)
	u, ms, err := s.deps.Auth.User(c.Request().Context(), p, id)
	if err != nil {
		return err
	}
	by := ""
	if u.CreatedBy != 0 {
		if creator, _, err := s.deps.Auth.User(c.Request().Context(), p, u.CreatedBy); err == nil {
			by = creator.Email
		}
	}
	lock, err := s.deps.Auth.AccountLock(c.Request().Context(), p, id)
	if err != nil {
		return err
	}
	props := templates.AdminUserProps{Layout: s.layout(c, u.Name, "Users"), Name: u.Name, Email: u.Email, Role: u.Role,
		Disabled: u.Disabled, Self: u.ID == p.UserID, Roles: roleOptions(u.Role),
		RoleAction: userURL(id) + "/role", EnableAction: userURL(id) + "/disabled", SessAction: userURL(id) + "/sessions",
		LinkAction: userURL(id) + "/password-link", Created: createdText(u.CreatedVia, u.CreatedAt, by),
		Pending: u.PendingApproval, ApproveAction: userURL(id) + "/approve", UnlockAction: userURL(id) + "/unlock"}
	if !lock.Until.IsZero() {
		props.Locked = "Locked after " + strconv.Itoa(lock.Failures) + " failed sign-ins, until " + showTime(lock.Until) + "."
	}
	for _, m := range ms {
		props.Teams = append(props.Teams, templates.TeamRoleView{Team: m.TeamName, URL: teamURL(m.TeamID), Role: m.Role, Source: m.Source})
	}
	if props.Factors, err = s.factorResetProps(c, id); err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.AdminUserPage(props))
}

// adminAction decodes a form, runs one domain call for the user in the path and redirects
// back to the user's page with a message.
func (s *Server) adminUserAction(c echo.Context, do func(id int64, v url.Values) (string, error)) error {
	// The domain refuses non-admins too; refusing here first keeps form errors from telling
	// a non-admin anything.
	if !principal(c).IsAdmin() {
		return errAdminOnly
	}
	id, err := s.userID(c)
	if err != nil {
		return err
	}
	v, err := formValues(c)
	if err != nil || checkForm(v) != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	msg, err := do(id, v)
	if err != nil {
		return err
	}
	s.setFlash(c, "success", msg)
	return redirect(c, userURL(id))
}

func (s *Server) setUserRole(c echo.Context) error {
	return s.adminUserAction(c, func(id int64, v url.Values) (string, error) {
		role := field(v, "role", 32)
		return "The role is now " + role + ".", s.deps.Auth.SetRole(c.Request().Context(), principal(c), id, role, s.meta(c))
	})
}

func (s *Server) setUserDisabled(c echo.Context) error {
	return s.adminUserAction(c, func(id int64, v url.Values) (string, error) {
		f, err := parseFlagForm(v)
		if err != nil {
			return "", problem.Invalid(err.Error(), nil)
		}
		msg := "The user is enabled again."
		if f.Disabled {
			msg = "The user is disabled and signed out everywhere."
		}
		return msg, s.deps.Auth.SetDisabled(c.Request().Context(), principal(c), id, f.Disabled, s.meta(c))
	})
}

func (s *Server) approveUser(c echo.Context) error {
	return s.adminUserAction(c, func(id int64, v url.Values) (string, error) {
		return "The account is approved; its owner can sign in now.", s.deps.Auth.ApproveUser(c.Request().Context(), principal(c), id, s.meta(c))
	})
}

func (s *Server) unlockUser(c echo.Context) error {
	return s.adminUserAction(c, func(id int64, v url.Values) (string, error) {
		n, err := s.deps.Auth.UnlockUser(c.Request().Context(), principal(c), id, s.meta(c))
		return "Sign-in is unlocked; " + itoa(n) + " failed attempt(s) forgotten.", err
	})
}

// createdText says how an account was made and by whom, for the user list and page.
func createdText(via string, at time.Time, by string) string {
	var what string
	switch via {
	case auth.ViaSetup:
		what = "at setup"
	case auth.ViaCLI:
		what = "with the command line"
	case auth.ViaAdmin:
		what = "by an administrator"
	case auth.ViaInvitation:
		what = "through an invitation"
	default:
		return "not recorded"
	}
	if by != "" {
		if via == auth.ViaInvitation {
			what += " from " + by
		} else {
			what = "by " + by
		}
	}
	return what + ", " + showTime(at)
}

func (s *Server) endUserSessions(c echo.Context) error {
	return s.adminUserAction(c, func(id int64, v url.Values) (string, error) {
		n, err := s.deps.Auth.EndSessions(c.Request().Context(), principal(c), id, s.meta(c))
		return "Ended " + itoa(n) + " session(s).", err
	})
}

func (s *Server) newPasswordLink(c echo.Context) error {
	id, err := s.userID(c)
	if err != nil {
		return err
	}
	token, err := s.deps.Auth.NewPasswordLink(c.Request().Context(), principal(c), id, s.meta(c))
	if err != nil {
		return err
	}
	link := s.absURL("/password/set", url.Values{"token": {token}})
	sent := ""
	if s.deps.Notify != nil {
		if u, _, err := s.deps.Auth.User(c.Request().Context(), principal(c), id); err != nil {
			s.log.Error("look up the user to send a set-password link", "user_id", id, "err", err)
		} else if s.deps.Notify.SendPasswordLink(u.Email, u.Name, link) {
			sent = " It is also being sent to " + u.Email + "."
		}
	}
	return render(c, http.StatusOK, templates.LinkPage(templates.LinkProps{Layout: s.layout(c, "Set-password link", "Users"),
		Heading: "New set-password link",
		Text:    "Give this link to the user yourself. It works once, for 72 hours. It is not shown again." + sent,
		Link:    link, Back: userURL(id)}))
}

var errAdminOnly = problem.New(problem.KindForbidden, "Only administrators may do this.")

func (s *Server) teamsProps(c echo.Context) (templates.AdminTeamsProps, error) {
	if !principal(c).IsAdmin() {
		return templates.AdminTeamsProps{}, errAdminOnly
	}
	teams, err := s.deps.Auth.ListTeams(c.Request().Context())
	if err != nil {
		return templates.AdminTeamsProps{}, err
	}
	props := templates.AdminTeamsProps{Layout: s.layout(c, "Teams", "Teams"), Action: "/admin/teams", Owner: true}
	for _, t := range teams {
		props.Teams = append(props.Teams, templates.TeamRow{URL: teamURL(t.ID), Name: t.Name})
	}
	return props, nil
}

func (s *Server) listTeams(c echo.Context) error {
	props, err := s.teamsProps(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.AdminTeamsPage(props))
}

func (s *Server) createTeam(c echo.Context) error {
	f, err := decodeForm(c, parseTeamForm)
	if err != nil {
		return err
	}
	t, err := s.deps.Auth.CreateTeamWith(c.Request().Context(), principal(c), f.Name, f.Owner, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		props, lerr := s.teamsProps(c)
		if lerr != nil {
			return lerr
		}
		props.Error, props.Name = pe.Message, templates.Field{Value: f.Name, Error: pe.Fields["name"]}
		props.Owner = f.Owner
		return render(c, http.StatusUnprocessableEntity, templates.AdminTeamsPage(props))
	}
	if err != nil {
		return err
	}
	msg := "Team " + t.Name + " is created. Add its members below."
	if f.Owner {
		msg = "Team " + t.Name + " is created and you are its owner. Add its members below, or create its first integration."
	}
	s.setFlash(c, "success", msg)
	return redirect(c, teamURL(t.ID))
}

func (s *Server) teamProps(c echo.Context, id int64) (templates.TeamProps, error) {
	p := principal(c)
	t, ms, err := s.deps.Auth.Team(c.Request().Context(), p, id)
	if err != nil {
		return templates.TeamProps{}, err
	}
	props := templates.TeamProps{Layout: s.layout(c, t.Name, "Teams"), Name: t.Name, CanManage: p.IsAdmin(),
		RenameAction: "/admin/teams/" + itoa(id) + "/name", MemberAction: "/admin/teams/" + itoa(id) + "/members",
		Roles: teamRoleOptions("")}
	for _, m := range ms {
		props.Members = append(props.Members, templates.MemberRow{Name: m.Name, Email: m.Email, Role: m.Role, Source: m.Source,
			RemoveAction: "/admin/teams/" + itoa(id) + "/members/" + itoa(m.UserID) + "/remove"})
	}
	props.Invites, err = s.invitesProps(c, id)
	return props, err
}

func (s *Server) showTeam(c echo.Context) error {
	id, ok := parseID(c.Param("id"))
	if !ok {
		return errNotFound
	}
	props, err := s.teamProps(c, id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.TeamPage(props))
}

func (s *Server) teamForm(c echo.Context) (int64, url.Values, error) {
	id, ok := parseID(c.Param("id"))
	if !ok {
		return 0, nil, errNotFound
	}
	v, err := formValues(c)
	if err != nil || checkForm(v) != nil {
		return 0, nil, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	return id, v, nil
}

func (s *Server) renameTeam(c echo.Context) error {
	id, v, err := s.teamForm(c)
	if err != nil {
		return err
	}
	name := field(v, "name", 400)
	err = s.deps.Auth.RenameTeam(c.Request().Context(), principal(c), id, name, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		props, lerr := s.teamProps(c, id)
		if lerr != nil {
			return lerr
		}
		props.RenameError, props.NewName = pe.Message, templates.Field{Value: name, Error: pe.Fields["name"]}
		return render(c, http.StatusUnprocessableEntity, templates.TeamPage(props))
	}
	if err != nil {
		return err
	}
	s.setFlash(c, "success", "The team is renamed.")
	return redirect(c, teamURL(id))
}

func (s *Server) putMember(c echo.Context) error {
	id, v, err := s.teamForm(c)
	if err != nil {
		return err
	}
	email, role := field(v, "email", maxEmailFieldSize), field(v, "role", 32)
	err = s.deps.Auth.PutMember(c.Request().Context(), principal(c), id, email, role, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		props, lerr := s.teamProps(c, id)
		if lerr != nil {
			return lerr
		}
		props.MemberError, props.MemberEmail, props.Roles = pe.Message, templates.Field{Value: email, Error: pe.Fields["email"]}, teamRoleOptions(role)
		return render(c, http.StatusUnprocessableEntity, templates.TeamPage(props))
	}
	if err != nil {
		return err
	}
	s.setFlash(c, "success", email+" is now "+role+" of the team.")
	return redirect(c, teamURL(id))
}

func (s *Server) removeMember(c echo.Context) error {
	id, _, err := s.teamForm(c)
	if err != nil {
		return err
	}
	uid, ok := parseID(c.Param("user"))
	if !ok {
		return errNotFound
	}
	if err := s.deps.Auth.RemoveMember(c.Request().Context(), principal(c), id, uid, s.meta(c)); err != nil {
		return err
	}
	s.setFlash(c, "success", "The member is removed from the team.")
	return redirect(c, teamURL(id))
}

// listEnvironments shows every environment's configuration (no secrets), whether it is
// simulated, and its live health, checked in parallel.
func (s *Server) listEnvironments(c echo.Context) error {
	if !principal(c).IsAdmin() {
		return errAdminOnly
	}
	ctx := c.Request().Context()
	props := templates.AdminEnvironmentsProps{Layout: s.layout(c, "Environments", "Environments")}
	props.Envs = make([]templates.EnvStatus, len(s.cfg.Envs))
	var wg sync.WaitGroup
	for i, e := range s.cfg.Envs {
		st := templates.EnvStatus{Env: s.envSummary(e)}
		if s.deps.Clients != nil {
			info, err := s.deps.Clients.SyncStatus(ctx, e.Name)
			switch {
			case err != nil:
				st.SyncText = "unknown: " + messageOf(err, statusOf(err))
			case info.Never:
				st.SyncText = "never synced"
			default:
				st.SyncOK = info.OK
				st.SyncText = showTime(info.FinishedAt) + ": " + info.Message
			}
			if st.PrivilegedPolicy, err = s.deps.Clients.PrivilegedScopes(ctx, e.Name); err != nil {
				return err
			}
			found, err := s.deps.Clients.PrivilegedFindings(ctx, principal(c), e.Name)
			if err != nil {
				return err
			}
			for _, f := range found {
				team := f.Team
				if team == "" {
					team = "unowned"
				}
				st.Privileged = append(st.Privileged, templates.PrivilegedView{Name: f.Name, ClientID: f.ClientID,
					URL: integrationURL(e.Name, f.ClientID), Team: team, Scopes: f.Scopes, FoundAt: showTime(f.FoundAt)})
			}
		}
		props.Envs[i] = st
		if s.health == nil {
			continue
		}
		wg.Go(func() {
			checks, at, err := s.health.get(ctx, e.Name)
			if err == nil {
				props.Envs[i].Checks, props.Envs[i].CheckedAt = checkViews(checks), showTime(at)
			}
		})
	}
	wg.Wait()
	return render(c, http.StatusOK, templates.AdminEnvironmentsPage(props))
}
