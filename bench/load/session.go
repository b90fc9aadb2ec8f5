package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"portal/bench/benchutil"
)

// Route groups as the report names them.
const (
	rDashboard    = "dashboard /"
	rList         = "list integrations"
	rSearch       = "search (htmx partial)"
	rFilter       = "filter (htmx partial)"
	rIntegration  = "open integration"
	rKeys         = "keys page"
	rAudit        = "audit, filtered"
	rTryPage      = "try-it page"
	rTryGrant     = "try-it grant (kept key)"
	rTryToken     = "try-it token"
	rTryExchange  = "try-it exchange"
	rTryInstances = "try-it instances"
	rLogin        = "sign in"
	rHealthz      = "baseline /healthz"
	rStatic       = "baseline static asset"
	rToken        = "sim token endpoint"
)

// session is one signed-in person browsing with a cookie jar of their own.
type session struct {
	base  string
	hc    *http.Client
	rec   *benchutil.Recorder
	email string
	admin bool
	team  int // 0-based; owners only
	rnd   *rand.Rand
	s     *seeded
	o     options
	csrf  string
}

func newSession(base string, tr http.RoundTripper, rec *benchutil.Recorder, s *seeded, o options, email string, admin bool, team int, seed uint64) *session {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: tr, Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &session{base: base, hc: hc, rec: rec, email: email, admin: admin, team: team, s: s, o: o,
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// do sends req, reads the whole answer and records it under name; want is the expected status.
// A check, when given, also judges the body.
func (ss *session) do(ctx context.Context, name string, req *http.Request, want int, check func(string) error) (string, error) {
	req = req.WithContext(ctx)
	start := time.Now()
	resp, err := ss.hc.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	d := time.Since(start)
	if ctx.Err() != nil {
		return "", ctx.Err() // cut short by the end of the phase: not a sample
	}
	failure := ""
	switch {
	case err != nil:
		failure = "transport: " + err.Error()
	case resp.StatusCode != want:
		failure = fmt.Sprintf("%s %s: %d (want %d)", req.Method, req.URL.RequestURI(), resp.StatusCode, want)
	case check != nil:
		if cerr := check(string(body)); cerr != nil {
			failure = req.Method + " " + req.URL.Path + ": " + cerr.Error()
		}
	}
	ss.rec.Add(name, start, d, failure)
	if failure != "" {
		return string(body), errors.New(failure)
	}
	return string(body), nil
}

func (ss *session) get(ctx context.Context, name, path string, htmx bool) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, ss.base+path, nil)
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	return ss.do(ctx, name, req, http.StatusOK, nil)
}

func (ss *session) post(ctx context.Context, name, path string, form url.Values, want int, check func(string) error) (string, error) {
	form.Set("_csrf", ss.csrf)
	req, _ := http.NewRequest(http.MethodPost, ss.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return ss.do(ctx, name, req, want, check)
}

// csrfField finds a page's anti-forgery token, which is bound to the session (or, before
// sign-in, to a pre-session cookie): it comes from a form, never from a cookie.
var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func pageToken(body string) string {
	if m := csrfField.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// login signs in with the sign-in form's token, then takes the session's token from the
// dashboard: the one from before sign-in no longer works after it.
func (ss *session) login(ctx context.Context) error {
	req, _ := http.NewRequest(http.MethodGet, ss.base+"/login", nil)
	body, err := ss.do(ctx, rLogin, req, http.StatusOK, nil)
	if err != nil {
		return err
	}
	if ss.csrf = pageToken(body); ss.csrf == "" {
		return errors.New("no anti-forgery token on the sign-in page")
	}
	if _, err := ss.post(ctx, rLogin, "/login", url.Values{"email": {ss.email}, "password": {password}}, http.StatusSeeOther, nil); err != nil {
		return err
	}
	req, _ = http.NewRequest(http.MethodGet, ss.base+"/", nil)
	body, err = ss.do(ctx, rDashboard, req, http.StatusOK, nil)
	if err != nil {
		return err
	}
	if ss.csrf = pageToken(body); ss.csrf == "" {
		return errors.New("no anti-forgery token on the dashboard after sign-in")
	}
	return nil
}

// pick returns an integration this person may see (admins: any; owners: their team's),
// optionally only tt02 ones that can run the try-it chain.
func (ss *session) pick(tryable bool) seededClient {
	n := len(ss.s.clients)
	for {
		var i int
		if ss.admin && !tryable {
			i = ss.rnd.IntN(n)
		} else {
			// Integration i belongs to team i % teams.
			i = ss.team + ss.o.teams*ss.rnd.IntN(n/ss.o.teams)
			if tryable {
				i = ss.team + ss.o.teams*ss.rnd.IntN(n/2/ss.o.teams)
			}
		}
		c := ss.s.clients[i]
		if !tryable || (c.env == "tt02" && c.serviceOwner) {
			return c
		}
	}
}

func (ss *session) env() string {
	if ss.rnd.IntN(3) == 0 {
		return "prod"
	}
	return "tt02"
}

type action struct {
	weight int
	run    func(ss *session, ctx context.Context) error
}

var adminMix = []action{
	{5, (*session).dashboard}, {20, (*session).list}, {20, (*session).search}, {10, (*session).filter},
	{20, (*session).integration}, {10, (*session).keys}, {15, (*session).audit},
}

var ownerMix = []action{
	{5, (*session).dashboard}, {15, (*session).list}, {15, (*session).search}, {10, (*session).filter},
	{20, (*session).integration}, {10, (*session).keys}, {5, (*session).audit}, {20, (*session).tryChain},
}

// run browses until ctx ends, one action after another (a closed loop), pausing think between.
func (ss *session) run(ctx context.Context) {
	mix := ownerMix
	if ss.admin {
		mix = adminMix
	}
	total := 0
	for _, a := range mix {
		total += a.weight
	}
	for ctx.Err() == nil {
		r := ss.rnd.IntN(total)
		for _, a := range mix {
			if r -= a.weight; r < 0 {
				_ = a.run(ss, ctx)
				break
			}
		}
		if ss.o.think > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(ss.o.think):
			}
		}
	}
}

func (ss *session) dashboard(ctx context.Context) error {
	_, err := ss.get(ctx, rDashboard, "/", false)
	return err
}

var sorts = []string{"name", "-changed", "expiry", "team", "client_id"}

func (ss *session) list(ctx context.Context) error {
	visible := len(ss.s.clients) / 2
	if !ss.admin {
		visible /= ss.o.teams
	}
	q := url.Values{"sort": {sorts[ss.rnd.IntN(len(sorts))]}}
	if pages := visible / 50; pages > 1 {
		q.Set("page", strconv.Itoa(1+ss.rnd.IntN(pages)))
	}
	_, err := ss.get(ctx, rList, "/envs/"+ss.env()+"/integrations?"+q.Encode(), false)
	return err
}

func (ss *session) search(ctx context.Context) error {
	var term string
	switch ss.rnd.IntN(4) {
	case 0:
		term = words[ss.rnd.IntN(len(words))]
	case 1:
		term = words[ss.rnd.IntN(len(words))] + " " + words[ss.rnd.IntN(len(words))]
	case 2:
		term = strconv.Itoa(ss.rnd.IntN(len(ss.s.clients)))
	default:
		term = "altinn:broker"
	}
	_, err := ss.get(ctx, rSearch, "/envs/"+ss.env()+"/integrations?"+url.Values{"q": {term}}.Encode(), true)
	return err
}

func (ss *session) filter(ctx context.Context) error {
	team := ss.team
	if ss.admin {
		team = ss.rnd.IntN(ss.o.teams)
	}
	q := url.Values{"team": {strconv.FormatInt(ss.s.teamIDs[team], 10)}}
	switch ss.rnd.IntN(3) {
	case 0:
		q.Set("expiring", "1")
		q.Set("sort", "expiry")
	case 1:
		q.Set("status", "all")
		q.Set("scope", "altinn:serviceowner")
	default:
		q.Set("q", words[ss.rnd.IntN(len(words))])
	}
	_, err := ss.get(ctx, rFilter, "/envs/"+ss.env()+"/integrations?"+q.Encode(), true)
	return err
}

func integrationPath(c seededClient) string {
	return "/envs/" + c.env + "/integrations/" + url.PathEscape(c.id)
}

func (ss *session) integration(ctx context.Context) error {
	_, err := ss.get(ctx, rIntegration, integrationPath(ss.pick(false)), false)
	return err
}

func (ss *session) keys(ctx context.Context) error {
	_, err := ss.get(ctx, rKeys, integrationPath(ss.pick(false))+"/keys", false)
	return err
}

func (ss *session) audit(ctx context.Context) error {
	q := url.Values{}
	team := ss.team
	if ss.admin {
		team = ss.rnd.IntN(ss.o.teams)
	}
	switch ss.rnd.IntN(3) {
	case 0:
		q.Set("team", strconv.FormatInt(ss.s.teamIDs[team], 10))
		q.Set("action", "integration.")
	case 1:
		q.Set("team", strconv.FormatInt(ss.s.teamIDs[team], 10))
		q.Set("env", "prod")
	default:
		q.Set("team", strconv.FormatInt(ss.s.teamIDs[team], 10))
		q.Set("action", "key.")
		q.Set("env", "tt02")
	}
	if ss.admin && ss.rnd.IntN(2) == 0 {
		q.Del("team")
		q.Set("actor", ss.s.owners[ss.rnd.IntN(len(ss.s.owners))])
	}
	_, err := ss.get(ctx, rAudit, "/audit?"+q.Encode(), false)
	return err
}

var (
	tryIDPattern = regexp.MustCompile(`name="try" value="([^"]+)"`)
)

func stepOK(body, step string) error {
	if strings.Contains(body, `data-testid="result-`+step+`" data-ok="true"`) {
		return nil
	}
	i := strings.Index(body, `data-testid="result-`+step+`"`)
	if i < 0 {
		return fmt.Errorf("step %s: no result on the page", step)
	}
	return fmt.Errorf("step %s failed", step)
}

// tryChain runs the try-it chain step by step with a kept key: the page (which starts a try),
// the grant signed by the portal, the Maskinporten token, the Altinn exchange and a page of
// instances from Storage.
func (ss *session) tryChain(ctx context.Context) error {
	c := ss.pick(true)
	path := integrationPath(c) + "/try"
	var try string
	req, _ := http.NewRequest(http.MethodGet, ss.base+path, nil)
	_, err := ss.do(ctx, rTryPage, req, http.StatusOK, func(body string) error {
		m := tryIDPattern.FindStringSubmatch(body)
		if m == nil {
			return errors.New("no try id on the try page")
		}
		try = m[1]
		return nil
	})
	if err != nil {
		return err
	}
	steps := []struct {
		route, path, step string
		form              url.Values
	}{
		{rTryGrant, "/grant", "grant", url.Values{"how": {"kept"}, "scope": {"altinn:serviceowner/instances.read"}, "kid": {c.kids[0]}}},
		{rTryToken, "/token", "token", url.Values{}},
		{rTryExchange, "/exchange", "exchange", url.Values{}},
		{rTryInstances, "/instances", "instances", url.Values{"org": {"ttd"}, "size": {"20"}}},
	}
	for _, st := range steps {
		st.form.Set("try", try)
		step := st.step
		if _, err := ss.post(ctx, st.route, path+st.path, st.form, http.StatusOK, func(body string) error { return stepOK(body, step) }); err != nil {
			return err
		}
	}
	return nil
}
