package platform

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The Events API's app events for a service owner, GET /events/api/v1/app/{org}/{app}, written
// from Altinn/altinn-events (AppController.GetForOrg, EventsService.GetAppEvents and the
// getappevents_v2 function). The simulator has no event store: it derives the events an
// Altinn app publishes from the Storage instances, so they always agree with Storage.

// eventsSubscribeScope is the scope for reading and subscribing to events.
const eventsSubscribeScope = "altinn:events.subscribe"

// Event types an app publishes that the simulator derives from an instance.
const (
	eventInstanceCreated   = "app.instance.created"
	eventProcessCompleted  = "app.instance.process.completed"
	defaultEventsPageSize  = 50
	eventsRegistrationLag  = 30 * time.Second // events younger than this are not listed yet
	maxEventTypesPerFilter = 100
)

// cloudEvent is a CloudEvents 1.0 event as the Events API returns it (JSON format), with
// Altinn's extension attributes.
type cloudEvent struct {
	ID                 string `json:"id"`
	Source             string `json:"source"`
	SpecVersion        string `json:"specversion"`
	Type               string `json:"type"`
	Subject            string `json:"subject"`
	AlternativeSubject string `json:"alternativesubject,omitempty"`
	Time               string `json:"time"`
	Resource           string `json:"resource"`
	ResourceInstance   string `json:"resourceinstance"`

	at    time.Time
	order int
}

// eventsQuery is GetForOrg's parameters after model binding.
type eventsQuery struct {
	after    string
	from, to *time.Time
	party    int64
	unit     string
	person   string // from the "person" header
	types    []string
	size     int64
}

var (
	unitRE   = regexp.MustCompile(`^[0-9]{9}$`)
	personRE = regexp.MustCompile(`^[0-9]{11}$`)
)

// bindEventsQuery binds the query as model binding does; a value that does not convert is a
// binding error (the automatic 400) and a missing time zone is the controller's own 400.
func bindEventsQuery(r *http.Request) (eventsQuery, bindingErrors, string) {
	q := parseQuery(r.URL.RawQuery)
	errs := bindingErrors{}
	eq := eventsQuery{after: q.str("after"), unit: q.str("unit"), person: r.Header.Get("person"), types: q.all("type"),
		size: defaultEventsPageSize}
	zoneless := ""
	date := func(key, name string) *time.Time {
		v := q.str(key)
		if strings.TrimSpace(v) == "" {
			return nil
		}
		t, zoned, ok := parseDotNetDateTime(v)
		if !ok {
			errs[key] = append(errs[key], fmt.Sprintf("The value '%s' is not valid for %s.", v, key))
			return nil
		}
		if !zoned && zoneless == "" {
			zoneless = "The '" + name + "' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC"
		}
		return &t
	}
	num := func(key string, into *int64) {
		v := q.str(key)
		if strings.TrimSpace(v) == "" {
			return
		}
		n, err := parseDotNetInt32(v)
		if err != nil {
			errs[key] = append(errs[key], fmt.Sprintf("The value '%s' is not valid for %s.", v, key))
			return
		}
		*into = n
	}
	eq.from, eq.to = date("from", "From"), date("to", "To")
	num("party", &eq.party)
	num("size", &eq.size)
	if len(errs) > 0 {
		return eq, errs, ""
	}
	return eq, nil, zoneless
}

// validate is AppController.ValidateQueryParams, messages as the real service words them.
func (eq eventsQuery) validate(zoneless string) string {
	switch {
	case eq.after == "" && eq.from == nil:
		return "The 'From' or 'After' parameter must be defined."
	case zoneless != "":
		return zoneless
	case eq.size < 1:
		return "The 'Size' parameter must be a number larger that 0."
	case eq.person != "" && eq.party > 0:
		return "Only one of 'Party' or 'Person' can be defined."
	case eq.person != "" && !personRE.MatchString(eq.person):
		return "Value of 'Person' needs to be exactly 11 digits."
	case eq.unit != "" && eq.party > 0:
		return "Only one of 'Party' or 'Unit' can be defined."
	case eq.unit != "" && !unitRE.MatchString(eq.unit):
		return "Value of 'Unit' needs to be exactly 9 digits."
	case len(eq.types) > maxEventTypesPerFilter:
		return fmt.Sprintf("At most %d event types can be asked for.", maxEventTypesPerFilter)
	}
	return ""
}

// parseDotNetDateTime reads the forms DateTime model binding accepts in practice: ISO 8601
// with a T or a space, with or without fraction and zone, or a date alone. zoned says whether
// the text named a zone (DateTime.Kind is then not Unspecified).
func parseDotNetDateTime(s string) (time.Time, bool, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02T15:04:05.9999999Z07:00", "2006-01-02 15:04:05.9999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true, true
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.9999999", "2006-01-02 15:04:05.9999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, false, true
		}
	}
	return time.Time{}, false, false
}

// writeProblemDetail is Problem(detail, null, status): ProblemDetails with the detail.
func writeProblemDetail(w http.ResponseWriter, status int, detail string) {
	pt := problemTypes[status]
	body := struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Status  int    `json:"status"`
		Detail  string `json:"detail"`
		TraceID string `json:"traceId"`
	}{pt.typ, pt.title, status, detail, newTraceID()}
	writeJSONAs(w, status, "application/problem+json; charset=utf-8", body)
}

func hasScope(scopes, want string) bool { return slices.Contains(strings.Fields(scopes), want) }

// appEvents serves GET /events/api/v1/app/{org}/{app}: the app's events in the order they were
// registered, after the event named by after (an unknown id starts from the first, as the real
// query does) and within from and to, at most size of them, with a next header when any came.
func (p *Platform) appEvents(w http.ResponseWriter, r *http.Request, org, app string) {
	who, ok := p.authenticate(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !hasScope(who.scope, eventsSubscribeScope) && !p.cfg.Options.EventsWithoutSubscribeScope {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if who.org == "" {
		writeJSONString(w, http.StatusUnauthorized, "Only orgs can call this api")
		return
	}
	eq, bindErrs, zoneless := bindEventsQuery(r)
	if bindErrs != nil {
		writeValidationProblem(w, bindErrs)
		return
	}
	if msg := eq.validate(zoneless); msg != "" {
		writeProblemDetail(w, http.StatusBadRequest, msg)
		return
	}
	ctx := r.Context()
	if eq.party <= 0 && (eq.person != "" || eq.unit != "") {
		ident := "Organisation:" + eq.unit
		if eq.person != "" {
			ident = "Person:" + eq.person
		}
		party, found, err := p.partyByIdentifier(ctx, ident)
		if err != nil {
			p.serverError(w, "party lookup", err)
			return
		}
		if !found {
			// The register does not know the party: the service answers NotFound().
			writeProblem(w, http.StatusNotFound)
			return
		}
		eq.party = party
	}
	events := []cloudEvent{}
	// Events are authorised one by one against the app's policy, which lets only its owner
	// read them: another org's app gives an empty list, not a refusal.
	if strings.EqualFold(who.org, org) {
		all, err := p.instanceEvents(ctx, org, app)
		if err != nil {
			p.serverError(w, "read events", err)
			return
		}
		events = eq.pick(all, p.now())
	}
	if len(events) > 0 {
		w.Header().Set("next", p.nextEventsLink(r, events[len(events)-1].ID))
	}
	writeJSON(w, http.StatusOK, events)
}

// pick applies the query to the app's events, which are in registration order.
func (eq eventsQuery) pick(all []cloudEvent, now time.Time) []cloudEvent {
	start := 0
	if eq.after != "" {
		if i := slices.IndexFunc(all, func(e cloudEvent) bool { return e.ID == eq.after }); i >= 0 {
			start = i + 1
		}
	}
	subject := ""
	if eq.party != 0 {
		subject = "/party/" + strconv.FormatInt(eq.party, 10)
	}
	out := []cloudEvent{}
	for _, e := range all[start:] {
		if int64(len(out)) >= eq.size {
			break
		}
		switch {
		case e.at.After(now.Add(-eventsRegistrationLag)),
			subject != "" && e.Subject != subject,
			eq.from != nil && e.at.Before(*eq.from),
			eq.to != nil && e.at.After(*eq.to),
			len(eq.types) > 0 && !slices.ContainsFunc(eq.types, func(pattern string) bool { return likeFold(pattern, e.Type) }):
			continue
		}
		out = append(out, e)
	}
	return out
}

// likeFold is SQL ILIKE: % any run, _ any one character, case-insensitive.
func likeFold(pattern, s string) bool {
	p, t := []rune(strings.ToLower(pattern)), []rune(strings.ToLower(s))
	// Iterative wildcard match with backtracking to the last %.
	pi, ti, star, mark := 0, 0, -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '_' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '%':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

// nextEventsLink is SetNextLink: the same path with after set to the last event's id and the
// other query parameters appended as they came.
func (p *Platform) nextEventsLink(r *http.Request, lastID string) string {
	var b strings.Builder
	b.WriteString(p.cfg.BaseURL + r.URL.EscapedPath() + "?after=" + lastID)
	for _, pair := range parseQuery(r.URL.RawQuery) {
		if pair.key == "after" {
			continue
		}
		b.WriteString("&" + pair.key + "=" + pair.value)
	}
	return b.String()
}

// appsHost is where the environment's apps run, the host of an app event's source.
func (p *Platform) appsHost(org string) string {
	if p.cfg.Env == "prod" {
		return "https://" + org + ".apps.altinn.no"
	}
	return "https://" + org + ".apps." + p.cfg.Env + ".altinn.no"
}

// instanceEvents derives the events the app published for its instances: one when each was
// created and one when its process completed, ordered by time as they were registered.
func (p *Platform) instanceEvents(ctx context.Context, org, app string) ([]cloudEvent, error) {
	rows, err := p.cfg.DB.QueryContext(ctx, `SELECT guid, party_id, owner_ident, created_ticks, process_ended
		FROM platform_instances WHERE env = ? AND app_id = ?`, p.cfg.Env, org+"/"+app)
	if err != nil {
		return nil, fmt.Errorf("instances of %s/%s: %w", org, app, err)
	}
	defer rows.Close()
	var out []cloudEvent
	resource := "urn:altinn:resource:app_" + org + "_" + app
	for rows.Next() {
		var (
			guid, ident string
			party       int64
			created     int64
			ended       *string
		)
		if err := rows.Scan(&guid, &party, &ident, &created, &ended); err != nil {
			return nil, fmt.Errorf("instances of %s/%s: %w", org, app, err)
		}
		partyID := strconv.FormatInt(party, 10)
		alt := ""
		if kind, no, ok := strings.Cut(ident, ":"); ok {
			alt = map[string]string{"Person": "/person/", "Organisation": "/org/"}[kind] + no
		}
		ev := func(typ string, at time.Time, order int) cloudEvent {
			return cloudEvent{ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(p.cfg.Env+"/"+guid+"/"+typ)).String(),
				Source:      p.appsHost(org) + "/" + org + "/" + app + "/instances/" + partyID + "/" + guid,
				SpecVersion: "1.0", Type: typ, Subject: "/party/" + partyID, AlternativeSubject: alt,
				Time: formatTime(at), Resource: resource, ResourceInstance: partyID + "/" + guid, at: at, order: order}
		}
		out = append(out, ev(eventInstanceCreated, fromTicks(created), 0))
		if ended != nil {
			if t, err := time.Parse(time.RFC3339Nano, *ended); err == nil {
				out = append(out, ev(eventProcessCompleted, t.UTC(), 1))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("instances of %s/%s: %w", org, app, err)
	}
	slices.SortFunc(out, func(a, b cloudEvent) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if a.order != b.order {
			return a.order - b.order
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
