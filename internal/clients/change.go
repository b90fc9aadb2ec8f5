package clients

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/store"
)

// Limits on what a person types.
const (
	MaxNameLength        = 100
	MaxDescriptionLength = 1000
)

// Draft is what a person asks for in the create, edit and copy forms.
type Draft struct {
	Name        string
	Description string
	TeamID      int64
	Scopes      []string
	// Key makes a submit idempotent: the form carries one, fresh each time it is shown.
	Key string
	// Version is the client's version the edit form was shown with.
	Version string
	// ConfirmName is the integration's name, typed to confirm a destructive change.
	ConfirmName string
}

// NewKey returns a fresh idempotency key for a form.
func NewKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// Form is what the create form needs.
type Form struct {
	Env    Env
	Teams  []Team
	Scopes []Scope
	Preset []string // the Altinn service-owner scopes, where the organisation may use them
	// Presets are the service-owner APIs' scope groups with what the organisation may use.
	Presets []PresetChoice
	Draft   Draft
	// AccessUnchecked: the organisation's scope access could not be read, so Scopes is the
	// whole Maskinporten catalogue (AccessUncheckedText says so to the person).
	AccessUnchecked bool
}

// ErrNoTeam answers a person who is owner or member of no team (and an administrator while
// the portal has no team at all): there is no team to give an integration to.
var ErrNoTeam = problem.New(problem.KindForbidden, "You are not an owner or member of any team, so there is no team to give an integration to. Ask an administrator to add you to one.")

// NewForm prepares the create form for p in env.
func (s *Service) NewForm(ctx context.Context, p *auth.Principal, env string) (Form, error) {
	e, err := s.env(env)
	if err != nil {
		return Form{}, err
	}
	teams, err := s.teamsFor(ctx, p)
	if err != nil {
		return Form{}, err
	}
	if len(teams) == 0 {
		return Form{}, ErrNoTeam
	}
	scopes, err := s.usableScopes(ctx, e)
	if err != nil {
		return Form{}, err
	}
	if scopes, err = s.withoutPrivileged(ctx, p, e, scopes); err != nil {
		return Form{}, err
	}
	f := Form{Env: e.Env, Teams: teams, Scopes: scopes, Presets: presetChoices(scopes), Draft: Draft{Key: NewKey()}, AccessUnchecked: AccessUnchecked(scopes)}
	if len(teams) == 1 {
		f.Draft.TeamID = teams[0].ID
	}
	idx := scopeIndex(scopes)
	for _, sc := range AltinnServiceOwnerScopes {
		if _, ok := idx[sc]; ok {
			f.Preset = append(f.Preset, sc)
		}
	}
	return f, nil
}

// checkText validates a name or description.
func checkText(fields map[string]string, field, label, v string, max int) {
	switch {
	case v == "":
		fields[field] = "Enter " + label + "."
	case !utf8.ValidString(v):
		fields[field] = "The " + label + " is not valid text."
	case utf8.RuneCountInString(v) > max:
		fields[field] = fmt.Sprintf("The %s can be at most %d characters; this one has %d.", label, max, utf8.RuneCountInString(v))
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }):
		fields[field] = "The " + label + " contains control characters."
	}
}

// validate normalises d and checks it against the teams p may use and the scopes usable in
// env. Scopes the client already has (keep) stay allowed even when no longer usable.
func validate(d *Draft, teams []Team, usable []Scope, keep []string, envLabel string) map[string]string {
	fields := map[string]string{}
	d.Name = strings.TrimSpace(d.Name)
	d.Description = strings.TrimSpace(d.Description)
	checkText(fields, "name", "a name", d.Name, MaxNameLength)
	if d.Name != "" && strings.ContainsAny(d.Name, "\n\r\t") {
		fields["name"] = "The name must be on one line."
	}
	checkText(fields, "description", "a description", d.Description, MaxDescriptionLength)
	if !slices.ContainsFunc(teams, func(t Team) bool { return t.ID == d.TeamID }) {
		fields["team"] = "Choose one of your teams to own the integration."
	}
	idx := scopeIndex(usable)
	var clean, unknown []string
	for _, sc := range d.Scopes {
		sc = strings.TrimSpace(sc)
		if sc == "" || slices.Contains(clean, sc) {
			continue
		}
		if _, ok := idx[sc]; !ok && !slices.Contains(keep, sc) {
			unknown = append(unknown, sc)
		}
		clean = append(clean, sc)
	}
	slices.Sort(clean)
	d.Scopes = clean
	if len(unknown) > 0 {
		fields["scopes"] = fmt.Sprintf("Your organisation may not use %s in %s: ask the scope's owner for access first.",
			strings.Join(unknown, ", "), envLabel)
	}
	return fields
}

func newRegistration(d Draft) maskinporten.Registration {
	return maskinporten.Registration{
		IntegrationType:         maskinporten.IntegrationMaskinporten,
		ApplicationType:         maskinporten.ApplicationWeb,
		TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT,
		GrantTypes:              []string{maskinporten.GrantType},
		ClientName:              d.Name,
		Description:             d.Description,
		Scopes:                  d.Scopes,
	}
}

func teamName(teams []Team, id int64) string {
	for _, t := range teams {
		if t.ID == id {
			return t.Name
		}
	}
	return strconv.FormatInt(id, 10)
}

// Create registers a new integration in env for d.TeamID. A repeated submit of the same form
// (same key) returns the client the first one created.
func (s *Service) Create(ctx context.Context, p *auth.Principal, m audit.Meta, env string, d Draft) (string, error) {
	e, err := s.env(env)
	if err != nil {
		return "", err
	}
	teams, err := s.teamsFor(ctx, p)
	if err != nil {
		return "", err
	}
	if len(teams) == 0 {
		return "", problem.New(problem.KindForbidden, "You are not an owner or member of any team, so there is no team to give an integration to.")
	}
	if _, err := e.upstream(); err != nil {
		return "", err
	}
	if err := s.checkPrivileged(ctx, p, e, d.Scopes, nil); err != nil {
		return "", err
	}
	usable, err := s.usableScopes(ctx, e)
	if err != nil {
		return "", err
	}
	if fields := validate(&d, teams, usable, nil, e.label()); len(fields) > 0 {
		return "", problem.Invalid("Some fields need attention.", fields)
	}
	return s.create(ctx, p, m, e, d, teamName(teams, d.TeamID), nil)
}

// create runs a validated create: intent, upstream, mirror. extra goes into the audit details.
func (s *Service) create(ctx context.Context, p *auth.Principal, m audit.Meta, e *envState, d Draft, team string, extra map[string]any) (string, error) {
	if !keyPattern.MatchString(d.Key) {
		return "", problem.New(problem.KindInvalid, "This form has expired. Reload the page and send it again.")
	}
	req := intentRequest{Name: d.Name, Description: d.Description, Scopes: d.Scopes, TeamID: d.TeamID}
	in, done, err := s.openIntent(ctx, p, e, "create", d.Key, req)
	if err != nil || done != "" {
		return done, err
	}
	out, err := e.Upstream.CreateClient(ctx, newRegistration(d))
	if err != nil {
		unknown := fmt.Sprintf("The integration may have been created nonetheless: the portal checks at its next sync and, if it was, "+
			"gives it to team %s. Do not create it again; look for it in the list in a few minutes.", team)
		return "", s.failIntent(ctx, m, e, in, d.TeamID, "", err, upstreamProblem(e, "create the integration", err, unknown))
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		row := mirrorRow(e.Name, out, &maskinporten.JWKS{}, nil, now)
		row.TeamID, row.CreatedBy = d.TeamID, p.UserID
		if err := store.PutIntegration(ctx, tx, row); err != nil {
			return err
		}
		if err := store.FinishIntent(ctx, tx, in.ID, store.IntentDone, out.ClientID, "", now); err != nil {
			return err
		}
		details := map[string]any{"after": json.RawMessage(row.Raw), "team": team}
		for k, v := range extra {
			details[k] = v
		}
		return s.record(ctx, tx, m, e, d.TeamID, out.ClientID, "integration.create", audit.Success, details, now)
	})
	if err != nil {
		// Upstream has the client; the open intent lets the next sync give it its owner.
		s.startSync(e)
		return "", fmt.Errorf("record created client %s: %w", out.ClientID, err)
	}
	return out.ClientID, nil
}

// openIntent records an intent, or finds the one a repeated submit made: done names the client
// a finished create made, so the caller answers as the first submit did.
func (s *Service) openIntent(ctx context.Context, p *auth.Principal, e *envState, action, key string, req intentRequest) (store.Intent, string, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return store.Intent{}, "", err
	}
	in := store.Intent{Env: e.Name, IdempotencyKey: key, Action: action, ActorID: p.UserID, TeamID: req.TeamID,
		Request: string(b), CreatedAt: s.now()}
	var done string
	var busy bool
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		prev, err := store.IntentByKeyTx(ctx, tx, e.Name, key)
		switch {
		case err == nil:
			switch prev.State {
			case store.IntentDone:
				done = prev.ClientID
				if done == "" {
					done = req.ClientID
				}
				return nil
			case store.IntentOpen:
				busy = true
				return nil
			case store.IntentFailed:
				if prev.Message != AbandonedIntentMessage {
					return errRefusedBefore
				}
				// The first submit never reached Digdir (the portal stopped and a sync did not
				// find the change): this one carries it out under the same key.
				in.ID = prev.ID
				return store.ReopenIntent(ctx, tx, in)
			default:
				return errRefusedBefore
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		in.ID, err = store.InsertIntent(ctx, tx, in)
		return err
	})
	if err != nil || !busy {
		return in, done, err
	}
	// The same form is being carried out by an earlier submit: answer as it does.
	prev, err := s.awaitIntent(ctx, e, key)
	if err != nil {
		return in, "", err
	}
	switch prev.State {
	case store.IntentDone:
		if prev.ClientID != "" {
			return in, prev.ClientID, nil
		}
		return in, req.ClientID, nil
	case store.IntentOpen:
		return in, "", problem.New(problem.KindConflict, "This form was already sent and is still being carried out. Wait a moment and reload the page.")
	}
	return in, "", errRefusedBefore
}

var errRefusedBefore = problem.New(problem.KindConflict, "This form was already sent and refused. Reload the page to start again.")

// intentWait bounds how long a repeated submit waits for the first one to finish.
const intentWait = 15 * time.Second

// awaitIntent reads the intent with this key, waiting while it is open (an earlier submit of
// the same form still in flight). ErrNotFound-wrapped when there is none.
func (s *Service) awaitIntent(ctx context.Context, e *envState, key string) (store.Intent, error) {
	ctx, cancel := context.WithTimeout(ctx, intentWait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		in, err := s.db.IntentByKey(ctx, e.Name, key)
		if err != nil || in.State != store.IntentOpen {
			return in, err
		}
		select {
		case <-ctx.Done():
			return in, nil
		case <-tick.C:
		}
	}
}

// repeated reports whether a change with this key was already carried out, so a second
// submit of the same form succeeds as the first did instead of tripping over its result.
func (s *Service) repeated(ctx context.Context, e *envState, key string) bool {
	if !keyPattern.MatchString(key) {
		return false
	}
	in, err := s.awaitIntent(ctx, e, key)
	return err == nil && in.State == store.IntentDone
}

// failIntent settles an intent after an upstream failure: a definite refusal fails it; any
// other failure leaves it open for the next sync to settle, and starts that sync.
func (s *Service) failIntent(ctx context.Context, m audit.Meta, e *envState, in store.Intent, teamID int64, clientID string, cause, shown error) error {
	now := s.now()
	definite := refused(cause)
	// The outcome is recorded even when the person's request has ended meanwhile.
	ctx = context.WithoutCancel(ctx)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if definite {
			if err := store.FinishIntent(ctx, tx, in.ID, store.IntentFailed, clientID, problemMessage(shown), now); err != nil {
				return err
			}
		}
		details := map[string]any{"error": problemMessage(shown), "request": json.RawMessage(in.Request)}
		if !definite {
			details["outcome"] = "unknown until the next sync"
		}
		return s.record(ctx, tx, m, e, teamID, clientID, "integration."+in.Action, audit.Failure, details, now)
	})
	if err != nil {
		s.log.Error("record failed change", "env", e.Name, "action", in.Action, "err", err)
	}
	if !definite {
		s.startSync(e)
	}
	return shown
}

func (s *Service) record(ctx context.Context, tx *sql.Tx, m audit.Meta, e *envState, teamID int64, clientID, action, outcome string, details any, now time.Time) error {
	ev := audit.New(m, action, outcome, details)
	ev.Env, ev.TeamID, ev.TargetType, ev.Target = e.Name, teamID, "integration", clientID
	_, err := audit.Record(ctx, tx, ev, now)
	return err
}

// EditForm is what the edit form needs.
type EditForm struct {
	Detail Detail
	Teams  []Team
	Scopes []Scope
	Draft  Draft
	// KeptPrivileged are privileged scopes the client has that the person (not an
	// administrator) is not offered: an edit keeps them as they are.
	KeptPrivileged []string
}

// EditForm prepares the edit form of an integration p may change.
func (s *Service) EditForm(ctx context.Context, p *auth.Principal, env, clientID string) (EditForm, error) {
	d, err := s.Get(ctx, p, env, clientID)
	if err != nil {
		return EditForm{}, err
	}
	if !d.CanChange {
		return EditForm{}, errReadOnly(d.Summary.Team)
	}
	e := s.envs[env]
	teams, err := s.teamsFor(ctx, p)
	if err != nil {
		return EditForm{}, err
	}
	usable, err := s.usableScopes(ctx, e)
	if err != nil {
		return EditForm{}, err
	}
	// Scopes the client has but the organisation can no longer add are still shown, so they
	// can be kept or removed.
	idx := scopeIndex(usable)
	for _, sc := range d.Scopes {
		if _, ok := idx[sc.Name]; !ok {
			usable = append(usable, sc)
		}
	}
	slices.SortFunc(usable, func(a, b Scope) int { return strings.Compare(a.Name, b.Name) })
	offered, err := s.withoutPrivileged(ctx, p, e, usable)
	if err != nil {
		return EditForm{}, err
	}
	f := EditForm{Detail: d, Teams: teams, Scopes: offered, Draft: Draft{Name: d.Summary.Name, Description: d.Summary.Description,
		TeamID: d.Summary.TeamID, Scopes: d.Summary.Scopes, Key: NewKey(), Version: d.Version}}
	if !p.IsAdmin() {
		for _, sc := range d.Summary.Scopes {
			if !slices.ContainsFunc(offered, func(o Scope) bool { return o.Name == sc }) {
				f.KeptPrivileged = append(f.KeptPrivileged, sc)
			}
		}
	}
	return f, nil
}

// Plan is what an edit would change, shown before it is sent.
type Plan struct {
	Changes []FieldChange
	// NeedsName is set when the change removes scopes in production: the name must be typed.
	NeedsName bool
	Name      string
	Draft     Draft
	Team      string
	Removed   []string
	Added     []string
}

// PlanUpdate validates an edit and says what it would change, without changing anything.
func (s *Service) PlanUpdate(ctx context.Context, p *auth.Principal, env, clientID string, d Draft) (Plan, error) {
	plan, _, _, err := s.planUpdate(ctx, p, env, clientID, d)
	return plan, err
}

func (s *Service) planUpdate(ctx context.Context, p *auth.Principal, env, clientID string, d Draft) (Plan, *maskinporten.Registration, store.Integration, error) {
	e, err := s.env(env)
	if err != nil {
		return Plan{}, nil, store.Integration{}, err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return Plan{}, nil, it, err
	}
	teams, err := s.teamsFor(ctx, p)
	if err != nil {
		return Plan{}, nil, it, err
	}
	if d.TeamID == it.TeamID && it.TeamID != 0 && !slices.ContainsFunc(teams, func(t Team) bool { return t.ID == it.TeamID }) {
		teams = append(teams, Team{ID: it.TeamID, Name: it.TeamName})
	}
	up, err := e.upstream()
	if err != nil {
		return Plan{}, nil, it, err
	}
	if err := s.checkPrivileged(ctx, p, e, d.Scopes, it.Scopes); err != nil {
		return Plan{Draft: d}, nil, it, err
	}
	usable, err := s.usableScopes(ctx, e)
	if err != nil {
		return Plan{}, nil, it, err
	}
	if fields := validate(&d, teams, usable, it.Scopes, e.label()); len(fields) > 0 {
		return Plan{Draft: d}, nil, it, problem.Invalid("Some fields need attention.", fields)
	}
	var cur *maskinporten.Registration
	if it.Active {
		if cur, err = up.GetClient(ctx, clientID); err != nil {
			return Plan{Draft: d}, nil, it, upstreamProblem(e, "read the integration", err, "")
		}
	} else {
		// Digdir no longer returns a deactivated client on its own; the mirror has its last state.
		cur = &maskinporten.Registration{}
		if err := json.Unmarshal([]byte(it.Raw), cur); err != nil {
			return Plan{Draft: d}, nil, it, fmt.Errorf("read mirrored client %s: %w", clientID, err)
		}
	}
	if d.Version != "" && version(cur.Raw) != d.Version {
		return Plan{Draft: d}, nil, it, problem.New(problem.KindConflict,
			"The integration was changed in Digdir after you opened this page. Reload it to see the current version, then make your change again.")
	}
	if !p.IsAdmin() {
		// The form does not offer privileged scopes to this person: the client keeps those it
		// has, whatever the form says, and gets no new ones.
		if err := s.checkPrivileged(ctx, p, e, d.Scopes, cur.Scopes); err != nil {
			return Plan{Draft: d}, nil, it, err
		}
		pol, err := s.policyOf(ctx, e)
		if err != nil {
			return Plan{Draft: d}, nil, it, err
		}
		for _, sc := range pol.among(cur.Scopes) {
			if !slices.Contains(d.Scopes, sc) {
				d.Scopes = append(d.Scopes, sc)
			}
		}
		slices.Sort(d.Scopes)
	}
	plan := Plan{Draft: d, Name: cur.ClientName, Team: teamName(teams, d.TeamID)}
	if cur.ClientName != d.Name {
		plan.Changes = append(plan.Changes, FieldChange{Field: "name", Before: cur.ClientName, After: d.Name})
	}
	if cur.Description != d.Description {
		plan.Changes = append(plan.Changes, FieldChange{Field: "description", Before: cur.Description, After: d.Description})
	}
	before := slices.Sorted(slices.Values(cur.Scopes))
	for _, sc := range before {
		if !slices.Contains(d.Scopes, sc) {
			plan.Removed = append(plan.Removed, sc)
		}
	}
	for _, sc := range d.Scopes {
		if !slices.Contains(before, sc) {
			plan.Added = append(plan.Added, sc)
		}
	}
	if len(plan.Removed)+len(plan.Added) > 0 {
		plan.Changes = append(plan.Changes, FieldChange{Field: "scopes", Before: strings.Join(before, " "), After: strings.Join(d.Scopes, " ")})
	}
	if d.TeamID != it.TeamID {
		plan.Changes = append(plan.Changes, FieldChange{Field: "owning team", Before: it.TeamName, After: plan.Team})
	}
	if len(plan.Changes) == 0 {
		return plan, cur, it, problem.Invalid("Nothing would change: edit a field first.", nil)
	}
	if !it.Active && slices.ContainsFunc(plan.Changes, func(c FieldChange) bool { return c.Field != "owning team" }) {
		return plan, cur, it, problem.Invalid("Digdir keeps a deactivated integration as it was: only its owning team can be changed.", nil)
	}
	plan.NeedsName = e.Prod && len(plan.Removed) > 0
	return plan, cur, it, nil
}

// Update carries out an edit: the owning team is the portal's own; name, description and
// scopes go to Digdir with GET-modify-PUT.
func (s *Service) Update(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string, d Draft) error {
	if e, ok := s.envs[env]; ok && s.repeated(ctx, e, d.Key) {
		if _, err := s.changeable(ctx, p, env, clientID); err != nil {
			return err
		}
		return nil
	}
	plan, cur, it, err := s.planUpdate(ctx, p, env, clientID, d)
	if err != nil {
		return err
	}
	d = plan.Draft
	if plan.NeedsName && strings.TrimSpace(d.ConfirmName) != plan.Name {
		return problem.Invalid("Removing scopes in production needs the integration's name typed to confirm.",
			map[string]string{"confirm_name": "Type the integration's name exactly: " + plan.Name})
	}
	if !keyPattern.MatchString(d.Key) {
		return problem.New(problem.KindInvalid, "This form has expired. Reload the page and send it again.")
	}
	e := s.envs[env]
	now := s.now()
	upstreamChange := slices.ContainsFunc(plan.Changes, func(c FieldChange) bool { return c.Field != "owning team" })
	if !upstreamChange {
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := store.SetIntegrationTeam(ctx, tx, env, clientID, d.TeamID); err != nil {
				return err
			}
			return s.record(ctx, tx, m, e, d.TeamID, clientID, "integration.assign", audit.Success,
				map[string]any{"before": map[string]any{"team_id": it.TeamID, "team": it.TeamName},
					"after": map[string]any{"team_id": d.TeamID, "team": plan.Team}}, now)
		})
	}
	req := intentRequest{ClientID: clientID, Name: d.Name, Description: d.Description, Scopes: d.Scopes, TeamID: d.TeamID}
	in, done, err := s.openIntent(ctx, p, e, "update", d.Key, req)
	if err != nil || done != "" {
		return err
	}
	next := *cur
	next.ClientName, next.Description, next.Scopes = d.Name, d.Description, d.Scopes
	out, err := e.Upstream.UpdateClient(ctx, clientID, next)
	if err != nil {
		unknown := "The change may have been made nonetheless: the portal checks at its next sync. Reload the integration in a minute before trying again."
		return s.failIntent(ctx, m, e, in, it.TeamID, clientID, err, upstreamProblem(e, "update the integration", err, unknown))
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		row := mirrorRow(env, out, nil, &it, now)
		row.TeamID, row.Drift = d.TeamID, ""
		if err := store.PutIntegration(ctx, tx, row); err != nil {
			return err
		}
		if err := store.FinishIntent(ctx, tx, in.ID, store.IntentDone, clientID, "", now); err != nil {
			return err
		}
		return s.record(ctx, tx, m, e, d.TeamID, clientID, "integration.update", audit.Success,
			map[string]any{"before": json.RawMessage(cur.Raw), "after": json.RawMessage(row.Raw), "changes": plan.Changes}, now)
	})
}

// Deactivate deactivates an integration in Digdir (it stays findable as inactive). The name
// must be typed to confirm.
func (s *Service) Deactivate(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, confirmName, key string) error {
	e, err := s.env(env)
	if err != nil {
		return err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return err
	}
	if s.repeated(ctx, e, key) {
		return nil
	}
	if !it.Active {
		return problem.New(problem.KindConflict, "This integration is already inactive.")
	}
	if strings.TrimSpace(confirmName) != it.Name {
		return problem.Invalid("Type the integration's name to confirm.",
			map[string]string{"confirm_name": "Type the integration's name exactly: " + it.Name})
	}
	if !keyPattern.MatchString(key) {
		return problem.New(problem.KindInvalid, "This form has expired. Reload the page and send it again.")
	}
	if _, err := e.upstream(); err != nil {
		return err
	}
	req := intentRequest{ClientID: clientID, Name: it.Name, Description: it.Description, Scopes: it.Scopes, TeamID: it.TeamID, Deactivate: true}
	in, done, err := s.openIntent(ctx, p, e, "deactivate", key, req)
	if err != nil || done != "" {
		return err
	}
	if err := e.Upstream.DeleteClient(ctx, clientID); err != nil {
		unknown := "It may have been deactivated nonetheless: the portal checks at its next sync. Reload the integration in a minute before trying again."
		return s.failIntent(ctx, m, e, in, it.TeamID, clientID, err, upstreamProblem(e, "deactivate the integration", err, unknown))
	}
	// Read the deactivated client back; if that fails, mark the mirror row inactive and let
	// the next sync fill in the rest.
	now := s.now()
	after, rerr := e.Upstream.GetClient(ctx, clientID)
	if rerr != nil || after.Active {
		var raw map[string]any
		_ = json.Unmarshal([]byte(it.Raw), &raw)
		if raw == nil {
			raw = map[string]any{}
		}
		raw["active"] = false
		b, _ := json.Marshal(raw)
		var reg maskinporten.Registration
		if err := json.Unmarshal(b, &reg); err != nil {
			return err
		}
		after = &reg
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		row := mirrorRow(env, after, nil, &it, now)
		row.Active, row.Drift = false, ""
		if err := store.PutIntegration(ctx, tx, row); err != nil {
			return err
		}
		if err := store.FinishIntent(ctx, tx, in.ID, store.IntentDone, clientID, "", now); err != nil {
			return err
		}
		return s.record(ctx, tx, m, e, it.TeamID, clientID, "integration.deactivate", audit.Success,
			map[string]any{"before": json.RawMessage(it.Raw), "after": json.RawMessage(row.Raw)}, now)
	})
}

// Acknowledge clears an integration's "changed outside the portal" finding.
func (s *Service) Acknowledge(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string) error {
	e, err := s.env(env)
	if err != nil {
		return err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return err
	}
	dr, ok := parseDrift(it.Drift)
	if !ok {
		return nil
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := store.ClearIntegrationDrift(ctx, tx, env, clientID); err != nil {
			return err
		}
		return s.record(ctx, tx, m, e, it.TeamID, clientID, "integration.acknowledge_drift", audit.Success,
			map[string]any{"changes": dr.Changes}, s.now())
	})
}

// CopyPlan is what copying a test integration to production would create.
type CopyPlan struct {
	Source  Summary
	Target  Env
	Draft   Draft
	Team    string
	Missing []string // scopes the organisation does not hold in the target environment
}

// PlanCopy says what copying an integration to production would create.
func (s *Service) PlanCopy(ctx context.Context, p *auth.Principal, env, clientID string) (CopyPlan, error) {
	plan, _, err := s.planCopy(ctx, p, env, clientID)
	return plan, err
}

func (s *Service) planCopy(ctx context.Context, p *auth.Principal, env, clientID string) (CopyPlan, *envState, error) {
	if _, err := s.env(env); err != nil {
		return CopyPlan{}, nil, err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return CopyPlan{}, nil, err
	}
	target, ok := s.envs["prod"]
	if !ok || env == "prod" {
		return CopyPlan{}, nil, problem.New(problem.KindNotFound, "Only test integrations can be copied to production.")
	}
	if it.TeamID == 0 {
		return CopyPlan{}, nil, problem.New(problem.KindConflict, "Give this integration an owning team before copying it.")
	}
	if _, err := target.upstream(); err != nil {
		return CopyPlan{}, nil, err
	}
	// A copy gives the production client the test client's scopes: privileged ones need an
	// administrator, whether privileged here or there.
	if err := s.checkPrivileged(ctx, p, s.envs[env], it.Scopes, nil); err != nil {
		return CopyPlan{}, nil, err
	}
	if err := s.checkPrivileged(ctx, p, target, it.Scopes, nil); err != nil {
		return CopyPlan{}, nil, err
	}
	usable, err := s.usableScopes(ctx, target)
	if err != nil {
		return CopyPlan{}, nil, err
	}
	idx := scopeIndex(usable)
	plan := CopyPlan{Source: summary(it), Target: target.Env, Team: it.TeamName,
		Draft: Draft{Name: it.Name, Description: it.Description, TeamID: it.TeamID, Key: NewKey()}}
	for _, sc := range it.Scopes {
		if _, ok := idx[sc]; ok {
			plan.Draft.Scopes = append(plan.Draft.Scopes, sc)
		} else {
			plan.Missing = append(plan.Missing, sc)
		}
	}
	return plan, target, nil
}

// Copy creates the production twin of a test integration: same name, description, team and
// the scopes the organisation holds in production. Keys are never copied.
func (s *Service) Copy(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, key string) (string, error) {
	plan, target, err := s.planCopy(ctx, p, env, clientID)
	if err != nil {
		return "", err
	}
	if !canChange(p, plan.Draft.TeamID) {
		return "", errReadOnly(plan.Team)
	}
	plan.Draft.Key = key
	return s.create(ctx, p, m, target, plan.Draft, plan.Team, map[string]any{"copied_from": map[string]string{"env": env, "client_id": clientID},
		"scopes_not_held": plan.Missing})
}
