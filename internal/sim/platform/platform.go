// Package platform simulates one environment's Altinn platform: the Maskinporten token
// exchange (authentication) and Storage, as described in shared/reference/upstreams.md §3 and §4.
package platform

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ServiceOwner is one entry of Altinn's org registry (altinn-orgs.json).
type ServiceOwner struct {
	Code  string // Altinn org code, e.g. "ttd"
	OrgNo string // 9-digit organisation number
	Name  string
}

// Config wires one environment's platform simulator. The core simulator (package sim) owns the
// SQLite file, the clock and the Maskinporten keys and passes them in.
type Config struct {
	Env     string // "tt02" or "prod"
	BaseURL string // public URL of this platform without trailing slash, e.g. http://127.0.0.1:8081/sim/tt02/platform
	DB      *sql.DB
	Now     func() time.Time

	MaskinportenIssuer string                                                // e.g. http://127.0.0.1:8081/sim/tt02/maskinporten/
	MaskinportenKeys   func(ctx context.Context) (jose.JSONWebKeySet, error) // public keys that sign this environment's Maskinporten tokens
	ServiceOwners      func(ctx context.Context) ([]ServiceOwner, error)     // the org registry

	SigningKey   *rsa.PrivateKey // signs Altinn tokens for this environment (persisted by the core)
	SigningKeyID string
}

// Platform serves one environment's Altinn platform.
type Platform struct {
	cfg Config
}

// New prepares the platform's tables (idempotent) and returns it.
func New(ctx context.Context, cfg Config) (*Platform, error) {
	return &Platform{cfg: cfg}, nil
}

// Handler serves requests whose path has had the BaseURL's path stripped, e.g.
// /authentication/api/v1/exchange/maskinporten and /storage/api/v1/instances.
func (p *Platform) Handler() http.Handler {
	return http.NotFoundHandler()
}

// SeedApp makes sure app {org}/{app} exists with at least n believable instances. Idempotent.
func (p *Platform) SeedApp(ctx context.Context, org, app string, n int) error {
	return nil
}
