package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSimAddrLoopbackOnly: the simulators hand out tokens to anyone who reaches them, so a
// listen address off loopback is a configuration mistake unless it is explicitly allowed.
func TestSimAddrLoopbackOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		refused bool
	}{
		{"every interface", []string{"serve", "--sim-addr", "0.0.0.0:8081"}, nil, true},
		{"empty host", []string{"serve", "--sim-addr", ":8081"}, nil, true},
		{"every IPv6 interface", []string{"serve", "--sim-addr", "[::]:8081"}, nil, true},
		{"a public address", []string{"serve", "--sim-addr", "192.0.2.10:8081"}, nil, true},
		{"a host name", []string{"serve", "--sim-addr", "sim.example.no:8081"}, nil, true},
		{"from the environment", []string{"serve"}, map[string]string{"PORTAL_SIM_ADDR": "0.0.0.0:8081"}, true},
		{"allow-remote not a boolean", []string{"serve", "--sim-addr", "0.0.0.0:8081"}, map[string]string{"PORTAL_SIM_ALLOW_REMOTE": "sure"}, true},
		{"portal sim, every interface", []string{"sim", "--addr", "0.0.0.0:8081"}, nil, true},
		{"portal sim, empty host", []string{"sim", "--addr", ":8081"}, nil, true},
		{"loopback", []string{"serve", "--sim-addr", "127.0.0.1:8081"}, nil, false},
		{"IPv6 loopback", []string{"serve", "--sim-addr", "[::1]:8081"}, nil, false},
		{"localhost", []string{"serve", "--sim-addr", "localhost:8081"}, nil, false},
		{"explicitly allowed", []string{"serve", "--sim-addr", "0.0.0.0:8081"}, map[string]string{"PORTAL_SIM_ALLOW_REMOTE": "true"}, false},
		{"real environments need no simulators", []string{"serve", "--sim-addr", "0.0.0.0:8081", "--config", realEnvsConfig(t)}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.refused {
				// Refusals go through run, so the exit status is the one people see. The context
				// is already cancelled, so a listener that is not refused stops at once.
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				args := append(append([]string(nil), tt.args...), "--data", t.TempDir())
				err = run(ctx, args, func(k string) string { return tt.env[k] }, strings.NewReader(""), io.Discard, io.Discard)
			} else {
				_, err = commandConfig("serve", tt.args[1:], func(k string) string { return tt.env[k] }, io.Discard, nil)
			}
			if !tt.refused {
				// The real environments' stand-in admin file is refused on its own account; only a
				// refusal of the simulators' address would be wrong here.
				if err != nil && (strings.Contains(err.Error(), "sim_addr") || strings.Contains(err.Error(), "loopback")) {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error (exit status 2)", err)
			}
			if !strings.Contains(err.Error(), "loopback") && !strings.Contains(err.Error(), "PORTAL_SIM_ALLOW_REMOTE") {
				t.Errorf("the message does not say what to do: %v", err)
			}
		})
	}
}

// realEnvsConfig writes a config file pointing both environments at real services.
func realEnvsConfig(t *testing.T) string {
	dir := t.TempDir()
	admin := filepath.Join(dir, "admin.json")
	if err := os.WriteFile(admin, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := `{"maskinporten_issuer": "https://mp.example/", "selfservice_url": "https://ss.example/", "platform_url": "https://pl.example/", "admin_file": ` +
		strconv.Quote(admin) + `}`
	path := filepath.Join(dir, "real.json")
	if err := os.WriteFile(path, []byte(`{"environments": {"tt02": `+env+`, "prod": `+env+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
