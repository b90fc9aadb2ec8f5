package maskinporten

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Kinds of self-service API refusals, matched by errors.Is on *APIError.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
)

// FieldError is one entry of the API's errors[] list.
type FieldError struct {
	ErrorMessage    string `json:"errorMessage"`
	IsFieldError    bool   `json:"isFieldError"`
	ObjectName      string `json:"objectName,omitempty"`
	FieldIdentifier string `json:"fieldIdentifier,omitempty"`
}

// APIError is a non-2xx answer of the self-service API.
type APIError struct {
	Op            string // e.g. "create client"
	Status        int
	Timestamp     string
	CorrelationID string
	Errors        []FieldError
	Code          string // "error"
	Description   string // "error_description"
	// Body is a short printable prefix of a body that was not the
	// documented JSON; empty otherwise.
	Body string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "self-service API %s: %d", e.Op, e.Status)
	var msgs []string
	for _, f := range e.Errors {
		m := f.ErrorMessage
		if f.FieldIdentifier != "" {
			m = f.FieldIdentifier + ": " + m
		}
		msgs = append(msgs, m)
	}
	switch {
	case len(msgs) > 0:
		b.WriteString(": " + strings.Join(msgs, "; "))
	case strings.Trim(e.Description, ", ") != "":
		b.WriteString(": " + strings.Trim(e.Description, ", "))
	case strings.Trim(e.Code, ", ") != "":
		b.WriteString(": " + strings.Trim(e.Code, ", "))
	case e.Body != "":
		b.WriteString(": " + e.Body)
	}
	if e.CorrelationID != "" {
		b.WriteString(" (correlation id " + e.CorrelationID + ")")
	}
	return b.String()
}

// Is maps the status to ErrUnauthorized, ErrForbidden, ErrNotFound or ErrConflict.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// FieldErrors returns the messages per field identifier.
func (e *APIError) FieldErrors() map[string][]string {
	out := map[string][]string{}
	for _, f := range e.Errors {
		if f.IsFieldError && f.FieldIdentifier != "" {
			out[f.FieldIdentifier] = append(out[f.FieldIdentifier], f.ErrorMessage)
		}
	}
	return out
}

// ParseAPIError reads a self-service API error body. It never fails: an
// unexpected body yields an APIError with only Status and Body.
func ParseAPIError(op string, status int, body []byte) *APIError {
	e := &APIError{Op: op, Status: status}
	var w struct {
		Timestamp     any             `json:"timestamp"`
		CorrelationID any             `json:"correlation_id"`
		Errors        json.RawMessage `json:"errors"`
		Error         any             `json:"error"`
		Description   any             `json:"error_description"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &w) != nil {
		e.Body = snippet(body)
		return e
	}
	e.Timestamp, _ = w.Timestamp.(string)
	e.CorrelationID, _ = w.CorrelationID.(string)
	e.Code, _ = w.Error.(string)
	e.Description, _ = w.Description.(string)
	// Entries of the wrong shape are skipped, not fatal.
	var entries []json.RawMessage
	if json.Unmarshal(w.Errors, &entries) == nil {
		for _, raw := range entries {
			var f FieldError
			if json.Unmarshal(raw, &f) == nil && f.ErrorMessage != "" {
				e.Errors = append(e.Errors, f)
			}
		}
	}
	if e.Code == "" && e.Description == "" && len(e.Errors) == 0 {
		e.Body = snippet(body)
	}
	return e
}

// api performs one self-service API call with the admin token for purpose
// (none for 0), renewing the token once on 401. in is sent as JSON when
// non-nil; out is decoded from a 2xx body when non-nil.
func (c *Client) api(ctx context.Context, op, method, path string, query url.Values, in, out any, purpose Purpose) (*response, error) {
	if c.selfService == "" {
		return nil, fmt.Errorf("self-service API %s: no base URL configured", op)
	}
	auth := purpose != 0
	admin := c.adminFor(purpose)
	if auth && admin == nil {
		return nil, fmt.Errorf("self-service API %s: no admin client configured", op)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	u := c.selfService + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req := outgoing{op: op, method: method, url: u,
		header: http.Header{"Accept": {"application/json"}},
		retry:  method == http.MethodGet}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("self-service API %s: encode: %w", op, err)
		}
		req.body = b
		req.header.Set("Content-Type", "application/json")
	}
	var resp *response
	var tok string
	for try := 0; try < 2; try++ {
		if auth {
			var err error
			if tok, err = admin.Token(ctx); err != nil {
				return nil, fmt.Errorf("self-service API %s: %w (%w)", op, err, ErrNotSent)
			}
			req.header.Set("Authorization", "Bearer "+tok)
		}
		var err error
		resp, err = c.send(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("self-service API %w", err)
		}
		// A 401 means the request was not processed, so even a write may be
		// sent again once with a fresh token.
		if resp.status != http.StatusUnauthorized || !auth || try > 0 {
			break
		}
		// Drop only the token that was refused, so concurrent callers
		// do not discard a fresh one.
		if ts, ok := admin.(interface{ invalidateToken(string) }); ok {
			ts.invalidateToken(tok)
		} else {
			admin.Invalidate()
		}
	}
	if resp.status < 200 || resp.status > 299 {
		return resp, ParseAPIError(op, resp.status, resp.body)
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return resp, fmt.Errorf("self-service API %s: decode response: %w", op, err)
		}
	}
	return resp, nil
}

func clientPath(id string, rest ...string) (string, error) {
	if id == "" || strings.TrimSpace(id) != id {
		return "", errors.New("client id is empty or padded")
	}
	return "/clients/" + url.PathEscape(id) + strings.Join(rest, ""), nil
}

// ListClients lists the organisation's clients; inactive also includes
// deactivated ones.
func (c *Client) ListClients(ctx context.Context, inactive bool) ([]Registration, error) {
	var q url.Values
	if inactive {
		q = url.Values{"inactive": {"true"}}
	}
	var out []Registration
	if _, err := c.api(ctx, "list clients", http.MethodGet, "/clients", q, nil, &out, PurposeRead); err != nil {
		return nil, err
	}
	return out, nil
}

// GetClient reads one client.
func (c *Client) GetClient(ctx context.Context, id string) (*Registration, error) {
	p, err := clientPath(id)
	if err != nil {
		return nil, fmt.Errorf("get client: %w", err)
	}
	var out Registration
	if _, err := c.api(ctx, "get client", http.MethodGet, p, nil, nil, &out, PurposeRead); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateClient registers r; the answer carries the new client_id. Never
// retried: a repeat could create a second client.
func (c *Client) CreateClient(ctx context.Context, r Registration) (*Registration, error) {
	r.ClientID = ""
	var out Registration
	if _, err := c.api(ctx, "create client", http.MethodPost, "/clients", nil, r.forUpdate(), &out, PurposeWrite); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateClient replaces client id with r (GET-modify-PUT), dropping
// server-set members.
func (c *Client) UpdateClient(ctx context.Context, id string, r Registration) (*Registration, error) {
	p, err := clientPath(id)
	if err != nil {
		return nil, fmt.Errorf("update client: %w", err)
	}
	var out Registration
	if _, err := c.api(ctx, "update client", http.MethodPut, p, nil, r.forUpdate(), &out, PurposeWrite); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteClient deactivates a client (Digdir never deletes physically).
func (c *Client) DeleteClient(ctx context.Context, id string) error {
	p, err := clientPath(id)
	if err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	_, err = c.api(ctx, "delete client", http.MethodDelete, p, nil, nil, nil, PurposeWrite)
	return err
}

// GetJWKS reads a client's key set; a client without keys (404) gives an
// empty set.
func (c *Client) GetJWKS(ctx context.Context, id string) (*JWKS, error) {
	p, err := clientPath(id, "/jwks")
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	var out JWKS
	if _, err := c.api(ctx, "get jwks", http.MethodGet, p, nil, nil, &out, PurposeRead); err != nil {
		if errors.Is(err, ErrNotFound) {
			return &JWKS{Keys: []JWK{}}, nil
		}
		return nil, err
	}
	if out.Keys == nil {
		out.Keys = []JWK{}
	}
	return &out, nil
}

// ReplaceJWKS replaces the client's whole key set with keys. Keys to keep
// must be sent back with their exp.
func (c *Client) ReplaceJWKS(ctx context.Context, id string, keys []JWK) (*JWKS, error) {
	p, err := clientPath(id, "/jwks")
	if err != nil {
		return nil, fmt.Errorf("replace jwks: %w", err)
	}
	if keys == nil {
		keys = []JWK{}
	}
	var out JWKS
	body := struct {
		Keys []JWK `json:"keys"`
	}{keys}
	if _, err := c.api(ctx, "replace jwks", http.MethodPost, p, nil, body, &out, PurposeWrite); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteJWKS removes all keys of a client.
func (c *Client) DeleteJWKS(ctx context.Context, id string) error {
	p, err := clientPath(id, "/jwks")
	if err != nil {
		return fmt.Errorf("delete jwks: %w", err)
	}
	_, err = c.api(ctx, "delete jwks", http.MethodDelete, p, nil, nil, nil, PurposeWrite)
	return err
}

// ScopeFilter narrows scope listings; nil/empty members are not sent.
type ScopeFilter struct {
	AccessibleForAll *bool
	IntegrationType  string
	Inactive         *bool
}

func (f ScopeFilter) query() url.Values {
	q := url.Values{}
	if f.AccessibleForAll != nil {
		q.Set("accessible_for_all", strconv.FormatBool(*f.AccessibleForAll))
	}
	if f.IntegrationType != "" {
		q.Set("integration_type", f.IntegrationType)
	}
	if f.Inactive != nil {
		q.Set("inactive", strconv.FormatBool(*f.Inactive))
	}
	return q
}

// ScopesAll lists the public scope catalogue. It needs no token.
func (c *Client) ScopesAll(ctx context.Context, f ScopeFilter) ([]Scope, error) {
	var out []Scope
	if _, err := c.api(ctx, "list scopes", http.MethodGet, "/scopes/all", f.query(), nil, &out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// ScopeAccessAll lists the scopes the organisation has been granted (any
// state; only APPROVED gives access). AccessibleForAll is ignored.
func (c *Client) ScopeAccessAll(ctx context.Context, f ScopeFilter) ([]ScopeAccess, error) {
	f.AccessibleForAll = nil
	var out []ScopeAccess
	if _, err := c.api(ctx, "list scope access", http.MethodGet, "/scopes/access/all", f.query(), nil, &out, PurposeScopeAccess); err != nil {
		return nil, err
	}
	return out, nil
}
