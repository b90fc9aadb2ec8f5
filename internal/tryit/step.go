package tryit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
)

// Step names, in chain order.
const (
	StepGrant     = "grant"
	StepToken     = "token"
	StepExchange  = "exchange"
	StepInstances = "instances"
	StepInstance  = "instance"
	StepData      = "data"
	// StepPlatform is step 4's other choice: a GET to any path on the platform host.
	StepPlatform = "platform"
)

var stepTitles = map[string]string{
	StepGrant:     "JWT grant",
	StepToken:     "Maskinporten token",
	StepExchange:  "Altinn token",
	StepInstances: "Instances",
	StepInstance:  "Instance",
	StepData:      "Data element",
	StepPlatform:  "GET on the platform",
}

// Placeholders stand for secrets in curl commands and masked bodies until the person asks to
// reveal them.
const (
	PlaceholderGrant        = "$GRANT"
	PlaceholderMaskinporten = "$MASKINPORTEN_TOKEN"
	PlaceholderAltinn       = "$ALTINN_TOKEN"
)

// Step is the outcome of one step of the chain, shaped for a page or a JSON line. Secrets (the
// grant sent, the token received) are masked in every exported field; the full values stay in
// unexported fields, in memory only, and come out through Secret and Revealed.
type Step struct {
	Name  string
	Title string
	At    time.Time
	OK    bool
	// Error says in one sentence why the step failed; "" when it did not.
	Error   string
	Request *Request // nil for steps without an HTTP call (a grant)
	Status  int      // HTTP status of the last attempt, 0 when none arrived
	// Total is the step's wall time in the portal, upstream calls and signing included.
	Total time.Duration
	// Upstream is the time the upstreams reported in Server-Timing, summed over attempts.
	Upstream    time.Duration
	HasUpstream bool
	// Sign is the time spent on the grant's RSA signature (grant step only).
	Sign     time.Duration
	Attempts []Attempt
	Response Response
	// Curl reproduces the request, with secrets replaced by placeholders.
	Curl     string
	Findings []Finding

	in    secret // the secret the request carried
	out   secret // the secret the response carried
	curlT string // curl template: Curl with the placeholder of in, for Revealed
}

// secret is a value that must not leave memory unasked.
type secret struct {
	placeholder string
	value       string
}

// Overhead is the portal's own share of the step: its total time less the upstreams'
// reported time and the RSA signature.
func (s Step) Overhead() time.Duration {
	return max(0, s.Total-s.Upstream-s.Sign)
}

// Secret is the full value of what the step produced: the signed grant, the Maskinporten
// token or the Altinn token; "" for other steps. Show it only to the person who asked.
func (s Step) Secret() string { return s.out.value }

// Revealed returns the step with secrets unmasked in its curl command, request body and
// response, for a person who chose to reveal them.
func (s Step) Revealed() Step {
	r := s
	if s.in.value != "" {
		r.Curl = strings.ReplaceAll(s.curlT, s.in.placeholder, shellQuote(s.in.value))
		if s.Request != nil {
			req := *s.Request
			req.Body = strings.ReplaceAll(req.Body, s.in.placeholder, s.in.value)
			r.Request = &req
		}
	}
	if s.out.value != "" {
		r.Response.Body = strings.ReplaceAll(s.Response.Body, s.out.placeholder, s.out.value)
		if s.Response.Token != nil {
			tv := *s.Response.Token
			tv.Value = s.out.value
			r.Response.Token = &tv
		}
	}
	return r
}

// Request is the HTTP request a step made, headers masked.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   string // with the grant replaced by its placeholder
}

// Attempt is one HTTP attempt of a step (retries show as several).
type Attempt struct {
	Status      int
	Latency     time.Duration
	Upstream    time.Duration
	HasUpstream bool
	Error       string
}

// Response is what a step got back, secrets masked.
type Response struct {
	ContentType string
	// Body is the body as received for small answers (token responses, error bodies), with
	// tokens replaced by their placeholder; Storage answers are given as Instances, Instance
	// or Download instead.
	Body      string
	Token     *TokenView
	Instances *altinn.InstancePage
	Instance  *altinn.Instance
	Download  *DownloadInfo
	// Header is the response's headers, credentials masked (a platform GET only).
	Header http.Header
	// Truncated says Body was cut at altinn.MaxPlatformBody (a platform GET only).
	Truncated bool
}

// DownloadInfo describes a data element download; the bytes stream to the caller and are
// never kept.
type DownloadInfo struct {
	Filename      string
	ContentType   string
	ContentLength int64 // -1 when unknown
}

// TokenView is a grant or token decoded for display. Value is empty unless revealed.
type TokenView struct {
	Kind    string // "grant", "maskinporten", "altinn"
	Masked  string
	Value   string
	Header  json.RawMessage
	Claims  []Claim
	Issued  time.Time
	Expires time.Time
}

// Claim is one claim of a token with what it means.
type Claim struct {
	Name    string
	Value   json.RawMessage
	Meaning string
}

// mask shows a secret's first characters and its length.
func mask(s string) string {
	if s == "" {
		return ""
	}
	n := min(len(s)/4, 10)
	return s[:n] + fmt.Sprintf("…[masked, %d characters]", len(s))
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// stepJSON is a step's JSON form: durations in milliseconds, secrets masked.
type stepJSON struct {
	Step        string          `json:"step"`
	Title       string          `json:"title"`
	At          time.Time       `json:"at"`
	OK          bool            `json:"ok"`
	Error       string          `json:"error,omitempty"`
	Request     *requestJSON    `json:"request,omitempty"`
	Status      int             `json:"status,omitempty"`
	TotalMS     float64         `json:"total_ms"`
	UpstreamMS  *float64        `json:"upstream_ms,omitempty"`
	SignMS      float64         `json:"sign_ms,omitempty"`
	OverheadMS  float64         `json:"portal_ms"`
	Attempts    []attemptJSON   `json:"attempts,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	Header      http.Header     `json:"response_header,omitempty"`
	Body        string          `json:"body,omitempty"`
	Truncated   bool            `json:"truncated,omitempty"`
	Token       *tokenJSON      `json:"token,omitempty"`
	Response    json.RawMessage `json:"response,omitempty"`
	Curl        string          `json:"curl,omitempty"`
	Findings    []Finding       `json:"findings,omitempty"`
}

type requestJSON struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
	Body   string              `json:"body,omitempty"`
}

type attemptJSON struct {
	Status     int      `json:"status,omitempty"`
	LatencyMS  float64  `json:"latency_ms"`
	UpstreamMS *float64 `json:"upstream_ms,omitempty"`
	Error      string   `json:"error,omitempty"`
}

type tokenJSON struct {
	Kind    string          `json:"kind"`
	Masked  string          `json:"masked"`
	Value   string          `json:"value,omitempty"`
	Header  json.RawMessage `json:"header,omitempty"`
	Claims  []claimJSON     `json:"claims,omitempty"`
	Issued  *time.Time      `json:"issued,omitempty"`
	Expires *time.Time      `json:"expires,omitempty"`
}

type claimJSON struct {
	Name    string          `json:"name"`
	Value   json.RawMessage `json:"value"`
	Meaning string          `json:"meaning,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON writes the step as one JSON object with secrets masked (unless it was Revealed).
func (s Step) MarshalJSON() ([]byte, error) {
	j := stepJSON{Step: s.Name, Title: s.Title, At: s.At.UTC(), OK: s.OK, Error: s.Error, Status: s.Status,
		TotalMS: ms(s.Total), SignMS: ms(s.Sign), OverheadMS: ms(s.Overhead()),
		ContentType: s.Response.ContentType, Header: s.Response.Header, Body: s.Response.Body, Truncated: s.Response.Truncated,
		Curl: s.Curl, Findings: s.Findings}
	if s.HasUpstream {
		v := ms(s.Upstream)
		j.UpstreamMS = &v
	}
	if s.Request != nil {
		j.Request = &requestJSON{Method: s.Request.Method, URL: s.Request.URL, Header: s.Request.Header, Body: s.Request.Body}
	}
	for _, a := range s.Attempts {
		aj := attemptJSON{Status: a.Status, LatencyMS: ms(a.Latency), Error: a.Error}
		if a.HasUpstream {
			v := ms(a.Upstream)
			aj.UpstreamMS = &v
		}
		j.Attempts = append(j.Attempts, aj)
	}
	if t := s.Response.Token; t != nil {
		tj := &tokenJSON{Kind: t.Kind, Masked: t.Masked, Value: t.Value, Header: t.Header}
		for _, c := range t.Claims {
			tj.Claims = append(tj.Claims, claimJSON(c))
		}
		if !t.Issued.IsZero() {
			tj.Issued = &t.Issued
		}
		if !t.Expires.IsZero() {
			tj.Expires = &t.Expires
		}
		j.Token = tj
	}
	var resp any
	switch {
	case s.Response.Instances != nil:
		resp = s.Response.Instances
	case s.Response.Instance != nil:
		resp = s.Response.Instance
	case s.Response.Download != nil:
		resp = map[string]any{"filename": s.Response.Download.Filename, "content_type": s.Response.Download.ContentType,
			"content_length": s.Response.Download.ContentLength}
	}
	if resp != nil {
		b, err := json.Marshal(resp)
		if err != nil {
			return nil, err
		}
		j.Response = b
	}
	return json.Marshal(j)
}

// newStep starts a step.
func newStep(name string, at time.Time) Step {
	return Step{Name: name, Title: stepTitles[name], At: at}
}

// fromTrace fills the step's request, attempts, status and upstream time from the calls the
// adapters recorded.
func (s *Step) fromTrace(calls []maskinporten.Call, body string) {
	if len(calls) == 0 {
		return
	}
	last := calls[len(calls)-1]
	s.Request = &Request{Method: last.Method, URL: last.URL, Header: last.RequestHeader, Body: body}
	s.Status = last.Status
	s.Response.ContentType = last.ResponseHeader.Get("Content-Type")
	for _, c := range calls {
		a := Attempt{Status: c.Status, Latency: c.Latency, Upstream: c.Upstream, HasUpstream: c.HasUpstream}
		if c.Err != nil {
			a.Error = c.Err.Error()
		}
		s.Attempts = append(s.Attempts, a)
		s.Upstream += c.Upstream
		s.HasUpstream = s.HasUpstream || c.HasUpstream
	}
}
