package clients

import (
	"context"
	"time"

	"portal/internal/auth"
	"portal/internal/problem"
	"portal/internal/store"
)

// ExpiryFilter narrows the expiry overview. The zero value selects every key.
type ExpiryFilter struct {
	Env    string // "" for every environment
	TeamID int64  // 0 for any team
	Within int    // days: only keys that expire (or have expired) before now plus this; 0 for no limit
}

// KeyExpiry is one key of an active integration in the expiry overview.
type KeyExpiry struct {
	Env      string
	ClientID string
	Name     string // the integration's
	TeamID   int64
	Team     string
	Kid      string
	Alg      string
	Expires  time.Time // zero when the key has no exp
	Custody  string    // CustodyKept, CustodyHandedOut, CustodyUploaded; "" when the key was added outside the portal
}

// KeyExpiries returns every key of the active integrations p may see (admins: all; others:
// their teams', whatever their role) in the environments f selects, soonest expiry first.
// It reads the mirror as the last sync left it.
func (s *Service) KeyExpiries(ctx context.Context, p *auth.Principal, f ExpiryFilter) ([]KeyExpiry, error) {
	var visible []int64
	if !p.IsAdmin() {
		visible = []int64{}
		for _, t := range p.Teams {
			visible = append(visible, t.TeamID)
		}
	}
	return s.keyExpiries(ctx, visible, f)
}

// AllKeyExpiries returns every key of every active integration, for monitoring (the metrics
// endpoint and the daily expiry log). No person is involved: the caller decides who may read it.
func (s *Service) AllKeyExpiries(ctx context.Context, f ExpiryFilter) ([]KeyExpiry, error) {
	return s.keyExpiries(ctx, nil, f)
}

func (s *Service) keyExpiries(ctx context.Context, visible []int64, f ExpiryFilter) ([]KeyExpiry, error) {
	q := store.KeyExpiryQuery{VisibleTeams: visible, TeamID: f.TeamID, Envs: s.order}
	if f.Env != "" {
		e, err := s.env(f.Env)
		if err != nil {
			return nil, err
		}
		q.Envs = []string{e.Name}
	}
	if f.Within < 0 {
		return nil, problem.Invalid("Choose a positive number of days.", map[string]string{"within": "Enter a whole number of days above 0."})
	}
	if f.Within > 0 {
		q.ExpiringBefore = s.now().AddDate(0, 0, f.Within)
	}
	rows, err := s.db.KeyExpiries(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]KeyExpiry, 0, len(rows))
	for _, r := range rows {
		out = append(out, KeyExpiry{Env: r.Env, ClientID: r.ClientID, Name: r.Name, TeamID: r.TeamID, Team: r.TeamName,
			Kid: r.KID, Alg: r.Alg, Expires: r.Expires, Custody: r.Custody})
	}
	return out, nil
}
