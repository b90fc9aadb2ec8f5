package maskinporten

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// GrantType is the OAuth grant type of a JWT-bearer token request.
const GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// MaxGrantLifetime is the longest exp - iat Maskinporten accepts.
const MaxGrantLifetime = 120 * time.Second

// Signing algorithms Maskinporten accepts for grants.
const (
	RS256 = "RS256"
	RS384 = "RS384"
	RS512 = "RS512"
)

// ErrInvalidGrant marks a grant or signer that cannot be built as asked.
var ErrInvalidGrant = errors.New("invalid grant")

// Grant is what a JWT grant asks for. Zero IssuedAt means now, zero
// Lifetime means MaxGrantLifetime, empty JTI means a fresh UUID.
type Grant struct {
	Audience    string // the issuer identifier
	ClientID    string
	Scopes      []string
	Resource    []string // optional audience restriction; always sent as an array
	ConsumerOrg string   // optional, for Altinn API delegation
	Lifetime    time.Duration
	JTI         string
	IssuedAt    time.Time
}

// GrantClaims is the claims set of a grant, in wire form.
type GrantClaims struct {
	Audience    string   `json:"aud"`
	Issuer      string   `json:"iss"`
	Scope       string   `json:"scope"`
	Resource    []string `json:"resource,omitempty"`
	ConsumerOrg string   `json:"consumer_org,omitempty"`
	IssuedAt    int64    `json:"iat"`
	Expires     int64    `json:"exp"`
	JTI         string   `json:"jti"`
}

// Header is a JWS header as Maskinporten expects it: alg plus exactly one
// of kid and x5c.
type Header struct {
	Alg string   `json:"alg"`
	Kid string   `json:"kid,omitempty"`
	X5C []string `json:"x5c,omitempty"` // base64 (not URL) DER, leaf first
}

// Signer signs grants with an RSA key, identified either by a registered
// key id (KeyID) or by a certificate chain (Chain, leaf first).
type Signer struct {
	Key   crypto.Signer // public key must be *rsa.PublicKey
	Alg   string        // RS256 (default), RS384 or RS512
	KeyID string
	Chain []*x509.Certificate
}

// Claims validates g and returns its claims, filling in defaults relative
// to now.
func (g Grant) Claims(now time.Time) (GrantClaims, error) {
	if err := checkAudience(g.Audience); err != nil {
		return GrantClaims{}, err
	}
	if strings.TrimSpace(g.ClientID) == "" || g.ClientID != strings.TrimSpace(g.ClientID) {
		return GrantClaims{}, fmt.Errorf("%w: client id is empty or padded", ErrInvalidGrant)
	}
	if len(g.Scopes) == 0 {
		return GrantClaims{}, fmt.Errorf("%w: no scope", ErrInvalidGrant)
	}
	for _, s := range g.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return GrantClaims{}, fmt.Errorf("%w: scope %q is empty or contains whitespace", ErrInvalidGrant, s)
		}
	}
	for _, r := range g.Resource {
		if strings.TrimSpace(r) == "" {
			return GrantClaims{}, fmt.Errorf("%w: empty resource", ErrInvalidGrant)
		}
	}
	if g.ConsumerOrg != "" && !isOrgNo(g.ConsumerOrg) {
		return GrantClaims{}, fmt.Errorf("%w: consumer_org %q is not a 9-digit organisation number", ErrInvalidGrant, g.ConsumerOrg)
	}
	life := g.Lifetime
	if life == 0 {
		life = MaxGrantLifetime
	}
	if life < time.Second || life > MaxGrantLifetime {
		return GrantClaims{}, fmt.Errorf("%w: lifetime %s is outside 1s..%s", ErrInvalidGrant, life, MaxGrantLifetime)
	}
	iat := g.IssuedAt
	if iat.IsZero() {
		iat = now
	}
	jti := g.JTI
	if jti == "" {
		jti = uuid.NewString()
	}
	return GrantClaims{
		Audience:    g.Audience,
		Issuer:      g.ClientID,
		Scope:       strings.Join(g.Scopes, " "),
		Resource:    g.Resource,
		ConsumerOrg: g.ConsumerOrg,
		IssuedAt:    iat.Unix(),
		Expires:     iat.Add(life).Unix(),
		JTI:         jti,
	}, nil
}

func checkAudience(aud string) error {
	u, err := url.Parse(aud)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%w: audience %q is not the issuer URL", ErrInvalidGrant, aud)
	}
	return nil
}

func isOrgNo(s string) bool {
	if len(s) != 9 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Header validates s and returns the JWS header its signatures carry.
func (s Signer) Header() (Header, error) {
	if s.Key == nil {
		return Header{}, fmt.Errorf("%w: no signing key", ErrInvalidGrant)
	}
	pub, ok := s.Key.Public().(*rsa.PublicKey)
	if !ok {
		return Header{}, fmt.Errorf("%w: signing key is not RSA", ErrInvalidGrant)
	}
	alg := s.Alg
	if alg == "" {
		alg = RS256
	}
	if _, err := hashFor(alg); err != nil {
		return Header{}, err
	}
	h := Header{Alg: alg}
	switch {
	case s.KeyID != "" && len(s.Chain) > 0:
		return Header{}, fmt.Errorf("%w: give either a key id or a certificate chain, not both", ErrInvalidGrant)
	case s.KeyID != "":
		h.Kid = s.KeyID
	case len(s.Chain) > 0:
		if s.Chain[0] == nil {
			return Header{}, fmt.Errorf("%w: empty certificate in chain", ErrInvalidGrant)
		}
		leaf, ok := s.Chain[0].PublicKey.(*rsa.PublicKey)
		if !ok || !leaf.Equal(pub) {
			return Header{}, fmt.Errorf("%w: certificate does not match the signing key", ErrInvalidGrant)
		}
		for _, c := range s.Chain {
			if c == nil || len(c.Raw) == 0 {
				return Header{}, fmt.Errorf("%w: empty certificate in chain", ErrInvalidGrant)
			}
			h.X5C = append(h.X5C, base64.StdEncoding.EncodeToString(c.Raw))
		}
	default:
		return Header{}, fmt.Errorf("%w: a key id or a certificate chain is required", ErrInvalidGrant)
	}
	return h, nil
}

func hashFor(alg string) (crypto.Hash, error) {
	switch alg {
	case RS256:
		return crypto.SHA256, nil
	case RS384:
		return crypto.SHA384, nil
	case RS512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: algorithm %q is not RS256, RS384 or RS512", ErrInvalidGrant, alg)
}

// Sign returns the compact JWS of claims under s's header.
func (s Signer) Sign(claims any) (string, error) {
	h, err := s.Header()
	if err != nil {
		return "", err
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	cj, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	input := b64(hj) + "." + b64(cj)
	hash, _ := hashFor(h.Alg)
	d := hash.New()
	d.Write([]byte(input))
	sig, err := s.Key.Sign(rand.Reader, d.Sum(nil), hash)
	if err != nil {
		return "", fmt.Errorf("sign grant: %w", err)
	}
	return input + "." + b64(sig), nil
}

// SignGrant builds g's claims (relative to the current time) and signs them.
func SignGrant(g Grant, s Signer) (string, error) {
	claims, err := g.Claims(time.Now())
	if err != nil {
		return "", err
	}
	return s.Sign(claims)
}

// Grant returns a grant for this environment: the issuer as audience and
// the client's clock as iat.
func (c *Client) Grant(clientID string, scopes ...string) Grant {
	return Grant{Audience: c.issuer, ClientID: clientID, Scopes: scopes, IssuedAt: c.now()}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
