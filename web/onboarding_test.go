package web_test

import (
	"net/http"
	"testing"
)

func TestOnboardingPage(t *testing.T) {
	a, c, _ := signedInTeamMember(t)
	p := c.get("/onboarding")
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	if done, _ := p.doc.Find(`[data-testid="onboarding-members"]`).Attr("data-done"); done != "true" {
		t.Error("a team with a member shows the members step undone")
	}
	if done, _ := p.doc.Find(`[data-testid="onboarding-integration"]`).Attr("data-done"); done != "false" {
		t.Error("a team without integrations shows one")
	}
	if href, _ := p.doc.Find(`[data-testid="onboarding-integration"] a`).Attr("href"); href != "/envs/tt02/integrations/new" {
		t.Errorf("the integration step links to %q", href)
	}
	// Someone on no team is told how to get on one.
	a.addUser("loner@example.no", "member")
	lc := a.client()
	lc.login("loner@example.no")
	if p := lc.get("/onboarding"); p.status != http.StatusNotFound {
		t.Errorf("no team: %d", p.status)
	}
}
