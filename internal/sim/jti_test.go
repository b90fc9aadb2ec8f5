package sim

import "testing"

func TestJTILedger(t *testing.T) {
	l := jtiLedger{seen: map[jtiKey]int64{}}
	a := jtiKey{env: "tt02", client: "c", jti: "1"}
	steps := []struct {
		name      string
		key       jtiKey
		until     int64
		now       int64
		wantFresh bool
	}{
		{"first use", a, 130, 0, true},
		{"replay", a, 140, 10, false},
		{"replay at the edge", a, 140, 130, false},
		{"other environment", jtiKey{env: "prod", client: "c", jti: "1"}, 130, 10, true},
		{"other client", jtiKey{env: "tt02", client: "d", jti: "1"}, 130, 10, true},
		{"after it is forgotten", a, 300, 131, true},
	}
	for _, s := range steps {
		if got := l.use(s.key, s.until, s.now); got != s.wantFresh {
			t.Fatalf("%s: fresh = %v", s.name, got)
		}
	}
	if len(l.pending) != 4 {
		t.Fatalf("pending = %d, want 4 writes", len(l.pending))
	}
	l.prune("tt02", 1000)
	if len(l.seen) != 1 {
		t.Fatalf("after pruning tt02: %d remembered", len(l.seen))
	}
}
