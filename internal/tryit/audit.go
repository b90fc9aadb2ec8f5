package tryit

import (
	"context"
	"slices"
	"strings"

	"portal/internal/audit"
	"portal/internal/clients"
)

// Finish ends the try: it is audited (once) and its tokens are forgotten. Steps already handed
// out keep theirs, in the caller's memory.
func (t *Try) Finish(ctx context.Context) error {
	t.svc.mu.Lock()
	delete(t.svc.open, t.ID)
	t.svc.mu.Unlock()
	return t.finish(ctx)
}

func (t *Try) finish(ctx context.Context) error {
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return nil
	}
	t.finished = true
	sources := slices.Clone(t.sources)
	from := t.audited
	t.mu.Unlock()
	steps := t.chain.forget()
	if from >= len(steps) {
		return nil
	}
	steps = steps[from:]
	ev := auditEvent(t.meta, t.env.Name, t.target, steps, sources)
	return t.svc.audit.Append(ctx, ev)
}

// forget drops the grant and tokens and returns the steps.
func (c *Chain) forget() []Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grant, c.mpToken, c.altinnToken, c.page, c.last = "", "", "", nil, nil
	return slices.Clone(c.steps)
}

// auditStep is one step in the audit trail: outcome and timing, never a secret.
type auditStep struct {
	Step       string   `json:"step"`
	OK         bool     `json:"ok"`
	Status     int      `json:"status,omitempty"`
	TotalMS    float64  `json:"total_ms"`
	UpstreamMS float64  `json:"upstream_ms,omitempty"`
	Findings   []string `json:"findings,omitempty"` // codes only
}

func auditEvent(m audit.Meta, env string, target clients.TryTarget, steps []Step, sources []string) audit.Event {
	outcome := audit.Success
	var scopes []string
	var list []auditStep
	for i, s := range steps {
		if !s.OK {
			outcome = audit.Failure
		}
		if s.Name == StepGrant && s.Response.Token != nil {
			for _, c := range s.Response.Token.Claims {
				if c.Name == "scope" {
					var sc string
					if jsonString(c.Value, &sc) {
						for _, x := range strings.Fields(sc) {
							if !slices.Contains(scopes, x) {
								scopes = append(scopes, x)
							}
						}
					}
				}
			}
		}
		if i >= maxAuditedSteps {
			continue
		}
		as := auditStep{Step: s.Name, OK: s.OK, Status: s.Status, TotalMS: ms(s.Total), UpstreamMS: ms(s.Upstream)}
		for _, f := range s.Findings {
			if f.Severity != SeverityInfo {
				as.Findings = append(as.Findings, f.Code)
			}
		}
		list = append(list, as)
	}
	details := map[string]any{"scopes": scopes, "steps": list, "grant_sources": sources}
	if len(steps) > maxAuditedSteps {
		details["steps_not_listed"] = len(steps) - maxAuditedSteps
	}
	ev := audit.New(m, ActionTry, outcome, details)
	ev.Env, ev.TeamID, ev.TargetType, ev.Target = env, target.TeamID, "integration", target.ClientID
	return ev
}
