package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/identity"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/metrics"
	"portal/internal/mfa"
	"portal/internal/notify"
	"portal/internal/problem"
	"portal/internal/sim"
	"portal/internal/store"
	"portal/internal/tryit"
	"portal/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: portal [command] [flags]

commands:
  serve        run the portal (the default)
  sim          run only the simulators of Maskinporten, Digdir's self-service API and Altinn
  user add     add a user; the password is read from standard input
  keys new-kek write a new key-encryption key file (--out FILE, mode 0600, never overwrites)
  keys rekey   re-seal the kept private keys under a new key-encryption key (--new-kek-file FILE)
  audit verify check the whole audit trail's hash chain and name the first broken event
               (--heads FILE: also against the chain heads the portal logged)
  try          run an integration's grant, token, exchange and instances live, as JSON lines
  migrate      apply database migrations and exit
  backup       copy the portal's and the simulators' databases while it serves (--to DIR)
  restore      put a backup back into a stopped portal's data directory (--from DIR)
  version      print the version

Run "portal COMMAND -h" for a command's flags.`

// run is the whole program; main only hands it the process's inputs.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr)
	case "sim":
		return runSim(ctx, args, getenv, stdout, stderr)
	case "user":
		if len(args) == 0 || args[0] != "add" {
			return usagef("usage: portal user add --email E --name N --role admin|member (password on standard input)")
		}
		return runUserAdd(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "keys":
		return runKeys(ctx, args, getenv, stdout, stderr)
	case "try":
		return runTry(ctx, args, getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout, stderr)
	case "backup":
		return runBackup(ctx, args, getenv, stdout, stderr)
	case "restore":
		return runRestore(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "portal", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usagef("unknown command %q\n%s", cmd, usage)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// commandConfig parses a command's flags (the shared configuration flags plus any the command
// adds) and loads the configuration.
func commandConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (Config, error) {
	fs := newFlagSet(name, stderr)
	flags := serveFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return Config{}, err
	}
	return loadConfig(fs, flags, getenv)
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageError{"help requested"}
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: web.RedactAttr}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore makes the data directory (owner-only) and opens the database in it.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (*store.DB, error) {
	if err := checkDataDir(cfg.Data, log); err != nil {
		return nil, err
	}
	return store.Open(ctx, cfg.dataPath("portal.db"), log)
}

// checkDataDir makes the data directory (owner-only) and refuses one that others may write:
// whoever can write it can swap the databases or the session key. One that others may read
// gives away the keys in it only if a file's own mode is loose too, so it is a warning.
func checkDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return usagef("data directory %s is not a directory", dir)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	perm := fi.Mode().Perm()
	if perm&0o002 != 0 {
		return usagef("data directory %s may be written by others (mode %04o): anyone on the machine could replace the databases or keys in it; "+
			"make it the portal's own (chmod 700 %s)", dir, perm, dir)
	}
	if perm&0o077 != 0 && log != nil {
		log.Warn("the data directory may be read or written by group or others; make it the portal's own (chmod 700)", "dir", dir, "mode", fmt.Sprintf("%04o", perm))
	}
	return nil
}

// sessionKey returns the configured key, or the one kept in the data directory, creating it
// with mode 0600 on first start.
func sessionKey(cfg Config) ([]byte, error) {
	if cfg.sessionKey != nil {
		return cfg.sessionKey, nil
	}
	path := cfg.dataPath("session.key")
	if b, err := readPrivateFile(path); err == nil {
		k, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(k) < 32 {
			return nil, fmt.Errorf("session key file %s is damaged: delete it to sign everyone out and make a new one", path)
		}
		return k, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return k, nil
}

// readPrivateFile reads a secret file the way the key-encryption key is read: a regular file
// readable by its owner only, checked on the open file.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, usagef("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, usagef("%s has mode %04o: it signs everyone's session, so make it readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	return io.ReadAll(io.LimitReader(f, 1<<16))
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// adminPath is where an environment's admin credentials are read from.
func adminPath(cfg Config, env string) string {
	if cfg.Envs[env].Simulated() {
		return cfg.dataPath("sim-" + env + "-admin.json")
	}
	return cfg.Envs[env].AdminFile
}

// envViews describes each environment for the web layer.
func envViews(cfg Config) []web.Env {
	var out []web.Env
	for _, name := range EnvNames {
		ec, ok := cfg.Envs[name]
		if !ok {
			continue
		}
		v := web.Env{Name: name, Label: ec.Label, Simulated: ec.Simulated(), Org: cfg.OrgCode, OrgNo: cfg.OrgNo,
			Issuer: ec.Issuer, SelfService: ec.SelfServiceURL, Platform: ec.PlatformURL}
		a, err := readAdminFile(adminPath(cfg, name))
		if err != nil {
			v.Problem = err.Error()
		} else {
			// For a real environment the configuration wins over the admin file; start-up warns
			// when they differ (startWarnings).
			v.AdminClient = a.ClientID
			if v.Simulated {
				v.Issuer, v.SelfService, v.Platform = a.Issuer, a.SelfServiceURL, a.PlatformURL
				v.Org, v.OrgNo = a.Org, a.OrgNo
			}
		}
		if v.Issuer != "" {
			v.TokenURL = strings.TrimRight(v.Issuer, "/") + "/token"
		}
		out = append(out, v)
	}
	return out
}

func anySimulated(cfg Config) bool {
	for _, e := range cfg.Envs {
		if e.Simulated() {
			return true
		}
	}
	return false
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig("serve", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	for _, w := range startWarnings(cfg) {
		log.Warn(w)
	}
	unlock, err := lockDataDir(cfg.Data, false)
	if errors.Is(err, errDataDirBusy) {
		return fmt.Errorf("a restore is running on the data directory %s: start the portal when it has finished", cfg.Data)
	}
	if err != nil {
		return err
	}
	defer unlock()
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close database", "err", err)
		}
	}()
	if err := recordStart(ctx, db, cfg, log); err != nil {
		return fmt.Errorf("record the start in the audit trail: %w", err)
	}
	var startHead *audit.Head
	publishAuditHead(ctx, audit.NewLog(db, nil), log, func(h audit.Head) { startHead = &h })

	// The simulators start first and stop last, so the portal never sees them vanish while
	// it still serves.
	var simSrv *http.Server
	var simulator *sim.Sim
	if anySimulated(cfg) {
		ln, err := net.Listen("tcp", cfg.SimAddr)
		if err != nil {
			return fmt.Errorf("simulators cannot listen on %s: %w (set --sim-addr or PORTAL_SIM_ADDR)", cfg.SimAddr, err)
		}
		base := cfg.SimPublicURL
		if base == "" {
			base = "http://" + ln.Addr().String()
		}
		var apSecret string
		if allSimulated(cfg) {
			key, err := sessionKey(cfg)
			if err != nil {
				ln.Close()
				return err
			}
			apSecret = hex.EncodeToString(deriveKey(key, "sim-ansattporten"))
			cfg.simProviders = append(cfg.simProviders, simAnsattporten(cfg, base, apSecret))
		}
		simulator, err = sim.Open(ctx, sim.Config{BaseURL: base, DataDir: cfg.Data, OrgCode: cfg.OrgCode, OrgNo: cfg.OrgNo,
			OrgName: cfg.OrgName, SeedFile: cfg.SimSeed, AdminAPI: cfg.SimAdminAPI, Logger: log.With("component", "sim"),
			AnsattportenSecret: apSecret})
		if err != nil {
			ln.Close()
			return fmt.Errorf("start simulators: %w", err)
		}
		defer simulator.Close()
		simSrv = &http.Server{Handler: simulator.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() {
			if err := simSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("simulators stopped", "err", err)
			}
		}()
		log.Info("simulators listening", "url", base+"/sim/")
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("portal cannot listen on %s: %w (set --addr or PORTAL_ADDR)", cfg.Addr, err)
	}
	public := cfg.publicURL(ln.Addr().String())
	app, err := buildPortal(cfg, db, log, public)
	if err != nil {
		ln.Close()
		return err
	}
	defer app.close()
	if err := announceSetup(ctx, app.auth, public, log); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: app.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 120 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		var err error
		if cfg.TLSCert != "" {
			err = srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	log.Info("portal listening", "url", public, "version", version)
	go sweepSessions(ctx, app.sessions, log)
	go flushThrottled(ctx, app.auth, log)
	go catchUpAuditChain(ctx, audit.NewLog(db, nil), log)
	setHead := func(h audit.Head) { app.metrics.SetPublishedHead(metrics.Head{ID: h.ID, Hash: h.Hash}) }
	if startHead != nil {
		setHead(*startHead)
	}
	go publishAuditHeads(ctx, audit.NewLog(db, nil), log, time.Hour, setHead)
	go app.clients.RunSyncs(ctx, time.Duration(cfg.SyncInterval))
	go logKeyExpiries(ctx, app.clients, log, expiryWarner{clients: app.clients, db: db, notify: app.notifier, log: log}.warnFunc())

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("portal server: %w", err)
		}
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight", "timeout", time.Duration(cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("portal shutdown incomplete", "err", err)
	}
	if simSrv != nil {
		if err := simSrv.Shutdown(sctx); err != nil {
			log.Warn("simulator shutdown incomplete", "err", err)
		}
	}
	log.Info("stopped")
	return nil
}

// portal is the wired application.
type portal struct {
	handler  http.Handler
	sessions *auth.SessionStore
	auth     *auth.Service
	clients  *clients.Service
	tryit    *tryit.Service
	log      *slog.Logger
	notifier *notify.Notifier
	metrics  *metrics.Metrics // the registry /metrics serves

	generator *keys.Generator
}

// close stops background work: syncs first, then key generation.
func (p *portal) close() {
	if err := p.tryit.Close(context.Background()); err != nil {
		p.log.Error("audit the open tries", "err", err)
	}
	p.clients.Close()
	p.generator.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.notifier.Close(ctx); err != nil {
		p.log.Error("send the queued notifications", "err", err)
	}
}

// checkIssuers compares each real environment's configured issuer with the one its metadata
// publishes: grants carry it as aud exactly, so a difference would only show as refused tokens.
// A mismatch refuses the start (exit status 2); metadata that cannot be read now is only
// warned about, since the live checks try again.
func checkIssuers(cfg Config, ups map[string]*maskinporten.Client, log *slog.Logger) error {
	var problems []string
	for _, name := range []string{"tt02", "prod"} {
		c, ok := ups[name]
		if !ok || cfg.Envs[name].Simulated() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.CheckIssuer(ctx)
		cancel()
		var me *maskinporten.IssuerMismatchError
		switch {
		case errors.As(err, &me):
			problems = append(problems, fmt.Sprintf("environments.%s.maskinporten_issuer: %v", name, err))
		case err != nil:
			log.Warn("the issuer could not be checked at start; the environment page's live checks try again", "env", name, "err", err)
		}
	}
	if len(problems) > 0 {
		return usageError{"configuration is not usable:\n  - " + strings.Join(problems, "\n  - ")}
	}
	return nil
}

// buildPortal wires the domain services and the web handler. The caller closes p.clients.
func buildPortal(cfg Config, db *store.DB, log *slog.Logger, public string) (*portal, error) {
	key, err := sessionKey(cfg)
	if err != nil {
		return nil, err
	}
	// Cookies are Secure (and __Host-) whenever people reach the portal over HTTPS, whether the
	// portal terminates TLS itself or something in front of it does, trusted as a proxy or not.
	secure := cfg.TLSCert != "" || strings.HasPrefix(public, "https://") || cfg.SecureCookies != nil && *cfg.SecureCookies
	authSvc, err := auth.NewService(db, auth.Options{Log: log, AllowedEmailDomains: cfg.AllowedEmailDomains, LinksByEmail: cfg.SMTPHost != ""})
	if err != nil {
		return nil, err
	}
	sessions, err := auth.NewSessionStore(db, auth.SessionOptions{KeyPairs: [][]byte{deriveKey(key, "session")}, Secure: secure,
		IdleTimeout: time.Duration(cfg.IdleTimeout), MaxLifetime: time.Duration(cfg.MaxLifetime)})
	if err != nil {
		return nil, err
	}
	kek, err := loadKEK(cfg, log)
	if err != nil {
		return nil, err
	}
	// Refuse to start with a key-encryption key that cannot open the keys the portal keeps.
	if err := checkKEK(context.Background(), db, kek); err != nil {
		return nil, err
	}
	envs := envViews(cfg)
	m := metrics.New()
	ups, problems := upstreamClients(cfg, envs, m, log)
	if err := checkIssuers(cfg, ups, log); err != nil {
		return nil, err
	}
	var cenvs []clients.Env
	for _, e := range envs {
		ce := clients.Env{Name: e.Name, Label: e.Label, Prod: e.Name == "prod", Issuer: e.Issuer, Problem: problems[e.Name],
			AllowRS384RS512: cfg.Envs[e.Name].AllowRS384RS512}
		if c, ok := ups[e.Name]; ok {
			ce.Upstream = c
		}
		ce.AdminClient, ce.PrivilegedScopes = e.AdminClient, cfg.Envs[e.Name].PrivilegedScopes
		if a, err := readAdminFile(adminPath(cfg, e.Name)); err == nil {
			ce.AdminScopes = a.Scopes
		}
		if kc := cfg.Envs[e.Name].KeyCustody; kc != nil {
			ce.Keys = &clients.KeyPolicy{Kept: slices.Contains(kc, "kept"), HandOut: slices.Contains(kc, "handed_out")}
		}
		cenvs = append(cenvs, ce)
	}
	gen := keys.NewGenerator(keys.GeneratorConfig{})
	notifier := newNotifier(cfg, log)
	warner := &privilegedWarner{db: db, notify: notifier, public: public, log: log}
	clientsSvc, err := clients.New(db, cenvs, clients.Options{Log: log.With("component", "integrations"), SyncConcurrency: cfg.SyncConcurrency,
		KEK: kek, Generator: gen, AfterSync: warner.warn, PropagationDelay: time.Duration(cfg.PropagationDelay)})
	if err != nil {
		gen.Close()
		notifier.Close(context.Background())
		return nil, err
	}
	warner.clients = clientsSvc
	tenvs, err := tryEnvs(cfg, envs, ups, m, log)
	if err != nil {
		clientsSvc.Close()
		gen.Close()
		notifier.Close(context.Background())
		return nil, err
	}
	trySvc, err := tryit.New(tryit.Config{Envs: tenvs, Clients: clientsSvc, Audit: audit.NewLog(db, nil), Log: log.With("component", "tryit")})
	if err != nil {
		clientsSvc.Close()
		gen.Close()
		notifier.Close(context.Background())
		return nil, err
	}
	// A person whose membership, role or account changes loses their open tries at once.
	authSvc.OnPersonChanged(trySvc.DropPerson)
	providers, problems2 := cfg.providerConfigs()
	if len(problems2) > 0 {
		clientsSvc.Close()
		gen.Close()
		notifier.Close(context.Background())
		return nil, usagef("%s", strings.Join(problems2, "; "))
	}
	providers = append(providers, cfg.simProviders...)
	ids, err := identity.New(db, authSvc, providers, identity.Options{PublicURL: public, Log: log.With("component", "identity")})
	if err != nil {
		clientsSvc.Close()
		gen.Close()
		notifier.Close(context.Background())
		return nil, err
	}
	policy, _ := mfa.ParsePolicy(cfg.RequireSecondFactor) // validated with the configuration
	factors, err := mfa.New(db, mfa.Options{Policy: policy, KEK: kek, PublicURL: public, Issuer: portalIssuer(cfg), Log: log.With("component", "mfa")})
	if err != nil {
		clientsSvc.Close()
		gen.Close()
		notifier.Close(context.Background())
		return nil, err
	}
	srv, err := web.New(web.Config{OrgName: cfg.OrgName, PublicURL: public, Envs: envs, SecureCookies: secure,
		MetricsToken: cfg.MetricsToken, Metrics: m,
		TrustedProxies: cfg.proxies, FlashKey: deriveKey(key, "flash"), Log: log},
		web.Deps{Auth: authSvc, Sessions: sessions, Audit: audit.NewLog(db, nil), DB: db,
			Health: &envHealth{clients: ups, problems: problems, altinn: altinnClients(tenvs)}, Clients: clientsSvc, Tryit: trySvc, Notify: webNotifier(notifier), Identity: ids, Factors: factors})
	if err != nil {
		clientsSvc.Close()
		gen.Close()
		notifier.Close(context.Background())
		return nil, err
	}
	return &portal{handler: srv.Handler(), sessions: sessions, auth: authSvc, clients: clientsSvc, tryit: trySvc, log: log, generator: gen, metrics: m,
		notifier: notifier}, nil
}

// announceSetup logs the one-time setup link while the portal has no users.
func announceSetup(ctx context.Context, a *auth.Service, public string, log *slog.Logger) error {
	needs, err := a.NeedsSetup(ctx)
	if err != nil || !needs {
		return err
	}
	token, err := a.CreateSetupToken(ctx)
	if err != nil {
		return err
	}
	link := public + "/setup?" + url.Values{"token": {token}}.Encode()
	log.Warn("the portal has no users yet: open this link within an hour to create the administrator (it works once)", "setup_link", link)
	return nil
}

// flushThrottled records the counts of refused sign-ins whose window has ended, one audit
// event per address or account and window.
func flushThrottled(ctx context.Context, a *auth.Service, log *slog.Logger) {
	every(ctx, time.Minute, func() {
		if err := a.FlushThrottled(ctx); err != nil && ctx.Err() == nil {
			log.Warn("record throttled sign-ins", "err", err)
		}
	})
}

func sweepSessions(ctx context.Context, s *auth.SessionStore, log *slog.Logger) {
	every(ctx, 10*time.Minute, func() {
		if n, err := s.DeleteStale(ctx); err != nil {
			log.Warn("sweep sessions", "err", err)
		} else if n > 0 {
			log.Info("swept stale sessions", "count", n)
		}
	})
}

// every runs f each period until ctx ends (not at once: start-up does its own first round).
func every(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig("migrate", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "database is up to date:", db.Path())
	return db.Close()
}

func runUserAdd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var email, name, role *string
	cfg, err := commandConfig("user add", args, getenv, stderr, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "email address (required)")
		name = fs.String("name", "", "full name (required)")
		role = fs.String("role", "member", "admin or member")
	})
	if err != nil {
		return err
	}
	if *email == "" || *name == "" {
		return usagef("user add needs --email and --name")
	}
	if !auth.ValidRole(*role) {
		return usagef("--role must be admin or member, not %q", *role)
	}
	pw, err := bufio.NewReader(io.LimitReader(stdin, auth.MaxPasswordLength+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password from standard input: %w", err)
	}
	pw = strings.TrimRight(pw, "\r\n")
	if msg := auth.CheckPassword(pw); msg != "" {
		return usagef("the password on standard input is not usable: %s", msg)
	}
	db, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := auth.NewService(db, auth.Options{AllowedEmailDomains: cfg.AllowedEmailDomains})
	if err != nil {
		return err
	}
	u, err := a.AddUser(ctx, *email, *name, *role, pw, audit.Meta{Actor: "cli"})
	if pe, ok := problem.As(err); ok && pe.Kind == problem.KindInvalid {
		var msgs []string
		for f, m := range pe.Fields {
			msgs = append(msgs, f+": "+m)
		}
		return usagef("user not added: %s", strings.Join(msgs, "; "))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s (%s) as %s\n", u.Email, u.Name, u.Role)
	return nil
}

// portalIssuer names the portal in authenticator apps and passkey prompts.
func portalIssuer(cfg Config) string {
	if cfg.OrgName != "" {
		return cfg.OrgName + " integration portal"
	}
	return "Integration portal"
}
