package clients_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/sim"
	"portal/internal/store"
)

// BenchmarkSync10k measures a full sync of 10,000 clients from the simulator into an empty
// mirror: the client list, all 10,000 key sets (with the default concurrency of 4) and the
// write of every row. Run with: go test -run '^$' -bench Sync10k -benchtime 3x ./internal/clients/
func BenchmarkSync10k(b *testing.B) {
	const n = 10_000
	pool := make([]*rsa.PrivateKey, 3)
	for i := range pool {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		pool[i] = k
	}
	seed := sim.SeedFile{Envs: []string{"tt02"}}
	for i := range n {
		pub := pool[i%len(pool)].PublicKey
		jwk, _ := json.Marshal(map[string]any{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": fmt.Sprintf("bench-%05d", i),
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())})
		seed.Clients = append(seed.Clients, sim.SeedClient{ClientOrgNo: "313554430", ClientName: fmt.Sprintf("bench client %05d", i),
			Description: "seeded for the sync benchmark", Scopes: clients.AltinnServiceOwnerScopes, Keys: []json.RawMessage{jwk}})
	}
	dir := b.TempDir()
	seedPath := filepath.Join(dir, "seed.json")
	data, _ := json.Marshal(seed)
	if err := os.WriteFile(seedPath, data, 0o600); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	next := 0
	s, err := sim.Open(b.Context(), sim.Config{BaseURL: "http://" + srv.Listener.Addr().String(), DataDir: filepath.Join(dir, "sim"),
		SeedFile: seedPath, AppInstances: 1, GenerateKey: func() (*rsa.PrivateKey, error) { next++; return pool[next%len(pool)], nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	srv.Config.Handler = s.Handler()
	srv.Start()
	defer srv.Close()

	cred, err := s.AdminCredentials("tt02")
	if err != nil {
		b.Fatal(err)
	}
	key, err := keys.ParsePrivate([]byte(cred.PrivateKeyPEM))
	if err != nil {
		b.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := []byte(cred.CertificateChainPEM); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		chain = append(chain, c)
	}
	mp, err := maskinporten.New(maskinporten.Config{Issuer: cred.Issuer, SelfServiceURL: cred.SelfServiceURL, HTTPClient: srv.Client(),
		Admin: &maskinporten.Credentials{ClientID: cred.ClientID, Signer: maskinporten.Signer{Key: key, Chain: chain}, Scopes: cred.Scopes}})
	if err != nil {
		b.Fatal(err)
	}

	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		db, err := store.Open(b.Context(), filepath.Join(dir, fmt.Sprintf("portal-%d.db", i)), nil)
		if err != nil {
			b.Fatal(err)
		}
		svc, err := clients.New(db, []clients.Env{{Name: "tt02", Upstream: mp}}, clients.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := svc.Sync(b.Context(), "tt02")
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if res.Clients != n+1 || res.Written != n+1 || res.KeyErrors != 0 {
			b.Fatalf("sync: %+v", res)
		}
		b.ReportMetric(took.Seconds(), "s/sync")
		svc.Close()
		db.Close()
		b.StartTimer()
	}
}
