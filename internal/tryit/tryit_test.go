package tryit_test

// The try engine against the simulators over HTTP, with a real database: the whole chain with a
// kept key, the browser and pasted paths, and each failure the page must explain, provoked
// through the simulators' own state, clock and fault injection.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"portal/internal/altinn"
	"portal/internal/audit"
	"portal/internal/problem"
	"portal/internal/sim"
	"portal/internal/tryit"
)

func TestTryRunAllWithKeptKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.integration(t, "Reader", 0, "reader-1", true, readScope, writeScope)
	try := w.start(t, w.member, id)

	form := try.Form()
	if form.ClientID != id || len(form.Keys) != 1 || !form.Keys[0].Kept || !form.TestToggle ||
		len(form.Preselected) != 2 || form.Issuer != w.issuer["tt02"] || form.InstancesURL == "" {
		t.Fatalf("form %+v", form)
	}
	preview, err := try.Prepare(tryit.GrantRequest{Scopes: []string{readScope}, Lifetime: 60 * time.Second}, "reader-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(preview.Header), `"kid": "reader-1"`) || !strings.Contains(string(preview.Claims), w.issuer["tt02"]) ||
		len(preview.Findings) != 0 || strings.Count(preview.SigningInput, ".") != 1 {
		t.Fatalf("preview %s %s %q findings:\n%s", preview.Header, preview.Claims, preview.SigningInput, describe(preview.Findings))
	}

	steps := try.RunAll(ctx, tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope, writeScope}}, KID: "reader-1"},
		tryit.Plan{Exchange: true, Test: true, Instances: &altinn.InstanceQuery{AppID: appID, Size: 2}})
	names := []string{tryit.StepGrant, tryit.StepToken, tryit.StepExchange, tryit.StepInstances}
	if len(steps) != len(names) {
		t.Fatalf("%d steps, want %d: %+v", len(steps), len(names), steps)
	}
	var secrets []string
	for i, s := range steps {
		if s.Name != names[i] || !s.OK || s.Error != "" {
			t.Fatalf("step %d: %s ok=%v error %q\n%s", i, s.Name, s.OK, s.Error, describe(s.Findings))
		}
		if s.Total <= 0 || s.Overhead() < 0 || s.Overhead() > s.Total {
			t.Errorf("%s: total %s, overhead %s", s.Name, s.Total, s.Overhead())
		}
		if i == 0 {
			if s.Request != nil || s.Sign <= 0 || s.Secret() == "" || s.Response.Token == nil || s.Response.Token.Kind != tryit.KindGrant {
				t.Errorf("grant step %+v", s)
			}
			continue
		}
		if s.Request == nil || s.Status != http.StatusOK || !s.HasUpstream || s.Upstream <= 0 || len(s.Attempts) != 1 || s.Curl == "" {
			t.Errorf("%s: request %+v, status %d, upstream %v/%s, attempts %d, curl %q", s.Name, s.Request, s.Status,
				s.HasUpstream, s.Upstream, len(s.Attempts), s.Curl)
		}
		if s.Request != nil && s.Request.Header.Get("Authorization") != "" && s.Request.Header.Get("Authorization") != "Bearer ****" {
			t.Errorf("%s: authorization header shown as %q", s.Name, s.Request.Header.Get("Authorization"))
		}
	}
	grantStep, tokenStep, exchangeStep, listStep := steps[0], steps[1], steps[2], steps[3]
	secrets = append(secrets, grantStep.Secret(), tokenStep.Secret(), exchangeStep.Secret())
	if tokenStep.Response.Token == nil || tokenStep.Response.Token.Expires.IsZero() || !strings.Contains(tokenStep.Response.Body, tryit.PlaceholderMaskinporten) {
		t.Errorf("token response %+v", tokenStep.Response)
	}
	if !strings.Contains(tokenStep.Curl, "assertion="+tryit.PlaceholderGrant) || !strings.Contains(tokenStep.Request.Body, tryit.PlaceholderGrant) {
		t.Errorf("token curl %q, body %q", tokenStep.Curl, tokenStep.Request.Body)
	}
	if !strings.Contains(exchangeStep.Curl, "?test=true") || !strings.Contains(exchangeStep.Curl, tryit.PlaceholderMaskinporten) {
		t.Errorf("exchange curl %q", exchangeStep.Curl)
	}
	if len(exchangeStep.Findings) != 0 {
		t.Errorf("exchange findings:\n%s", describe(exchangeStep.Findings))
	}
	var org string
	for _, c := range exchangeStep.Response.Token.Claims {
		if c.Name == "urn:altinn:org" {
			_ = json.Unmarshal(c.Value, &org)
			if c.Meaning == "" {
				t.Error("urn:altinn:org has no meaning")
			}
		}
	}
	if org != "ttd" {
		t.Errorf("urn:altinn:org %q", org)
	}
	page := listStep.Response.Instances
	if page == nil || page.Count != 2 || page.Next == "" {
		t.Fatalf("first page %+v", page)
	}

	// Secrets are masked everywhere but in Secret and Revealed.
	for _, s := range steps {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if strings.Contains(string(b), sec) || strings.Contains(s.Curl, sec) {
				t.Fatalf("step %s shows a secret: %s", s.Name, b)
			}
		}
	}
	rev := tokenStep.Revealed()
	if !strings.Contains(rev.Curl, grantStep.Secret()) || !strings.Contains(rev.Response.Body, tokenStep.Secret()) ||
		rev.Response.Token.Value != tokenStep.Secret() {
		t.Errorf("revealed token step: curl %q", rev.Curl)
	}
	if rev := exchangeStep.Revealed(); !strings.Contains(rev.Curl, tokenStep.Secret()) {
		t.Errorf("revealed exchange curl %q", rev.Curl)
	}

	// Paging, details and a streamed download.
	next := try.NextInstances(ctx)
	if !next.OK || next.Response.Instances == nil || next.Response.Instances.Count == 0 {
		t.Fatalf("next page: %s\n%s", next.Error, describe(next.Findings))
	}
	var inst altinn.Instance
	for _, in := range append(page.Instances, next.Response.Instances.Instances...) {
		if len(in.Data) > 0 {
			inst = in
			break
		}
	}
	if inst.ID == "" {
		t.Fatal("no instance with data")
	}
	details := try.Instance(ctx, inst.ID)
	if !details.OK || details.Response.Instance == nil || details.Response.Instance.ID != inst.ID {
		t.Fatalf("details: %s", details.Error)
	}
	dlStep, dl := try.Download(ctx, inst.ID, inst.Data[0].ID)
	if !dlStep.OK || dl == nil || dlStep.Response.Download == nil {
		t.Fatalf("download: %s\n%s", dlStep.Error, describe(dlStep.Findings))
	}
	n, err := io.Copy(io.Discard, dl.Body)
	dl.Body.Close()
	if err != nil || n == 0 || (dl.ContentLength >= 0 && n != dl.ContentLength) {
		t.Errorf("download: %d bytes, %v, length %d", n, err, dl.ContentLength)
	}
	if !strings.Contains(dlStep.Curl, "-OJ") {
		t.Errorf("download curl %q", dlStep.Curl)
	}

	// The run was audited when it ended; finishing audits the steps taken after it, once,
	// without a secret.
	if err := try.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := try.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	evs := tryEvents(t, w, id)
	if len(evs) != 2 {
		t.Fatalf("%d try events, want the run's and the later steps'", len(evs))
	}
	later, ev := evs[0], evs[1]
	var l struct {
		Steps []struct {
			Step string `json:"step"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(later.Details, &l); err != nil || len(l.Steps) != 3 || l.Steps[0].Step != tryit.StepInstances {
		t.Errorf("later steps' event %s", later.Details)
	}
	noSecrets(t, later, secrets...)
	if ev.Outcome != audit.Success || ev.ActorID != w.member.UserID || ev.Env != "tt02" || ev.TeamID != w.team {
		t.Errorf("event %+v", ev)
	}
	var d struct {
		Scopes []string `json:"scopes"`
		Steps  []struct {
			Step    string  `json:"step"`
			OK      bool    `json:"ok"`
			TotalMS float64 `json:"total_ms"`
		} `json:"steps"`
		Sources []string `json:"grant_sources"`
	}
	if err := json.Unmarshal(ev.Details, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Steps) != 4 || len(d.Scopes) != 2 || d.Steps[1].Step != tryit.StepToken || !d.Steps[1].OK || len(d.Sources) != 1 {
		t.Errorf("event details %s", ev.Details)
	}
	noSecrets(t, ev, secrets...)
	if _, err := w.svc.Resume(ctx, w.member, try.ID); problem.KindOf(err) != problem.KindNotFound {
		t.Errorf("resume a finished try: %v", err)
	}
}

// tryEvents lists a client's try events, newest first.
func tryEvents(t *testing.T, w *world, id string) []audit.Event {
	t.Helper()
	evs, err := audit.NewLog(w.db, nil).ForTarget(t.Context(), "tt02", id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range evs {
		if ev.Action == tryit.ActionTry {
			out = append(out, ev)
		}
	}
	return out
}

func onlyTryEvent(t *testing.T, w *world, id string) audit.Event {
	t.Helper()
	evs, err := audit.NewLog(w.db, nil).ForTarget(t.Context(), "tt02", id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range evs {
		if ev.Action == tryit.ActionTry {
			out = append(out, ev)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d try events, want 1", len(out))
	}
	return out[0]
}

// noSecrets fails when an event holds any secret or any of its three JWS parts.
func noSecrets(t *testing.T, ev audit.Event, secrets ...string) {
	t.Helper()
	raw, _ := json.Marshal(ev)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, part := range append(strings.Split(s, "."), s) {
			if len(part) > 16 && strings.Contains(string(raw), part) {
				t.Fatalf("the audit event holds a token or grant part: %s", raw)
			}
		}
	}
}

func TestTryBrowserSignedGrantAndResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	// A key handed out once: the portal does not keep it, the person's browser signs.
	id := w.integration(t, "Browser", 1, "browser-1", false, readScope)
	try := w.start(t, w.member, id)
	if f := try.Form(); len(f.Keys) != 1 || f.Keys[0].Kept {
		t.Fatalf("form keys %+v", f.Keys)
	}
	if s := try.SignWithKeptKey(ctx, tryit.GrantRequest{Scopes: []string{readScope}}, "browser-1"); s.OK || !tryit.HasFinding(s.Findings, tryit.GrantKeyNotKept) {
		t.Fatalf("signing with a key the portal does not keep: %+v", s)
	}
	p, err := try.Prepare(tryit.GrantRequest{Scopes: []string{readScope}}, "browser-1")
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := w.svc.Resume(ctx, w.member, try.ID)
	if err != nil || resumed != try {
		t.Fatalf("resume: %v", err)
	}
	if _, err := w.svc.Resume(ctx, w.admin, try.ID); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("someone else resumed the try: %v", err)
	}
	g := resumed.UseGrant(p.SigningInput+"."+signInput(t, clientKey(t, 1), p.SigningInput), tryit.SourceBrowser)
	if !g.OK || len(g.Findings) != 0 {
		t.Fatalf("browser grant: %s\n%s", g.Error, describe(g.Findings))
	}
	tok := resumed.Token(ctx)
	if !tok.OK {
		t.Fatalf("token: %s\n%s", tok.Error, describe(tok.Findings))
	}
	// The same grant again: used before.
	again := resumed.Token(ctx)
	wantFindings(t, again, tryit.MPJTIReused)
	if err := w.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ev := onlyTryEvent(t, w, id)
	if ev.Outcome != audit.Failure || !strings.Contains(string(ev.Details), tryit.SourceBrowser) {
		t.Errorf("event %s %s", ev.Outcome, ev.Details)
	}
	noSecrets(t, ev, g.Secret(), tok.Secret())
}

func TestTryViewersAndOutsidersMayNotTry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.integration(t, "Guarded", 0, "guarded-1", true, readScope)
	_, err := w.svc.Start(ctx, w.viewer, meta(w.viewer), "tt02", id)
	wantKind(t, err, problem.KindForbidden)
	_, err = w.svc.Start(ctx, w.outsider, meta(w.outsider), "tt02", id)
	wantKind(t, err, problem.KindNotFound)
	_, err = w.svc.Start(ctx, w.member, meta(w.member), "nowhere", id)
	wantKind(t, err, problem.KindNotFound)
	if _, err := w.svc.Start(ctx, w.admin, meta(w.admin), "tt02", id); err != nil {
		t.Fatalf("admin: %v", err)
	}
}

func TestTryUnknownKid(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	id := w.integration(t, "Kids", 0, "kids-1", true, readScope)
	try := w.start(t, w.member, id)
	g := try.UseGrant(grant(t, 2, "no-such-kid", w.claims(id, readScope, nil)), tryit.SourcePasted)
	if !g.OK || !tryit.HasFinding(g.Findings, tryit.GrantKidUnknown) {
		t.Fatalf("pasted grant: %+v", g)
	}
	s := try.Token(t.Context())
	wantFindings(t, s, tryit.MPUnknownKid, tryit.GrantKidUnknown)
	if s.Status != http.StatusBadRequest || !strings.Contains(s.Findings[0].Cause, "Unknown key identifier") {
		t.Errorf("status %d, first finding %+v", s.Status, s.Findings[0])
	}
	if !strings.Contains(s.Findings[1].Cause, "kids-1") {
		t.Errorf("the local check does not name the client's keys: %+v", s.Findings[1])
	}
}

func TestTryScopeNotOnClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.integration(t, "Narrow", 0, "narrow-1", true, readScope)
	try := w.start(t, w.member, id)

	// The portal signs only what the integration may have.
	s := try.SignWithKeptKey(ctx, tryit.GrantRequest{Scopes: []string{readScope, writeScope}}, "narrow-1")
	if s.OK || s.Request != nil || !tryit.HasFinding(s.Findings, tryit.GrantScopeNotOnClient) {
		t.Fatalf("kept-key grant with a foreign scope: %+v", s)
	}
	if _, err := try.Prepare(tryit.GrantRequest{Scopes: []string{writeScope}}, "narrow-1"); problem.KindOf(err) != problem.KindInvalid {
		t.Fatalf("prepare with a foreign scope: %v", err)
	}
	// A grant signed elsewhere goes to Maskinporten, which refuses it with MP-200.
	g := try.UseGrant(grant(t, 0, "narrow-1", w.claims(id, readScope+" "+writeScope, nil)), tryit.SourcePasted)
	if !tryit.HasFinding(g.Findings, tryit.GrantScopeNotOnClient) {
		t.Fatalf("grant findings:\n%s", describe(g.Findings))
	}
	tok := try.Token(ctx)
	wantFindings(t, tok, tryit.MPScopeNotOnClient, tryit.GrantScopeNotOnClient)
	if tok.Findings[0].Ref == "" || !strings.Contains(tok.Findings[0].Ref, "MP-200") {
		t.Errorf("ref %q", tok.Findings[0].Ref)
	}
}

func TestTryExpiredKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	id := w.integration(t, "Old", 0, "old-1", true, readScope)
	// A year and a day later, everywhere: Digdir kept the key a year.
	if _, err := w.sim.ShiftClock("tt02", 366*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	try := w.start(t, w.member, id)
	steps := try.RunAll(t.Context(), tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope}}, KID: "old-1"}, tryit.Plan{Exchange: true})
	if len(steps) != 2 || !steps[0].OK {
		t.Fatalf("steps %+v", steps)
	}
	if !tryit.HasFinding(steps[0].Findings, tryit.GrantKeyExpired) {
		t.Errorf("the grant step does not warn of the expired key:\n%s", describe(steps[0].Findings))
	}
	wantFindings(t, steps[1], tryit.MPKeyExpired, tryit.GrantKeyExpired)
	if !strings.Contains(steps[1].Findings[0].Ref, "MP-121") {
		t.Errorf("ref %q", steps[1].Findings[0].Ref)
	}
}

func TestTryWrongAudience(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	id := w.integration(t, "Aud", 0, "aud-1", true, readScope)
	for _, tc := range []struct {
		aud  string
		code string
	}{
		{w.issuer["prod"], tryit.GrantAudOtherEnv},
		{w.mp["tt02"].TokenEndpoint(), tryit.GrantAudTokenURL},
		{strings.TrimSuffix(w.issuer["tt02"], "/"), tryit.GrantAudSlash},
	} {
		try := w.start(t, w.member, id)
		try.UseGrant(grant(t, 0, "aud-1", w.claims(id, readScope, func(c map[string]any) { c["aud"] = tc.aud })), tryit.SourcePasted)
		s := try.Token(t.Context())
		wantFindings(t, s, tryit.MPAudience, tc.code)
	}
}

func TestTryGrantLivesTooLong(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	id := w.integration(t, "Long", 0, "long-1", true, readScope)
	try := w.start(t, w.member, id)
	try.UseGrant(grant(t, 0, "long-1", w.claims(id, readScope, func(c map[string]any) { c["exp"] = c["iat"].(int64) + 300 })), tryit.SourcePasted)
	s := try.Token(t.Context())
	wantFindings(t, s, tryit.MPLifetime, tryit.GrantLifetime)
	if _, err := try.Prepare(tryit.GrantRequest{Scopes: []string{readScope}, Lifetime: 300 * time.Second}, "long-1"); problem.KindOf(err) != problem.KindInvalid {
		t.Errorf("prepare with a 300 s lifetime: %v", err)
	}
}

func TestTryAltinnTokenWithoutServiceOwnerScope(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	id := w.integration(t, "Broker", 0, "broker-1", true, brokerRead)
	try := w.start(t, w.member, id)
	steps := try.RunAll(t.Context(), tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{brokerRead}}, KID: "broker-1"},
		tryit.Plan{Exchange: true, Instances: &altinn.InstanceQuery{AppID: appID}})
	if len(steps) != 4 || !steps[1].OK || !steps[2].OK {
		t.Fatalf("steps: %d", len(steps))
	}
	if !tryit.HasFinding(steps[1].Findings, tryit.TokenNoServiceOwn) {
		t.Errorf("token findings:\n%s", describe(steps[1].Findings))
	}
	if !tryit.HasFinding(steps[2].Findings, tryit.ExchangeNoOrg) || !strings.Contains(steps[2].Findings[0].Cause, brokerRead) {
		t.Errorf("exchange findings:\n%s", describe(steps[2].Findings))
	}
	wantFindings(t, steps[3], tryit.StorageNoOrgClaim)
	if steps[3].Status != http.StatusBadRequest {
		t.Errorf("status %d", steps[3].Status)
	}
}

func TestTryExchangeRefusesAnExpiredToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.integration(t, "Late", 0, "late-1", true, readScope)
	try := w.start(t, w.member, id)
	if s := try.SignWithKeptKey(ctx, tryit.GrantRequest{Scopes: []string{readScope}}, "late-1"); !s.OK {
		t.Fatal(s.Error)
	}
	if s := try.Token(ctx); !s.OK {
		t.Fatal(s.Error)
	}
	if _, err := w.sim.ShiftClock("tt02", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	s := try.Exchange(ctx, false)
	wantFindings(t, s, tryit.ExchangeRefused, tryit.ExchangeExpired)
	if s.Status != http.StatusUnauthorized {
		t.Errorf("status %d", s.Status)
	}
	if s := try.Exchange(ctx, false); s.OK {
		t.Error("exchanged an expired token")
	}
}

func TestTryStorageForbidden(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()

	// Write scope only: a service owner, but without the read scope.
	id := w.integration(t, "Writer", 0, "writer-1", true, writeScope)
	try := w.start(t, w.member, id)
	steps := try.RunAll(ctx, tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{writeScope}}, KID: "writer-1"},
		tryit.Plan{Instances: &altinn.InstanceQuery{AppID: appID}})
	if len(steps) != 4 {
		t.Fatalf("%d steps", len(steps))
	}
	wantFindings(t, steps[3], tryit.StorageNoReadScope)
	if steps[3].Status != http.StatusForbidden {
		t.Errorf("status %d", steps[3].Status)
	}

	// Another organisation's app.
	id2 := w.integration(t, "Reader", 1, "reader-1", true, readScope)
	try2 := w.start(t, w.member, id2)
	steps = try2.RunAll(ctx, tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope}}, KID: "reader-1"},
		tryit.Plan{Instances: &altinn.InstanceQuery{AppID: "skd/selvangivelse"}})
	wantFindings(t, steps[len(steps)-1], tryit.StorageOtherOrg)
	// Neither appId nor org.
	s := try2.Instances(ctx, altinn.InstanceQuery{})
	wantFindings(t, s, tryit.StorageOrgOrApp)
	// A malformed instance id is refused before any call.
	s = try2.Instance(ctx, "not-an-id")
	if s.OK || s.Request != nil || s.Error == "" {
		t.Errorf("malformed id: %+v", s)
	}
}

func TestTryFaultsGiveAClearMessageInTime(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{timeout: 500 * time.Millisecond})
	ctx := t.Context()
	id := w.integration(t, "Faulty", 0, "faulty-1", true, readScope)

	// Maskinporten holds the request (a held POST ends when TimeoutAfter does, since the
	// server only notices a gone client once it reads the body): the token step gives up at
	// the client's timeout, long before.
	if err := w.sim.SetFaults("tt02", sim.UpstreamMaskinporten, sim.Faults{TimeoutRate: 1, TimeoutAfter: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	try := w.start(t, w.member, id)
	start := time.Now()
	steps := try.RunAll(ctx, tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope}}, KID: "faulty-1"}, tryit.Plan{Exchange: true})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the run took %s", took)
	}
	if len(steps) != 2 {
		t.Fatalf("%d steps", len(steps))
	}
	wantFindings(t, steps[1], tryit.UpstreamTimeout)
	if !strings.Contains(steps[1].Error, "did not answer within") {
		t.Errorf("error %q", steps[1].Error)
	}

	// Maskinporten fails with 503: the token request is not retried (its jti is single-use).
	if err := w.sim.SetFaults("tt02", sim.UpstreamMaskinporten, sim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	steps = try.RunAll(ctx, tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope}}, KID: "faulty-1"}, tryit.Plan{})
	wantFindings(t, steps[1], tryit.MPServerError)
	if len(steps[1].Attempts) != 1 || steps[1].Status != http.StatusServiceUnavailable {
		t.Errorf("attempts %d, status %d", len(steps[1].Attempts), steps[1].Status)
	}

	// The platform fails with 502: the exchange is retried, then explained.
	if err := w.sim.SetFaults("tt02", sim.UpstreamMaskinporten, sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.SetFaults("tt02", sim.UpstreamPlatform, sim.Faults{ErrorRate: 1, ErrorStatus: 502}); err != nil {
		t.Fatal(err)
	}
	steps = try.RunAll(ctx, tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope}}, KID: "faulty-1"}, tryit.Plan{Exchange: true})
	if len(steps) != 3 {
		t.Fatalf("%d steps", len(steps))
	}
	wantFindings(t, steps[2], tryit.UpstreamServerError)
	if len(steps[2].Attempts) != 3 {
		t.Errorf("%d attempts, want 3", len(steps[2].Attempts))
	}

	// The platform resets connections.
	if err := w.sim.SetFaults("tt02", sim.UpstreamPlatform, sim.Faults{ResetRate: 1}); err != nil {
		t.Fatal(err)
	}
	steps = try.RunAll(ctx, tryit.RunGrant{Request: tryit.GrantRequest{Scopes: []string{readScope}}, KID: "faulty-1"}, tryit.Plan{Exchange: true})
	wantFindings(t, steps[2], tryit.UpstreamUnreachable)

	// A whole run is bounded too.
	if err := w.sim.SetFaults("tt02", sim.UpstreamPlatform, sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	short := w.envs["tt02"]
	short.RunTimeout = time.Nanosecond
	ch := tryit.NewChain(short, nil, w.now)
	steps = ch.RunAll(ctx, tryit.Plan{}, func() tryit.Step {
		return ch.UseGrant(grant(t, 0, "faulty-1", w.claims(id, readScope, nil)))
	})
	wantFindings(t, steps[len(steps)-1], tryit.UpstreamTimeout)
}

func TestTryStepsInTheWrongOrderAreRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.integration(t, "Order", 0, "order-1", true, readScope)
	try := w.start(t, w.member, id)
	for _, s := range []tryit.Step{try.Token(ctx), try.Exchange(ctx, false), try.Instances(ctx, altinn.InstanceQuery{AppID: appID}), try.NextInstances(ctx)} {
		if s.OK || s.Error == "" || s.Request != nil {
			t.Errorf("%s before its time: %+v", s.Name, s)
		}
	}
	if s := try.UseGrant("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", tryit.SourcePasted); s.OK || !strings.Contains(s.Error, "private key") {
		t.Errorf("a pasted private key: %+v", s)
	}
	if s := try.UseGrant("not a grant", tryit.SourcePasted); s.OK || !tryit.HasFinding(s.Findings, tryit.GrantMalformed) {
		t.Errorf("a pasted non-grant: %+v", s)
	}
	if err := try.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	ev := onlyTryEvent(t, w, id)
	if strings.Contains(string(ev.Details), "MIIE") {
		t.Errorf("the event holds pasted text: %s", ev.Details)
	}
}

func TestTryIdleTriesAreAuditedAndForgotten(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.integration(t, "Idle", 0, "idle-1", true, readScope)
	try := w.start(t, w.member, id)
	if s := try.SignWithKeptKey(ctx, tryit.GrantRequest{Scopes: []string{readScope}}, "idle-1"); !s.OK {
		t.Fatal(s.Error)
	}
	if _, err := w.sim.ShiftClock("tt02", time.Hour); err != nil {
		t.Fatal(err)
	}
	// Starting another try sweeps the idle one.
	w.start(t, w.member, id)
	if _, err := w.svc.Resume(ctx, w.member, try.ID); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("resumed an idle try: %v", err)
	}
	ev := onlyTryEvent(t, w, id)
	if ev.Outcome != audit.Success {
		t.Errorf("outcome %s", ev.Outcome)
	}
}

func TestTryServiceExplainKnowsTheIntegration(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	id := w.integration(t, "Explained", 0, "explained-1", true, readScope)
	g := grant(t, 0, "other-kid", w.claims(id, readScope+" "+writeScope, nil))
	x, err := w.svc.Explain(ctx, w.member, "tt02", "", g)
	if err != nil {
		t.Fatal(err)
	}
	if x.Kind != tryit.ExplainedGrant || x.ClientID != id || !tryit.HasFinding(x.Findings, tryit.GrantKidUnknown) ||
		!tryit.HasFinding(x.Findings, tryit.GrantScopeNotOnClient) {
		t.Fatalf("explanation %+v\n%s", x, describe(x.Findings))
	}
	// Someone who may not try it gets the checks that need no integration, and no hint of it.
	x, err = w.svc.Explain(ctx, w.outsider, "tt02", "", g)
	if err != nil || tryit.HasFinding(x.Findings, tryit.GrantKidUnknown) {
		t.Fatalf("outsider: %v\n%s", err, describe(x.Findings))
	}
	_, err = w.svc.Explain(ctx, w.member, "tt02", "", "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----")
	wantKind(t, err, problem.KindInvalid)
	if strings.Contains(err.Error(), "abc") {
		t.Errorf("the refusal quotes the key: %v", err)
	}
}

func TestTryChainWithoutTarget(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	id := w.integration(t, "Script", 0, "script-1", false, readScope)
	ch := tryit.NewChain(w.envs["tt02"], nil, w.now)
	steps := ch.RunAll(ctx, tryit.Plan{Instances: &altinn.InstanceQuery{Org: "ttd", Size: 1}}, func() tryit.Step {
		return ch.Sign(tryit.GrantRequest{Scopes: []string{readScope}}, id, signerFor(t, 0, "script-1"))
	})
	if len(steps) != 4 || !steps[3].OK {
		t.Fatalf("steps %d, last %+v", len(steps), steps[len(steps)-1])
	}
	if len(ch.Steps()) != 4 {
		t.Errorf("recorded %d steps", len(ch.Steps()))
	}
}
