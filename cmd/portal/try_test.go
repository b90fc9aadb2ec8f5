package main

// `portal try` through run, against a started `portal sim`: a client with a key file runs the
// whole chain; a wrong kid stops at the token step with its explanation and a failing exit;
// the admin client signs with its business certificate from a legacy-encrypted PKCS#12 file
// and from PEM.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"portal/internal/keys"
	"portal/internal/maskinporten"
)

// tryLine is the part of a `portal try` JSON line the test reads.
type tryLine struct {
	Step     string `json:"step"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	Status   int    `json:"status"`
	Curl     string `json:"curl"`
	Findings []struct {
		Code     string `json:"code"`
		Severity string `json:"severity"`
		Title    string `json:"title"`
	} `json:"findings"`
	Response json.RawMessage `json:"response"`
}

var fullJWT = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{20,}`)

func runTryCommand(t *testing.T, args ...string) ([]tryLine, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), chainStepsTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"try"}, args...), func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	var lines []tryLine
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if l == "" {
			continue
		}
		var tl tryLine
		if jerr := json.Unmarshal([]byte(l), &tl); jerr != nil {
			t.Fatalf("not a JSON line: %q: %v", l, jerr)
		}
		lines = append(lines, tl)
	}
	return lines, stdout.String(), err
}

func TestTryCommandAgainstPortalSim(t *testing.T) {
	dir := t.TempDir()
	startChainSim(t, dir)
	admin, adminSigner := chainAdmin(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), chainStepsTimeout)
	defer cancel()
	httpClient := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(httpClient.CloseIdleConnections)
	mp, err := maskinporten.New(maskinporten.Config{Issuer: admin.Issuer, SelfServiceURL: admin.SelfServiceURL, HTTPClient: httpClient,
		Admin: &maskinporten.Credentials{ClientID: admin.ClientID, Signer: adminSigner, Scopes: []string{"idporten:dcr.read", "idporten:dcr.write"}}})
	if err != nil {
		t.Fatal(err)
	}
	const scope = "altinn:serviceowner/instances.read"
	reg, err := mp.CreateClient(ctx, maskinporten.Registration{ClientName: "try command", Description: "Tried from the command line",
		IntegrationType: maskinporten.IntegrationMaskinporten, ApplicationType: maskinporten.ApplicationWeb,
		TokenEndpointAuthMethod: maskinporten.AuthPrivateKeyJWT, GrantTypes: []string{maskinporten.GrantType}, Scopes: []string{scope}})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	raw, err := chainKey()
	if err != nil {
		t.Fatal(err)
	}
	const kid = "try-command-1"
	priv, err := keys.NewPrivateKey(raw, kid, keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	pj := priv.PublicJWK()
	if _, err := mp.ReplaceJWKS(ctx, reg.ClientID, []maskinporten.JWK{{Kty: pj.Kty, Kid: pj.Kid, Alg: pj.Alg, Use: pj.Use, E: pj.E, N: pj.N}}); err != nil {
		t.Fatalf("post jwks: %v", err)
	}
	keyPEM, err := priv.PKCS8PEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("the whole chain with a key file", func(t *testing.T) {
		lines, out, err := runTryCommand(t, "--data", dir, "--env", "tt02", "--client-id", reg.ClientID, "--key", keyFile, "--kid", kid,
			"--scope", scope, "--exchange", "--test", "--instances", admin.Org+"/soknad-om-tilskudd", "--size", "3")
		if err != nil {
			t.Fatalf("portal try: %v\n%s", err, out)
		}
		want := []string{"grant", "token", "exchange", "instances"}
		if len(lines) != len(want) {
			t.Fatalf("%d lines:\n%s", len(lines), out)
		}
		for i, l := range lines {
			if l.Step != want[i] || !l.OK || l.Error != "" {
				t.Errorf("line %d: %+v", i, l)
			}
			for _, f := range l.Findings {
				if f.Severity == "error" {
					t.Errorf("line %d: finding %+v", i, f)
				}
			}
		}
		var page struct {
			Count int    `json:"count"`
			Next  string `json:"next"`
		}
		if err := json.Unmarshal(lines[3].Response, &page); err != nil || page.Count != 3 || page.Next == "" {
			t.Errorf("instances: %v %s", err, lines[3].Response)
		}
		if !strings.Contains(lines[2].Curl, "$MASKINPORTEN_TOKEN") || !strings.Contains(lines[2].Curl, "test=true") {
			t.Errorf("exchange curl %q", lines[2].Curl)
		}
		if m := fullJWT.FindString(out); m != "" {
			t.Errorf("the output shows a token or grant: %.40s…", m)
		}
	})

	t.Run("revealed", func(t *testing.T) {
		lines, out, err := runTryCommand(t, "--data", dir, "--client-id", reg.ClientID, "--key", keyFile, "--kid", kid, "--scope", scope, "--reveal")
		if err != nil || len(lines) != 2 {
			t.Fatalf("%v\n%s", err, out)
		}
		if fullJWT.FindString(lines[1].Curl) == "" {
			t.Errorf("--reveal left the grant out of the curl command: %q", lines[1].Curl)
		}
	})

	t.Run("an unknown kid stops at the token step", func(t *testing.T) {
		lines, out, err := runTryCommand(t, "--data", dir, "--client-id", reg.ClientID, "--key", keyFile, "--kid", "not-registered",
			"--scope", scope, "--exchange")
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			t.Fatalf("exit: %v (want a failure, not a usage error)\n%s", err, out)
		}
		if len(lines) != 2 || !lines[0].OK || lines[1].Step != "token" || lines[1].OK || lines[1].Status != http.StatusBadRequest {
			t.Fatalf("lines:\n%s", out)
		}
		codes := map[string]bool{}
		for _, f := range lines[1].Findings {
			codes[f.Code] = true
		}
		// The admin credentials let the command read the client, so the local check names its keys.
		if !codes["mp.unknown_kid"] || !codes["grant.kid_unknown"] {
			t.Errorf("findings of the failing step: %+v", lines[1].Findings)
		}
	})

	// The seeded admin client has no keys: it signs with the organisation's business certificate.
	adminKey, err := keys.ParsePrivate([]byte(admin.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	chain := adminSigner.Chain
	p12, err := pkcs12.Legacy.Encode(adminKey.RSA(), chain[0], chain[1:], "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	p12File, pwFile, pemFile := filepath.Join(certDir, "virksomhet.p12"), filepath.Join(certDir, "pw"), filepath.Join(certDir, "virksomhet.pem")
	var pemData []byte
	for _, c := range []*x509.Certificate{chain[1], chain[0]} { // CA first: the command finds the leaf by its key
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	pemData = append(pemData, admin.PrivateKeyPEM...)
	for name, data := range map[string][]byte{p12File: p12, pwFile: []byte("s3cret\n"), pemFile: pemData} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a business certificate from PKCS#12 and PEM", func(t *testing.T) {
		for _, args := range [][]string{{"--x5c", p12File, "--password-file", pwFile}, {"--x5c", pemFile}} {
			lines, out, err := runTryCommand(t, append([]string{"--data", dir, "--client-id", admin.ClientID, "--scope", "idporten:dcr.read"}, args...)...)
			if err != nil || len(lines) != 2 || !lines[1].OK {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		wrong := filepath.Join(certDir, "wrong")
		if err := os.WriteFile(wrong, []byte("nope"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := runTryCommand(t, "--data", dir, "--client-id", admin.ClientID, "--scope", "idporten:dcr.read", "--x5c", p12File, "--password-file", wrong)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "password") {
			t.Errorf("wrong password: %v", err)
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"--data", dir, "--scope", scope, "--key", keyFile},
			{"--data", dir, "--client-id", "x", "--key", keyFile},
			{"--data", dir, "--client-id", "x", "--scope", scope},
			{"--data", dir, "--client-id", "x", "--scope", scope, "--key", keyFile, "--x5c", p12File},
			{"--data", dir, "--client-id", "x", "--scope", scope, "--key", keyFile, "--lifetime", "5m"},
			{"--data", dir, "--client-id", "x", "--scope", scope, "--key", keyFile, "--env", "staging"},
			{"--data", dir, "--client-id", "x", "--scope", scope, "--key", keyFile, "--env", "prod", "--test"},
		} {
			_, _, err := runTryCommand(t, args...)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("%v: %v, want a usage error", args, err)
			}
		}
	})
}
