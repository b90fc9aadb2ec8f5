package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runOnce(t *testing.T, args []string, env map[string]string, stdin string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := run(t.Context(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func TestConfigErrorsAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"addr": "127.0.0.1:1", "no_such_key": 1}`), 0o600)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(`{"addr": `), 0o600)
	sync := filepath.Join(dir, "sync.json")
	os.WriteFile(sync, []byte(`{"sync_interval": "1s", "sync_concurrency": 100}`), 0o600)
	privileged := filepath.Join(dir, "privileged.json")
	os.WriteFile(privileged, []byte(`{"environments": {"tt02": {"privileged_scopes": ["altinn:admin*", "*", "a b"]}}}`), 0o600)
	realEnv := filepath.Join(dir, "real.json")
	os.WriteFile(realEnv, []byte(`{"environments": {"prod": {"maskinporten_issuer": "https://maskinporten.no/"}}}`), 0o600)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // every problem is reported at once
	}{
		{"bad addr and level", []string{"serve", "--addr", "nonsense", "--log-level", "loud"}, nil, []string{"addr \"nonsense\"", "log-level \"loud\""}},
		{"env var", []string{"serve"}, map[string]string{"PORTAL_ADDR": "x", "PORTAL_SESSION_IDLE_TIMEOUT": "soon"}, []string{"addr \"x\"", "PORTAL_SESSION_IDLE_TIMEOUT"}},
		{"tls half", []string{"serve", "--tls-cert", "c.pem"}, nil, []string{"tls-cert and tls-key go together"}},
		{"unknown config key", []string{"serve", "--config", bad}, nil, []string{"no_such_key"}},
		{"broken config", []string{"serve", "--config", broken}, nil, []string{"broken.json"}},
		{"missing config", []string{"serve", "--config", filepath.Join(dir, "none.json")}, nil, []string{"cannot be opened"}},
		{"real env half configured", []string{"serve", "--config", realEnv}, nil, []string{"environments.prod.selfservice_url", "environments.prod.admin_file"}},
		{"sync too eager", []string{"serve", "--config", sync}, nil, []string{"sync_interval must be at least 10s", "sync_concurrency 100"}},
		{"privileged scopes", []string{"serve", "--config", privileged}, nil, []string{`privileged_scopes: "*" is neither`, `"a b" is neither`}},
		{"short session key", []string{"serve"}, map[string]string{"PORTAL_SESSION_KEY": "short"}, []string{"at least 32"}},
		{"missing key file", []string{"serve"}, map[string]string{"PORTAL_SESSION_KEY_FILE": filepath.Join(dir, "nokey")}, []string{"PORTAL_SESSION_KEY_FILE"}},
		{"unknown command", []string{"frobnicate"}, nil, []string{"unknown command"}},
		{"unknown flag", []string{"serve", "--nope"}, nil, []string{"nope"}},
		{"user add without email", []string{"user", "add", "--data", dir}, nil, []string{"--email"}},
		{"user add short password", []string{"user", "add", "--data", dir, "--email", "a@example.no", "--name", "A"}, nil, []string{"at least 12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runOnce(t, tt.args, tt.env, "short\n")
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error (exit status 2)", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "short\n") {
				t.Error("a secret was echoed")
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, _, err := runOnce(t, []string{"version"}, nil, "")
	if err != nil || !strings.HasPrefix(out, "portal ") {
		t.Fatalf("version: %q %v", out, err)
	}
	out, _, err = runOnce(t, []string{"help"}, nil, "")
	if err != nil || !strings.Contains(out, "user add") {
		t.Fatalf("help: %q %v", out, err)
	}
}

func TestUserAdd(t *testing.T) {
	dir := t.TempDir()
	args := []string{"user", "add", "--data", dir, "--email", "ada@example.no", "--name", "Ada", "--role", "admin"}
	out, _, err := runOnce(t, args, nil, "correct horse battery\n")
	if err != nil || !strings.Contains(out, "added ada@example.no") {
		t.Fatalf("user add: %q %v", out, err)
	}
	_, _, err = runOnce(t, args, nil, "correct horse battery\n")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("duplicate user: %v", err)
	}
	out, _, err = runOnce(t, []string{"migrate", "--data", dir}, nil, "")
	if err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate: %q %v", out, err)
	}
}

// TestServe starts the real command with its simulators and checks it serves, writes the
// simulators' admin credentials privately, logs a working setup link, and stops cleanly.
func TestServe(t *testing.T) {
	p := startBrowserPortal(t, nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/login": 200, "/nope": 404} {
		resp, err := http.Get(p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if p.SetupLink == "" {
		t.Fatal("no setup link logged on first start")
	}
	resp, err := http.Get(p.SetupLink)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("setup link: %d", resp.StatusCode)
	}
	if strings.Contains(p.logs.String(), "private_key") {
		t.Error("key material in the log")
	}
}

// TestServeTLS serves HTTPS directly and marks cookies Secure.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	keyDER, err := x509.MarshalPKCS8PrivateKey(ts.TLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	ts.Close()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	logs := &browserLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--sim-addr", "127.0.0.1:0",
			"--tls-cert", certFile, "--tls-key", keyFile}, func(string) string { return "" }, strings.NewReader(""), io.Discard, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(t.Context(), browserStartTimeout)
	defer wcancel()
	u, err := logs.waitFor(wctx, nil, browserListeningPattern)
	if err != nil {
		t.Fatalf("not listening: %v\n%s", err, logs)
	}
	if !strings.HasPrefix(u, "https://") {
		t.Fatalf("url %q", u)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(strings.Replace(strings.TrimRight(u, "/"), "127.0.0.1", "127.0.0.1", 1) + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s not Secure over TLS", c.Name)
		}
	}
}
