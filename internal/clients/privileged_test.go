package clients_test

import (
	"slices"
	"testing"

	"portal/internal/clients"
	"portal/internal/problem"
)

// TestPrivilegedScopePolicy: the defaults and an environment's configured privileged scopes
// (exact or prefix) are refused to people who are not administrators, and not offered to them.
func TestPrivilegedScopePolicy(t *testing.T) {
	w := newWorld(t, worldOptions{privileged: []string{"altinn:serviceowner/instances.w*"}})
	read, write := clients.AltinnServiceOwnerScopes[0], clients.AltinnServiceOwnerScopes[1]
	cases := []struct {
		scope      string
		privileged bool
	}{
		{"idporten:dcr.write", true},      // default, prefix
		{"idporten:dcr.read", true},       // default, prefix
		{"idporten:scopes.write", true},   // default, prefix
		{write, true},                     // configured prefix
		{read, false},                     // not privileged
		{"idporten:dcrx-unrelated", true}, // a prefix is a prefix
		{"xidporten:dcr.write", false},    // but only at the start
	}
	for _, tc := range cases {
		t.Run(tc.scope, func(t *testing.T) {
			_, err := w.svc.Create(t.Context(), w.memberA, meta(w.memberA), "tt02", draft("Try "+tc.scope, w.teamA, read, tc.scope))
			if got := problem.KindOf(err) == problem.KindForbidden; got != tc.privileged {
				t.Errorf("member's create: %v, want forbidden %v", err, tc.privileged)
			}
		})
	}
	offered := func(f clients.Form) []string {
		var out []string
		for _, sc := range f.Scopes {
			if sc.Privileged {
				out = append(out, "!"+sc.Name)
			} else {
				out = append(out, sc.Name)
			}
		}
		return out
	}
	mf, err := w.svc.NewForm(t.Context(), w.memberA, "tt02")
	if err != nil {
		t.Fatal(err)
	}
	if got := offered(mf); slices.Contains(got, write) || slices.Contains(got, "idporten:dcr.write") || !slices.Contains(got, read) {
		t.Errorf("the member is offered %v", got)
	}
	af, err := w.svc.NewForm(t.Context(), w.admin, "tt02")
	if err != nil {
		t.Fatal(err)
	}
	if got := offered(af); !slices.Contains(got, "!"+write) || !slices.Contains(got, "!idporten:dcr.write") || !slices.Contains(got, read) {
		t.Errorf("the administrator is offered %v", got)
	}
	if _, err := w.svc.Create(t.Context(), w.admin, meta(w.admin), "tt02", draft("Admin's", w.teamA, read, write)); err != nil {
		t.Errorf("the administrator's create: %v", err)
	}
}
