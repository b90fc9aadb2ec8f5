package altinn

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// Only plain paths under the configured platform base are reached; every attempt to name
// another host, climb out of the base path or smuggle a host in is refused before any call.
func TestResolvePathRefusesEscapes(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }, nil)
	c.base = "https://platform.tt02.altinn.no/base"
	refused := []string{
		"",
		"   ",
		"events/api/v1/app/ttd/x",
		"//evil.example/x",
		"///evil.example/x",
		"/\\evil.example/x",
		"\\\\evil.example\\x",
		"http://evil.example/x",
		"https://platform.tt02.altinn.no/base/x",
		"https:evil.example/x",
		"@evil.example/x",
		"/@evil.example",
		"/x@evil.example",
		"/%40evil.example",
		"/..",
		"/../x",
		"/a/../../x",
		"/a/./b",
		"/a//b",
		"/..%2f..%2fx",
		"/%2e%2e/x",
		"/%2E%2E/x",
		"/.%2e/x",
		"/a%2fb",
		"/a%5cb",
		"/a%00b",
		"/a%zz",
		"/a?b=%zz",
		"/x#frag",
		"/x y",
		"/x\ty",
		"/x\r\nHost: evil.example",
		"/ø",
		"/" + strings.Repeat("a", 3000),
	}
	for _, p := range refused {
		t.Run(p, func(t *testing.T) {
			u, err := c.ResolvePath(p)
			var pe *PathError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("%q resolved to %q (%v)", p, u, err)
			}
			if _, err := c.Get(t.Context(), "tok", p); !errors.As(err, &pe) {
				t.Fatalf("Get %q: %v", p, err)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d calls went out for refused paths", n)
	}
	allowed := map[string]string{
		"/events/api/v1/app/ttd/skjema?after=0&size=5": "https://platform.tt02.altinn.no/base/events/api/v1/app/ttd/skjema?after=0&size=5",
		"  /storage/api/v1/instances?org=ttd  ":        "https://platform.tt02.altinn.no/base/storage/api/v1/instances?org=ttd",
		"/x/":                                          "https://platform.tt02.altinn.no/base/x/",
		"/a%20b?q=%2e%2e%2F":                           "https://platform.tt02.altinn.no/base/a%20b?q=%2e%2e%2F",
		"/events/api/v1/app/ttd/a?from=2025-01-01T00:00:00Z": "https://platform.tt02.altinn.no/base/events/api/v1/app/ttd/a?from=2025-01-01T00:00:00Z",
	}
	for in, want := range allowed {
		if got, err := c.ResolvePath(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}

// Get returns any status as an answer, with the body cut at MaxPlatformBody.
func TestGetReturnsEveryStatusAndCapsTheBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		status    int
		size      int
		truncated bool
	}{
		{"ok", http.StatusOK, 100, false},
		{"large", http.StatusOK, MaxPlatformBody + 10, true},
		{"forbidden", http.StatusForbidden, 0, false},
		{"bad request", http.StatusBadRequest, 50, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var auth string
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				auth = r.Header.Get("Authorization")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(strings.Repeat("a", tc.size)))
			}, nil)
			r, err := c.Get(t.Context(), "the-token", "/events/api/v1/app/ttd/x?after=0")
			if err != nil {
				t.Fatal(err)
			}
			if auth != "Bearer the-token" || r.Status != tc.status || r.Truncated != tc.truncated || len(r.Body) != min(tc.size, MaxPlatformBody) {
				t.Fatalf("%q %d %v %d", auth, r.Status, r.Truncated, len(r.Body))
			}
		})
	}
}
