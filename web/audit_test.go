package web_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/audit"
	"portal/internal/clients"
)

func TestAuditView(t *testing.T) {
	a := newSimApp(t)
	ctx := t.Context()
	a.addUser("admin@example.no", "admin")
	adminP := adminPrincipal(t, a)
	teamA, _ := a.auth.CreateTeam(ctx, adminP, "Team A", metaFor())
	teamB, _ := a.auth.CreateTeam(ctx, adminP, "Team B", metaFor())
	a.addUser("owner@example.no", "member")
	if err := a.auth.PutMember(ctx, adminP, teamA.ID, "owner@example.no", "owner", metaFor()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name string
		team int64
	}{{"Mine", teamA.ID}, {"Theirs", teamB.ID}} {
		if _, err := a.clients.Create(ctx, adminP, audit.Meta{ActorID: adminP.UserID, Actor: "admin@example.no"}, "tt02",
			clients.Draft{Name: d.name, Description: "x", TeamID: d.team, Key: clients.NewKey()}); err != nil {
			t.Fatal(err)
		}
	}

	// The admin sees every event, with the chain verified and links to the integrations.
	ac := a.client()
	ac.login("admin@example.no")
	p := ac.get("/audit?action=integration.create")
	if p.status != http.StatusOK || !strings.Contains(text(p, `[data-testid="chain-state"]`), "verifies") {
		t.Fatalf("audit page: %d %s", p.status, text(p, `[data-testid="chain-state"]`))
	}
	if n := p.doc.Find(`[data-testid="audit-row"]`).Length(); n != 2 {
		t.Fatalf("admin sees %d create events, want 2", n)
	}
	if n := p.doc.Find(`[data-testid="audit-row"] a[href^="/envs/tt02/integrations/"]`).Length(); n != 2 {
		t.Errorf("%d links to integrations", n)
	}
	// Words a person reads and the integration's name, with the code and client id beside them.
	var names []string
	p.doc.Find(`[data-testid="audit-row"]`).Each(func(_ int, r *goquery.Selection) {
		if got := strings.TrimSpace(r.Find(`[data-testid="audit-action"]`).Text()); got != "Created an integration" {
			t.Errorf("action shown as %q", got)
		}
		if got := strings.TrimSpace(r.Find(`[data-testid="audit-action-code"]`).Text()); got != "integration.create" {
			t.Errorf("action code beside the words: %q", got)
		}
		names = append(names, strings.TrimSpace(r.Find(`[data-testid="audit-target-name"]`).Text()))
		if r.Find(`[data-testid="audit-target-id"]`).Text() == "" {
			t.Error("no client id beside the name")
		}
	})
	if strings.Join(names, ",") != "Theirs,Mine" {
		t.Errorf("integration names shown: %q", names)
	}
	if p := ac.get("/audit?from=yesterday"); p.status != http.StatusUnprocessableEntity || text(p, `[data-testid="from-error"]`) == "" {
		t.Errorf("bad date: %d", p.status)
	}

	// A team owner sees their team's events only.
	oc := a.client()
	oc.login("owner@example.no")
	p = oc.get("/audit?action=integration.")
	if p.status != http.StatusOK {
		t.Fatalf("owner: %d", p.status)
	}
	rows := text(p, `[data-testid="audit-events"]`)
	if n := p.doc.Find(`[data-testid="audit-row"]`).Length(); n != 1 || !strings.Contains(rows, "integration.create") {
		t.Fatalf("owner sees %d events: %s", n, rows)
	}

	// Exports stream the filter and are audited.
	resp, err := ac.hc.Get(ac.base + "/audit/export?format=csv&action=integration.create")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || len(recs) != 3 || recs[0][0] != "id" || !strings.Contains(resp.Header.Get("Content-Disposition"), ".csv") {
		t.Fatalf("csv export: %v %d records", err, len(recs))
	}
	resp, err = oc.hc.Get(oc.base + "/audit/export?format=jsonl")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var lines int
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("jsonl line: %v", err)
		}
		if ev["team_id"] != float64(teamA.ID) {
			t.Fatalf("the owner's export holds another team's event: %v", ev)
		}
		lines++
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if lines == 0 {
		t.Fatal("empty owner export")
	}
	p = ac.get("/audit?action=audit.export")
	if n := p.doc.Find(`[data-testid="audit-row"]`).Length(); n != 2 {
		t.Fatalf("%d export events, want 2", n)
	}
}
