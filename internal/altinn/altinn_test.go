package altinn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestClient(t *testing.T, h http.HandlerFunc, mod func(*Config)) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{PlatformURL: srv.URL, HTTPClient: srv.Client(), Backoff: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func expect(t *testing.T, r *http.Request, path, query, token string) {
	t.Helper()
	if r.Method != http.MethodGet || r.URL.EscapedPath() != path || r.URL.RawQuery != query {
		t.Errorf("got %s %s?%s, want GET %s?%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, path, query)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+token {
		t.Errorf("Authorization %q", got)
	}
}

// altinnJWT is a syntactically valid token (content irrelevant here).
const altinnJWT = "eyJhbGciOiJSUzI1NiJ9.eyJ1cm46YWx0aW5uOm9yZyI6InR0ZCJ9.c2lnbmF0dXJl"

func TestExchange(t *testing.T) {
	tests := []struct {
		name     string
		test     bool
		status   int
		ctype    string
		body     string
		want     string
		wantErr  error
		errMatch string
	}{
		{"plain", false, 200, "text/plain; charset=utf-8", altinnJWT, altinnJWT, nil, ""},
		{"test=true", true, 200, "text/plain; charset=utf-8", altinnJWT + "\n", altinnJWT, nil, ""},
		{"quoted", false, 200, "application/json", `"` + altinnJWT + `"`, altinnJWT, nil, ""},
		{"401 problem", false, 401, "application/problem+json", string(fixture(t, "problem_401.json")), "", ErrUnauthorized,
			"altinn exchange: 401 Unauthorized (trace id 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00)"},
		{"401 empty", false, 401, "", "", "", ErrUnauthorized, "altinn exchange: 401"},
		{"410 problem", false, 410, "application/problem+json", string(fixture(t, "problem_410.json")), "", nil,
			"altinn exchange: 410 Virksomhetsbruker is no longer available: Use Systembruker or ID-porten instead."},
		{"400 text", false, 400, "text/plain", "Invalid token provider: x. Trusted token providers are 'Maskinporten', 'Id-porten' and 'AltinnStudio'.", "", ErrBadRequest,
			"altinn exchange: 400: Invalid token provider: x."},
		{"200 not a JWT", false, 200, "text/html", "<html>secret-looking</html>", "", nil, "is not a JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				q := ""
				if tt.test {
					q = "test=true"
				}
				expect(t, r, "/authentication/api/v1/exchange/maskinporten", q, "mp-token")
				if r.Header.Get("Accept") != "text/plain" {
					t.Errorf("Accept %q", r.Header.Get("Accept"))
				}
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}, nil)
			got, err := c.Exchange(t.Context(), "mp-token", tt.test)
			if tt.errMatch == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errMatch) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errMatch)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err is not %v", tt.wantErr)
			}
			if strings.Contains(err.Error(), "mp-token") || strings.Contains(err.Error(), "secret-looking") {
				t.Errorf("error leaks: %v", err)
			}
		})
	}
}

func TestInstanceQueryValues(t *testing.T) {
	yes, no := true, false
	q := InstanceQuery{
		AppID:             "ttd/my-app",
		IsComplete:        &no,
		CurrentTask:       "Task_1",
		Created:           []DateFilter{At(GTE, time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))), {LT, "2025-03"}},
		LastChanged:       []DateFilter{{EQ, "2025-02-01"}},
		IsSoftDeleted:     &yes,
		Size:              10,
		ContinuationToken: "638912345678901234%3b4711",
		Order:             "asc:lastChanged",
	}
	v, err := q.Values()
	if err != nil {
		t.Fatal(err)
	}
	want := "appId=ttd%2Fmy-app&continuationToken=638912345678901234%253b4711" +
		"&created=gte%3A2024-12-31T23%3A00%3A00Z&created=lt%3A2025-03&lastChanged=eq%3A2025-02-01" +
		"&order=asc%3AlastChanged&process.currentTask=Task_1&process.isComplete=false&size=10&status.isSoftDeleted=true"
	if got := v.Encode(); got != want {
		t.Errorf("query\n got %s\nwant %s", got, want)
	}
	for _, bad := range []InstanceQuery{
		{Org: "ttd", Created: []DateFilter{{"after", "2025"}}},
		{Org: "ttd", DueBefore: []DateFilter{{GT, ""}}},
		{Org: "ttd", Size: -1},
	} {
		if _, err := bad.Values(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestParseDateFilter(t *testing.T) {
	tests := []struct {
		in   string
		want DateFilter
		ok   bool
	}{
		{"gt:2025-01-01", DateFilter{GT, "2025-01-01"}, true},
		{" LTE:2025-01-01T10:00:00Z ", DateFilter{LTE, "2025-01-01T10:00:00Z"}, true},
		{"2025-01-01", DateFilter{}, false},
		{"ne:2025", DateFilter{}, false},
		{"eq:", DateFilter{}, false},
	}
	for _, tt := range tests {
		got, err := ParseDateFilter(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("%q: got %+v, %v", tt.in, got, err)
		}
	}
}

func TestInstancesPaging(t *testing.T) {
	page1 := fixture(t, "instances_page1.json")
	// Storage links use its own host; the client must stay on its own.
	page1 = bytes.ReplaceAll(page1, []byte("https://platform.tt02.altinn.no"), []byte("https://elsewhere.example"))
	var hits atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch hits.Add(1) {
		case 1:
			expect(t, r, "/storage/api/v1/instances", "org=ttd&size=2", "altinn-token")
			w.Write(page1)
		case 2:
			expect(t, r, "/storage/api/v1/instances", "org=ttd&size=2&continuationToken=638912345678901234%253b4711", "altinn-token")
			if got := r.URL.Query().Get("continuationToken"); got != "638912345678901234%3b4711" {
				t.Errorf("token decoded once: %q", got)
			}
			w.Write(fixture(t, "instances_page2.json"))
		}
	}, nil)
	p, err := c.Instances(t.Context(), "altinn-token", InstanceQuery{Org: "ttd", Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.Count != 2 || len(p.Instances) != 2 || p.Next == "" {
		t.Fatalf("page %+v", p)
	}
	first, second := p.Instances[0], p.Instances[1]
	if first.InstanceOwner.PartyID != "50001234" || first.Process.CurrentTask.ElementID != "Task_1" || first.Process.IsComplete() ||
		first.Status.ReadStatus != "Read" || first.Status.Substatus.Label != "Mottatt" || len(first.Data) != 1 {
		t.Errorf("first %+v", first)
	}
	if de := first.Data[0]; de.Size != 1234 || de.FileScanResult != "NotApplicable" || de.Created.Nanosecond() != 123456700 || de.DeleteStatus.HardDeleted.IsZero() == false {
		t.Errorf("data element %+v", de)
	}
	if !second.Process.IsComplete() || second.Process.CurrentTask != nil || second.Process.EndEvent != "EndEvent_1" {
		t.Errorf("second process %+v", second.Process)
	}
	if !bytes.HasPrefix(first.Raw, []byte(`{`)) || !bytes.Contains(first.Raw, []byte(`"Utfylling"`)) {
		t.Errorf("raw %s", first.Raw)
	}

	p2, err := c.NextInstances(t.Context(), "altinn-token", p)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Count != 1 || p2.Next != "" {
		t.Errorf("page 2 %+v", p2)
	}
	if _, err := c.NextInstances(t.Context(), "altinn-token", p2); !errors.Is(err, ErrNoNextPage) {
		t.Errorf("after last page: %v", err)
	}
	if _, err := c.NextInstances(t.Context(), "altinn-token", &InstancePage{Next: "https://x/authentication/api/v1/exchange/maskinporten?a=b"}); err == nil {
		t.Error("next link to another endpoint followed")
	}
	if hits.Load() != 2 {
		t.Errorf("%d requests", hits.Load())
	}
}

func TestStorageErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    []byte
		wantErr error
		want    string
	}{
		{"400 text", 400, fixture(t, "storage_400.txt"), ErrBadRequest, "altinn list instances: 400: Org or AppId must be defined."},
		{"403 empty", 403, nil, ErrForbidden, "altinn list instances: 403"},
		{"403 problem", 403, fixture(t, "problem_403_scope.json"), ErrForbidden, "altinn list instances: 403 Forbidden: Insufficient scope (trace id 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00)"},
		{"401", 401, fixture(t, "problem_401.json"), ErrUnauthorized, "altinn list instances: 401 Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.WriteHeader(tt.status)
				w.Write(tt.body)
			}, nil)
			_, err := c.Instances(t.Context(), "tok", InstanceQuery{Org: "ttd"})
			if !errors.Is(err, tt.wantErr) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v", err)
			}
			if hits.Load() != 1 {
				t.Errorf("4xx sent %d times", hits.Load())
			}
		})
	}
}

func TestGetRetries(t *testing.T) {
	var hits atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Server-Timing", "storage;dur=12")
		w.Write(fixture(t, "instance.json"))
	}, nil)
	var tr Trace
	inst, err := c.Instance(WithTrace(t.Context(), &tr), "tok", "50001234/0b7e8c1a-3d2f-4a6b-9c0d-1e2f3a4b5c6d")
	if err != nil {
		t.Fatal(err)
	}
	if inst.AppID != "ttd/my-app" || hits.Load() != 3 {
		t.Errorf("instance %q after %d hits", inst.AppID, hits.Load())
	}
	calls := tr.Calls()
	if len(calls) != 3 || calls[0].Status != 503 || calls[2].Status != 200 || calls[2].Upstream != 12*time.Millisecond || tr.Upstream() != 12*time.Millisecond {
		t.Errorf("trace %+v", calls)
	}
	if got := calls[0].RequestHeader.Get("Authorization"); got != "Bearer ****" {
		t.Errorf("trace shows %q", got)
	}
}

func TestInstanceAndDataElements(t *testing.T) {
	const id = "50001234/0b7e8c1a-3d2f-4a6b-9c0d-1e2f3a4b5c6d"
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/storage/api/v1/instances/" + id:
			w.WriteHeader(404)
			io.WriteString(w, "Unable to find instance 0b7e8c1a-3d2f-4a6b-9c0d-1e2f3a4b5c6d")
		case "/storage/api/v1/instances/" + id + "/dataelements":
			expect(t, r, r.URL.Path, "", "tok")
			w.Write(fixture(t, "dataelements.json"))
		default:
			t.Errorf("unexpected %s", r.URL.Path)
		}
	}, nil)
	_, err := c.Instance(t.Context(), "tok", id)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNotFound) || e.Text != "Unable to find instance 0b7e8c1a-3d2f-4a6b-9c0d-1e2f3a4b5c6d" {
		t.Errorf("err = %v", err)
	}
	des, err := c.DataElements(t.Context(), "tok", id)
	if err != nil || len(des) != 1 || des[0].DataType != "model" || des[0].UserDefinedMetadata[0].Key != "k" {
		t.Errorf("data elements %+v, %v", des, err)
	}
	for _, bad := range []string{"", "abc", "1/../../x", "x/0b7e", "1/0b7e?x", "1/0b7e/data"} {
		if _, err := c.Instance(t.Context(), "tok", bad); err == nil || errors.As(err, &e) {
			t.Errorf("instance id %q: err = %v", bad, err)
		}
	}
}

func TestDataStreams(t *testing.T) {
	part1 := bytes.Repeat([]byte("<a/>"), 1024)
	part2 := []byte("<end/>")
	proceed := make(chan struct{})
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		expect(t, r, "/storage/api/v1/instances/50001234/0b7e8c1a/data/9a8b7c6d", "", "tok")
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Disposition", `attachment; filename=skjema.xml; filename*=UTF-8''..%2Fskjema%20%C3%A6.xml`)
		w.Write(part1)
		http.NewResponseController(w).Flush()
		// The rest is sent only after the client has read part1, so a client
		// that buffered the whole body would never return.
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		w.Write(part2)
	}, nil)
	var tr Trace
	d, err := c.Data(WithTrace(t.Context(), &tr), "tok", "50001234/0b7e8c1a", "9a8b7c6d")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Body.Close()
	if d.ContentType != "application/xml" || d.Filename != "skjema æ.xml" || d.ContentLength != -1 {
		t.Errorf("download %+v", d)
	}
	got := make([]byte, len(part1))
	if _, err := io.ReadFull(d.Body, got); err != nil || !bytes.Equal(got, part1) {
		t.Fatalf("part 1: %v", err)
	}
	close(proceed)
	rest, err := io.ReadAll(d.Body)
	if err != nil || !bytes.Equal(rest, part2) {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if calls := tr.Calls(); len(calls) != 1 || calls[0].Status != 200 {
		t.Errorf("trace %+v", calls)
	}
}

func TestDataErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
	}{
		{"not found", 404, "Unable to read data element from blob storage for 9a8b7c6d", ErrNotFound},
		{"forbidden", 403, "", ErrForbidden},
		{"bad request", 400, "", ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}, nil)
			_, err := c.Data(t.Context(), "tok", "1/ab", "9a8b7c6d")
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.body) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestDataTimeoutBeforeHeaders(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}, func(cfg *Config) { cfg.Timeout = 20 * time.Millisecond; cfg.Retries = -1 })
	_, err := c.Data(t.Context(), "tok", "1/ab", "cd")
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("err = %v", err)
	}
}

func TestGetTimeout(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}, func(cfg *Config) { cfg.Timeout = 20 * time.Millisecond })
	_, err := c.Exchange(t.Context(), "tok", false)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestDispositionFilename(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"attachment; filename=skjema.xml", "skjema.xml"},
		{`attachment; filename="kvittering.pdf"`, "kvittering.pdf"},
		{`attachment; filename=a.pdf; filename*=UTF-8''%C3%A6%C3%B8%C3%A5.pdf`, "æøå.pdf"},
		{`attachment; filename="../../etc/passwd"`, "passwd"},
		{`attachment; filename="C:\temp\x.txt"`, "x.txt"},
		{"attachment; filename=Kvittering på innsending.pdf", "Kvittering på innsending.pdf"},
		{`attachment; filename=".."`, ""},
		{"inline", ""},
	}
	for _, tt := range tests {
		if got := DispositionFilename(tt.in); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzDispositionFilename(f *testing.F) {
	f.Add("attachment; filename=skjema.xml")
	f.Add(`attachment; filename*=UTF-8''%C3%A6.pdf`)
	f.Add(`attachment; filename="a\"b/../c"`)
	f.Fuzz(func(t *testing.T, h string) {
		name := DispositionFilename(h)
		if strings.ContainsAny(name, "/\\\x00\"") || name == ".." {
			t.Errorf("unsafe name %q from %q", name, h)
		}
	})
}

func TestParseErrorShapes(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantProblem bool
		wantText    string
	}{
		{"problem", string(fixture(t, "problem_401.json")), true, ""},
		{"json but not a problem", `{"message":"x"}`, false, `{"message":"x"}`},
		{"problem with odd types", `{"title":5,"status":"401","detail":["x"]}`, true, ""},
		{"text", "Org or AppId must be defined.", false, "Org or AppId must be defined."},
		{"binary", "\x00\x01ok", false, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ParseError("op", 400, []byte(tt.body))
			if (e.Problem != nil) != tt.wantProblem || e.Text != tt.wantText {
				t.Errorf("got %+v (problem %+v)", e, e.Problem)
			}
		})
	}
}

func FuzzParseError(f *testing.F) {
	for _, n := range []string{"problem_401.json", "problem_403_scope.json", "problem_410.json", "storage_400.txt"} {
		f.Add(400, fixture(f, n))
	}
	f.Add(401, []byte(`{"status":1e999}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := ParseError("op", status, body)
		_ = e.Error()
		if len(e.Text) > 310 {
			t.Errorf("text %d bytes", len(e.Text))
		}
	})
}

func TestServerTimingParse(t *testing.T) {
	got, ok := ServerTiming(http.Header{"Server-Timing": {`total;dur=3.5, cache;desc="hit, warm"`, `db;dur=1.5`}})
	if !ok || got != 5*time.Millisecond {
		t.Errorf("got %v %v", got, ok)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "platform.tt02.altinn.no", "https://x/?a=1", "file:///x"} {
		if _, err := New(Config{PlatformURL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
