package platform

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signer signs Altinn tokens. Altinn signs with an X.509 certificate and names the key by the
// certificate's SHA-1 thumbprint (kid as upper-case hex, x5t as base64url), so the simulator
// wraps its RSA key in a self-signed certificate. The certificate is derived only from the key,
// so it is the same after a restart.
type signer struct {
	key   *rsa.PrivateKey
	kid   string
	x5t   string
	certs []*x509.Certificate
}

func newSigner(key *rsa.PrivateKey, kid string) (*signer, error) {
	cert, err := signingCertificate(key)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(cert.Raw)
	if kid == "" {
		kid = strings.ToUpper(hex.EncodeToString(sum[:]))
	}
	return &signer{
		key:   key,
		kid:   kid,
		x5t:   base64.RawURLEncoding.EncodeToString(sum[:]),
		certs: []*x509.Certificate{cert},
	}, nil
}

// CertificateThumbprint returns the kid Altinn would use for key: the upper-case hex SHA-1 of
// the self-signed certificate the simulator builds around it.
func CertificateThumbprint(key *rsa.PrivateKey) (string, error) {
	cert, err := signingCertificate(key)
	if err != nil {
		return "", err
	}
	sum := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// signingCertificate builds a deterministic self-signed certificate: fixed validity and a
// serial number taken from the public key; PKCS#1 v1.5 signatures are deterministic too.
func signingCertificate(key *rsa.PrivateKey) (*x509.Certificate, error) {
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(sum[:16]),
		Subject:               pkix.Name{CommonName: "altinn-platform-token-signing", Organization: []string{"Simulated Altinn"}},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// sign produces a compact RS256 JWS with Altinn's header member order.
func (s *signer) sign(payload []byte) (string, error) {
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		X5t string `json:"x5t"`
		Typ string `json:"typ"`
	}{"RS256", s.kid, s.x5t, "JWT"})
	if err != nil {
		return "", fmt.Errorf("marshal header: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// acceptedAlgs are the JWS algorithms .NET's token handler verifies with RSA or EC keys.
var acceptedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

var errInvalidToken = errors.New("invalid token")

// verifyJWT checks the signature against keys (the kid's key first, then every key, as
// IdentityModel does when the kid is unknown) and the lifetime with the given clock skew:
// exp is required, nbf optional. It returns the claims in their original order.
func verifyJWT(token string, keys []jose.JSONWebKey, now time.Time, skew time.Duration) (claims, error) {
	if len(token) > 250*1024 || strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS", errInvalidToken)
	}
	jws, err := jose.ParseSigned(token, acceptedAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	kid := jws.Signatures[0].Header.KeyID
	ordered := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		if kid != "" && k.KeyID == kid {
			ordered = append([]jose.JSONWebKey{k}, ordered...)
			continue
		}
		ordered = append(ordered, k)
	}
	var payload []byte
	for _, k := range ordered {
		if payload, err = jws.Verify(k.Public().Key); err == nil {
			break
		}
	}
	if payload == nil {
		return nil, fmt.Errorf("%w: signature", errInvalidToken)
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	exp, ok := c.number("exp")
	if !ok {
		return nil, fmt.Errorf("%w: no exp", errInvalidToken)
	}
	// Expired when exp < now - skew; not yet valid when nbf > now + skew.
	if float64(now.Add(-skew).UnixNano())/1e9 > exp {
		return nil, fmt.Errorf("%w: expired", errInvalidToken)
	}
	if nbf, ok := c.number("nbf"); ok && nbf > float64(now.Add(skew).UnixNano())/1e9 {
		return nil, fmt.Errorf("%w: not yet valid", errInvalidToken)
	}
	return c, nil
}

// claim is one member of a JWT payload, value kept as raw JSON.
type claim struct {
	name  string
	value json.RawMessage
}

// claims keeps payload members in their original order, which the exchange preserves.
type claims []claim

func parseClaims(payload []byte) (claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil || t != json.Delim('{') {
		return nil, errors.New("payload is not a JSON object")
	}
	var c claims
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("payload member %q: %w", name, err)
		}
		c = append(c, claim{name, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return c, nil
}

func (c claims) raw(name string) (json.RawMessage, bool) {
	for _, cl := range c {
		if cl.name == name {
			return cl.value, true
		}
	}
	return nil, false
}

// str returns a string claim; a non-string value is rendered as its JSON text, which is what a
// .NET Claim value holds.
func (c claims) str(name string) (string, bool) {
	v, ok := c.raw(name)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, true
	}
	return string(v), true
}

func (c claims) number(name string) (float64, bool) {
	v, ok := c.raw(name)
	if !ok {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// without drops the first claim of each given name, as the exchange's List.Remove does.
func (c claims) without(names ...string) claims {
	out := append(claims(nil), c...)
	for _, n := range names {
		for i, cl := range out {
			if cl.name == n {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
	}
	return out
}

// set replaces the value of name in place, or appends it.
func (c claims) set(name string, v any) claims {
	b, _ := json.Marshal(v)
	for i, cl := range c {
		if cl.name == name {
			c[i].value = b
			return c
		}
	}
	return append(c, claim{name, b})
}

func (c claims) marshal() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, cl := range c {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(cl.name)
		b.Write(name)
		b.WriteByte(':')
		var compact bytes.Buffer
		if json.Compact(&compact, cl.value) == nil {
			b.Write(compact.Bytes())
		} else {
			b.WriteString("null")
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}
