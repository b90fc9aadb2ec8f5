package clients_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/sim"
	"portal/internal/store"
)

// clientJWK is the i-th client key of the pool (0..5) as JWK JSON, as a person would upload it.
func clientJWK(t *testing.T, i int, kid string) []byte {
	t.Helper()
	k := pool(t)[8+i]
	b, err := json.Marshal(map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// change is a key change from a page showing the client's current key set.
func (w *world) change(t *testing.T, env, id string) clients.KeyChange {
	t.Helper()
	ks, err := w.svc.Keys(t.Context(), w.admin, env, id)
	if err != nil {
		t.Fatal(err)
	}
	return clients.KeyChange{Version: ks.Version, Key: clients.NewKey()}
}

func upstreamKids(t *testing.T, w *world, env, id string) []string {
	t.Helper()
	set, err := w.mp[env].GetJWKS(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}

func TestKeySetRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.create(t, w.ownerA, "tt02", draft("Five keys", w.teamA, preset...))

	for i := range clients.MaxKeys {
		kid := "k" + string(rune('1'+i))
		if _, err := w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, i, kid)}, w.change(t, "tt02", id)); err != nil {
			t.Fatalf("upload %s: %v", kid, err)
		}
	}
	if got := upstreamKids(t, w, "tt02", id); !slices.Equal(got, []string{"k1", "k2", "k3", "k4", "k5"}) {
		t.Fatalf("upstream kids %v", got)
	}
	// A sixth key, a taken kid and the same key again are refused before anything is sent.
	_, err := w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, 5, "k6")}, w.change(t, "tt02", id))
	wantKind(t, err, problem.KindInvalid)
	if err := w.svc.DeleteKey(ctx, w.memberA, meta(w.memberA), "tt02", id, "k5", "", w.change(t, "tt02", id)); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, 5, "k1")}, w.change(t, "tt02", id))
	wantField(t, err, "kid")
	_, err = w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, 0, "k1-again")}, w.change(t, "tt02", id))
	wantKind(t, err, problem.KindInvalid)

	// A page showing an older key set cannot change it.
	old := w.change(t, "tt02", id)
	if err := w.svc.DeleteKey(ctx, w.memberA, meta(w.memberA), "tt02", id, "k4", "", w.change(t, "tt02", id)); err != nil {
		t.Fatal(err)
	}
	wantKind(t, w.svc.DeleteKey(ctx, w.memberA, meta(w.memberA), "tt02", id, "k2", "", old), problem.KindConflict)
	if got := upstreamKids(t, w, "tt02", id); len(got) != 3 {
		t.Fatalf("a stale delete changed the set: %v", got)
	}
	if err := w.svc.RenewKey(ctx, w.memberA, meta(w.memberA), "tt02", id, "k1", w.change(t, "tt02", id)); err != nil {
		t.Fatal(err)
	}

	// Viewers and outsiders cannot change keys.
	wantKind(t, w.svc.RenewKey(ctx, w.viewerA, meta(w.viewerA), "tt02", id, "k1", w.change(t, "tt02", id)), problem.KindForbidden)
	wantKind(t, w.svc.RenewKey(ctx, w.memberB, meta(w.memberB), "tt02", id, "k1", w.change(t, "tt02", id)), problem.KindNotFound)

	// Renewing gives a key a year from now; every change is audited with the kids, and the
	// portal's own changes are not drift.
	set, _ := w.mp["tt02"].GetJWKS(ctx, id)
	for _, k := range set.Keys {
		if k.Kid == "k1" && time.Until(k.Expires()) < 360*24*time.Hour {
			t.Errorf("renewed key expires %v", k.Expires())
		}
	}
	ev := w.event(t, "tt02", id, "key.renew", audit.Success)
	var d struct {
		Before []string `json:"kids_before"`
		After  []string `json:"kids_after"`
	}
	if json.Unmarshal(ev.Details, &d) != nil || len(d.Before) != 3 || len(d.After) != 3 {
		t.Errorf("renew event details %s", ev.Details)
	}
	w.syncOK(t, "tt02")
	if row := w.row(t, "tt02", id); row.Drift != "" || row.KeyCount != 3 {
		t.Errorf("after sync: drift %q, %d keys", row.Drift, row.KeyCount)
	}
}

func TestKeyChangeWithLostAnswerIsSettledBySync(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.create(t, w.ownerA, "tt02", draft("Lost keys", w.teamA, preset...))
	gate := make(chan struct{}) // the sync the failure starts waits until the checks below are done
	w.up["tt02"].set(func(h *hooked) {
		h.listGate = gate
		h.afterKeys = func(out *maskinporten.JWKS, err error) (*maskinporten.JWKS, error) {
			return nil, context.DeadlineExceeded // Digdir took the key, the answer never came
		}
	})
	ch := w.change(t, "tt02", id)
	_, err := w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, 0, "lost")}, ch)
	wantKind(t, err, problem.KindUpstream)
	if row := w.row(t, "tt02", id); row.KeyCount != 0 {
		t.Fatalf("the mirror took a change whose outcome is unknown: %d keys", row.KeyCount)
	}
	if in := w.intent(t, "tt02", ch.Key); in.State != store.IntentOpen {
		t.Fatalf("intent %s", in.State)
	}
	close(gate)
	w.up["tt02"].set(func(h *hooked) { h.afterKeys, h.listGate = nil, nil })
	w.syncOK(t, "tt02")
	row := w.row(t, "tt02", id)
	if row.KeyCount != 1 || row.Drift != "" {
		t.Fatalf("after sync: %d keys, drift %q", row.KeyCount, row.Drift)
	}
	if in := w.intent(t, "tt02", ch.Key); in.State != store.IntentDone {
		t.Fatalf("intent after sync %s", in.State)
	}
}

func TestKeyChangeUnderFaultsChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{timeout: 2 * time.Second})
	ctx := t.Context()
	id := w.create(t, w.ownerA, "tt02", draft("Faulty keys", w.teamA, preset...))
	ch := w.change(t, "tt02", id)
	gate := make(chan struct{}) // the sync the failure starts waits until the checks below are done
	w.up["tt02"].set(func(h *hooked) {
		h.listGate = gate
		h.beforeWrite = func(op string) {
			if op == "keys" {
				if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{ErrorRate: 1, ErrorStatus: 500}); err != nil {
					t.Error(err)
				}
			}
		}
	})
	_, err := w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, 1, "refused")}, ch)
	wantKind(t, err, problem.KindUpstream)
	if err := w.sim.SetFaults("tt02", sim.UpstreamSelfService, sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if row := w.row(t, "tt02", id); row.KeyCount != 0 {
		t.Fatalf("mirror changed: %d keys", row.KeyCount)
	}
	if got := upstreamKids(t, w, "tt02", id); len(got) != 0 {
		t.Fatalf("upstream changed: %v", got)
	}
	// A 5xx leaves the outcome unknown: the intent waits for a sync to settle it.
	if in := w.intent(t, "tt02", ch.Key); in.State != store.IntentOpen {
		t.Fatalf("intent %s after a 5xx", in.State)
	}
	close(gate)
	w.up["tt02"].set(func(h *hooked) { h.listGate = nil })
	w.syncOK(t, "tt02")
	if row := w.row(t, "tt02", id); row.KeyCount != 0 || row.Drift != "" {
		t.Fatalf("after sync: %d keys, drift %q", row.KeyCount, row.Drift)
	}
}

// TestKeptKeyWithLostAnswerKeepsItsPrivateHalf: a kept key that Digdir took, whose answer
// never came, is adopted by the next sync with its sealed private half, so the portal can still
// sign with it; one Digdir refused leaves no record behind.
func TestKeptKeyWithLostAnswerKeepsItsPrivateHalf(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	r := w.rotator(t, newKEK(t), time.Second, time.Minute)
	ctx := t.Context()
	id := w.create(t, w.ownerA, "tt02", draft("Lost kept key", w.teamA, preset...))
	generate := func(kid string) string {
		job, err := r.svc.StartKeyGeneration(ctx, w.memberA, "tt02", id, clients.NewKeyRequest{KID: kid, Bits: 2048, Alg: "RS256", Custody: clients.CustodyKept})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.gen.Wait(ctx, keys.JobID(job)); err != nil {
			t.Fatal(err)
		}
		return job
	}

	gate := make(chan struct{}) // the sync the failure starts waits until the checks below are done
	w.up["tt02"].set(func(h *hooked) {
		h.listGate = gate
		h.afterKeys = func(out *maskinporten.JWKS, err error) (*maskinporten.JWKS, error) {
			return nil, context.DeadlineExceeded // Digdir took the key, the answer never came
		}
	})
	_, err := r.svc.AddGeneratedKey(ctx, w.memberA, meta(w.memberA), "tt02", id, generate("lost-kept"), w.change(t, "tt02", id))
	wantKind(t, err, problem.KindUpstream)
	close(gate)
	w.up["tt02"].set(func(h *hooked) { h.afterKeys, h.listGate = nil, nil })
	w.syncOK(t, "tt02")
	ks, err := r.svc.Keys(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Keys) != 1 || ks.Keys[0].KID != "lost-kept" || ks.Keys[0].Custody != clients.CustodyKept {
		t.Fatalf("after the sync: %+v", ks.Keys)
	}
	if _, err := r.svc.KeptKey(ctx, w.memberA, "tt02", id, "lost-kept"); err != nil {
		t.Fatalf("the adopted key's private half: %v", err)
	}

	// A refusal (Digdir answers 4xx) leaves neither the key nor its record.
	w.up["tt02"].set(func(h *hooked) {
		h.afterKeys = func(out *maskinporten.JWKS, err error) (*maskinporten.JWKS, error) {
			return nil, &maskinporten.APIError{Status: http.StatusBadRequest}
		}
	})
	_, err = r.svc.AddGeneratedKey(ctx, w.memberA, meta(w.memberA), "tt02", id, generate("refused-kept"), w.change(t, "tt02", id))
	if err == nil {
		t.Fatal("a refused key was added")
	}
	w.up["tt02"].set(func(h *hooked) { h.afterKeys = nil })
	if _, err := r.svc.KeptKey(ctx, w.memberA, "tt02", id, "refused-kept"); err == nil {
		t.Fatal("a refused key's private half is still kept")
	}
	var n int
	if err := w.db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM integration_keys WHERE kid = 'refused-kept'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d records of the refused key (%v)", n, err)
	}
}

// jwkWith is the i-th pool key as JWK JSON with the given alg and use ("" leaves a member out).
func jwkWith(t *testing.T, i int, kid, alg, use string) []byte {
	t.Helper()
	k := pool(t)[8+i]
	m := map[string]string{"kty": "RSA", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
	if alg != "" {
		m["alg"] = alg
	}
	if use != "" {
		m["use"] = use
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyAlgorithms: RS256 is the only algorithm offered unless the environment allows RS384
// and RS512 (then with the caveat), for generated and uploaded keys alike; every key reaches
// Digdir with use "sig", which the simulator demands.
func TestKeyAlgorithms(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{allowRS384RS512: []string{"tt02"}})
	r := w.rotator(t, newKEK(t), time.Second, time.Minute)
	ctx := t.Context()
	ids := map[string]string{}
	for _, env := range []string{"tt02", "prod"} {
		ids[env] = w.create(t, w.ownerA, env, draft("Algorithms", w.teamA, preset...))
	}
	for _, tt := range []struct {
		env     string
		algs    []string
		caveat  bool
		allowed bool
	}{
		{"prod", []string{"RS256"}, false, false},
		{"tt02", []string{"RS256", "RS384", "RS512"}, true, true},
	} {
		t.Run(tt.env, func(t *testing.T) {
			id := ids[tt.env]
			ks, err := w.svc.Keys(ctx, w.memberA, tt.env, id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ks.Algs, tt.algs) || (ks.AlgCaveat != "") != tt.caveat {
				t.Errorf("offered %v, caveat %q", ks.Algs, ks.AlgCaveat)
			}
			for _, alg := range []string{"RS384", "RS512"} {
				_, err := r.svc.StartKeyGeneration(ctx, w.memberA, tt.env, id, clients.NewKeyRequest{KID: "gen-" + alg, Bits: 2048, Alg: alg, Custody: clients.CustodyHandedOut})
				pe, _ := problem.As(err)
				refusedAlg := pe != nil && strings.Contains(pe.Fields["alg"], "Only RS256")
				if refusedAlg == tt.allowed {
					t.Errorf("generate %s: %v (fields %v)", alg, err, pe)
				}
			}
			// An uploaded key naming RS512, and one naming no use.
			_, err = w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), tt.env, id,
				clients.UploadRequest{Data: jwkWith(t, 0, "up-rs512-"+tt.env, "RS512", "sig")}, w.change(t, tt.env, id))
			if pe, _ := problem.As(err); (err == nil) != tt.allowed || (!tt.allowed && (pe == nil || !strings.Contains(pe.Fields["alg"], "RS512"))) {
				t.Errorf("upload RS512: %v", err)
			}
			if _, err := w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), tt.env, id,
				clients.UploadRequest{Data: jwkWith(t, 1, "up-nouse-"+tt.env, "", "")}, w.change(t, tt.env, id)); err != nil {
				t.Fatalf("upload without alg and use: %v", err)
			}
			set, err := w.mp[tt.env].GetJWKS(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range set.Keys {
				if k.Use != "sig" {
					t.Errorf("key %s reached Digdir with use %q", k.Kid, k.Use)
				}
				if k.Kid == "up-nouse-"+tt.env && k.Alg != "RS256" {
					t.Errorf("key without alg reached Digdir as %q, want RS256", k.Alg)
				}
			}
		})
	}
	// Every key set posted carried use "sig" on every key.
	for _, s := range w.sent.all() {
		if !strings.HasSuffix(s.Path, "/jwks") {
			continue
		}
		ks, _ := s.Body["keys"].([]any)
		for _, k := range ks {
			if m, _ := k.(map[string]any); m["use"] != "sig" {
				t.Errorf("posted key without use sig: %v", m)
			}
		}
	}
}
