package maskinporten

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// Scopes of Digdir's self-service API (§2.2 of the reference).
const (
	ScopeDCRRead     = "idporten:dcr.read"
	ScopeDCRWrite    = "idporten:dcr.write"
	ScopeScopesWrite = "idporten:scopes.write"
)

// Purpose is what a self-service call does, which decides the scopes its admin token asks for.
type Purpose int

const (
	// PurposeRead lists and reads clients and key sets.
	PurposeRead Purpose = iota + 1
	// PurposeWrite creates, changes and deactivates clients and replaces and deletes key sets.
	PurposeWrite
	// PurposeScopeAccess lists the scopes the organisation has been granted
	// (GET /scopes/access/all).
	PurposeScopeAccess
)

func (p Purpose) String() string {
	switch p {
	case PurposeRead:
		return "read"
	case PurposeWrite:
		return "write"
	case PurposeScopeAccess:
		return "scope access"
	}
	return "none"
}

// AdminScopes are the scopes the admin client asks Maskinporten for, per purpose. Each purpose
// gets its own grant, so a scope the admin client lacks fails only the calls that need it:
// Maskinporten refuses a grant asking for any scope the client is not registered with.
type AdminScopes struct {
	Read        []string `json:"read"`
	Write       []string `json:"write"`
	ScopeAccess []string `json:"scopes_access"`
}

// DefaultAdminScopes is what production clients of the API ask for: idporten:dcr.read for
// reads and idporten:dcr.write for changes (Oslo's okdata-maskinporten-api; nobody uses
// idporten:dcr.modify). The scope GET /scopes/access/all needs is undocumented; NAV's
// digdirator asks for idporten:scopes.write along with the dcr scopes, so that is the default.
var DefaultAdminScopes = AdminScopes{
	Read:        []string{ScopeDCRRead},
	Write:       []string{ScopeDCRWrite},
	ScopeAccess: []string{ScopeScopesWrite},
}

// WithDefaults fills empty purposes from DefaultAdminScopes.
func (s AdminScopes) WithDefaults() AdminScopes {
	if len(s.Read) == 0 {
		s.Read = DefaultAdminScopes.Read
	}
	if len(s.Write) == 0 {
		s.Write = DefaultAdminScopes.Write
	}
	if len(s.ScopeAccess) == 0 {
		s.ScopeAccess = DefaultAdminScopes.ScopeAccess
	}
	return s
}

// For returns the scopes asked for p.
func (s AdminScopes) For(p Purpose) []string {
	switch p {
	case PurposeRead:
		return s.Read
	case PurposeWrite:
		return s.Write
	case PurposeScopeAccess:
		return s.ScopeAccess
	}
	return nil
}

// scopeKey names a scope set independent of order and repeats; token sources are cached by it.
func scopeKey(scopes []string) string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}

// AdminOperation is one group of self-service calls and the scopes the portal asks for it.
type AdminOperation struct {
	Purpose Purpose
	Name    string   // e.g. "Read clients and key sets"
	Calls   []string // method and path of each call, e.g. "GET /api/v1/clients"
	Scopes  []string
}

// Operations lists every self-service call the portal makes, by purpose, with the scopes
// asked for; the README's table of what the admin client needs is this list.
func (s AdminScopes) Operations() []AdminOperation {
	s = s.WithDefaults()
	return []AdminOperation{
		{Purpose: PurposeRead, Name: "Read clients and key sets", Scopes: s.Read, Calls: []string{
			"GET /api/v1/clients", "GET /api/v1/clients/{id}", "GET /api/v1/clients/{id}/jwks"}},
		{Purpose: PurposeWrite, Name: "Create, change and deactivate clients; replace and delete key sets", Scopes: s.Write, Calls: []string{
			"POST /api/v1/clients", "PUT /api/v1/clients/{id}", "DELETE /api/v1/clients/{id}",
			"POST /api/v1/clients/{id}/jwks", "DELETE /api/v1/clients/{id}/jwks"}},
		{Purpose: PurposeScopeAccess, Name: "List the scopes the organisation has access to", Scopes: s.ScopeAccess, Calls: []string{
			"GET /api/v1/scopes/access/all"}},
	}
}

// AdminAccess says whether the admin client can do one group of calls.
type AdminAccess struct {
	AdminOperation
	Allowed bool
	// Missing are the asked-for scopes not granted; Problem says why nothing was granted.
	Missing []string
	Problem string
}

// AllowedOperations compares the scopes granted to the admin client (the admin file's list,
// or what a token answer carried) with what each group of calls asks for.
func (s AdminScopes) AllowedOperations(granted []string) []AdminAccess {
	ops := s.Operations()
	out := make([]AdminAccess, len(ops))
	for i, op := range ops {
		a := AdminAccess{AdminOperation: op}
		for _, sc := range op.Scopes {
			if !slices.Contains(granted, sc) {
				a.Missing = append(a.Missing, sc)
			}
		}
		a.Allowed = len(a.Missing) == 0
		out[i] = a
	}
	return out
}

// AdminScopes is the scope configuration this client asks with.
func (c *Client) AdminScopes() AdminScopes { return c.adminScopes }

// CheckAdminAccess asks Maskinporten for each purpose's admin token (cached ones are used as
// they are) and says which groups of calls the granted scopes allow. It does not call the
// self-service API, so it changes nothing.
func (c *Client) CheckAdminAccess(ctx context.Context) []AdminAccess {
	ops := c.adminScopes.Operations()
	out := make([]AdminAccess, len(ops))
	for i, op := range ops {
		a := AdminAccess{AdminOperation: op}
		tp := c.adminFor(op.Purpose)
		if tp == nil {
			a.Problem = "no admin client configured"
			out[i] = a
			continue
		}
		if _, err := tp.Token(ctx); err != nil {
			a.Problem = err.Error()
			a.Missing = op.Scopes
			out[i] = a
			continue
		}
		a.Allowed = true
		if g, ok := tp.(interface{ Granted() []string }); ok {
			// Maskinporten may issue fewer scopes than asked for.
			if granted := g.Granted(); granted != nil {
				for _, sc := range op.Scopes {
					if !slices.Contains(granted, sc) {
						a.Missing = append(a.Missing, sc)
					}
				}
				a.Allowed = len(a.Missing) == 0
			}
		}
		out[i] = a
	}
	return out
}

// adminFor is the token provider for p's calls, or nil without an admin client.
func (c *Client) adminFor(p Purpose) TokenProvider {
	if c.admin != nil {
		return c.admin
	}
	if ts, ok := c.adminBy[scopeKey(c.adminScopes.For(p))]; ok {
		return ts
	}
	return nil
}

// Refused reports whether err is a definite refusal of a self-service call for want of
// rights: the API answered 401 or 403, or Maskinporten refused the admin grant (for
// instance a scope the admin client is not registered with).
func Refused(err error) bool {
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) {
		return true
	}
	var me *Error
	return errors.As(err, &me) && me.Status >= 400 && me.Status < 500
}
