package clients

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
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

// MaxKeys is how many keys Digdir lets a client hold.
const MaxKeys = 5

// MaxKeyLifetime is how long Digdir keeps a key from when it is posted.
const MaxKeyLifetime = 365 * 24 * time.Hour

const actionKeys = "keys"

// Custody of a key's private half, as the pages name it.
const (
	CustodyKept      = store.CustodyKept
	CustodyHandedOut = store.CustodyHandedOut
	CustodyUploaded  = store.CustodyUploaded
)

// KeyPolicy says how generated keys may be held in an environment.
type KeyPolicy struct {
	Kept    bool // the portal may keep the private key, sealed
	HandOut bool // the private key may be handed out once
}

// DefaultKeyPolicy: in production keys are only handed out; elsewhere the person chooses.
func DefaultKeyPolicy(env string) KeyPolicy {
	if env == "prod" {
		return KeyPolicy{HandOut: true}
	}
	return KeyPolicy{Kept: true, HandOut: true}
}

// KeyView is one key of a client as the keys page shows it.
type KeyView struct {
	KID          string
	Kty          string
	Alg          string
	Use          string
	Bits         int
	Expires      time.Time
	FirstSeen    time.Time
	Thumbprint   string
	Custody      string // "" when the portal has no record (added elsewhere)
	CertSubject  string
	CertNotAfter time.Time
	X5C          bool
}

// KeySet is a client's keys with what a change to them needs.
type KeySet struct {
	Env       Env
	Summary   Summary
	Keys      []KeyView
	Version   string // of the key set shown; a change refuses when it moved on
	CanChange bool
	Policy    KeyPolicy
	// Algs are the algorithms offered for new keys, RS256 first; AlgCaveat, when RS384 and
	// RS512 are among them, says what to know before choosing one.
	Algs         []string
	AlgCaveat    string
	SuggestedKID string
	Stale        string // why the mirror's set is shown instead of a fresh read
}

func kidsOf(ks []maskinporten.JWK) []string {
	out := make([]string, 0, len(ks))
	for _, k := range ks {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}

// keySetVersion identifies a key set by its kids and expiries.
func keySetVersion(ks []maskinporten.JWK) string {
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s:%d:%s", k.Kid, k.Exp, k.N))
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:8])
}

// AlgCaveat is what a person should know before choosing RS384 or RS512.
const AlgCaveat = "Digdir's documentation disagrees on RS384 and RS512: its admin API page says only RS256 (2048-bit keys) " +
	"is supported, its client-registration page allows all three. Choose RS256 unless the integration's software needs another."

// algs lists the algorithms new keys may use in the environment.
func (e *envState) algs() []string {
	if e.AllowRS384RS512 {
		return []string{string(keys.RS256), string(keys.RS384), string(keys.RS512)}
	}
	return []string{string(keys.RS256)}
}

// algRefusal says why alg may not be used for a new key in the environment; empty when it may.
func (e *envState) algRefusal(alg keys.Alg) string {
	if alg == keys.RS256 || e.AllowRS384RS512 {
		return ""
	}
	return "Only RS256 is offered in " + e.label() + ": Digdir's admin API supports only RS256. " +
		"An operator can offer RS384 and RS512 with allow_rs384_rs512."
}

func (e *envState) keyPolicy() KeyPolicy {
	if e.Keys != nil {
		return *e.Keys
	}
	return DefaultKeyPolicy(e.Name)
}

// Keys returns an integration's key set, read fresh from Digdir (the mirror's copy when it
// does not answer, said so in Stale).
func (s *Service) Keys(ctx context.Context, p *auth.Principal, env, clientID string) (KeySet, error) {
	e, err := s.env(env)
	if err != nil {
		return KeySet{}, err
	}
	it, err := s.visible(ctx, p, env, clientID)
	if err != nil {
		return KeySet{}, err
	}
	var set maskinporten.JWKS
	_ = json.Unmarshal([]byte(it.JWKS), &set)
	var stale string
	if it.Active && e.Upstream != nil {
		fresh, err := e.Upstream.GetJWKS(ctx, clientID)
		if err != nil {
			stale = problemMessage(upstreamProblem(e, "read the keys", err, ""))
		} else {
			set = *fresh
			if err := s.storeKeySet(ctx, e, it, fresh); err != nil {
				return KeySet{}, err
			}
		}
	}
	ks := KeySet{Env: e.Env, Summary: summary(it), Version: keySetVersion(set.Keys), Stale: stale,
		CanChange: canChange(p, it.TeamID) && it.Active && e.Upstream != nil && !e.isPortalClient(clientID), Policy: e.keyPolicy(), Algs: e.algs(),
		SuggestedKID: keys.SuggestKID(it.Name, e.Name, s.now())}
	if e.AllowRS384RS512 {
		ks.AlgCaveat = AlgCaveat
	}
	seen, err := s.db.KeysFirstSeen(ctx, env, clientID)
	if err != nil {
		return ks, err
	}
	records, err := s.db.KeyRecords(ctx, env, clientID)
	if err != nil {
		return ks, err
	}
	for _, k := range set.Keys {
		v := KeyView{KID: k.Kid, Kty: k.Kty, Alg: k.Alg, Use: k.Use, Bits: modulusBits(k.N), Expires: k.Expires(),
			FirstSeen: seen[k.Kid], X5C: len(k.X5C) > 0, Custody: records[k.Kid].Custody}
		if pub, err := jwkPublic(k); err == nil {
			v.Thumbprint = keys.Thumbprint(pub.Key)
		}
		if c := certificateOf(records[k.Kid].Certificate); c != nil {
			v.CertSubject, v.CertNotAfter = c.Subject.String(), c.NotAfter
		}
		ks.Keys = append(ks.Keys, v)
	}
	slices.SortFunc(ks.Keys, func(a, b KeyView) int { return strings.Compare(a.KID, b.KID) })
	return ks, nil
}

// storeKeySet refreshes the mirror's copy of a key set read outside a sync.
func (s *Service) storeKeySet(ctx context.Context, e *envState, it store.Integration, set *maskinporten.JWKS) error {
	next := jwksJSON(set)
	if next == it.JWKS {
		return nil
	}
	return s.applyOne(ctx, e, it.ClientID, func(cur *store.Integration) (*maskinporten.Registration, error) {
		if cur == nil {
			return nil, fmt.Errorf("integration %s/%s: %w", e.Name, it.ClientID, store.ErrNotFound)
		}
		var reg maskinporten.Registration
		if err := json.Unmarshal([]byte(cur.Raw), &reg); err != nil {
			return nil, fmt.Errorf("read mirrored client %s: %w", it.ClientID, err)
		}
		return &reg, nil
	}, set)
}

func jwkPublic(k maskinporten.JWK) (*keys.PublicKey, error) {
	b, err := json.Marshal(map[string]any{"kty": k.Kty, "n": k.N, "e": k.E, "kid": k.Kid})
	if err != nil {
		return nil, err
	}
	return keys.ParsePublicAt(b, time.Now())
}

func certificateOf(pemText string) *x509.Certificate {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		return nil
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return c
}

// toWire converts a key of the keys package to the self-service API's JWK.
func toWire(j keys.JWK, exp int64) maskinporten.JWK {
	return maskinporten.JWK{Kty: j.Kty, Kid: j.Kid, Alg: j.Alg, Use: j.Use, E: j.E, N: j.N, X5C: j.X5C, Exp: exp}
}

// KeyChange carries what every key change needs from its form.
type KeyChange struct {
	Version string // the key set's version the page showed
	Key     string // the form's idempotency key
}

// keyEdit is one change to a key set: how it transforms the set and what it records.
type keyEdit struct {
	action  string // audit action, e.g. "key.add"
	mutate  func(cur []maskinporten.JWK) ([]maskinporten.JWK, error)
	records func(tx *sql.Tx, now time.Time) error // custody records written with the change
	details map[string]any
	// adds names the key an addition brings whose custody record is written before Digdir is
	// asked (a kept key's sealed private half, an upload's certificate), so that a change whose
	// answer is lost, which the next sync adopts, keeps them. Nothing shows a record until its
	// kid is in the key set; a definite refusal removes it.
	adds string
}

// changeKeys applies one edit to a client's key set: it re-reads the current set, refuses
// when it changed since the page was shown, posts the whole new set (Digdir replaces it
// whole), and records the change, custody and audit event in one transaction.
func (s *Service) changeKeys(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string, ch KeyChange, ed keyEdit) error {
	e, err := s.env(env)
	if err != nil {
		return err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return err
	}
	if !it.Active {
		return problem.New(problem.KindConflict, "This integration is inactive: Digdir keeps its keys as they were.")
	}
	if s.repeated(ctx, e, ch.Key) {
		return nil
	}
	if !keyPattern.MatchString(ch.Key) {
		return problem.New(problem.KindInvalid, "This form has expired. Reload the page and send it again.")
	}
	up, err := e.upstream()
	if err != nil {
		return err
	}
	cur, err := up.GetJWKS(ctx, clientID)
	if err != nil {
		return upstreamProblem(e, "read the keys", err, "")
	}
	if keySetVersion(cur.Keys) != ch.Version {
		return problem.New(problem.KindConflict, "The integration's keys changed after you opened this page (someone added, renewed or removed one). "+
			"Nothing was changed: reload the page to see the current keys and try again.")
	}
	next, err := ed.mutate(slices.Clone(cur.Keys))
	if err != nil {
		return err
	}
	if len(next) > MaxKeys {
		return problem.Invalid(fmt.Sprintf("A client holds at most %d keys and this one has %d. Delete a key first (an expired or unused one).", MaxKeys, len(cur.Keys)), nil)
	}
	// Since May 2025 Digdir refuses keys without use; keys posted earlier may lack it.
	for i := range next {
		if next[i].Use == "" {
			next[i].Use = "sig"
		}
	}
	req := intentRequest{ClientID: clientID, TeamID: it.TeamID, Kids: kidsOf(next)}
	in, done, err := s.openIntent(ctx, p, e, actionKeys, ch.Key, req)
	if err != nil || done != "" {
		return err
	}
	if ed.adds != "" && ed.records != nil {
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return ed.records(tx, s.now()) }); err != nil {
			return err
		}
	}
	var after *maskinporten.JWKS
	if len(next) == 0 {
		// Digdir refuses an empty set; the last key goes with DELETE.
		err = up.DeleteJWKS(ctx, clientID)
		after = &maskinporten.JWKS{Keys: []maskinporten.JWK{}}
	} else {
		after, err = up.ReplaceJWKS(ctx, clientID, next)
	}
	if err != nil {
		if ed.adds != "" && refused(err) {
			// Digdir did not take the key: its record goes, sealed private half included.
			dctx := context.WithoutCancel(ctx)
			if derr := s.db.Tx(dctx, func(tx *sql.Tx) error {
				return store.DeleteKeyRecord(dctx, tx, env, clientID, ed.adds)
			}); derr != nil {
				s.log.Error("remove the record of a refused key", "env", env, "client_id", clientID, "err", derr)
			}
		}
		unknown := "The keys may have been changed nonetheless: the portal checks at its next sync. Reload the page in a minute before trying again."
		return s.failIntent(ctx, m, e, in, it.TeamID, clientID, err, upstreamProblem(e, "change the keys", err, unknown))
	}
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var reg maskinporten.Registration
		if err := json.Unmarshal([]byte(it.Raw), &reg); err != nil {
			return fmt.Errorf("read mirrored client %s: %w", clientID, err)
		}
		row := mirrorRow(env, &reg, after, &it, now)
		if err := store.PutIntegration(ctx, tx, row); err != nil {
			return err
		}
		if err := store.SeeKeys(ctx, tx, env, clientID, kidsOf(after.Keys), now); err != nil {
			return err
		}
		if ed.records != nil {
			if err := ed.records(tx, now); err != nil {
				return err
			}
		}
		if err := store.FinishIntent(ctx, tx, in.ID, store.IntentDone, clientID, "", now); err != nil {
			return err
		}
		details := map[string]any{"kids_before": kidsOf(cur.Keys), "kids_after": kidsOf(after.Keys)}
		for k, v := range ed.details {
			details[k] = v
		}
		return s.record(ctx, tx, m, e, it.TeamID, clientID, ed.action, audit.Success, details, now)
	})
}

// NewKeyRequest asks for a key to be generated.
type NewKeyRequest struct {
	KID     string
	Bits    int
	Alg     string
	Custody string    // kept or handed_out
	Expires time.Time // zero: Digdir's maximum of a year
}

// checkNewKey validates what a generation asks for, before any work is done.
func (s *Service) checkNewKey(e *envState, r *NewKeyRequest) error {
	fields := map[string]string{}
	r.KID = strings.TrimSpace(r.KID)
	if err := keys.CheckKID(r.KID); err != nil {
		fields["kid"] = keyMessage(err)
	}
	if err := keys.CheckSize(r.Bits); err != nil {
		fields["bits"] = "Choose 2048 or 4096 bits."
	}
	if r.Alg == "" {
		r.Alg = string(keys.DefaultAlg)
	}
	if alg, err := keys.ParseAlg(r.Alg); err != nil {
		fields["alg"] = "Choose " + strings.Join(e.algs(), ", ") + "."
	} else if msg := e.algRefusal(alg); msg != "" {
		fields["alg"] = msg
	}
	pol := e.keyPolicy()
	switch {
	case r.Custody == CustodyKept && pol.Kept:
		if s.opts.KEK == nil {
			fields["custody"] = "The portal has no key-encryption key configured, so it cannot keep private keys."
		}
	case r.Custody == CustodyHandedOut && pol.HandOut:
	case r.Custody == CustodyKept:
		fields["custody"] = "In " + e.label() + " the portal does not keep private keys: choose to download it once."
	default:
		fields["custody"] = "Choose who keeps the private key."
	}
	if !r.Expires.IsZero() {
		now := s.now()
		switch {
		case !r.Expires.After(now.Add(time.Hour)):
			fields["expires"] = "The expiry must be in the future."
		case r.Expires.After(now.Add(MaxKeyLifetime)):
			fields["expires"] = "Digdir keeps a key for at most a year: choose an earlier date, or none for a full year."
		}
	}
	if len(fields) > 0 {
		return problem.Invalid("Some fields need attention.", fields)
	}
	return nil
}

// keyMessage is a keys package refusal in words; its errors are written for people.
func keyMessage(err error) string {
	var ke *keys.Error
	if errors.As(err, &ke) {
		return ke.Error()
	}
	return "The key could not be read."
}

// generation is a key being generated for someone, held until they add it.
type generation struct {
	userID   int64
	env      string
	clientID string
	req      NewKeyRequest
}

// Generation reports a started key generation.
type Generation struct {
	ID       string
	State    string // queued, running, done, failed
	Request  NewKeyRequest
	Took     time.Duration
	Problem  string
	ClientID string
}

// StartKeyGeneration checks the request and starts generating the key in the background,
// bounded so generations never take every core. The key is added with AddGeneratedKey.
func (s *Service) StartKeyGeneration(ctx context.Context, p *auth.Principal, env, clientID string, r NewKeyRequest) (string, error) {
	e, err := s.env(env)
	if err != nil {
		return "", err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return "", err
	}
	if !it.Active {
		return "", problem.New(problem.KindConflict, "This integration is inactive: Digdir keeps its keys as they were.")
	}
	if s.opts.Generator == nil {
		return "", problem.New(problem.KindInternal, "Key generation is not available.")
	}
	if err := s.checkNewKey(e, &r); err != nil {
		return "", err
	}
	id, err := s.opts.Generator.Start(r.Bits, keys.Alg(r.Alg))
	if errors.Is(err, keys.ErrBusy) {
		return "", problem.New(problem.KindThrottled, "Many keys are being generated right now. Try again in a minute.")
	}
	if err != nil {
		return "", err
	}
	s.gens.Store(id, generation{userID: p.UserID, env: env, clientID: clientID, req: r})
	return string(id), nil
}

// KeyGeneration reports how a generation started by p is doing.
func (s *Service) KeyGeneration(ctx context.Context, p *auth.Principal, env, clientID, id string) (Generation, error) {
	g, err := s.generation(p, env, clientID, id)
	if err != nil {
		return Generation{}, err
	}
	st, err := s.opts.Generator.Status(keys.JobID(id))
	if err != nil {
		s.gens.Delete(keys.JobID(id))
		return Generation{}, errNoGeneration
	}
	out := Generation{ID: id, Request: g.req, State: strings.ToLower(st.State.String()), ClientID: clientID}
	if !st.Started.IsZero() && !st.Finished.IsZero() {
		out.Took = st.Finished.Sub(st.Started)
	}
	if st.Err != nil {
		out.Problem = "The key could not be generated. Try again."
	}
	return out, nil
}

var errNoGeneration = problem.New(problem.KindNotFound, "This key generation is unknown or expired. Start a new one.")

func (s *Service) generation(p *auth.Principal, env, clientID, id string) (generation, error) {
	v, ok := s.gens.Load(keys.JobID(id))
	if !ok {
		return generation{}, errNoGeneration
	}
	g := v.(generation)
	if g.userID != p.UserID || g.env != env || g.clientID != clientID {
		return generation{}, errNoGeneration
	}
	return g, nil
}

// Added is the outcome of adding a generated key. Private is set only for a key handed out
// once: the caller shows it to the person and forgets it.
type Added struct {
	KID     string
	Custody string
	Private *keys.PrivateKey
}

// AddGeneratedKey posts a finished generation's public key to the client and keeps the
// private key sealed, or hands it back once, as the request chose.
func (s *Service) AddGeneratedKey(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, id string, ch KeyChange) (Added, error) {
	g, err := s.generation(p, env, clientID, id)
	if err != nil {
		return Added{}, err
	}
	st, err := s.opts.Generator.Status(keys.JobID(id))
	if err != nil || st.State != keys.Done {
		return Added{}, problem.New(problem.KindConflict, "The key is not ready yet. Wait a moment.")
	}
	key, err := s.opts.Generator.Take(keys.JobID(id))
	if err != nil {
		return Added{}, errNoGeneration
	}
	s.gens.Delete(keys.JobID(id))
	key.KID = g.req.KID
	var sealed []byte
	if g.req.Custody == CustodyKept {
		der, err := key.PKCS8()
		if err != nil {
			return Added{}, err
		}
		if sealed, err = keys.Seal(s.opts.KEK, env, clientID, key.KID, der); err != nil {
			return Added{}, err
		}
		clear(der)
	}
	var exp int64
	if !g.req.Expires.IsZero() {
		exp = g.req.Expires.Unix()
	}
	jwk := toWire(key.PublicJWK(), exp)
	ed := keyEdit{
		action: "key.add",
		mutate: addKey(jwk),
		records: func(tx *sql.Tx, now time.Time) error {
			rec := store.KeyRecord{Env: env, ClientID: clientID, KID: key.KID, Custody: g.req.Custody, CreatedBy: p.UserID, CreatedAt: now}
			if sealed != nil {
				rec.Sealed, rec.KEKID = sealed, s.opts.KEK.ID()
			}
			return store.PutKeyRecord(ctx, tx, rec)
		},
		details: map[string]any{"kid": key.KID, "how": "generated", "custody": g.req.Custody, "bits": key.Bits(), "alg": key.Alg,
			"thumbprint": key.Thumbprint(), "expires": expiryDetail(exp)},
	}
	if sealed != nil {
		// A handed-out key reaches its person only with a success answer, so only a kept
		// one is recorded ahead.
		ed.adds = key.KID
	}
	err = s.changeKeys(ctx, p, m, env, clientID, ch, ed)
	if err != nil {
		return Added{}, err
	}
	out := Added{KID: key.KID, Custody: g.req.Custody}
	if g.req.Custody == CustodyHandedOut {
		out.Private = key
	}
	return out, nil
}

func expiryDetail(exp int64) string {
	if exp == 0 {
		return "a year after posting"
	}
	return time.Unix(exp, 0).UTC().Format(time.RFC3339)
}

// addKey appends a key, refusing a kid the client already has.
func addKey(jwk maskinporten.JWK) func([]maskinporten.JWK) ([]maskinporten.JWK, error) {
	return func(cur []maskinporten.JWK) ([]maskinporten.JWK, error) {
		for _, k := range cur {
			if k.Kid == jwk.Kid {
				return nil, problem.Invalid("The client already has a key with this kid.", map[string]string{"kid": "This kid is taken on this client: choose another."})
			}
			if k.N == jwk.N && k.E == jwk.E {
				return nil, problem.Invalid("The client already has this key, under kid "+k.Kid+". Renew that one instead.", nil)
			}
		}
		if len(cur) >= MaxKeys {
			return nil, problem.Invalid(fmt.Sprintf("A client holds at most %d keys and this one is full. Delete a key first (an expired or unused one).", MaxKeys), nil)
		}
		return append(cur, jwk), nil
	}
}

// UploadRequest is a public key a person uploads.
type UploadRequest struct {
	Data    []byte
	KID     string // used when the upload names none (PEM, certificates)
	Alg     string // used when the upload names none
	WithX5C bool   // send the certificate as x5c, locking the client to it
}

// UploadKey adds an uploaded public key (JWK, JWK set with one key, PEM, or certificate).
// Anything carrying private key material is refused and nothing of it is kept or logged.
func (s *Service) UploadKey(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID string, r UploadRequest, ch KeyChange) (string, error) {
	e, err := s.env(env)
	if err != nil {
		return "", err
	}
	if _, err := s.changeable(ctx, p, env, clientID); err != nil {
		return "", err
	}
	pub, err := keys.ParsePublicAt(r.Data, s.now())
	if err != nil {
		pe := problem.Invalid("The key could not be used.", map[string]string{"key": keyMessage(err)})
		if errors.Is(err, keys.ErrPrivateKey) {
			pe.Message = "That was a private key. It was not stored or sent anywhere, but it has now been handled outside " +
				"its owner's safe keeping: treat it as exposed, make a new key pair, and upload only the public key."
		}
		pe.Err = err
		return "", pe
	}
	fields := map[string]string{}
	if pub.KID == "" {
		pub.KID = strings.TrimSpace(r.KID)
	}
	if err := keys.CheckKID(pub.KID); err != nil {
		fields["kid"] = keyMessage(err)
		if pub.KID == "" {
			fields["kid"] = "This upload names no kid: give the key one."
		}
	}
	if pub.Alg == "" && r.Alg != "" {
		alg, err := keys.ParseAlg(r.Alg)
		if err != nil {
			fields["alg"] = "Choose " + strings.Join(e.algs(), ", ") + "."
		}
		pub.Alg = alg
	}
	if msg := e.algRefusal(pub.Alg); pub.Alg != "" && msg != "" && fields["alg"] == "" {
		fields["alg"] = "This key is for " + string(pub.Alg) + ". " + msg
	}
	if r.WithX5C && pub.Certificate == nil {
		fields["x5c"] = "Only a certificate can be sent as x5c; this upload has none."
	}
	if len(fields) > 0 {
		return "", problem.Invalid("Some fields need attention.", fields)
	}
	j := pub.JWK()
	if r.WithX5C {
		if j, err = pub.JWKWithCertificate(); err != nil {
			return "", err
		}
	}
	var certPEM string
	if pub.Certificate != nil {
		certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pub.Certificate.DER}))
	}
	details := map[string]any{"kid": pub.KID, "how": "uploaded", "format": pub.Format, "bits": pub.Bits(), "alg": j.Alg,
		"thumbprint": pub.Thumbprint(), "x5c": r.WithX5C}
	if pub.Certificate != nil {
		details["certificate_subject"] = pub.Certificate.Subject
		details["certificate_not_after"] = pub.Certificate.NotAfter
	}
	err = s.changeKeys(ctx, p, m, env, clientID, ch, keyEdit{
		action: "key.add",
		mutate: addKey(toWire(j, 0)),
		records: func(tx *sql.Tx, now time.Time) error {
			return store.PutKeyRecord(ctx, tx, store.KeyRecord{Env: env, ClientID: clientID, KID: pub.KID, Custody: CustodyUploaded,
				Certificate: certPEM, CreatedBy: p.UserID, CreatedAt: now})
		},
		details: details,
		adds:    pub.KID,
	})
	return pub.KID, err
}

// RenewKey posts a key again without exp, which gives it a new year from now.
func (s *Service) RenewKey(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, kid string, ch KeyChange) error {
	details := map[string]any{"kid": kid}
	return s.changeKeys(ctx, p, m, env, clientID, ch, keyEdit{
		action: "key.renew",
		mutate: func(cur []maskinporten.JWK) ([]maskinporten.JWK, error) {
			for i := range cur {
				if cur[i].Kid == kid {
					details["expires_before"] = expiryDetail(cur[i].Exp)
					cur[i].Exp = 0
					return cur, nil
				}
			}
			return nil, problem.New(problem.KindNotFound, "The client has no key "+kid+".")
		},
		details: details,
	})
}

// KeyDeletion describes what deleting a key would do, for its confirmation page.
type KeyDeletion struct {
	KID        string
	Last       bool // the client would have no keys left
	LastLiving bool // every other key is expired or expires within a week
	NeedsName  bool // production: type the integration's name
	Name       string
}

// PlanKeyDeletion says what deleting kid would do.
func (s *Service) PlanKeyDeletion(ctx context.Context, p *auth.Principal, env, clientID, kid string) (KeyDeletion, error) {
	ks, err := s.Keys(ctx, p, env, clientID)
	if err != nil {
		return KeyDeletion{}, err
	}
	if e := s.envs[env]; e.isPortalClient(clientID) {
		return KeyDeletion{}, errPortalClient(e)
	}
	if !ks.CanChange {
		return KeyDeletion{}, errReadOnly(ks.Summary.Team)
	}
	d := KeyDeletion{KID: kid, NeedsName: ks.Env.Prod, Name: ks.Summary.Name, Last: len(ks.Keys) == 1, LastLiving: true}
	found := false
	soon := s.now().Add(7 * 24 * time.Hour)
	for _, k := range ks.Keys {
		if k.KID == kid {
			found = true
			continue
		}
		if k.Expires.IsZero() || k.Expires.After(soon) {
			d.LastLiving = false
		}
	}
	if !found {
		return KeyDeletion{}, problem.New(problem.KindNotFound, "The client has no key "+kid+".")
	}
	return d, nil
}

// DeleteKey removes one key from the client; in production the integration's name must be
// typed. The last key goes with DELETE, since Digdir refuses an empty set.
func (s *Service) DeleteKey(ctx context.Context, p *auth.Principal, m audit.Meta, env, clientID, kid, confirmName string, ch KeyChange) error {
	e, err := s.env(env)
	if err != nil {
		return err
	}
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return err
	}
	if e.Prod && strings.TrimSpace(confirmName) != it.Name && !s.repeated(ctx, e, ch.Key) {
		return problem.Invalid("Deleting a key in production needs the integration's name typed to confirm.",
			map[string]string{"confirm_name": "Type the integration's name exactly: " + it.Name})
	}
	return s.changeKeys(ctx, p, m, env, clientID, ch, keyEdit{
		action: "key.delete",
		mutate: func(cur []maskinporten.JWK) ([]maskinporten.JWK, error) {
			i := slices.IndexFunc(cur, func(k maskinporten.JWK) bool { return k.Kid == kid })
			if i < 0 {
				return nil, problem.New(problem.KindNotFound, "The client has no key "+kid+".")
			}
			return slices.Delete(cur, i, i+1), nil
		},
		records: func(tx *sql.Tx, now time.Time) error {
			// A kept private key goes with its public half: nothing can use it any more.
			return store.DeleteKeyRecord(ctx, tx, env, clientID, kid)
		},
		details: map[string]any{"kid": kid},
	})
}

// KeptKey opens the private key the portal keeps for kid, for signing a grant server-side.
func (s *Service) KeptKey(ctx context.Context, p *auth.Principal, env, clientID, kid string) (*keys.PrivateKey, error) {
	it, err := s.changeable(ctx, p, env, clientID)
	if err != nil {
		return nil, err
	}
	records, err := s.db.KeyRecords(ctx, env, it.ClientID)
	if err != nil {
		return nil, err
	}
	rec, ok := records[kid]
	if !ok || rec.Custody != CustodyKept || len(rec.Sealed) == 0 {
		return nil, problem.New(problem.KindNotFound, "The portal does not keep the private key of "+kid+".")
	}
	if s.opts.KEK == nil {
		return nil, problem.New(problem.KindInternal, "The portal has no key-encryption key configured.")
	}
	der, err := keys.Open(s.opts.KEK, env, clientID, kid, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("open kept key %s/%s/%s: %w", env, clientID, kid, err)
	}
	defer clear(der)
	key, err := keys.ParsePrivate(der)
	if err != nil {
		return nil, fmt.Errorf("parse kept key %s/%s/%s: %w", env, clientID, kid, err)
	}
	key.KID = kid
	return key, nil
}
