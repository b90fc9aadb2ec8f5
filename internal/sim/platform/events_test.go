package platform

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const appEventsPath = "/events/api/v1/app/ttd/skjema"

// eventsToken is an Altinn token for service owner ttd that may read instances and events.
func (f *fixture) eventsToken() string {
	return f.altinnToken(ttdOrgNo, "altinn:serviceowner/instances.read "+eventsSubscribeScope)
}

type wireEvent struct {
	ID                 string `json:"id"`
	Source             string `json:"source"`
	SpecVersion        string `json:"specversion"`
	Type               string `json:"type"`
	Subject            string `json:"subject"`
	AlternativeSubject string `json:"alternativesubject"`
	Time               string `json:"time"`
	Resource           string `json:"resource"`
	ResourceInstance   string `json:"resourceinstance"`
}

func (f *fixture) events(t *testing.T, token, path string, header map[string]string) (response, []wireEvent) {
	t.Helper()
	h := bearer(token)
	for k, v := range header {
		h[k] = v
	}
	res := f.get(path, h)
	if res.status != http.StatusOK {
		return res, nil
	}
	return res, decode[[]wireEvent](t, res.body)
}

// The app's events follow its Storage instances: one app.instance.created per instance and one
// app.instance.process.completed per ended one, in time order, paged by the next header.
func TestAppEventsFollowStorageInstances(t *testing.T) {
	t.Parallel()
	f := seededFixture(t)
	instances, _ := f.listAll(t, f.ttdToken(), instancesPath+"?appId=ttd/skjema&size=100")
	ended := 0
	byID := map[string]instance{}
	for _, in := range instances {
		byID[in.ID] = in
		if in.Process != nil && in.Process.Ended != "" {
			ended++
		}
	}
	tok := f.eventsToken()
	var all []wireEvent
	path := appEventsPath + "?from=2000-01-01T00:00:00Z&size=70"
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("the next links never end")
		}
		res, evs := f.events(t, tok, path, nil)
		if res.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.status, res.body)
		}
		if len(evs) == 0 {
			if res.header.Get("next") != "" {
				t.Error("an empty page has a next link")
			}
			break
		}
		if len(evs) > 70 {
			t.Fatalf("page of %d events, asked for 70", len(evs))
		}
		all = append(all, evs...)
		next := res.header.Get("next")
		if !strings.Contains(next, "after="+evs[len(evs)-1].ID) || !strings.Contains(next, "size=70") {
			t.Fatalf("next link %q", next)
		}
		path = pathOf(t, next)
	}
	if len(all) != len(instances)+ended {
		t.Fatalf("%d events for %d instances of which %d ended", len(all), len(instances), ended)
	}
	seen := map[string]bool{}
	var last time.Time
	for _, e := range all {
		if seen[e.ID] || !isGUID(e.ID) {
			t.Fatalf("event id %q repeated or not a GUID", e.ID)
		}
		seen[e.ID] = true
		at, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil || at.Before(last) {
			t.Fatalf("event time %q out of order or unreadable", e.Time)
		}
		last = at
		in, ok := byID[e.ResourceInstance]
		if !ok {
			t.Fatalf("event for %q, which Storage does not list", e.ResourceInstance)
		}
		wantAlt := "/org/" + in.InstanceOwner.OrganisationNumber
		if in.InstanceOwner.PersonNumber != "" {
			wantAlt = "/person/" + in.InstanceOwner.PersonNumber
		}
		if e.SpecVersion != "1.0" || e.Subject != "/party/"+in.InstanceOwner.PartyID || e.AlternativeSubject != wantAlt ||
			e.Resource != "urn:altinn:resource:app_ttd_skjema" ||
			e.Source != "https://ttd.apps.tt02.altinn.no/ttd/skjema/instances/"+in.ID {
			t.Fatalf("event %+v for instance %s", e, in.ID)
		}
		switch e.Type {
		case eventInstanceCreated:
			if e.Time != in.Created {
				t.Fatalf("created event at %s, instance created %s", e.Time, in.Created)
			}
		case eventProcessCompleted:
			if in.Process == nil || e.Time != in.Process.Ended {
				t.Fatalf("completed event at %s for an instance not ended then", e.Time)
			}
		default:
			t.Fatalf("event type %q", e.Type)
		}
	}
}

// after, size, from, to, type and party select from the same sequence.
func TestAppEventsQuery(t *testing.T) {
	t.Parallel()
	f := seededFixture(t)
	tok := f.eventsToken()
	_, all := f.events(t, tok, appEventsPath+"?from=2000-01-01T00:00:00Z&size=1000", nil)
	if len(all) < 40 {
		t.Fatalf("only %d events", len(all))
	}
	mid, _ := time.Parse(time.RFC3339Nano, all[20].Time)
	end, _ := time.Parse(time.RFC3339Nano, all[30].Time)
	party := strings.TrimPrefix(all[0].Subject, "/party/")
	var ofParty, completed []wireEvent
	for _, e := range all {
		if e.Subject == all[0].Subject {
			ofParty = append(ofParty, e)
		}
		if e.Type == eventProcessCompleted {
			completed = append(completed, e)
		}
	}
	var between []wireEvent
	for _, e := range all {
		at, _ := time.Parse(time.RFC3339Nano, e.Time)
		if !at.Before(mid) && !at.After(end) {
			between = append(between, e)
		}
	}
	cases := []struct {
		name  string
		query url.Values
		want  []wireEvent
	}{
		{"after and size", url.Values{"after": {all[4].ID}, "size": {"3"}}, all[5:8]},
		{"after the last", url.Values{"after": {all[len(all)-1].ID}}, nil},
		{"unknown after starts from the first", url.Values{"after": {"00000000-0000-4000-8000-000000000000"}, "size": {"2"}}, all[:2]},
		{"default size is 50", url.Values{"from": {"2000-01-01T00:00:00Z"}}, all[:50]},
		{"from and to", url.Values{"from": {formatTime(mid)}, "to": {formatTime(end)}, "size": {"1000"}}, between},
		{"from with an offset", url.Values{"from": {mid.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.9999999-07:00")}, "to": {formatTime(end)}, "size": {"1000"}}, between},
		{"type pattern", url.Values{"after": {"x"}, "type": {"APP.instance.process.%"}, "size": {"1000"}}, completed},
		{"party", url.Values{"after": {"x"}, "party": {party}, "size": {"1000"}}, ofParty},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, got := f.events(t, tok, appEventsPath+"?"+tc.query.Encode(), nil)
			if res.status != http.StatusOK {
				t.Fatalf("%d %s", res.status, res.body)
			}
			ids := func(es []wireEvent) []string {
				out := []string{}
				for _, e := range es {
					out = append(out, e.ID)
				}
				return out
			}
			if !slices.Equal(ids(got), ids(tc.want)) {
				t.Fatalf("got %d events %v, want %d %v", len(got), ids(got), len(tc.want), ids(tc.want))
			}
		})
	}
}

// What the real Events API refuses, the simulator refuses the same way; bad input is a 400
// with a message, never a 500.
func TestAppEventsRefusals(t *testing.T) {
	t.Parallel()
	f := seededFixture(t)
	tok := f.eventsToken()
	noScope := f.ttdToken()
	otherOrg := f.altinnToken(skdOrgNo, "altinn:serviceowner/instances.read "+eventsSubscribeScope)
	notOwner := f.altinnToken(plainOrgNo, eventsSubscribeScope)
	ok := "from=2000-01-01T00:00:00Z"
	cases := []struct {
		name       string
		token      string
		query      string
		header     map[string]string
		status     int
		bodyHas    string
		emptyArray bool
	}{
		{"no token", "", ok, nil, http.StatusUnauthorized, "", false},
		{"not an Altinn token", "a.b.c", ok, nil, http.StatusUnauthorized, "", false},
		{"no events scope", noScope, ok, nil, http.StatusForbidden, "", false},
		{"not a service owner", notOwner, ok, nil, http.StatusUnauthorized, "Only orgs can call this api", false},
		{"another org's app", otherOrg, ok, nil, http.StatusOK, "", true},
		{"neither from nor after", tok, "size=5", nil, http.StatusBadRequest, "The 'From' or 'After' parameter must be defined.", false},
		{"from without a zone", tok, "from=2025-01-01T10:00:00", nil, http.StatusBadRequest, "The 'From' parameter must specify timezone", false},
		{"to without a zone", tok, ok + "&to=2025-01-01", nil, http.StatusBadRequest, "The 'To' parameter must specify timezone", false},
		{"from not a date", tok, "from=yesterday", nil, http.StatusBadRequest, "The value 'yesterday' is not valid for from.", false},
		{"size zero", tok, ok + "&size=0", nil, http.StatusBadRequest, "The 'Size' parameter must be a number larger that 0.", false},
		{"size not a number", tok, ok + "&size=ten", nil, http.StatusBadRequest, "The value 'ten' is not valid for size.", false},
		{"size too large for an int", tok, ok + "&size=9999999999", nil, http.StatusBadRequest, "is not valid for size", false},
		{"party not a number", tok, ok + "&party=x", nil, http.StatusBadRequest, "The value 'x' is not valid for party.", false},
		{"party and unit", tok, ok + "&party=5&unit=123456789", nil, http.StatusBadRequest, "Only one of 'Party' or 'Unit' can be defined.", false},
		{"unit of eight digits", tok, ok + "&unit=12345678", nil, http.StatusBadRequest, "Value of 'Unit' needs to be exactly 9 digits.", false},
		{"person and party", tok, ok + "&party=5", map[string]string{"person": "01014922047"}, http.StatusBadRequest, "Only one of 'Party' or 'Person' can be defined.", false},
		{"person not eleven digits", tok, ok, map[string]string{"person": "0101"}, http.StatusBadRequest, "Value of 'Person' needs to be exactly 11 digits.", false},
		{"unit the register does not know", tok, ok + "&unit=999999999", nil, http.StatusNotFound, "", false},
		{"unknown app", tok, ok, nil, http.StatusOK, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := appEventsPath + "?" + tc.query
			if tc.name == "unknown app" {
				path = "/events/api/v1/app/ttd/finnes-ikke?" + tc.query
			}
			h := map[string]string{}
			if tc.token != "" {
				h = bearer(tc.token)
			}
			for k, v := range tc.header {
				h[k] = v
			}
			res := f.get(path, h)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			if tc.bodyHas != "" && !strings.Contains(string(res.body), tc.bodyHas) {
				t.Fatalf("body %s lacks %q", res.body, tc.bodyHas)
			}
			if tc.status == http.StatusBadRequest {
				var pd map[string]any
				if json.Unmarshal(res.body, &pd) != nil || pd["status"] != float64(400) {
					t.Fatalf("a 400 without ProblemDetails: %s", res.body)
				}
			}
			if tc.emptyArray && strings.TrimSpace(string(res.body)) != "[]" {
				t.Fatalf("want an empty list, got %s", res.body)
			}
		})
	}
}

// With EventsWithoutSubscribeScope the service-owner token without the events scope reads the
// app's events, as the real service allows today for app events.
func TestAppEventsWithoutSubscribeScopeOption(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Options.EventsWithoutSubscribeScope = true })
	if err := f.p.SeedApp(t.Context(), "ttd", "skjema", 5); err != nil {
		t.Fatal(err)
	}
	res, evs := f.events(t, f.ttdToken(), appEventsPath+"?from=2000-01-01T00:00:00Z", nil)
	if res.status != http.StatusOK || len(evs) < 5 {
		t.Fatalf("%d, %d events", res.status, len(evs))
	}
}
