package clients_test

// Key rotation against the simulators: a kept key proved by the portal, a failed proof that
// stops the flow, resuming with a re-created service, the browser-signed proof, the rules and
// who may rotate.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/sim"
)

// rotator is a service over the world's database and upstreams that can keep and generate
// keys, with a fast proof schedule.
type rotator struct {
	svc *clients.Service
	gen *keys.Generator
}

func newKEK(t *testing.T) *keys.KEK {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	kek, err := keys.NewKEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

func (w *world) rotator(t *testing.T, kek *keys.KEK, interval, window time.Duration) rotator {
	t.Helper()
	gen := keys.NewGenerator(keys.GeneratorConfig{})
	t.Cleanup(gen.Close)
	svc, err := clients.New(w.db, w.envs, clients.Options{KEK: kek, Generator: gen, ProofInterval: interval, ProofWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return rotator{svc: svc, gen: gen}
}

// uploadKey adds the i-th pool key (0..5) to a client as kid.
func (w *world) uploadKey(t *testing.T, env, id string, i int, kid string) {
	t.Helper()
	_, err := w.svc.UploadKey(t.Context(), w.ownerA, meta(w.ownerA), env, id, clients.UploadRequest{Data: clientJWK(t, i, kid)}, w.change(t, env, id))
	if err != nil {
		t.Fatalf("upload %s: %v", kid, err)
	}
}

// addKeptKey generates a kept key as the rotation's new key.
func (w *world) addKeptKey(t *testing.T, r rotator, p *auth.Principal, env, id, kid string) {
	t.Helper()
	ctx := t.Context()
	job, err := r.svc.StartKeyGeneration(ctx, p, env, id, clients.NewKeyRequest{KID: kid, Bits: 2048, Alg: "RS256", Custody: clients.CustodyKept})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.gen.Wait(ctx, keys.JobID(job)); err != nil {
		t.Fatal(err)
	}
	added, err := r.svc.RotationGenerated(ctx, p, meta(p), env, id, job, w.change(t, env, id))
	if err != nil {
		t.Fatalf("add generated key: %v", err)
	}
	if added.KID != kid || added.Private != nil {
		t.Fatalf("added %+v", added)
	}
}

// awaitProof waits until no proof runs and returns the rotation.
func awaitProof(t *testing.T, svc *clients.Service, p *auth.Principal, env, id string) clients.Rotation {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := svc.RotationProof(t.Context(), p, env, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Proof.State != clients.ProofRunning {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proof still runs: %+v", r.Proof)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rotationEvents(t *testing.T, w *world, id string) map[string][]audit.Event {
	t.Helper()
	evs, err := audit.NewLog(w.db, nil).ForTarget(t.Context(), "tt02", id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]audit.Event{}
	for _, ev := range evs {
		out[ev.Action] = append(out[ev.Action], ev)
		d := string(ev.Details)
		if strings.Contains(d, "PRIVATE") || strings.Contains(d, `"d":`) || strings.Contains(d, "eyJ") {
			t.Errorf("audit event %s holds key material, a grant or a token: %s", ev.Action, d)
		}
	}
	return out
}

func TestRotationWithKeptKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	r := w.rotator(t, newKEK(t), 20*time.Millisecond, 5*time.Second)
	id := w.create(t, w.ownerA, "tt02", draft("Rotated", w.teamA, preset...))
	w.uploadKey(t, "tt02", id, 0, "old-1")
	w.uploadKey(t, "tt02", id, 1, "other-1")

	v, err := r.svc.Rotation(ctx, w.memberA, "tt02", id)
	if err != nil || v.Rotation != nil || len(v.Keys.Keys) != 2 {
		t.Fatalf("before starting: %+v, %v", v.Rotation, err)
	}
	rot, err := r.svc.StartRotation(ctx, w.memberA, meta(w.memberA), "tt02", id, "old-1")
	if err != nil || rot.State != clients.RotationStarted || rot.OldKID != "old-1" {
		t.Fatalf("start: %+v, %v", rot, err)
	}
	// Starting the same rotation again finds it; another one is refused while it is open.
	if again, err := r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "old-1"); err != nil || again.ID != rot.ID {
		t.Fatalf("start again: %+v, %v", again, err)
	}
	_, err = r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "other-1")
	wantKind(t, err, problem.KindConflict)
	// Nothing can be proved, switched or retired before a new key is added.
	_, err = r.svc.ProveRotation(ctx, w.memberA, meta(w.memberA), "tt02", id)
	wantKind(t, err, problem.KindConflict)
	err = r.svc.ConfirmRotationSwitch(ctx, w.memberA, meta(w.memberA), "tt02", id)
	wantKind(t, err, problem.KindConflict)

	w.addKeptKey(t, r, w.memberA, "tt02", id, "new-1")
	v, err = r.svc.Rotation(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation.State != clients.RotationAdded || v.Rotation.NewKID != "new-1" || v.ProofBy != clients.ProofByPortal || v.Grant != nil {
		t.Fatalf("after adding: %+v by %s", v.Rotation, v.ProofBy)
	}
	if got := upstreamKids(t, w, "tt02", id); !slices.Equal(got, []string{"new-1", "old-1", "other-1"}) {
		t.Fatalf("kids after adding: %v", got)
	}
	// The switch and the retirement wait for the proof.
	err = r.svc.ConfirmRotationSwitch(ctx, w.memberA, meta(w.memberA), "tt02", id)
	wantKind(t, err, problem.KindConflict)
	_, err = r.svc.RetireRotation(ctx, w.memberA, meta(w.memberA), "tt02", id, "", w.change(t, "tt02", id))
	wantKind(t, err, problem.KindConflict)

	if rot, err = r.svc.ProveRotation(ctx, w.memberA, meta(w.memberA), "tt02", id); err != nil {
		t.Fatal(err)
	}
	rot = awaitProof(t, r.svc, w.memberA, "tt02", id)
	if rot.State != clients.RotationProved || rot.Proof.State != clients.ProofOK || rot.Proof.Attempts != 1 ||
		rot.Proof.How != clients.ProofByPortal || !strings.Contains(rot.Proof.Result, "issued a token") {
		t.Fatalf("after the proof: %+v", rot)
	}
	v, err = r.svc.Rotation(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	st := v.Settings
	if st.ClientID != id || st.KID != "new-1" || st.Alg != "RS256" || st.Issuer != w.mp["tt02"].Issuer() ||
		st.TokenEndpoint != w.mp["tt02"].TokenEndpoint() || !slices.Equal(st.Scopes, preset) {
		t.Fatalf("switch settings: %+v", st)
	}
	if err := r.svc.ConfirmRotationSwitch(ctx, w.memberA, meta(w.memberA), "tt02", id); err != nil {
		t.Fatal(err)
	}
	done, err := r.svc.RetireRotation(ctx, w.memberA, meta(w.memberA), "tt02", id, "", w.change(t, "tt02", id))
	if err != nil || done.State != clients.RotationDone || done.OldKID != "old-1" || done.NewKID != "new-1" {
		t.Fatalf("retire: %+v, %v", done, err)
	}
	if got := upstreamKids(t, w, "tt02", id); !slices.Equal(got, []string{"new-1", "other-1"}) {
		t.Fatalf("kids after retiring: %v", got)
	}
	if v, err = r.svc.Rotation(ctx, w.memberA, "tt02", id); err != nil || v.Rotation != nil {
		t.Fatalf("a finished rotation is still open: %+v, %v", v.Rotation, err)
	}
	// The kept key works for systems too: it signs grants Maskinporten accepts.
	key, err := r.svc.KeptKey(ctx, w.memberA, "tt02", id, "new-1")
	if err != nil {
		t.Fatal(err)
	}
	g, err := maskinporten.SignGrant(w.mp["tt02"].Grant(id, preset...), maskinporten.Signer{Key: key, KeyID: "new-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.mp["tt02"].Token(ctx, g); err != nil {
		t.Fatalf("token with the new key: %v", err)
	}

	evs := rotationEvents(t, w, id)
	for _, action := range []string{"key.rotate.start", "key.rotate.add", "key.rotate.prove", "key.rotate.switch", "key.rotate.done", "key.delete"} {
		if len(evs[action]) != 1 || evs[action][0].Outcome != audit.Success {
			t.Errorf("audit %s: %+v", action, evs[action])
		}
	}
}

func TestRotationProofFailureStopsTheFlowAndResumes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	kek := newKEK(t)
	r1 := w.rotator(t, kek, 20*time.Millisecond, 300*time.Millisecond)
	id := w.create(t, w.ownerA, "tt02", draft("Failing proof", w.teamA, preset...))
	w.uploadKey(t, "tt02", id, 0, "old-1")
	if _, err := r1.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "old-1"); err != nil {
		t.Fatal(err)
	}
	w.addKeptKey(t, r1, w.ownerA, "tt02", id, "new-1")

	// Maskinporten fails every token request: the proof retries, then gives up.
	if err := w.sim.SetFaults("tt02", sim.UpstreamMaskinporten, sim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.svc.ProveRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id); err != nil {
		t.Fatal(err)
	}
	rot := awaitProof(t, r1.svc, w.ownerA, "tt02", id)
	if rot.State != clients.RotationAdded || rot.Proof.State != clients.ProofFailed || rot.Proof.Attempts < 2 ||
		!strings.Contains(rot.Proof.Result, "503") || !strings.Contains(rot.Proof.Result, "stopped trying") {
		t.Fatalf("after a failing proof: %+v", rot)
	}
	// Nothing moves on and nothing old is removed.
	err := r1.svc.ConfirmRotationSwitch(ctx, w.ownerA, meta(w.ownerA), "tt02", id)
	wantKind(t, err, problem.KindConflict)
	_, err = r1.svc.RetireRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "", w.change(t, "tt02", id))
	wantKind(t, err, problem.KindConflict)
	if got := upstreamKids(t, w, "tt02", id); !slices.Equal(got, []string{"new-1", "old-1"}) {
		t.Fatalf("kids after the failed proof: %v", got)
	}
	if evs := rotationEvents(t, w, id)["key.rotate.prove"]; len(evs) != 1 || evs[0].Outcome != audit.Failure {
		t.Fatalf("audit of the failed proof: %+v", evs)
	}

	// A proof cut short by a stopping service leaves the rotation as it was.
	r2 := w.rotator(t, kek, 20*time.Millisecond, time.Minute)
	if _, err := r2.svc.ProveRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		rot, err = r2.svc.RotationProof(ctx, w.ownerA, "tt02", id)
		if err != nil {
			t.Fatal(err)
		}
		if rot.Proof.State == clients.ProofRunning && rot.Proof.Attempts >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proof made no attempt: %+v", rot.Proof)
		}
	}
	r1.svc.Close()
	r2.svc.Close()

	// A new service (a restart) resumes the rotation where it stood.
	w.sim.SetFaults("tt02", sim.UpstreamMaskinporten, sim.Faults{})
	r3 := w.rotator(t, kek, 20*time.Millisecond, 5*time.Second)
	v, err := r3.svc.Rotation(ctx, w.memberA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rotation == nil || v.Rotation.State != clients.RotationAdded || v.Rotation.NewKID != "new-1" ||
		v.Rotation.Proof.State != clients.ProofFailed || v.Rotation.Proof.Attempts < 1 {
		t.Fatalf("after a restart: %+v", v.Rotation)
	}
	if _, err := r3.svc.ProveRotation(ctx, w.memberA, meta(w.memberA), "tt02", id); err != nil {
		t.Fatal(err)
	}
	if rot = awaitProof(t, r3.svc, w.memberA, "tt02", id); rot.State != clients.RotationProved {
		t.Fatalf("after proving again: %+v", rot)
	}
	if err := r3.svc.ConfirmRotationSwitch(ctx, w.memberA, meta(w.memberA), "tt02", id); err != nil {
		t.Fatal(err)
	}
	if _, err := r3.svc.RetireRotation(ctx, w.memberA, meta(w.memberA), "tt02", id, "", w.change(t, "tt02", id)); err != nil {
		t.Fatal(err)
	}
	if got := upstreamKids(t, w, "tt02", id); !slices.Equal(got, []string{"new-1"}) {
		t.Fatalf("kids after the rotation: %v", got)
	}
}

// signPrepared signs a prepared grant's header and claims as the in-browser signer does.
func signPrepared(t *testing.T, header, claims string, key *rsa.PrivateKey) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestRotationWithBrowserSignedGrant(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	r := w.rotator(t, newKEK(t), 20*time.Millisecond, time.Second)
	id := w.create(t, w.ownerA, "tt02", draft("Signed elsewhere", w.teamA, preset...))
	w.uploadKey(t, "tt02", id, 0, "old-1")
	if _, err := r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "old-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.RotationUpload(ctx, w.ownerA, meta(w.ownerA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, 1, "new-1")},
		w.change(t, "tt02", id)); err != nil {
		t.Fatal(err)
	}
	newKey, wrongKey := pool(t)[9], pool(t)[10]
	v, err := r.svc.Rotation(ctx, w.ownerA, "tt02", id)
	if err != nil {
		t.Fatal(err)
	}
	if v.ProofBy != clients.ProofByBrowser || v.Grant == nil || v.Grant.N != base64.RawURLEncoding.EncodeToString(newKey.N.Bytes()) {
		t.Fatalf("view: by %s, grant %+v", v.ProofBy, v.Grant)
	}
	var h maskinporten.Header
	var c maskinporten.GrantClaims
	if json.Unmarshal([]byte(v.Grant.Header), &h) != nil || json.Unmarshal([]byte(v.Grant.Claims), &c) != nil {
		t.Fatalf("prepared grant: %s %s", v.Grant.Header, v.Grant.Claims)
	}
	if h.Alg != "RS256" || h.Kid != "new-1" || c.Issuer != id || c.Audience != w.mp["tt02"].Issuer() || c.Expires-c.IssuedAt != 120 ||
		c.JTI == "" || c.Scope != strings.Join(preset, " ") {
		t.Fatalf("prepared grant: %+v %+v", h, c)
	}
	// The portal cannot sign for a key it does not keep.
	_, err = r.svc.ProveRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id)
	wantKind(t, err, problem.KindConflict)

	// Refused before any token request: a private key, another kid, a wrong audience, a wrong key.
	der, _ := x509.MarshalPKCS8PrivateKey(newKey)
	private := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	_, err = r.svc.SubmitRotationGrant(ctx, w.ownerA, meta(w.ownerA), "tt02", id, private)
	if pe := wantKind(t, err, problem.KindInvalid); !strings.Contains(pe.Message, "exposed") || strings.Contains(err.Error(), "PRIVATE") {
		t.Fatalf("private key as grant: %v", err)
	}
	otherKid := strings.Replace(v.Grant.Header, "new-1", "old-1", 1)
	badAud := strings.Replace(v.Grant.Claims, w.mp["tt02"].Issuer(), "https://example.com/", 1)
	for name, g := range map[string]string{
		"other kid":    signPrepared(t, otherKid, v.Grant.Claims, newKey),
		"wrong aud":    signPrepared(t, v.Grant.Header, badAud, newKey),
		"wrong key":    signPrepared(t, v.Grant.Header, v.Grant.Claims, wrongKey),
		"not a grant":  "hello",
		"not base64":   "a.b.c",
		"empty":        "",
		"another iss":  signPrepared(t, v.Grant.Header, strings.Replace(v.Grant.Claims, id, "someone-else", 1), newKey),
		"unsigned alg": signPrepared(t, strings.Replace(v.Grant.Header, "RS256", "none", 1), v.Grant.Claims, newKey),
	} {
		_, err := r.svc.SubmitRotationGrant(ctx, w.ownerA, meta(w.ownerA), "tt02", id, g)
		if pe, ok := problem.As(err); !ok || pe.Kind != problem.KindInvalid || pe.Fields["grant"] == "" {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A failure at Maskinporten asks to sign again; the rotation stays where it was.
	w.sim.SetFaults("tt02", sim.UpstreamMaskinporten, sim.Faults{ErrorRate: 1, ErrorStatus: 503})
	_, err = r.svc.SubmitRotationGrant(ctx, w.ownerA, meta(w.ownerA), "tt02", id, signPrepared(t, v.Grant.Header, v.Grant.Claims, newKey))
	if pe := wantKind(t, err, problem.KindInvalid); !strings.Contains(pe.Message, "sign again") {
		t.Fatalf("failed submission: %v", err)
	}
	w.sim.SetFaults("tt02", sim.UpstreamMaskinporten, sim.Faults{})
	if v, err = r.svc.Rotation(ctx, w.ownerA, "tt02", id); err != nil || v.Rotation.State != clients.RotationAdded || v.Rotation.Proof.Attempts != 1 {
		t.Fatalf("after a failed submission: %+v, %v", v.Rotation, err)
	}
	rot, err := r.svc.SubmitRotationGrant(ctx, w.ownerA, meta(w.ownerA), "tt02", id, signPrepared(t, v.Grant.Header, v.Grant.Claims, newKey))
	if err != nil || rot.State != clients.RotationProved || rot.Proof.How != clients.ProofByBrowser || rot.Proof.Attempts != 2 {
		t.Fatalf("signed grant: %+v, %v", rot, err)
	}
	evs := rotationEvents(t, w, id)["key.rotate.prove"]
	if len(evs) != 2 || evs[0].Outcome != audit.Success || evs[1].Outcome != audit.Failure {
		t.Fatalf("audit of the proofs (newest first): %+v", evs)
	}
}

func TestRotationRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	r := w.rotator(t, newKEK(t), 20*time.Millisecond, time.Second)

	// A client with 5 keys has no room for the new one.
	full := w.create(t, w.ownerA, "tt02", draft("Full", w.teamA, preset...))
	for i := range 5 {
		w.uploadKey(t, "tt02", full, i, "k-"+string(rune('a'+i)))
	}
	_, err := r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", full, "k-a")
	if pe := wantKind(t, err, problem.KindInvalid); !strings.Contains(pe.Message, "Delete an unused key first") {
		t.Fatalf("full: %v", err)
	}
	if v, err := r.svc.Rotation(ctx, w.ownerA, "tt02", full); err != nil || !v.Full {
		t.Fatalf("full view: %+v, %v", v, err)
	}
	_, err = r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", full, "")
	wantField(t, err, "old_kid")
	_, err = r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", full, "no-such-kid")
	wantField(t, err, "old_kid")

	// Without a scope no token can prove a key: the page says so and the proof is refused.
	bare := w.create(t, w.ownerA, "tt02", draft("No scopes", w.teamA))
	w.uploadKey(t, "tt02", bare, 0, "old-1")
	w.uploadKey(t, "tt02", bare, 1, "spare-1")
	if _, err := r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", bare, "old-1"); err != nil {
		t.Fatal(err)
	}
	err = r.svc.ChooseRotationKey(ctx, w.ownerA, meta(w.ownerA), "tt02", bare, "old-1")
	wantField(t, err, "new_kid")
	err = r.svc.ChooseRotationKey(ctx, w.ownerA, meta(w.ownerA), "tt02", bare, "nowhere")
	wantField(t, err, "new_kid")
	if err := r.svc.ChooseRotationKey(ctx, w.ownerA, meta(w.ownerA), "tt02", bare, "spare-1"); err != nil {
		t.Fatal(err)
	}
	v, err := r.svc.Rotation(ctx, w.ownerA, "tt02", bare)
	if err != nil || v.Rotation.NewKID != "spare-1" || !strings.Contains(v.ProofProblem, "scope") || v.Grant != nil {
		t.Fatalf("no scopes: %+v %q, %v", v.Rotation, v.ProofProblem, err)
	}

	// Cancelling removes nothing and frees the client for another rotation.
	if err := r.svc.CancelRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", bare); err != nil {
		t.Fatal(err)
	}
	if got := upstreamKids(t, w, "tt02", bare); !slices.Equal(got, []string{"old-1", "spare-1"}) {
		t.Fatalf("kids after cancelling: %v", got)
	}
	err = r.svc.CancelRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", bare)
	wantKind(t, err, problem.KindConflict)
	if rot, err := r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", bare, "spare-1"); err != nil || rot.OldKID != "spare-1" {
		t.Fatalf("start after cancelling: %+v, %v", rot, err)
	}
	if evs := rotationEvents(t, w, bare)["key.rotate.cancel"]; len(evs) != 1 {
		t.Fatalf("audit of the cancellation: %+v", evs)
	}
}

func TestRotationAuthorization(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	r := w.rotator(t, newKEK(t), 20*time.Millisecond, time.Second)
	id := w.create(t, w.ownerA, "tt02", draft("Guarded", w.teamA, preset...))
	w.uploadKey(t, "tt02", id, 0, "old-1")
	w.uploadKey(t, "tt02", id, 1, "new-1")
	if _, err := r.svc.StartRotation(ctx, w.ownerA, meta(w.ownerA), "tt02", id, "old-1"); err != nil {
		t.Fatal(err)
	}
	// A viewer is told they cannot change it; someone outside the team does not learn it exists.
	for p, kind := range map[*auth.Principal]problem.Kind{w.viewerA: problem.KindForbidden, w.memberB: problem.KindNotFound} {
		_, err := r.svc.Rotation(ctx, p, "tt02", id)
		wantKind(t, err, kind)
		_, err = r.svc.RotationProof(ctx, p, "tt02", id)
		wantKind(t, err, kind)
		_, err = r.svc.StartRotation(ctx, p, meta(p), "tt02", id, "old-1")
		wantKind(t, err, kind)
		err = r.svc.ChooseRotationKey(ctx, p, meta(p), "tt02", id, "new-1")
		wantKind(t, err, kind)
		_, err = r.svc.ProveRotation(ctx, p, meta(p), "tt02", id)
		wantKind(t, err, kind)
		_, err = r.svc.SubmitRotationGrant(ctx, p, meta(p), "tt02", id, "a.b.c")
		wantKind(t, err, kind)
		err = r.svc.ConfirmRotationSwitch(ctx, p, meta(p), "tt02", id)
		wantKind(t, err, kind)
		_, err = r.svc.RetireRotation(ctx, p, meta(p), "tt02", id, "", w.change(t, "tt02", id))
		wantKind(t, err, kind)
		err = r.svc.CancelRotation(ctx, p, meta(p), "tt02", id)
		wantKind(t, err, kind)
	}
	// A member of the team and an admin carry on the rotation someone else started.
	if err := r.svc.ChooseRotationKey(ctx, w.memberA, meta(w.memberA), "tt02", id, "new-1"); err != nil {
		t.Fatal(err)
	}
	if v, err := r.svc.Rotation(ctx, w.admin, "tt02", id); err != nil || v.Rotation.NewKID != "new-1" {
		t.Fatalf("admin view: %+v, %v", v.Rotation, err)
	}
	if err := r.svc.CancelRotation(ctx, w.admin, meta(w.admin), "tt02", id); err != nil {
		t.Fatal(err)
	}
}
