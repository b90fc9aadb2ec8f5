package tryit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
)

// Finding codes of a platform GET.
const (
	PlatformPathRefused  = "platform.path_refused"
	PlatformUnauthorized = "platform.unauthorized"
	PlatformNoOrg        = "platform.no_org_claim"
	PlatformScopeMissing = "platform.scope_missing"
	PlatformForbidden    = "platform.forbidden"
	PlatformNotFound     = "platform.not_found"
	PlatformBadRequest   = "platform.bad_request"
	PlatformOtherOrg     = "platform.events_other_org"
)

// platformAPI is one of the service-owner APIs on the platform host: where it lives and the
// scope a read needs.
type platformAPI struct {
	prefix, name, scope, doc string
}

var platformAPIs = []platformAPI{
	{"/events/", "the Events API", "altinn:events.subscribe", "https://docs.altinn.studio/events/"},
	{"/storage/", "Storage", "altinn:serviceowner/instances.read", "https://docs.altinn.studio/api/storage/"},
	{"/notifications/", "the Notifications API", "altinn:serviceowner/notifications.read", "https://docs.altinn.studio/notifications/"},
	{"/correspondence/", "Correspondence", "altinn:correspondence.read", "https://docs.altinn.studio/correspondence/"},
	{"/broker/", "Broker", "altinn:broker.read", "https://docs.altinn.studio/broker/"},
	{"/resourceregistry/", "the resource registry", "altinn:resourceregistry/resource.read", "https://docs.altinn.studio/authorization/"},
	{"/authorization/", "Altinn Authorization", "altinn:authorization/authorize", "https://docs.altinn.studio/authorization/"},
	{"/dialogporten/", "Dialogporten", "digdir:dialogporten.serviceprovider", "https://docs.altinn.studio/dialogporten/"},
}

func apiOf(path string) (platformAPI, bool) {
	p := strings.ToLower(path)
	for _, a := range platformAPIs {
		if strings.HasPrefix(p, a.prefix) {
			return a, true
		}
	}
	return platformAPI{}, false
}

// PlatformGet sends a GET with the Altinn token to a path (and query) on the environment's
// platform host (step 4's other choice). The host is the configured platform's: a path that
// would lead anywhere else is refused before any call.
func (c *Chain) PlatformGet(ctx context.Context, pathQuery string) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.needAltinn(StepPlatform); !ok {
		return st
	}
	al := c.env.Altinn
	u, err := al.ResolvePath(pathQuery)
	if err != nil {
		reason := err.Error()
		var pe *altinn.PathError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		return c.failed(StepPlatform, "The path cannot be used: "+reason+".", Finding{Code: PlatformPathRefused, Severity: SeverityError,
			Title: "Only paths on " + al.PlatformURL() + " can be reached", Cause: "The path was refused: " + reason + ".",
			Fix: "Type a path that starts with /, such as /events/api/v1/app/{org}/{app}?after=0; the host is fixed by the portal's configuration."})
	}
	start := time.Now()
	st := newStep(StepPlatform, c.now())
	tr := &maskinporten.Trace{}
	resp, err := al.Get(maskinporten.WithTrace(ctx, tr), c.altinnToken, pathQuery)
	st.Total = time.Since(start)
	st.fromTrace(tr.Calls(), "")
	st.in = secret{placeholder: PlaceholderAltinn, value: c.altinnToken}
	st.curlT = fmt.Sprintf("curl -sS -i %s \\\n  -H \"Authorization: Bearer %s\" \\\n  -H 'Accept: application/json'", shellQuote(u), PlaceholderAltinn)
	st.Curl = st.curlT
	if err != nil {
		f := ExplainTransport(err, "The Altinn platform", st.Total)
		st.Error = f.Title + "."
		st.Findings = []Finding{f}
		return c.record(st)
	}
	st.Status = resp.Status
	st.Response.Header = resp.Header
	st.Response.ContentType = resp.Header.Get("Content-Type")
	st.Response.Truncated = resp.Truncated
	st.Response.Body = showBody(resp.Body, resp.Truncated)
	path, _, _ := strings.Cut(strings.TrimPrefix(u, al.PlatformURL()), "?")
	switch {
	case resp.Status >= 200 && resp.Status <= 299 && strings.Contains(st.Response.ContentType, "json") && !resp.Truncated && !json.Valid(resp.Body):
		// Shown as it came, but not taken for an answer: a JSON API's body that is not JSON
		// was cut short or garbled on the way.
		st.Error = "The platform's answer is not the JSON it says it is."
		st.Findings = []Finding{{Code: UpstreamUnreadable, Severity: SeverityError, Title: "The answer could not be read",
			Cause: fmt.Sprintf("The platform answered %d with %s, but the body is not valid JSON: it was cut short or garbled on the way.", resp.Status, st.Response.ContentType),
			Fix:   "Try again; if it persists, a proxy between the portal and Altinn may be changing answers."}}
	case resp.Status >= 200 && resp.Status <= 299:
		st.OK = true
		st.Findings = platformNotes(path, resp.Body, c.altinnToken)
	default:
		st.Error = fmt.Sprintf("The platform answered %d.", resp.Status)
		st.Findings = ExplainPlatform(resp.Status, path, resp.Body, c.altinnToken)
	}
	return c.record(st)
}

// showBody is a body as a page shows it: text as it came (JSON is pretty-printed by the page),
// anything else as its size.
func showBody(b []byte, truncated bool) string {
	if len(b) == 0 {
		return ""
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		if truncated {
			return fmt.Sprintf("(at least %d bytes of binary content, not shown)", len(b))
		}
		return fmt.Sprintf("(%d bytes of binary content, not shown)", len(b))
	}
	return string(b)
}

// tokenOrgScope reads an Altinn token's org and scope claims.
func tokenOrgScope(tok string) (org, scope string) {
	if d, err := maskinporten.Decode(tok); err == nil {
		org, _ = d.ClaimString("urn:altinn:org")
		scope, _ = d.ClaimString("scope")
	}
	return org, scope
}

// platformNotes says what is worth knowing about a successful answer: an empty list of
// another organisation's app events means they are not the token's to read.
func platformNotes(path string, body []byte, altinnToken string) []Finding {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) != 6 || !strings.EqualFold(strings.Join(segs[:4], "/"), "events/api/v1/app") {
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(body, &list) != nil || len(list) > 0 {
		return nil
	}
	org, _ := tokenOrgScope(altinnToken)
	if org == "" || strings.EqualFold(org, segs[4]) {
		return nil
	}
	return []Finding{{Code: PlatformOtherOrg, Severity: SeverityInfo, Title: fmt.Sprintf("No events: %s's apps are not yours (you are %s)", segs[4], org),
		Cause: "The Events API leaves out the events the app's policy does not let you read, instead of refusing.",
		Fix:   fmt.Sprintf("Ask for an app of %s: /events/api/v1/app/%s/{app}.", org, org)}}
}

// ExplainPlatform explains a refusal of a GET on the platform host: what the API said, and for
// 401 and 403 which token or scope it wants.
func ExplainPlatform(status int, path string, body []byte, altinnToken string) []Finding {
	e := altinn.ParseError("platform GET", status, body)
	said := fmt.Sprintf("The platform answered %d%s.", status, problemText(e))
	org, scope := tokenOrgScope(altinnToken)
	api, known := apiOf(path)
	switch status {
	case http.StatusUnauthorized:
		if org == "" || strings.Contains(string(body), "Only orgs") {
			return []Finding{{Code: PlatformNoOrg, Severity: SeverityError, Title: "The API wants a service owner, and the Altinn token names none",
				Cause: said + " The Altinn token has no urn:altinn:org: the exchange adds it only when the Maskinporten token has an altinn:serviceowner scope.",
				Fix:   "Ask for altinn:serviceowner/instances.read (or another altinn:serviceowner scope) in the grant, then get and exchange a new token."}}
		}
		return []Finding{{Code: PlatformUnauthorized, Severity: SeverityError, Title: "The platform did not accept the Altinn token",
			Cause: said + " Altinn tokens live 30 minutes and are valid only in the Altinn environment that issued them.",
			Fix:   "Exchange a new Maskinporten token for a fresh Altinn token."}}
	case http.StatusForbidden:
		if known && !strings.Contains(" "+scope+" ", " "+api.scope+" ") {
			return []Finding{{Code: PlatformScopeMissing, Severity: SeverityError, Title: "The token lacks " + api.scope + ", which " + api.name + " needs",
				Cause: said + " This token has the scopes " + quoteOrNone(scope) + ".",
				Fix:   "Add " + api.scope + " to the integration (the organisation must have access to it), ask for it in the grant, then get and exchange a new token.",
				Ref:   api.doc}}
		}
		f := Finding{Code: PlatformForbidden, Severity: SeverityError, Title: "The platform did not permit the request",
			Cause: said + " The token's scopes (" + quoteOrNone(scope) + ") or the resource's policy do not allow it.",
			Fix:   "Check which scope the API needs and that the resource belongs to your organisation (" + quoteOrNone(org) + ")."}
		if known {
			f.Ref = api.doc
		}
		return []Finding{f}
	case http.StatusNotFound:
		return []Finding{{Code: PlatformNotFound, Severity: SeverityError, Title: "There is nothing at this path on the platform",
			Cause: said, Fix: "Check the path against the API's documentation; the Events API's app events are at /events/api/v1/app/{org}/{app}."}}
	case http.StatusBadRequest:
		f := Finding{Code: PlatformBadRequest, Severity: SeverityError, Title: "The platform refused the request", Cause: said,
			Fix: "Check the query's parameters against the API's documentation."}
		if known && api.prefix == "/events/" {
			f.Fix = "The Events API needs after (an event id, or 0 for the first) or from (a time with its zone, e.g. 2025-01-01T00:00:00Z); size must be 1 or more."
			f.Ref = api.doc
		}
		return []Finding{f}
	}
	return []Finding{transportOrStatus(e, said)}
}
