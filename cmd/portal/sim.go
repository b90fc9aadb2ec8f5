package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"portal/internal/sim"
)

// runSim serves the simulators alone: a test double of Maskinporten, Digdir's self-service
// API and Altinn that other teams can run in their CI.
func runSim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", stderr)
	addr := fs.String("addr", envOr(getenv, "PORTAL_SIM_ADDR", "127.0.0.1:8081"), "listen address (PORTAL_SIM_ADDR)")
	data := fs.String("data", envOr(getenv, "PORTAL_DATA", "./data"), "directory for sim.db and sim-{env}-admin.json (PORTAL_DATA)")
	public := fs.String("public-url", getenv("PORTAL_SIM_PUBLIC_URL"), "public base URL (default http://ADDR) (PORTAL_SIM_PUBLIC_URL)")
	seed := fs.String("seed", "", "JSON seed file adding organisations, scopes, clients and apps (see doc/sim.md)")
	adminAPI := fs.Bool("admin-api", false, "enable the fault-injection and clock endpoints under /sim/admin/ (answered on loopback only)")
	allowRemote := fs.Bool("allow-remote", false, "allow --addr to be other than loopback (PORTAL_SIM_ALLOW_REMOTE); the admin API still answers only on loopback")
	orgCode := fs.String("org", sim.DefaultOrgCode, "Altinn org code of the seeded service owner")
	orgNo := fs.String("orgno", sim.DefaultOrgNo, "organisation number of the seeded service owner")
	orgName := fs.String("org-name", sim.DefaultOrgName, "name of the seeded service owner")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usagef("--addr %q is not host:port", *addr)
	}
	if v := getenv("PORTAL_SIM_ALLOW_REMOTE"); v != "" && !*allowRemote {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return usagef("PORTAL_SIM_ALLOW_REMOTE must be true or false")
		}
		*allowRemote = b
	}
	if !*allowRemote && !loopbackListen(*addr) {
		return usagef("--addr %q is not a loopback address: the simulators hand out tokens to anyone who reaches them; "+
			"listen on 127.0.0.1 or ::1, or add --allow-remote to mean it", *addr)
	}
	if *logFormat != "text" && *logFormat != "json" {
		return usagef("--log-format must be text or json")
	}
	cfg := defaultConfig()
	cfg.LogFormat = *logFormat
	log := newLogger(cfg, stderr)
	if err := checkDataDir(*data, log); err != nil {
		return err
	}
	unlock, err := lockDataDir(*data, false)
	if errors.Is(err, errDataDirBusy) {
		return fmt.Errorf("a restore is running on the data directory %s: start the simulators when it has finished", *data)
	}
	if err != nil {
		return err
	}
	defer unlock()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *addr, err)
	}
	base := *public
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	s, err := sim.Open(ctx, sim.Config{BaseURL: base, DataDir: *data, OrgCode: *orgCode, OrgNo: *orgNo, OrgName: *orgName,
		SeedFile: *seed, AdminAPI: *adminAPI, Logger: log})
	if err != nil {
		ln.Close()
		return fmt.Errorf("start simulators: %w", err)
	}
	defer s.Close()
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "simulators listening on %s/sim/ (credentials in %s/sim-{tt02,prod}-admin.json)\n", base, *data)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
