package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mailpit is a real SMTP server (github.com/axllent/mailpit, a tool of this module) started
// for one test; its HTTP API reads back what it received.
type mailpit struct {
	smtpPort int
	api      string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startMailpit(t *testing.T) *mailpit {
	t.Helper()
	out, err := exec.Command("go", "tool", "-n", "mailpit").Output()
	if err != nil {
		t.Fatalf("build mailpit (go tool -n mailpit): %v", err)
	}
	bin := strings.TrimSpace(string(out))
	smtpPort, httpPort := freePort(t), freePort(t)
	cmd := exec.Command(bin, "--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--database", filepath.Join(t.TempDir(), "mailpit.db"), "--smtp-disable-rdns", "--quiet")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	m := &mailpit{smtpPort: smtpPort, api: fmt.Sprintf("http://127.0.0.1:%d", httpPort)}
	// Wait until both listeners answer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", smtpPort))
		if err == nil {
			c.Close()
			if resp, err := http.Get(m.api + "/api/v1/messages"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type mpAddress struct{ Address string }

type mpMessage struct {
	ID      string
	From    mpAddress
	To      []mpAddress
	Subject string
	Text    string
}

func (m *mailpit) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(m.api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// messages returns every delivered message with its text body, oldest first.
func (m *mailpit) messages(t *testing.T) []mpMessage {
	t.Helper()
	var list struct{ Messages []mpMessage }
	m.get(t, "/api/v1/messages", &list)
	slices.Reverse(list.Messages) // the API lists newest first
	for i, msg := range list.Messages {
		var full mpMessage
		m.get(t, "/api/v1/message/"+msg.ID, &full)
		list.Messages[i].Text = full.Text
	}
	return list.Messages
}

// syncBuffer is a log sink safe for the worker and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const token = "tok-3f9a1c0e7b2d4a6f8e1c3b5d7a9f0e2c"

func TestSMTPDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mailpit")
	}
	mp := startMailpit(t)
	var logs syncBuffer
	n := New(Config{Log: slog.New(slog.NewJSONHandler(&logs, nil)),
		SMTP: SMTP{Host: "127.0.0.1", Port: mp.smtpPort, From: "Portal <portal@example.no>", TLS: TLSNone}})
	expires := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	if !n.Invitation(Invitation{To: "kari@example.no", Team: "Skatt", Role: "member", Inviter: "Ola Admin",
		Link: "https://portal.example.no/invite?token=" + token, Expires: expires}) {
		t.Fatal("invitation not queued")
	}
	if !n.PasswordLink(PasswordLink{To: "per@example.no", Name: "Per", Link: "https://portal.example.no/password/set?token=" + token}) {
		t.Fatal("password link not queued")
	}
	if !n.KeyExpiry(KeyExpiry{To: []string{"o1@example.no", "o2@example.no"}, Env: "tt02", Integration: "Skatteoppslag", ClientID: "c-1",
		Kid: "k-1", Expires: expires, DaysLeft: 6, Threshold: 7}) {
		t.Fatal("key expiry not queued")
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	got := mp.messages(t)
	if len(got) != 4 {
		t.Fatalf("%d messages delivered, want 4: %+v\nlog: %s", len(got), got, logs.String())
	}
	want := []struct{ to, subject, body string }{
		{"kari@example.no", "You are invited to the team Skatt", "https://portal.example.no/invite?token=" + token},
		{"per@example.no", "Choose your password for the integration portal", "https://portal.example.no/password/set?token=" + token},
		{"o1@example.no", "[tt02] A key of Skatteoppslag expires in 6 days", "The key k-1 of the integration Skatteoppslag (client c-1) in tt02"},
		{"o2@example.no", "[tt02] A key of Skatteoppslag expires in 6 days", "The key k-1"},
	}
	for i, w := range want {
		m := got[i]
		if len(m.To) != 1 || m.To[0].Address != w.to || m.From.Address != "portal@example.no" || m.Subject != w.subject {
			t.Errorf("message %d: from %s to %v %q, want to %s %q", i, m.From.Address, m.To, m.Subject, w.to, w.subject)
		}
		if !strings.Contains(m.Text, w.body) {
			t.Errorf("message %d body lacks %q:\n%s", i, w.body, m.Text)
		}
	}
	if !strings.Contains(got[0].Text, "Ola Admin invites you to the team Skatt") || !strings.Contains(got[0].Text, "as member") {
		t.Errorf("invitation body:\n%s", got[0].Text)
	}

	log := logs.String()
	if strings.Contains(log, token) || strings.Contains(log, "token=") {
		t.Errorf("a link reached the log:\n%s", log)
	}
	for _, line := range []string{`"msg":"invitation sent","to":["kari@example.no"]`, `"msg":"set-password link sent","to":["per@example.no"]`,
		`"msg":"key expiry warning sent","to":["o1@example.no","o2@example.no"]`} {
		if !strings.Contains(log, line) {
			t.Errorf("log lacks %s:\n%s", line, log)
		}
	}
}

func TestWebhookSignedAndRetriedOnce(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	var mu sync.Mutex
	var bodies [][]byte
	fail := 1 // answer the first request with a 503
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/hook" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		if !Verify(secret, body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, body)
		if fail > 0 {
			fail--
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	var logs syncBuffer
	n := New(Config{Log: slog.New(slog.NewJSONHandler(&logs, nil)), RetryWait: time.Millisecond,
		Webhook: Webhook{URL: srv.URL + "/hook", Secret: secret}})
	n.Invitation(Invitation{To: "kari@example.no", Team: "Skatt", Role: "owner", Inviter: "Ola", Link: "https://p/invite?token=" + token,
		Expires: time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)})
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || !bytes.Equal(bodies[0], bodies[1]) {
		t.Fatalf("%d requests, want the same body twice (one retry after the 503)", len(bodies))
	}
	var got struct {
		Type string
		To   []string
		Data map[string]any
	}
	if err := json.Unmarshal(bodies[1], &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "invitation" || !slices.Equal(got.To, []string{"kari@example.no"}) || got.Data["team"] != "Skatt" ||
		got.Data["role"] != "owner" || got.Data["link"] != "https://p/invite?token="+token || got.Data["expires_at"] != "2026-03-08T12:00:00Z" {
		t.Errorf("body %s", bodies[1])
	}
	if strings.Contains(logs.String(), token) || !strings.Contains(logs.String(), `"msg":"invitation sent"`) {
		t.Errorf("log:\n%s", logs.String())
	}
	if Verify([]byte(strings.Repeat("x", 32)), bodies[0], Sign(secret, bodies[0])) {
		t.Error("a signature verified under another secret")
	}
}

func TestWebhookClientErrorNotRetriedAndURLNotLogged(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	var logs syncBuffer
	n := New(Config{Log: slog.New(slog.NewJSONHandler(&logs, nil)), RetryWait: time.Millisecond,
		Webhook: Webhook{URL: srv.URL + "/hooks/secret-path-123", Secret: []byte(strings.Repeat("s", 32))}})
	n.PasswordLink(PasswordLink{To: "per@example.no", Link: "https://p/password/set?token=" + token})
	// A second notifier whose server is gone: a network error, retried once, URL not in the log.
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL + "/hooks/secret-path-456"
	gone.Close()
	n2 := New(Config{Log: slog.New(slog.NewJSONHandler(&logs, nil)), RetryWait: time.Millisecond,
		Webhook: Webhook{URL: goneURL, Secret: []byte(strings.Repeat("s", 32))}})
	n2.PasswordLink(PasswordLink{To: "per@example.no", Link: "https://p/password/set?token=" + token})
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := n2.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls after a 400, want 1", calls.Load())
	}
	log := logs.String()
	if strings.Count(log, `"msg":"notification not sent"`) != 2 || strings.Contains(log, "secret-path") || strings.Contains(log, token) {
		t.Errorf("log:\n%s", log)
	}
}

func TestFullQueueDrops(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	var logs syncBuffer
	n := New(Config{Log: slog.New(slog.NewJSONHandler(&logs, nil)), QueueSize: 1,
		Webhook: Webhook{URL: srv.URL, Secret: []byte(strings.Repeat("s", 32))}})
	queued := 0
	for i := range 5 {
		if n.PasswordLink(PasswordLink{To: fmt.Sprintf("u%d@example.no", i), Link: "https://p/?token=" + token}) {
			queued++
		}
	}
	close(release)
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// One message in the worker at most, one in the queue: at least three dropped.
	if queued > 2 || queued < 1 {
		t.Errorf("%d queued, want 1 or 2", queued)
	}
	if got := strings.Count(logs.String(), "notification dropped: the queue is full"); got != 5-queued {
		t.Errorf("%d drop warnings, want %d:\n%s", got, 5-queued, logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Error("a link reached the log")
	}
	if n.PasswordLink(PasswordLink{To: "late@example.no", Link: "x"}) {
		t.Error("queued after Close")
	}
}

func TestNoChannelSendsNothing(t *testing.T) {
	var n *Notifier
	if n.Enabled() || n.Invitation(Invitation{To: "a@b.no"}) || n.Close(t.Context()) != nil {
		t.Error("a nil notifier did something")
	}
	n = New(Config{})
	if n.Enabled() || n.PasswordLink(PasswordLink{To: "a@b.no"}) || n.Close(t.Context()) != nil {
		t.Error("a notifier without a channel did something")
	}
}
