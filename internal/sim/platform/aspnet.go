package platform

// The real services are ASP.NET Core applications. The helpers here reproduce the framework
// behaviour that leaks onto the wire: query-string parsing, the two URL encoders used when Storage
// builds links, .NET ticks, ProblemDetails bodies and Content-Disposition formatting.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// queryPair is one key=value of a query string, decoded once.
type queryPair struct{ key, value string }

// query is a query string as ASP.NET Core model binding sees it: ordered pairs, keys matched
// without regard to case.
type query []queryPair

// parseQuery splits a raw query string the way QueryHelpers.ParseQuery does: on '&', then on the
// first '='; '+' means space; malformed percent escapes are kept literally instead of dropping the
// pair (Go's url.ParseQuery would drop it).
func parseQuery(raw string) query {
	var q query
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k = unescapeData(strings.ReplaceAll(k, "+", " "))
		if k == "" {
			continue
		}
		q = append(q, queryPair{k, unescapeData(strings.ReplaceAll(v, "+", " "))})
	}
	return q
}

// all returns every value of key (case-insensitive), in order.
func (q query) all(key string) []string {
	var out []string
	for _, p := range q {
		if strings.EqualFold(p.key, key) {
			out = append(out, p.value)
		}
	}
	return out
}

// first returns the first value of key and whether the key was present.
func (q query) first(key string) (string, bool) {
	for _, p := range q {
		if strings.EqualFold(p.key, key) {
			return p.value, true
		}
	}
	return "", false
}

// str returns the first value, with an empty value treated as absent (model binding converts
// empty strings to null).
func (q query) str(key string) string {
	v, _ := q.first(key)
	return v
}

// unescapeData decodes %XX escapes and keeps anything malformed as it is, like
// Uri.UnescapeDataString.
func unescapeData(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// httpUtilityURLDecode is HttpUtility.UrlDecode: '+' is space, valid %XX decoded, the rest kept.
func httpUtilityURLDecode(s string) string {
	return unescapeData(strings.ReplaceAll(s, "+", " "))
}

// httpUtilityURLEncode is HttpUtility.UrlEncode: space becomes '+', letters, digits and -_.!*()
// stay, everything else becomes lower-case %xx of its UTF-8 bytes. Storage applies it to the
// continuation token, which is why ';' reaches the client as %3b.
func httpUtilityURLEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b.WriteByte('+')
		case isAlnum(c) || strings.IndexByte("-_.!*()", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteString(hex.EncodeToString([]byte{c}))
		}
	}
	return b.String()
}

// urlEncoderDefault is System.Text.Encodings.Web.UrlEncoder.Default, used by QueryBuilder when
// Storage rebuilds its self and next links. Only letters, digits and -._~!$()*,;@ stay as they
// are; everything else becomes upper-case %XX of its UTF-8 bytes.
func urlEncoderDefault(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("-._~!$()*,;@", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0x0f])
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// ticksAtUnixEpoch is DateTime(1970,1,1).Ticks: .NET counts 100 ns ticks from 0001-01-01.
const ticksAtUnixEpoch = 621355968000000000

// maxTicks is DateTime.MaxValue.Ticks.
const maxTicks = 3155378975999999999

func toTicks(t time.Time) int64 {
	return t.UnixNano()/100 + ticksAtUnixEpoch
}

func fromTicks(ticks int64) time.Time {
	d := ticks - ticksAtUnixEpoch
	return time.Unix(d/10_000_000, (d%10_000_000)*100).UTC()
}

// formatTime renders a UTC instant the way Storage's JSON does: seconds, a fraction only when
// non-zero with trailing zeros trimmed, and Z.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.9999999Z")
}

// newTraceID returns a W3C traceparent-shaped id, as ASP.NET Core puts in ProblemDetails.traceId.
func newTraceID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-00"
}

// problemTypes are the "type" links ASP.NET Core's client-error mapping uses.
var problemTypes = map[int]struct{ typ, title string }{
	http.StatusBadRequest:   {"https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"},
	http.StatusUnauthorized: {"https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"},
	http.StatusForbidden:    {"https://tools.ietf.org/html/rfc9110#section-15.5.4", "Forbidden"},
	http.StatusNotFound:     {"https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"},
}

// writeProblem writes the ProblemDetails body [ApiController] substitutes for a bare status
// result such as Unauthorized() or NotFound().
func writeProblem(w http.ResponseWriter, status int) {
	writeProblemAs(w, status, "application/problem+json; charset=utf-8")
}

// writeProblemAs is writeProblem for an action whose [Produces] overrides the content type.
func writeProblemAs(w http.ResponseWriter, status int, contentType string) {
	pt := problemTypes[status]
	body := struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Status  int    `json:"status"`
		TraceID string `json:"traceId"`
	}{pt.typ, pt.title, status, newTraceID()}
	writeJSONAs(w, status, contentType, body)
}

// writeValidationProblem writes the automatic 400 that model binding produces for a query value
// it cannot convert (for example size=abc).
func writeValidationProblem(w http.ResponseWriter, errs map[string][]string) {
	body := struct {
		Type    string              `json:"type"`
		Title   string              `json:"title"`
		Status  int                 `json:"status"`
		Errors  map[string][]string `json:"errors"`
		TraceID string              `json:"traceId"`
	}{
		problemTypes[http.StatusBadRequest].typ,
		"One or more validation errors occurred.",
		http.StatusBadRequest,
		errs,
		newTraceID(),
	}
	writeJSONAs(w, http.StatusBadRequest, "application/problem+json; charset=utf-8", body)
}

// writeJSONString writes a string result of an action marked [Produces("application/json")]:
// the framework serialises it as a quoted JSON string.
func writeJSONString(w http.ResponseWriter, status int, msg string) {
	writeJSONAs(w, status, "application/json; charset=utf-8", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, "application/json; charset=utf-8", v)
}

func writeJSONAs(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeText writes a plain-text body, as an action returning a string without [Produces] does.
func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

// contentDisposition formats "attachment" with a file name the way ASP.NET Core's
// ContentDispositionHeaderValue.SetHttpFileName does: an ASCII filename (non-ASCII replaced by
// '_', quoted when it is not a token) followed by the RFC 5987 filename*.
func contentDisposition(filename string) string {
	var ascii strings.Builder
	for _, r := range filename {
		if r > 0x7f || r == utf8.RuneError {
			ascii.WriteByte('_')
			continue
		}
		ascii.WriteRune(r)
	}
	name := ascii.String()
	if !isToken(name) {
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	const hexUpper = "0123456789ABCDEF"
	var star strings.Builder
	for i := 0; i < len(filename); i++ {
		c := filename[i]
		if isAlnum(c) || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			star.WriteByte(c)
			continue
		}
		star.WriteByte('%')
		star.WriteByte(hexUpper[c>>4])
		star.WriteByte(hexUpper[c&0x0f])
	}
	return "attachment; filename=" + name + "; filename*=UTF-8''" + star.String()
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}
