package clients

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portal/internal/audit"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/store"
)

// syncTimeout bounds a whole sync; each upstream call has its own, shorter timeout.
const syncTimeout = 5 * time.Minute

// SyncResult is what one sync found.
type SyncResult struct {
	Clients   int // clients upstream, inactive ones included
	Written   int // mirror rows written (new or changed)
	Unowned   int // clients seen for the first time without a matching intent
	Drifted   int // clients changed outside the portal since the last sync
	Adopted   int // intents whose outcome the sync settled
	KeyErrors int // key sets that could not be read (their last-seen set is kept)
	// Privileged counts new findings of clients holding privileged scopes.
	Privileged int
	// OtherKinds counts, per integration type, the clients upstream that are not Maskinporten
	// clients: listed by Digdir, not managed here.
	OtherKinds map[string]int
	Took       time.Duration
}

// OtherCount is how many clients of other kinds the sync left out.
func (r SyncResult) OtherCount() int { return sumKinds(r.OtherKinds) }

func sumKinds(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type syncRun struct {
	done chan struct{}
	res  SyncResult
	err  error
}

var systemMeta = audit.Meta{Actor: "system"}

// Sync refreshes an environment's mirror from upstream. Concurrent callers share one sync.
func (s *Service) Sync(ctx context.Context, env string) (SyncResult, error) {
	e, err := s.env(env)
	if err != nil {
		return SyncResult{}, err
	}
	run := s.startSync(e)
	select {
	case <-run.done:
		return run.res, run.err
	case <-ctx.Done():
		return SyncResult{}, ctx.Err()
	}
}

// startSync starts a sync unless one is running, and returns the one that is. The sync runs
// on the service's context, so a person leaving the page does not cancel it for others.
func (s *Service) startSync(e *envState) *syncRun {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	if e.running != nil {
		return e.running
	}
	run := &syncRun{done: make(chan struct{})}
	started := s.goBackground(func() {
		ctx, cancel := context.WithTimeout(s.ctx, syncTimeout)
		defer cancel()
		run.res, run.err = s.sync(ctx, e)
		if run.err != nil {
			s.log.Warn("sync failed", "env", e.Name, "err", run.err)
		} else {
			s.log.Info("synced", "env", e.Name, "clients", run.res.Clients, "written", run.res.Written,
				"unowned", run.res.Unowned, "drifted", run.res.Drifted, "privileged", run.res.Privileged, "took", run.res.Took)
			if s.opts.AfterSync != nil {
				s.opts.AfterSync(ctx, e.Name)
			}
		}
		e.syncMu.Lock()
		e.running = nil
		e.syncMu.Unlock()
		close(run.done)
	})
	if !started {
		run.err = problem.New(problem.KindUpstream, "The portal is shutting down; the sync did not start.")
		close(run.done)
		return run
	}
	e.running = run
	return run
}

// RunSyncs syncs every environment each interval until ctx ends.
func (s *Service) RunSyncs(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, name := range s.order {
			if e := s.envs[name]; e.Upstream != nil {
				_, _ = s.Sync(ctx, name)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) sync(ctx context.Context, e *envState) (SyncResult, error) {
	start := s.now()
	res, err := s.syncOnce(ctx, e, start)
	res.Took = s.now().Sub(start)
	if err != nil {
		st := store.SyncState{Env: e.Name, StartedAt: start, FinishedAt: s.now(), Message: problemMessage(err), Clients: res.Clients}
		ctx := context.WithoutCancel(ctx) // a sync cut short (timeout, Close) still records its failure
		if werr := s.db.Tx(ctx, func(tx *sql.Tx) error { return store.PutSyncState(ctx, tx, st) }); werr != nil {
			s.log.Error("record failed sync", "env", e.Name, "err", werr)
		}
	}
	return res, err
}

func (s *Service) syncOnce(ctx context.Context, e *envState, start time.Time) (SyncResult, error) {
	var res SyncResult
	up, err := e.upstream()
	if err != nil {
		return res, err
	}
	all, err := up.ListClients(ctx, true)
	if err != nil {
		return res, upstreamProblem(e, "list the integrations", err, "")
	}
	// Digdir lists every integration type the organisation has (ID-porten, KRR, ...); only
	// Maskinporten clients are managed here, so the others are counted, never mirrored, and
	// their key sets never read.
	list := make([]maskinporten.Registration, 0, len(all))
	res.OtherKinds = map[string]int{}
	for _, reg := range all {
		if reg.IntegrationType == maskinporten.IntegrationMaskinporten {
			list = append(list, reg)
			continue
		}
		kind := reg.IntegrationType
		if kind == "" {
			kind = "unknown"
		}
		res.OtherKinds[kind]++
	}
	res.Clients = len(list)

	// Key sets are read in parallel, but gently: the real API is shared by every customer.
	sets := make([]*maskinporten.JWKS, len(list))
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range min(s.opts.SyncConcurrency, len(list)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(list) || ctx.Err() != nil {
					return
				}
				set, err := up.GetJWKS(ctx, list[i].ClientID)
				if err != nil {
					failed.Add(1)
					continue
				}
				sets[i] = set
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, upstreamProblem(e, "read the key sets", err, "")
	}
	res.KeyErrors = int(failed.Load())

	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		mirror, err := store.IntegrationsTx(ctx, tx, e.Name)
		if err != nil {
			return err
		}
		intents, err := store.OpenIntentsTx(ctx, tx, e.Name)
		if err != nil {
			return err
		}
		w, err := store.PrepareIntegrationWriter(ctx, tx)
		if err != nil {
			return err
		}
		defer w.Close()
		r := reconciler{s: s, tx: tx, w: w, env: e, intents: intents, now: now, listedAt: start}
		// A client of another kind mirrored before it was told apart leaves the mirror.
		for _, reg := range all {
			if _, known := mirror[reg.ClientID]; known && reg.IntegrationType != maskinporten.IntegrationMaskinporten {
				if err := store.ForgetIntegration(ctx, tx, e.Name, reg.ClientID); err != nil {
					return err
				}
			}
		}
		var unowned []string
		for i := range list {
			reg := &list[i]
			old, known := mirror[reg.ClientID]
			var oldp *store.Integration
			if known {
				oldp = &old
			}
			out, err := r.apply(ctx, reg, sets[i], oldp)
			if err != nil {
				return err
			}
			if out.written {
				res.Written++
			}
			if out.drifted {
				res.Drifted++
			}
			if out.adopted {
				res.Adopted++
			}
			if out.unowned && !e.isPortalClient(reg.ClientID) {
				res.Unowned++
				unowned = append(unowned, reg.ClientID)
			}
		}
		if err := r.expireIntents(ctx); err != nil {
			return err
		}
		if res.Privileged, err = s.findPrivileged(ctx, tx, e, list, mirror, now); err != nil {
			return err
		}
		if len(unowned) > 0 {
			shown := unowned[:min(len(unowned), 50)]
			ev := audit.New(systemMeta, "integration.sync.unowned", audit.Success, map[string]any{
				"count": len(unowned), "client_ids": shown,
				"note": "integrations found upstream with no owning team; an administrator can assign them"})
			ev.Env, ev.TargetType = e.Name, "environment"
			if _, err := audit.Record(ctx, tx, ev, now); err != nil {
				return err
			}
		}
		msg := countOf(len(list), "integration", "integrations")
		if res.KeyErrors > 0 {
			msg += "; " + countOf(res.KeyErrors, "key set", "key sets") + " could not be read and " + pick(res.KeyErrors, "shows", "show") + " what was last seen"
		}
		if n := res.OtherCount(); n > 0 {
			msg += "; " + countOf(n, "client", "clients") + " of other kinds left out"
		}
		return store.PutSyncState(ctx, tx, store.SyncState{Env: e.Name, StartedAt: start, FinishedAt: s.now(),
			OK: res.KeyErrors == 0, Message: msg, Clients: len(list), OtherKinds: res.OtherKinds})
	})
	return res, err
}

// reconciler applies upstream clients to the mirror inside one transaction, settling the
// portal's own open intents on the way.
type reconciler struct {
	s       *Service
	tx      *sql.Tx
	w       *store.IntegrationWriter
	env     *envState
	intents []store.Intent // open ones; settled ones are removed
	now     time.Time
	// listedAt is when the sync asked Digdir for its list (zero when one client is applied).
	listedAt time.Time
}

type applied struct {
	written, drifted, adopted, unowned bool
}

// intentRequest is what an intent asked for.
type intentRequest struct {
	ClientID    string   `json:"client_id,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Scopes      []string `json:"scopes"`
	TeamID      int64    `json:"team_id"`
	Deactivate  bool     `json:"deactivate,omitempty"`
	// Kids is the key set a key change asked for (sorted kids).
	Kids []string `json:"kids,omitempty"`
}

func (q intentRequest) matches(reg *maskinporten.Registration) bool {
	if q.Deactivate {
		return !reg.Active
	}
	return reg.ClientName == q.Name && reg.Description == q.Description &&
		slices.Equal(slices.Sorted(slices.Values(reg.Scopes)), slices.Sorted(slices.Values(q.Scopes)))
}

func (r *reconciler) apply(ctx context.Context, reg *maskinporten.Registration, set *maskinporten.JWKS, old *store.Integration) (applied, error) {
	var out applied
	next := mirrorRow(r.env.Name, reg, set, old, r.now)
	in, ok := r.settle(reg, set, old == nil)
	switch {
	case ok:
		// The portal asked for this; it was carried out even though the answer got lost.
		out.adopted = true
		if old == nil {
			next.TeamID, next.CreatedBy = in.TeamID, in.ActorID
		}
		next.Drift = ""
		if err := store.FinishIntent(ctx, r.tx, in.ID, store.IntentDone, reg.ClientID, "settled by sync", r.now); err != nil {
			return out, err
		}
		ev := audit.New(audit.Meta{ActorID: in.ActorID, Actor: "system"}, "integration."+in.Action, audit.Success, map[string]any{
			"settled_by": "sync", "intent": in.ID, "after": json.RawMessage(next.Raw)})
		ev.Env, ev.TeamID, ev.TargetType, ev.Target = r.env.Name, next.TeamID, "integration", reg.ClientID
		if _, err := audit.Record(ctx, r.tx, ev, r.now); err != nil {
			return out, err
		}
	case old == nil:
		out.unowned = true
	case r.env.isPortalClient(reg.ClientID) && old.TeamID != 0:
		// The portal's own admin client belongs to no team, whatever an earlier version allowed.
		next.TeamID, next.TeamName = 0, ""
		ev := audit.New(systemMeta, "integration.portal_client_unassigned", audit.Success, map[string]any{
			"team_before": old.TeamName, "note": "the portal's own admin client belongs to no team"})
		ev.Env, ev.TeamID, ev.TargetType, ev.Target = r.env.Name, old.TeamID, "integration", reg.ClientID
		if _, err := audit.Record(ctx, r.tx, ev, r.now); err != nil {
			return out, err
		}
		fallthrough
	default:
		if changes := noteDrift(*old, &next, r.now); changes != nil {
			out.drifted = true
			ev := audit.New(systemMeta, "integration.changed_outside", audit.Success, map[string]any{"changes": changes})
			ev.Env, ev.TeamID, ev.TargetType, ev.Target = r.env.Name, next.TeamID, "integration", reg.ClientID
			if _, err := audit.Record(ctx, r.tx, ev, r.now); err != nil {
				return out, err
			}
		}
	}
	if old != nil && sameMirror(*old, next) {
		return out, nil
	}
	out.written = true
	if err := r.w.Put(ctx, next); err != nil {
		return out, err
	}
	if set != nil {
		kids := make([]string, 0, len(set.Keys))
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		if err := r.w.SeeKeys(ctx, r.env.Name, reg.ClientID, kids, r.now); err != nil {
			return out, err
		}
	}
	return out, nil
}

// settle finds the open intent this upstream state fulfils: a create with the same name,
// description and scopes for a client the mirror has not seen, or a change to this client.
func (r *reconciler) settle(reg *maskinporten.Registration, set *maskinporten.JWKS, isNew bool) (store.Intent, bool) {
	for i, in := range r.intents {
		var q intentRequest
		if json.Unmarshal([]byte(in.Request), &q) != nil {
			continue
		}
		switch {
		case in.Action == "create" && isNew && q.matches(reg) && !reg.Created.Before(in.CreatedAt.Add(-5*time.Minute)):
		case in.Action == actionKeys && q.ClientID == reg.ClientID && set != nil && slices.Equal(kidsOf(set.Keys), q.Kids):
		case in.Action != "create" && in.Action != actionKeys && q.ClientID == reg.ClientID && q.matches(reg):
		default:
			continue
		}
		r.intents = slices.Delete(r.intents, i, i+1)
		return in, true
	}
	return store.Intent{}, false
}

// AbandonedIntentMessage is the failure of an intent an earlier process left open and a later
// sync did not find upstream: the change never reached Digdir, so the same form may be sent
// again.
const AbandonedIntentMessage = "the portal stopped before Digdir got the request, and a sync after Digdir's propagation delay did not find the change; it was not carried out"

// expireIntents gives up on intents no sync has settled within the TTL, and at once on those
// an earlier process left open (it stopped mid-change) when this sync listed long enough after
// them to have seen the change.
func (r *reconciler) expireIntents(ctx context.Context) error {
	for _, in := range r.intents {
		abandoned := !r.listedAt.IsZero() && in.CreatedAt.Before(r.s.started) && r.listedAt.Sub(in.CreatedAt) >= r.s.opts.PropagationDelay
		if r.now.Sub(in.CreatedAt) < r.s.opts.IntentTTL && !abandoned {
			continue
		}
		msg := "no matching change was found upstream; it was not carried out"
		if abandoned {
			msg = AbandonedIntentMessage
		}
		if err := store.FinishIntent(ctx, r.tx, in.ID, store.IntentFailed, "", msg, r.now); err != nil {
			return err
		}
		var q intentRequest
		_ = json.Unmarshal([]byte(in.Request), &q)
		ev := audit.New(audit.Meta{ActorID: in.ActorID, Actor: "system"}, "integration."+in.Action, audit.Failure,
			map[string]any{"intent": in.ID, "reason": msg})
		ev.Env, ev.TeamID, ev.TargetType, ev.Target = r.env.Name, in.TeamID, "integration", q.ClientID
		if _, err := audit.Record(ctx, r.tx, ev, r.now); err != nil {
			return err
		}
	}
	return nil
}

// refresh re-reads one client and its key set and applies them to the mirror.
func (s *Service) refresh(ctx context.Context, e *envState, clientID string) error {
	up, err := e.upstream()
	if err != nil {
		return err
	}
	reg, err := up.GetClient(ctx, clientID)
	if err != nil {
		return upstreamProblem(e, "read the integration", err, "")
	}
	set, err := up.GetJWKS(ctx, clientID)
	if err != nil {
		return upstreamProblem(e, "read the integration's keys", err, "")
	}
	return s.applyOne(ctx, e, clientID, func(*store.Integration) (*maskinporten.Registration, error) { return reg, nil }, set)
}

// applyOne applies one client to the mirror in a transaction of its own, settling open intents
// as a sync does. client gives the registration to apply, from the mirror row when needed
// (nil before the client was ever seen).
func (s *Service) applyOne(ctx context.Context, e *envState, clientID string, client func(old *store.Integration) (*maskinporten.Registration, error), set *maskinporten.JWKS) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var oldp *store.Integration
		old, err := store.IntegrationTx(ctx, tx, e.Name, clientID)
		switch {
		case err == nil:
			oldp = &old
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		reg, err := client(oldp)
		if err != nil {
			return err
		}
		intents, err := store.OpenIntentsTx(ctx, tx, e.Name)
		if err != nil {
			return err
		}
		w, err := store.PrepareIntegrationWriter(ctx, tx)
		if err != nil {
			return err
		}
		defer w.Close()
		r := reconciler{s: s, tx: tx, w: w, env: e, intents: intents, now: now}
		_, err = r.apply(ctx, reg, set, oldp)
		return err
	})
}

// SyncInfo says how fresh an environment's mirror is.
type SyncInfo struct {
	Never      bool
	FinishedAt time.Time
	OK         bool
	Message    string
	LastOKAt   time.Time
	Running    bool
	Clients    int // integrations the last sync found upstream
	// OtherKinds counts, per integration type, the clients of other kinds (ID-porten, KRR,
	// ...) Digdir listed for the organisation; they are not managed here. Nil before a
	// listing succeeded.
	OtherKinds map[string]int
}

// OtherCount is how many clients of other kinds the last listing found.
func (i SyncInfo) OtherCount() int { return sumKinds(i.OtherKinds) }

// OtherKindsText says, for the environment page, how many clients of other kinds Digdir
// lists that the portal leaves alone; empty when there are none.
func (i SyncInfo) OtherKindsText() string {
	n := i.OtherCount()
	switch {
	case n == 0:
		return ""
	case n == 1:
		return "1 client of another kind (" + kindsList(i.OtherKinds) + ") is not managed here."
	}
	return fmt.Sprintf("%d clients of other kinds (%s) are not managed here.", n, kindsList(i.OtherKinds))
}

// kindsList names the kinds with their counts, in a stable order: "idporten 12, krr 1".
func kindsList(m map[string]int) string {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func (s *Service) syncInfo(ctx context.Context, e *envState) (SyncInfo, error) {
	st, err := s.db.SyncStateOf(ctx, e.Name)
	e.syncMu.Lock()
	running := e.running != nil
	e.syncMu.Unlock()
	if errors.Is(err, store.ErrNotFound) {
		return SyncInfo{Never: true, Running: running}, nil
	}
	if err != nil {
		return SyncInfo{}, err
	}
	return SyncInfo{FinishedAt: st.FinishedAt, OK: st.OK, Message: st.Message, LastOKAt: st.LastOKAt, Running: running,
		Clients: st.Clients, OtherKinds: st.OtherKinds}, nil
}

// SyncStatus says how fresh an environment's mirror is and how its last sync went.
func (s *Service) SyncStatus(ctx context.Context, env string) (SyncInfo, error) {
	e, err := s.env(env)
	if err != nil {
		return SyncInfo{}, err
	}
	return s.syncInfo(ctx, e)
}

// freshen starts a background sync when the mirror is older than MaxAge, and waits for it
// when the environment was never synced (an empty mirror would say nothing useful).
func (s *Service) freshen(ctx context.Context, e *envState) {
	if e.Upstream == nil {
		return
	}
	info, err := s.syncInfo(ctx, e)
	if err != nil || info.Running {
		return
	}
	if info.Never {
		_, _ = s.Sync(ctx, e.Name)
		return
	}
	if s.now().Sub(info.FinishedAt) > s.opts.MaxAge {
		s.startSync(e)
	}
}

// countOf writes a count with its noun in the singular or the plural: "1 integration",
// "2 integrations".
func countOf(n int, one, many string) string {
	return strconv.Itoa(n) + " " + pick(n, one, many)
}

// pick is one when n is 1 and many otherwise.
func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
