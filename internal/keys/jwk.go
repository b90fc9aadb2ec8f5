package keys

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Alg is a JWS algorithm Maskinporten accepts for grants.
type Alg string

const (
	RS256 Alg = "RS256"
	RS384 Alg = "RS384"
	RS512 Alg = "RS512"
)

// DefaultAlg is used where neither the person nor the input names one.
const DefaultAlg = RS256

// Algs lists the accepted algorithms, default first.
func Algs() []Alg { return []Alg{RS256, RS384, RS512} }

// ParseAlg accepts RS256, RS384 or RS512, exactly as spelled in JOSE.
func ParseAlg(s string) (Alg, error) {
	switch a := Alg(s); a {
	case RS256, RS384, RS512:
		return a, nil
	}
	return "", refuse(ErrUnsupportedAlg, fmt.Sprintf(
		"algorithm %q is not supported: Maskinporten accepts RS256, RS384 or RS512", clip(s, 20)))
}

// Hash is the digest the algorithm signs.
func (a Alg) Hash() crypto.Hash {
	switch a {
	case RS384:
		return crypto.SHA384
	case RS512:
		return crypto.SHA512
	}
	return crypto.SHA256
}

// Key sizes.
const (
	MinBits     = 2048
	maxBits     = 16384 // Go's own limit for RSA verification
	DefaultBits = 2048
)

// JWK is a public RSA key in the shape Digdir's key API takes.
// Members are in a fixed order so the encoding is stable.
type JWK struct {
	Kty string   `json:"kty"`
	Use string   `json:"use,omitempty"`
	Alg string   `json:"alg,omitempty"`
	Kid string   `json:"kid,omitempty"`
	E   string   `json:"e"`
	N   string   `json:"n"`
	X5C []string `json:"x5c,omitempty"`
}

// JWKS is a JWK set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

func publicJWK(pub *rsa.PublicKey, kid string, alg Alg) JWK {
	if alg == "" {
		alg = DefaultAlg
	}
	return JWK{
		Kty: "RSA",
		Use: "sig",
		Alg: string(alg),
		Kid: kid,
		E:   b64(big.NewInt(int64(pub.E)).Bytes()),
		N:   b64(pub.N.Bytes()),
	}
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an RSA public key,
// base64url without padding.
func Thumbprint(pub *rsa.PublicKey) string {
	// RFC 7638 §3.2: required members only, lexicographic order, no whitespace;
	// the base64url alphabet needs no JSON escaping.
	j := publicJWK(pub, "", "")
	canon := `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

// Thumbprint of the key this JWK describes.
func (j JWK) Thumbprint() (string, error) {
	pub, err := rsaFromJWK(j.Kty, j.N, j.E)
	if err != nil {
		return "", err
	}
	return Thumbprint(pub), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// unb64 reads base64url as RFC 7515 requires, and tolerates the standard
// alphabet and padding, which hand-made JWKs often carry.
func unb64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// rsaFromJWK builds and checks an RSA public key from JWK members.
func rsaFromJWK(kty, n, e string) (*rsa.PublicKey, error) {
	if kty != "RSA" {
		return nil, unsupportedKty(kty)
	}
	if n == "" || e == "" {
		return nil, refuse(ErrMalformed, `the JWK lacks "n" or "e"`)
	}
	if len(n) > maxBits/8*2 {
		return nil, refuse(ErrKeyTooLarge, fmt.Sprintf("the RSA key is larger than %d bits", maxBits))
	}
	nb, err := unb64(n)
	if err != nil {
		return nil, refuseCause(ErrMalformed, `the JWK member "n" is not base64url`, err)
	}
	eb, err := unb64(e)
	if err != nil {
		return nil, refuseCause(ErrMalformed, `the JWK member "e" is not base64url`, err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb)}
	ev := new(big.Int).SetBytes(eb)
	if !ev.IsInt64() || ev.Int64() > 1<<31-1 {
		return nil, refuse(ErrMalformed, "the RSA public exponent is out of range")
	}
	pub.E = int(ev.Int64())
	if err := checkRSA(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// checkRSA applies the rules Digdir and Go's verifier share.
func checkRSA(pub *rsa.PublicKey) error {
	bits := pub.N.BitLen()
	switch {
	case bits < MinBits:
		return refuse(ErrKeyTooSmall, fmt.Sprintf(
			"the RSA key has %d bits; Maskinporten needs at least %d (generate a 2048- or 4096-bit key)", bits, MinBits))
	case bits > maxBits:
		return refuse(ErrKeyTooLarge, fmt.Sprintf("the RSA key has %d bits; at most %d are supported", bits, maxBits))
	case pub.N.Bit(0) == 0:
		return refuse(ErrMalformed, "the RSA modulus is even, so it is not an RSA key")
	case pub.E < 3 || pub.E%2 == 0:
		return refuse(ErrMalformed, "the RSA public exponent is invalid")
	}
	return nil
}

func unsupportedKty(kty string) error {
	if kty == "" {
		return refuse(ErrMalformed, `the JWK has no "kty"`)
	}
	// Real key types are a few letters ("EC", "OKP", "oct"); echo no more than that, since a
	// private key pasted in the wrong place must never come back in a message.
	return refuse(ErrUnsupportedKeyType, fmt.Sprintf(
		"key type %q is not supported: Maskinporten takes RSA keys only", clip(kty, 8)))
}

// clip shortens untrusted strings that are echoed in messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// MarshalJSON of a set always writes "keys", even when empty.
func (s JWKS) MarshalJSON() ([]byte, error) {
	keys := s.Keys
	if keys == nil {
		keys = []JWK{}
	}
	return json.Marshal(struct {
		Keys []JWK `json:"keys"`
	}{keys})
}
