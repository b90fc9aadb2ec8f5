package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzConfigFile feeds arbitrary config files to the reader and the validation that follows it
// at start: neither may panic, a refusal names the file, and no message carries a secret given
// in the file.
func FuzzConfigFile(f *testing.F) {
	f.Add(`{"addr":"127.0.0.1:8080","data":"./data","org_number":"313554430"}`)
	f.Add(`{"environments":{"tt02":{"simulated":false,"maskinporten_issuer":"https://test.maskinporten.no/","admin_file":"/nope"}}}`)
	f.Add(`{"environments":{"prod":{"key_custody":[]},"dev":{}}}`)
	f.Add(`{"sync_interval":"1s","sync_concurrency":0,"session_idle_timeout":"-1h","trusted_proxies":["10.0.0.0/8","x"]}`)
	f.Add(`{"metrics_token":"short","smtp_host":"mail","smtp_port":99999,"webhook_url":"ftp://x"}`)
	f.Add(`{"addr":8080}`)
	f.Add(`{"addr":"127.0.0.1:8080",}`)
	f.Add("")
	f.Add("\xff\xfe{")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(dir, "portal.json")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := defaultConfig()
		if err := readConfigFile(path, &cfg); err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("refusal does not name the file: %v", err)
			}
			return
		}
		for _, p := range cfg.validate() {
			if p == "" || !utf8.ValidString(p) && utf8.ValidString(data) {
				t.Fatalf("unclear validation message %q", p)
			}
			if cfg.MetricsToken != "" && len(cfg.MetricsToken) >= 8 && strings.Contains(p, cfg.MetricsToken) {
				t.Fatalf("message carries the metrics token: %q", p)
			}
		}
	})
}
