package web

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/problem"
	"portal/templates"
)

// auditScope is what the person may see of the audit trail: everything for administrators,
// their teams' events for team owners, nothing for anyone else.
func auditScope(p *auth.Principal) ([]int64, error) {
	if p.IsAdmin() {
		return nil, nil
	}
	var owned []int64
	for _, t := range p.Teams {
		if t.Role == auth.TeamOwner {
			owned = append(owned, t.TeamID)
		}
	}
	if len(owned) == 0 {
		return nil, problem.New(problem.KindForbidden, "The audit trail is for administrators and team owners.")
	}
	return owned, nil
}

// parseAuditFilter reads the audit view's query string; fields maps a field to a message when
// a value cannot be read.
func parseAuditFilter(v url.Values) (audit.Filter, map[string]string) {
	fields := map[string]string{}
	f := audit.Filter{Actor: field(v, "actor", maxEmailFieldSize), Env: field(v, "env", 16), Target: field(v, "target", 128),
		Action: field(v, "action", 64), Outcome: field(v, "outcome", 16)}
	date := func(name string) time.Time {
		s := field(v, name, 16)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(dateFormat, s)
		if err != nil {
			fields[name] = "Give the date as YYYY-MM-DD."
		}
		return t
	}
	f.From = date("from")
	if to := date("to"); !to.IsZero() {
		f.To = to.Add(24 * time.Hour) // inclusive of the whole day
	}
	if id, ok := parseID(v.Get("team")); ok {
		f.TeamID = id
	}
	if id, ok := parseID(v.Get("before")); ok {
		f.Before = id
	}
	return f, fields
}

func (s *Server) showAudit(c echo.Context) error {
	p := principal(c)
	teams, err := auditScope(p)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := c.QueryParams()
	f, fields := parseAuditFilter(q)
	f.Teams = teams
	props := templates.AuditProps{Layout: s.layout(c, "Audit trail", "Audit"), Actor: f.Actor, Target: f.Target, Action: f.Action,
		From: templates.Field{Value: field(q, "from", 16), Error: fields["from"]}, To: templates.Field{Value: field(q, "to", 16), Error: fields["to"]}}
	chain, err := s.deps.Audit.VerifyIncremental(ctx)
	if err != nil {
		return err
	}
	if chain.Broken != nil {
		props.ChainText = fmt.Sprintf("The audit trail does not verify: %s. Run `portal audit verify` and investigate.", chain.Broken.Error())
	} else {
		props.ChainOK = true
		props.ChainText = fmt.Sprintf("The hash chain verifies through event %d (checked %s).", chain.LastID, showTime(chain.VerifiedAt))
		if chain.Behind {
			props.ChainText += " Newer events are checked a batch at a time; reload to go on, or run `portal audit verify` for the whole chain."
		}
	}
	props.Teams = []templates.Option{{Value: "", Label: "Any team", Selected: f.TeamID == 0}}
	all, err := s.deps.Auth.ListTeams(ctx)
	if err != nil {
		return err
	}
	for _, t := range all {
		if teams == nil || containsID(teams, t.ID) {
			props.Teams = append(props.Teams, templates.Option{Value: strconv.FormatInt(t.ID, 10), Label: t.Name, Selected: f.TeamID == t.ID})
		}
	}
	props.Envs = []templates.Option{{Value: "", Label: "Any", Selected: f.Env == ""}}
	for _, e := range s.cfg.Envs {
		props.Envs = append(props.Envs, templates.Option{Value: e.Name, Label: e.Label, Selected: f.Env == e.Name})
	}
	props.Outcomes = []templates.Option{{Value: "", Label: "Any", Selected: f.Outcome == ""}}
	for _, o := range []string{audit.Success, audit.Failure, audit.Denied} {
		props.Outcomes = append(props.Outcomes, templates.Option{Value: o, Label: o, Selected: f.Outcome == o})
	}
	filterQuery := url.Values{}
	for k, vals := range q {
		if k != "before" && len(vals) > 0 && vals[0] != "" {
			filterQuery[k] = vals[:1]
		}
	}
	props.ExportCSV = "/audit/export?" + withParam(filterQuery, "format", "csv")
	props.ExportJSONL = "/audit/export?" + withParam(filterQuery, "format", "jsonl")
	if len(fields) > 0 {
		props.Error = "Some filters could not be read."
		return render(c, http.StatusUnprocessableEntity, templates.AuditPage(props))
	}
	events, err := s.deps.Audit.Query(ctx, f)
	if err != nil {
		return err
	}
	// The integrations' names for the page's rows, in one query per environment.
	var names map[clients.IntegrationRef]string
	if s.deps.Clients != nil {
		var refs []clients.IntegrationRef
		for _, ev := range events {
			if ev.TargetType == "integration" && ev.Env != "" && ev.Target != "" {
				refs = append(refs, clients.IntegrationRef{Env: ev.Env, ClientID: ev.Target})
			}
		}
		if names, err = s.deps.Clients.IntegrationNames(ctx, p, refs); err != nil {
			return err
		}
	}
	for _, ev := range events {
		r := auditRow(ev, p.IsAdmin())
		if ev.TargetType == "integration" {
			r.TargetName = names[clients.IntegrationRef{Env: ev.Env, ClientID: ev.Target}]
		}
		props.Rows = append(props.Rows, r)
	}
	if len(events) == 50 {
		props.OlderURL = "/audit?" + withParam(filterQuery, "before", strconv.FormatInt(events[len(events)-1].ID, 10))
	}
	if f.Before > 0 {
		props.NewestURL = "/audit?" + filterQuery.Encode()
	}
	return render(c, http.StatusOK, templates.AuditPage(props))
}

func withParam(v url.Values, k, val string) string {
	out := url.Values{}
	for key, vals := range v {
		out[key] = vals
	}
	out.Set(k, val)
	return out.Encode()
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func auditRow(ev audit.Event, admin bool) templates.AuditRow {
	r := templates.AuditRow{At: ev.At.UTC().Format("2006-01-02 15:04:05"), Actor: ev.Actor, Address: ev.Address, Env: ev.Env,
		Target: ev.Target, Action: ev.Action, ActionWords: audit.Words(ev.Action), Outcome: ev.Outcome, RequestID: ev.RequestID, Details: string(ev.Details)}
	if admin && ev.ActorID > 0 {
		r.ActorURL = userURL(ev.ActorID)
	}
	if ev.TargetType == "integration" && ev.Env != "" && ev.Target != "" {
		r.TargetURL = integrationURL(ev.Env, ev.Target)
	}
	for _, ch := range audit.Changes(ev.Details) {
		r.Changes = append(r.Changes, templates.Change{Field: ch.Field, Before: ch.Before, After: ch.After})
	}
	if strings.TrimSpace(r.Details) == "{}" {
		r.Details = ""
	}
	return r
}

// exportAudit streams the events of the current filter as CSV or JSON Lines, in constant
// memory. The export is itself audited, before the first byte is sent.
func (s *Server) exportAudit(c echo.Context) error {
	p := principal(c)
	teams, err := auditScope(p)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	f, fields := parseAuditFilter(q)
	if len(fields) > 0 {
		return problem.Invalid("Some filters could not be read.", fields)
	}
	f.Teams = teams
	format := q.Get("format")
	if format != "csv" && format != "jsonl" {
		return problem.Invalid("Choose the csv or jsonl format.", nil)
	}
	ctx := c.Request().Context()
	filter := map[string]any{"from": q.Get("from"), "to": q.Get("to"), "actor": f.Actor, "team_id": f.TeamID, "env": f.Env,
		"target": f.Target, "action": f.Action, "outcome": f.Outcome, "format": format}
	ev := audit.New(s.meta(c), "audit.export", audit.Success, map[string]any{"filter": filter})
	if err := s.deps.Audit.Append(ctx, ev); err != nil {
		return err
	}
	name := "audit-" + s.cfg.Now().UTC().Format("20060102-150405")
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	if format == "csv" {
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	} else {
		h.Set(echo.HeaderContentType, "application/jsonl; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
	}
	c.Response().WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(c.Response(), 32<<10)
	var write func(audit.Event) error
	if format == "csv" {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"id", "at", "actor_id", "actor", "address", "env", "team_id", "target_type", "target", "action", "outcome", "request_id", "details", "hash"})
		write = func(ev audit.Event) error {
			return cw.Write([]string{strconv.FormatInt(ev.ID, 10), ev.At.UTC().Format(time.RFC3339Nano), strconv.FormatInt(ev.ActorID, 10),
				csvSafe(ev.Actor), csvSafe(ev.Address), ev.Env, strconv.FormatInt(ev.TeamID, 10), ev.TargetType, csvSafe(ev.Target), ev.Action,
				ev.Outcome, csvSafe(ev.RequestID), string(ev.Details), ev.Hash})
		}
		defer cw.Flush()
	} else {
		enc := json.NewEncoder(w)
		// A struct, not a map: the encoder reuses its field plan for every line.
		type line struct {
			ID         int64           `json:"id"`
			At         string          `json:"at"`
			ActorID    int64           `json:"actor_id"`
			Actor      string          `json:"actor"`
			Address    string          `json:"address"`
			Env        string          `json:"env"`
			TeamID     int64           `json:"team_id"`
			TargetType string          `json:"target_type"`
			Target     string          `json:"target"`
			Action     string          `json:"action"`
			Outcome    string          `json:"outcome"`
			RequestID  string          `json:"request_id"`
			Details    json.RawMessage `json:"details"`
			PrevHash   string          `json:"prev_hash"`
			Hash       string          `json:"hash"`
		}
		write = func(ev audit.Event) error {
			return enc.Encode(line{ev.ID, ev.At.UTC().Format(time.RFC3339Nano), ev.ActorID, ev.Actor, ev.Address, ev.Env, ev.TeamID,
				ev.TargetType, ev.Target, ev.Action, ev.Outcome, ev.RequestID, ev.Details, ev.PrevHash, ev.Hash})
		}
	}
	err = s.deps.Audit.Export(ctx, f, write)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		// The status is sent; all that is left is to say so in the log.
		s.log.Warn("audit export ended early", "request_id", requestID(c), "err", err)
	}
	return nil
}

// csvSafe keeps a spreadsheet from running a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
