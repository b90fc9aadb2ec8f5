package clients

import (
	"context"
	"time"

	"portal/internal/auth"
	"portal/internal/store"
)

// PerPage is the list's page size.
const PerPage = 50

// ExpiryWarning is how near a key's expiry must be for the "expires soon" filter.
const ExpiryWarning = 30 * 24 * time.Hour

// Statuses a list can show.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusAll      = "all"
)

// Sort orders of the list.
const (
	SortName       = store.SortName
	SortClientID   = store.SortClientID
	SortTeam       = store.SortTeam
	SortKeyExpiry  = store.SortKeyExpiry
	SortLastChange = store.SortLastChange
)

// Query is a list request as a person makes it.
type Query struct {
	Text     string
	Status   string // active (default), inactive, all
	TeamID   int64
	Scope    string
	NoKeys   bool
	Expiring bool // a key expires within ExpiryWarning
	Unowned  bool
	// Privileged keeps only clients holding privileged scopes (other than the admin client).
	Privileged bool
	Sort       string // name (default), client_id, team, expiry, changed
	Desc       bool
	Page       int // from 1
}

// Summary is one row of the list.
type Summary struct {
	ClientID      string
	Name          string
	Description   string
	TeamID        int64
	Team          string
	Scopes        []string
	KeyCount      int
	NextKeyExpiry time.Time
	Active        bool
	LastChange    time.Time
	Drifted       bool
	Portal        bool // the portal's own admin client
	Privileged    bool // holds privileged scopes without being the admin client
}

// Page is one page of the list with what the page needs around it.
type Page struct {
	Env     Env
	Query   Query
	Items   []Summary
	Total   int
	Pages   int
	Sync    SyncInfo
	Teams   []Team // the teams the person can filter by
	CanSync bool
	CanAdd  bool
}

// List returns a page of an environment's integrations that p may see, from the mirror,
// refreshing the mirror when it is older than MaxAge.
func (s *Service) List(ctx context.Context, p *auth.Principal, env string, q Query) (Page, error) {
	e, err := s.env(env)
	if err != nil {
		return Page{}, err
	}
	s.freshen(ctx, e)
	if q.Page < 1 {
		q.Page = 1
	}
	sq := store.IntegrationQuery{Env: e.Name, Text: q.Text, TeamID: q.TeamID, Scope: q.Scope, NoKeys: q.NoKeys,
		Unowned: q.Unowned, Privileged: q.Privileged, Sort: q.Sort, Desc: q.Desc, Limit: PerPage, Offset: (q.Page - 1) * PerPage}
	switch q.Status {
	case StatusAll:
	case StatusInactive:
		f := false
		sq.Active = &f
	default:
		q.Status = StatusActive
		t := true
		sq.Active = &t
	}
	if q.Expiring {
		sq.ExpiringBefore = s.now().Add(ExpiryWarning)
	}
	var teams []Team
	if p.IsAdmin() {
		if teams, err = s.teamsFor(ctx, p); err != nil {
			return Page{}, err
		}
	} else {
		sq.VisibleTeams = []int64{}
		for _, t := range p.Teams {
			sq.VisibleTeams = append(sq.VisibleTeams, t.TeamID)
			teams = append(teams, Team{ID: t.TeamID, Name: t.TeamName})
		}
		q.Unowned, sq.Unowned = false, false // only admins see unowned integrations
	}
	rows, total, err := s.db.ListIntegrations(ctx, sq)
	if err != nil {
		return Page{}, err
	}
	info, err := s.syncInfo(ctx, e)
	if err != nil {
		return Page{}, err
	}
	if !p.IsAdmin() {
		info.Message = withoutCounts(info)
	}
	flagged, err := s.db.PrivilegedFindings(ctx, e.Name)
	if err != nil {
		return Page{}, err
	}
	privileged := map[string]bool{}
	for _, f := range flagged {
		privileged[f.ClientID] = true
	}
	pg := Page{Env: e.Env, Query: q, Total: total, Pages: (total + PerPage - 1) / PerPage, Sync: info, Teams: teams,
		CanSync: e.Upstream != nil && maySync(p)}
	for _, t := range teams {
		if canChange(p, t.ID) {
			pg.CanAdd = e.Upstream != nil
		}
	}
	for _, r := range rows {
		pg.Items = append(pg.Items, Summary{ClientID: r.ClientID, Name: r.Name, Description: r.Description, TeamID: r.TeamID,
			Team: r.TeamName, Scopes: r.Scopes, KeyCount: r.KeyCount, NextKeyExpiry: r.NextKeyExpiry, Active: r.Active,
			LastChange: r.LastChange, Drifted: r.Drift != "", Portal: e.isPortalClient(r.ClientID), Privileged: privileged[r.ClientID]})
	}
	return pg, nil
}
