package clients

import (
	"context"
	"fmt"
	"strings"
	"time"

	"portal/internal/auth"
	"portal/internal/problem"
	"portal/internal/store"
)

// maySync reports whether p may start a sync by hand: administrators, and owners and members
// of a team. A sync lists every client and reads every key set from Digdir's shared API.
func maySync(p *auth.Principal) bool {
	if p.IsAdmin() {
		return true
	}
	for _, t := range p.Teams {
		if t.Role == auth.TeamOwner || t.Role == auth.TeamMember {
			return true
		}
	}
	return false
}

// SyncReport is what "Sync now" tells the person who pressed it: organisation-wide figures for
// administrators, their teams' own for everyone else.
type SyncReport struct {
	OrgWide bool
	Took    time.Duration
	// Integrations counts the integrations upstream (administrators) or of the person's teams.
	Integrations int
	Unowned      int // new without an owning team (administrators only)
	Drifted      int // changed outside the portal: found by this sync (administrators) or flagged on the teams' integrations
	Privileged   int // new privileged-scope findings (administrators only)
}

// SyncNow is the "Sync now" button: a sync of env by hand, at most one per MinSyncInterval per
// environment whoever asks; a press within it is refused with when the last sync ran.
func (s *Service) SyncNow(ctx context.Context, p *auth.Principal, env string) (SyncReport, error) {
	e, err := s.env(env)
	if err != nil {
		return SyncReport{}, err
	}
	if !maySync(p) {
		return SyncReport{}, problem.New(problem.KindForbidden, "Syncing with Digdir by hand needs an owner or member role in a team. "+
			"The portal syncs by itself every few minutes and when the list is older than a minute.")
	}
	if _, err := e.upstream(); err != nil {
		return SyncReport{}, err
	}
	now := s.now()
	e.syncMu.Lock()
	last := e.lastAsked
	if !last.IsZero() && now.Sub(last) < s.opts.MinSyncInterval {
		e.syncMu.Unlock()
		return SyncReport{}, s.tooSoon(ctx, e, last, now)
	}
	e.lastAsked = now
	e.syncMu.Unlock()

	res, err := s.Sync(ctx, env)
	if err != nil {
		return SyncReport{}, err
	}
	if p.IsAdmin() {
		return SyncReport{OrgWide: true, Took: res.Took, Integrations: res.Clients, Unowned: res.Unowned, Drifted: res.Drifted,
			Privileged: res.Privileged}, nil
	}
	c, err := s.Counts(ctx, p, env)
	if err != nil {
		return SyncReport{}, err
	}
	return SyncReport{Took: res.Took, Integrations: c.Integrations, Drifted: c.Drifted}, nil
}

func (s *Service) tooSoon(ctx context.Context, e *envState, asked, now time.Time) error {
	again := asked.Add(s.opts.MinSyncInterval)
	msg := fmt.Sprintf("Someone asked for a sync of %s %s ago", e.label(), wholeSeconds(now.Sub(asked)))
	if info, err := s.syncInfo(ctx, e); err == nil {
		switch {
		case info.Running:
			msg += "; it is still running"
		case !info.Never:
			msg += "; the last sync ran at " + info.FinishedAt.UTC().Format("15:04:05 UTC")
		}
	}
	return problem.New(problem.KindThrottled, msg+fmt.Sprintf(". Syncs by hand are at most one per %s per environment: "+
		"the list shows the result; try again in %s if you need another.", wholeSeconds(s.opts.MinSyncInterval), wholeSeconds(again.Sub(now))))
}

// Counts are figures about an environment's integrations as a person may see them.
type Counts struct {
	OrgWide      bool // the whole organisation's (administrators); otherwise the person's teams'
	Integrations int  // active integrations
	Drifted      int  // of those, changed outside the portal
}

// Counts returns the active integrations of env and how many were changed outside the portal:
// the organisation's for administrators, the person's teams' for everyone else.
func (s *Service) Counts(ctx context.Context, p *auth.Principal, env string) (Counts, error) {
	e, err := s.env(env)
	if err != nil {
		return Counts{}, err
	}
	active := true
	q := store.IntegrationQuery{Env: e.Name, Active: &active, Limit: 1}
	c := Counts{OrgWide: p.IsAdmin()}
	if !p.IsAdmin() {
		q.VisibleTeams = []int64{}
		for _, t := range p.Teams {
			q.VisibleTeams = append(q.VisibleTeams, t.TeamID)
		}
	}
	if _, c.Integrations, err = s.db.ListIntegrations(ctx, q); err != nil {
		return Counts{}, err
	}
	q.Drifted = true
	if _, c.Drifted, err = s.db.ListIntegrations(ctx, q); err != nil {
		return Counts{}, err
	}
	return c, nil
}

// withoutCounts is a sync's message without the organisation-wide number of integrations it
// starts with, for people who see only their teams' integrations.
func withoutCounts(info SyncInfo) string {
	msg := strings.TrimPrefix(info.Message, countOf(info.Clients, "integration", "integrations"))
	msg = strings.TrimPrefix(msg, "; ")
	if msg == "" && info.OK {
		return "synced"
	}
	return msg
}
