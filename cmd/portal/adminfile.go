package main

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"portal/internal/keys"
)

// adminFile is the admin client's credentials file, as the simulator writes it and as an
// operator writes it for a real environment.
type adminFile struct {
	Issuer         string   `json:"issuer"`
	SelfServiceURL string   `json:"selfservice_url"`
	PlatformURL    string   `json:"platform_url"`
	Org            string   `json:"org"`
	OrgNo          string   `json:"orgno"`
	ClientID       string   `json:"client_id"`
	Scopes         []string `json:"scopes"`
	CertChainPEM   string   `json:"certificate_chain_pem"`
	PrivateKeyPEM  string   `json:"private_key_pem"`
}

func readAdminFile(path string) (adminFile, error) {
	var a adminFile
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return a, fmt.Errorf("admin credentials %s is a directory, not the JSON file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return a, fmt.Errorf("admin credentials %s do not exist", path)
		}
		return a, fmt.Errorf("admin credentials %s cannot be read: %v", path, errors.Unwrap(err))
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("admin credentials %s are not valid JSON: %v", path, describeJSONError(err))
	}
	if a.ClientID == "" || a.PrivateKeyPEM == "" {
		return a, fmt.Errorf("admin credentials %s lack client_id or private_key_pem", path)
	}
	return a, nil
}

// adminCredentials are an admin file's key and certificate chain, parsed and checked.
type adminCredentials struct {
	Key   *keys.PrivateKey
	Chain []*x509.Certificate // leaf first; empty when the client authenticates with a registered key
}

// credentials parses the file's key and chain. Each mistake is named with the file; a chain
// in any order is put leaf first. requireCert refuses a file without a certificate chain.
func (a adminFile) credentials(path string, requireCert bool) (adminCredentials, []string) {
	var problems []string
	key, err := keys.ParsePrivate([]byte(a.PrivateKeyPEM))
	if err != nil {
		problems = append(problems, fmt.Sprintf("admin credentials %s: private_key_pem: %v", path, err))
	}
	if len(a.Scopes) == 0 {
		problems = append(problems, fmt.Sprintf("admin credentials %s list no scopes: give the admin client's scopes, for example [\"idporten:dcr.read\", \"idporten:dcr.write\"]", path))
	}
	var chain []*x509.Certificate
	if strings.TrimSpace(a.CertChainPEM) != "" {
		certs, err := parseCertificates([]byte(a.CertChainPEM))
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("admin credentials %s: certificate_chain_pem: %v", path, err))
		case len(certs) == 0:
			problems = append(problems, fmt.Sprintf("admin credentials %s: certificate_chain_pem holds no CERTIFICATE block", path))
		case key != nil:
			chain, err = orderChain(key, certs)
			if err != nil {
				problems = append(problems, fmt.Sprintf("admin credentials %s: certificate_chain_pem: %v", path, err))
			}
		}
	} else if !requireCert && key != nil && key.KID == "" {
		problems = append(problems, fmt.Sprintf("admin credentials %s have neither a certificate_chain_pem nor a kid: give the private key as a JWK with the kid registered on the admin client", path))
	} else if requireCert {
		problems = append(problems, fmt.Sprintf("admin credentials %s have no certificate_chain_pem: Digdir's self-service API wants the admin client "+
			"to authenticate with the organisation's business certificate (\"Selvbetjeningsklienten må bruke virksomhetssertifikat\"); "+
			"add the certificate chain, or set admin_without_certificate for this environment if the admin client uses a registered key", path))
	}
	return adminCredentials{Key: key, Chain: chain}, problems
}

// parseCertificates reads every CERTIFICATE block of a PEM text; other blocks are skipped.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d cannot be read: %v", len(out)+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// orderChain puts the certificate that matches the key first and follows it with its issuers
// as far as the given certificates go; any that are not on that path come last. Files
// exported by different tools put the CA first or last: Maskinporten wants the leaf first.
func orderChain(key *keys.PrivateKey, certs []*x509.Certificate) ([]*x509.Certificate, error) {
	leaf := -1
	for i, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(key.Public()) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return nil, errors.New("no certificate matches the private key")
	}
	used := make([]bool, len(certs))
	out := []*x509.Certificate{certs[leaf]}
	used[leaf] = true
	for cur := certs[leaf]; ; {
		next := -1
		for i, c := range certs {
			if !used[i] && bytes.Equal(cur.RawIssuer, c.RawSubject) {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		out = append(out, certs[next])
		cur = certs[next]
	}
	for i, c := range certs {
		if !used[i] {
			out = append(out, c)
		}
	}
	return out, nil
}
