package main

import (
	"net/http"

	"portal/internal/metrics"
)

// maskinportenTransport is the transport of an environment's Maskinporten and self-service
// client: http.DefaultTransport, measured per upstream when m is set (commands that serve no
// metrics pass nil).
func maskinportenTransport(m *metrics.Metrics, env, selfService string) http.RoundTripper {
	return m.Transport(env, metrics.Maskinporten(selfService), http.DefaultTransport)
}

// altinnTransport is the transport of an environment's Altinn client, measured like
// maskinportenTransport.
func altinnTransport(m *metrics.Metrics, env, platform string) http.RoundTripper {
	return m.Transport(env, metrics.Altinn(platform), http.DefaultTransport)
}
