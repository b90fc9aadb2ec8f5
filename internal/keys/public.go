package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxInputSize bounds what the parsers read; a JWK set of five keys with
// certificate chains fits well within it.
const MaxInputSize = 256 << 10

// PublicKey is an uploaded public key, ready to become the JWK Digdir expects.
type PublicKey struct {
	Key *rsa.PublicKey
	// KID and Alg as the input named them; empty when it named none
	// (PEM and certificates never do), to be filled in by the caller.
	KID string
	Alg Alg
	// Certificate is set when the key came with one.
	Certificate *Certificate
	// Format names what was read: "JWK", "JWK set", "PEM public key",
	// "PEM PKCS#1 public key", "PEM certificate", "DER public key", ...
	Format string
}

// Certificate keeps what a person needs to recognise a certificate.
type Certificate struct {
	Subject      string
	Issuer       string
	SerialNumber string // hexadecimal
	NotBefore    time.Time
	NotAfter     time.Time
	DER          []byte   // the certificate itself
	Chain        [][]byte // further certificates as given, leaf excluded
}

// Bits is the modulus size.
func (k *PublicKey) Bits() int { return k.Key.N.BitLen() }

// Thumbprint is the RFC 7638 SHA-256 thumbprint.
func (k *PublicKey) Thumbprint() string { return Thumbprint(k.Key) }

// JWK is the public JWK Digdir expects: kty, use "sig", alg (RS256 when the
// input named none), kid, e and n. The certificate is left out, because an
// x5c member locks the client to that certificate.
func (k *PublicKey) JWK() JWK { return publicJWK(k.Key, k.KID, k.Alg) }

// JWKWithCertificate is JWK plus x5c (leaf first), for a person who asked to
// lock the client to the certificate.
func (k *PublicKey) JWKWithCertificate() (JWK, error) {
	if k.Certificate == nil {
		return JWK{}, errors.New("keys: key came without a certificate")
	}
	j := k.JWK()
	j.X5C = append(j.X5C, base64.StdEncoding.EncodeToString(k.Certificate.DER))
	for _, c := range k.Certificate.Chain {
		j.X5C = append(j.X5C, base64.StdEncoding.EncodeToString(c))
	}
	return j, nil
}

// ParsePublic reads exactly one public key, checking certificates against the
// current time. See ParsePublicSet for the formats.
func ParsePublic(data []byte) (*PublicKey, error) {
	return ParsePublicAt(data, time.Now())
}

// ParsePublicAt is ParsePublic with certificates checked at now.
func ParsePublicAt(data []byte, now time.Time) (*PublicKey, error) {
	keys, err := ParsePublicSet(data, now)
	if err != nil {
		return nil, err
	}
	if len(keys) > 1 {
		return nil, refuse(ErrMultipleKeys, fmt.Sprintf(
			"the upload holds %d keys; upload one at a time", len(keys)))
	}
	return keys[0], nil
}

// ParsePublicSet reads one or more RSA public keys from a JWK, a JWK set
// (or a bare JSON array of JWKs), PEM ("PUBLIC KEY", "RSA PUBLIC KEY",
// "CERTIFICATE"), DER (SubjectPublicKeyInfo, PKCS#1 or certificate), or
// base64 DER pasted without PEM armour. Anything carrying private key material
// is refused with ErrPrivateKey, before any other check; certificates must be
// valid at now.
func ParsePublicSet(data []byte, now time.Time) ([]*PublicKey, error) {
	if len(data) > MaxInputSize {
		return nil, refuse(ErrMalformed, fmt.Sprintf("the upload is larger than %d KiB; upload a key or certificate", MaxInputSize>>10))
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, refuse(ErrNoKey, "the upload is empty")
	case bytes.Contains(data, []byte("-----BEGIN")):
		return parsePEM(data, now)
	case trimmed[0] == '{' || trimmed[0] == '[':
		return parseJSON(trimmed, now)
	case isBase64Text(trimmed):
		der, err := base64.StdEncoding.DecodeString(string(stripSpace(trimmed)))
		if err == nil {
			return parseDER(der, now, "base64 ")
		}
	}
	return parseDER(data, now, "")
}

// rawJWK holds a JWK's members untouched: names are matched exactly, as JWK
// member names are case sensitive.
type rawJWK map[string]json.RawMessage

// privateMembers are JWK members that hold secrets (RFC 7518 §6.3.2, §6.4).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

func (r rawJWK) hasPrivate() bool {
	for _, m := range privateMembers {
		if _, ok := r[m]; ok {
			return true
		}
	}
	return false
}

// str reads a string member; absent or null is "".
func (r rawJWK) str(name string) (string, error) {
	raw, ok := r[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", refuse(ErrMalformed, fmt.Sprintf("the JWK member %q is not a string", name))
	}
	return s, nil
}

// decodeJSON hides the decoder's messages, which may quote input bytes.
func decodeJSON(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return refuse(ErrMalformed, fmt.Sprintf("the upload is not valid JSON (error at byte %d)", syn.Offset))
	}
	return refuse(ErrMalformed, "the upload is JSON, but not a JWK or a JWK set")
}

func parseJSON(data []byte, now time.Time) ([]*PublicKey, error) {
	var raws []rawJWK
	format := "JWK"
	if data[0] == '[' {
		if err := decodeJSON(data, &raws); err != nil {
			return nil, err
		}
		format = "JWK set"
	} else {
		var top rawJWK
		if err := decodeJSON(data, &top); err != nil {
			return nil, err
		}
		if ks, ok := top["keys"]; ok {
			if err := decodeJSON(ks, &raws); err != nil {
				return nil, err
			}
			format = "JWK set"
		} else {
			raws = []rawJWK{top}
		}
	}
	// Refuse private material anywhere before looking at anything else.
	for _, r := range raws {
		if r.hasPrivate() {
			return nil, refusePrivate()
		}
	}
	if len(raws) == 0 {
		return nil, refuse(ErrNoKey, "the JWK set holds no keys")
	}
	out := make([]*PublicKey, 0, len(raws))
	for i, r := range raws {
		k, err := publicFromJWK(r, now)
		if err != nil {
			if len(raws) > 1 {
				return nil, fmt.Errorf("key %d of %d: %w", i+1, len(raws), err)
			}
			return nil, err
		}
		k.Format = format
		out = append(out, k)
	}
	return out, nil
}

func publicFromJWK(r rawJWK, now time.Time) (*PublicKey, error) {
	if r == nil {
		return nil, refuse(ErrMalformed, "the JWK is null")
	}
	var m [6]string
	for i, name := range []string{"kty", "n", "e", "alg", "use", "kid"} {
		s, err := r.str(name)
		if err != nil {
			return nil, err
		}
		m[i] = s
	}
	kty, n, e, alg, use, kid := m[0], m[1], m[2], m[3], m[4], m[5]
	pub, err := rsaFromJWK(kty, n, e)
	if err != nil {
		return nil, err
	}
	k := &PublicKey{Key: pub, KID: kid}
	if alg != "" {
		if k.Alg, err = ParseAlg(alg); err != nil {
			return nil, err
		}
	}
	if use != "" && use != "sig" {
		return nil, refuse(ErrUnsupportedUse, fmt.Sprintf(
			`the key's "use" is %q; Maskinporten keys sign, so "use" must be "sig"`, clip(use, 20)))
	}
	if kid != "" && !ValidKID(kid) {
		return nil, invalidKID(kid)
	}
	if raw, ok := r["x5c"]; ok && string(raw) != "null" {
		var chain []string
		if err := json.Unmarshal(raw, &chain); err != nil || len(chain) == 0 {
			return nil, refuse(ErrMalformed, `the JWK member "x5c" must be a non-empty array of base64 certificates`)
		}
		ders := make([][]byte, len(chain))
		for i, c := range chain {
			// RFC 7517 §4.7: standard base64, not base64url.
			if ders[i], err = base64.StdEncoding.DecodeString(c); err != nil {
				return nil, refuseCause(ErrMalformed, fmt.Sprintf("certificate %d in x5c is not base64", i+1), err)
			}
		}
		ck, err := publicFromCertificate(ders[0], ders[1:], now)
		if err != nil {
			return nil, err
		}
		if !ck.Key.Equal(pub) {
			return nil, refuse(ErrCertificateMismatch, "the certificate in x5c is for a different key than n and e")
		}
		k.Certificate = ck.Certificate
	}
	return k, nil
}

func parsePEM(data []byte, now time.Time) ([]*PublicKey, error) {
	var blocks []*pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	// Refuse private material before reading anything else, including
	// PEM the decoder could not frame.
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		return nil, refusePrivate()
	}
	for _, b := range blocks {
		if strings.Contains(b.Type, "PRIVATE") {
			return nil, refusePrivate()
		}
	}
	if len(blocks) == 0 {
		return nil, refuse(ErrMalformed, "the PEM armour is broken: no complete BEGIN/END block was found")
	}
	var out []*PublicKey
	var leaf []byte
	var chain [][]byte
	for _, b := range blocks {
		switch b.Type {
		case "PUBLIC KEY":
			k, err := publicFromSPKI(b.Bytes)
			if err != nil {
				return nil, err
			}
			k.Format = "PEM public key"
			out = append(out, k)
		case "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(b.Bytes)
			if err != nil {
				return nil, refuseCause(ErrMalformed, "the RSA PUBLIC KEY block is not a PKCS#1 public key", err)
			}
			if err := checkRSA(pub); err != nil {
				return nil, err
			}
			out = append(out, &PublicKey{Key: pub, Format: "PEM PKCS#1 public key"})
		case "CERTIFICATE", "X509 CERTIFICATE":
			// The first certificate is the leaf; the others are its chain.
			if leaf == nil {
				leaf = b.Bytes
			} else {
				chain = append(chain, b.Bytes)
			}
		default:
			return nil, refuse(ErrMalformed, fmt.Sprintf(
				"PEM blocks of type %q are not supported; upload a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", clip(b.Type, 40)))
		}
	}
	if leaf != nil {
		k, err := publicFromCertificate(leaf, chain, now)
		if err != nil {
			return nil, err
		}
		k.Format = "PEM certificate"
		out = append(out, k)
	}
	return out, nil
}

func parseDER(der []byte, now time.Time, prefix string) ([]*PublicKey, error) {
	if looksPrivateDER(der) {
		return nil, refusePrivate()
	}
	if cert, err := x509.ParseCertificate(der); err == nil {
		k, err := certificateKey(cert, nil, now)
		if err != nil {
			return nil, err
		}
		k.Format = prefix + "DER certificate"
		return []*PublicKey{k}, nil
	}
	if _, err := x509.ParsePKIXPublicKey(der); err == nil || isUnsupportedAlgorithm(err) {
		k, err := publicFromSPKI(der)
		if err != nil {
			return nil, err
		}
		k.Format = prefix + "DER public key"
		return []*PublicKey{k}, nil
	}
	if pub, err := x509.ParsePKCS1PublicKey(der); err == nil {
		if err := checkRSA(pub); err != nil {
			return nil, err
		}
		return []*PublicKey{{Key: pub, Format: prefix + "DER PKCS#1 public key"}}, nil
	}
	return nil, refuse(ErrMalformed, "the upload is not a JWK, JWK set, PEM file, certificate or DER public key")
}

func isUnsupportedAlgorithm(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unknown public key algorithm")
}

// looksPrivateDER recognises DER private keys and PKCS#12 bundles (which
// normally carry the private key) without keeping anything parsed.
func looksPrivateDER(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParseECPrivateKey(der); err == nil {
		return true
	}
	return isPKCS12(der)
}

func publicFromSPKI(der []byte) (*PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		if isUnsupportedAlgorithm(err) {
			return nil, refuse(ErrUnsupportedKeyType, "the key type is not supported: Maskinporten takes RSA keys only")
		}
		return nil, refuseCause(ErrMalformed, "the PUBLIC KEY block is not a SubjectPublicKeyInfo", err)
	}
	rsaPub, err := asRSA(pub)
	if err != nil {
		return nil, err
	}
	return &PublicKey{Key: rsaPub}, nil
}

func asRSA(pub any) (*rsa.PublicKey, error) {
	var name string
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if err := checkRSA(p); err != nil {
			return nil, err
		}
		return p, nil
	case *ecdsa.PublicKey:
		name = "EC " + p.Curve.Params().Name
	case ed25519.PublicKey:
		name = "Ed25519"
	default:
		name = fmt.Sprintf("%T", pub)
	}
	return nil, refuse(ErrUnsupportedKeyType, fmt.Sprintf(
		"this is an %s key; Maskinporten takes RSA keys only", name))
}

func publicFromCertificate(der []byte, chain [][]byte, now time.Time) (*PublicKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, refuseCause(ErrMalformed, "the certificate cannot be read", err)
	}
	// The chain may be sent to Digdir as x5c, so it must at least parse.
	for i, der := range chain {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, refuseCause(ErrMalformed, fmt.Sprintf("certificate %d of the chain cannot be read", i+2), err)
		}
	}
	return certificateKey(cert, chain, now)
}

func certificateKey(cert *x509.Certificate, chain [][]byte, now time.Time) (*PublicKey, error) {
	switch cert.PublicKeyAlgorithm {
	case x509.RSA:
	case x509.UnknownPublicKeyAlgorithm:
		return nil, refuse(ErrUnsupportedKeyType, "the certificate's key type is not supported: Maskinporten takes RSA keys only")
	default:
		return nil, refuse(ErrUnsupportedKeyType, fmt.Sprintf(
			"the certificate holds an %s key; Maskinporten takes RSA keys only", cert.PublicKeyAlgorithm))
	}
	pub, err := asRSA(cert.PublicKey)
	if err != nil {
		return nil, err
	}
	subject := cert.Subject.String()
	if now.After(cert.NotAfter) {
		return nil, refuse(ErrCertificateExpired, fmt.Sprintf(
			"the certificate for %q expired on %s; upload a current certificate", clip(subject, 200), cert.NotAfter.UTC().Format(time.DateOnly)))
	}
	if now.Before(cert.NotBefore) {
		return nil, refuse(ErrCertificateNotYetValid, fmt.Sprintf(
			"the certificate for %q is valid only from %s", clip(subject, 200), cert.NotBefore.UTC().Format(time.RFC3339)))
	}
	return &PublicKey{
		Key: pub,
		Certificate: &Certificate{
			Subject:      subject,
			Issuer:       cert.Issuer.String(),
			SerialNumber: fmt.Sprintf("%x", cert.SerialNumber),
			NotBefore:    cert.NotBefore,
			NotAfter:     cert.NotAfter,
			DER:          cert.Raw,
			Chain:        chain,
		},
	}, nil
}

func isBase64Text(b []byte) bool {
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '+', c == '/', c == '=', c == '\r', c == '\n', c == ' ', c == '\t':
		default:
			return false
		}
	}
	return true
}

func stripSpace(b []byte) []byte {
	return bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, b)
}
