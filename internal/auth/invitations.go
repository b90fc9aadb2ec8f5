package auth

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"portal/internal/audit"
	"portal/internal/problem"
	"portal/internal/store"
)

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 7 * 24 * time.Hour

var (
	errNoSuchTeam  = problem.New(problem.KindNotFound, "There is no such team.")
	errInviteRoles = problem.New(problem.KindForbidden, "Only administrators and the team's owners may invite people or withdraw invitations.")
	// errInvitationGone is all anyone learns from a link that does not work: it says nothing
	// about the address it was for or whether that address has an account.
	errInvitationGone = problem.New(problem.KindNotFound, "This invitation is not valid: it was used already, was withdrawn, has expired, or the link was mistyped. Ask the person who invited you for a new one.")
)

// CanInvite reports whether p may invite people to a team and withdraw its invitations:
// administrators for every team, owners for their own.
func CanInvite(p *Principal, teamID int64) bool {
	return p.IsAdmin() || p.TeamRoleOf(teamID) == TeamOwner
}

// requireInviter refuses everyone but administrators and the team's owners. People outside
// the team learn nothing about it (404, as Team answers them); its members and viewers are
// told why (403).
func requireInviter(p *Principal, teamID int64) error {
	switch {
	case CanInvite(p, teamID):
		return nil
	case p.TeamRoleOf(teamID) == "":
		return errNoSuchTeam
	}
	return errInviteRoles
}

// Invite invites an email address to a team with a team role (owner, member or viewer; the
// portal-wide administrator role is never given by invitation, and a new account is a plain
// member of the portal). Administrators may invite to any team, owners to their own.
//
// It returns the invitation and its token, the only copy: only the token's SHA-256 is
// stored. The caller shows the link once to be handed over and, when notifications are
// configured, queues it for email or webhook delivery after this transaction has committed,
// so a slow mail server never holds the write lock.
//
// A second invitation of the same address to the same team replaces the first: the open
// one is revoked in the same transaction (its id is in the new event's details). That is how
// an inviter who lost a link, or whose link expired, issues a fresh one.
func (s *Service) Invite(ctx context.Context, p *Principal, teamID int64, email, role string, m audit.Meta) (store.Invitation, string, error) {
	if err := requireInviter(p, teamID); err != nil {
		return store.Invitation{}, "", err
	}
	email, msg := s.checkNewEmail(email)
	f := map[string]string{}
	if msg != "" {
		f["email"] = msg
	}
	if !ValidTeamRole(role) {
		f["role"] = "Choose owner, member or viewer."
	}
	if len(f) > 0 {
		return store.Invitation{}, "", problem.Invalid("Check the fields marked below.", f)
	}
	token, hash, err := NewToken()
	if err != nil {
		return store.Invitation{}, "", err
	}
	now := s.now()
	// Without email, the inviter holds the link and could accept it as anyone's address: an
	// account made that way waits for an administrator, unless an administrator invited.
	inv := store.Invitation{TeamID: teamID, Email: email, Role: role, InvitedBy: p.UserID, InviterName: p.Name, InviterEmail: p.Email,
		CreatedAt: now, ExpiresAt: now.Add(InvitationTTL), NeedsApproval: !p.IsAdmin() && !s.opts.LinksByEmail}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		t, err := store.TeamByIDTx(ctx, tx, teamID)
		if errors.Is(err, store.ErrNotFound) {
			return problem.Wrap(problem.KindNotFound, "There is no such team.", err)
		}
		if err != nil {
			return err
		}
		inv.TeamName = t.Name
		// The inviter sees the team's members anyway, so saying this reveals nothing; whether
		// the address has an account elsewhere is never said.
		if member, err := store.TeamMemberByEmailTx(ctx, tx, teamID, email); err != nil {
			return err
		} else if member {
			return problem.Invalid("Check the fields marked below.", map[string]string{"email": "This person is a member of the team already."})
		}
		replaced, err := store.RevokeOpenInvitations(ctx, tx, teamID, email, p.UserID, now)
		if err != nil {
			return err
		}
		if inv.ID, err = store.InsertInvitation(ctx, tx, inv, hash); err != nil {
			return err
		}
		details := map[string]any{"invitation": inv.ID, "email": email, "role": role, "expires_at": store.FormatTime(inv.ExpiresAt),
			"delivery": map[bool]string{true: "email", false: "shown to the inviter"}[s.opts.LinksByEmail]}
		if inv.NeedsApproval {
			details["needs_approval"] = true
		}
		if len(replaced) > 0 {
			details["replaced"] = replaced
		}
		ev := audit.New(m, audit.ActionInvitationCreate, audit.Success, details)
		ev.TargetType, ev.Target, ev.TeamID = "team", t.Name, teamID
		return record(ctx, tx, ev, now)
	})
	if err != nil {
		return store.Invitation{}, "", err
	}
	return inv, token, nil
}

// Invitations lists a team's open invitations, to administrators and the team's owners.
func (s *Service) Invitations(ctx context.Context, p *Principal, teamID int64) ([]store.Invitation, error) {
	if err := requireInviter(p, teamID); err != nil {
		return nil, err
	}
	return s.db.OpenInvitations(ctx, teamID, s.now())
}

// RevokeInvitation withdraws an open invitation of a team, so its link stops working.
// Administrators and the team's owners may.
func (s *Service) RevokeInvitation(ctx context.Context, p *Principal, teamID, invitationID int64, m audit.Meta) error {
	if err := requireInviter(p, teamID); err != nil {
		return err
	}
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		inv, err := store.InvitationByIDTx(ctx, tx, invitationID)
		if errors.Is(err, store.ErrNotFound) || err == nil && inv.TeamID != teamID {
			return problem.New(problem.KindNotFound, "There is no such invitation.")
		}
		if err != nil {
			return err
		}
		if err := store.RevokeInvitation(ctx, tx, inv.ID, p.UserID, now); errors.Is(err, store.ErrNotFound) {
			return problem.Wrap(problem.KindConflict, "This invitation was accepted or withdrawn already.", err)
		} else if err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionInvitationRevoke, audit.Success, map[string]any{"invitation": inv.ID, "email": inv.Email, "role": inv.Role})
		ev.TargetType, ev.Target, ev.TeamID = "team", inv.TeamName, inv.TeamID
		return record(ctx, tx, ev, now)
	})
}

// PendingInvitation is an open invitation as its link's holder sees it.
type PendingInvitation struct {
	store.Invitation
	// HasAccount tells the holder to sign in instead of creating an account. Only someone
	// with the link learns it.
	HasAccount bool
}

// InvitationByToken returns the open invitation behind a link; any link that does not
// work (unknown, used, withdrawn, expired) gives the same not-found error.
func (s *Service) InvitationByToken(ctx context.Context, token string) (PendingInvitation, error) {
	if token == "" {
		return PendingInvitation{}, errInvitationGone
	}
	inv, err := s.db.InvitationByHash(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return PendingInvitation{}, problem.Wrap(problem.KindNotFound, errInvitationGone.Message, err)
	}
	if err != nil {
		return PendingInvitation{}, err
	}
	if !open(inv, s.now()) {
		return PendingInvitation{}, errInvitationGone
	}
	_, err = s.db.UserByEmail(ctx, inv.Email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return PendingInvitation{}, err
	}
	return PendingInvitation{Invitation: inv, HasAccount: err == nil}, nil
}

func open(inv store.Invitation, now time.Time) bool {
	return inv.AcceptedAt.IsZero() && inv.RevokedAt.IsZero() && now.Before(inv.ExpiresAt)
}

// Acceptance is what accepting an invitation did.
type Acceptance struct {
	User       store.User
	Invitation store.Invitation
	Created    bool // a new account was made
	Joined     bool // false when the person was a member of the team already
	Pending    bool // the new account waits for an administrator's approval before it can sign in
}

// AcceptInvitation uses an invitation link. Signed out (p nil), it creates the invited
// address's account (portal role member) with the name and password given and the team
// membership, in one transaction; when the address has an account already it refuses and
// asks the person to sign in first. Signed in as the invited address, it only adds the
// membership (someone who is a member already keeps their role). Signed in as anyone else,
// it refuses. The link works once either way.
func (s *Service) AcceptInvitation(ctx context.Context, p *Principal, token string, a NewAccount, m audit.Meta) (Acceptance, error) {
	if err := s.reserveLinkAttempt(ctx, m.Address); err != nil {
		return Acceptance{}, err
	}
	// The link is checked before any hashing, so a bad link costs nothing; the transaction
	// below checks it again.
	pending, err := s.InvitationByToken(ctx, token)
	if err != nil {
		return Acceptance{}, err
	}
	if _, msg := s.checkNewEmail(pending.Email); msg != "" {
		return Acceptance{}, problem.New(problem.KindForbidden, "This invitation's address may not have an account here: "+msg)
	}
	var pwHash string
	if p == nil {
		a.Name = strings.TrimSpace(a.Name)
		f := map[string]string{}
		if msg := checkName(a.Name); msg != "" {
			f["name"] = msg
		}
		if msg := CheckPassword(a.Password); msg != "" {
			f["password"] = msg
		} else if a.Password != a.Confirm {
			f["confirm"] = "The two passwords differ."
		}
		if len(f) > 0 {
			return Acceptance{}, problem.Invalid("Check the fields marked below.", f)
		}
		if pwHash, err = s.hash(ctx, a.Password); err != nil {
			return Acceptance{}, err
		}
	}
	now := s.now()
	var res Acceptance
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		inv, err := store.InvitationByHashTx(ctx, tx, HashToken(token))
		if errors.Is(err, store.ErrNotFound) || err == nil && !open(inv, now) {
			return errInvitationGone
		}
		if err != nil {
			return err
		}
		res.Invitation = inv
		u, err := store.UserByEmailTx(ctx, tx, inv.Email)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		exists := err == nil
		switch {
		case p != nil && (!exists || u.ID != p.UserID):
			return problem.New(problem.KindForbidden, "This invitation is for "+inv.Email+", and you are signed in as "+p.Email+". Sign out, then open the link again.")
		case p == nil && exists:
			return problem.New(problem.KindConflict, "An account with the address "+inv.Email+" exists already. Sign in, then open the link again.")
		case p == nil:
			u = store.User{Email: inv.Email, Name: a.Name, Role: RoleMember, PasswordHash: pwHash,
				CreatedVia: store.ViaInvitation, CreatedBy: inv.InvitedBy, PendingApproval: inv.NeedsApproval}
			if u.ID, err = store.InsertUser(ctx, tx, u, now); errors.Is(err, store.ErrConflict) {
				return problem.Wrap(problem.KindConflict, "An account with the address "+inv.Email+" exists already. Sign in, then open the link again.", err)
			} else if err != nil {
				return err
			}
			res.Created, res.Pending = true, inv.NeedsApproval
		}
		res.User = u
		m.ActorID, m.Actor = u.ID, u.Email
		if res.Created {
			ev := audit.New(m, audit.ActionUserCreate, audit.Success, map[string]any{"via": "invitation", "invitation": inv.ID,
				"invited_by": inv.InviterEmail, "pending_approval": res.Pending,
				"after": map[string]any{"email": u.Email, "name": u.Name, "role": u.Role}})
			ev.TargetType, ev.Target = "user", u.Email
			if err := record(ctx, tx, ev, now); err != nil {
				return err
			}
		}
		before, err := store.MembershipTx(ctx, tx, inv.TeamID, u.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if err := store.PutMember(ctx, tx, inv.TeamID, u.ID, inv.Role, now); err != nil {
				return err
			}
			res.Joined = true
		case err != nil:
			return err
		}
		if err := store.AcceptInvitation(ctx, tx, inv.ID, u.ID, now); errors.Is(err, store.ErrNotFound) {
			return errInvitationGone
		} else if err != nil {
			return err
		}
		details := map[string]any{"invitation": inv.ID, "email": inv.Email, "role": inv.Role, "invited_by": inv.InviterEmail,
			"account_created": res.Created}
		if !res.Joined {
			details["kept_role"] = before
		}
		ev := audit.New(m, audit.ActionInvitationAccept, audit.Success, details)
		ev.TargetType, ev.Target, ev.TeamID = "team", inv.TeamName, inv.TeamID
		return record(ctx, tx, ev, now)
	})
	if err != nil {
		return Acceptance{}, err
	}
	return res, nil
}
