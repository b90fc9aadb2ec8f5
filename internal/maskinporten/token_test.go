package maskinporten

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	body := fixture(t, "token_success.json")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/token" {
			t.Errorf("got %s %s", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("content type %q", ct)
		}
		if r.Header.Get("Authorization") != "" {
			t.Error("token request carries client authentication")
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		if len(r.PostForm) != 2 || r.PostForm.Get("grant_type") != GrantType || r.PostForm.Get("assertion") != "the.grant.jws" {
			t.Errorf("form %v", r.PostForm)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server-Timing", `sign;dur=1.5, db;desc="a, b";dur=2.5`)
		w.Write(body)
	})
	c := newTestClient(t, srv, nil)
	var tr Trace
	got, err := c.Token(WithTrace(t.Context(), &tr), "the.grant.jws")
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenType != "Bearer" || got.ExpiresIn != 119 || got.Scope != "altinn:broker.read" || !strings.HasPrefix(got.AccessToken, "eyJ") {
		t.Errorf("response %+v", got)
	}
	if string(got.Raw) != string(body) {
		t.Error("raw body not kept")
	}
	calls := tr.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls traced", len(calls))
	}
	if c := calls[0]; c.Op != "token" || c.Status != 200 || !c.HasUpstream || c.Upstream != 4*time.Millisecond {
		t.Errorf("trace %+v", c)
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		fixture       string
		status        int
		code          string
		mp            string
		trace         string
		correlation   string
		message       string
		errorContains string
	}{
		{"token_error_mp121.json", 400, "invalid_grant", "MP-121", "356666143081bbec11d293753e9702ca", "",
			"Invalid assertion. Client authentication failed. Expired key.", "[MP-121]"},
		{"token_error_mp200.json", 400, "invalid_scope", "MP-200", "bd1d0e3bfb1c7a7bd99fd447714a316c", "",
			"Token request contains invalid scopes for client, altinn:serviceowners/read", "invalid_scope"},
		{"token_error_forbidden.json", 403, "forbidden", "", "", "2d4fa134-eacb-eae8-63f4-eeb2ea408979",
			"Consumer has not been granted access to the scope folkeregister:deling/offentligutenhjemmel.", "correlation id 2d4fa134"},
		{"token_error_unknown_kid.json", 400, "invalid_grant", "", "", "6f1c0a52-3b1e-4c55-9f0e-0d7f3a9c2b11",
			"Invalid assertion. Client authentication failed. Unknown key identifier (kid) for client.", "Unknown key identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, tt.fixture)
			var hits atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write(body)
			})
			_, err := newTestClient(t, srv, nil).Token(t.Context(), "secret-grant")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Status != tt.status || e.Code != tt.code || e.MPCode != tt.mp || e.TraceID != tt.trace || e.CorrelationID != tt.correlation {
				t.Errorf("got %+v", e)
			}
			if e.Message() != tt.message {
				t.Errorf("message %q", e.Message())
			}
			if !strings.Contains(err.Error(), tt.errorContains) || strings.Contains(err.Error(), "secret-grant") {
				t.Errorf("Error() = %q", err.Error())
			}
			if hits.Load() != 1 {
				t.Errorf("token request sent %d times", hits.Load())
			}
		})
	}
}

func TestTokenNotRetriedOn5xx(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html>bad gateway</html>"))
	})
	_, err := newTestClient(t, srv, nil).Token(t.Context(), "g")
	var e *Error
	if !errors.As(err, &e) || e.Status != 502 || e.Body != "<html>bad gateway</html>" {
		t.Fatalf("err = %#v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("sent %d times", hits.Load())
	}
}

func TestParseErrorOddBodies(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Error
	}{
		{"empty", "", Error{Status: 400}},
		{"wrong types", `{"error":5,"error_description":"x (trace_id: abc)","error_uri":["u"]}`, Error{Status: 400, Description: "x (trace_id: abc)", TraceID: "abc"}},
		{"uri without code", `{"error":"invalid_grant","error_uri":"https://maskinporten.no/errors/"}`, Error{Status: 400, Code: "invalid_grant", URI: "https://maskinporten.no/errors/"}},
		{"lower-case code", `{"error":"invalid_grant","error_uri":"https://maskinporten.no/errors/mp-012"}`, Error{Status: 400, Code: "invalid_grant", URI: "https://maskinporten.no/errors/mp-012", MPCode: "MP-012"}},
		{"trace id not hex", `{"error":"e","error_description":"d (trace_id: <script>)"}`, Error{Status: 400, Code: "e", Description: "d (trace_id: <script>)"}},
		{"text", "Bad Request\n", Error{Status: 400, Body: "Bad Request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseError(400, []byte(tt.body)); *got != tt.want {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func FuzzParseError(f *testing.F) {
	for _, name := range []string{"token_error_mp121.json", "token_error_mp200.json", "token_error_forbidden.json", "token_error_unknown_kid.json"} {
		f.Add(400, fixture(f, name))
	}
	f.Add(502, []byte("<html>"))
	f.Add(400, []byte(`{"error_description":"(trace_id: (trace_id: )"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := ParseError(status, body)
		_ = e.Error()
		_ = e.Message()
		if e.MPCode != "" && !strings.HasPrefix(e.MPCode, "MP-") {
			t.Errorf("MP code %q", e.MPCode)
		}
		if len(e.Body) > 250 {
			t.Errorf("body snippet %d bytes", len(e.Body))
		}
	})
}

func TestServerTiming(t *testing.T) {
	tests := []struct {
		in   []string
		want time.Duration
		ok   bool
	}{
		{nil, 0, false},
		{[]string{"miss"}, 0, false},
		{[]string{"db;dur=53"}, 53 * time.Millisecond, true},
		{[]string{"db;dur=53, app;dur=47.2"}, 100200 * time.Microsecond, true},
		{[]string{"a;dur=1", "b;DUR=\"2\""}, 3 * time.Millisecond, true},
		{[]string{`x;desc="d;dur=9,";dur=1`}, time.Millisecond, true},
		{[]string{"a;dur=-1, b;dur=NaN, c;dur=1e20, d;dur=x"}, 0, false},
	}
	for _, tt := range tests {
		h := http.Header{"Server-Timing": tt.in}
		got, ok := ServerTiming(h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: got %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzServerTiming(f *testing.F) {
	f.Add(`db;dur=53, app;dur=47.2`)
	f.Add(`x;desc="a\"b,c";dur=1`)
	f.Fuzz(func(t *testing.T, v string) {
		if d, _ := ServerTiming(http.Header{"Server-Timing": {v}}); d < 0 {
			t.Errorf("negative %v", d)
		}
	})
}
