package identity

import (
	"encoding/json"
	"testing"
)

func TestApply(t *testing.T) {
	t.Parallel()
	details := `[{"type":"ansattporten:altinn:service","resource":"urn:altinn:resource:1:1","reportees":[
		{"Rights":["Read","Write"],"Authority":"iso6523-actorid-upis","ID":"0192:313554430","Name":"TTD"},
		{"Rights":["Sign"],"Authority":"iso6523-actorid-upis","ID":"0192:999999999","Name":"Other"}]}]`
	rules := []Rule{
		{Claim: "groups", Value: "admins", Admin: true},
		{Claim: "roles", Value: "Portal.Owner", Team: "A", TeamRole: "owner"},
		{AuthorizationDetails: &RightMatch{Org: "313554430", Right: "write"}, Team: "B", TeamRole: "member"},
		{AuthorizationDetails: &RightMatch{Org: "313554430", Right: "Sign"}, Admin: true},
		{AuthorizationDetails: &RightMatch{Org: "313554430", Resource: "urn:altinn:resource:2:2"}, Team: "C", TeamRole: "viewer"},
	}
	for _, tc := range []struct {
		name   string
		claims string
		admin  bool
		teams  []string
	}{
		{"group in a list", `{"groups":["x","admins"]}`, true, nil},
		{"group as a string", `{"groups":"admins"}`, true, nil},
		{"a prefix is not the value", `{"groups":["admins-old"]}`, false, nil},
		{"a number never matches", `{"groups":[1,2]}`, false, nil},
		{"role", `{"roles":["Portal.Owner"]}`, false, []string{"A"}},
		{"right for the organisation, any case", `{"authorization_details":` + details + `}`, false, []string{"B"}},
		{"a right for another organisation gives nothing here", `{"authorization_details":[{"type":"ansattporten:altinn:service","reportees":[{"Rights":["Sign","Write"],"ID":"0192:999999999"}]}]}`, false, nil},
		{"another type", `{"authorization_details":[{"type":"other","reportees":[{"Rights":["Write"],"ID":"0192:313554430"}]}]}`, false, nil},
		{"unreadable details", `{"authorization_details":"nonsense"}`, false, nil},
		{"nothing", `{}`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims := map[string]json.RawMessage{}
			if err := json.Unmarshal([]byte(tc.claims), &claims); err != nil {
				t.Fatal(err)
			}
			g := Apply(rules, claims)
			var teams []string
			for _, tm := range g.Teams {
				teams = append(teams, tm.Name)
			}
			if g.Admin != tc.admin || len(teams) != len(tc.teams) || (len(teams) > 0 && teams[0] != tc.teams[0]) ||
				g.Matched != (tc.admin || len(tc.teams) > 0) {
				t.Fatalf("got %+v", g)
			}
		})
	}
}
