// Package metrics measures the portal for Prometheus: request durations per route, upstream
// calls per environment and upstream, and, read at scrape time, the state of the syncs, the
// audit chain and the keys. It keeps its own registry (never the global one), so every
// portal, and every test, counts alone. Labels take only values from fixed sets or from the
// configuration (route templates, environments, upstream names), never raw URLs.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// UnmatchedRoute is the route label of requests no route matched.
const UnmatchedRoute = "unmatched"

// Metrics holds the registry and the series the portal updates as it works.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	upstream *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	head     atomic.Pointer[Head] // the audit chain head last published
}

// Head is an audit chain head as published (at start and every hour), so that copies of it
// exist outside the database.
type Head struct {
	ID   int64
	Hash string
}

// SetPublishedHead records the audit chain head just published; /metrics shows it until the next.
func (m *Metrics) SetPublishedHead(h Head) { m.head.Store(&h) }

// New returns metrics in a registry of their own, with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portal_http_request_duration_seconds",
			Help:    "How long the portal took to answer requests, by method, route template and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portal_upstream_request_duration_seconds",
			Help:    "How long calls to upstreams took until their body was read, by environment, upstream and outcome (status class, or the kind of error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"env", "upstream", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portal_upstream_errors_total",
			Help: "Calls to upstreams that failed, by environment, upstream and kind (network, timeout, canceled, 4xx, 5xx).",
		}, []string{"env", "upstream", "kind"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.upstream, m.errors,
	)
	return m
}

// Gatherer is the registry, for tests and for serving.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// methods are the request methods counted by name; any other is "other", so a client cannot
// invent label values.
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodOptions: true, http.MethodConnect: true, http.MethodTrace: true,
}

// ObserveRequest records one answered request. route must be a route template (or
// UnmatchedRoute), never the requested path.
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	if !methods[method] {
		method = "other"
	}
	if route == "" {
		route = UnmatchedRoute
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}

// Handler serves the registry's series together with the state read for this scrape.
func (m *Metrics) Handler(s Snapshot) http.Handler {
	scrape := prometheus.NewRegistry()
	if h := m.head.Load(); h != nil {
		s.Head = h
	}
	scrape.MustRegister(snapshotCollector{s})
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, scrape}, promhttp.HandlerOpts{})
}
