package sim_test

import (
	"testing"

	"portal/internal/sim"
)

func TestStatePersists(t *testing.T) {
	dir := t.TempDir()
	cfg := sim.Config{BaseURL: baseURL, DataDir: dir, GenerateKey: simKeys(t), AppInstances: 150}
	s1, err := sim.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h1 := &harness{t: t, sim: s1, cfg: cfg}
	h1.srv = newServer(t, s1)
	creds1, _ := s1.AdminCredentials("tt02")
	kid1 := h1.publishedKeys("tt02").Keys[0].KeyID
	id := h1.newClient("tt02", h1.adminToken("tt02"), []string{readScope}, clientKey(t, 0), "persist-1")
	g := grant{key: clientKey(t, 0), kid: "persist-1", claims: baseClaims(id, readScope, h1.now("tt02"))}.sign(t)
	if res := h1.token("tt02", g); res.status != 200 {
		t.Fatalf("token: %d %v", res.status, res.body)
	}
	h1.srv.Close()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// Keys never generated again: a generator that fails proves the secrets were loaded.
	cfg.GenerateKey = nil
	h2 := openHarness(t, cfg)
	creds2, _ := h2.sim.AdminCredentials("tt02")
	if creds2.ClientID != creds1.ClientID || creds2.PrivateKeyPEM != creds1.PrivateKeyPEM || creds2.CertificateChainPEM != creds1.CertificateChainPEM {
		t.Error("admin credentials changed across a restart")
	}
	if kid := h2.publishedKeys("tt02").Keys[0].KeyID; kid != kid1 {
		t.Errorf("signing key changed: %s -> %s", kid1, kid)
	}
	if res := h2.token("tt02", g); res.status != 400 || res.body["error_uri"] != baseURL+"/sim/tt02/maskinporten/errors/MP-012" {
		t.Errorf("replayed jti after restart: %d %v", res.status, res.body)
	}
	g2 := grant{key: clientKey(t, 0), kid: "persist-1", claims: baseClaims(id, readScope, h2.now("tt02"))}.sign(t)
	if res := h2.token("tt02", g2); res.status != 200 {
		t.Errorf("client key after restart: %d %v", res.status, res.body)
	}
	var list []map[string]any
	h2.api("tt02", "GET", "/clients", h2.adminToken("tt02"), nil, &list)
	found := false
	for _, c := range list {
		found = found || c["client_id"] == id
	}
	if !found {
		t.Error("client lost across a restart")
	}
}
