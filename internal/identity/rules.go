package identity

import (
	"encoding/json"
	"fmt"
	"strings"

	"portal/internal/auth"
)

// Rule maps what a provider says about a person to the portal: when the claim contains the
// value (or, for Ansattporten, the person holds the right for the organisation), they get
// the administrator role and/or the team role.
type Rule struct {
	// Claim names a top-level ID token claim, a string or a list of strings (Entra's
	// "groups" or "roles"); Value is what it must contain.
	Claim string `json:"claim,omitempty"`
	Value string `json:"value,omitempty"`
	// AuthorizationDetails matches a right in the authorization_details claim instead.
	AuthorizationDetails *RightMatch `json:"authorization_details,omitempty"`

	Admin    bool   `json:"admin,omitempty"`
	Team     string `json:"team,omitempty"`    // by name
	TeamID   int64  `json:"team_id,omitempty"` // or by id
	TeamRole string `json:"team_role,omitempty"`
}

// RightMatch matches an entry of authorization_details as Ansattporten returns it for the
// type ansattporten:altinn:service: a resource and, per organisation the person may
// represent (reportees), the rights they hold there.
type RightMatch struct {
	Type     string `json:"type,omitempty"`     // default ansattporten:altinn:service
	Resource string `json:"resource,omitempty"` // "" matches any resource of the type
	Org      string `json:"org"`                // organisation number, 9 digits
	Right    string `json:"right,omitempty"`    // e.g. "Write"; "" means any right
}

// DefaultDetailsType is Ansattporten's authorization type for Altinn services.
const DefaultDetailsType = "ansattporten:altinn:service"

func (r Rule) check() error {
	switch {
	case r.Claim == "" && r.AuthorizationDetails == nil:
		return fmt.Errorf("a rule needs a claim (with a value) or authorization_details")
	case r.Claim != "" && r.AuthorizationDetails != nil:
		return fmt.Errorf("a rule has either a claim or authorization_details, not both")
	case r.Claim != "" && r.Value == "":
		return fmt.Errorf("the rule on claim %q needs a value", r.Claim)
	case r.AuthorizationDetails != nil && !validOrg(r.AuthorizationDetails.Org):
		return fmt.Errorf("the authorization_details rule needs org, an organisation number of 9 digits")
	case !r.Admin && r.Team == "" && r.TeamID == 0:
		return fmt.Errorf("a rule must give admin, or a team (team or team_id) with a team_role")
	case r.Team != "" && r.TeamID != 0:
		return fmt.Errorf("a rule names its team by team or team_id, not both")
	case (r.Team != "" || r.TeamID != 0) && !auth.ValidTeamRole(r.TeamRole):
		return fmt.Errorf("team_role must be owner, member or viewer, not %q", r.TeamRole)
	}
	return nil
}

func validOrg(s string) bool {
	if len(s) != 9 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Grant is what the rules gave a person.
type Grant struct {
	Matched bool
	Admin   bool
	Teams   []auth.ExternalTeam
}

// Apply evaluates the rules over an ID token's claims.
func Apply(rules []Rule, claims map[string]json.RawMessage) Grant {
	var g Grant
	var details []detail
	if raw, ok := claims["authorization_details"]; ok {
		details = parseDetails(raw)
	}
	for _, r := range rules {
		var hit bool
		if r.AuthorizationDetails != nil {
			hit = r.AuthorizationDetails.matches(details)
		} else {
			hit = containsValue(claims[r.Claim], r.Value)
		}
		if !hit {
			continue
		}
		g.Matched = true
		g.Admin = g.Admin || r.Admin
		if r.Team != "" || r.TeamID != 0 {
			g.Teams = append(g.Teams, auth.ExternalTeam{ID: r.TeamID, Name: r.Team, Role: r.TeamRole})
		}
	}
	return g
}

// containsValue reports whether a claim is the value or a list holding it. Anything else
// (numbers, objects) never matches.
func containsValue(raw json.RawMessage, want string) bool {
	if len(raw) == 0 {
		return false
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, v := range many {
			if v == want {
				return true
			}
		}
	}
	return false
}

type detail struct {
	Type      string     `json:"type"`
	Resource  string     `json:"resource"`
	Reportees []reportee `json:"reportees"`
}

type reportee struct {
	Rights    []string `json:"Rights"`
	Authority string   `json:"Authority"`
	ID        string   `json:"ID"`
	Name      string   `json:"Name"`
}

// parseDetails reads authorization_details, a list of objects (one object is taken too).
func parseDetails(raw json.RawMessage) []detail {
	var list []detail
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one detail
	if json.Unmarshal(raw, &one) == nil {
		return []detail{one}
	}
	return nil
}

func (m RightMatch) matches(details []detail) bool {
	typ := m.Type
	if typ == "" {
		typ = DefaultDetailsType
	}
	for _, d := range details {
		if d.Type != typ || (m.Resource != "" && d.Resource != m.Resource) {
			continue
		}
		for _, r := range d.Reportees {
			if orgOf(r.ID) != m.Org {
				continue
			}
			if m.Right == "" && len(r.Rights) > 0 {
				return true
			}
			for _, right := range r.Rights {
				if strings.EqualFold(right, m.Right) {
					return true
				}
			}
		}
	}
	return false
}

// orgOf takes the organisation number from an ISO 6523 id ("0192:313554430").
func orgOf(id string) string {
	if i := strings.LastIndexByte(id, ':'); i >= 0 {
		return id[i+1:]
	}
	return id
}
