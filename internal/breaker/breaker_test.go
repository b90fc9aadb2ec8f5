package breaker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"portal/internal/breaker"
)

// upstream answers with the status in status, counting the calls that reach it.
func upstream(t *testing.T, status *atomic.Int32, calls *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, b *breaker.Breaker, ctx context.Context, url string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := b.Do(http.DefaultClient, req)
	if resp != nil {
		resp.Body.Close()
	}
	return resp, err
}

func TestOpensOnServerErrorsNotOnRefusals(t *testing.T) {
	var status, calls atomic.Int32
	srv := upstream(t, &status, &calls)
	var changes []string
	b := breaker.New("TT02 self-service API", breaker.Settings{Failures: 3, CoolDown: 200 * time.Millisecond,
		OnStateChange: func(_, from, to string) { changes = append(changes, from+">"+to) }})

	status.Store(http.StatusBadRequest)
	for range 5 {
		if resp, err := get(t, b, t.Context(), srv.URL); err != nil || resp.StatusCode != 400 {
			t.Fatalf("4xx: %v %v", resp, err)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("4xx opened the breaker")
	}
	status.Store(http.StatusServiceUnavailable)
	for range 3 {
		if resp, err := get(t, b, t.Context(), srv.URL); err != nil || resp.StatusCode != 503 {
			t.Fatalf("5xx is answered as such: %v %v", resp, err)
		}
	}
	before := calls.Load()
	_, err := get(t, b, t.Context(), srv.URL)
	var oe *breaker.OpenError
	if !errors.As(err, &oe) || !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("open breaker: got %v", err)
	}
	if calls.Load() != before {
		t.Fatalf("an open breaker let a call through")
	}
	want := "TT02 self-service API is failing; the portal stopped calling it for 0.2 s after 3 failures in a row (the first: answered 503)"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if oe.RetryIn <= 0 || oe.RetryIn > 200*time.Millisecond {
		t.Errorf("retry in %v", oe.RetryIn)
	}

	// After the cool-down one probe goes through; success closes the breaker.
	status.Store(http.StatusOK)
	deadline := time.Now().Add(5 * time.Second)
	for b.State() == "open" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if resp, err := get(t, b, t.Context(), srv.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("probe: %v %v", resp, err)
	}
	if b.State() != "closed" {
		t.Fatalf("state %s after a good probe", b.State())
	}
	if got := strings.Join(changes, ","); got != "closed>open,open>half-open,half-open>closed" {
		t.Errorf("state changes %s", got)
	}
}

func TestTimeoutsCountCancellationsDoNot(t *testing.T) {
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })
	b := breaker.New("TT02 Maskinporten", breaker.Settings{Failures: 2})

	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(20*time.Millisecond, cancel)
		if _, err := get(t, b, ctx, srv.URL); err == nil {
			t.Fatal("cancelled call succeeded")
		}
	}
	if b.State() != "closed" {
		t.Fatalf("a caller giving up opened the breaker")
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		_, err := get(t, b, ctx, srv.URL)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("timeout: %v", err)
		}
	}
	if _, err := get(t, b, t.Context(), srv.URL); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("after two timeouts: %v", err)
	}
}

// TestOpenErrorNamesTheFirstFailure: an open breaker says what failed first, in words without
// the upstream's address, so the person sees the cause and not only that calls stopped.
func TestOpenErrorNamesTheFirstFailure(t *testing.T) {
	t.Parallel()
	var status, calls atomic.Int32
	status.Store(http.StatusBadGateway)
	srv := upstream(t, &status, &calls)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name, url, want string
	}{
		{"server error", srv.URL, "(the first: answered 502)"},
		{"nobody listening", closedURL, "(the first: connection refused)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := breaker.New("PROD Maskinporten", breaker.Settings{Failures: 2, CoolDown: time.Minute})
			for range 2 {
				get(t, b, t.Context(), tt.url)
			}
			_, err := get(t, b, t.Context(), tt.url)
			var oe *breaker.OpenError
			if !errors.As(err, &oe) {
				t.Fatalf("not open: %v", err)
			}
			if !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("message %q, want it to end with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("the address leaks: %q", err)
			}
		})
	}
}
