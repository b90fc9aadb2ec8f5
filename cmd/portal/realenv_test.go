package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portal/internal/keys"
)

// realAdminFiles writes variants of a simulator's admin file for a real environment's
// configuration: name -> path.
func realAdminFiles(t *testing.T, dir string, base adminFile) map[string]string {
	t.Helper()
	write := func(name string, a adminFile) string {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out := map[string]string{"good": write("good", base)}
	key, err := keys.ParsePrivate([]byte(base.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	key.KID = "admin-key-1"
	jwk, err := key.PrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	withKid := base
	withKid.CertChainPEM, withKid.PrivateKeyPEM = "", string(jwk)
	out["kid"] = write("kid", withKid)
	noCert := base
	noCert.CertChainPEM = ""
	out["nocert"] = write("nocert", noCert)
	noScopes := base
	noScopes.Scopes = nil
	out["noscopes"] = write("noscopes", noScopes)
	encrypted := base
	encrypted.PrivateKeyPEM = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"
	out["encrypted"] = write("encrypted", encrypted)
	badKey := base
	badKey.PrivateKeyPEM = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	out["badkey"] = write("badkey", badKey)
	out["dir"] = filepath.Join(dir, "admin-dir")
	if err := os.Mkdir(out["dir"], 0o700); err != nil {
		t.Fatal(err)
	}
	out["badjson"] = filepath.Join(dir, "badjson.json")
	os.WriteFile(out["badjson"], []byte(`{"client_id": "x",`), 0o600)
	return out
}

// TestRealEnvironmentConfigMistakes starts the command with real environments configured
// wrongly: every mistake is refused at start, all at once, with exit status 2 and a message that
// names the file or setting and the problem.
func TestRealEnvironmentConfigMistakes(t *testing.T) {
	_, srv, simCfg := simulatedConfig(t)
	base, err := readAdminFile(simCfg.dataPath("sim-tt02-admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := realAdminFiles(t, dir, base)
	env := func(admin, issuer, selfService, platform string, extra string) string {
		return fmt.Sprintf(`{"maskinporten_issuer": %q, "selfservice_url": %q, "platform_url": %q, "admin_file": %q%s}`,
			issuer, selfService, platform, admin, extra)
	}
	good := func(admin string) string {
		return env(admin, base.Issuer, base.SelfServiceURL, base.PlatformURL, "")
	}
	config := func(t *testing.T, tt02, prod string) string {
		p := filepath.Join(t.TempDir(), "config.json")
		os.WriteFile(p, []byte(`{"data": `+fmt.Sprintf("%q", t.TempDir())+`, "addr": "127.0.0.1:0", "environments": {"tt02": `+tt02+`, "prod": `+prod+`}}`), 0o600)
		return p
	}
	_ = srv
	tests := []struct {
		name       string
		tt02, prod string
		want       []string
	}{
		{"admin file is a directory and another is bad JSON", good(files["dir"]), good(files["badjson"]),
			[]string{"environments.tt02.admin_file", files["dir"] + " is a directory", "environments.prod.admin_file", files["badjson"] + " are not valid JSON"}},
		{"encrypted and unreadable keys", good(files["encrypted"]), good(files["badkey"]),
			[]string{files["encrypted"] + ": private_key_pem: the private key is encrypted", files["badkey"] + ": private_key_pem"}},
		{"no certificate, no scopes", good(files["nocert"]), good(files["noscopes"]),
			[]string{files["nocert"] + " have no certificate_chain_pem", "virksomhetssertifikat", "admin_without_certificate", files["noscopes"] + " list no scopes"}},
		{"ftp and a query", env(files["good"], "ftp://maskinporten.no/", base.SelfServiceURL, base.PlatformURL, ""),
			env(files["good"], base.Issuer, "https://api.samarbeid.digdir.no?x=1", "https://platform.altinn.no#top", ""),
			[]string{`environments.tt02.maskinporten_issuer "ftp://maskinporten.no/" must be an https URL`,
				"environments.prod.selfservice_url", "no query or fragment", "environments.prod.platform_url"}},
		{"no host, plain http off this machine", env(files["good"], "https:///token", base.SelfServiceURL, base.PlatformURL, ""),
			env(files["good"], "http://maskinporten.no/", base.SelfServiceURL, base.PlatformURL, ""),
			[]string{`environments.tt02.maskinporten_issuer "https:///token" has no host`, `environments.prod.maskinporten_issuer "http://maskinporten.no/" must use https`}},
		{"issuer without its trailing slash", env(files["good"], strings.TrimSuffix(base.Issuer, "/"), base.SelfServiceURL, base.PlatformURL, ""), good(files["good"]),
			[]string{"environments.tt02.maskinporten_issuer", "is not the issuer its metadata publishes", "trailing slash included", fmt.Sprintf("configure %q", base.Issuer)}},
		{"selfservice_url with /api/v1", env(files["good"], base.Issuer, "https://api.test.samarbeid.digdir.no/api/v1", base.PlatformURL, ""), good(files["good"]),
			[]string{"environments.tt02.selfservice_url", "ends in /api/v1", "the portal adds /api/v1 itself"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A portal that starts in spite of the mistakes is stopped after a while, so the test
			// reports it instead of hanging.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var out, logs bytes.Buffer
			err := run(ctx, []string{"serve", "--config", config(t, tt.tt02, tt.prod)}, func(string) string { return "" }, strings.NewReader(""), &out, &logs)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error (exit status 2)", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Error("key material in the message")
			}
		})
	}

	// A key-authenticated admin client passes with the setting that says so.
	t.Run("without certificate allowed", func(t *testing.T) {
		t.Parallel()
		c := config(t, env(files["kid"], base.Issuer, base.SelfServiceURL, base.PlatformURL, `, "admin_without_certificate": true`),
			env(files["nocert"], base.Issuer, base.SelfServiceURL, base.PlatformURL, `, "admin_without_certificate": true`))
		fs := newFlagSet("serve", os.Stderr)
		flags := serveFlags(fs)
		if err := parseFlags(fs, []string{"--config", c}); err != nil {
			t.Fatal(err)
		}
		_, err := loadConfig(fs, flags, func(string) string { return "" })
		// tt02's key carries its kid; prod's PEM key has none, so nothing would name the key.
		if err == nil || strings.Contains(err.Error(), "environments.tt02") || !strings.Contains(err.Error(), "environments.prod.admin_file") ||
			!strings.Contains(err.Error(), "neither a certificate_chain_pem nor a kid") {
			t.Fatalf("want only prod refused, for its missing kid: %v", err)
		}
	})
}

// TestRealEnvironmentChainInAnyOrder points a real environment at the simulators with an admin
// file whose certificate chain has the CA first, as some exports do: the admin client still
// gets its token and reads the self-service API.
func TestRealEnvironmentChainInAnyOrder(t *testing.T) {
	_, _, cfg := simulatedConfig(t)
	a, err := readAdminFile(cfg.dataPath("sim-tt02-admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCertificates([]byte(a.CertChainPEM))
	if err != nil || len(certs) != 2 {
		t.Fatalf("simulator chain: %d certificates, %v", len(certs), err)
	}
	blocks := strings.SplitAfter(strings.TrimSpace(a.CertChainPEM), "-----END CERTIFICATE-----")
	a.CertChainPEM = strings.TrimSpace(blocks[1]) + "\n" + strings.TrimSpace(blocks[0]) + "\n"
	b, _ := json.Marshal(a)
	path := filepath.Join(t.TempDir(), "admin.json")
	os.WriteFile(path, b, 0o600)
	cfg.Envs["tt02"] = EnvConfig{Label: "Test", Issuer: a.Issuer, SelfServiceURL: a.SelfServiceURL, PlatformURL: a.PlatformURL, AdminFile: path}
	if p := cfg.validate(); len(p) > 0 {
		t.Fatalf("refused: %v", p)
	}
	ups, problems := upstreamClients(cfg, envViews(cfg), nil, nil)
	h := &envHealth{clients: ups, problems: problems}
	checks := h.Check(t.Context(), "tt02")
	if len(checks) < 3 {
		t.Fatalf("checks %+v", checks)
	}
	for _, c := range checks[:3] {
		if !c.OK {
			t.Errorf("%s failed: %s", c.Name, c.Detail)
		}
	}
}

// TestStartWarnings: retired hosts are named with their successors, and an admin file that
// disagrees with the configuration is named with both values and which one is used.
func TestStartWarnings(t *testing.T) {
	dir := t.TempDir()
	admin := filepath.Join(dir, "admin.json")
	b, _ := json.Marshal(adminFile{Issuer: "https://test.maskinporten.no/", SelfServiceURL: "https://api.test.samarbeid.digdir.no",
		PlatformURL: "https://platform.tt02.altinn.no", Org: "abc", OrgNo: "999888777", ClientID: "c", PrivateKeyPEM: "x"})
	os.WriteFile(admin, b, 0o600)
	tests := []struct {
		name string
		env  EnvConfig
		want []string
		not  []string
	}{
		{"retired hosts", EnvConfig{Issuer: "https://ver2.maskinporten.no/", SelfServiceURL: "https://integrasjon-ver2.difi.no",
			PlatformURL: "https://platform.tt02.altinn.no", AdminFile: filepath.Join(dir, "none.json")},
			[]string{`maskinporten_issuer "https://ver2.maskinporten.no/" names a retired host`, "test.maskinporten.no",
				"integrasjon-ver2.difi.no", "api.test.samarbeid.digdir.no"}, nil},
		{"prod retired", EnvConfig{Issuer: "https://maskinporten.no/", SelfServiceURL: "https://integrasjon.difi.no",
			PlatformURL: "https://platform.altinn.no", AdminFile: filepath.Join(dir, "none.json")},
			[]string{"integrasjon.difi.no", "api.samarbeid.digdir.no"}, []string{"maskinporten_issuer"}},
		{"admin file disagrees", EnvConfig{Issuer: "https://maskinporten.no/", SelfServiceURL: "https://api.test.samarbeid.digdir.no",
			PlatformURL: "https://platform.tt02.altinn.no", AdminFile: admin},
			[]string{`say issuer "https://test.maskinporten.no/" but the configuration's environments.tt02.maskinporten_issuer is "https://maskinporten.no/"`,
				`org "abc" but the configuration's org_code is "ttd"`, `orgno "999888777" but the configuration's org_number is "313554430"`,
				"the configuration's value is used"}, []string{"selfservice_url", "platform_url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			cfg.Envs = map[string]EnvConfig{"tt02": tt.env}
			got := strings.Join(startWarnings(cfg), "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("warnings lack %q:\n%s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("warnings name %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestLiveCheckComparesTheIssuer: an issuer configured without its trailing slash differs from
// the one Maskinporten's metadata names; the live check says so, with both values.
func TestLiveCheckComparesTheIssuer(t *testing.T) {
	_, _, cfg := simulatedConfig(t)
	path := cfg.dataPath("sim-tt02-admin.json")
	a, err := readAdminFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		issuer string
		ok     bool
	}{
		{a.Issuer, true},
		{strings.TrimSuffix(a.Issuer, "/"), false},
	} {
		cfg.Envs["tt02"] = EnvConfig{Label: "Test", Issuer: tt.issuer, SelfServiceURL: a.SelfServiceURL, PlatformURL: a.PlatformURL, AdminFile: path}
		ups, problems := upstreamClients(cfg, envViews(cfg), nil, nil)
		h := &envHealth{clients: ups, problems: problems}
		c := h.Check(t.Context(), "tt02")[0]
		if c.Name != "Maskinporten metadata" || c.OK != tt.ok {
			t.Fatalf("issuer %q: %+v", tt.issuer, c)
		}
		if !tt.ok && (!strings.Contains(c.Detail, fmt.Sprintf("%q", a.Issuer)) || !strings.Contains(c.Detail, fmt.Sprintf("%q", tt.issuer))) {
			t.Errorf("the detail lacks both issuers: %s", c.Detail)
		}
	}
}
