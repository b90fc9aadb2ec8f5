package platform

import (
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseDateExprs(t *testing.T) {
	tests := []struct {
		value   string
		ok      bool
		wantUTC string // for timestamp fields
	}{
		{"gt:2025-01-02T03:04:05Z", true, "2025-01-02T03:04:05Z"},
		{"gte:2025-01-02T03:04:05.1234567+02:00", true, "2025-01-02T01:04:05.1234567Z"},
		{"lt:2025-01-02", true, "2025-01-02T00:00:00Z"},
		{"lte:2019-02", true, "2019-02-01T00:00:00Z"},
		{"eq:2025-01-02T03:04", true, "2025-01-02T03:04:00Z"},
		{"2025-01-02", false, ""},
		{"gt:", false, ""},
		{"gt:tomorrow", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		conds, err := parseDateExprs("created", []string{tt.value}, false)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v", tt.value, err)
			continue
		}
		if tt.ok && formatTime(fromTicks(conds[0].ticks)) != tt.wantUTC {
			t.Errorf("%q: got %s, want %s", tt.value, formatTime(fromTicks(conds[0].ticks)), tt.wantUTC)
		}
	}
	// String-compared fields take any value after the operator.
	if conds, err := parseDateExprs("dueBefore", []string{"gt:", "lt:2019-03"}, true); err != nil || len(conds) != 2 {
		t.Errorf("dueBefore: %v %v", conds, err)
	}
}

func TestContinuationToken(t *testing.T) {
	tests := []struct {
		bound string
		want  *keyset
		err   string
	}{
		{"", nil, ""},
		{"no-separator", nil, ""},
		{"638912345678901234%3b4711", &keyset{638912345678901234, 4711}, ""},
		{"638912345678901234;4711", &keyset{638912345678901234, 4711}, ""},
		{"0;-1", &keyset{0, -1}, ""},
		{"1;2;3", &keyset{1, 2}, ""},
		{"x;1", nil, "The input string 'x' was not in a correct format."},
		{"1;99999999999999999999", nil, "Value was either too large or too small for an Int64."},
		{"-5;1", nil, "Ticks must be between DateTime.MinValue.Ticks and DateTime.MaxValue.Ticks. (Parameter 'ticks')"},
	}
	for _, tt := range tests {
		got, err := parseContinuationToken(tt.bound)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: err = %v, want %s", tt.bound, err, tt.err)
			}
			continue
		}
		if err != nil || (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("%q: got %+v, %v", tt.bound, got, err)
		}
	}
	if got := toTicks(time.Date(2025, 9, 10, 10, 0, 0, 0, time.UTC)); got != 638930952000000000 {
		t.Errorf("ticks = %d", got)
	}
}

// FuzzContinuationToken checks that any token Storage emits survives the trip through a next
// link (encoded twice) and back through the parser, and that arbitrary input never panics.
func FuzzContinuationToken(f *testing.F) {
	f.Add(int64(638912345678901234), int64(4711), "abc%3b1")
	f.Add(int64(0), int64(-1), ";")
	f.Add(int64(maxTicks), int64(math.MaxInt64), "%%3b%")
	f.Fuzz(func(t *testing.T, ticks, id int64, junk string) {
		_, _ = parseContinuationToken(junk)
		if ticks < 0 || ticks > maxTicks {
			return
		}
		want := keyset{ticks, id}
		link := "continuationToken=" + urlEncoderDefault(httpUtilityURLEncode(formatContinuationToken(want)))
		got, err := parseContinuationToken(parseQuery(link).str("continuationToken"))
		if err != nil || got == nil || *got != want {
			t.Fatalf("%s: got %+v, %v", link, got, err)
		}
	})
}

// FuzzDateExpressions feeds arbitrary date expressions to both kinds of date parameter.
func FuzzDateExpressions(f *testing.F) {
	for _, s := range []string{"gt:2025-01-01", "lte:2025-01-01T10:00:00+01:00", "eq:", ":", "gt:2025-13-45", "foo:bar:baz"} {
		f.Add(s, "lt:2026-01-01")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, asString := range []bool{false, true} {
			conds, err := parseDateExprs("created", []string{a, b}, asString)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "Invalid date expression: ") {
					t.Fatalf("error %q", err)
				}
				continue
			}
			for _, c := range conds {
				if !dateOps[c.op] {
					t.Fatalf("operator %q let through", c.op)
				}
			}
		}
	})
}

// FuzzInstanceQuery binds arbitrary query strings (size, booleans, dates, everything) and
// builds their SQL: no panic, a placeholder per argument, and rebuilt links that parse back to
// the same parameters.
func FuzzInstanceQuery(f *testing.F) {
	for _, s := range []string{
		"org=ttd&size=10", "appId=ttd/app&size=-1&order=asc", "size=99999999999", "size=%20%2B5%20",
		"process.isComplete=TRUE&status.isArchived=0", "created=gt:2025-01-01&created=gt:2025-01-02",
		"continuationToken=1%253b2&excludeConfirmedBy=ttd&excludeConfirmedBy=skd", "a&&=b&%zz=%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q := parseQuery(raw)
		iq, errs := bindInstanceQuery(q)
		if errs == nil && iq.size != nil && (*iq.size > math.MaxInt32 || *iq.size < math.MinInt32) {
			t.Fatalf("size %d out of int32", *iq.size)
		}
		if errs == nil {
			if s, err := buildInstanceSQL("tt02", iq); err == nil {
				if n := strings.Count(strings.Join(s.where, " "), "?"); n != len(s.args) {
					t.Fatalf("%d placeholders, %d args", n, len(s.args))
				}
			}
		}
		p := &Platform{cfg: Config{BaseURL: testBaseURL}}
		r := httptest.NewRequest("GET", "/storage/api/v1/instances", nil)
		r.URL.RawQuery = raw
		link := p.requestLink(r, "1%3b2")
		_, rebuilt, _ := strings.Cut(link, "?")
		back := parseQuery(rebuilt)
		if got := back.all("continuationToken"); len(got) == 0 || got[len(got)-1] != "1%3b2" {
			t.Fatalf("token lost in %s", link)
		}
		for _, pair := range q {
			if pair.key == "continuationToken" {
				continue
			}
			found := false
			for _, v := range back.all(pair.key) {
				found = found || v == pair.value
			}
			if !found {
				t.Fatalf("%q=%q lost in %s", pair.key, pair.value, link)
			}
		}
	})
}
