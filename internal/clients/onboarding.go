package clients

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/problem"
	"portal/internal/store"
)

// ChecklistItem is one step of a team's way to a working token, checked from real state.
type ChecklistItem struct {
	Key    string // members, integration, key, token, exchange, instances, production
	Title  string
	Done   bool
	Detail string // what was found, or what is missing
	URL    string // the page that does it; empty when the person may not do it
	Action string // the link's words
	// WhoCan names who may do a step the person may not (a viewer's "Create it"): the team's
	// owners and members by name, or its owners for invitations.
	WhoCan string
}

// Checklist is a team's onboarding checklist; Next is the first item not done ("" when all are).
type Checklist struct {
	TeamID int64
	Team   string
	Items  []ChecklistItem
	Next   string
}

// Onboarding checks how far a team has come: members, an integration in tt02 with the Altinn
// service-owner scopes, a key on it, a token, an Altinn token and an instance read from a try,
// and the same in production. Admins and the team's members (any role) may look. live, when
// set, adds the steps that succeeded in tries still open (audited only when they end).
func (s *Service) Onboarding(ctx context.Context, p *auth.Principal, teamID int64, live func(env string) map[string]bool) (Checklist, error) {
	if !p.IsAdmin() && p.TeamRoleOf(teamID) == "" {
		return Checklist{}, problem.New(problem.KindNotFound, "There is no such team, or you are not on it.")
	}
	team, err := s.db.TeamByID(ctx, teamID)
	if errors.Is(err, store.ErrNotFound) {
		return Checklist{}, problem.New(problem.KindNotFound, "There is no such team, or you are not on it.")
	}
	if err != nil {
		return Checklist{}, err
	}
	cl := Checklist{TeamID: team.ID, Team: team.Name}
	members, err := s.db.TeamMembers(ctx, teamID)
	if err != nil {
		return cl, err
	}
	teamURL := "/teams/" + itoa64(teamID)
	cl.add(ChecklistItem{Key: "members", Title: "The team has members", Done: len(members) > 0,
		Detail: plural(len(members), "member"), URL: teamURL, Action: "Invite people"})

	test, err := s.onboardingEnv(ctx, "tt02", teamID, live)
	if err != nil {
		return cl, err
	}
	cl.add(ChecklistItem{Key: "integration", Title: "An integration in tt02 with the Altinn service-owner scopes", Done: test.integration != "",
		Detail: test.integrationDetail, URL: test.integrationURL, Action: test.integrationAction})
	cl.add(ChecklistItem{Key: "key", Title: "A key on it", Done: test.keyed, Detail: test.keyDetail, URL: test.keysURL, Action: "Add a key"})
	for _, st := range []struct{ key, title, step, what string }{
		{"token", "A token from Maskinporten", "token", "Get a token"},
		{"exchange", "An Altinn token, exchanged for it", "exchange", "Exchange it"},
		{"instances", "Instances read from Altinn Storage", "instances", "Read instances"},
	} {
		cl.add(ChecklistItem{Key: st.key, Title: st.title, Done: test.tried[st.step], Detail: test.triedDetail(st.step),
			URL: test.tryURL, Action: st.what})
	}

	prod, err := s.onboardingEnv(ctx, "prod", teamID, live)
	if err != nil {
		return cl, err
	}
	item := ChecklistItem{Key: "production", Title: "The same in production", Done: prod.integration != "" && prod.keyed && prod.tried["instances"]}
	switch {
	case prod.integration == "":
		item.Detail = "No production integration with the Altinn service-owner scopes yet."
		if test.integration != "" {
			item.URL, item.Action = test.integrationURL+"/copy", "Copy the test integration to production"
		}
	case !prod.keyed:
		item.Detail, item.URL, item.Action = "The production integration has no key.", prod.keysURL, "Add a key"
	case !prod.tried["instances"]:
		item.Detail, item.URL, item.Action = "No successful instance read in production yet.", prod.tryURL, "Try it"
	default:
		item.Detail = "Instances read in production."
	}
	cl.add(item)
	offerOnly(p, teamID, team.Name, members, cl.Items)
	return cl, nil
}

// offerOnly keeps on each undone step only a link the person may follow to the end: a viewer
// gets no "Create it" that answers 403, but the names of those who can.
func offerOnly(p *auth.Principal, teamID int64, team string, members []store.Member, items []ChecklistItem) {
	var owners, changers []string
	for _, m := range members {
		who := m.Name + " (" + m.Email + ")"
		switch m.Role {
		case auth.TeamOwner:
			owners = append(owners, who)
			changers = append(changers, who)
		case auth.TeamMember:
			changers = append(changers, who)
		}
	}
	for i := range items {
		it := &items[i]
		if it.Done || it.URL == "" {
			continue
		}
		may, names, who := canChange(p, teamID), changers, "an owner or member of "+team
		if it.Key == "members" {
			may, names, who = p.IsAdmin() || p.TeamRoleOf(teamID) == auth.TeamOwner, owners, "an owner of "+team+" or an administrator"
		}
		if may {
			continue
		}
		it.URL, it.Action = "", ""
		it.WhoCan = "This needs " + who + "."
		if len(names) > 0 {
			it.WhoCan += " Ask " + strings.Join(names, " or ") + "."
		} else {
			it.WhoCan += " The team has none yet: ask an administrator."
		}
	}
}

func (cl *Checklist) add(it ChecklistItem) {
	cl.Items = append(cl.Items, it)
	if !it.Done && cl.Next == "" {
		cl.Next = it.Key
	}
}

// envProgress is what one environment shows of a team's progress.
type envProgress struct {
	integration, integrationDetail, integrationURL, integrationAction string
	keyed                                                             bool
	keyDetail, keysURL, tryURL                                        string
	tried                                                             map[string]bool
}

func (p envProgress) triedDetail(step string) string {
	if p.tried[step] {
		return "Done in a try of " + p.integration + "."
	}
	if p.integration == "" {
		return "Needs the integration first."
	}
	return "No successful try of this step yet."
}

// onboardingEnv finds the team's best candidate integration in env (active, with both Altinn
// service-owner scopes, keyed ones first) and what its tries have achieved.
func (s *Service) onboardingEnv(ctx context.Context, env string, teamID int64, live func(env string) map[string]bool) (envProgress, error) {
	create := "/envs/" + env + "/integrations/new"
	// Until there is an integration, every later step links to making one.
	out := envProgress{tried: map[string]bool{}, integrationURL: create, integrationAction: "Create it", keysURL: create, tryURL: create,
		integrationDetail: "None of the team's integrations in " + env + " has both Altinn service-owner scopes."}
	if _, ok := s.envs[env]; !ok {
		out.integrationDetail = "The portal has no " + env + " environment."
		return out, nil
	}
	active := true
	rows, _, err := s.db.ListIntegrations(ctx, store.IntegrationQuery{Env: env, TeamID: teamID, Active: &active,
		Scope: AltinnServiceOwnerScopes[0], Sort: store.SortKeyExpiry, Limit: 100})
	if err != nil {
		return out, err
	}
	for _, r := range rows {
		if !slices.Contains(r.Scopes, AltinnServiceOwnerScopes[1]) {
			continue
		}
		if out.integration == "" || r.KeyCount > 0 && !out.keyed {
			base := "/envs/" + env + "/integrations/" + url.PathEscape(r.ClientID)
			out.integration, out.integrationURL, out.integrationAction = r.Name, base, "Open it"
			out.integrationDetail = r.Name + " (" + r.ClientID + ")"
			out.keyed, out.keysURL, out.tryURL = r.KeyCount > 0, base+"/keys", base+"/try"
		}
	}
	switch {
	case out.integration == "":
		out.keyDetail = "Needs the integration first."
		return out, nil
	case out.keyed:
		out.keyDetail = "The integration has a key."
	default:
		out.keyDetail = "The integration has no key: Maskinporten refuses every grant until it has one."
	}
	if live != nil {
		for step, ok := range live(env) {
			out.tried[step] = out.tried[step] || ok
		}
	}
	// Tries of the team's integrations in env, newest first: which steps ever succeeded.
	events, err := s.audit.Query(ctx, audit.Filter{Env: env, TeamID: teamID, Action: "integration.try", Limit: 500})
	if err != nil {
		return out, err
	}
	for _, ev := range events {
		var d struct {
			Steps []struct {
				Step string `json:"step"`
				OK   bool   `json:"ok"`
			} `json:"steps"`
		}
		if json.Unmarshal(ev.Details, &d) != nil {
			continue
		}
		for _, st := range d.Steps {
			if st.OK {
				out.tried[st.Step] = true
			}
		}
	}
	return out, nil
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
