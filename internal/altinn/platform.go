package altinn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

// MaxPlatformBody is how much of a platform GET's body is kept; the rest is cut off.
const MaxPlatformBody = 256 << 10

// maxPlatformPath bounds a typed path and query.
const maxPlatformPath = 2048

// PathError says why a path was refused: it could leave the platform host, or is not a plain
// path. Reason is a sentence for the person who typed it.
type PathError struct{ Reason string }

func (e *PathError) Error() string { return "altinn platform path refused: " + e.Reason }

func refusePath(reason string) error { return &PathError{Reason: reason} }

// PlatformResponse is a platform's answer to a GET, whatever its status.
type PlatformResponse struct {
	Status int
	Header http.Header // response headers, credentials masked
	Body   []byte      // at most MaxPlatformBody bytes
	// Truncated says the body was longer than MaxPlatformBody and was cut.
	Truncated bool
}

// ResolvePath resolves a path (with an optional query) that a person typed under the
// platform's base URL. Only a plain absolute path is taken: it starts with one "/", has no
// scheme, host or user, no backslash, "@", fragment, white space or control character, no "."
// or ".." segment and no empty segment, and no percent-encoded "/", "\" or "."; the result's
// scheme and host are the platform's. Anything else is refused with a *PathError.
func (c *Client) ResolvePath(pathQuery string) (string, error) {
	s := strings.TrimSpace(pathQuery)
	switch {
	case s == "":
		return "", refusePath("type a path, such as /events/api/v1/app/{org}/{app}?after=0")
	case len(s) > maxPlatformPath:
		return "", refusePath(fmt.Sprintf("the path is longer than %d characters", maxPlatformPath))
	case !strings.HasPrefix(s, "/"):
		return "", refusePath("the path must start with / (the platform's host is fixed: no scheme or host)")
	case strings.HasPrefix(s, "//"):
		return "", refusePath("the path must start with a single / (// would name another host)")
	case strings.ContainsAny(s, `\@#`):
		return "", refusePath(`the path may not contain \, @ or #`)
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }):
		return "", refusePath("the path may not contain spaces, control or non-ASCII characters: percent-encode them")
	}
	rawPath, rawQuery, _ := strings.Cut(s, "?")
	lower := strings.ToLower(rawPath)
	for _, enc := range []string{"%2f", "%5c", "%2e", "%40", "%00"} {
		if strings.Contains(lower, enc) {
			return "", refusePath("the path may not percent-encode /, \\, ., @ or NUL (" + enc + ")")
		}
	}
	decoded, err := url.PathUnescape(rawPath)
	if err != nil {
		return "", refusePath("the path has a malformed percent-escape")
	}
	for _, seg := range strings.Split(strings.TrimSuffix(decoded[1:], "/"), "/") {
		switch seg {
		case "", ".", "..":
			return "", refusePath(`the path may not have empty, "." or ".." segments`)
		}
	}
	if _, err := url.ParseQuery(rawQuery); err != nil {
		return "", refusePath("the query has a malformed percent-escape")
	}
	base, err := url.Parse(c.base)
	if err != nil {
		return "", fmt.Errorf("altinn platform URL: %w", err)
	}
	full := c.base + rawPath
	if rawQuery != "" {
		full += "?" + rawQuery
	}
	u, err := url.Parse(full)
	if err != nil {
		return "", refusePath("the path is not a valid URL path")
	}
	if u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil || !strings.HasPrefix(u.EscapedPath(), strings.TrimSuffix(base.EscapedPath(), "/")+"/") {
		return "", refusePath("the path would leave " + base.Host)
	}
	return u.String(), nil
}

// Get sends a GET with the Altinn token to a path (and query) under the platform's base URL,
// checked by ResolvePath, and returns the answer whatever its status; an error means no
// answer (a refused path, the network, a timeout). Network errors and 5xx are retried like
// Storage reads.
func (c *Client) Get(ctx context.Context, token, pathQuery string) (*PlatformResponse, error) {
	u, err := c.ResolvePath(pathQuery)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("altinn platform GET: no token")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.get(ctx, outgoing{op: "platform GET", url: u, token: token, accept: "application/json", stream: true})
	if err != nil {
		return nil, fmt.Errorf("altinn %w", err)
	}
	out := &PlatformResponse{Status: resp.status, Header: maskedHeader(resp.header), Body: resp.body}
	if resp.open != nil {
		defer resp.open.Close()
		b, err := io.ReadAll(io.LimitReader(resp.open, MaxPlatformBody+1))
		if err != nil {
			return nil, fmt.Errorf("altinn platform GET: read response: %w", err)
		}
		out.Body = b
	}
	if len(out.Body) > MaxPlatformBody {
		out.Body, out.Truncated = out.Body[:MaxPlatformBody], true
	}
	return out, nil
}
