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

const invitePath = "/invite"

func invitationsURL(teamID int64) string { return teamURL(teamID) + "/invitations" }

// invitesProps fills the invitations part of a team's page for administrators and the
// team's owners; everyone else gets none.
func (s *Server) invitesProps(c echo.Context, teamID int64) (templates.TeamInvitesProps, error) {
	p := principal(c)
	if !auth.CanInvite(p, teamID) {
		return templates.TeamInvitesProps{}, nil
	}
	invs, err := s.deps.Auth.Invitations(c.Request().Context(), p, teamID)
	if err != nil {
		return templates.TeamInvitesProps{}, err
	}
	props := templates.TeamInvitesProps{Action: invitationsURL(teamID), Roles: teamRoleOptions("")}
	for _, inv := range invs {
		props.Open = append(props.Open, templates.InvitationRow{Email: inv.Email, Role: inv.Role,
			InvitedBy: inv.InviterName + " (" + inv.InviterEmail + ")", Expires: showTime(inv.ExpiresAt),
			RevokeAction: invitationsURL(teamID) + "/" + itoa(inv.ID) + "/revoke"})
	}
	return props, nil
}

// createInvitation invites an address to the team and shows the link once.
func (s *Server) createInvitation(c echo.Context) error {
	id, v, err := s.teamForm(c)
	if err != nil {
		return err
	}
	email, role := field(v, "email", maxEmailFieldSize), field(v, "role", 32)
	inv, token, err := s.deps.Auth.Invite(c.Request().Context(), principal(c), id, email, role, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		props, lerr := s.teamProps(c, id)
		if lerr != nil {
			return lerr
		}
		props.Invites.Error, props.Invites.Email = pe.Message, templates.Field{Value: email, Error: pe.Fields["email"]}
		props.Invites.Roles, props.Invites.RoleError = teamRoleOptions(role), pe.Fields["role"]
		return render(c, http.StatusUnprocessableEntity, templates.TeamPage(props))
	}
	if err != nil {
		return err
	}
	link := s.absURL(invitePath, url.Values{"token": {token}})
	if s.deps.Auth.LinksByEmail() {
		// With email, the link goes to the invitee's address only: whoever accepts it has
		// shown that the address is theirs.
		text := "The invitation link is being emailed to " + inv.Email + ". It works once, until " + showTime(inv.ExpiresAt) +
			". The link is not shown here: only the invitee receives it."
		if s.deps.Notify == nil || !s.deps.Notify.SendInvitation(inv.Email, inv.TeamName, inv.Role, inv.InviterName, link, inv.ExpiresAt) {
			s.log.Error("an invitation email could not be queued", "team", inv.TeamName, "invitation", inv.ID)
			text = "The invitation is stored, but its email could not be queued. Invite " + inv.Email + " again in a few minutes to send a new link."
		}
		s.setFlash(c, "success", text)
		return redirect(c, teamURL(id))
	}
	// Without email the inviter hands the link over; an account made through a non-
	// administrator's invitation then waits for an administrator's approval.
	sent := ""
	if s.deps.Notify != nil && s.deps.Notify.SendInvitation(inv.Email, inv.TeamName, inv.Role, inv.InviterName, link, inv.ExpiresAt) {
		sent = " It is also being sent to " + inv.Email + "."
	}
	return render(c, http.StatusCreated, templates.LinkPage(templates.LinkProps{Layout: s.layout(c, "Invitation created", "Teams"),
		Heading: inv.Email + " is invited to " + inv.TeamName,
		Text: "Give this link to " + inv.Email + " yourself. It works once, until " + showTime(inv.ExpiresAt) +
			", and lets them join the team as " + inv.Role + ", creating their account or signing in to the one they have. It is not shown again." +
			approvalNote(inv.NeedsApproval) + sent,
		Link: link, Back: teamURL(id)}))
}

func (s *Server) revokeInvitation(c echo.Context) error {
	id, _, err := s.teamForm(c)
	if err != nil {
		return err
	}
	invID, ok := parseID(c.Param("inv"))
	if !ok {
		return errNotFound
	}
	if err := s.deps.Auth.RevokeInvitation(c.Request().Context(), principal(c), id, invID, s.meta(c)); err != nil {
		return err
	}
	s.setFlash(c, "success", "The invitation is revoked; its link no longer works.")
	return redirect(c, teamURL(id))
}

// invitationProps shapes the page behind a link for whoever opened it.
func (s *Server) invitationProps(c echo.Context, inv auth.PendingInvitation, token string) templates.InvitationProps {
	props := templates.InvitationProps{Layout: s.layout(c, "Join "+inv.TeamName, ""), Token: token, Action: invitePath,
		LoginAction: "/login", Next: invitePath + "?" + url.Values{"token": {token}}.Encode(),
		Team: inv.TeamName, Role: inv.Role, InvitedBy: inv.InviterName + " (" + inv.InviterEmail + ")", Email: inv.Email,
		Expires: showTime(inv.ExpiresAt)}
	p := principal(c)
	switch {
	case p != nil && strings.EqualFold(p.Email, inv.Email):
		props.Mode = templates.InviteJoin
	case p != nil:
		props.Mode, props.SignedInAs = templates.InviteOther, p.Email
	case inv.HasAccount:
		props.Mode = templates.InviteSignIn
	default:
		props.Mode = templates.InviteCreate
	}
	return props
}

// showInvitation is the page behind an invitation link. A link that does not work gets the
// same not-found page whatever the reason, and says nothing about the address.
func (s *Server) showInvitation(c echo.Context) error {
	token := c.QueryParam("token")
	if len(token) > 128 {
		return errNotFound
	}
	inv, err := s.deps.Auth.InvitationByToken(c.Request().Context(), token)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.InvitationPage(s.invitationProps(c, inv, token)))
}

// acceptInvitation creates the account and membership (signed out) or adds the membership
// (signed in as the invited address), then opens the team's "Getting started" checklist.
func (s *Server) acceptInvitation(c echo.Context) error {
	f, err := decodeForm(c, parseAccountForm)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, err := s.deps.Auth.AcceptInvitation(ctx, principal(c), f.Token,
		auth.NewAccount{Name: f.Name, Password: f.Password, Confirm: f.Confirm}, s.meta(c))
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		inv, lerr := s.deps.Auth.InvitationByToken(ctx, f.Token)
		if lerr != nil {
			return lerr
		}
		props := s.invitationProps(c, inv, f.Token)
		props.Error, props.Name = pe.Message, templates.Field{Value: f.Name, Error: pe.Fields["name"]}
		props.Password, props.Confirm = templates.Field{Error: pe.Fields["password"]}, templates.Field{Error: pe.Fields["confirm"]}
		return render(c, http.StatusUnprocessableEntity, templates.InvitationPage(props))
	}
	if err != nil {
		return err
	}
	msg := "You joined " + res.Invitation.TeamName + " as " + res.Invitation.Role + "."
	switch {
	case res.Pending:
		s.setFlash(c, "info", "Your account is created. An administrator must approve it before you can sign in; you will join "+
			res.Invitation.TeamName+" as "+res.Invitation.Role+" then.")
		return redirect(c, "/login")
	case res.Created:
		if err := s.deps.Sessions.Begin(c.Response(), c.Request(), res.User.ID); err != nil {
			return err
		}
		msg = "Welcome, " + res.User.Name + ". Your account is ready, you are signed in, and you joined " +
			res.Invitation.TeamName + " as " + res.Invitation.Role + "."
	case !res.Joined:
		msg = "You were a member of " + res.Invitation.TeamName + " already; your role there is unchanged."
	}
	s.setFlash(c, "success", msg)
	if s.deps.Clients != nil {
		// A new member's next step is the team's checklist, not the member list.
		return redirect(c, "/onboarding?team="+strconv.FormatInt(res.Invitation.TeamID, 10))
	}
	return redirect(c, teamURL(res.Invitation.TeamID))
}

func approvalNote(needed bool) string {
	if !needed {
		return ""
	}
	return " A new account made with it waits for an administrator's approval before it can sign in."
}
