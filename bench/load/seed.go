package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"

	"portal/internal/audit"
	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/sim"
	"portal/internal/store"
)

// password is every seeded person's password.
const password = "bench password, not secret"

var benchNamespace = uuid.MustParse("0b7a3c1e-5d2f-4a8b-9c6d-1e2f3a4b5c6d")

// seeded is what the seeding made and the load needs to know.
type seeded struct {
	pool    []*rsa.PrivateKey
	clients []seededClient // index i: tt02 below half, prod above
	teams   int
	teamIDs []int64 // teamIDs[t] is team t's id in the portal
	admins  []string
	owners  []string // owners[t] owns team t (0-based)
	steps   []timing
}

type seededClient struct {
	env, id, name string
	team          int // 0-based
	kids          []string
	pool          []int // the pool key behind each kid
	serviceOwner  bool  // holds the altinn:serviceowner scopes, so the try-it chain reaches Storage
}

type timing struct {
	what string
	took time.Duration
}

func (s *seeded) step(what string, start time.Time) {
	s.steps = append(s.steps, timing{what, time.Since(start)})
	logf("seeded: %s in %s", what, time.Since(start).Round(10*time.Millisecond))
}

var (
	words  = []string{"reader", "writer", "sync", "export", "archive", "broker", "forms", "ledger", "search", "notify"}
	scopes = [][]string{clients.AltinnServiceOwnerScopes, {"altinn:broker.read"}, {"altinn:correspondence.write", "altinn:broker.write"}, nil}
)

// plan lays out the integrations: half in each environment, spread over the teams, one or
// two keys each from the pool under kids of their own.
func plan(o options) *seeded {
	s := &seeded{teams: o.teams}
	for i := range o.integrations {
		env := "tt02"
		if i >= o.integrations/2 {
			env = "prod"
		}
		c := seededClient{env: env, id: uuid.NewSHA1(benchNamespace, fmt.Appendf(nil, "%s/%d", env, i)).String(),
			name: fmt.Sprintf("%s %s %d", words[i%10], words[(i/10)%10], i), team: i % o.teams,
			serviceOwner: (i/o.teams)%4 == 0}
		for j := range 1 + (i/7)%2 {
			c.kids = append(c.kids, fmt.Sprintf("bench-%s-%05d-%d", env, i, j))
			c.pool = append(c.pool, (i+j*3)%o.poolKeys)
		}
		s.clients = append(s.clients, c)
	}
	s.admins = []string{"admin@bench.example"}
	for t := range o.teams {
		s.owners = append(s.owners, fmt.Sprintf("owner%02d@bench.example", t+1))
	}
	return s
}

func seed(ctx context.Context, o options, dir string) (*seeded, error) {
	s := plan(o)
	t0 := time.Now()
	pool, err := keyPool(o.poolKeys)
	if err != nil {
		return nil, err
	}
	s.pool = pool
	s.step(fmt.Sprintf("%d RSA-2048 keys for the pool", len(pool)), t0)

	t0 = time.Now()
	kek, err := keys.CreateKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, filepath.Join(dir, "portal.db"), nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	s.step("key-encryption key and empty database", t0)

	// The audit trail comes first so that its events, dated in the past, precede in id order
	// everything the seeding and the portal record at the present time.
	t0 = time.Now()
	if err := seedAudit(ctx, db, s, o.auditEvents, o.auditBatch); err != nil {
		return nil, err
	}
	s.step(fmt.Sprintf("%d audit events (batches of %d, hash-chained)", o.auditEvents, o.auditBatch), t0)

	t0 = time.Now()
	authSvc, err := auth.NewService(db, auth.Options{})
	if err != nil {
		return nil, err
	}
	teamIDs, err := seedPeople(ctx, authSvc, s)
	if err != nil {
		return nil, err
	}
	s.teamIDs = teamIDs
	s.step(fmt.Sprintf("%d people and %d teams", len(s.admins)+len(s.owners), len(teamIDs)), t0)

	t0 = time.Now()
	if err := seedUpstreamAndMirror(ctx, o, dir, db, s); err != nil {
		return nil, err
	}
	s.step(fmt.Sprintf("%d integrations in the simulators and the mirror (through a real sync)", len(s.clients)), t0)

	t0 = time.Now()
	if err := seedOwnership(ctx, db, kek, s, teamIDs); err != nil {
		return nil, err
	}
	s.step("team ownership and key records (tt02 keys kept, sealed under the KEK; prod keys handed out)", t0)
	return s, nil
}

func keyPool(n int) ([]*rsa.PrivateKey, error) {
	pool := make([]*rsa.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { pool[i], errs[i] = rsa.GenerateKey(rand.Reader, 2048) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return pool, nil
}

// seedAudit appends events in transactions of batch events through audit.Batch, which writes
// the chain audit.Record would, so it is the one `portal audit verify` checks. Events are one second apart, ending an hour
// ago, and name the seeded integrations, teams and people.
func seedAudit(ctx context.Context, db *store.DB, s *seeded, events, batch int) error {
	actions := []string{"integration.update", "key.add", "integration.try", "signin", "key.delete", "integration.create", "key.renew"}
	end := time.Now().Add(-time.Hour)
	people := append(append([]string{}, s.admins...), s.owners...)
	for done := 0; done < events; {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			b, err := audit.NewBatch(ctx, tx)
			if err != nil {
				return err
			}
			defer b.Close()
			for i := 0; i < batch && done < events; i, done = i+1, done+1 {
				c := s.clients[done%len(s.clients)]
				actor := done % len(people)
				ev := audit.New(audit.Meta{ActorID: int64(actor + 1), Actor: people[actor], Address: "127.0.0.1",
					RequestID: fmt.Sprintf("seed%07d", done)}, actions[done%len(actions)], audit.Success,
					map[string]any{"n": done, "kid": c.kids[0]})
				ev.Env, ev.TeamID, ev.TargetType, ev.Target = c.env, int64(c.team+1), "integration", c.id
				at := end.Add(-time.Duration(events-done) * time.Second)
				if _, err := b.Append(ctx, ev, at); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("audit events: %w", err)
		}
	}
	return nil
}

// seedPeople adds the administrators and one owner per team, and returns the team ids.
func seedPeople(ctx context.Context, a *auth.Service, s *seeded) ([]int64, error) {
	meta := audit.Meta{Actor: "bench"}
	var adminID int64
	for i, email := range s.admins {
		u, err := a.AddUser(ctx, email, fmt.Sprintf("Bench Admin %d", i+1), auth.RoleAdmin, password, meta)
		if err != nil {
			return nil, fmt.Errorf("add %s: %w", email, err)
		}
		if i == 0 {
			adminID = u.ID
		}
	}
	for i, email := range s.owners {
		if _, err := a.AddUser(ctx, email, fmt.Sprintf("Team Owner %02d", i+1), auth.RoleMember, password, meta); err != nil {
			return nil, fmt.Errorf("add %s: %w", email, err)
		}
	}
	p, err := a.LoadPrincipal(ctx, adminID)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for t := range s.teams {
		tm, err := a.CreateTeam(ctx, p, fmt.Sprintf("Team %02d", t+1), meta)
		if err != nil {
			return nil, fmt.Errorf("team %d: %w", t+1, err)
		}
		if err := a.PutMember(ctx, p, tm.ID, s.owners[t], auth.TeamOwner, meta); err != nil {
			return nil, fmt.Errorf("owner of team %d: %w", t+1, err)
		}
		ids = append(ids, tm.ID)
	}
	return ids, nil
}

// seedUpstreamAndMirror puts the integrations into the simulators through their seed files
// (one per environment) and then fills the mirror with a real sync from them, so the mirror
// is exactly what the portal's own sync will find.
func seedUpstreamAndMirror(ctx context.Context, o options, dir string, db *store.DB, s *seeded) error {
	files := map[string]*sim.SeedFile{}
	for _, env := range sim.Environments {
		files[env] = &sim.SeedFile{Envs: []string{env}}
	}
	now := time.Now()
	for i, c := range s.clients {
		sc := sim.SeedClient{ClientID: c.id, ClientOrgNo: sim.DefaultOrgNo, ClientName: c.name,
			Description: "Integration number " + fmt.Sprint(i) + " for " + words[(i/100)%10],
			Scopes:      scopes[(i/o.teams)%4]}
		for j, kid := range c.kids {
			pub := s.pool[c.pool[j]].PublicKey
			exp := now.Add(time.Duration(1+i%400) * 24 * time.Hour).Unix()
			jwk, err := json.Marshal(map[string]any{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "exp": exp,
				"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())})
			if err != nil {
				return err
			}
			sc.Keys = append(sc.Keys, jwk)
		}
		files[c.env].Clients = append(files[c.env].Clients, sc)
	}

	srv := httptest.NewUnstartedServer(nil)
	defer srv.Close()
	base := "http://" + srv.Listener.Addr().String()
	next := 0
	genKey := func() (*rsa.PrivateKey, error) { next++; return s.pool[next%len(s.pool)], nil }
	var simulator *sim.Sim
	for _, env := range sim.Environments {
		path := filepath.Join(dir, "bench-seed-"+env+".json")
		b, err := json.Marshal(files[env])
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
		if simulator != nil {
			if err := simulator.Close(); err != nil {
				return err
			}
		}
		simulator, err = sim.Open(ctx, sim.Config{BaseURL: base, DataDir: dir, SeedFile: path, GenerateKey: genKey})
		if err != nil {
			return fmt.Errorf("seed the %s simulator: %w", env, err)
		}
		_ = os.Remove(path)
	}
	defer simulator.Close()
	srv.Config.Handler = simulator.Handler()
	srv.Start()

	var envs []clients.Env
	for _, env := range sim.Environments {
		mp, err := adminClient(simulator, env, srv)
		if err != nil {
			return err
		}
		envs = append(envs, clients.Env{Name: env, Upstream: mp, Prod: env == "prod"})
	}
	svc, err := clients.New(db, envs, clients.Options{SyncConcurrency: 8})
	if err != nil {
		return err
	}
	defer svc.Close()
	for _, env := range sim.Environments {
		res, err := svc.Sync(ctx, env)
		if err != nil {
			return fmt.Errorf("sync %s: %w", env, err)
		}
		if res.KeyErrors > 0 {
			return fmt.Errorf("sync %s: %d key sets could not be read", env, res.KeyErrors)
		}
		logf("seeded: synced %s: %d clients (with the admin client), %d written", env, res.Clients, res.Written)
	}
	return nil
}

func adminClient(s *sim.Sim, env string, srv *httptest.Server) (*maskinporten.Client, error) {
	cred, err := s.AdminCredentials(env)
	if err != nil {
		return nil, err
	}
	key, err := keys.ParsePrivate([]byte(cred.PrivateKeyPEM))
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for rest := []byte(cred.CertificateChainPEM); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return maskinporten.New(maskinporten.Config{Issuer: cred.Issuer, SelfServiceURL: cred.SelfServiceURL, HTTPClient: srv.Client(),
		Admin: &maskinporten.Credentials{ClientID: cred.ClientID, Signer: maskinporten.Signer{Key: key, Chain: chain}, Scopes: cred.Scopes}})
}

// seedOwnership gives every integration its team and records its keys: tt02 keys as kept by
// the portal (sealed under the KEK, bound to environment, client and kid), prod keys as
// handed out.
func seedOwnership(ctx context.Context, db *store.DB, kek *keys.KEK, s *seeded, teamIDs []int64) error {
	ders := make([][]byte, len(s.pool))
	for i, k := range s.pool {
		pk, err := keys.NewPrivateKey(k, "pool", keys.RS256)
		if err != nil {
			return err
		}
		if ders[i], err = pk.PKCS8(); err != nil {
			return err
		}
	}
	now := time.Now()
	return db.Tx(ctx, func(tx *sql.Tx) error {
		for _, c := range s.clients {
			if err := store.SetIntegrationTeam(ctx, tx, c.env, c.id, teamIDs[c.team]); err != nil {
				return err
			}
			for j, kid := range c.kids {
				rec := store.KeyRecord{Env: c.env, ClientID: c.id, KID: kid, Custody: store.CustodyHandedOut, CreatedAt: now}
				if c.env == "tt02" {
					sealed, err := keys.Seal(kek, c.env, c.id, kid, ders[c.pool[j]])
					if err != nil {
						return err
					}
					rec.Custody, rec.Sealed, rec.KEKID = store.CustodyKept, sealed, kek.ID()
				}
				if err := store.PutKeyRecord(ctx, tx, rec); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
