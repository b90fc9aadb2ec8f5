package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"portal/internal/identity"
	"portal/internal/maskinporten"
	"portal/internal/mfa"
)

// usageError is a mistake in how the portal was invoked or configured: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// EnvConfig points one environment at its upstreams. With no URLs it is simulated.
type EnvConfig struct {
	Label          string `json:"label"`
	Issuer         string `json:"maskinporten_issuer"`
	SelfServiceURL string `json:"selfservice_url"`
	PlatformURL    string `json:"platform_url"`
	AdminFile      string `json:"admin_file"` // JSON credentials of the admin client (same shape as sim-{env}-admin.json)
	// KeyCustody lists how generated keys may be held: "kept" (sealed by the portal) and/or
	// "handed_out" (downloaded once). Default: both in tt02, only handed_out in prod.
	KeyCustody []string `json:"key_custody"`
	// PrivilegedScopes adds scopes only administrators may give an integration, to the
	// defaults (idporten:dcr*, idporten:scopes* and every scope the admin client holds); a
	// trailing * matches any scope starting with what precedes it.
	PrivilegedScopes []string `json:"privileged_scopes"`
	// AdminWithoutCertificate lets a real environment's admin client authenticate with a
	// registered key instead of the business certificate Digdir asks for.
	AdminWithoutCertificate bool `json:"admin_without_certificate"`
	// AdminScopes are the scopes the admin client asks for per kind of self-service call
	// ({"read": [...], "write": [...], "scopes_access": [...]}); empty kinds get the defaults
	// idporten:dcr.read, idporten:dcr.write and idporten:scopes.write.
	AdminScopes maskinporten.AdminScopes `json:"admin_scopes"`
	// AllowRS384RS512 offers RS384 and RS512 keys besides RS256. Digdir's admin API page says
	// only RS256 is supported, its client-registration page all three: off by default.
	AllowRS384RS512 bool `json:"allow_rs384_rs512"`
}

// Simulated reports whether the environment runs against the built-in simulators.
func (e EnvConfig) Simulated() bool {
	return e.Issuer == "" && e.SelfServiceURL == "" && e.PlatformURL == "" && e.AdminFile == ""
}

// Config is the whole configuration. Precedence: flags, then PORTAL_* environment variables,
// then the config file, then defaults.
type Config struct {
	Addr            string   `json:"addr"`
	Data            string   `json:"data"`
	PublicURL       string   `json:"public_url"`
	SimAddr         string   `json:"sim_addr"`
	SimPublicURL    string   `json:"sim_public_url"`
	SimAdminAPI     bool     `json:"sim_admin_api"`
	SimAllowRemote  bool     `json:"sim_allow_remote"` // let sim_addr be other than loopback
	SimSeed         string   `json:"sim_seed"`
	TLSCert         string   `json:"tls_cert"`
	TLSKey          string   `json:"tls_key"`
	TrustedProxies  []string `json:"trusted_proxies"`
	SecureCookies   *bool    `json:"secure_cookies"`
	OrgName         string   `json:"org_name"`
	OrgCode         string   `json:"org_code"`
	OrgNo           string   `json:"org_number"`
	SessionKeyFile  string   `json:"session_key_file"`
	KEKFile         string   `json:"kek_file"`
	IdleTimeout     duration `json:"session_idle_timeout"`
	MaxLifetime     duration `json:"session_max_lifetime"`
	ShutdownTimeout duration `json:"shutdown_timeout"`
	SyncInterval    duration `json:"sync_interval"`
	SyncConcurrency int      `json:"sync_concurrency"`
	// PropagationDelay is how long Digdir may take to list a change it accepted; a change an
	// earlier run of the portal left unfinished and a later sync does not find is given up.
	PropagationDelay duration             `json:"propagation_delay"`
	LogLevel         string               `json:"log_level"`
	LogFormat        string               `json:"log_format"`
	Envs             map[string]EnvConfig `json:"environments"`
	MetricsToken     string               `json:"metrics_token"` // the bearer token /metrics requires; off without one
	// AllowedEmailDomains, when set, are the only email domains accounts and invitations may
	// have (PORTAL_ALLOWED_EMAIL_DOMAINS, comma-separated).
	AllowedEmailDomains []string `json:"allowed_email_domains"`
	// Providers are the OpenID Providers people may sign in through (oidc.go).
	Providers []ProviderFileConfig `json:"oidc_providers"`
	// RequireSecondFactor says who must have a second factor: admins (the default), everyone
	// or none (PORTAL_REQUIRE_SECOND_FACTOR).
	RequireSecondFactor string `json:"require_second_factor"`
	notifyConfig               // smtp_* and webhook_* (notify.go)

	simProviders []identity.ProviderConfig // the simulated Ansattporten, when the simulators run
	sessionKey   []byte                    // from PORTAL_SESSION_KEY(_FILE) or the file; never printed
	kek          string                    // PORTAL_KEK, when set; never printed
	proxies      []netip.Prefix            // parsed TrustedProxies
	configFile   string
}

// duration reads "90s", "2h" from JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`durations are strings like "90s" or "2h"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// EnvNames are the environments, in display order.
var EnvNames = []string{"tt02", "prod"}

func defaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:8080",
		Data:             "./data",
		SimAddr:          "127.0.0.1:8081",
		OrgName:          "Testdepartementet",
		OrgCode:          "ttd",
		OrgNo:            "313554430",
		IdleTimeout:      duration(2 * time.Hour),
		MaxLifetime:      duration(12 * time.Hour),
		ShutdownTimeout:  duration(15 * time.Second),
		SyncInterval:     duration(5 * time.Minute),
		PropagationDelay: duration(2 * time.Minute),
		SyncConcurrency:  4,
		LogLevel:         "info",
		LogFormat:        "text",
		Envs:             map[string]EnvConfig{"tt02": {Label: "Test (tt02)"}, "prod": {Label: "Production"}},
	}
}

// serveFlags declares the flags of `serve` (and of the default command).
func serveFlags(fs *flag.FlagSet) map[string]*string {
	names := []struct{ name, usage string }{
		{"config", "path of a JSON config file (PORTAL_CONFIG)"},
		{"addr", "listen address of the portal (PORTAL_ADDR, default 127.0.0.1:8080)"},
		{"data", "data directory (PORTAL_DATA, default ./data)"},
		{"public-url", "the portal's URL as people reach it (PORTAL_PUBLIC_URL)"},
		{"sim-addr", "listen address of the built-in simulators (PORTAL_SIM_ADDR, default 127.0.0.1:8081)"},
		{"tls-cert", "TLS certificate file (PORTAL_TLS_CERT)"},
		{"tls-key", "TLS private key file (PORTAL_TLS_KEY)"},
		{"trusted-proxies", "comma-separated CIDRs whose X-Forwarded-* headers are believed (PORTAL_TRUSTED_PROXIES)"},
		{"log-level", "debug, info, warn or error (PORTAL_LOG_LEVEL)"},
		{"log-format", "text or json (PORTAL_LOG_FORMAT)"},
	}
	out := map[string]*string{}
	for _, n := range names {
		out[n.name] = fs.String(n.name, "", n.usage)
	}
	return out
}

// loadConfig builds the configuration and reports every problem at once.
func loadConfig(fs *flag.FlagSet, flags map[string]*string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	var problems []string
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(flagName, envName string) (string, bool) {
		if set[flagName] {
			return *flags[flagName], true
		}
		if v := getenv(envName); v != "" {
			return v, true
		}
		return "", false
	}

	if path, ok := pick("config", "PORTAL_CONFIG"); ok {
		cfg.configFile = path
		if err := readConfigFile(path, &cfg); err != nil {
			problems = append(problems, err.Error())
		}
	}
	str := func(dst *string, flagName, envName string) {
		if v, ok := pick(flagName, envName); ok {
			*dst = v
		}
	}
	str(&cfg.Addr, "addr", "PORTAL_ADDR")
	str(&cfg.Data, "data", "PORTAL_DATA")
	str(&cfg.PublicURL, "public-url", "PORTAL_PUBLIC_URL")
	str(&cfg.SimAddr, "sim-addr", "PORTAL_SIM_ADDR")
	str(&cfg.TLSCert, "tls-cert", "PORTAL_TLS_CERT")
	str(&cfg.TLSKey, "tls-key", "PORTAL_TLS_KEY")
	str(&cfg.LogLevel, "log-level", "PORTAL_LOG_LEVEL")
	str(&cfg.LogFormat, "log-format", "PORTAL_LOG_FORMAT")
	if v := getenv("PORTAL_SIM_PUBLIC_URL"); v != "" {
		cfg.SimPublicURL = v
	}
	if v := getenv("PORTAL_ORG_NAME"); v != "" {
		cfg.OrgName = v
	}
	if v := getenv("PORTAL_SIM_ADMIN_API"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, "PORTAL_SIM_ADMIN_API must be true or false")
		}
		cfg.SimAdminAPI = b
	}
	if v := getenv("PORTAL_SIM_ALLOW_REMOTE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, "PORTAL_SIM_ALLOW_REMOTE must be true or false")
		}
		cfg.SimAllowRemote = b
	}
	if v := getenv("PORTAL_SECURE_COOKIES"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, "PORTAL_SECURE_COOKIES must be true or false")
		}
		cfg.SecureCookies = &b
	}
	if v, ok := pick("trusted-proxies", "PORTAL_TRUSTED_PROXIES"); ok {
		cfg.TrustedProxies = splitList(v)
	}
	for _, name := range []string{"PORTAL_SESSION_IDLE_TIMEOUT", "PORTAL_SESSION_MAX_LIFETIME"} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				problems = append(problems, fmt.Sprintf("%s must be a duration such as 2h or 90m, not %q", name, v))
				continue
			}
			if name == "PORTAL_SESSION_IDLE_TIMEOUT" {
				cfg.IdleTimeout = duration(d)
			} else {
				cfg.MaxLifetime = duration(d)
			}
		}
	}
	if v := getenv("PORTAL_ALLOWED_EMAIL_DOMAINS"); v != "" {
		cfg.AllowedEmailDomains = splitList(v)
	}
	if v := getenv("PORTAL_REQUIRE_SECOND_FACTOR"); v != "" {
		cfg.RequireSecondFactor = v
	}
	if v := getenv("PORTAL_KEK_FILE"); v != "" {
		cfg.KEKFile = v
	}
	cfg.kek = getenv("PORTAL_KEK")
	key, err := secretValue(getenv, "PORTAL_SESSION_KEY", cfg.SessionKeyFile)
	if err != nil {
		problems = append(problems, err.Error())
	}
	cfg.sessionKey = key
	token, err := secretValue(getenv, "PORTAL_METRICS_TOKEN", "")
	if err != nil {
		problems = append(problems, err.Error())
	}
	if token != nil {
		cfg.MetricsToken = string(token)
	}

	problems = append(problems, cfg.loadNotifyEnv(getenv)...)
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return cfg, usageError{"configuration is not usable:\n  - " + strings.Join(problems, "\n  - ")}
	}
	return cfg, nil
}

// secretValue reads a secret from NAME, NAME_FILE, or a file named in the config, in that order.
func secretValue(getenv func(string) string, name, configFile string) ([]byte, error) {
	if v := getenv(name); v != "" {
		return []byte(v), nil
	}
	path := getenv(name + "_FILE")
	if path == "" {
		path = configFile
	}
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s_FILE: cannot read %s: %v", name, path, errors.Unwrap(err))
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

func readConfigFile(path string, cfg *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file %s cannot be opened: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, 1<<20))
	dec.DisallowUnknownFields()
	envs := cfg.Envs
	cfg.Envs = nil
	if err := dec.Decode(cfg); err != nil {
		cfg.Envs = envs
		return fmt.Errorf("config file %s: %v", path, describeJSONError(err))
	}
	// Environments named in the file replace the defaults one by one; labels default.
	merged := envs
	for name, e := range cfg.Envs {
		if e.Label == "" {
			e.Label = envs[name].Label
		}
		merged[name] = e
	}
	cfg.Envs = merged
	return nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return fmt.Sprintf("%q should be %s", te.Field, te.Type)
	case errors.Is(err, io.EOF):
		return "the file is empty"
	}
	return err.Error()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *Config) validate() []string {
	var p []string
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		p = append(p, fmt.Sprintf("addr %q is not host:port (for example 127.0.0.1:8080)", c.Addr))
	}
	if c.Data == "" {
		p = append(p, "data must name a directory")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		p = append(p, "tls-cert and tls-key go together: set both or neither")
	}
	for _, f := range []string{c.TLSCert, c.TLSKey} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				p = append(p, fmt.Sprintf("TLS file %s cannot be read", f))
			}
		}
	}
	c.proxies = nil
	for _, s := range c.TrustedProxies {
		pr, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				p = append(p, fmt.Sprintf("trusted proxy %q is neither an address nor a CIDR such as 10.0.0.0/8", s))
				continue
			}
			pr = netip.PrefixFrom(a, a.BitLen())
		}
		c.proxies = append(c.proxies, pr.Masked())
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p = append(p, fmt.Sprintf("log-level %q: use debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		p = append(p, fmt.Sprintf("log-format %q: use text or json", c.LogFormat))
	}
	if c.IdleTimeout <= 0 || c.MaxLifetime <= 0 || time.Duration(c.IdleTimeout) > time.Duration(c.MaxLifetime) {
		p = append(p, "session_idle_timeout must be positive and no longer than session_max_lifetime")
	}
	if c.ShutdownTimeout <= 0 {
		p = append(p, "shutdown_timeout must be positive")
	}
	if time.Duration(c.PropagationDelay) < time.Second || time.Duration(c.PropagationDelay) > time.Hour {
		p = append(p, fmt.Sprintf("propagation_delay %s must be between 1s and 1h", time.Duration(c.PropagationDelay)))
	}
	if time.Duration(c.SyncInterval) < 10*time.Second {
		p = append(p, "sync_interval must be at least 10s (the self-service API is shared by every customer)")
	}
	if c.SyncConcurrency < 1 || c.SyncConcurrency > 32 {
		p = append(p, fmt.Sprintf("sync_concurrency %d must be between 1 and 32", c.SyncConcurrency))
	}
	if c.sessionKey != nil && len(c.sessionKey) < 32 {
		p = append(p, "the session key must be at least 32 characters")
	}
	p = append(p, c.validateNotify()...)
	if _, pp := c.providerConfigs(); len(pp) > 0 {
		p = append(p, pp...)
	}
	for i, d := range c.AllowedEmailDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		c.AllowedEmailDomains[i] = d
		if d == "" || strings.ContainsAny(d, "@ /:") || !strings.Contains(d, ".") || strings.IndexFunc(d, func(r rune) bool { return r > 127 }) >= 0 {
			p = append(p, fmt.Sprintf("allowed_email_domains: %q is not a domain such as example.no (international domains in their xn-- form)", d))
		}
	}
	if _, err := mfa.ParsePolicy(c.RequireSecondFactor); err != nil {
		p = append(p, err.Error())
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 32 {
		p = append(p, "the metrics token must be at least 32 characters (try: openssl rand -hex 32)")
	}
	if len(c.OrgNo) != 9 || strings.Trim(c.OrgNo, "0123456789") != "" {
		p = append(p, fmt.Sprintf("org_number %q must be 9 digits", c.OrgNo))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p = append(p, fmt.Sprintf("public-url %q must be an absolute http(s) URL", c.PublicURL))
		}
	}
	if c.SecureCookies != nil && !*c.SecureCookies && (c.TLSCert != "" || strings.HasPrefix(c.PublicURL, "https://")) {
		p = append(p, "secure_cookies is false, but people reach the portal over HTTPS (public-url or tls-cert): "+
			"cookies are always Secure then; remove secure_cookies (PORTAL_SECURE_COOKIES)")
	}
	simulated := false
	for name, e := range c.Envs {
		if name != "tt02" && name != "prod" {
			p = append(p, fmt.Sprintf("environment %q is unknown: use tt02 or prod", name))
			continue
		}
		for _, k := range e.KeyCustody {
			if k != "kept" && k != "handed_out" {
				p = append(p, fmt.Sprintf("environments.%s.key_custody: %q is neither kept nor handed_out", name, k))
			}
		}
		if e.KeyCustody != nil && len(e.KeyCustody) == 0 {
			p = append(p, fmt.Sprintf("environments.%s.key_custody must allow kept, handed_out or both", name))
		}
		for _, sc := range e.PrivilegedScopes {
			if pre, _ := strings.CutSuffix(sc, "*"); pre == "" || strings.ContainsAny(sc, " \t\n") || strings.Contains(pre, "*") {
				p = append(p, fmt.Sprintf("environments.%s.privileged_scopes: %q is neither a scope nor a prefix ending in * (for example altinn:admin*)", name, sc))
			}
		}
		for kind, scopes := range map[string][]string{"read": e.AdminScopes.Read, "write": e.AdminScopes.Write, "scopes_access": e.AdminScopes.ScopeAccess} {
			for _, sc := range scopes {
				if sc == "" || strings.ContainsAny(sc, " \t\n\"") {
					p = append(p, fmt.Sprintf("environments.%s.admin_scopes.%s: %q is not a scope name (one scope per list entry, no spaces)", name, kind, sc))
				}
			}
		}
		if e.Simulated() {
			simulated = true
			continue
		}
		for _, f := range []struct{ key, v string }{{"maskinporten_issuer", e.Issuer}, {"selfservice_url", e.SelfServiceURL}, {"platform_url", e.PlatformURL}} {
			if msg := checkUpstreamURL(f.v); msg != "" {
				p = append(p, fmt.Sprintf("environments.%s.%s %s", name, f.key, msg))
			}
		}
		if u, err := url.Parse(e.SelfServiceURL); err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api/v1") {
			p = append(p, fmt.Sprintf("environments.%s.selfservice_url %q ends in /api/v1: give the API's base without it (for example https://api.samarbeid.digdir.no); the portal adds /api/v1 itself",
				name, e.SelfServiceURL))
		}
		if e.AdminFile == "" {
			p = append(p, fmt.Sprintf("environments.%s.admin_file must name the admin client's credentials file", name))
		} else if a, err := readAdminFile(e.AdminFile); err != nil {
			p = append(p, fmt.Sprintf("environments.%s.admin_file: %v", name, err))
		} else {
			_, problems := a.credentials(e.AdminFile, !e.AdminWithoutCertificate)
			for _, msg := range problems {
				p = append(p, fmt.Sprintf("environments.%s.admin_file: %s", name, msg))
			}
		}
	}
	if simulated {
		if _, _, err := net.SplitHostPort(c.SimAddr); err != nil {
			p = append(p, fmt.Sprintf("sim-addr %q is not host:port (for example 127.0.0.1:8081)", c.SimAddr))
		} else if !c.SimAllowRemote && !loopbackListen(c.SimAddr) {
			p = append(p, fmt.Sprintf("sim-addr %q is not a loopback address: the simulators hand out tokens to anyone who reaches them; "+
				"listen on 127.0.0.1 or ::1, or set sim_allow_remote: true (PORTAL_SIM_ALLOW_REMOTE=true) to mean it", c.SimAddr))
		}
	}
	return p
}

// checkUpstreamURL says what is wrong with a real environment's upstream URL, or "". Only
// https goes to a real service; http is allowed for a loopback host, where a separately
// started simulator stands in for one.
func checkUpstreamURL(v string) string {
	if v == "" {
		return "must be an absolute URL when the environment points at real services"
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", v)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("%q must be an https URL (not %s)", v, u.Scheme+":")
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q has no host", v)
	case u.User != nil:
		return fmt.Sprintf("%q must not carry a user name or password", v)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Sprintf("%q must have no query or fragment", v)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return fmt.Sprintf("%q must use https: plain http is allowed only for a simulator on this machine (localhost, 127.0.0.1, ::1)", v)
	}
	return ""
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// loopbackListen reports whether a listen address (host:port) binds only to loopback: a
// loopback IP or "localhost". An empty host binds every interface.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// publicURL is where people reach the portal.
func (c *Config) publicURL(boundAddr string) string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + boundAddr
}

func (c *Config) dataPath(name string) string { return filepath.Join(c.Data, name) }
