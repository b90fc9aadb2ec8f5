package sim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// oidOrganizationIdentifier is X.520 organizationIdentifier (2.5.4.97), where Norwegian
// business certificates carry "NTRNO-<orgno>".
var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

func defaultGenerateKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
}

func encodeKeyPEM(k *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("encode private key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func parseKeyPEM(s string) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("parse private key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("parse private key: not RSA")
	}
	rk.Precompute()
	return rk, nil
}

func encodeCertPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("parse certificate: no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}

// keyID derives a stable key id from the public modulus, so a persisted key keeps its kid.
func keyID(prefix string, pub *rsa.PublicKey) string {
	sum := sha256.Sum256(pub.N.Bytes())
	return prefix + base64.RawURLEncoding.EncodeToString(sum[:12])
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n, nil
}

// newCA makes the environment's self-signed test CA, the only issuer its Maskinporten trusts
// for x5c grants (real business certificates come from Buypass or Commfides).
func newCA(env string, key *rsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Country:      []string{"NO"},
			Organization: []string{"Portal simulator"},
			CommonName:   "Simulated " + env + " business certificate CA",
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// CertificateRequest describes a business certificate (virksomhetssertifikat) for
// IssueBusinessCertificate.
type CertificateRequest struct {
	OrgNo   string
	OrgName string
	// SerialNumberStyle puts the organisation number in the subject's serialNumber instead of
	// organizationIdentifier ("NTRNO-<orgno>"), as older certificates do.
	SerialNumberStyle bool
	NotBefore         time.Time // zero: an hour before the environment's now
	NotAfter          time.Time // zero: two years after NotBefore
}

func issueCertificate(caCert *x509.Certificate, caKey *rsa.PrivateKey, pub crypto.PublicKey, req CertificateRequest) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	subj := pkix.Name{
		Country:      []string{"NO"},
		Organization: []string{req.OrgName},
		CommonName:   req.OrgName,
	}
	if req.SerialNumberStyle {
		subj.SerialNumber = req.OrgNo
	} else {
		subj.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidOrganizationIdentifier, Value: "NTRNO-" + req.OrgNo}}
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subj,
		NotBefore:             req.NotBefore,
		NotAfter:              req.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, caCert, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("issue business certificate for %s: %w", req.OrgNo, err)
	}
	return x509.ParseCertificate(der)
}

// certOrgNo reads the organisation number from a business certificate's subject, either from
// organizationIdentifier ("NTRNO-<orgno>") or from serialNumber.
func certOrgNo(c *x509.Certificate) (string, bool) {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidOrganizationIdentifier) {
			if v, ok := n.Value.(string); ok {
				if no, ok := strings.CutPrefix(v, "NTRNO-"); ok && isOrgNo(no) {
					return no, true
				}
			}
		}
	}
	if isOrgNo(c.Subject.SerialNumber) {
		return c.Subject.SerialNumber, true
	}
	return "", false
}

func isOrgNo(s string) bool {
	if len(s) != 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
