package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"portal/internal/problem"
	"portal/internal/tryit"
	"portal/templates"
)

func tryURL(env, clientID string) string { return integrationURL(env, clientID) + "/try" }

// tryForm is what the try page's forms post. The try id ties the steps of one try together;
// a grant pasted or signed in the browser comes as grant, never a private key.
type tryForm struct {
	Try         string
	How         string // prepare, kept, run, browser, pasted
	Scopes      []string
	Resource    string
	ConsumerOrg string
	Lifetime    string
	KID         string
	Grant       string
	Test        bool
	Query       templates.TryQuery
	Instance    string
	Step        string
	Path        string // step 4's GET on the platform: a path and query under its host
}

func parseTryForm(v url.Values) (tryForm, error) {
	f := tryForm{Try: field(v, "try", 64), How: field(v, "how", 16), Resource: field(v, "resource", 1024),
		ConsumerOrg: field(v, "consumer_org", 64), Lifetime: field(v, "lifetime", 8), KID: field(v, "kid", 512),
		Grant: field(v, "grant", maxFieldBytes), Test: v.Get("test") == "true", Instance: field(v, "instance", 256),
		Step: field(v, "step", 32), Path: field(v, "path", 2048)}
	if f.Grant == "" {
		f.Grant = field(v, "grant_pasted", maxFieldBytes)
	}
	for _, s := range v["scope"] {
		if s = strings.TrimSpace(s); s != "" && len(s) <= 512 {
			f.Scopes = append(f.Scopes, s)
		}
	}
	f.Query = templates.TryQuery{AppID: field(v, "app_id", 256), Org: field(v, "org", 64), IsComplete: field(v, "is_complete", 8),
		CurrentTask: field(v, "current_task", 256), Created: field(v, "created", 64), LastChanged: field(v, "last_changed", 64),
		Size: field(v, "size", 8)}
	return f, nil
}

// grantRequest turns the grant fields into a request; the lifetime must be whole seconds.
func (f tryForm) grantRequest() (tryit.GrantRequest, error) {
	req := tryit.GrantRequest{Scopes: f.Scopes, ConsumerOrg: f.ConsumerOrg}
	if f.Resource != "" {
		req.Resource = []string{f.Resource}
	}
	if f.Lifetime != "" {
		n, err := strconv.Atoi(f.Lifetime)
		if err != nil || n <= 0 {
			return req, problem.Invalid("The grant cannot be made as asked.", map[string]string{"lifetime": "whole seconds, at most 120"})
		}
		req.Lifetime = time.Duration(n) * time.Second
	}
	return req, nil
}

// instanceQuery turns step 4's fields into a Storage query; without appId or org it asks for
// the environment's service owner's instances.
func instanceQuery(q templates.TryQuery, org string) (tryit.InstanceQuery, error) {
	out := tryit.InstanceQuery{AppID: q.AppID, Org: q.Org, CurrentTask: q.CurrentTask}
	if out.AppID == "" && out.Org == "" {
		out.Org = org
	}
	if q.IsComplete != "" {
		b := q.IsComplete == "true"
		out.IsComplete = &b
	}
	for _, d := range []struct {
		text string
		into *[]tryit.DateFilter
	}{{q.Created, &out.Created}, {q.LastChanged, &out.LastChanged}} {
		if d.text == "" {
			continue
		}
		df, err := tryit.ParseDateFilter(d.text)
		if err != nil {
			return out, problem.Invalid("The instance filters are invalid: write dates as gte:2026-01-01 (gt, gte, lt, lte or eq).", nil)
		}
		*d.into = append(*d.into, df)
	}
	if q.Size != "" {
		n, err := strconv.Atoi(q.Size)
		if err != nil || n <= 0 || n > 1000 {
			return out, problem.Invalid("The page size must be a number from 1 to 1000.", nil)
		}
		out.Size = n
	}
	return out, nil
}

// tryEnv is the environment of a try request, 404 without the try service.
func (s *Server) tryEnv(c echo.Context) (Env, error) {
	e, err := s.integrationEnv(c)
	if err == nil && s.deps.Tryit == nil {
		err = errNotFound
	}
	return e, err
}

// resumeTry returns the person's open try of the integration in the URL. When there is none,
// the integration's own answer for this person comes first (403 for viewers, 404 for
// outsiders), then that the try has ended.
func (s *Server) resumeTry(c echo.Context, e Env, id string) (*tryit.Try, error) {
	ctx, p := c.Request().Context(), principal(c)
	t, err := s.deps.Tryit.Resume(ctx, p, id)
	if err == nil {
		if f := t.Form(); f.Env == e.Name && f.ClientID == c.Param("id") {
			return t, nil
		}
		err = problem.New(problem.KindNotFound, "This try belongs to another integration.")
	}
	if _, terr := s.deps.Clients.TryTarget(ctx, p, e.Name, c.Param("id")); terr != nil {
		return nil, terr
	}
	return nil, err
}

// tryAction reads a try form and resumes its try.
func (s *Server) tryAction(c echo.Context) (Env, *tryit.Try, tryForm, error) {
	e, err := s.tryEnv(c)
	if err != nil {
		return e, nil, tryForm{}, err
	}
	f, err := decodeForm(c, parseTryForm)
	if err != nil {
		return e, nil, f, err
	}
	t, err := s.resumeTry(c, e, f.Try)
	return e, t, f, err
}

func (s *Server) showTry(c echo.Context) error {
	e, err := s.tryEnv(c)
	if err != nil {
		return err
	}
	var t *tryit.Try
	if id := field(c.QueryParams(), "try", 64); id != "" {
		t, _ = s.deps.Tryit.Resume(c.Request().Context(), principal(c), id)
		if t != nil {
			if f := t.Form(); f.Env != e.Name || f.ClientID != c.Param("id") {
				t = nil
			}
		}
	}
	if t == nil {
		if t, err = s.deps.Tryit.Start(c.Request().Context(), principal(c), s.meta(c), e.Name, c.Param("id")); err != nil {
			return err
		}
	}
	return s.renderTry(c, e, t, nil, "", "")
}

// renderTry shows the try page: f (nil for defaults) keeps what was typed, reveal names the
// step whose secrets the person asked to see, msg says why the last action did not run.
func (s *Server) renderTry(c echo.Context, e Env, t *tryit.Try, f *tryForm, reveal, msg string) error {
	return s.renderTryPath(c, e, t, f, reveal, msg, "")
}

// renderTryPath is renderTry keeping the platform path the person typed.
func (s *Server) renderTryPath(c echo.Context, e Env, t *tryit.Try, f *tryForm, reveal, msg, path string) error {
	form := t.Form()
	id := form.ClientID
	p := templates.TryProps{Layout: s.layout(c, "Try "+form.Name, "Integrations"), Env: envHeading(e), Name: form.Name,
		ClientID: id, BackURL: integrationURL(e.Name, id), Action: tryURL(e.Name, id), TryID: t.ID, Stale: form.Stale,
		Issuer: form.Issuer, TokenURL: form.TokenURL, ExchangeURL: form.ExchangeURL, InstancesURL: form.InstancesURL,
		PlatformURL: form.PlatformURL, Path: path, Error: msg, TestToggle: form.TestToggle, Test: form.TestToggle}
	if f == nil {
		f = &tryForm{Scopes: form.Preselected, Lifetime: strconv.Itoa(int(form.MaxLifetime / time.Second))}
		if len(f.Scopes) == 0 && len(form.Scopes) > 0 {
			f.Scopes = form.Scopes[:1]
		}
		if e.Org != "" {
			f.Query.Org = e.Org
		}
	} else {
		p.Test = f.Test && form.TestToggle
	}
	p.Query = f.Query
	for _, sc := range form.Scopes {
		p.Scopes = append(p.Scopes, templates.Check{Value: sc, Checked: slices.Contains(f.Scopes, sc)})
	}
	p.Resource, p.ConsumerOrg, p.Lifetime = templates.Field{Value: f.Resource}, templates.Field{Value: f.ConsumerOrg}, templates.Field{Value: f.Lifetime}
	kid := f.KID
	for _, k := range form.Keys {
		label := k.Kid
		switch {
		case k.Expired:
			label += " (expired)"
		case k.Kept:
			label += " (kept by the portal)"
		}
		if kid == "" && k.Kept && !k.Expired {
			kid = k.Kid
		}
		if k.Kept {
			p.KeptKeys = append(p.KeptKeys, templates.Option{Value: k.Kid, Label: label})
		}
		p.Keys = append(p.Keys, templates.Option{Value: k.Kid, Label: label})
	}
	if kid == "" && len(form.Keys) > 0 {
		kid = form.Keys[0].Kid
	}
	for i := range p.Keys {
		p.Keys[i].Selected = p.Keys[i].Value == kid
	}
	// A grant the portal just signed is shown by its own step (its claims, its jti): a fresh
	// preview beside it, with another jti and the browser signer, would describe a grant that
	// was never made.
	signed := false
	if st, ok := t.Last(tryit.StepGrant); ok && st.OK && (f.How == "kept" || f.How == "run") {
		signed = true
	}
	if kid != "" && !signed {
		if req, err := f.grantRequest(); err == nil {
			pv, err := t.Prepare(req, kid)
			if err == nil {
				p.Preview = &templates.GrantPreview{KID: kid, Header: string(pv.Header), Claims: string(pv.Claims),
					Signer:   templates.SignerProps{KID: kid, Header: compactJSON(pv.Header), Claims: compactJSON(pv.Claims), FormID: "try-signed"},
					Findings: findingsView(pv.Findings)}
			} else if p.Error == "" {
				p.Error = messageOf(err, statusOf(err))
			}
		}
	}
	now := s.cfg.Now()
	for _, name := range []string{tryit.StepGrant, tryit.StepToken, tryit.StepExchange, tryit.StepInstances, tryit.StepInstance, tryit.StepData, tryit.StepPlatform} {
		st, ok := t.Last(name)
		if !ok {
			continue
		}
		p.Steps = append(p.Steps, stepView(st, name == reveal, now, p.Action, t.ID))
	}
	if st, ok := t.Last(tryit.StepPlatform); ok && p.Path == "" && st.Request != nil {
		p.Path = strings.TrimPrefix(st.Request.URL, form.PlatformURL)
	}
	// The Altinn token beside the Maskinporten token it was exchanged for.
	var mpToken *templates.TryToken
	for i := range p.Steps {
		switch p.Steps[i].Name {
		case tryit.StepToken:
			mpToken = p.Steps[i].Token
		case tryit.StepExchange:
			if p.Steps[i].Token != nil && mpToken != nil {
				p.Steps[i].Token.ComparedTo = mpToken
			}
		}
	}
	p.Apps = s.deps.Tryit.SeenApps(e.Name)
	return render(c, http.StatusOK, templates.TryPage(p))
}

func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func dur(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}

func findingsView(fs []tryit.Finding) []templates.TryFinding {
	out := make([]templates.TryFinding, 0, len(fs))
	for _, f := range fs {
		out = append(out, templates.TryFinding{Code: f.Code, Severity: string(f.Severity), Title: f.Title, Cause: f.Cause, Fix: f.Fix, Ref: f.Ref})
	}
	return out
}

func tokenView(tv *tryit.TokenView, now time.Time) *templates.TryToken {
	if tv == nil {
		return nil
	}
	out := &templates.TryToken{Kind: tv.Kind, Masked: tv.Masked, Header: prettyJSON(string(tv.Header)), Issued: showTime(tv.Issued)}
	if !tv.Expires.IsZero() {
		out.ExpiresAt = strconv.FormatInt(tv.Expires.Unix(), 10)
		left := tv.Expires.Sub(now).Round(time.Second)
		if left > 0 {
			out.Expires = showTime(tv.Expires) + " (in " + left.String() + ")"
		} else {
			out.Expires = showTime(tv.Expires) + " (expired)"
		}
	}
	for _, cl := range tv.Claims {
		out.Claims = append(out.Claims, templates.ClaimRow{Name: cl.Name, Value: string(cl.Value), Meaning: cl.Meaning})
	}
	return out
}

// stepView shapes a step for the page; secrets only when the person asked to reveal them.
func stepView(st tryit.Step, reveal bool, now time.Time, action, tryID string) templates.TryStep {
	secret := st.Secret()
	revealable := secret != "" || strings.Contains(st.Curl, "$")
	if reveal && revealable {
		st = st.Revealed()
	}
	v := templates.TryStep{Name: st.Name, Title: st.Title, OK: st.OK, Error: st.Error, Status: st.Status, Total: dur(st.Total),
		Portal: dur(st.Overhead()), Response: prettyJSON(st.Response.Body), Token: tokenView(st.Response.Token, now), Curl: st.Curl,
		Findings: findingsView(st.Findings), Revealable: revealable, Revealed: reveal && revealable}
	if v.Revealed {
		v.Secret = secret
	}
	if st.HasUpstream {
		v.Upstream = dur(st.Upstream)
	}
	for name, vals := range st.Response.Header {
		for _, val := range vals {
			v.ResponseHeaders = append(v.ResponseHeaders, name+": "+val)
		}
	}
	slices.Sort(v.ResponseHeaders)
	v.Truncated = st.Response.Truncated
	if r := st.Request; r != nil {
		v.Method, v.URL, v.Body = r.Method, r.URL, r.Body
		for name, vals := range r.Header {
			for _, val := range vals {
				v.Headers = append(v.Headers, name+": "+val)
			}
		}
		slices.Sort(v.Headers)
	}
	if pg := st.Response.Instances; pg != nil {
		v.HasNext = pg.Next != ""
		for _, in := range pg.Instances {
			row := templates.InstanceRow{ID: in.ID, AppID: in.AppID, Owner: owner(in.InstanceOwner), Complete: in.Process.IsComplete(),
				Created: showTime(in.Created.Time), LastChanged: showTime(in.LastChanged.Time)}
			if in.Process != nil && in.Process.CurrentTask != nil {
				row.Task = in.Process.CurrentTask.ElementID
			}
			v.Instances = append(v.Instances, row)
		}
		if len(pg.Instances) == 0 {
			v.Download = "No instances match."
		}
	}
	if in := st.Response.Instance; in != nil {
		d := &templates.InstanceDetail{ID: in.ID, AppID: in.AppID, Owner: owner(in.InstanceOwner), Process: "not started", Status: "-"}
		if pr := in.Process; pr != nil {
			switch {
			case pr.IsComplete():
				d.Process = "complete (" + showTime(pr.Ended.Time) + ")"
			case pr.CurrentTask != nil:
				d.Process = "at " + pr.CurrentTask.ElementID
			default:
				d.Process = "started"
			}
		}
		if stt := in.Status; stt != nil {
			d.Status = fmt.Sprintf("read: %s, archived: %t, deleted: %t", stt.ReadStatus, stt.IsArchived, stt.IsSoftDeleted || stt.IsHardDeleted)
		}
		for _, de := range in.Data {
			q := url.Values{"try": {tryID}, "instance": {in.ID}, "data": {de.ID}}
			d.Data = append(d.Data, templates.DataRow{ID: de.ID, DataType: de.DataType, Filename: de.Filename, ContentType: de.ContentType,
				Size: strconv.FormatInt(de.Size, 10) + " bytes", URL: action + "/data?" + q.Encode()})
		}
		v.Instance = d
	}
	if dl := st.Response.Download; dl != nil {
		v.Download = "Streamed " + dl.Filename + " (" + dl.ContentType + ") through the portal; nothing was kept."
	}
	return v
}

func owner(o tryit.InstanceOwner) string {
	switch {
	case o.OrganisationNumber != "":
		return "org " + o.OrganisationNumber + " (party " + o.PartyID + ")"
	case o.PersonNumber != "":
		return "person (party " + o.PartyID + ")"
	}
	return "party " + o.PartyID
}

// tryGrant makes step 1: shows the grant, signs it with a kept key, takes one signed in the
// browser or pasted, or runs all the steps with the kept key.
func (s *Server) tryGrant(c echo.Context) error {
	e, t, f, err := s.tryAction(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	switch f.How {
	case "browser", "pasted":
		if f.Grant == "" {
			return s.renderTry(c, e, t, &f, "", "There is no grant to use: sign one in the browser or paste one.")
		}
		src := tryit.SourcePasted
		if f.How == "browser" {
			src = tryit.SourceBrowser
		}
		t.UseGrant(f.Grant, src)
		f.Grant = ""
		return s.renderTry(c, e, t, &f, "", "")
	case "kept", "run":
		req, err := f.grantRequest()
		if err != nil {
			return s.renderTry(c, e, t, &f, "", messageOf(err, statusOf(err)))
		}
		if f.How == "kept" {
			t.SignWithKeptKey(ctx, req, f.KID)
			return s.renderTry(c, e, t, &f, "", "")
		}
		q, err := instanceQuery(f.Query, e.Org)
		if err != nil {
			return s.renderTry(c, e, t, &f, "", messageOf(err, statusOf(err)))
		}
		t.RunAll(ctx, tryit.RunGrant{Request: req, KID: f.KID}, tryit.Plan{Exchange: true, Test: f.Test, Instances: &q})
		return s.renderTry(c, e, t, &f, "", "")
	}
	return s.renderTry(c, e, t, &f, "", "")
}

func (s *Server) tryToken(c echo.Context) error {
	e, t, _, err := s.tryAction(c)
	if err != nil {
		return err
	}
	t.Token(c.Request().Context())
	return s.renderTry(c, e, t, nil, "", "")
}

func (s *Server) tryExchange(c echo.Context) error {
	e, t, f, err := s.tryAction(c)
	if err != nil {
		return err
	}
	t.Exchange(c.Request().Context(), f.Test && t.Form().TestToggle)
	return s.renderTry(c, e, t, nil, "", "")
}

func (s *Server) tryInstances(c echo.Context) error {
	e, t, f, err := s.tryAction(c)
	if err != nil {
		return err
	}
	q, err := instanceQuery(f.Query, e.Org)
	if err != nil {
		return s.renderTry(c, e, t, nil, "", messageOf(err, statusOf(err)))
	}
	t.Instances(c.Request().Context(), q)
	return s.renderTry(c, e, t, nil, "", "")
}

func (s *Server) tryNext(c echo.Context) error {
	e, t, _, err := s.tryAction(c)
	if err != nil {
		return err
	}
	t.NextInstances(c.Request().Context())
	return s.renderTry(c, e, t, nil, "", "")
}

func (s *Server) tryInstance(c echo.Context) error {
	e, t, f, err := s.tryAction(c)
	if err != nil {
		return err
	}
	if f.Instance == "" {
		return s.renderTry(c, e, t, nil, "", "Pick an instance.")
	}
	t.Instance(c.Request().Context(), f.Instance)
	return s.renderTry(c, e, t, nil, "", "")
}

// tryGet is step 4's other choice: a GET with the Altinn token to a path on the environment's
// platform host, which the try service checks stays there.
func (s *Server) tryGet(c echo.Context) error {
	e, t, f, err := s.tryAction(c)
	if err != nil {
		return err
	}
	t.PlatformGet(c.Request().Context(), f.Path)
	return s.renderTryPath(c, e, t, nil, "", "", f.Path)
}

// tryReveal shows the page again with one step's secrets unmasked, for this person and this
// answer only: nothing is stored.
func (s *Server) tryReveal(c echo.Context) error {
	e, t, f, err := s.tryAction(c)
	if err != nil {
		return err
	}
	return s.renderTry(c, e, t, nil, f.Step, "")
}

// tryData streams a data element through: nothing is stored, and the browser is told to save
// it, never to show it in the portal's origin.
func (s *Server) tryData(c echo.Context) error {
	e, err := s.tryEnv(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	t, err := s.resumeTry(c, e, field(q, "try", 64))
	if err != nil {
		return err
	}
	instanceID, dataID := field(q, "instance", 256), field(q, "data", 256)
	_, dl := t.Download(c.Request().Context(), instanceID, dataID)
	if dl == nil {
		return s.renderTry(c, e, t, nil, "", "")
	}
	defer dl.Body.Close()
	ct := dl.ContentType
	if _, _, err := mime.ParseMediaType(ct); err != nil || ct == "" {
		ct = "application/octet-stream"
	}
	h := c.Response().Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": safeFilename(dl.Filename, dataID)}))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "no-store")
	if dl.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(dl.ContentLength, 10))
	}
	c.Response().WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.Response(), dl.Body); err != nil {
		s.log.Warn("stream a data element", "request_id", requestID(c), "env", e.Name, "client_id", c.Param("id"), "err", err)
	}
	return nil
}

// safeFilename reduces a name to a base name of printable characters, or fallback.
func safeFilename(name, fallback string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || r == '"' || r == '/' {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." || name == "_" {
		name = safeFilename(fallback, "data")
		if name == "" || name == "." {
			name = "data"
		}
	}
	return name
}

// explainForm is what /explain posts: pasted text (never a private key), and optionally the
// environment and integration it came from.
type explainForm struct {
	Text     string
	Env      string
	ClientID string
}

func parseExplainForm(v url.Values) (explainForm, error) {
	return explainForm{Text: field(v, "text", maxFieldBytes), Env: field(v, "env", 32), ClientID: field(v, "client_id", 256)}, nil
}

func (s *Server) explainProps(c echo.Context, f explainForm) templates.ExplainProps {
	p := templates.ExplainProps{Layout: s.layout(c, "Explain", ""), Text: f.Text, ClientID: f.ClientID}
	for _, e := range s.cfg.Envs {
		p.Envs = append(p.Envs, templates.Option{Value: e.Name, Label: e.Label, Selected: e.Name == f.Env})
	}
	return p
}

func (s *Server) showExplain(c echo.Context) error {
	return render(c, http.StatusOK, templates.ExplainPage(s.explainProps(c, explainForm{Env: field(c.QueryParams(), "env", 32)})))
}

func (s *Server) explain(c echo.Context) error {
	f, err := decodeForm(c, parseExplainForm)
	if err != nil {
		return err
	}
	p := s.explainProps(c, f)
	if f.Text == "" {
		p.Error = "Paste an error body, a grant or a token."
		return render(c, http.StatusUnprocessableEntity, templates.ExplainPage(p))
	}
	if tryit.LooksPrivate(f.Text) {
		p.Text = "" // never sent back
		p.Error = tryit.ErrPrivateKey.Error()
		return render(c, http.StatusUnprocessableEntity, templates.ExplainPage(p))
	}
	var x tryit.Explanation
	e, known := s.findEnv(f.Env)
	switch {
	case known && s.deps.Tryit != nil && s.deps.Clients != nil:
		x, err = s.deps.Tryit.Explain(c.Request().Context(), principal(c), e.Name, f.ClientID, f.Text)
	default:
		ctx := tryit.Context{Now: s.cfg.Now()}
		if known {
			ctx.Env, ctx.Issuer, ctx.TokenURL = e.Name, e.Issuer, e.TokenURL
		}
		x, err = tryit.Explain(f.Text, ctx)
	}
	if err != nil {
		if errors.Is(err, tryit.ErrPrivateKey) {
			p.Text = ""
		}
		kind := problem.KindOf(err)
		if kind == problem.KindNotFound || kind == problem.KindForbidden {
			return err
		}
		p.Error = messageOf(err, http.StatusUnprocessableEntity)
		if _, ok := problem.As(err); !ok {
			p.Error = err.Error() // tryit's own errors: fixed texts that never quote the input
		}
		return render(c, http.StatusUnprocessableEntity, templates.ExplainPage(p))
	}
	p.Done, p.Summary, p.Token, p.Findings = true, x.Summary, tokenView(x.Token, s.cfg.Now()), findingsView(x.Findings)
	return render(c, http.StatusOK, templates.ExplainPage(p))
}
