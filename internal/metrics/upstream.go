package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Upstream names, the values of the upstream label.
const (
	UpstreamMaskinporten   = "maskinporten"    // token endpoint, metadata, JWKS
	UpstreamSelfService    = "selfservice"     // Digdir's self-service API
	UpstreamAltinnExchange = "altinn-exchange" // Altinn's token exchange
	UpstreamAltinnStorage  = "altinn-storage"  // Altinn Storage
	UpstreamAltinn         = "altinn"          // anything else on the Altinn platform
)

// Classifier names the upstream a request goes to. It must answer from a small fixed set
// (the Upstream constants), never with anything taken from the request's URL.
type Classifier func(*http.Request) string

// Maskinporten classifies a maskinporten.Client's calls: those under the self-service API's
// base URL are UpstreamSelfService, the rest (token, metadata, JWKS) UpstreamMaskinporten.
func Maskinporten(selfServiceBase string) Classifier {
	base, err := url.Parse(strings.TrimSuffix(selfServiceBase, "/"))
	if selfServiceBase == "" || err != nil {
		return func(*http.Request) string { return UpstreamMaskinporten }
	}
	return func(r *http.Request) string {
		if under(r.URL, base, "") {
			return UpstreamSelfService
		}
		return UpstreamMaskinporten
	}
}

// Altinn classifies an altinn.Client's calls by the platform's path: authentication is the
// token exchange, storage is Storage.
func Altinn(platformBase string) Classifier {
	base, err := url.Parse(strings.TrimSuffix(platformBase, "/"))
	if err != nil {
		base = &url.URL{}
	}
	return func(r *http.Request) string {
		switch {
		case under(r.URL, base, "/authentication/"):
			return UpstreamAltinnExchange
		case under(r.URL, base, "/storage/"):
			return UpstreamAltinnStorage
		}
		return UpstreamAltinn
	}
}

// under says whether u lies below base+sub (host compared only when base has one).
func under(u, base *url.URL, sub string) bool {
	if base.Host != "" && !strings.EqualFold(u.Host, base.Host) {
		return false
	}
	p := base.Path + sub
	return u.Path == strings.TrimSuffix(p, "/") || strings.HasPrefix(u.Path, strings.TrimSuffix(p, "/")+"/")
}

// Transport wraps base (http.DefaultTransport when nil) so that every call through it is
// measured for env, under the upstream classify names. A nil Metrics measures nothing and
// returns base itself, for commands that serve no metrics.
func (m *Metrics) Transport(env string, classify Classifier, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if m == nil {
		return base
	}
	return &transport{m: m, env: env, classify: classify, base: base}
}

type transport struct {
	m        *Metrics
	env      string
	classify Classifier
	base     http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	upstream := t.classify(r)
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		t.m.observeUpstream(t.env, upstream, 0, err, time.Since(start))
		return resp, err
	}
	// The call ends when its body has been read: wrap it to see when.
	status := resp.StatusCode
	resp.Body = &measuredBody{ReadCloser: resp.Body, done: func(err error) {
		t.m.observeUpstream(t.env, upstream, status, err, time.Since(start))
	}}
	return resp, nil
}

// measuredBody reports once: at the end of the body, at a read error, or when closed.
type measuredBody struct {
	io.ReadCloser
	once sync.Once
	done func(error)
}

func (b *measuredBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if errors.Is(err, io.EOF) {
			b.finish(nil)
		} else {
			b.finish(err)
		}
	}
	return n, err
}

func (b *measuredBody) Close() error {
	b.finish(nil)
	return b.ReadCloser.Close()
}

func (b *measuredBody) finish(err error) { b.once.Do(func() { b.done(err) }) }

// observeUpstream records one call: status is 0 when no response arrived; err is set when
// the call, or reading its body, failed.
func (m *Metrics) observeUpstream(env, upstream string, status int, err error, d time.Duration) {
	var outcome string
	switch {
	case err != nil:
		outcome = errorKind(err)
	case status >= 100 && status < 600:
		outcome = string(rune('0'+status/100)) + "xx"
	default:
		outcome = "other"
	}
	m.upstream.WithLabelValues(env, upstream, outcome).Observe(d.Seconds())
	switch outcome {
	case "2xx", "3xx", "1xx":
	default:
		m.errors.WithLabelValues(env, upstream, outcome).Inc()
	}
}

// errorKind sorts a failed call: timeout (deadline or network timeout), canceled (the caller
// gave up, e.g. the person left the page), or network (anything else: refused, reset, DNS, TLS).
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "network"
}
