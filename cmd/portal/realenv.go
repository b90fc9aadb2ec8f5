package main

import (
	"fmt"
	"net/url"
	"strings"
)

// retiredHosts are upstream hosts Digdir has retired, with what replaced them.
var retiredHosts = map[string]string{
	"integrasjon.difi.no":      "api.samarbeid.digdir.no (the self-service API in production)",
	"integrasjon-ver2.difi.no": "api.test.samarbeid.digdir.no (the self-service API in test)",
	"ver2.maskinporten.no":     "test.maskinporten.no (Maskinporten's test environment, paired with tt02)",
	"oidc-ver2.difi.no":        "test.maskinporten.no (Maskinporten's test environment, paired with tt02)",
	"oidc.difi.no":             "maskinporten.no (Maskinporten in production)",
}

// startWarnings are configuration facts an operator should know at start but that do not stop
// the portal: retired hosts, and values of a real environment's admin file that differ from
// the configuration (the configuration's value is used; the admin file's is ignored).
func startWarnings(cfg Config) []string {
	var out []string
	for _, name := range EnvNames {
		e, ok := cfg.Envs[name]
		if !ok || e.Simulated() {
			continue
		}
		for _, f := range []struct{ key, v string }{{"maskinporten_issuer", e.Issuer}, {"selfservice_url", e.SelfServiceURL}, {"platform_url", e.PlatformURL}} {
			u, err := url.Parse(f.v)
			if err != nil {
				continue
			}
			if now, ok := retiredHosts[strings.ToLower(u.Hostname())]; ok {
				out = append(out, fmt.Sprintf("environments.%s.%s %q names a retired host, %s: Digdir's current one is %s", name, f.key, f.v, u.Hostname(), now))
			}
		}
		if e.AdminFile == "" {
			continue
		}
		a, err := readAdminFile(e.AdminFile)
		if err != nil {
			continue // validation has refused it already
		}
		for _, d := range []struct{ fileKey, cfgKey, file, cfg string }{
			{"issuer", "environments." + name + ".maskinporten_issuer", a.Issuer, e.Issuer},
			{"selfservice_url", "environments." + name + ".selfservice_url", a.SelfServiceURL, e.SelfServiceURL},
			{"platform_url", "environments." + name + ".platform_url", a.PlatformURL, e.PlatformURL},
			{"org", "org_code", a.Org, cfg.OrgCode},
			{"orgno", "org_number", a.OrgNo, cfg.OrgNo},
		} {
			if d.file != "" && d.file != d.cfg {
				out = append(out, fmt.Sprintf("admin credentials %s say %s %q but the configuration's %s is %q: the configuration's value is used",
					e.AdminFile, d.fileKey, d.file, d.cfgKey, d.cfg))
			}
		}
	}
	return out
}
