package keys

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
)

// PrivateKey is an RSA private key with the kid and alg it is registered
// under. It is a crypto.Signer. Its String, GoString, Format and LogValue
// never show key material; the exports below are the only way out.
type PrivateKey struct {
	key *rsa.PrivateKey
	KID string
	Alg Alg
}

// NewPrivateKey wraps an RSA key, checking the size Maskinporten needs.
func NewPrivateKey(key *rsa.PrivateKey, kid string, alg Alg) (*PrivateKey, error) {
	if key == nil {
		return nil, fmt.Errorf("keys: nil private key")
	}
	if err := checkRSA(&key.PublicKey); err != nil {
		return nil, err
	}
	// Once here, so that exports never write to a key others may read.
	key.Precompute()
	return &PrivateKey{key: key, KID: kid, Alg: alg}, nil
}

// Public implements crypto.Signer.
func (k *PrivateKey) Public() crypto.PublicKey { return &k.key.PublicKey }

// Sign implements crypto.Signer.
func (k *PrivateKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.key.Sign(rand, digest, opts)
}

// RSA returns the key itself, for libraries that need the concrete type.
func (k *PrivateKey) RSA() *rsa.PrivateKey { return k.key }

// Bits is the modulus size.
func (k *PrivateKey) Bits() int { return k.key.N.BitLen() }

// Thumbprint is the RFC 7638 thumbprint of the public key.
func (k *PrivateKey) Thumbprint() string { return Thumbprint(&k.key.PublicKey) }

// PublicKey is the public half, with the same kid and alg.
func (k *PrivateKey) PublicKey() *PublicKey {
	return &PublicKey{Key: &k.key.PublicKey, KID: k.KID, Alg: k.Alg, Format: "generated"}
}

// PublicJWK is the JWK to register with Digdir.
func (k *PrivateKey) PublicJWK() JWK { return publicJWK(&k.key.PublicKey, k.KID, k.Alg) }

// PKCS8 is the key as PKCS#8 DER, the plaintext that Seal protects.
func (k *PrivateKey) PKCS8() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.key)
	if err != nil {
		return nil, fmt.Errorf("keys: encode PKCS#8: %w", err)
	}
	return der, nil
}

// PKCS8PEM is the key as a "PRIVATE KEY" PEM block, for download.
func (k *PrivateKey) PKCS8PEM() ([]byte, error) {
	der, err := k.PKCS8()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// privateJWK orders members public first, as most tools print them.
type privateJWK struct {
	Kty string `json:"kty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Kid string `json:"kid,omitempty"`
	E   string `json:"e"`
	N   string `json:"n"`
	D   string `json:"d"`
	P   string `json:"p"`
	Q   string `json:"q"`
	DP  string `json:"dp"`
	DQ  string `json:"dq"`
	QI  string `json:"qi"`
}

// PrivateJWK is the key as a private JWK (RFC 7518 §6.3.2) with kid, alg and
// use, for download.
func (k *PrivateKey) PrivateJWK() ([]byte, error) {
	key := k.key
	if len(key.Primes) != 2 || key.Precomputed.Dp == nil {
		return nil, fmt.Errorf("keys: encode private JWK: key has %d primes, want 2 with CRT values", len(key.Primes))
	}
	pub := publicJWK(&key.PublicKey, k.KID, k.Alg)
	out, err := json.MarshalIndent(privateJWK{
		Kty: pub.Kty, Use: pub.Use, Alg: pub.Alg, Kid: pub.Kid, E: pub.E, N: pub.N,
		D:  b64(key.D.Bytes()),
		P:  b64(key.Primes[0].Bytes()),
		Q:  b64(key.Primes[1].Bytes()),
		DP: b64(key.Precomputed.Dp.Bytes()),
		DQ: b64(key.Precomputed.Dq.Bytes()),
		QI: b64(key.Precomputed.Qinv.Bytes()),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: encode private JWK: %w", err)
	}
	return append(out, '\n'), nil
}

// String describes the key without its material.
func (k *PrivateKey) String() string {
	if k == nil || k.key == nil {
		return "keys.PrivateKey(nil)"
	}
	return fmt.Sprintf("keys.PrivateKey{kid=%q alg=%s RSA-%d [private material redacted]}", k.KID, k.Alg, k.Bits())
}

// GoString keeps %#v from printing the key's fields.
func (k *PrivateKey) GoString() string { return k.String() }

// Format applies to every verb, so no verb prints the key's fields.
func (k *PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue keeps structured logs to the public facts.
func (k *PrivateKey) LogValue() slog.Value {
	if k == nil || k.key == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
		slog.String("kid", k.KID),
		slog.String("alg", string(k.Alg)),
		slog.Int("bits", k.Bits()),
		slog.String("private", "redacted"),
	)
}

// ParsePrivate reads a private key a person supplies for signing: PKCS#8 PEM
// ("PRIVATE KEY"), PKCS#1 PEM ("RSA PRIVATE KEY"), PKCS#8 DER, or a private
// JWK (alone or as the only key of a set). The kid and alg come from the JWK
// when it has them. Errors never quote the input.
func ParsePrivate(data []byte) (*PrivateKey, error) {
	if len(data) > MaxInputSize {
		return nil, refuse(ErrMalformed, "the file is too large to be a private key")
	}
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	switch {
	case len(trimmed) == 0:
		return nil, refuse(ErrNoKey, "the file is empty")
	case bytes.Contains(trimmed, []byte("-----BEGIN")):
		return privateFromPEM(trimmed)
	case trimmed[0] == '{':
		return privateFromJSON(trimmed)
	}
	return privateFromPKCS8(data, "the file is not a PEM, JWK or PKCS#8 private key")
}

func privateFromPEM(data []byte) (*PrivateKey, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, enc := b.Headers["Proc-Type"]; enc || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, refuse(ErrEncryptedKey, "the private key is encrypted; decrypt it first "+
				"(openssl pkcs8 -topk8 -nocrypt -in key.pem -out plain.pem)")
		}
		switch b.Type {
		case "PRIVATE KEY":
			return privateFromPKCS8(b.Bytes, "the PRIVATE KEY block is not a PKCS#8 private key")
		case "RSA PRIVATE KEY":
			key, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, refuse(ErrMalformed, "the RSA PRIVATE KEY block is not a PKCS#1 private key")
			}
			return NewPrivateKey(key, "", "")
		case "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, refuse(ErrUnsupportedKeyType, "this is not an RSA key; Maskinporten takes RSA keys only")
		}
	}
	return nil, refuse(ErrNoKey, `no "PRIVATE KEY" or "RSA PRIVATE KEY" block was found`)
}

func privateFromPKCS8(der []byte, msg string) (*PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// The cause is dropped: parser messages are about this key's bytes.
		return nil, refuse(ErrMalformed, msg)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, refuse(ErrUnsupportedKeyType, fmt.Sprintf("this is a %s key; Maskinporten takes RSA keys only", keyTypeName(key)))
	}
	return NewPrivateKey(rsaKey, "", "")
}

func keyTypeName(key any) string {
	s := fmt.Sprintf("%T", key)
	s = strings.TrimPrefix(s, "*")
	s, _, _ = strings.Cut(s, ".")
	return s
}

func privateFromJSON(data []byte) (*PrivateKey, error) {
	var top rawJWK
	if err := decodeJSON(data, &top); err != nil {
		return nil, err
	}
	if ks, ok := top["keys"]; ok {
		var raws []rawJWK
		if err := decodeJSON(ks, &raws); err != nil {
			return nil, err
		}
		if len(raws) != 1 {
			return nil, refuse(ErrMultipleKeys, fmt.Sprintf("the JWK set holds %d keys; give a file with exactly one", len(raws)))
		}
		top = raws[0]
	}
	if top == nil {
		return nil, refuse(ErrMalformed, "the JWK is null")
	}
	m := map[string]string{}
	for _, name := range []string{"kty", "n", "e", "d", "p", "q", "dp", "dq", "qi", "alg", "kid"} {
		s, err := top.str(name)
		if err != nil {
			return nil, err
		}
		m[name] = s
	}
	pub, err := rsaFromJWK(m["kty"], m["n"], m["e"])
	if err != nil {
		return nil, err
	}
	if m["d"] == "" {
		return nil, refuse(ErrNoKey, `the JWK is a public key: it has no "d"`)
	}
	if m["p"] == "" || m["q"] == "" {
		return nil, refuse(ErrMalformed, `the JWK lacks the prime factors "p" and "q"`)
	}
	if _, multi := top["oth"]; multi {
		return nil, refuse(ErrUnsupportedKeyType, "multi-prime RSA keys are not supported")
	}
	ints := map[string]*big.Int{}
	for _, name := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if m[name] == "" {
			continue
		}
		b, err := unb64(m[name])
		if err != nil {
			return nil, refuse(ErrMalformed, fmt.Sprintf("the JWK member %q is not base64url", name))
		}
		ints[name] = new(big.Int).SetBytes(b)
	}
	key := &rsa.PrivateKey{PublicKey: *pub, D: ints["d"], Primes: []*big.Int{ints["p"], ints["q"]}}
	if err := key.Validate(); err != nil {
		return nil, refuse(ErrMalformed, "the JWK's private members do not form a valid RSA key")
	}
	key.Precompute()
	for name, want := range map[string]*big.Int{"dp": key.Precomputed.Dp, "dq": key.Precomputed.Dq, "qi": key.Precomputed.Qinv} {
		if got, ok := ints[name]; ok && got.Cmp(want) != 0 {
			return nil, refuse(ErrMalformed, fmt.Sprintf("the JWK member %q does not match the key", name))
		}
	}
	k := &PrivateKey{key: key, KID: m["kid"]}
	if m["alg"] != "" {
		if k.Alg, err = ParseAlg(m["alg"]); err != nil {
			return nil, err
		}
	}
	if k.KID != "" && !ValidKID(k.KID) {
		return nil, invalidKID(k.KID)
	}
	return k, nil
}

// isPKCS12 recognises the start of a PFX (RFC 7292): SEQUENCE { INTEGER 3,
// SEQUENCE { OID pkcs7-data or pkcs7-signedData ... } }, in DER or BER.
func isPKCS12(der []byte) bool {
	rest, ok := skipHeader(der, 0x30)
	if !ok || !bytes.HasPrefix(rest, []byte{0x02, 0x01, 0x03}) {
		return false
	}
	rest, ok = skipHeader(rest[3:], 0x30)
	if !ok {
		return false
	}
	pkcs7 := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07}
	return bytes.HasPrefix(rest, pkcs7) && len(rest) > len(pkcs7) && (rest[len(pkcs7)] == 1 || rest[len(pkcs7)] == 2)
}

// skipHeader steps over a tag and length (definite or indefinite).
func skipHeader(b []byte, tag byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != tag {
		return nil, false
	}
	l := b[1]
	switch {
	case l < 0x80 || l == 0x80:
		return b[2:], true
	case l <= 0x84:
		n := int(l & 0x7f)
		if len(b) < 2+n {
			return nil, false
		}
		return b[2+n:], true
	}
	return nil, false
}
