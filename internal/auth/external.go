package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"portal/internal/audit"
	"portal/internal/problem"
	"portal/internal/store"
)

// ViaProvider marks accounts made at a first sign-in through an OpenID Provider.
const ViaProvider = "provider"

// ExternalTeam is a team membership a provider's claims grant: by id, or by name when ID is 0.
type ExternalTeam struct {
	ID   int64
	Name string
	Role string
}

// ExternalSignIn is a person a provider vouched for, with what the mapping rules gave them.
type ExternalSignIn struct {
	Provider string // configured name; the source of the memberships it grants
	Issuer   string
	Subject  string
	Email    string // only for a new account's display; never used to match
	Name     string
	IDToken  string // kept for id_token_hint at sign-out
	// Matched says some rule matched. Then Admin and Teams are what the person gets.
	Matched bool
	Admin   bool
	Teams   []ExternalTeam
	// WaitForApproval makes an account for a first-time person no rule matches, waiting for
	// an administrator's approval, instead of refusing them.
	WaitForApproval bool
}

var errNoRule = problem.New(problem.KindForbidden,
	"You signed in at your organisation's identity provider, but none of your groups or rights gives access to this portal. Ask an administrator to grant you access there.")

// SignInExternal signs in a person a provider vouched for. They are matched by (issuer,
// subject) alone; a first-time person gets an account when a rule matches (or one waiting for
// approval, when the provider is configured so). The provider's memberships and administrator
// role are brought in line with the claims, added and removed, in the same transaction as
// the audit events that say so.
func (s *Service) SignInExternal(ctx context.Context, in ExternalSignIn, m audit.Meta) (store.User, error) {
	if in.Provider == "" || in.Issuer == "" || in.Subject == "" {
		return store.User{}, errors.New("external sign-in without provider, issuer or subject")
	}
	now := s.now()
	var u store.User
	var refusal error
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		refusal = nil
		ident, err := store.ExternalIdentityTx(ctx, tx, in.Issuer, in.Subject)
		switch {
		case err == nil:
			u, err = store.UserByIDTx(ctx, tx, ident.UserID)
			if err != nil {
				return fmt.Errorf("user of external identity: %w", err)
			}
		case errors.Is(err, store.ErrNotFound):
			if !in.Matched && !in.WaitForApproval {
				refusal = errNoRule
				return s.denyExternal(ctx, tx, in, m, in.Subject, "no rule matched")
			}
			u, err = s.createExternal(ctx, tx, in, m)
			if err != nil {
				return err
			}
		default:
			return err
		}
		m.ActorID, m.Actor = u.ID, u.Email
		if err := store.PutExternalIdentity(ctx, tx, store.ExternalIdentity{Issuer: in.Issuer, Subject: in.Subject, Provider: in.Provider,
			UserID: u.ID, LastIDToken: in.IDToken}, now); err != nil {
			return err
		}
		if err := s.syncExternal(ctx, tx, &u, in, m); err != nil {
			return err
		}
		switch {
		case u.Disabled:
			refusal = problem.New(problem.KindForbidden, "This account is disabled. Ask an administrator.")
			return s.denyExternal(ctx, tx, in, m, u.Email, "account disabled")
		case u.PendingApproval:
			refusal = errPendingApproval
			return s.denyExternal(ctx, tx, in, m, u.Email, "waiting for approval")
		case !in.Matched && u.CreatedVia == ViaProvider && !in.WaitForApproval:
			// A person the provider alone let in, whose rules no longer match.
			refusal = errNoRule
			return s.denyExternal(ctx, tx, in, m, u.Email, "no rule matched")
		}
		ev := audit.New(m, audit.ActionSignIn, audit.Success, map[string]any{"provider": in.Provider, "issuer": in.Issuer, "subject": in.Subject})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("sign in through %s: %w", in.Provider, err)
	}
	if refusal != nil {
		return store.User{}, refusal
	}
	return u, nil
}

func (s *Service) denyExternal(ctx context.Context, tx *sql.Tx, in ExternalSignIn, m audit.Meta, target, reason string) error {
	ev := audit.New(m, audit.ActionSignIn, audit.Denied, map[string]any{"provider": in.Provider, "issuer": in.Issuer, "subject": in.Subject, "reason": reason})
	ev.TargetType, ev.Target = "user", target
	return record(ctx, tx, ev, s.now())
}

// createExternal makes the account of a first-time person. The email is theirs to read, not
// a key: one taken by another account is refused rather than linked.
func (s *Service) createExternal(ctx context.Context, tx *sql.Tx, in ExternalSignIn, m audit.Meta) (store.User, error) {
	email := NormalizeEmail(in.Email)
	if email == "" || checkEmail(email) != "" {
		email = syntheticEmail(in.Provider, in.Subject)
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || checkName(name) != "" {
		name = email
	}
	u := store.User{Email: email, Name: name, Role: RoleMember, CreatedVia: ViaProvider, PendingApproval: !in.Matched}
	id, err := store.InsertUser(ctx, tx, u, s.now())
	if errors.Is(err, store.ErrConflict) {
		return u, problem.New(problem.KindConflict,
			"An account with the email address "+email+" exists already and is not linked to this sign-in. Ask an administrator to sign you in with that account, or to remove it first.")
	}
	if err != nil {
		return u, err
	}
	u, err = store.UserByIDTx(ctx, tx, id)
	if err != nil {
		return u, err
	}
	m.ActorID, m.Actor = u.ID, u.Email
	ev := audit.New(m, audit.ActionUserCreate, audit.Success, map[string]any{"email": u.Email, "role": u.Role, "created_via": ViaProvider,
		"provider": in.Provider, "issuer": in.Issuer, "subject": in.Subject, "pending_approval": u.PendingApproval})
	ev.TargetType, ev.Target = "user", u.Email
	return u, record(ctx, tx, ev, s.now())
}

// syntheticEmail stands in for a provider that sends no address (Ansattporten sends none):
// the reserved .invalid domain can never receive mail.
func syntheticEmail(provider, subject string) string {
	clean := func(s string) string {
		var b strings.Builder
		for _, r := range strings.ToLower(s) {
			if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '.' {
				b.WriteRune(r)
			} else {
				b.WriteRune('-')
			}
		}
		return strings.Trim(b.String(), "-.")
	}
	sub := clean(subject)
	if len(sub) > 40 {
		sub = sub[:40]
	}
	return sub + "@" + clean(provider) + ".invalid"
}

// syncExternal brings the provider's memberships and administrator role in line with what
// the rules gave; memberships given by hand are left alone unless a rule now names the team.
func (s *Service) syncExternal(ctx context.Context, tx *sql.Tx, u *store.User, in ExternalSignIn, m audit.Meta) error {
	now := s.now()
	src, err := store.RoleSourceTx(ctx, tx, u.ID)
	if err != nil {
		return err
	}
	want := u.Role
	wantSrc := src
	switch {
	case in.Admin && u.Role != RoleAdmin:
		want, wantSrc = RoleAdmin, in.Provider
	case !in.Admin && u.Role == RoleAdmin && src == in.Provider:
		want, wantSrc = RoleMember, ""
	}
	if want != u.Role {
		if want == RoleMember {
			n, err := store.CountActiveAdminsTx(ctx, tx)
			if err != nil {
				return err
			}
			if n <= 1 && !u.Disabled {
				// The last administrator stays one, whatever the provider says; say so.
				s.opts.Log.Warn("provider would remove the last administrator; kept", "provider", in.Provider)
				want, wantSrc = u.Role, src
			}
		}
	}
	if want != u.Role {
		if err := store.SetUserRoleFrom(ctx, tx, u.ID, want, wantSrc, now); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionUserRole, audit.Success, map[string]any{"source": in.Provider,
			"before": map[string]string{"role": u.Role}, "after": map[string]string{"role": want}})
		ev.TargetType, ev.Target = "user", u.Email
		if err := record(ctx, tx, ev, now); err != nil {
			return err
		}
		u.Role = want
	}

	// What the rules grant, by team id; the strongest role wins when two rules name a team.
	grants := map[int64]ExternalTeam{}
	for _, t := range in.Teams {
		if !ValidTeamRole(t.Role) {
			continue
		}
		var team store.Team
		var err error
		if t.ID != 0 {
			team, err = store.TeamByIDTx(ctx, tx, t.ID)
		} else {
			team, err = store.TeamByNameTx(ctx, tx, t.Name)
		}
		if errors.Is(err, store.ErrNotFound) {
			s.opts.Log.Warn("a mapping rule names a team that does not exist", "provider", in.Provider, "team", t.Name, "team_id", t.ID)
			continue
		}
		if err != nil {
			return err
		}
		if g, ok := grants[team.ID]; !ok || roleRank(t.Role) > roleRank(g.Role) {
			grants[team.ID] = ExternalTeam{ID: team.ID, Name: team.Name, Role: t.Role}
		}
	}
	have, err := store.UserMembershipsTx(ctx, tx, u.ID)
	if err != nil {
		return err
	}
	current := map[int64]store.SourcedMembership{}
	for _, h := range have {
		current[h.TeamID] = h
	}
	ids := make([]int64, 0, len(grants))
	for id := range grants {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		g := grants[id]
		h, ok := current[id]
		if ok && h.Role == g.Role && h.Source == in.Provider {
			continue
		}
		if err := store.PutMemberFrom(ctx, tx, id, u.ID, g.Role, in.Provider, now); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionMemberPut, audit.Success, map[string]any{"user": u.Email, "source": in.Provider,
			"before": map[string]string{"role": h.Role, "source": h.Source}, "after": map[string]string{"role": g.Role, "source": in.Provider}})
		ev.TargetType, ev.Target, ev.TeamID = "team", g.Name, id
		if err := record(ctx, tx, ev, now); err != nil {
			return err
		}
	}
	for _, h := range have {
		if _, keep := grants[h.TeamID]; keep || h.Source != in.Provider {
			continue
		}
		if err := store.DeleteMember(ctx, tx, h.TeamID, u.ID); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionMemberRemove, audit.Success, map[string]any{"user": u.Email, "source": in.Provider,
			"before": map[string]string{"role": h.Role}})
		ev.TargetType, ev.Target, ev.TeamID = "team", h.TeamName, h.TeamID
		if err := record(ctx, tx, ev, now); err != nil {
			return err
		}
	}
	return nil
}

func roleRank(r string) int {
	switch r {
	case TeamOwner:
		return 3
	case TeamMember:
		return 2
	case TeamViewer:
		return 1
	}
	return 0
}

// LastIDToken returns the ID token of the user's last sign-in through provider, for the
// provider's sign-out ("" when none).
func (s *Service) LastIDToken(ctx context.Context, userID int64, provider string) (string, error) {
	return s.db.LastExternalIDToken(ctx, userID, provider)
}

// errProviderManaged refuses a hand edit of what a provider manages.
func errProviderManaged(provider string) error {
	return problem.New(problem.KindConflict, "This comes from sign-in through "+provider+
		" and is updated at each sign-in; change the person's groups or rights there instead.")
}
