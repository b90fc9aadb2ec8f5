package platform

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const instancesPath = "/storage/api/v1/instances"

// seededFixture is a platform with ttd/skjema (250 instances), ttd/melding (30) and skd/mva (20).
func seededFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	for _, a := range []struct {
		org, app string
		n        int
	}{{"ttd", "skjema", 250}, {"ttd", "melding", 30}, {"skd", "mva", 20}} {
		if err := f.p.SeedApp(t.Context(), a.org, a.app, a.n); err != nil {
			t.Fatalf("seed %s/%s: %v", a.org, a.app, err)
		}
	}
	return f
}

type page = struct {
	Count     int        `json:"count"`
	Self      *string    `json:"self"`
	Next      *string    `json:"next"`
	Instances []instance `json:"instances"`
}

// listAll follows next links from path and returns every instance and the pages seen.
func (f *fixture) listAll(t *testing.T, token, path string) ([]instance, []page) {
	t.Helper()
	var all []instance
	var pages []page
	for path != "" {
		res := f.get(path, bearer(token))
		if res.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.status, res.body)
		}
		pg := decode[page](t, res.body)
		if pg.Count != len(pg.Instances) {
			t.Fatalf("count %d with %d instances", pg.Count, len(pg.Instances))
		}
		pages = append(pages, pg)
		all = append(all, pg.Instances...)
		path = ""
		if pg.Next != nil {
			path = pathOf(t, *pg.Next)
		}
		if len(pages) > 100 {
			t.Fatal("paging does not end")
		}
	}
	return all, pages
}

func ids(insts []instance) []string {
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.ID
	}
	return out
}

func TestStoragePaging(t *testing.T) {
	f := seededFixture(t)
	tok := f.ttdToken()

	all, pages := f.listAll(t, tok, instancesPath+"?org=ttd")
	if len(all) != 280 || len(pages) != 3 || pages[0].Count != 100 || pages[2].Count != 80 {
		t.Fatalf("got %d instances on %d pages", len(all), len(pages))
	}
	if got := *pages[0].Self; got != testBaseURL+instancesPath+"?org=ttd" {
		t.Errorf("first self = %q", got)
	}
	// The token is "{lastChanged ticks};{id}", URL-encoded twice on the way out.
	next := *pages[0].Next
	if !regexp.MustCompile(`\?org=ttd&continuationToken=\d{18}%253b\d+$`).MatchString(next) {
		t.Errorf("next = %q", next)
	}
	if pages[2].Next != nil {
		t.Errorf("last page next = %q, want null", *pages[2].Next)
	}
	if self := *pages[1].Self; !strings.HasSuffix(next, strings.TrimPrefix(self, testBaseURL+instancesPath)) {
		t.Errorf("second self %q does not repeat the token of %q", self, next)
	}
	seen := map[string]bool{}
	var prev time.Time
	for i, in := range all {
		if seen[in.ID] {
			t.Fatalf("instance %s twice", in.ID)
		}
		seen[in.ID] = true
		lc, err := time.Parse(time.RFC3339Nano, in.LastChanged)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && lc.After(prev) {
			t.Fatalf("not ordered by lastChanged desc at %d", i)
		}
		prev = lc
		if in.Org != "ttd" || in.SelfLinks == nil || in.SelfLinks.Platform != testBaseURL+instancesPath+"/"+in.ID || len(in.Data) == 0 {
			t.Fatalf("instance %+v", in)
		}
	}

	t.Run("ascending with small pages", func(t *testing.T) {
		asc, pages := f.listAll(t, tok, instancesPath+"?appId=ttd/melding&size=7&order=asc:lastChanged")
		if len(asc) != 30 || len(pages) != 5 {
			t.Fatalf("got %d instances on %d pages", len(asc), len(pages))
		}
		if !strings.Contains(*pages[0].Next, "appId=ttd%2Fmelding&size=7&order=asc%3AlastChanged&continuationToken=") {
			t.Errorf("next = %q", *pages[0].Next)
		}
		for i := 1; i < len(asc); i++ {
			if asc[i].LastChanged < asc[i-1].LastChanged {
				t.Fatalf("not ascending at %d", i)
			}
		}
	})
	t.Run("exact multiple ends with an empty page", func(t *testing.T) {
		got, pages := f.listAll(t, tok, instancesPath+"?appId=ttd/melding&size=10")
		if len(got) != 30 || len(pages) != 4 || pages[3].Count != 0 {
			t.Fatalf("got %d on %d pages", len(got), len(pages))
		}
	})
	t.Run("single page without next", func(t *testing.T) {
		_, pages := f.listAll(t, tok, instancesPath+"?appId=ttd/melding")
		if len(pages) != 1 || pages[0].Count != 30 || pages[0].Next != nil {
			t.Fatalf("pages %+v", pages)
		}
	})
	t.Run("without data elements", func(t *testing.T) {
		res := f.get(instancesPath+"?org=ttd&size=5&includeDataElements=false", bearer(tok))
		for _, in := range decode[page](t, res.body).Instances {
			if len(in.Data) != 0 {
				t.Fatalf("data included: %+v", in.Data)
			}
		}
	})
}

func TestStorageFilters(t *testing.T) {
	f := seededFixture(t)
	tok := f.ttdToken()
	everything, _ := f.listAll(t, tok, instancesPath+"?appId=ttd/skjema&size=1000")
	if len(everything) != 250 {
		t.Fatalf("%d instances", len(everything))
	}
	mid := everything[125]
	midChanged, _ := time.Parse(time.RFC3339Nano, mid.LastChanged)
	midCreated, _ := time.Parse(time.RFC3339Nano, mid.Created)
	var dueSample string
	for _, in := range everything {
		if in.DueBefore != "" {
			dueSample = in.DueBefore
			break
		}
	}
	ownerOrg := ""
	for _, in := range everything {
		if in.InstanceOwner.OrganisationNumber != "" {
			ownerOrg = in.InstanceOwner.OrganisationNumber
			break
		}
	}
	ts := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }

	tests := []struct {
		name  string
		query string
		want  func(instance) bool
	}{
		{"complete", "process.isComplete=true", func(i instance) bool { return i.Process.Ended != "" }},
		{"not complete", "process.isComplete=false", func(i instance) bool { return i.Process.CurrentTask != nil }},
		{"current task", "process.currentTask=Task_2", func(i instance) bool {
			return i.Process.CurrentTask != nil && i.Process.CurrentTask.ElementID == "Task_2"
		}},
		{"keys ignore case", "Process.IsComplete=TRUE", func(i instance) bool { return i.Process.Ended != "" }},
		{"archived", "status.isArchived=true", func(i instance) bool { return i.Status.IsArchived }},
		{"soft deleted", "status.isSoftDeleted=true", func(i instance) bool { return i.Status.IsSoftDeleted }},
		{"hard deleted visible to owner", "status.isHardDeleted=true", func(i instance) bool { return i.Status.IsHardDeleted }},
		{"lastChanged gt", "lastChanged=gt:" + url.QueryEscape(mid.LastChanged), func(i instance) bool { return ts(i.LastChanged).After(midChanged) }},
		{"lastChanged lte", "lastChanged=lte:" + url.QueryEscape(mid.LastChanged), func(i instance) bool { return !ts(i.LastChanged).After(midChanged) }},
		{"lastChanged eq", "lastChanged=eq:" + url.QueryEscape(mid.LastChanged), func(i instance) bool { return i.ID == mid.ID }},
		{"created range", "created=gte:" + midCreated.AddDate(0, 0, -20).Format("2006-01-02") + "&created=lt:" + midCreated.Format("2006-01-02"),
			func(i instance) bool {
				c := ts(i.Created)
				lo := time.Date(midCreated.Year(), midCreated.Month(), midCreated.Day(), 0, 0, 0, 0, time.UTC)
				return !c.Before(lo.AddDate(0, 0, -20)) && c.Before(lo)
			}},
		{"unknown operator is ignored", "created=foo:2020-01-01", func(instance) bool { return true }},
		{"dueBefore compared as strings", "dueBefore=lt:" + url.QueryEscape(dueSample), func(i instance) bool {
			return i.DueBefore != "" && i.DueBefore < dueSample
		}},
		{"process.ended month", "process.ended=gte:" + mid.Created[:7], func(i instance) bool {
			return i.Process.Ended != "" && i.Process.Ended >= mid.Created[:7]
		}},
		{"unconfirmed by org", "excludeConfirmedBy=ttd", func(i instance) bool { return len(i.CompleteConfirmations) == 0 }},
		{"confirmed", "confirmed=true", func(i instance) bool { return len(i.CompleteConfirmations) > 0 }},
		{"party", "instanceOwner.partyId=" + mid.InstanceOwner.PartyID, func(i instance) bool {
			return i.InstanceOwner.PartyID == mid.InstanceOwner.PartyID
		}},
		{"A3 reference", "A3Ref=" + mid.ID[len(mid.ID)-12:], func(i instance) bool { return i.ID == mid.ID }},
		{"main version 2 only", "mainVersionInclude=2", func(instance) bool { return false }},
		{"search", "searchString=skjema", func(instance) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := f.listAll(t, tok, instancesPath+"?appId=ttd/skjema&size=40&"+tt.query)
			var want []instance
			for _, in := range everything {
				if tt.want(in) {
					want = append(want, in)
				}
			}
			if !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("got %d instances, want %d", len(got), len(want))
			}
			if len(want) == 0 && !strings.Contains(tt.name, "version") {
				t.Logf("note: filter %q selects nothing in the seed", tt.name)
			}
		})
	}

	t.Run("owner identifier header", func(t *testing.T) {
		res := f.get(instancesPath+"?appId=ttd/skjema&size=1000", map[string]string{
			"Authorization": "Bearer " + tok, "X-Ai-InstanceOwnerIdentifier": "Organisation:" + ownerOrg,
		})
		pg := decode[page](t, res.body)
		if pg.Count == 0 {
			t.Fatal("no instances for a known owner")
		}
		for _, in := range pg.Instances {
			if in.InstanceOwner.OrganisationNumber != ownerOrg {
				t.Fatalf("instance of %s", in.InstanceOwner.OrganisationNumber)
			}
		}
		res = f.get(instancesPath+"?appId=ttd/skjema", map[string]string{
			"Authorization": "Bearer " + tok, "X-Ai-InstanceOwnerIdentifier": "Person:01010112345",
		})
		if string(res.body) != `{"count":0,"self":null,"next":null,"instances":[]}` {
			t.Errorf("unknown party: %s", res.body)
		}
	})
}

func TestStorageErrors(t *testing.T) {
	f := seededFixture(t)
	tok := f.ttdToken()
	_, altinn, _ := testKeys(t)
	now := f.clock.Now()
	noOrg := f.altinnToken(plainOrgNo, "altinn:serviceowner/instances.read")
	writeOnly := f.altinnToken(ttdOrgNo, "altinn:serviceowner/instances.write")
	expired := signJWT(t, altinn, "k", map[string]any{"urn:altinn:org": "ttd", "scope": readScope, "exp": now.Add(-time.Second).Unix()})
	noExp := signJWT(t, altinn, "k", map[string]any{"urn:altinn:org": "ttd", "scope": readScope})
	user := signJWT(t, altinn, "k", map[string]any{"urn:altinn:userid": "1337", "scope": "altinn:portal/enduser", "exp": now.Add(time.Hour).Unix()})

	tests := []struct {
		name   string
		token  string
		query  string
		header map[string]string
		status int
		body   string // exact body when set
	}{
		{"no token", "", "?org=ttd", nil, 401, ""},
		{"Maskinporten token", f.mpToken(ttdOrgNo, readScope), "?org=ttd", nil, 401, ""},
		{"expired Altinn token", expired, "?org=ttd", nil, 401, ""},
		{"Altinn token without exp", noExp, "?org=ttd", nil, 401, ""},
		{"no org claim", noOrg, "?org=ttd", nil, 400, ""},
		{"no read scope", writeOnly, "?org=ttd", nil, 403, ""},
		{"neither org nor appId", tok, "", nil, 400, `"Org or AppId must be defined."`},
		{"empty org", tok, "?org=", nil, 400, `"Org or AppId must be defined."`},
		{"other org without appId", tok, "?org=skd", nil, 400, `"AppId must be defined."`},
		{"other org with appId", tok, "?appId=skd/mva", nil, 403, ""},
		{"end user without party", user, "?org=ttd", nil, 400, `"Either InstanceOwnerPartyId or InstanceOwnerIdentifier need to be defined."`},
		{"size not a number", tok, "?org=ttd&size=abc", nil, 400, ""},
		{"bool not a bool", tok, "?org=ttd&process.isComplete=yes", nil, 400, ""},
		{"date without operator", tok, "?org=ttd&created=2025-01-01", nil, 400, `"Invalid date expression: 2025-01-01 for query key: created"`},
		{"date not a date", tok, "?org=ttd&lastChanged=gt:yesterday", nil, 400, `"Invalid date expression: gt:yesterday for query key: lastChanged"`},
		{"same operator twice", tok, "?org=ttd&created=gt:2025-01-01&created=gt:2025-02-01", nil, 400, `"Invalid date expression: gt:2025-02-01 for query key: created"`},
		{"A3 reference length", tok, "?org=ttd&A3Ref=abc", nil, 400, `"The A3 reference needs to be exactly 12 characters long."`},
		{"party and identifier", tok, "?org=ttd&instanceOwner.partyId=1", map[string]string{"X-Ai-InstanceOwnerIdentifier": "Person:01010112345"}, 400,
			`"Both InstanceOwner.PartyId and InstanceOwnerIdentifier cannot be present at the same time."`},
		{"short org number", tok, "?org=ttd", map[string]string{"X-Ai-InstanceOwnerIdentifier": "Organisation:123"}, 400, `"Organization number needs to be exactly 9 digits."`},
		{"bad identifier", tok, "?org=ttd", map[string]string{"X-Ai-InstanceOwnerIdentifier": "Company:123"}, 400, `"Invalid InstanceOwnerIdentifier."`},
		{"malformed continuation token", tok, "?org=ttd&continuationToken=abc%3Bdef", nil, 400,
			`"Invalid continuationToken: The input string 'def' was not in a correct format. Use the next link of the previous page as it is; a token is two integers separated by ';'."`},
		{"continuation token x;y", tok, "?org=ttd&continuationToken=x%3By", nil, 400,
			`"Invalid continuationToken: The input string 'y' was not in a correct format. Use the next link of the previous page as it is; a token is two integers separated by ';'."`},
		{"continuation token ticks out of range", tok, "?org=ttd&continuationToken=-1%3B2", nil, 400,
			`"Invalid continuationToken: Ticks must be between DateTime.MinValue.Ticks and DateTime.MaxValue.Ticks. (Parameter 'ticks') Use the next link of the previous page as it is; a token is two integers separated by ';'."`},
		{"negative size", tok, "?org=ttd&size=-1", nil, 400, `"Invalid size: -1. Give a page size of 0 or more, or leave size out for 100."`},
		{"token without separator is ignored", tok, "?org=ttd&size=1&continuationToken=whatever", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.token != "" {
				h["Authorization"] = "Bearer " + tt.token
			}
			for k, v := range tt.header {
				h[k] = v
			}
			res := f.get(instancesPath+tt.query, h)
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
			}
			if tt.body != "" && string(res.body) != tt.body {
				t.Errorf("body = %s, want %s", res.body, tt.body)
			}
			if (tt.status == 401 || tt.status == 403) && len(res.body) != 0 {
				t.Errorf("body = %q, want empty", res.body)
			}
		})
	}

	t.Run("token expires with the clock", func(t *testing.T) {
		g := seededFixture(t)
		tok := g.ttdToken()
		if res := g.get(instancesPath+"?org=ttd&size=1", bearer(tok)); res.status != 200 {
			t.Fatalf("fresh token: %d", res.status)
		}
		g.clock.Add(30*time.Minute + time.Second)
		if res := g.get(instancesPath+"?org=ttd&size=1", bearer(tok)); res.status != 401 {
			t.Fatalf("after 30 minutes: %d", res.status)
		}
	})
}

func TestSingleInstanceAndData(t *testing.T) {
	f := seededFixture(t)
	tok := f.ttdToken()
	all, _ := f.listAll(t, tok, instancesPath+"?appId=ttd/skjema&size=1000")
	var ended, withAttachment instance
	for _, in := range all {
		if in.Process.Ended != "" && ended.ID == "" {
			ended = in
		}
		for _, d := range in.Data {
			if d.DataType == "vedlegg" && withAttachment.ID == "" {
				withAttachment = in
			}
		}
	}
	if ended.ID == "" || withAttachment.ID == "" {
		t.Fatal("seed lacks an ended instance or an attachment")
	}
	skdAll, _ := f.listAll(t, f.altinnToken(skdOrgNo, readScope), instancesPath+"?org=skd")
	other := skdAll[0]
	guid := ended.ID[strings.Index(ended.ID, "/")+1:]
	party := ended.InstanceOwner.PartyID

	t.Run("instance", func(t *testing.T) {
		for _, path := range []string{instancesPath + "/" + ended.ID, instancesPath + "/" + guid, instancesPath + "/0/" + strings.ToUpper(guid)} {
			res := f.get(path, bearer(tok))
			if res.status != 200 {
				t.Fatalf("%s: %d %s", path, res.status, res.body)
			}
			got := decode[instance](t, res.body)
			if got.ID != ended.ID || len(got.Data) != len(ended.Data) || got.SelfLinks.Platform != ended.SelfLinks.Platform {
				t.Errorf("%s: %+v", path, got)
			}
		}
	})
	t.Run("instance errors", func(t *testing.T) {
		unknown := "0b7e8c1a-3d2f-4a6b-9c0d-1e2f3a4b5c6d"
		tests := []struct {
			name, path, token string
			status            int
			body              string
		}{
			{"unknown", instancesPath + "/" + party + "/" + unknown, tok, 404, `"Unable to find instance ` + unknown + `"`},
			{"other org", instancesPath + "/" + other.ID, tok, 403, ""},
			{"no token", instancesPath + "/" + ended.ID, "", 401, ""},
			{"not a guid", instancesPath + "/" + party + "/not-a-guid", tok, 404, ""},
			{"party not an int", instancesPath + "/abc/" + guid, tok, 404, ""},
			{"dataelements of unknown", instancesPath + "/" + party + "/" + unknown + "/dataelements", tok, 404,
				`"Unable to find any instance with id: ` + party + "/" + unknown + `."`},
			{"dataelements party 0", instancesPath + "/0/" + guid + "/dataelements", tok, 400,
				`"Missing parameter value: instanceOwnerPartyId can not be empty"`},
			{"data party 0", instancesPath + "/0/" + guid + "/data/" + ended.Data[0].ID, tok, 400,
				`"Missing parameter value: instanceOwnerPartyId can not be empty"`},
			{"unknown data", instancesPath + "/" + ended.ID + "/data/" + unknown, tok, 404, `"Unable to find any data element with id: ` + unknown + `."`},
			{"data of other org", instancesPath + "/" + other.ID + "/data/" + other.Data[0].ID, tok, 403, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := map[string]string{}
				if tt.token != "" {
					h = bearer(tt.token)
				}
				res := f.get(tt.path, h)
				if res.status != tt.status || (tt.body != "" && string(res.body) != tt.body) {
					t.Fatalf("got %d %s, want %d %s", res.status, res.body, tt.status, tt.body)
				}
			})
		}
	})
	t.Run("dataelements", func(t *testing.T) {
		res := f.get(instancesPath+"/"+ended.ID+"/dataelements", bearer(tok))
		list := decode[dataElementList](t, res.body)
		if res.status != 200 || len(list.DataElements) != len(ended.Data) {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
	t.Run("downloads", func(t *testing.T) {
		for _, in := range []instance{ended, withAttachment} {
			for _, d := range in.Data {
				res := f.get(pathOf(t, d.SelfLinks.Platform), bearer(tok))
				if res.status != 200 {
					t.Fatalf("%s: %d %s", d.DataType, res.status, res.body)
				}
				if ct := res.header.Get("Content-Type"); ct != d.ContentType {
					t.Errorf("%s content type %q", d.DataType, ct)
				}
				if cd := res.header.Get("Content-Disposition"); cd != contentDisposition(d.Filename) || !strings.HasPrefix(cd, "attachment; filename=") {
					t.Errorf("%s disposition %q", d.DataType, cd)
				}
				sum := md5.Sum(res.body)
				if int64(len(res.body)) != d.Size || base64.StdEncoding.EncodeToString(sum[:]) != d.ContentHash {
					t.Errorf("%s: size/hash do not match metadata", d.DataType)
				}
				checkContent(t, d, res.body)
			}
		}
	})
}

// checkContent checks that XML is well-formed enough and that a PDF's cross-reference table
// points at its objects.
func checkContent(t *testing.T, d dataElement, b []byte) {
	t.Helper()
	switch d.ContentType {
	case "application/xml":
		if !bytes.HasPrefix(b, []byte(`<?xml version="1.0" encoding="utf-8"?>`)) || !bytes.HasSuffix(b, []byte("</Skjema>\n")) {
			t.Errorf("xml: %s", b)
		}
	case "application/pdf":
		if !bytes.HasPrefix(b, []byte("%PDF-1.4")) || !bytes.HasSuffix(b, []byte("%%EOF\n")) {
			t.Fatalf("pdf framing")
		}
		m := regexp.MustCompile(`startxref\n(\d+)\n`).FindSubmatch(b)
		off, _ := strconv.Atoi(string(m[1]))
		if !bytes.HasPrefix(b[off:], []byte("xref\n0 7\n")) {
			t.Fatalf("startxref does not point at xref")
		}
		entries := regexp.MustCompile(`(\d{10}) 00000 n \n`).FindAllSubmatch(b[off:], -1)
		for i, e := range entries {
			o, _ := strconv.Atoi(string(e[1]))
			if !bytes.HasPrefix(b[o:], []byte(strconv.Itoa(i+1)+" 0 obj")) {
				t.Fatalf("xref entry %d is off", i+1)
			}
		}
	}
}

func TestContentDisposition(t *testing.T) {
	tests := []struct{ name, want string }{
		{"model.xml", "attachment; filename=model.xml; filename*=UTF-8''model.xml"},
		{"Årsregnskap 2024.pdf", `attachment; filename="_rsregnskap 2024.pdf"; filename*=UTF-8''%C3%85rsregnskap%202024.pdf`},
		{"Budsjett (revidert).pdf", `attachment; filename="Budsjett (revidert).pdf"; filename*=UTF-8''Budsjett%20%28revidert%29.pdf`},
	}
	for _, tt := range tests {
		if got := contentDisposition(tt.name); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestSeedApp(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	count := func(env, app string) int {
		var n int
		if err := f.db.QueryRowContext(ctx, "SELECT count(*) FROM platform_instances WHERE env = ? AND app_id = ?", env, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := f.p.SeedApp(ctx, "ttd", "demo", 20); err != nil {
		t.Fatal(err)
	}
	var first string
	if err := f.db.QueryRowContext(ctx, "SELECT guid FROM platform_instances WHERE seq = 0").Scan(&first); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(24 * time.Hour)
	for _, n := range []int{20, 5, 35} {
		if err := f.p.SeedApp(ctx, "ttd", "demo", n); err != nil {
			t.Fatal(err)
		}
	}
	if got := count("tt02", "ttd/demo"); got != 35 {
		t.Fatalf("instances = %d, want 35", got)
	}
	var again string
	_ = f.db.QueryRowContext(ctx, "SELECT guid FROM platform_instances WHERE seq = 0").Scan(&again)
	if again != first {
		t.Errorf("first instance changed")
	}
	if err := f.p.SeedApp(ctx, "TTD", "demo", 1); err == nil {
		t.Error("upper-case org accepted")
	}

	// A second environment over the same file sees none of tt02's instances.
	prod, err := New(ctx, testConfig(t, f.db, f.clock, "prod"))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.SeedApp(ctx, "ttd", "demo", 3); err != nil {
		t.Fatal(err)
	}
	if count("prod", "ttd/demo") != 3 || count("tt02", "ttd/demo") != 35 {
		t.Error("environments are not separate")
	}
	if _, found, _ := prod.instanceByGUID(ctx, first, false); found {
		t.Error("prod finds a tt02 instance")
	}
}

// TestInstanceQueryUsesIndex checks that listing walks an index in lastChanged order instead of
// sorting, so pages cost the same however many instances there are.
func TestInstanceQueryUsesIndex(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"org=ttd", "appId=ttd/demo", "appId=ttd/demo&order=asc&process.isComplete=true"} {
		iq, _ := bindInstanceQuery(parseQuery(q))
		if iq.org == "" {
			iq.org = "ttd"
		}
		three := int64(3)
		iq.mainInclude = &three
		s, err := buildInstanceSQL("tt02", iq)
		if err != nil {
			t.Fatal(err)
		}
		s.withKeyset(&keyset{ticks: toTicks(f.clock.Now()), id: 10})
		order := "last_changed_ticks DESC, id DESC"
		if s.asc {
			order = "last_changed_ticks ASC, id ASC"
		}
		rows, err := f.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN SELECT id, last_changed_ticks, body FROM platform_instances WHERE "+
			strings.Join(s.where, " AND ")+" ORDER BY "+order+" LIMIT 100", s.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, "USING INDEX platform_instances_") || strings.Contains(joined, "TEMP B-TREE") {
			t.Errorf("%s: plan %s", q, joined)
		}
	}
}

// BenchmarkListInstances pages through an org with a few thousand instances.
func BenchmarkListInstances(b *testing.B) {
	f := newFixture(b)
	if err := f.p.SeedApp(b.Context(), "ttd", "stor", 3000); err != nil {
		b.Fatal(err)
	}
	tok := f.ttdToken()
	first := decode[page](b, f.get(instancesPath+"?org=ttd", bearer(tok)).body)
	deep := pathOf(b, *first.Next)
	b.ResetTimer()
	for b.Loop() {
		if res := f.get(deep, bearer(tok)); res.status != 200 {
			b.Fatal(res.status)
		}
	}
}
