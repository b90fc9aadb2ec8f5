package main

// The whole chain against a started `portal sim`, through the portal's own upstream clients
// only: admin token with an x5c grant, a new client with a key, a kid grant, verification
// against the published JWKS, the Altinn exchange, two pages of instances and a download.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/altinn"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/sim"
)

const (
	chainStartTimeout = 60 * time.Second
	chainStopTimeout  = 30 * time.Second
	chainStepsTimeout = 60 * time.Second
)

var chainListeningPattern = regexp.MustCompile(`simulators listening on (http://\S+)/sim/`)

// chainKey is generated once per test binary.
var chainKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, keys.DefaultBits)
})

// startChainSim runs `portal sim` on a free loopback port and returns its base URL; the
// command is stopped, and its return awaited, when the test ends.
func startChainSim(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &browserLog{}, &browserLog{}
	stopped := make(chan struct{})
	var runErr error
	go func() {
		defer close(stopped)
		runErr = run(ctx, []string{"sim", "--addr", "127.0.0.1:0", "--data", dir},
			func(string) string { return "" }, strings.NewReader(""), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
			if runErr != nil {
				t.Errorf("portal sim returned %v\nstderr:\n%s", runErr, stderr)
			}
		case <-time.After(chainStopTimeout):
			t.Errorf("portal sim did not return within %s of cancellation", chainStopTimeout)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, chainStartTimeout)
	defer wcancel()
	base, err := stdout.waitFor(wctx, stopped, chainListeningPattern)
	if err != nil {
		// The cleanup reports what run returned.
		t.Fatalf("portal sim did not start: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	return base
}

// chainAdmin reads the admin credential file as any client would.
func chainAdmin(t *testing.T, dir string) (sim.AdminCredentials, maskinporten.Signer) {
	t.Helper()
	b, err := os.ReadFile(sim.AdminFile(dir, "tt02"))
	if err != nil {
		t.Fatalf("read admin file: %v", err)
	}
	var a sim.AdminCredentials
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("admin file: %v", err)
	}
	if a.Issuer == "" || a.SelfServiceURL == "" || a.PlatformURL == "" || a.ClientID == "" || a.OrgNo == "" {
		t.Fatalf("admin file lacks members: %s", b)
	}
	key, err := keys.ParsePrivate([]byte(a.PrivateKeyPEM))
	if err != nil {
		t.Fatalf("admin private key: %v", err)
	}
	var chain []*x509.Certificate
	for rest := []byte(a.CertificateChainPEM); ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("admin certificate chain: %v", err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		t.Fatalf("admin certificate chain has %d certificates, want the business certificate and the CA", len(chain))
	}
	return a, maskinporten.Signer{Key: key, Alg: maskinporten.RS256, Chain: chain}
}

func TestChainAgainstPortalSim(t *testing.T) {
	dir := t.TempDir()
	base := startChainSim(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), chainStepsTimeout)
	defer cancel()

	admin, adminSigner := chainAdmin(t, dir)
	if want := base + "/sim/tt02/maskinporten/"; admin.Issuer != want {
		t.Fatalf("issuer %q, want %q", admin.Issuer, want)
	}
	httpClient := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(httpClient.CloseIdleConnections)

	// 1. The admin token, from an x5c grant.
	mp, err := maskinporten.New(maskinporten.Config{
		Issuer: admin.Issuer, SelfServiceURL: admin.SelfServiceURL, HTTPClient: httpClient,
		Admin: &maskinporten.Credentials{ClientID: admin.ClientID, Signer: adminSigner,
			Scopes: []string{"idporten:dcr.read", "idporten:dcr.write"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The token for changes: each kind of self-service call asks for its own scopes.
	adminTok, err := mp.AdminTokensFor(maskinporten.PurposeWrite).Token(ctx)
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	adminAT, err := mp.VerifyAccessToken(ctx, adminTok)
	if err != nil {
		t.Fatalf("verify admin token: %v", err)
	}
	if adminAT.ClientID != admin.ClientID || adminAT.ConsumerOrg != admin.OrgNo ||
		!slices.Equal(adminAT.Scopes, []string{"idporten:dcr.write"}) {
		t.Fatalf("admin token: client %q, consumer %q, scopes %v", adminAT.ClientID, adminAT.ConsumerOrg, adminAT.Scopes)
	}
	if amr, _ := adminAT.ClaimString("client_amr"); amr != "virksomhetssertifikat" {
		t.Errorf("admin token client_amr %q, want virksomhetssertifikat", amr)
	}

	// 2. A new Maskinporten client.
	const scope = "altinn:serviceowner/instances.read"
	reg, err := mp.CreateClient(ctx, maskinporten.Registration{
		ClientName:              "chain test",
		Description:             "Reads instances in the chain test",
		IntegrationType:         maskinporten.IntegrationMaskinporten,
		ApplicationType:         maskinporten.ApplicationWeb,
		TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT,
		GrantTypes:              []string{maskinporten.GrantType},
		Scopes:                  []string{scope},
	})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	if reg.ClientID == "" || reg.ClientOrgno != admin.OrgNo || !reg.Active || !slices.Equal(reg.Scopes, []string{scope}) {
		t.Fatalf("created client: id %q, orgno %q, active %v, scopes %v", reg.ClientID, reg.ClientOrgno, reg.Active, reg.Scopes)
	}
	if got, err := mp.GetClient(ctx, reg.ClientID); err != nil || got.ClientName != "chain test" {
		t.Fatalf("get client: %v, %+v", err, got)
	}
	if set, err := mp.GetJWKS(ctx, reg.ClientID); err != nil || len(set.Keys) != 0 {
		t.Fatalf("jwks of a new client: %v, %+v", err, set)
	}

	// 3. Its key.
	raw, err := chainKey()
	if err != nil {
		t.Fatal(err)
	}
	kid := keys.SuggestKID("chain test", "tt02", time.Now())
	if err := keys.CheckKID(kid); err != nil {
		t.Fatal(err)
	}
	priv, err := keys.NewPrivateKey(raw, kid, keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	pj := priv.PublicJWK()
	set, err := mp.ReplaceJWKS(ctx, reg.ClientID, []maskinporten.JWK{{Kty: pj.Kty, Kid: pj.Kid, Alg: pj.Alg, Use: pj.Use, E: pj.E, N: pj.N}})
	if err != nil {
		t.Fatalf("post jwks: %v", err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Kid != kid || set.Keys[0].N != pj.N || !set.Keys[0].Expires().After(time.Now()) {
		t.Fatalf("posted jwks answered %+v", set)
	}
	if got, err := mp.GetJWKS(ctx, reg.ClientID); err != nil || len(got.Keys) != 1 || got.Keys[0].Kid != kid {
		t.Fatalf("jwks after posting: %v, %+v", err, got)
	}

	// 4. A token for the new client from a kid grant, verified with the published JWKS.
	assertion, err := maskinporten.SignGrant(mp.Grant(reg.ClientID, scope), maskinporten.Signer{Key: priv, Alg: maskinporten.RS256, KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := mp.Token(ctx, assertion)
	if err != nil {
		t.Fatalf("token for the new client: %v", err)
	}
	if tr.TokenType != "Bearer" || tr.Scope != scope || tr.ExpiresIn <= 0 {
		t.Errorf("token response: type %q, scope %q, expires_in %d", tr.TokenType, tr.Scope, tr.ExpiresIn)
	}
	verifier, err := maskinporten.New(maskinporten.Config{Issuer: admin.Issuer, HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	at, err := verifier.VerifyAccessToken(ctx, tr.AccessToken)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	if at.ClientID != reg.ClientID || at.ConsumerOrg != admin.OrgNo || !slices.Equal(at.Scopes, []string{scope}) {
		t.Fatalf("access token: client %q, consumer %q, scopes %v", at.ClientID, at.ConsumerOrg, at.Scopes)
	}
	if amr, _ := at.ClaimString("client_amr"); amr != "private_key_jwt" {
		t.Errorf("client_amr %q, want private_key_jwt", amr)
	}
	if !at.Expires.After(time.Now()) {
		t.Errorf("access token expires at %s", at.Expires)
	}
	// The same grant is refused the second time (jti).
	var mpErr *maskinporten.Error
	if _, err := mp.Token(ctx, assertion); !errors.As(err, &mpErr) || mpErr.Status != http.StatusBadRequest || mpErr.Code != "invalid_grant" {
		t.Errorf("reused grant: %v, want 400 invalid_grant", err)
	}

	// 5. The Altinn token.
	al, err := altinn.New(altinn.Config{PlatformURL: admin.PlatformURL, HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	altinnTok, err := al.Exchange(ctx, tr.AccessToken, false)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	d, err := maskinporten.Decode(altinnTok)
	if err != nil {
		t.Fatalf("altinn token: %v", err)
	}
	if org, _ := d.ClaimString("urn:altinn:org"); org != admin.Org {
		t.Errorf("urn:altinn:org %q, want %q", org, admin.Org)
	}
	if orgNo, _ := d.ClaimString("urn:altinn:orgNumber"); orgNo != admin.OrgNo {
		t.Errorf("urn:altinn:orgNumber %q, want %q", orgNo, admin.OrgNo)
	}

	// 6. Two pages of the seeded app's 180 instances.
	appID := admin.Org + "/soknad-om-tilskudd"
	first, err := al.Instances(ctx, altinnTok, altinn.InstanceQuery{AppID: appID, Size: 100})
	if err != nil {
		t.Fatalf("first page: %v", err)
	}
	if first.Count != 100 || len(first.Instances) != 100 || first.Next == "" {
		t.Fatalf("first page: count %d, %d instances, next %q", first.Count, len(first.Instances), first.Next)
	}
	second, err := al.NextInstances(ctx, altinnTok, first)
	if err != nil {
		t.Fatalf("second page: %v", err)
	}
	if second.Count != 80 || len(second.Instances) != 80 {
		t.Fatalf("second page: count %d, %d instances", second.Count, len(second.Instances))
	}
	if _, err := al.NextInstances(ctx, altinnTok, second); !errors.Is(err, altinn.ErrNoNextPage) {
		t.Errorf("after the last page: %v, want ErrNoNextPage (next %q)", err, second.Next)
	}
	seen := map[string]bool{}
	for _, in := range slices.Concat(first.Instances, second.Instances) {
		if in.AppID != appID || in.Org != admin.Org {
			t.Fatalf("instance %s: app %q, org %q", in.ID, in.AppID, in.Org)
		}
		if seen[in.ID] {
			t.Fatalf("instance %s on both pages", in.ID)
		}
		seen[in.ID] = true
	}

	// 7. One data element, listed and downloaded.
	var inst altinn.Instance
	var elem altinn.DataElement
	for _, in := range first.Instances {
		if len(in.Data) > 0 {
			inst, elem = in, in.Data[0]
			break
		}
	}
	if elem.ID == "" {
		t.Fatal("no instance on the first page has a data element")
	}
	elems, err := al.DataElements(ctx, altinnTok, inst.ID)
	if err != nil {
		t.Fatalf("data elements: %v", err)
	}
	if !slices.ContainsFunc(elems, func(e altinn.DataElement) bool { return e.ID == elem.ID }) {
		t.Fatalf("data elements of %s lack %s", inst.ID, elem.ID)
	}
	dl, err := al.Data(ctx, altinnTok, inst.ID, elem.ID)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	body, err := io.ReadAll(dl.Body)
	dl.Body.Close()
	if err != nil {
		t.Fatalf("download body: %v", err)
	}
	if len(body) == 0 {
		t.Fatal("downloaded no bytes")
	}
	got, _, err := mime.ParseMediaType(dl.ContentType)
	want, _, _ := mime.ParseMediaType(elem.ContentType)
	if err != nil || got == "" || got != want {
		t.Errorf("content type %q, the element says %q", dl.ContentType, elem.ContentType)
	}
	if dl.ContentLength >= 0 && dl.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, read %d bytes", dl.ContentLength, len(body))
	}
	if elem.Size > 0 && elem.Size != int64(len(body)) {
		t.Errorf("element size %d, read %d bytes", elem.Size, len(body))
	}
	if dl.Filename == "" {
		t.Errorf("no file name in Content-Disposition")
	}
}
