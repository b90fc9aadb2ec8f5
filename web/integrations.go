package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/clients"
	"portal/internal/problem"
	"portal/templates"
)

func integrationsURL(env string) string { return "/envs/" + url.PathEscape(env) + "/integrations" }

func integrationURL(env, clientID string) string {
	return integrationsURL(env) + "/" + url.PathEscape(clientID)
}

// integrationEnv returns the environment of the request, 404 when unknown or when the portal
// runs without integrations.
func (s *Server) integrationEnv(c echo.Context) (Env, error) {
	e, ok := s.findEnv(c.Param("env"))
	if !ok || s.deps.Clients == nil {
		return Env{}, errNotFound
	}
	return e, nil
}

// integrationForm reads the environment and the posted form of an integration action.
func (s *Server) integrationForm(c echo.Context) (Env, integrationForm, error) {
	e, err := s.integrationEnv(c)
	if err != nil {
		return e, integrationForm{}, err
	}
	in, err := decodeForm(c, parseIntegrationForm)
	return e, in, err
}

func envHeading(e Env) templates.EnvHeading {
	return templates.EnvHeading{Name: e.Name, Label: e.Label, Simulated: e.Simulated, URL: "/envs/" + e.Name}
}

const dateFormat = "2006-01-02"
const timeFormat = "2006-01-02 15:04 UTC"

func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

// expiry describes a key expiry as days left, coloured at 30 and 7 days.
func expiry(t, now time.Time) (text, color string) {
	if t.IsZero() {
		return "", ""
	}
	days := int(t.Sub(now).Hours() / 24)
	switch {
	case !t.After(now):
		return "expired " + t.UTC().Format(dateFormat), "danger"
	case days < 7:
		return fmt.Sprintf("%d days left", days), "danger"
	case days < 30:
		return fmt.Sprintf("%d days left", days), "warning"
	}
	return fmt.Sprintf("%d days left", days), ""
}

func (s *Server) listIntegrations(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	q := parseIntegrationQuery(c.QueryParams())
	pg, err := s.deps.Clients.List(c.Request().Context(), principal(c), e.Name, q)
	if err != nil {
		return err
	}
	q = pg.Query
	base := integrationsURL(e.Name)
	props := templates.IntegrationsProps{Layout: s.layout(c, "Integrations in "+e.Label, "Integrations"), Env: envHeading(e),
		Action: base, Text: q.Text, Scope: q.Scope, NoKeys: q.NoKeys, Expiring: q.Expiring, Unowned: q.Unowned,
		ShowUnowned: principal(c).IsAdmin(), Privileged: q.Privileged, Total: pg.Total}
	if pg.CanAdd {
		props.NewURL = base + "/new"
	}
	if pg.CanSync {
		props.SyncAction = base + "/sync"
	}
	for _, st := range []struct{ v, l string }{{clients.StatusActive, "Active"}, {clients.StatusInactive, "Inactive"}, {clients.StatusAll, "All"}} {
		props.Statuses = append(props.Statuses, templates.Option{Value: st.v, Label: st.l, Selected: q.Status == st.v})
	}
	props.Teams = append(props.Teams, templates.Option{Value: "", Label: "Any team", Selected: q.TeamID == 0})
	for _, t := range pg.Teams {
		props.Teams = append(props.Teams, templates.Option{Value: strconv.FormatInt(t.ID, 10), Label: t.Name, Selected: q.TeamID == t.ID})
	}
	sortVal := q.Sort
	if q.Desc {
		sortVal = "-" + sortVal
	}
	for _, so := range []struct{ v, l string }{{"name", "Name"}, {"-name", "Name, Z to A"}, {"client_id", "Client id"},
		{"team", "Team"}, {"expiry", "Nearest key expiry"}, {"-changed", "Last change, newest first"}, {"changed", "Last change, oldest first"}} {
		props.Sorts = append(props.Sorts, templates.Option{Value: so.v, Label: so.l, Selected: so.v == sortVal})
	}
	now := s.cfg.Now()
	for _, it := range pg.Items {
		exp, color := expiry(it.NextKeyExpiry, now)
		props.Rows = append(props.Rows, templates.IntegrationRow{URL: integrationURL(e.Name, it.ClientID), Name: it.Name,
			ClientID: it.ClientID, Team: it.Team, Unowned: it.TeamID == 0, Scopes: it.Scopes, Keys: it.KeyCount, Expiry: exp,
			ExpiryColor: color, Active: it.Active, LastChange: showTime(it.LastChange), Drifted: it.Drifted, Portal: it.Portal,
			Privileged: it.Privileged})
	}
	switch {
	case pg.Total == 0:
		props.PageText = "No integrations."
	case pg.Pages <= 1:
		props.PageText = countOf(pg.Total, "integration", "integrations") + "."
	default:
		props.PageText = fmt.Sprintf("%d integrations, page %d of %d.", pg.Total, q.Page, pg.Pages)
	}
	pageURL := func(n int) string {
		v := c.QueryParams()
		out := url.Values{}
		for k, vals := range v {
			if k != "page" && len(vals) > 0 && vals[0] != "" {
				out[k] = vals[:1]
			}
		}
		out.Set("page", strconv.Itoa(n))
		return base + "?" + out.Encode()
	}
	if q.Page > 1 {
		props.PrevURL = pageURL(q.Page - 1)
	}
	if q.Page < pg.Pages {
		props.NextURL = pageURL(q.Page + 1)
	}
	switch {
	case pg.Sync.Never && pg.Sync.Running:
		props.SyncText = "The first sync with Digdir is running."
	case pg.Sync.Never:
		props.SyncText = "Not synced with Digdir yet."
	default:
		props.SyncText = "Last synced " + showTime(pg.Sync.FinishedAt) + "."
		if pg.Sync.Running {
			props.SyncText += " A sync is running."
		}
	}
	if !pg.Sync.Never && !pg.Sync.OK {
		props.SyncProblem = "The last sync had a problem: " + pg.Sync.Message
	}
	c.Response().Header().Add("Vary", "HX-Request")
	if htmxPartial(c) {
		return render(c, http.StatusOK, templates.IntegrationResults(props))
	}
	return render(c, http.StatusOK, templates.IntegrationsPage(props))
}

func (s *Server) syncIntegrations(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	res, err := s.deps.Clients.SyncNow(c.Request().Context(), principal(c), e.Name)
	if pe, ok := problem.As(err); ok && pe.Kind != problem.KindForbidden && pe.Kind != problem.KindNotFound {
		s.setFlash(c, "warning", pe.Message)
		return redirect(c, integrationsURL(e.Name))
	}
	if err != nil {
		return err
	}
	var msg string
	if res.OrgWide {
		msg = fmt.Sprintf("Synced %s with Digdir in %s.", countOf(res.Integrations, "integration", "integrations"), res.Took.Round(time.Millisecond))
		if res.Unowned > 0 {
			msg += " " + countOf(res.Unowned, "is new and has", "are new and have") + " no owning team."
		}
		if res.Drifted > 0 {
			msg += " " + countOf(res.Drifted, "was", "were") + " changed outside the portal."
		}
		if res.Privileged > 0 {
			msg += " " + countOf(res.Privileged, "newly holds", "newly hold") + " privileged scopes."
		}
	} else {
		msg = fmt.Sprintf("Synced with Digdir in %s. Your teams have %s here.", res.Took.Round(time.Millisecond), countOf(res.Integrations, "active integration", "active integrations"))
		if res.Drifted > 0 {
			msg += " " + countOf(res.Drifted, "of them was", "of them were") + " changed outside the portal."
		}
	}
	s.setFlash(c, "success", msg)
	return redirect(c, integrationsURL(e.Name))
}

// scopeChoices lists the scopes of a form with the chosen ones checked.
func scopeChoices(scopes []clients.Scope, chosen []string) []templates.ScopeChoice {
	out := make([]templates.ScopeChoice, 0, len(scopes))
	for _, sc := range scopes {
		out = append(out, templates.ScopeChoice{Name: sc.Name, Description: sc.Description, ForAll: sc.ForAll,
			Checked: slices.Contains(chosen, sc.Name), Privileged: sc.Privileged})
	}
	return out
}

func teamOptions(teams []clients.Team, selected int64) []templates.Option {
	opts := []templates.Option{{Value: "", Label: "Choose a team", Selected: selected == 0}}
	for _, t := range teams {
		opts = append(opts, templates.Option{Value: strconv.FormatInt(t.ID, 10), Label: t.Name, Selected: t.ID == selected})
	}
	return opts
}

func (s *Server) newIntegrationProps(c echo.Context, e Env, f clients.Form, d clients.Draft) templates.IntegrationFormProps {
	props := templates.IntegrationFormProps{Layout: s.layout(c, "New integration in "+e.Label, "Integrations"), Env: envHeading(e),
		Heading: "New integration", Action: integrationsURL(e.Name), Cancel: integrationsURL(e.Name),
		Name: templates.Field{Value: d.Name}, Description: templates.Field{Value: d.Description},
		Teams: teamOptions(f.Teams, d.TeamID), Scopes: scopeChoices(f.Scopes, d.Scopes), Key: d.Key, Submit: "Create integration"}
	props.Presets = presetViews(f.Presets)
	if f.AccessUnchecked {
		props.ScopeNotice = clients.AccessUncheckedText
	}
	return props
}

func presetViews(ps []clients.PresetChoice) []templates.PresetView {
	out := make([]templates.PresetView, 0, len(ps))
	for _, p := range ps {
		v := templates.PresetView{ID: p.ID, Title: p.Title, Purpose: p.Purpose, DocURL: p.DocURL, Selectable: len(p.Usable) > 0}
		for _, sc := range p.Scopes {
			ask := ""
			usable := slices.Contains(p.Usable, sc.Name)
			if !usable {
				ask = sc.Ask
			}
			v.Scopes = append(v.Scopes, templates.PresetScopeView{Name: sc.Name, Usable: usable, Ask: ask})
		}
		out = append(out, v)
	}
	return out
}

func withProblem(props *templates.IntegrationFormProps, err error) {
	pe, ok := problem.As(err)
	if !ok {
		return
	}
	props.Error = pe.Message
	props.Name.Error = pe.Fields["name"]
	props.Description.Error = pe.Fields["description"]
	props.TeamError = pe.Fields["team"]
	props.ScopeError = pe.Fields["scopes"]
}

func (s *Server) newIntegration(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	f, err := s.deps.Clients.NewForm(c.Request().Context(), principal(c), e.Name)
	if errors.Is(err, clients.ErrNoTeam) {
		// Not a dead end: say what to do next, and who can help.
		hint, herr := s.noTeamHint(c, "You are not an owner or member of any team, and every integration belongs to one.")
		if herr != nil {
			return herr
		}
		return render(c, http.StatusOK, templates.NoTeamPage(templates.NoTeamProps{Layout: s.layout(c, "New integration in "+e.Label, "Integrations"),
			Heading: "No team to give an integration to yet", Hint: hint, Back: integrationsURL(e.Name)}))
	}
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.IntegrationFormPage(s.newIntegrationProps(c, e, f, f.Draft)))
}

// formProblem reports whether err is one a form answers by being shown again with the message.
func formProblem(err error) bool {
	switch problem.KindOf(err) {
	case problem.KindInvalid, problem.KindUpstream, problem.KindConflict:
		return true
	}
	return false
}

func (s *Server) createIntegration(c echo.Context) error {
	e, in, err := s.integrationForm(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d := clients.Draft{Name: in.Name, Description: in.Description, TeamID: in.TeamID, Scopes: in.Scopes, Key: in.Key}
	if in.Preset != "" {
		f, err := s.deps.Clients.NewForm(ctx, principal(c), e.Name)
		if err != nil {
			return err
		}
		for _, sc := range f.PresetScopes(in.Preset) {
			if !slices.Contains(d.Scopes, sc) {
				d.Scopes = append(d.Scopes, sc)
			}
		}
		return render(c, http.StatusOK, templates.IntegrationFormPage(s.newIntegrationProps(c, e, f, d)))
	}
	id, err := s.deps.Clients.Create(ctx, principal(c), s.meta(c), e.Name, d)
	if formProblem(err) {
		f, ferr := s.deps.Clients.NewForm(ctx, principal(c), e.Name)
		if ferr != nil {
			return err
		}
		if problem.KindOf(err) == problem.KindInvalid {
			// Nothing was sent, or Digdir refused it: the same form may be sent again.
			d.Key = f.Draft.Key
		}
		props := s.newIntegrationProps(c, e, f, d)
		withProblem(&props, err)
		return render(c, statusOf(err), templates.IntegrationFormPage(props))
	}
	if err != nil {
		return err
	}
	s.setFlash(c, "success", "The integration is created. Add a key before it can get tokens.")
	return redirect(c, integrationURL(e.Name, id))
}

func (s *Server) showIntegration(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	d, err := s.deps.Clients.Get(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	sm := d.Summary
	props := templates.IntegrationProps{Layout: s.layout(c, sm.Name, "Integrations"), Env: envHeading(e), Name: sm.Name,
		ClientID: sm.ClientID, Description: sm.Description, Team: sm.Team, Unowned: sm.TeamID == 0, Active: sm.Active,
		Stale: d.Stale, Raw: d.Raw, Issuer: d.Issuer, ExampleHeader: d.Example.Header, ExampleClaims: d.Example.Claims,
		ListURL: integrationsURL(e.Name), SyncedAt: showTime(d.SyncedAt), DriftSince: showTime(d.DriftSince),
		KeysURL: keysURL(e.Name, sm.ClientID), Portal: d.PortalClient, Privileged: d.Privileged}
	for _, f := range d.Fields {
		props.Facts = append(props.Facts, templates.Change{Field: f.Name, After: f.Value})
	}
	for _, sc := range d.Scopes {
		props.Scopes = append(props.Scopes, templates.ScopeChoice{Name: sc.Name, Description: sc.Description})
	}
	for _, k := range d.Keys {
		typ := k.Kty
		if k.Bits > 0 {
			typ += " " + strconv.Itoa(k.Bits)
		}
		left, color := expiry(k.Expires, now)
		exp := "never"
		if !k.Expires.IsZero() {
			exp = k.Expires.UTC().Format(dateFormat)
		}
		props.Keys = append(props.Keys, templates.KeyRow{Kid: k.Kid, Type: typ, Alg: k.Alg, Use: k.Use, Expires: exp,
			DaysLeft: left, Color: color, FirstSeen: showTime(k.FirstSeen), Cert: k.HasCert})
	}
	for _, ev := range d.Events {
		props.Events = append(props.Events, templates.EventRow{At: showTime(ev.At), Actor: ev.Actor, Action: ev.Action,
			Outcome: ev.Outcome, Details: ev.Details})
	}
	for _, ch := range d.Drift {
		props.Drift = append(props.Drift, templates.Change{Field: ch.Field, Before: ch.Before, After: ch.After})
	}
	base := integrationURL(e.Name, sm.ClientID)
	if !sm.Active {
		props.Inactive = "This integration is inactive: it was deactivated outside the portal, and Maskinporten gives it no tokens."
		if dv := d.Deactivated; dv != nil {
			props.Inactive = "This integration is inactive: deactivated in the portal by " + dv.By + " on " +
				dv.At.UTC().Format("2 Jan 2006 15:04") + " UTC. Maskinporten gives it no tokens."
		}
	}
	if d.CanChange {
		props.EditURL, props.EditLabel = base+"/edit", "Edit"
		if !d.CanEdit {
			// Digdir keeps a deactivated client as it was: only its owning team can change.
			props.EditLabel = "Change owning team"
		}
		props.AckAction = base + "/acknowledge"
		if d.CanDeactivate {
			props.DeactivateURL = base + "/deactivate"
			if s.deps.Tryit != nil {
				props.TryURL = tryURL(e.Name, sm.ClientID)
			}
		}
		if d.CanCopy {
			props.CopyURL = base + "/copy"
			if t, ok := s.findEnv(d.CopyTarget); ok {
				props.CopyLabel = "Copy to " + t.Label
			}
		}
	}
	return render(c, http.StatusOK, templates.IntegrationPage(props))
}

func (s *Server) editProps(c echo.Context, e Env, f clients.EditForm, d clients.Draft) templates.IntegrationFormProps {
	base := integrationURL(e.Name, f.Detail.Summary.ClientID)
	props := templates.IntegrationFormProps{Layout: s.layout(c, "Edit "+f.Detail.Summary.Name, "Integrations"), Env: envHeading(e),
		Heading: "Edit " + f.Detail.Summary.Name, Action: base + "/edit", Cancel: base,
		Name: templates.Field{Value: d.Name}, Description: templates.Field{Value: d.Description},
		Teams: teamOptions(f.Teams, d.TeamID), Scopes: scopeChoices(f.Scopes, d.Scopes), Key: d.Key, Version: d.Version,
		Submit: "Review changes", KeptPrivileged: f.KeptPrivileged}
	if clients.AccessUnchecked(f.Scopes) {
		props.ScopeNotice = clients.AccessUncheckedText
	}
	return props
}

func (s *Server) editIntegration(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	f, err := s.deps.Clients.EditForm(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.IntegrationFormPage(s.editProps(c, e, f, f.Draft)))
}

func draftHidden(d clients.Draft) []templates.Hidden {
	h := []templates.Hidden{{Name: "name", Value: d.Name}, {Name: "description", Value: d.Description},
		{Name: "team", Value: strconv.FormatInt(d.TeamID, 10)}, {Name: "key", Value: d.Key}, {Name: "version", Value: d.Version},
		{Name: "confirm", Value: "1"}}
	for _, sc := range d.Scopes {
		h = append(h, templates.Hidden{Name: "scopes", Value: sc})
	}
	return h
}

func (s *Server) updateIntegration(c echo.Context) error {
	e, in, err := s.integrationForm(c)
	if err != nil {
		return err
	}
	ctx, p, id := c.Request().Context(), principal(c), c.Param("id")
	d := clients.Draft{Name: in.Name, Description: in.Description, TeamID: in.TeamID, Scopes: in.Scopes, Key: in.Key,
		Version: in.Version, ConfirmName: in.ConfirmName}
	showForm := func(err error) error {
		f, ferr := s.deps.Clients.EditForm(ctx, p, e.Name, id)
		if ferr != nil {
			return err
		}
		if problem.KindOf(err) == problem.KindConflict {
			d.Version = f.Draft.Version // the form now shows the current version's scopes and team choices
		}
		props := s.editProps(c, e, f, d)
		withProblem(&props, err)
		return render(c, statusOf(err), templates.IntegrationFormPage(props))
	}
	plan, err := s.deps.Clients.PlanUpdate(ctx, p, e.Name, id, d)
	if formProblem(err) {
		return showForm(err)
	}
	if err != nil {
		return err
	}
	base := integrationURL(e.Name, id)
	confirm := templates.ConfirmProps{Layout: s.layout(c, "Review changes", "Integrations"), Env: envHeading(e),
		Heading: "Review changes to " + plan.Name, Text: "These changes are sent to Digdir when you save them.",
		Action: base + "/edit", Cancel: base, Hidden: draftHidden(plan.Draft), Submit: "Save changes",
		Lists: []templates.LabelledList{{Label: "Scopes added:", Values: plan.Added, Color: "info"},
			{Label: "Scopes removed: tokens with them stop working for this integration.", Values: plan.Removed, Color: "warning"}}}
	for _, ch := range plan.Changes {
		confirm.Changes = append(confirm.Changes, templates.Change{Field: ch.Field, Before: ch.Before, After: ch.After})
	}
	if plan.NeedsName {
		confirm.AskName, confirm.Danger = plan.Name, true
		confirm.Warning = "This removes scopes from a production integration."
	}
	if !in.Confirm {
		return render(c, http.StatusOK, templates.ConfirmPage(confirm))
	}
	err = s.deps.Clients.Update(ctx, p, s.meta(c), e.Name, id, d)
	if pe, ok := problem.As(err); ok && pe.Fields["confirm_name"] != "" {
		confirm.Error, confirm.ConfirmName = pe.Message, templates.Field{Value: in.ConfirmName, Error: pe.Fields["confirm_name"]}
		return render(c, http.StatusUnprocessableEntity, templates.ConfirmPage(confirm))
	}
	if formProblem(err) {
		return showForm(err)
	}
	if err != nil {
		return err
	}
	s.setFlash(c, "success", "The integration is updated.")
	return redirect(c, base)
}

func (s *Server) deactivateProps(c echo.Context, e Env, d clients.Detail, key string) templates.ConfirmProps {
	base := integrationURL(e.Name, d.Summary.ClientID)
	return templates.ConfirmProps{Layout: s.layout(c, "Deactivate "+d.Summary.Name, "Integrations"), Env: envHeading(e),
		Heading: "Deactivate " + d.Summary.Name,
		Text:    "Digdir deactivates the integration: Maskinporten stops giving it tokens at once. It stays in the list under \"Inactive\". The portal cannot reactivate it.",
		Action:  base + "/deactivate", Cancel: base, Hidden: []templates.Hidden{{Name: "key", Value: key}},
		AskName: d.Summary.Name, Submit: "Deactivate", Danger: true}
}

func (s *Server) confirmDeactivate(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	d, err := s.deps.Clients.Get(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if err != nil {
		return err
	}
	if !d.CanChange {
		return problem.New(problem.KindForbidden, "You can look at this integration but not change it.")
	}
	return render(c, http.StatusOK, templates.ConfirmPage(s.deactivateProps(c, e, d, clients.NewKey())))
}

func (s *Server) deactivateIntegration(c echo.Context) error {
	e, in, err := s.integrationForm(c)
	if err != nil {
		return err
	}
	ctx, p, id := c.Request().Context(), principal(c), c.Param("id")
	err = s.deps.Clients.Deactivate(ctx, p, s.meta(c), e.Name, id, in.ConfirmName, in.Key)
	if formProblem(err) {
		d, gerr := s.deps.Clients.Get(ctx, p, e.Name, id)
		if gerr != nil {
			return err
		}
		props := s.deactivateProps(c, e, d, in.Key)
		pe, _ := problem.As(err)
		props.Error, props.ConfirmName = pe.Message, templates.Field{Value: in.ConfirmName, Error: pe.Fields["confirm_name"]}
		return render(c, statusOf(err), templates.ConfirmPage(props))
	}
	if err != nil {
		return err
	}
	s.setFlash(c, "success", "The integration is deactivated.")
	return redirect(c, integrationURL(e.Name, id))
}

func (s *Server) copyProps(c echo.Context, e Env, plan clients.CopyPlan) templates.ConfirmProps {
	base := integrationURL(e.Name, plan.Source.ClientID)
	target, _ := s.findEnv(plan.Target.Name)
	return templates.ConfirmProps{Layout: s.layout(c, "Copy to "+target.Label, "Integrations"), Env: envHeading(e),
		Heading: "Copy " + plan.Source.Name + " to " + target.Label,
		Text:    "A new integration is created in " + target.Label + " with this name, description and owning team. Keys are never copied: add its own key there.",
		Changes: []templates.Change{{Field: "name", After: plan.Draft.Name}, {Field: "description", After: plan.Draft.Description},
			{Field: "owning team", After: plan.Team}},
		Lists: []templates.LabelledList{{Label: "Scopes it gets:", Values: plan.Draft.Scopes, Color: "info"},
			{Label: "Scopes your organisation does not hold in " + target.Label + " (not copied; ask the scope's owner for access):", Values: plan.Missing, Color: "warning"}},
		Action: base + "/copy", Cancel: base, Hidden: []templates.Hidden{{Name: "key", Value: plan.Draft.Key}}, Submit: "Create in " + target.Label}
}

func (s *Server) confirmCopy(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	plan, err := s.deps.Clients.PlanCopy(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.ConfirmPage(s.copyProps(c, e, plan)))
}

func (s *Server) copyIntegration(c echo.Context) error {
	e, in, err := s.integrationForm(c)
	if err != nil {
		return err
	}
	ctx, p, id := c.Request().Context(), principal(c), c.Param("id")
	newID, err := s.deps.Clients.Copy(ctx, p, s.meta(c), e.Name, id, in.Key)
	if formProblem(err) {
		plan, perr := s.deps.Clients.PlanCopy(ctx, p, e.Name, id)
		if perr != nil {
			return err
		}
		props := s.copyProps(c, e, plan)
		props.Error = messageOf(err, statusOf(err))
		return render(c, statusOf(err), templates.ConfirmPage(props))
	}
	if err != nil {
		return err
	}
	s.setFlash(c, "success", "The production integration is created. Add its own key before it can get tokens.")
	return redirect(c, integrationURL("prod", newID))
}

func (s *Server) acknowledgeDrift(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := s.deps.Clients.Acknowledge(c.Request().Context(), principal(c), s.meta(c), e.Name, id); err != nil {
		return err
	}
	s.setFlash(c, "success", "Noted: the changes made outside the portal are now the version the portal compares with.")
	return redirect(c, integrationURL(e.Name, id))
}
