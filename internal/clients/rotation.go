package clients

// Key rotation without downtime: choose the key to replace, add the new key beside it, prove
// the new key with a live token request signed by it, let the person switch their systems to
// it, then retire the old key. Each step is a row in key_rotations, written with its audit
// event, so a rotation survives restarts and can be resumed by anyone who may change the
// integration; nothing old is removed before the new key is proved and the person has switched.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/store"
)

// Rotation states, in order.
const (
	RotationStarted   = store.RotationStarted
	RotationAdded     = store.RotationAdded
	RotationProved    = store.RotationProved
	RotationSwitched  = store.RotationSwitched
	RotationDone      = store.RotationDone
	RotationCancelled = store.RotationCancelled
)

// How a new key is proved.
const (
	ProofByPortal  = "portal"  // the portal keeps the private key and signs the grant itself
	ProofByBrowser = "browser" // the person signs the grant on their machine (or elsewhere)
)

// Proof states, as the page shows them.
const (
	ProofIdle    = "idle"
	ProofRunning = "running"
	ProofFailed  = "failed"
	ProofOK      = "ok"
)

const (
	defaultProofInterval = 10 * time.Second
	defaultProofWindow   = 3 * time.Minute
)

// Rotation is a key rotation of one integration.
type Rotation struct {
	ID         int64
	OldKID     string
	NewKID     string // empty until the new key is added
	State      string
	StartedAt  time.Time
	ProvedAt   time.Time
	SwitchedAt time.Time
	Proof      ProofStatus
}

// ProofStatus is how proving the new key goes.
type ProofStatus struct {
	State    string // ProofIdle, ProofRunning, ProofFailed, ProofOK
	How      string // ProofByPortal or ProofByBrowser, once tried
	Attempts int    // of the latest proof
	LastAt   time.Time
	Result   string    // the latest attempt's outcome in words
	Until    time.Time // while running: when the portal stops trying
}

// GrantToSign is a grant prepared for the in-browser signer: the JWS header and claims as
// JSON, so the person only adds the signature with the new key's private key.
type GrantToSign struct {
	Header string
	Claims string
	N      string // the new key's modulus (base64url), so the signer can tell a wrong key file
}

// SwitchSettings is what a system needs to sign its grants with the new key.
type SwitchSettings struct {
	ClientID      string
	KID           string
	Alg           string
	Issuer        string // also every grant's aud
	TokenEndpoint string
	Scopes        []string
}

// RotationView is an integration's rotation page: its keys and, when one is open, the rotation.
type RotationView struct {
	Keys         KeySet
	Rotation     *Rotation // nil when no rotation is open
	Candidates   []KeyView // keys on the client that could be the new key
	NewKey       *KeyView  // nil until added, or when it has gone from the client
	OldGone      bool      // the old key is no longer on the client
	ProofBy      string
	Grant        *GrantToSign // for ProofByBrowser while the new key awaits its proof
	Settings     SwitchSettings
	ProofProblem string // why no proof can be made
	NeedsName    bool   // retiring the old key needs the integration's name typed (production)
	Full         bool   // the client holds MaxKeys keys: no rotation can start
}

// proofRun is a proof running in the background.
type proofRun struct {
	until  time.Time
	cancel context.CancelFunc
}

var errNoRotation = problem.New(problem.KindConflict, "No key rotation is in progress for this integration. Start one from its keys page.")

const noScopeMessage = "A proof asks Maskinporten for a token, and Maskinporten issues tokens only for scopes: this integration has none. " +
	"Add a scope to the integration, then prove the new key."

// stepNames says what a rotation in each state waits for.
var stepNames = map[string]string{
	RotationStarted:  "add the new key",
	RotationAdded:    "prove the new key",
	RotationProved:   "switch your systems to the new key",
	RotationSwitched: "retire the old key",
}

func errAtStep(state string) error {
	return problem.New(problem.KindConflict, "This rotation's next step is to "+stepNames[state]+". Reload the page to continue from there.")
}

func (s *Service) proofTiming() (interval, window time.Duration) {
	interval, window = s.opts.ProofInterval, s.opts.ProofWindow
	if interval <= 0 {
		interval = defaultProofInterval
	}
	if window <= 0 {
		window = defaultProofWindow
	}
	return interval, window
}

func (s *Service) rotationOf(r store.Rotation) Rotation {
	out := Rotation{ID: r.ID, OldKID: r.OldKID, NewKID: r.NewKID, State: r.State, StartedAt: r.StartedAt, ProvedAt: r.ProvedAt,
		SwitchedAt: r.SwitchedAt, Proof: ProofStatus{How: r.ProofHow, Attempts: r.ProofAttempts, LastAt: r.ProofAt, Result: r.ProofResult}}
	v, running := s.proofs.Load(r.ID)
	switch {
	case running && r.State == RotationAdded:
		out.Proof.State, out.Proof.Until = ProofRunning, v.(*proofRun).until
	case r.State == RotationProved || r.State == RotationSwitched || r.State == RotationDone:
		out.Proof.State = ProofOK
	case r.ProofAttempts > 0:
		out.Proof.State = ProofFailed
	default:
		out.Proof.State = ProofIdle
	}
	return out
}

func (s *Service) proofRunning(id int64) bool {
	_, ok := s.proofs.Load(id)
	return ok
}

// openRotation reads the open rotation of an integration the person may change.
func (s *Service) openRotation(ctx context.Context, p *auth.Principal, env, clientID string) (*envState, store.Integration, store.Rotation, error) {
	e, err := s.env(env)
	if err != nil {
		return nil, store.Integration{}, store.Rotation{}, err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return nil, it, store.Rotation{}, err
	}
	r, err := s.db.OpenRotation(ctx, env, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, it, r, errNoRotation
	}
	return e, it, r, err
}

// step moves the open rotation id on from one of the states in from, in one transaction
// with its audit event; change sets the new state and returns details for the event.
func (s *Service) step(ctx context.Context, p *auth.Principal, m audit.Meta, e *envState, it store.Integration, id int64, from []string,
	action string, change func(r *store.Rotation, now time.Time) map[string]any) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := store.OpenRotationTx(ctx, tx, e.Name, it.ClientID)
		if errors.Is(err, store.ErrNotFound) || err == nil && r.ID != id {
			return errNoRotation
		}
		if err != nil {
			return err
		}
		if !slices.Contains(from, r.State) {
			return errAtStep(r.State)
		}
		prev := r.State
		details := map[string]any{}
		for k, v := range change(&r, now) {
			details[k] = v
		}
		r.UpdatedAt, r.UpdatedBy = now, p.UserID
		if err := store.UpdateRotation(ctx, tx, r, prev); err != nil {
			return err
		}
		details["rotation"], details["old_kid"], details["new_kid"], details["state"] = r.ID, r.OldKID, r.NewKID, r.State
		return s.record(ctx, tx, m, e, it.TeamID, it.ClientID, action, audit.Success, details, now)
	})
}

// Rotation returns an integration's rotation page: its keys and the open rotation, if any.
// Only those who may change the integration's keys see it.
func (s *Service) Rotation(ctx context.Context, p *auth.Principal, env, clientID string) (RotationView, error) {
	e, err := s.env(env)
	if err != nil {
		return RotationView{}, err
	}
	if _, err := s.changeable(ctx, p, env, clientID); err != nil {
		return RotationView{}, err
	}
	ks, err := s.Keys(ctx, p, env, clientID)
	if err != nil {
		return RotationView{}, err
	}
	v := RotationView{Keys: ks, Full: len(ks.Keys) >= MaxKeys, NeedsName: e.Prod}
	r, err := s.db.OpenRotation(ctx, env, clientID)
	if err == nil {
		r, err = s.settled(ctx, r)
	}
	if errors.Is(err, store.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	rot := s.rotationOf(r)
	v.Rotation = &rot
	v.OldGone = true
	for i, k := range ks.Keys {
		switch k.KID {
		case r.OldKID:
			v.OldGone = false
		case r.NewKID:
			v.NewKey = &ks.Keys[i]
		default:
			v.Candidates = append(v.Candidates, k)
		}
	}
	if v.NewKey == nil {
		return v, nil
	}
	v.ProofBy = ProofByBrowser
	if v.NewKey.Custody == CustodyKept && s.opts.KEK != nil {
		v.ProofBy = ProofByPortal
	}
	scopes := ks.Summary.Scopes
	if len(scopes) == 0 {
		v.ProofProblem = noScopeMessage
	}
	up, err := e.upstream()
	if err != nil {
		return v, nil
	}
	alg := v.NewKey.Alg
	if alg == "" {
		alg = maskinporten.RS256
	}
	v.Settings = SwitchSettings{ClientID: clientID, KID: r.NewKID, Alg: alg, Issuer: up.Issuer(), TokenEndpoint: up.TokenEndpoint(), Scopes: scopes}
	if r.State == RotationAdded && v.ProofBy == ProofByBrowser && len(scopes) > 0 {
		g, err := s.grantToSign(ctx, up, env, clientID, r.NewKID, alg, scopes)
		if err != nil {
			return v, err
		}
		v.Grant = &g
	}
	return v, nil
}

// grantToSign prepares the header and claims of a grant for the new key: aud the issuer, iss
// the client, its scopes, iat now on the environment's clock, exp two minutes on, a fresh jti.
func (s *Service) grantToSign(ctx context.Context, up Upstream, env, clientID, kid, alg string, scopes []string) (GrantToSign, error) {
	claims, err := up.Grant(clientID, scopes...).Claims(s.now())
	if err != nil {
		return GrantToSign{}, fmt.Errorf("prepare grant for %s/%s: %w", env, clientID, err)
	}
	hb, err := json.Marshal(maskinporten.Header{Alg: alg, Kid: kid})
	if err != nil {
		return GrantToSign{}, err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return GrantToSign{}, err
	}
	g := GrantToSign{Header: string(hb), Claims: string(cb)}
	if it, err := s.db.Integration(ctx, env, clientID); err == nil {
		var set maskinporten.JWKS
		if json.Unmarshal([]byte(it.JWKS), &set) == nil {
			for _, k := range set.Keys {
				if k.Kid == kid {
					g.N = k.N
				}
			}
		}
	}
	return g, nil
}

// RotationProof reports an open rotation without asking Digdir, for a page that polls a
// running proof.
func (s *Service) RotationProof(ctx context.Context, p *auth.Principal, env, clientID string) (Rotation, error) {
	_, _, r, err := s.openRotation(ctx, p, env, clientID)
	if err == nil {
		r, err = s.settled(ctx, r)
	}
	if err != nil {
		if errors.Is(err, errNoRotation) || errors.Is(err, store.ErrNotFound) {
			return Rotation{}, problem.New(problem.KindNotFound, errNoRotation.Message)
		}
		return Rotation{}, err
	}
	return s.rotationOf(r), nil
}

// settled reads r again when no proof of it runs: a proof that ended after r was read had
// written its outcome before it stopped running, and without the second read a poll would
// show that proof as over with the outcome of an earlier attempt.
func (s *Service) settled(ctx context.Context, r store.Rotation) (store.Rotation, error) {
	if r.State != RotationAdded || s.proofRunning(r.ID) {
		return r, nil
	}
	return s.db.OpenRotation(ctx, r.Env, r.ClientID)
}

// StartRotation starts replacing oldKID. It refuses while another rotation of the client is
// open (starting the same one again returns it), and when the client already holds the most
// keys Digdir allows, since the new key must sit beside the old one.
func (s *Service) StartRotation(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, oldKID string) (Rotation, error) {
	e, err := s.env(env)
	if err != nil {
		return Rotation{}, err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return Rotation{}, err
	}
	if !it.Active {
		return Rotation{}, problem.New(problem.KindConflict, "This integration is inactive: Digdir keeps its keys as they were.")
	}
	oldKID = strings.TrimSpace(oldKID)
	if oldKID == "" {
		return Rotation{}, problem.Invalid("Choose the key to replace.", map[string]string{"old_kid": "Choose the key to replace."})
	}
	open, err := s.db.OpenRotation(ctx, env, clientID)
	switch {
	case err == nil && open.OldKID == oldKID:
		return s.rotationOf(open), nil
	case err == nil:
		return Rotation{}, problem.New(problem.KindConflict, "A rotation replacing "+open.OldKID+" is already in progress: finish or cancel it first.")
	case !errors.Is(err, store.ErrNotFound):
		return Rotation{}, err
	}
	up, err := e.upstream()
	if err != nil {
		return Rotation{}, err
	}
	cur, err := up.GetJWKS(ctx, clientID)
	if err != nil {
		return Rotation{}, upstreamProblem(e, "read the keys", err, "")
	}
	if !slices.ContainsFunc(cur.Keys, func(k maskinporten.JWK) bool { return k.Kid == oldKID }) {
		return Rotation{}, problem.Invalid("The client has no key "+oldKID+".", map[string]string{"old_kid": "Choose one of the client's keys."})
	}
	if len(cur.Keys) >= MaxKeys {
		msg := fmt.Sprintf("The client holds %d keys, Digdir's maximum, so the new key cannot be added beside %s. "+
			"Delete an unused key first (an expired one, or one no system signs with), then start the rotation.", len(cur.Keys), oldKID)
		return Rotation{}, problem.Invalid(msg, map[string]string{"old_kid": "Delete an unused key first."})
	}
	now := s.now()
	r := store.Rotation{Env: env, ClientID: clientID, OldKID: oldKID, State: RotationStarted, StartedBy: p.UserID, StartedAt: now, UpdatedAt: now}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		id, err := store.InsertRotation(ctx, tx, r)
		if errors.Is(err, store.ErrConflict) {
			return problem.New(problem.KindConflict, "Another rotation of this integration was started meanwhile: reload the page.")
		}
		if err != nil {
			return err
		}
		r.ID = id
		return s.record(ctx, tx, m, e, it.TeamID, clientID, "key.rotate.start", audit.Success,
			map[string]any{"rotation": id, "old_kid": oldKID, "kids": kidsOf(cur.Keys)}, now)
	})
	if err != nil {
		return Rotation{}, err
	}
	return s.rotationOf(r), nil
}

// beforeAdding checks that the open rotation takes a new key now.
func (s *Service) beforeAdding(ctx context.Context, p *auth.Principal, env, clientID string) (*envState, store.Integration, store.Rotation, error) {
	e, it, r, err := s.openRotation(ctx, p, env, clientID)
	if err != nil {
		return e, it, r, err
	}
	if r.State != RotationStarted && r.State != RotationAdded {
		return e, it, r, errAtStep(r.State)
	}
	if s.proofRunning(r.ID) {
		return e, it, r, problem.New(problem.KindConflict, "A proof of "+r.NewKID+" is running: wait for it to finish before choosing another new key.")
	}
	return e, it, r, nil
}

// setNewKey records kid as the rotation's new key, forgetting any earlier proof.
func (s *Service) setNewKey(ctx context.Context, p *auth.Principal, m audit.Meta, e *envState, it store.Integration, id int64, kid, how string) error {
	return s.step(ctx, p, m, e, it, id, []string{RotationStarted, RotationAdded}, "key.rotate.add", func(r *store.Rotation, now time.Time) map[string]any {
		before := r.NewKID
		r.NewKID, r.State = kid, RotationAdded
		r.ProofHow, r.ProofAttempts, r.ProofAt, r.ProofResult = "", 0, time.Time{}, ""
		d := map[string]any{"how": how}
		if before != "" && before != kid {
			d["new_kid_before"] = before
		}
		return d
	})
}

// RotationGenerated adds a finished key generation to the client as the rotation's new key.
// For a key handed out once, Private is set even when recording it in the rotation failed:
// the key is on the client and the caller must still show it.
func (s *Service) RotationGenerated(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, job string, ch KeyChange) (Added, error) {
	e, it, r, err := s.beforeAdding(ctx, p, env, clientID)
	if err != nil {
		return Added{}, err
	}
	added, err := s.AddGeneratedKey(ctx, p, m, env, clientID, job, ch)
	if err != nil {
		return added, err
	}
	return added, s.setNewKey(ctx, p, m, e, it, r.ID, added.KID, "generated")
}

// RotationUpload adds an uploaded public key to the client as the rotation's new key.
func (s *Service) RotationUpload(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string, u UploadRequest, ch KeyChange) (string, error) {
	e, it, r, err := s.beforeAdding(ctx, p, env, clientID)
	if err != nil {
		return "", err
	}
	kid, err := s.UploadKey(ctx, p, m, env, clientID, u, ch)
	if err != nil {
		return kid, err
	}
	return kid, s.setNewKey(ctx, p, m, e, it, r.ID, kid, "uploaded")
}

// ChooseRotationKey makes a key already on the client (added on the keys page, say) the
// rotation's new key.
func (s *Service) ChooseRotationKey(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, kid string) error {
	e, it, r, err := s.beforeAdding(ctx, p, env, clientID)
	if err != nil {
		return err
	}
	kid = strings.TrimSpace(kid)
	switch {
	case kid == "":
		return problem.Invalid("Choose the new key.", map[string]string{"new_kid": "Choose the new key."})
	case kid == r.OldKID:
		return problem.Invalid("The new key must be another key than the one it replaces.", map[string]string{"new_kid": "Choose another key than " + kid + "."})
	}
	up, err := e.upstream()
	if err != nil {
		return err
	}
	cur, err := up.GetJWKS(ctx, it.ClientID)
	if err != nil {
		return upstreamProblem(e, "read the keys", err, "")
	}
	if !slices.ContainsFunc(cur.Keys, func(k maskinporten.JWK) bool { return k.Kid == kid }) {
		return problem.Invalid("The client has no key "+kid+": add it first.", map[string]string{"new_kid": "Choose one of the client's keys."})
	}
	return s.setNewKey(ctx, p, m, e, it, r.ID, kid, "chosen")
}

// proofJob is what one proof needs, fixed when it starts.
type proofJob struct {
	p       *auth.Principal
	m       audit.Meta
	e       *envState
	up      Upstream
	it      store.Integration
	id      int64
	newKID  string
	alg     string
	scopes  []string
	pending *proofRun
}

// newKeyOnClient reads the rotation's new key from Digdir, refusing when it is gone.
func newKeyOnClient(ctx context.Context, e *envState, up Upstream, clientID, kid string) (maskinporten.JWK, []maskinporten.JWK, error) {
	cur, err := up.GetJWKS(ctx, clientID)
	if err != nil {
		return maskinporten.JWK{}, nil, upstreamProblem(e, "read the keys", err, "")
	}
	i := slices.IndexFunc(cur.Keys, func(k maskinporten.JWK) bool { return k.Kid == kid })
	if i < 0 {
		return maskinporten.JWK{}, cur.Keys, problem.New(problem.KindConflict, "The new key "+kid+" is no longer on the client. "+
			"Add or choose another new key; the old key stays.")
	}
	return cur.Keys[i], cur.Keys, nil
}

// ProveRotation proves a kept new key: the portal signs a grant with it and asks Maskinporten
// for a token, in the background, every ProofInterval for up to ProofWindow, since a new key
// takes up to two minutes to reach Maskinporten. The rotation moves on only when a token is
// issued; a proof that gives up leaves it where it was.
func (s *Service) ProveRotation(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string) (Rotation, error) {
	e, it, r, err := s.openRotation(ctx, p, env, clientID)
	if err != nil {
		return Rotation{}, err
	}
	switch r.State {
	case RotationProved, RotationSwitched:
		return s.rotationOf(r), nil
	case RotationAdded:
	default:
		return Rotation{}, errAtStep(r.State)
	}
	if s.proofRunning(r.ID) {
		return s.rotationOf(r), nil
	}
	if len(it.Scopes) == 0 {
		return Rotation{}, problem.New(problem.KindConflict, noScopeMessage)
	}
	records, err := s.db.KeyRecords(ctx, env, clientID)
	if err != nil {
		return Rotation{}, err
	}
	if rec := records[r.NewKID]; rec.Custody != CustodyKept || len(rec.Sealed) == 0 || s.opts.KEK == nil {
		return Rotation{}, problem.New(problem.KindConflict, "The portal does not keep the private key of "+r.NewKID+
			", so it cannot sign the proof: sign the grant on your machine instead.")
	}
	up, err := e.upstream()
	if err != nil {
		return Rotation{}, err
	}
	jwk, _, err := newKeyOnClient(ctx, e, up, clientID, r.NewKID)
	if err != nil {
		return Rotation{}, err
	}
	alg := jwk.Alg
	if alg == "" {
		alg = maskinporten.RS256
	}
	interval, window := s.proofTiming()
	runCtx, cancel := context.WithCancel(s.ctx)
	run := &proofRun{until: time.Now().Add(window), cancel: cancel}
	if _, loaded := s.proofs.LoadOrStore(r.ID, run); loaded {
		cancel()
		return s.rotationOf(r), nil
	}
	stop := func() {
		s.proofs.CompareAndDelete(r.ID, run)
		cancel()
	}
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := store.OpenRotationTx(ctx, tx, env, clientID)
		if err != nil || cur.ID != r.ID {
			return errNoRotation
		}
		cur.ProofHow, cur.ProofAttempts, cur.ProofAt, cur.ProofResult = ProofByPortal, 0, time.Time{}, ""
		cur.UpdatedAt, cur.UpdatedBy = now, p.UserID
		if err := store.UpdateRotation(ctx, tx, cur, RotationAdded); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errAtStep(cur.State)
			}
			return err
		}
		r = cur
		return nil
	})
	if err != nil {
		stop()
		return Rotation{}, err
	}
	job := proofJob{p: p, m: m, e: e, up: up, it: it, id: r.ID, newKID: r.NewKID, alg: alg, scopes: slices.Clone(it.Scopes), pending: run}
	if !s.goBackground(func() {
		defer stop()
		s.runProof(runCtx, job, interval)
	}) {
		stop()
		return Rotation{}, problem.New(problem.KindThrottled, "The portal is shutting down. Try again in a moment.")
	}
	return s.rotationOf(r), nil
}

// runProof tries the kept key until Maskinporten issues a token, a refusal shows that waiting
// cannot help, the window closes, or the service stops. Every attempt's outcome is written to
// the rotation for the page to show; the end of the proof is audited.
func (s *Service) runProof(ctx context.Context, j proofJob, interval time.Duration) {
	for attempt := 1; ; attempt++ {
		words, ok, retry := s.proveOnce(ctx, j)
		if ctx.Err() != nil {
			return // stopped: the rotation keeps the previous attempt's outcome
		}
		final := ok || !retry || time.Now().Add(interval).After(j.pending.until)
		if !ok && final && retry {
			words += " The portal stopped trying after " + plural(attempt, "attempt") + ": prove the key again in a minute."
		}
		if err := s.recordProof(ctx, j.p, j.m, j.e, j.it, j.id, ProofByPortal, attempt, words, ok, final); err != nil {
			if !errors.Is(err, errNoRotation) && problem.KindOf(err) != problem.KindConflict {
				s.log.Error("record rotation proof", "env", j.e.Name, "client_id", j.it.ClientID, "rotation", j.id, "err", err)
			}
			return
		}
		if final {
			return
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// proveOnce signs a fresh grant with the kept key and asks for a token. It returns the
// outcome in words, whether a token was issued, and whether trying again may help.
func (s *Service) proveOnce(ctx context.Context, j proofJob) (words string, ok, retry bool) {
	key, err := s.KeptKey(ctx, j.p, j.e.Name, j.it.ClientID, j.newKID)
	if err != nil {
		if pe, isProblem := problem.As(err); isProblem {
			return pe.Message, false, false
		}
		s.log.Error("open kept key for a rotation proof", "env", j.e.Name, "client_id", j.it.ClientID, "kid", j.newKID, "err", err)
		return "The portal could not open its kept private key of " + j.newKID + "; its log has the details.", false, false
	}
	assertion, err := maskinporten.SignGrant(j.up.Grant(j.it.ClientID, j.scopes...), maskinporten.Signer{Key: key, KeyID: j.newKID, Alg: j.alg})
	if err != nil {
		s.log.Error("sign a rotation proof", "env", j.e.Name, "client_id", j.it.ClientID, "kid", j.newKID, "err", err)
		return "The portal could not sign a grant with " + j.newKID + "; its log has the details.", false, false
	}
	tr, err := j.up.Token(ctx, assertion)
	if err != nil {
		words, retry := tokenFailure(err, j.newKID)
		return words, false, retry
	}
	return tokenSuccess(tr, j.newKID), true, false
}

// tokenSuccess describes an issued token without the token.
func tokenSuccess(tr *maskinporten.TokenResponse, kid string) string {
	return fmt.Sprintf("Maskinporten issued a token (scope %q, valid %d s) for a grant signed with %s.", tr.Scope, tr.ExpiresIn, kid)
}

// tokenFailure puts a failed token request into words and says whether trying again later
// may help: a key Maskinporten does not know yet, or a failure on its side.
func tokenFailure(err error, kid string) (string, bool) {
	var me *maskinporten.Error
	if errors.As(err, &me) {
		code := ""
		if me.MPCode != "" {
			code = " [" + me.MPCode + "]"
		}
		msg := strings.TrimSuffix(me.Message(), ".")
		if msg == "" {
			msg = me.Code
		}
		switch {
		case strings.Contains(strings.ToLower(me.Description), "unknown key identifier"):
			return "Maskinporten does not know the key " + kid + " yet (unknown kid): Digdir says a new key takes up to two minutes to reach Maskinporten.", true
		case me.MPCode == "MP-100":
			return "Maskinporten does not know this client yet" + code + ": changes take up to two minutes to reach Maskinporten.", true
		case me.Status >= 500 || me.Status == http.StatusTooManyRequests:
			return fmt.Sprintf("Maskinporten failed (%d)%s.", me.Status, code), true
		case msg == "":
			return fmt.Sprintf("Maskinporten refused the token request (%d)%s.", me.Status, code), false
		default:
			return "Maskinporten refused the token request: " + msg + code + ".", false
		}
	}
	var open *maskinporten.CircuitOpenError
	if errors.As(err, &open) {
		return open.Error() + ", so the grant was not sent; try again in " + wholeSeconds(open.RetryIn) + ".", true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Maskinporten did not answer in time.", true
	}
	if msg := err.Error(); strings.Contains(msg, "decode response") || strings.Contains(msg, "no access_token") {
		// Maskinporten answered, but not with a token the portal can read.
		return "Maskinporten gave an answer the portal cannot read.", true
	}
	return "Maskinporten could not be reached.", true
}

// recordProof writes a proof attempt's outcome to the open rotation id, moving it to proved
// when a token was issued; the final attempt of a proof is audited with it. attempt 0 counts
// on from the rotation's previous attempts of the same kind (one per browser submission).
func (s *Service) recordProof(ctx context.Context, p *auth.Principal, m audit.Meta, e *envState, it store.Integration, id int64,
	how string, attempt int, words string, ok, final bool) error {
	now := s.now()
	ctx = context.WithoutCancel(ctx) // an attempt's outcome is kept even when the request has gone
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := store.OpenRotationTx(ctx, tx, e.Name, it.ClientID)
		if errors.Is(err, store.ErrNotFound) || err == nil && r.ID != id {
			return errNoRotation
		}
		if err != nil {
			return err
		}
		if r.State != RotationAdded {
			return errAtStep(r.State)
		}
		if attempt == 0 {
			attempt = 1
			if r.ProofHow == how {
				attempt = r.ProofAttempts + 1
			}
		}
		r.ProofHow, r.ProofAttempts, r.ProofAt, r.ProofResult = how, attempt, now, words
		if ok {
			r.State, r.ProvedAt = RotationProved, now
		}
		r.UpdatedAt, r.UpdatedBy = now, p.UserID
		if err := store.UpdateRotation(ctx, tx, r, RotationAdded); err != nil {
			return err
		}
		if !final {
			return nil
		}
		outcome := audit.Failure
		if ok {
			outcome = audit.Success
		}
		return s.record(ctx, tx, m, e, it.TeamID, it.ClientID, "key.rotate.prove", outcome, map[string]any{"rotation": r.ID,
			"old_kid": r.OldKID, "new_kid": r.NewKID, "how": how, "attempts": attempt, "result": words}, now)
	})
}

// SubmitRotationGrant proves the new key with a grant the person signed on their machine: it
// must name the new key's kid, the client as iss and the issuer as aud, and carry a valid
// signature by the new key, checked here before one token request is made with it. The grant
// is used once and never stored.
func (s *Service) SubmitRotationGrant(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, grant string) (Rotation, error) {
	e, it, r, err := s.openRotation(ctx, p, env, clientID)
	if err != nil {
		return Rotation{}, err
	}
	switch r.State {
	case RotationProved, RotationSwitched:
		return s.rotationOf(r), nil
	case RotationAdded:
	default:
		return Rotation{}, errAtStep(r.State)
	}
	grant = strings.TrimSpace(grant)
	if grant == "" {
		msg := "Sign the grant with the new key's private key, or paste a grant signed elsewhere."
		return Rotation{}, problem.Invalid(msg, map[string]string{"grant": msg})
	}
	if _, perr := keys.ParsePublicAt([]byte(grant), s.now()); errors.Is(perr, keys.ErrPrivateKey) {
		pe := problem.Invalid("That was a private key, not a signed grant. It was not stored or sent anywhere, but it has now been handled outside "+
			"its owner's safe keeping: treat it as exposed and replace it.",
			map[string]string{"grant": "Paste the signed grant (three base64url parts separated by dots), never a private key."})
		pe.Err = perr
		return Rotation{}, pe
	}
	up, err := e.upstream()
	if err != nil {
		return Rotation{}, err
	}
	jwk, _, err := newKeyOnClient(ctx, e, up, clientID, r.NewKID)
	if err != nil {
		return Rotation{}, err
	}
	if msg := checkGrant(grant, jwk, clientID, up.Issuer()); msg != "" {
		return Rotation{}, problem.Invalid(msg, map[string]string{"grant": msg})
	}
	tr, terr := up.Token(ctx, grant)
	words, retry := "", false
	if terr == nil {
		words = tokenSuccess(tr, r.NewKID)
	} else {
		words, retry = tokenFailure(terr, r.NewKID)
	}
	if err := s.recordProof(ctx, p, m, e, it, r.ID, ProofByBrowser, 0, words, terr == nil, true); err != nil {
		return Rotation{}, err
	}
	if terr != nil {
		msg := words + " Check the grant, then sign again."
		if retry {
			msg = words + " Wait a minute and sign again."
		}
		return Rotation{}, problem.Invalid(msg, map[string]string{"grant": msg})
	}
	r, err = s.db.OpenRotation(ctx, env, clientID)
	if err != nil {
		return Rotation{}, err
	}
	return s.rotationOf(r), nil
}

// checkGrant says what is wrong with a grant for proving jwk on clientID, "" when nothing is.
func checkGrant(grant string, jwk maskinporten.JWK, clientID, issuer string) string {
	parts := strings.Split(grant, ".")
	if len(parts) != 3 {
		return "That is not a signed grant: a grant is three base64url parts separated by dots."
	}
	var h struct {
		Alg string          `json:"alg"`
		Kid string          `json:"kid"`
		X5C json.RawMessage `json:"x5c"`
	}
	var c struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if errors.Join(err1, err2, err3) != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil || len(sig) == 0 {
		return "That is not a signed grant: its parts are not base64url-encoded JSON and a signature."
	}
	if h.Kid != jwk.Kid {
		return fmt.Sprintf("The grant names the kid %q, but this rotation proves %s: sign the header shown on this page.", h.Kid, jwk.Kid)
	}
	var hash crypto.Hash
	switch h.Alg {
	case maskinporten.RS256:
		hash = crypto.SHA256
	case maskinporten.RS384:
		hash = crypto.SHA384
	case maskinporten.RS512:
		hash = crypto.SHA512
	default:
		return fmt.Sprintf("The grant's alg is %q: Maskinporten accepts RS256, RS384 or RS512.", h.Alg)
	}
	if c.Iss != clientID {
		return fmt.Sprintf("The grant's iss is %q, but it must be this integration's client id, %s.", c.Iss, clientID)
	}
	var aud string
	if json.Unmarshal(c.Aud, &aud) != nil {
		var auds []string
		if json.Unmarshal(c.Aud, &auds) == nil && len(auds) == 1 {
			aud = auds[0]
		}
	}
	if aud != issuer {
		return fmt.Sprintf("The grant's aud is %q, but Maskinporten expects its issuer, %s.", aud, issuer)
	}
	pub, err := jwkPublic(jwk)
	if err != nil {
		return "The new key on the client cannot be read, so the grant cannot be checked."
	}
	d := hash.New()
	d.Write([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub.Key, hash, d.Sum(nil), sig) != nil {
		return "The grant is not signed by the private key of " + jwk.Kid + ": pick the private key file that belongs to this key."
	}
	return ""
}

// ConfirmRotationSwitch records that the person's systems now sign with the new key.
func (s *Service) ConfirmRotationSwitch(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string) error {
	e, it, r, err := s.openRotation(ctx, p, env, clientID)
	if err != nil {
		return err
	}
	switch r.State {
	case RotationSwitched:
		return nil
	case RotationProved:
	case RotationStarted, RotationAdded:
		return problem.New(problem.KindConflict, "Prove the new key first: nothing is switched until a token request signed by it has succeeded.")
	default:
		return errAtStep(r.State)
	}
	return s.step(ctx, p, m, e, it, r.ID, []string{RotationProved}, "key.rotate.switch", func(r *store.Rotation, now time.Time) map[string]any {
		r.State, r.SwitchedAt = RotationSwitched, now
		return nil
	})
}

// RetireRotation deletes the old key (through DeleteKey: the key set must be the one the page
// showed, and production needs the integration's name typed) and finishes the rotation. It
// refuses before the new key is proved and the switch confirmed, and while the new key is not
// on the client.
func (s *Service) RetireRotation(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, confirmName string, ch KeyChange) (Rotation, error) {
	e, err := s.env(env)
	if err != nil {
		return Rotation{}, err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return Rotation{}, err
	}
	r, err := s.db.OpenRotation(ctx, env, clientID)
	if errors.Is(err, store.ErrNotFound) {
		if s.repeated(ctx, e, ch.Key) {
			// The same form sent twice: the first finished the rotation.
			if done, err := s.db.Rotations(ctx, env, clientID, 1); err == nil && len(done) == 1 && done[0].State == RotationDone {
				return s.rotationOf(done[0]), nil
			}
		}
		return Rotation{}, errNoRotation
	}
	if err != nil {
		return Rotation{}, err
	}
	if r.State != RotationSwitched {
		return Rotation{}, problem.New(problem.KindConflict, "The old key stays until the new key is proved and you have confirmed that your systems use it. "+
			"This rotation's next step is to "+stepNames[r.State]+".")
	}
	up, err := e.upstream()
	if err != nil {
		return Rotation{}, err
	}
	_, cur, err := newKeyOnClient(ctx, e, up, clientID, r.NewKID)
	if err != nil {
		return Rotation{}, err
	}
	oldGone := !slices.ContainsFunc(cur, func(k maskinporten.JWK) bool { return k.Kid == r.OldKID })
	if !oldGone {
		if err := s.DeleteKey(ctx, p, m, env, clientID, r.OldKID, confirmName, ch); err != nil {
			return Rotation{}, err
		}
	}
	err = s.step(ctx, p, m, e, it, r.ID, []string{RotationSwitched}, "key.rotate.done", func(r *store.Rotation, now time.Time) map[string]any {
		r.State, r.FinishedAt = RotationDone, now
		if oldGone {
			return map[string]any{"old_key": "already gone"}
		}
		return map[string]any{"old_key": "deleted"}
	})
	if err != nil {
		return Rotation{}, err
	}
	r.State = RotationDone
	return s.rotationOf(r), nil
}

// CancelRotation gives up an open rotation. Nothing is removed: a new key already added stays
// on the client, and so does the old key.
func (s *Service) CancelRotation(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string) error {
	e, it, r, err := s.openRotation(ctx, p, env, clientID)
	if err != nil {
		return err
	}
	if v, ok := s.proofs.Load(r.ID); ok {
		v.(*proofRun).cancel()
	}
	return s.step(ctx, p, m, e, it, r.ID, []string{RotationStarted, RotationAdded, RotationProved, RotationSwitched}, "key.rotate.cancel",
		func(r *store.Rotation, now time.Time) map[string]any {
			d := map[string]any{"state_before": r.State}
			r.State, r.FinishedAt = RotationCancelled, now
			return d
		})
}
