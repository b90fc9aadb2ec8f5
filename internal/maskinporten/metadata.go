package maskinporten

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Metadata is the RFC 8414 authorization server metadata document.
type Metadata struct {
	Issuer                                string          `json:"issuer"`
	TokenEndpoint                         string          `json:"token_endpoint"`
	JWKSURI                               string          `json:"jwks_uri"`
	TokenEndpointAuthMethodsSupported     []string        `json:"token_endpoint_auth_methods_supported,omitempty"`
	GrantTypesSupported                   []string        `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthSigningAlgsSupported []string        `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	AuthorizationDetailsTypesSupported    []string        `json:"authorization_details_types_supported,omitempty"`
	Raw                                   json.RawMessage `json:"-"`
}

// ErrMetadata marks a metadata document that does not fit the issuer.
var ErrMetadata = errors.New("inconsistent metadata")

// Metadata fetches the metadata document and checks that it belongs to
// this issuer: issuer equal, token endpoint and JWKS URI under it. With
// ErrMetadata the document is still returned, for display.
func (c *Client) Metadata(ctx context.Context) (*Metadata, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.send(ctx, outgoing{op: "metadata", method: http.MethodGet, url: c.MetadataURL(),
		header: http.Header{"Accept": {"application/json"}}, retry: true})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("metadata: upstream answered %d: %s", resp.status, snippet(resp.body))
	}
	var m Metadata
	if err := json.Unmarshal(resp.body, &m); err != nil {
		return nil, fmt.Errorf("metadata: decode: %w", err)
	}
	m.Raw = resp.body
	if err := m.check(c.issuer); err != nil {
		return &m, err
	}
	return &m, nil
}

func (m *Metadata) check(issuer string) error {
	if m.Issuer != issuer {
		return fmt.Errorf("%w: issuer is %q, expected %q", ErrMetadata, m.Issuer, issuer)
	}
	if !strings.HasPrefix(m.TokenEndpoint, issuer) {
		return fmt.Errorf("%w: token_endpoint %q is not under the issuer", ErrMetadata, m.TokenEndpoint)
	}
	if !strings.HasPrefix(m.JWKSURI, issuer) {
		return fmt.Errorf("%w: jwks_uri %q is not under the issuer", ErrMetadata, m.JWKSURI)
	}
	return nil
}

// jwksCache holds Maskinporten's signing keys.
type jwksCache struct {
	maxAge time.Duration

	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetchedAt time.Time
	flight    *flight[*jose.JSONWebKeySet]
}

// minRefetch limits refetches triggered by unknown key ids, so a stream of
// forged kids cannot make us hammer the JWKS endpoint.
const minRefetch = time.Minute

// JWKS returns Maskinporten's signing keys, cached for JWKSMaxAge. Keys the
// library cannot use are skipped rather than failing the whole set.
func (c *Client) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	return c.jwksGet(ctx, false)
}

func (c *Client) jwksGet(ctx context.Context, force bool) (*jose.JSONWebKeySet, error) {
	j := &c.jwks
	j.mu.Lock()
	now := c.now()
	age := now.Sub(j.fetchedAt)
	if j.keys != nil && (age < j.maxAge && !force || force && age < minRefetch) {
		k := j.keys
		j.mu.Unlock()
		return k, nil
	}
	f := j.flight
	if f == nil {
		f = newFlight[*jose.JSONWebKeySet]()
		j.flight = f
		fctx := context.WithoutCancel(ctx)
		go func() {
			keys, err := c.fetchJWKS(fctx)
			j.mu.Lock()
			j.flight = nil
			if err == nil {
				j.keys, j.fetchedAt = keys, c.now()
			}
			j.mu.Unlock()
			f.finish(keys, err)
		}()
	}
	j.mu.Unlock()
	return f.wait(ctx)
}

func (c *Client) fetchJWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.send(ctx, outgoing{op: "jwks", method: http.MethodGet, url: c.JWKSURI(),
		header: http.Header{"Accept": {"application/json"}}, retry: true})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("jwks: upstream answered %d", resp.status)
	}
	return parseJWKS(resp.body)
}

func parseJWKS(body []byte) (*jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("jwks: decode: %w", err)
	}
	set := &jose.JSONWebKeySet{}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || !k.IsPublic() || !k.Valid() {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("jwks: no usable key")
	}
	return set, nil
}

// ErrInvalidToken marks an access token that failed verification.
var ErrInvalidToken = errors.New("invalid access token")

// clockSkew is the leeway for exp/nbf/iat, as Maskinporten and Altinn allow.
const clockSkew = 10 * time.Second

// AccessToken is a verified Maskinporten access token.
type AccessToken struct {
	*Decoded
	ClientID    string
	Scopes      []string
	ConsumerOrg string
	IssuedAt    time.Time
	Expires     time.Time
}

// VerifyAccessToken checks token's signature against the JWKS (refetching
// once on an unknown kid), its issuer and its lifetime.
func (c *Client) VerifyAccessToken(ctx context.Context, token string) (*AccessToken, error) {
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: expected one signature", ErrInvalidToken)
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid in header", ErrInvalidToken)
	}
	key, err := c.findKey(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: alg %s does not match key %s", ErrInvalidToken, h.Algorithm, key.Algorithm)
	}
	if key.Use != "" && key.Use != "sig" {
		return nil, fmt.Errorf("%w: key %s is not a signing key", ErrInvalidToken, h.KeyID)
	}
	if _, err := jws.Verify(key.Key); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrInvalidToken, err)
	}
	d, err := Decode(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return c.checkClaims(d)
}

func (c *Client) findKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	for _, force := range []bool{false, true} {
		set, err := c.jwksGet(ctx, force)
		if err != nil {
			return nil, fmt.Errorf("verify access token: %w", err)
		}
		if ks := set.Key(kid); len(ks) > 0 {
			return &ks[0], nil
		}
	}
	return nil, fmt.Errorf("%w: unknown kid %q", ErrInvalidToken, kid)
}

func (c *Client) checkClaims(d *Decoded) (*AccessToken, error) {
	now := c.now()
	if iss, _ := d.ClaimString("iss"); iss != c.issuer {
		return nil, fmt.Errorf("%w: issuer %q, expected %q", ErrInvalidToken, iss, c.issuer)
	}
	exp, ok := d.ClaimTime("exp")
	if !ok {
		return nil, fmt.Errorf("%w: no exp", ErrInvalidToken)
	}
	if !now.Before(exp.Add(clockSkew)) {
		return nil, fmt.Errorf("%w: expired at %s", ErrInvalidToken, exp.Format(time.RFC3339))
	}
	if nbf, ok := d.ClaimTime("nbf"); ok && now.Add(clockSkew).Before(nbf) {
		return nil, fmt.Errorf("%w: not valid before %s", ErrInvalidToken, nbf.Format(time.RFC3339))
	}
	iat, _ := d.ClaimTime("iat")
	at := &AccessToken{Decoded: d, Scopes: d.Scopes(), IssuedAt: iat, Expires: exp}
	at.ClientID, _ = d.ClaimString("client_id")
	at.ConsumerOrg, _ = d.ConsumerOrg()
	return at, nil
}

// IssuerMismatchError is a configured issuer that is not, character for character, the
// issuer Maskinporten's metadata publishes.
type IssuerMismatchError struct {
	Configured, Published string
}

func (e *IssuerMismatchError) Error() string {
	msg := fmt.Sprintf("the configured Maskinporten issuer %q is not the issuer its metadata publishes, %q", e.Configured, e.Published)
	if strings.TrimSuffix(e.Configured, "/") == strings.TrimSuffix(e.Published, "/") {
		msg += ": grants carry the issuer as aud exactly, trailing slash included, and Maskinporten refuses any other (MP-110)"
	}
	return msg + fmt.Sprintf("; configure %q", e.Published)
}

// Is makes an IssuerMismatchError match ErrMetadata.
func (e *IssuerMismatchError) Is(target error) bool { return target == ErrMetadata }

// CheckIssuer fetches the metadata document at start and checks that the configured issuer is
// exactly the one it publishes, since every grant carries it as aud. A mismatch is an
// *IssuerMismatchError naming both values; an unreachable or unreadable document is returned as
// it failed.
func (c *Client) CheckIssuer(ctx context.Context) error {
	m, err := c.Metadata(ctx)
	if m != nil && m.Issuer != c.issuer {
		return &IssuerMismatchError{Configured: c.issuer, Published: m.Issuer}
	}
	if err != nil {
		return fmt.Errorf("check the issuer of %s: %w", c.MetadataURL(), err)
	}
	return nil
}
