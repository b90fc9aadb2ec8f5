package sim

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// view is what the simulated Maskinporten knows: clients with parsed keys, the scope
// catalogue and who has been granted what. It lives in memory so the token endpoint never
// reads the database; self-service changes are published into it, after the propagation
// delay when one is set.
type view struct {
	mu          sync.RWMutex
	clients     map[string]*mpClient
	scopes      map[string]*Scope
	access      map[string]map[string]bool // scope -> consumer orgno -> APPROVED
	delegations map[delegation]bool

	pmu      sync.Mutex
	pending  []pendingChange // ordered by due
	npending atomic.Int32
}

type delegation struct{ consumer, supplier, scope string }

type pendingChange struct {
	due time.Time
	id  string
	c   *mpClient
}

// mpClient is a client as the token endpoint needs it; it is never modified once published.
type mpClient struct {
	id       string
	orgNo    string
	active   bool
	intType  string
	scopes   map[string]bool
	lifetime int
	keys     map[string]mpKey // by kid; empty means the client may use x5c
}

type mpKey struct {
	pub *rsa.PublicKey
	exp int64
}

// client returns the client as Maskinporten sees it at now, applying due changes first.
func (v *view) client(id string, now time.Time) *mpClient {
	if v.npending.Load() > 0 {
		v.applyDue(now)
	}
	v.mu.RLock()
	c := v.clients[id]
	v.mu.RUnlock()
	return c
}

func (v *view) applyDue(now time.Time) {
	v.pmu.Lock()
	defer v.pmu.Unlock()
	n := 0
	for n < len(v.pending) && !v.pending[n].due.After(now) {
		n++
	}
	if n == 0 {
		return
	}
	v.mu.Lock()
	for _, p := range v.pending[:n] {
		v.clients[p.id] = p.c
	}
	v.mu.Unlock()
	v.pending = append(v.pending[:0], v.pending[n:]...)
	v.npending.Store(int32(len(v.pending)))
}

// publish makes c (the new state of client id) visible at due.
func (v *view) publish(id string, c *mpClient, due time.Time, now time.Time) {
	v.pmu.Lock()
	v.pending = append(v.pending, pendingChange{due: due, id: id, c: c})
	sort.SliceStable(v.pending, func(i, j int) bool { return v.pending[i].due.Before(v.pending[j].due) })
	v.npending.Store(int32(len(v.pending)))
	v.pmu.Unlock()
	v.applyDue(now)
}

func (v *view) scope(name string) *Scope {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.scopes[name]
}

// granted says whether orgno may use scope: accessible to all, owned by it, or approved.
func (v *view) granted(scope, orgno string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	sc := v.scopes[scope]
	if sc == nil || !sc.Active {
		return false
	}
	return sc.AccessibleForAll || sc.OwnerOrgno == orgno || v.access[scope][orgno]
}

func (v *view) delegated(consumer, supplier, scope string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.delegations[delegation{consumer, supplier, scope}]
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (w *world) loadView(ctx context.Context) (*view, error) {
	v := &view{
		clients:     map[string]*mpClient{},
		scopes:      map[string]*Scope{},
		access:      map[string]map[string]bool{},
		delegations: map[delegation]bool{},
	}
	db := w.s.wdb
	rows, err := db.QueryContext(ctx, `SELECT body FROM sim_scopes WHERE env = ?`, w.name)
	if err != nil {
		return nil, fmt.Errorf("load scopes: %w", err)
	}
	for rows.Next() {
		var body string
		var sc Scope
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load scopes: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &sc); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load scopes: %w", err)
		}
		v.scopes[sc.Name] = &sc
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load scopes: %w", err)
	}

	rows, err = db.QueryContext(ctx, `SELECT scope, consumer_orgno FROM sim_scope_access WHERE env = ? AND state = 'APPROVED'`, w.name)
	if err != nil {
		return nil, fmt.Errorf("load access: %w", err)
	}
	for rows.Next() {
		var sc, org string
		if err := rows.Scan(&sc, &org); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load access: %w", err)
		}
		if v.access[sc] == nil {
			v.access[sc] = map[string]bool{}
		}
		v.access[sc][org] = true
	}
	rows.Close()

	rows, err = db.QueryContext(ctx, `SELECT consumer_orgno, supplier_orgno, scope FROM sim_delegations WHERE env = ?`, w.name)
	if err != nil {
		return nil, fmt.Errorf("load delegations: %w", err)
	}
	for rows.Next() {
		var d delegation
		if err := rows.Scan(&d.consumer, &d.supplier, &d.scope); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load delegations: %w", err)
		}
		v.delegations[d] = true
	}
	rows.Close()

	cs, err := loadMPClients(ctx, db, w.name, "")
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		v.clients[c.id] = c
	}
	return v, nil
}

// loadMPClients reads clients with their keys; id "" reads all of the environment.
func loadMPClients(ctx context.Context, db querier, env, id string) (map[string]*mpClient, error) {
	q := `SELECT client_id, client_orgno, active, body FROM sim_clients WHERE env = ?`
	args := []any{env}
	if id != "" {
		q += ` AND client_id = ?`
		args = append(args, id)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load clients: %w", err)
	}
	out := map[string]*mpClient{}
	for rows.Next() {
		var c mpClient
		var body string
		var cl client
		if err := rows.Scan(&c.id, &c.orgNo, &c.active, &body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load clients: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &cl); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load client %s: %w", c.id, err)
		}
		c.intType = cl.IntegrationType
		c.lifetime = cl.AccessTokenLifetime
		c.scopes = make(map[string]bool, len(cl.Scopes))
		for _, s := range cl.Scopes {
			c.scopes[s] = true
		}
		c.keys = map[string]mpKey{}
		out[c.id] = &c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load clients: %w", err)
	}

	q = `SELECT client_id, kid, jwk, exp FROM sim_client_keys WHERE env = ?`
	if id != "" {
		q += ` AND client_id = ?`
	}
	rows, err = db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cid, kid, raw string
		var exp int64
		if err := rows.Scan(&cid, &kid, &raw, &exp); err != nil {
			return nil, fmt.Errorf("load keys: %w", err)
		}
		var k jwk
		if err := json.Unmarshal([]byte(raw), &k); err != nil {
			return nil, fmt.Errorf("load key %s: %w", kid, err)
		}
		pub, err := rsaPublicKey(k.N, k.E)
		if err != nil {
			return nil, fmt.Errorf("load key %s: %w", kid, err)
		}
		if c := out[cid]; c != nil {
			c.keys[kid] = mpKey{pub: pub, exp: exp}
		}
	}
	return out, rows.Err()
}

func rsaPublicKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(nb) == 0 {
		return nil, errors.New("n is not base64url")
	}
	eb, err := base64.RawURLEncoding.DecodeString(e)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("e is not a base64url integer")
	}
	ev := 0
	for _, b := range eb {
		ev = ev<<8 | int(b)
	}
	if ev < 3 || ev%2 == 0 {
		return nil, errors.New("e is not a valid exponent")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: ev}, nil
}
