package auth

import (
	"context"

	"portal/internal/store"
)

// Roles.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"

	TeamOwner  = "owner"
	TeamMember = "member"
	TeamViewer = "viewer"
)

// ValidRole reports whether r is a portal-wide role.
func ValidRole(r string) bool { return r == RoleAdmin || r == RoleMember }

// ValidTeamRole reports whether r is a team role.
func ValidTeamRole(r string) bool { return r == TeamOwner || r == TeamMember || r == TeamViewer }

// TeamRole is a principal's membership of one team.
type TeamRole struct {
	TeamID   int64
	TeamName string
	Role     string
	Source   string // the provider that manages the membership; "" when given by hand
}

// Principal is the signed-in person as authorization sees them.
type Principal struct {
	UserID int64
	Email  string
	Name   string
	Role   string
	Teams  []TeamRole
}

// IsAdmin reports whether p administers the portal.
func (p *Principal) IsAdmin() bool { return p != nil && p.Role == RoleAdmin }

// TeamRoleOf returns p's role in a team, "" when p is not a member.
func (p *Principal) TeamRoleOf(teamID int64) string {
	if p == nil {
		return ""
	}
	for _, t := range p.Teams {
		if t.TeamID == teamID {
			return t.Role
		}
	}
	return ""
}

type principalKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, nil when nobody is signed in.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// How accounts are made (store.User.CreatedVia).
const (
	ViaSetup      = store.ViaSetup
	ViaCLI        = store.ViaCLI
	ViaAdmin      = store.ViaAdmin
	ViaInvitation = store.ViaInvitation
)
