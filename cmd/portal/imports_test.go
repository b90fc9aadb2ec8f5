package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules fails when a package imports what the architecture forbids
// (doc/architecture.md). The table lives here so the repository stands alone.
func TestImportRules(t *testing.T) {
	const mod = "portal/"
	// For each package: the internal packages it may import. Third-party rules follow below.
	allowed := map[string][]string{
		"cmd/portal":            {"*"},
		"web":                   {"internal/auth", "internal/clients", "internal/keys", "internal/tryit", "internal/identity", "internal/audit", "internal/problem", "internal/metrics", "internal/mfa", "templates", "static"},
		"templates":             {},
		"static":                {},
		"db":                    {},
		"internal/problem":      {},
		"internal/store":        {"db"},
		"internal/audit":        {"internal/store"},
		"internal/auth":         {"internal/store", "internal/audit", "internal/problem"},
		"internal/mfa":          {"internal/store", "internal/audit", "internal/auth", "internal/keys", "internal/problem"},
		"internal/clients":      {"internal/store", "internal/audit", "internal/auth", "internal/keys", "internal/maskinporten", "internal/problem"},
		"internal/tryit":        {"internal/clients", "internal/auth", "internal/keys", "internal/audit", "internal/maskinporten", "internal/altinn", "internal/problem"},
		"internal/identity":     {"internal/store", "internal/audit", "internal/auth", "internal/problem"},
		"internal/keys":         {},
		"internal/notify":       {},
		"internal/calltrace":    {},
		"internal/metrics":      {},
		"internal/breaker":      {},
		"internal/maskinporten": {"internal/calltrace", "internal/breaker"},
		"internal/altinn":       {"internal/calltrace", "internal/breaker"},
		"internal/sim":          {"internal/sim/platform"},
		"internal/sim/platform": {},
	}
	// Frameworks stay at the edge: echo only in web and cmd/portal, templ only in templates and web.
	thirdParty := map[string][]string{
		"github.com/labstack/echo": {"web", "cmd/portal"},
		"github.com/a-h/templ":     {"templates", "web"},
	}
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "portal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, mod)
		if p.ImportPath == "portal" {
			name = ""
		}
		rules, known := allowed[name]
		if strings.HasPrefix(name, "bench/") {
			// Load generators drive the portal from outside, through its clients only.
			rules, known = []string{"bench/benchutil", "internal/maskinporten", "internal/altinn", "internal/keys", "internal/calltrace"}, true
			if name == "bench/load" {
				// It also seeds the data directory before the portal starts, as the portal would.
				rules = append(rules, "internal/store", "internal/audit", "internal/auth", "internal/clients", "internal/sim")
			}
		}
		if !known {
			t.Errorf("package %s is not in the import table: add it with its allowed imports", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, mod) {
				target := strings.TrimPrefix(imp, mod)
				if !contains(rules, "*") && !contains(rules, target) {
					t.Errorf("%s imports %s, which it may not", name, target)
				}
				continue
			}
			for prefix, who := range thirdParty {
				if strings.HasPrefix(imp, prefix) && !contains(who, name) {
					t.Errorf("%s imports %s, which only %v may", name, imp, who)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
