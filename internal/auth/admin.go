package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/audit"
	"portal/internal/problem"
	"portal/internal/store"
)

var errAdminOnly = problem.New(problem.KindForbidden, "Only administrators may do this.")

func requireAdmin(p *Principal) error {
	if !p.IsAdmin() {
		return errAdminOnly
	}
	return nil
}

func conflictOr(err error, msg string, field string) error {
	if errors.Is(err, store.ErrConflict) {
		return problem.Invalid("Check the fields marked below.", map[string]string{field: msg})
	}
	return err
}

func userNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return problem.Wrap(problem.KindNotFound, "There is no such user.", err)
	}
	return err
}

// ListUsers returns every user and each user's memberships, keyed by user id (admins only).
func (s *Service) ListUsers(ctx context.Context, p *Principal) ([]store.User, map[int64][]store.Member, error) {
	if err := requireAdmin(p); err != nil {
		return nil, nil, err
	}
	users, err := s.db.ListUsers(ctx)
	if err != nil {
		return nil, nil, err
	}
	all, err := s.db.AllMemberships(ctx)
	if err != nil {
		return nil, nil, err
	}
	byUser := map[int64][]store.Member{}
	for _, m := range all {
		byUser[m.UserID] = append(byUser[m.UserID], m)
	}
	return users, byUser, nil
}

// Contact is a person another person may turn to: a name and an address.
type Contact struct {
	Name  string
	Email string
}

// Administrators lists the portal's active administrators, for telling a signed-in person who
// can add them to a team. Any signed-in person may ask.
func (s *Service) Administrators(ctx context.Context) ([]Contact, error) {
	users, err := s.db.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	var out []Contact
	for _, u := range users {
		if u.Role == RoleAdmin && !u.Disabled && !u.PendingApproval {
			out = append(out, Contact{Name: u.Name, Email: u.Email})
		}
	}
	return out, nil
}

// User returns one user with their memberships (admins only).
func (s *Service) User(ctx context.Context, p *Principal, id int64) (store.User, []store.Member, error) {
	if err := requireAdmin(p); err != nil {
		return store.User{}, nil, err
	}
	u, err := s.db.UserByID(ctx, id)
	if err != nil {
		return u, nil, userNotFound(err)
	}
	ms, err := s.db.UserMemberships(ctx, id)
	return u, ms, err
}

// CreateUser adds a user without a password and returns a single-use link token with which
// they set one. Admins only.
func (s *Service) CreateUser(ctx context.Context, p *Principal, email, name, role string, m audit.Meta) (store.User, string, error) {
	if err := requireAdmin(p); err != nil {
		return store.User{}, "", err
	}
	a := NewAccount{Email: email, Name: name}
	f := s.validate(&a, false)
	if !ValidRole(role) {
		f["role"] = "Choose admin or member."
	}
	if len(f) > 0 {
		return store.User{}, "", problem.Invalid("Check the fields marked below.", f)
	}
	token, hash, err := NewToken()
	if err != nil {
		return store.User{}, "", err
	}
	now := s.now()
	u := store.User{Email: a.Email, Name: a.Name, Role: role, CreatedVia: store.ViaAdmin, CreatedBy: p.UserID}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if u.ID, err = store.InsertUser(ctx, tx, u, now); err != nil {
			return conflictOr(err, "A user with this email address exists already.", "email")
		}
		if err := store.InsertToken(ctx, tx, store.OneTimeToken{Hash: hash, Purpose: "set_password", UserID: u.ID,
			CreatedAt: now, ExpiresAt: now.Add(s.opts.PasswordLinkTTL)}); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionUserCreate, audit.Success, map[string]any{"after": map[string]any{"email": u.Email, "name": u.Name, "role": u.Role}})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	return u, token, err
}

// NewPasswordLink issues a fresh set-password link for a user (admins only), for example when
// the first one expired or the person forgot their password. Every older open link of the
// user stops working.
func (s *Service) NewPasswordLink(ctx context.Context, p *Principal, userID int64, m audit.Meta) (string, error) {
	if err := requireAdmin(p); err != nil {
		return "", err
	}
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return userNotFound(err)
		}
		revoked, err := store.RevokeUserTokens(ctx, tx, u.ID, "set_password", now)
		if err != nil {
			return err
		}
		if err := store.InsertToken(ctx, tx, store.OneTimeToken{Hash: hash, Purpose: "set_password", UserID: u.ID,
			CreatedAt: now, ExpiresAt: now.Add(s.opts.PasswordLinkTTL)}); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionPasswordLink, audit.Success, map[string]any{"links_revoked": revoked})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	return token, err
}

// AddUser creates a user with a password directly, for `portal user add` in scripts.
func (s *Service) AddUser(ctx context.Context, email, name, role, password string, m audit.Meta) (store.User, error) {
	a := NewAccount{Email: email, Name: name, Password: password, Confirm: password}
	f := s.validate(&a, true)
	if !ValidRole(role) {
		f["role"] = "Choose admin or member."
	}
	if len(f) > 0 {
		return store.User{}, problem.Invalid("invalid user", f)
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return store.User{}, err
	}
	now := s.now()
	u := store.User{Email: a.Email, Name: a.Name, Role: role, PasswordHash: hash, CreatedVia: store.ViaCLI}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if u.ID, err = store.InsertUser(ctx, tx, u, now); err != nil {
			return conflictOr(err, "A user with this email address exists already.", "email")
		}
		ev := audit.New(m, audit.ActionUserCreate, audit.Success, map[string]any{"after": map[string]any{"email": u.Email, "name": u.Name, "role": u.Role}})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	return u, err
}

// SetRole changes a user's portal role (admins only); the last enabled admin keeps theirs.
func (s *Service) SetRole(ctx context.Context, p *Principal, userID int64, role string, m audit.Meta) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if !ValidRole(role) {
		return problem.Invalid("Choose admin or member.", map[string]string{"role": "Choose admin or member."})
	}
	now := s.now()
	return s.personChanged(userID, s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return userNotFound(err)
		}
		if u.Role == role {
			return nil
		}
		if src, err := store.RoleSourceTx(ctx, tx, userID); err != nil {
			return err
		} else if src != "" {
			return errProviderManaged(src)
		}
		if u.Role == RoleAdmin && !u.Disabled {
			if n, err := store.CountActiveAdminsTx(ctx, tx); err != nil {
				return err
			} else if n <= 1 {
				return problem.New(problem.KindConflict, "This is the last administrator. Make someone else an administrator first.")
			}
		}
		if err := store.SetUserRole(ctx, tx, userID, role, now); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionUserRole, audit.Success, map[string]any{"before": map[string]string{"role": u.Role}, "after": map[string]string{"role": role}})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	}))
}

// SetDisabled disables (ending all sessions) or re-enables a user (admins only).
func (s *Service) SetDisabled(ctx context.Context, p *Principal, userID int64, disabled bool, m audit.Meta) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if disabled && userID == p.UserID {
		return problem.New(problem.KindConflict, "You cannot disable your own account.")
	}
	now := s.now()
	return s.personChanged(userID, s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return userNotFound(err)
		}
		if u.Disabled == disabled {
			return nil
		}
		if disabled && u.Role == RoleAdmin {
			if n, err := store.CountActiveAdminsTx(ctx, tx); err != nil {
				return err
			} else if n <= 1 {
				return problem.New(problem.KindConflict, "This is the last administrator and cannot be disabled.")
			}
		}
		if err := store.SetUserDisabled(ctx, tx, userID, disabled, now); err != nil {
			return err
		}
		action := audit.ActionUserEnable
		details := map[string]any{}
		if disabled {
			action = audit.ActionUserDisable
			n, err := store.DeleteUserSessions(ctx, tx, userID)
			if err != nil {
				return err
			}
			details["sessions_ended"] = n
		}
		ev := audit.New(m, action, audit.Success, details)
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	}))
}

// EndSessions signs a user out everywhere (admins only).
func (s *Service) EndSessions(ctx context.Context, p *Principal, userID int64, m audit.Meta) (int64, error) {
	if err := requireAdmin(p); err != nil {
		return 0, err
	}
	now := s.now()
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return userNotFound(err)
		}
		if n, err = store.DeleteUserSessions(ctx, tx, userID); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionUserSessions, audit.Success, map[string]any{"sessions_ended": n})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	return n, s.personChanged(userID, err)
}

// ChangePassword lets a person change their own password; every session of theirs ends, and
// the caller starts a fresh one.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next, confirm string, m audit.Meta) error {
	u, err := s.db.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	f := map[string]string{}
	ok, _, err := s.verify(ctx, u.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		f["current"] = "This is not your current password."
	}
	if msg := CheckPassword(next); msg != "" {
		f["password"] = msg
	} else if next != confirm {
		f["confirm"] = "The two passwords differ."
	}
	if len(f) > 0 {
		return problem.Invalid("Check the fields marked below.", f)
	}
	return s.setPassword(ctx, u.ID, next, m)
}

func (s *Service) setPassword(ctx context.Context, userID int64, pw string, m audit.Meta) error {
	hash, err := s.hash(ctx, pw)
	if err != nil {
		return err
	}
	now := s.now()
	return s.personChanged(userID, s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := store.SetUserPassword(ctx, tx, userID, hash, now); err != nil {
			return err
		}
		n, err := store.DeleteUserSessions(ctx, tx, userID)
		if err != nil {
			return err
		}
		revoked, err := store.RevokeUserTokens(ctx, tx, userID, "set_password", now)
		if err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionPasswordChange, audit.Success, map[string]any{"sessions_ended": n, "links_revoked": revoked})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	}))
}

// SetPasswordWithLink sets a password through a single-use link and returns the user; every
// other open link of the user stops working. The link is checked before the password is
// hashed, and the form is throttled per address.
func (s *Service) SetPasswordWithLink(ctx context.Context, token, pw, confirm string, m audit.Meta) (store.User, error) {
	if err := s.reserveLinkAttempt(ctx, m.Address); err != nil {
		return store.User{}, err
	}
	if err := s.CheckToken(ctx, token, "set_password"); err != nil {
		return store.User{}, err
	}
	f := map[string]string{}
	if msg := CheckPassword(pw); msg != "" {
		f["password"] = msg
	} else if pw != confirm {
		f["confirm"] = "The two passwords differ."
	}
	if len(f) > 0 {
		return store.User{}, problem.Invalid("Check the fields marked below.", f)
	}
	hash, err := s.hash(ctx, pw)
	if err != nil {
		return store.User{}, err
	}
	now := s.now()
	var u store.User
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		t, err := store.UseToken(ctx, tx, HashToken(token), "set_password", now)
		if err != nil {
			return problem.Wrap(problem.KindNotFound, "This link is not valid: it was used already or has expired. Ask an administrator for a new one.", err)
		}
		if u, err = store.UserByIDTx(ctx, tx, t.UserID); err != nil {
			return err
		}
		if u.Disabled {
			return problem.New(problem.KindForbidden, "This account is disabled.")
		}
		if err := store.SetUserPassword(ctx, tx, u.ID, hash, now); err != nil {
			return err
		}
		if _, err := store.DeleteUserSessions(ctx, tx, u.ID); err != nil {
			return err
		}
		revoked, err := store.RevokeUserTokens(ctx, tx, u.ID, "set_password", now)
		if err != nil {
			return err
		}
		m.ActorID, m.Actor = u.ID, u.Email
		ev := audit.New(m, audit.ActionPasswordChange, audit.Success, map[string]any{"via": "link", "links_revoked": revoked})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	return u, s.personChanged(u.ID, err)
}

// ---- teams ----

func checkTeamName(n string) string {
	switch {
	case n == "":
		return "Enter a team name."
	case !utf8.ValidString(n) || hasHidden(n):
		return "The name contains invisible or control characters (such as zero-width or right-to-left marks). Type it again with visible letters only."
	case utf8.RuneCountInString(n) > 80:
		return "Use at most 80 characters."
	}
	return ""
}

// ListTeams returns every team.
func (s *Service) ListTeams(ctx context.Context) ([]store.Team, error) { return s.db.ListTeams(ctx) }

// Team returns a team and its members, to admins and to the team's members.
func (s *Service) Team(ctx context.Context, p *Principal, id int64) (store.Team, []store.Member, error) {
	if !p.IsAdmin() && p.TeamRoleOf(id) == "" {
		return store.Team{}, nil, problem.New(problem.KindNotFound, "There is no such team.")
	}
	t, err := s.db.TeamByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return t, nil, problem.Wrap(problem.KindNotFound, "There is no such team.", err)
	}
	if err != nil {
		return t, nil, err
	}
	ms, err := s.db.TeamMembers(ctx, id)
	return t, ms, err
}

// CreateTeam adds a team (admins only).
func (s *Service) CreateTeam(ctx context.Context, p *Principal, name string, m audit.Meta) (store.Team, error) {
	return s.CreateTeamWith(ctx, p, name, false, m)
}

// CreateTeamWith creates a team (admins only) and, when creatorOwns, makes its creator an owner
// in the same transaction, so an administrator who just set the portal up can go on to add
// integrations to it.
func (s *Service) CreateTeamWith(ctx context.Context, p *Principal, name string, creatorOwns bool, m audit.Meta) (store.Team, error) {
	if err := requireAdmin(p); err != nil {
		return store.Team{}, err
	}
	name = strings.TrimSpace(name)
	if msg := checkTeamName(name); msg != "" {
		return store.Team{}, problem.Invalid("Check the fields marked below.", map[string]string{"name": msg})
	}
	now := s.now()
	t := store.Team{Name: name, CreatedAt: now}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if t.ID, err = store.InsertTeam(ctx, tx, name, now); err != nil {
			return conflictOr(err, "A team with this name exists already.", "name")
		}
		ev := audit.New(m, audit.ActionTeamCreate, audit.Success, map[string]any{"after": map[string]string{"name": name}})
		ev.TargetType, ev.Target, ev.TeamID = "team", name, t.ID
		if err := record(ctx, tx, ev, now); err != nil {
			return err
		}
		if !creatorOwns {
			return nil
		}
		if err := store.PutMember(ctx, tx, t.ID, p.UserID, TeamOwner, now); err != nil {
			return err
		}
		mev := audit.New(m, audit.ActionMemberPut, audit.Success, map[string]any{
			"user": p.Email, "before": map[string]string{"role": ""}, "after": map[string]string{"role": TeamOwner}})
		mev.TargetType, mev.Target, mev.TeamID = "team", name, t.ID
		return record(ctx, tx, mev, now)
	})
	if creatorOwns {
		return t, s.personChanged(p.UserID, err)
	}
	return t, err
}

// RenameTeam renames a team (admins only).
func (s *Service) RenameTeam(ctx context.Context, p *Principal, id int64, name string, m audit.Meta) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	name = strings.TrimSpace(name)
	if msg := checkTeamName(name); msg != "" {
		return problem.Invalid("Check the fields marked below.", map[string]string{"name": msg})
	}
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		t, err := store.TeamByIDTx(ctx, tx, id)
		if err != nil {
			return problem.Wrap(problem.KindNotFound, "There is no such team.", err)
		}
		if err := store.RenameTeam(ctx, tx, id, name); err != nil {
			return conflictOr(err, "A team with this name exists already.", "name")
		}
		ev := audit.New(m, audit.ActionTeamRename, audit.Success, map[string]any{"before": map[string]string{"name": t.Name}, "after": map[string]string{"name": name}})
		ev.TargetType, ev.Target, ev.TeamID = "team", name, id
		return record(ctx, tx, ev, now)
	})
}

// PutMember adds a user to a team by email, or changes their team role (admins only).
func (s *Service) PutMember(ctx context.Context, p *Principal, teamID int64, email, role string, m audit.Meta) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	f := map[string]string{}
	if !ValidTeamRole(role) {
		f["role"] = "Choose owner, member or viewer."
	}
	email = NormalizeEmail(email)
	u, err := s.db.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) || email == "" {
		f["email"] = "There is no user with this email address. Create the user first."
	} else if err != nil {
		return err
	}
	if len(f) > 0 {
		return problem.Invalid("Check the fields marked below.", f)
	}
	now := s.now()
	return s.personChanged(u.ID, s.db.Tx(ctx, func(tx *sql.Tx) error {
		t, err := store.TeamByIDTx(ctx, tx, teamID)
		if err != nil {
			return problem.Wrap(problem.KindNotFound, "There is no such team.", err)
		}
		before, source, err := store.MembershipSourceTx(ctx, tx, teamID, u.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if source != "" {
			return errProviderManaged(source)
		}
		if before == role {
			return nil
		}
		if err := store.PutMember(ctx, tx, teamID, u.ID, role, now); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionMemberPut, audit.Success, map[string]any{
			"user": u.Email, "before": map[string]string{"role": before}, "after": map[string]string{"role": role}})
		ev.TargetType, ev.Target, ev.TeamID = "team", t.Name, teamID
		return record(ctx, tx, ev, now)
	}))
}

// RemoveMember takes a user out of a team (admins only).
func (s *Service) RemoveMember(ctx context.Context, p *Principal, teamID, userID int64, m audit.Meta) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	now := s.now()
	return s.personChanged(userID, s.db.Tx(ctx, func(tx *sql.Tx) error {
		t, err := store.TeamByIDTx(ctx, tx, teamID)
		if err != nil {
			return problem.Wrap(problem.KindNotFound, "There is no such team.", err)
		}
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return userNotFound(err)
		}
		before, source, err := store.MembershipSourceTx(ctx, tx, teamID, userID)
		if err != nil {
			return problem.Wrap(problem.KindNotFound, "This person is not a member of the team.", err)
		}
		if source != "" {
			return errProviderManaged(source)
		}
		if err := store.DeleteMember(ctx, tx, teamID, userID); err != nil {
			return fmt.Errorf("remove member: %w", err)
		}
		ev := audit.New(m, audit.ActionMemberRemove, audit.Success, map[string]any{"user": u.Email, "before": map[string]string{"role": before}})
		ev.TargetType, ev.Target, ev.TeamID = "team", t.Name, teamID
		return record(ctx, tx, ev, now)
	}))
}

// ApproveUser lets an account made through a team owner's invitation sign in (admins only).
func (s *Service) ApproveUser(ctx context.Context, p *Principal, userID int64, m audit.Meta) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return userNotFound(err)
		}
		if err := store.ApproveUser(ctx, tx, userID, now); errors.Is(err, store.ErrNotFound) {
			return problem.New(problem.KindConflict, "This account is not waiting for approval.")
		} else if err != nil {
			return err
		}
		details := map[string]any{"created_via": u.CreatedVia}
		if u.CreatedBy != 0 {
			if by, err := store.UserByIDTx(ctx, tx, u.CreatedBy); err == nil {
				details["invited_by"] = by.Email
			}
		}
		ev := audit.New(m, audit.ActionUserApprove, audit.Success, details)
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
}

// Lock is an account's sign-in lock as an administrator sees it.
type Lock struct {
	Failures int       // failed sign-ins within the window
	Until    time.Time // zero when the account is not locked
}

// AccountLock says whether a user's account is locked by failed sign-ins, and until when
// (admins only).
func (s *Service) AccountLock(ctx context.Context, p *Principal, userID int64) (Lock, error) {
	if err := requireAdmin(p); err != nil {
		return Lock{}, err
	}
	u, err := s.db.UserByID(ctx, userID)
	if err != nil {
		return Lock{}, userNotFound(err)
	}
	until, n, err := s.db.AccountLockedUntil(ctx, u.Email, s.now(), s.opts.ThrottleWindow, s.opts.MaxPerAccount)
	return Lock{Failures: n, Until: until}, err
}

// UnlockUser forgets a user's failed sign-ins, so a locked account can sign in again at once
// (admins only). It does not lift a limit on an address.
func (s *Service) UnlockUser(ctx context.Context, p *Principal, userID int64, m audit.Meta) (int64, error) {
	if err := requireAdmin(p); err != nil {
		return 0, err
	}
	now := s.now()
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := store.UserByIDTx(ctx, tx, userID)
		if err != nil {
			return userNotFound(err)
		}
		if n, err = store.UnlockAccount(ctx, tx, strings.ToLower(u.Email)); err != nil {
			return err
		}
		ev := audit.New(m, audit.ActionUserUnlock, audit.Success, map[string]any{"failures_cleared": n})
		ev.TargetType, ev.Target = "user", u.Email
		return record(ctx, tx, ev, now)
	})
	return n, err
}
