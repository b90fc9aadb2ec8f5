package sim

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// grant is a parsed, not yet verified, JWT grant (§1.3, §1.4).
type grant struct {
	alg          string
	hash         crypto.Hash
	kid          string
	hasKid       bool
	x5c          json.RawMessage // as sent; checked when used
	signingInput []byte
	sig          []byte
	claims       grantClaims
	unknown      []string // claims the reference does not list
}

type grantClaims struct {
	Aud                  json.RawMessage `json:"aud"`
	Iss                  *string         `json:"iss"`
	Iat                  *json.Number    `json:"iat"`
	Exp                  *json.Number    `json:"exp"`
	Nbf                  *json.Number    `json:"nbf"`
	Jti                  *string         `json:"jti"`
	Scope                *string         `json:"scope"`
	Resource             json.RawMessage `json:"resource"`
	Pid                  *string         `json:"pid"`
	ConsumerOrg          *string         `json:"consumer_org"`
	IssOnBehalfOf        *string         `json:"iss_onbehalfof"`
	AuthorizationDetails json.RawMessage `json:"authorization_details"`
	Sub                  *string         `json:"sub"` // registered claim, tolerated (§1.4)
}

type grantHeader struct {
	Alg *string         `json:"alg"`
	Kid *string         `json:"kid"`
	X5c json.RawMessage `json:"x5c"`
	Typ json.RawMessage `json:"typ"`
}

// errMalformed is a grant that is not a JWS with JSON header and claims at all.
var errMalformed = errors.New("malformed JWT")

// parseGrant splits and decodes a compact JWS without verifying it. It never panics on any
// input; it is the fuzzed entry point of the token endpoint.
func parseGrant(s string) (*grant, error) {
	if len(s) > 64<<10 {
		return nil, fmt.Errorf("%w: too long", errMalformed)
	}
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return nil, fmt.Errorf("%w: not three parts", errMalformed)
	}
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return nil, fmt.Errorf("%w: not three parts", errMalformed)
	}
	j += i + 1
	if strings.IndexByte(s[j+1:], '.') >= 0 {
		return nil, fmt.Errorf("%w: more than three parts", errMalformed)
	}
	hb, err := base64.RawURLEncoding.DecodeString(s[:i])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", errMalformed, err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(s[i+1 : j])
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errMalformed, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(s[j+1:])
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: signature", errMalformed)
	}
	var h grantHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errMalformed, err)
	}
	g := &grant{signingInput: []byte(s[:j]), sig: sig}
	if h.Alg != nil {
		g.alg = *h.Alg
	}
	switch g.alg {
	case "RS256":
		g.hash = crypto.SHA256
	case "RS384":
		g.hash = crypto.SHA384
	case "RS512":
		g.hash = crypto.SHA512
	}
	if h.Kid != nil {
		g.kid, g.hasKid = *h.Kid, true
	}
	if len(h.X5c) > 0 && !bytes.Equal(h.X5c, []byte("null")) {
		g.x5c = h.X5c
	}
	// The strict decode is the common path; only a grant with extra claims pays for listing them.
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g.claims); err != nil {
		if !strings.Contains(err.Error(), "unknown field") {
			return nil, fmt.Errorf("%w: claims: %v", errMalformed, err)
		}
		if err := json.Unmarshal(pb, &g.claims); err != nil {
			return nil, fmt.Errorf("%w: claims: %v", errMalformed, err)
		}
		var all map[string]json.RawMessage
		if err := json.Unmarshal(pb, &all); err != nil {
			return nil, fmt.Errorf("%w: claims: %v", errMalformed, err)
		}
		for k := range all {
			if !knownClaims[k] {
				g.unknown = append(g.unknown, k)
			}
		}
		sort.Strings(g.unknown)
	} else if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after claims", errMalformed)
	}
	return g, nil
}

var knownClaims = map[string]bool{
	"aud": true, "iss": true, "iat": true, "exp": true, "nbf": true, "jti": true, "scope": true,
	"resource": true, "pid": true, "consumer_org": true, "iss_onbehalfof": true,
	"authorization_details": true, "sub": true,
}

// numericDate reads a NumericDate claim; fractions are truncated as RFC 7519 allows them.
func numericDate(n *json.Number) (int64, bool) {
	if n == nil {
		return 0, false
	}
	if v, err := n.Int64(); err == nil {
		return v, true
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64/2 || f < math.MinInt64/2 {
		return 0, false
	}
	return int64(f), true
}

// audience reads aud as one string (or a one-element array, which RFC 7519 allows).
func audience(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var a []string
	if err := json.Unmarshal(raw, &a); err == nil && len(a) == 1 {
		return a[0], true
	}
	return "", false
}

// resources reads resource, which Maskinporten documents as "currently only array supported".
func resources(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, true
	}
	var a []string
	if err := json.Unmarshal(raw, &a); err != nil || len(a) == 0 {
		return nil, false
	}
	for _, r := range a {
		if r == "" {
			return nil, false
		}
	}
	return a, true
}

// parseX5C decodes the x5c header: an array of base64 (standard, padded) DER certificates.
func parseX5C(raw json.RawMessage) ([][]byte, error) {
	var ss []string
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, errors.New("x5c is not an array of strings")
	}
	if len(ss) == 0 || len(ss) > 10 {
		return nil, errors.New("x5c must hold 1 to 10 certificates")
	}
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d] is not base64: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// certCache remembers chains that verified, so an admin client's repeated x5c grants cost one
// signature check, like kid grants. Entries are keyed by the hash of the whole chain.
type certCache struct {
	mu sync.Mutex
	m  map[[32]byte]*certEntry
}

type certEntry struct {
	leaf      *x509.Certificate
	orgNo     string
	notBefore time.Time
	notAfter  time.Time
}

func (c *certCache) get(k [32]byte) *certEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *certCache) put(k [32]byte, e *certEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 1024 {
		c.m = map[[32]byte]*certEntry{}
	}
	c.m[k] = e
}

func chainKey(ders [][]byte) [32]byte {
	h := sha256.New()
	for _, d := range ders {
		h.Write(d)
		h.Write([]byte{0})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}
