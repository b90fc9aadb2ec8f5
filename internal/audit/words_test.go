package audit_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"portal/internal/audit"
)

// actionCode matches the action codes the portal records: a known first word, a dot, more.
var actionCode = regexp.MustCompile(`"((?:setup|auth|user|team|invitation|audit|integration|key|keys)\.[a-z_]+(?:\.[a-z_]+)*)"`)

// TestEveryActionHasWords scans the portal's sources for action codes and fails on any the
// audit trail would show as a bare code.
func TestEveryActionHasWords(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, a := range audit.Actions() {
		known[a] = true
	}
	root := filepath.Join("..", "..")
	found := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "sim", "bench", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "_templ.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range actionCode.FindAllStringSubmatch(string(b), -1) {
			found++
			if !known[m[1]] {
				t.Errorf("%s: action %q has no words in audit.actionWords", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 20 {
		t.Fatalf("found only %d action codes: the scan is looking in the wrong place", found)
	}
	for _, a := range audit.Actions() {
		if audit.Words(a) == a || audit.Words(a) == "" {
			t.Errorf("%s has no words", a)
		}
	}
}
