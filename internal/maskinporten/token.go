package maskinporten

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// TokenResponse is Maskinporten's answer to a successful token request.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	// Raw is the body as received (it contains the token).
	Raw json.RawMessage `json:"-"`
}

// Error is a token endpoint refusal (or any non-200 answer).
type Error struct {
	Status        int
	Code          string // OAuth error, e.g. invalid_grant
	Description   string // error_description as sent
	URI           string // error_uri
	MPCode        string // e.g. MP-121, from error_uri
	TraceID       string // from "(trace_id: …)" in the description
	CorrelationID string // from "(correlation id: …)", older responses
	// Body is a short printable prefix of a body that was not the
	// documented JSON (e.g. a proxy's HTML page); empty otherwise.
	Body string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "maskinporten token endpoint: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if m := e.Message(); m != "" {
		b.WriteString(": " + m)
	}
	if e.MPCode != "" {
		b.WriteString(" [" + e.MPCode + "]")
	}
	if e.TraceID != "" {
		b.WriteString(" (trace id " + e.TraceID + ")")
	} else if e.CorrelationID != "" {
		b.WriteString(" (correlation id " + e.CorrelationID + ")")
	}
	if e.Code == "" && e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	return b.String()
}

// Message is the description without its trace/correlation id trailer.
func (e *Error) Message() string {
	d := e.Description
	for _, marker := range []string{"(trace_id:", "(correlation id:"} {
		if i := strings.LastIndex(d, marker); i >= 0 && strings.HasSuffix(strings.TrimSpace(d), ")") {
			d = d[:i]
		}
	}
	return strings.TrimSpace(d)
}

// Permanent reports whether Maskinporten refused the request for a reason that asking again
// with a fresh grant will not change: an unknown client (MP-100), a wrong aud (MP-110), a
// refused certificate or key, a scope the client lacks. A reused grant (MP-012) is not: the
// next request signs a new one.
func (e *Error) Permanent() bool {
	if e.Status < 400 || e.Status >= 500 || e.Status == 429 || e.MPCode == "MP-012" {
		return false
	}
	switch e.Code {
	case "invalid_client", "invalid_grant", "invalid_scope", "unauthorized_client", "forbidden":
		return true
	}
	return false
}

// NotOAuth reports whether the answer carried no OAuth error at all, as when the URL points
// at something that is not Maskinporten's token endpoint (a 404 for a wrong issuer path).
func (e *Error) NotOAuth() bool {
	return e.Code == "" && e.Status >= 400 && e.Status < 500
}

// ParseError reads a token endpoint error body. It never fails: a body that
// is not the documented JSON yields an Error with only Status and Body.
func ParseError(status int, body []byte) *Error {
	e := &Error{Status: status}
	var w struct {
		Error       any `json:"error"`
		Description any `json:"error_description"`
		URI         any `json:"error_uri"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &w) == nil {
		// Tolerate wrong member types rather than lose the rest.
		e.Code, _ = w.Error.(string)
		e.Description, _ = w.Description.(string)
		e.URI, _ = w.URI.(string)
	}
	if e.Code == "" && e.Description == "" {
		e.Body = snippet(body)
	}
	e.MPCode = mpCode(e.URI)
	e.TraceID = parenValue(e.Description, "(trace_id:")
	e.CorrelationID = parenValue(e.Description, "(correlation id:")
	return e
}

// mpCode takes "MP-121" from https://maskinporten.no/errors/MP-121.
func mpCode(uri string) string {
	if uri == "" {
		return ""
	}
	p := uri
	if u, err := url.Parse(uri); err == nil {
		p = u.Path
	}
	p = p[strings.LastIndex(p, "/")+1:]
	if len(p) < 4 || len(p) > 10 || !strings.EqualFold(p[:3], "MP-") {
		return ""
	}
	for _, r := range p[3:] {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return "MP-" + p[3:]
}

// parenValue finds "(marker value)" in s and returns value if it looks like
// an id (hex digits and dashes).
func parenValue(s, marker string) string {
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return ""
	}
	rest := s[i+len(marker):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return ""
	}
	v := strings.TrimSpace(rest[:end])
	if v == "" || len(v) > 64 {
		return ""
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return ""
		}
	}
	return v
}

// Token posts a signed grant to the token endpoint. It is never retried:
// the grant's jti must not be used twice.
func (c *Client) Token(ctx context.Context, assertion string) (*TokenResponse, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	form := url.Values{"grant_type": {GrantType}, "assertion": {assertion}}
	resp, err := c.send(ctx, outgoing{
		op:     "token",
		method: http.MethodPost,
		url:    c.TokenEndpoint(),
		header: http.Header{
			"Content-Type": {"application/x-www-form-urlencoded"},
			"Accept":       {"application/json"},
		},
		body: []byte(form.Encode()),
	})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, ParseError(resp.status, resp.body)
	}
	var tr TokenResponse
	if err := json.Unmarshal(resp.body, &tr); err != nil {
		return nil, fmt.Errorf("token: decode response: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token: response has no access_token")
	}
	tr.Raw = resp.body
	return &tr, nil
}
