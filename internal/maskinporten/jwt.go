package maskinporten

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// MaxTokenBytes bounds what Decode accepts; a grant with a long x5c chain
// stays far below it.
const MaxTokenBytes = 128 << 10

// ErrMalformedJWT marks input that is not a compact JWS.
var ErrMalformedJWT = errors.New("malformed JWT")

// Decoded is a compact JWS split into its parts, signature unchecked. It is
// for display and explanations only; never trust it for access decisions.
type Decoded struct {
	Header    map[string]any // numbers as json.Number
	Claims    map[string]any
	RawHeader json.RawMessage
	RawClaims json.RawMessage
	Signature []byte
}

// Decode parses a compact grant or token without verifying it. It accepts
// surrounding whitespace and a "Bearer " prefix, as people paste them.
func Decode(token string) (*Decoded, error) {
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformedJWT, MaxTokenBytes)
	}
	token = strings.TrimSpace(token)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	if token == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformedJWT)
	}
	parts := strings.Split(token, ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, fmt.Errorf("%w: five parts, an encrypted token (JWE) cannot be shown", ErrMalformedJWT)
	default:
		return nil, fmt.Errorf("%w: %d parts, expected header.payload.signature", ErrMalformedJWT, len(parts))
	}
	d := &Decoded{}
	var err error
	if d.RawHeader, err = decodeSegment(parts[0]); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformedJWT, err)
	}
	if d.Header, err = decodeObject(d.RawHeader); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformedJWT, err)
	}
	if d.RawClaims, err = decodeSegment(parts[1]); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformedJWT, err)
	}
	if d.Claims, err = decodeObject(d.RawClaims); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformedJWT, err)
	}
	if d.Signature, err = decodeSegment(parts[2]); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformedJWT, err)
	}
	return d, nil
}

func decodeSegment(s string) ([]byte, error) {
	// Some tools pad; RFC 7515 does not, so strip and decode strictly.
	s = strings.TrimRight(s, "=")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	return b, nil
}

func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, errors.New("not a JSON object")
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}

// HeaderString returns a string header member.
func (d *Decoded) HeaderString(name string) (string, bool) {
	s, ok := d.Header[name].(string)
	return s, ok
}

// ClaimString returns a string claim.
func (d *Decoded) ClaimString(name string) (string, bool) {
	s, ok := d.Claims[name].(string)
	return s, ok
}

// Alg is the header's alg, or "".
func (d *Decoded) Alg() string { s, _ := d.HeaderString("alg"); return s }

// Kid is the header's kid, or "".
func (d *Decoded) Kid() string { s, _ := d.HeaderString("kid"); return s }

// X5C returns the header's certificate chain. isArray is false when x5c is
// present but not an array of strings (Maskinporten answers MP-123).
func (d *Decoded) X5C() (chain []string, present, isArray bool) {
	v, present := d.Header["x5c"]
	if !present {
		return nil, false, false
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, true, false
	}
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, true, false
		}
		chain = append(chain, s)
	}
	return chain, true, true
}

// Audience returns aud as a list, whether sent as a string or an array.
func (d *Decoded) Audience() []string {
	return stringOrArray(d.Claims["aud"])
}

// Resource returns the grant's resource claim as a list.
func (d *Decoded) Resource() []string {
	return stringOrArray(d.Claims["resource"])
}

func stringOrArray(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Scopes splits the space-separated scope claim.
func (d *Decoded) Scopes() []string {
	s, _ := d.ClaimString("scope")
	return strings.Fields(s)
}

// ClaimTime reads a NumericDate claim (iat, exp, nbf).
func (d *Decoded) ClaimTime(name string) (time.Time, bool) {
	n, ok := d.Claims[name].(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	// Bound to years 0..9999 so time arithmetic stays meaningful.
	if err != nil || math.IsNaN(f) || f < -62135596800 || f > 253402300799 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// Lifetime is exp - iat, when both are present.
func (d *Decoded) Lifetime() (time.Duration, bool) {
	iat, ok1 := d.ClaimTime("iat")
	exp, ok2 := d.ClaimTime("exp")
	if !ok1 || !ok2 {
		return 0, false
	}
	return exp.Sub(iat), true
}

// ConsumerOrg returns the organisation number of an access token's
// consumer claim ({"authority":"iso6523-actorid-upis","ID":"0192:<orgno>"}).
func (d *Decoded) ConsumerOrg() (string, bool) {
	return iso6523Org(d.Claims["consumer"])
}

func iso6523Org(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	if a, _ := m["authority"].(string); a != "iso6523-actorid-upis" {
		return "", false
	}
	id, _ := m["ID"].(string)
	_, org, ok := strings.Cut(id, ":")
	if !ok || org == "" {
		return "", false
	}
	return org, true
}
