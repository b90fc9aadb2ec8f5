package platform

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// readScope is Storage's InstanceReadScope; it is matched as a substring of the scope claim.
const readScope = "altinn:serviceowner/instances.read"

// caller is who an Altinn token says the request comes from.
type caller struct {
	org    string // urn:altinn:org, empty when absent
	scope  string
	person bool // an end user or system user rather than an organisation
}

func (c caller) hasReadScope() bool { return strings.Contains(c.scope, readScope) }
func (c caller) hasServiceOwnerScope() bool {
	for _, s := range strings.Fields(c.scope) {
		if strings.HasPrefix(s, "altinn:serviceowner") {
			return true
		}
	}
	return false
}

// canRead stands in for Storage's PDP decision on "read": the app's policy lets its owner org
// read, given the service-owner read scope; nobody else is permitted here.
func (c caller) canRead(org string) bool {
	return c.org != "" && c.org == org && c.hasReadScope()
}

// authenticate validates the Altinn token as Storage's JwtCookie scheme does: from the
// Authorization header or the AltinnStudioRuntime cookie, signed by this platform, exp required,
// no clock skew; issuer and audience are not checked.
func (p *Platform) authenticate(r *http.Request) (caller, bool) {
	token := ""
	if auth := r.Header.Get("Authorization"); len(auth) >= 7 && strings.EqualFold(auth[:7], "Bearer ") {
		token = strings.TrimSpace(auth[7:])
	} else if ck, err := r.Cookie("AltinnStudioRuntime"); err == nil {
		token = ck.Value
	}
	if token == "" {
		return caller{}, false
	}
	c, err := verifyJWT(token, p.JWKS().Keys, p.now(), 0)
	if err != nil {
		return caller{}, false
	}
	org, _ := c.str("urn:altinn:org")
	scope, _ := c.str("scope")
	_, user := c.raw("urn:altinn:userid")
	_, sysUser := c.raw("authorization_details")
	return caller{org: org, scope: scope, person: user || sysUser}, true
}

// listInstances serves GET /storage/api/v1/instances (reference §4.2), in the order of
// InstancesController.GetInstances.
func (p *Platform) listInstances(w http.ResponseWriter, r *http.Request) {
	who, ok := p.authenticate(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	q := parseQuery(r.URL.RawQuery)
	iq, bindErrs := bindInstanceQuery(q)
	if bindErrs != nil {
		writeValidationProblem(w, bindErrs)
		return
	}
	ownerHeader := r.Header.Get("X-Ai-InstanceOwnerIdentifier")
	if iq.partyID != nil && ownerHeader != "" {
		writeJSONString(w, http.StatusBadRequest, "Both InstanceOwner.PartyId and InstanceOwnerIdentifier cannot be present at the same time.")
		return
	}

	switch {
	case who.org != "":
		if !who.hasReadScope() {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if iq.org == "" && iq.appID == "" {
			writeJSONString(w, http.StatusBadRequest, "Org or AppId must be defined.")
			return
		}
		if iq.org == "" {
			iq.org, _, _ = strings.Cut(iq.appID, "/")
		}
		if !strings.EqualFold(who.org, iq.org) {
			// Reading another org's instances needs a PDP permit for that app; the simulated
			// policies grant none.
			if iq.appID == "" {
				writeJSONString(w, http.StatusBadRequest, "AppId must be defined.")
				return
			}
			w.WriteHeader(http.StatusForbidden)
			return
		}
	case who.person:
		if iq.partyID == nil && ownerHeader == "" {
			writeJSONString(w, http.StatusBadRequest, "Either InstanceOwnerPartyId or InstanceOwnerIdentifier need to be defined.")
			return
		}
	default:
		writeProblemAs(w, http.StatusBadRequest, "application/json; charset=utf-8")
		return
	}

	ctx := r.Context()
	if ownerHeader != "" {
		ident, msg := parseOwnerIdentifier(ownerHeader)
		if msg != "" {
			writeJSONString(w, http.StatusBadRequest, msg)
			return
		}
		party, found, err := p.partyByIdentifier(ctx, ident)
		if err != nil {
			p.serverError(w, "party lookup", err)
			return
		}
		if !found {
			writeJSON(w, http.StatusOK, queryResponse{Instances: []instance{}})
			return
		}
		iq.partyID = &party
	}

	selfToken := iq.contToken
	if !who.hasServiceOwnerScope() {
		if iq.isHardDeleted != nil && *iq.isHardDeleted {
			self := p.requestLink(r, selfToken)
			writeJSON(w, http.StatusOK, queryResponse{Self: &self, Instances: []instance{}})
			return
		}
		f := false
		iq.isHardDeleted = &f
	}

	if iq.sortBy == "" {
		iq.sortBy = "desc:lastChanged"
	}
	three, two := int64(3), int64(2)
	switch {
	case iq.a3Ref != "":
		if len([]rune(iq.a3Ref)) != 12 {
			writeJSONString(w, http.StatusBadRequest, "The A3 reference needs to be exactly 12 characters long.")
			return
		}
		iq.mainInclude, iq.mainExclude = &three, nil
	case iq.a2ArchRef != "":
		iq.mainInclude, iq.mainExclude = &two, nil
	case iq.mainInclude == nil && iq.mainExclude == nil:
		iq.mainInclude = &three
	}
	if iq.size == nil {
		hundred := int64(100)
		iq.size = &hundred
	}

	sq, err := buildInstanceSQL(p.cfg.Env, iq)
	if err != nil {
		writeJSONString(w, http.StatusBadRequest, err.Error())
		return
	}
	// Storage itself fails inside the repository on a malformed token and answers 500 with the
	// exception message; the simulator answers 400 instead, as for every other bad input, so a
	// client that mangles the next link sees its own mistake rather than an outage.
	ks, err := parseContinuationToken(iq.contToken)
	if err != nil {
		writeJSONString(w, http.StatusBadRequest, "Invalid continuationToken: "+err.Error()+
			" Use the next link of the previous page as it is; a token is two integers separated by ';'.")
		return
	}
	// Storage passes a negative size on to its database, which fails with a 500 ("2201W: LIMIT
	// must not be negative"); the simulator answers 400, as for the continuation token above.
	if *iq.size < 0 {
		writeJSONString(w, http.StatusBadRequest, "Invalid size: "+strconv.FormatInt(*iq.size, 10)+". Give a page size of 0 or more, or leave size out for 100.")
		return
	}
	sq.withKeyset(ks)

	page, err := p.queryInstances(ctx, sq, *iq.size, iq.includeData)
	if err != nil {
		p.serverError(w, "query instances", err)
		return
	}
	if who.person {
		// End users need a PDP permit per instance; the simulated policies grant none.
		page.instances = nil
	}
	resp := queryResponse{Count: len(page.instances), Instances: page.instances}
	if resp.Instances == nil {
		resp.Instances = []instance{}
	}
	self := p.requestLink(r, selfToken)
	resp.Self = &self
	if int64(len(page.instances)) == *iq.size {
		next := p.requestLink(r, httpUtilityURLEncode(formatContinuationToken(page.last)))
		resp.Next = &next
	}
	writeJSON(w, http.StatusOK, resp)
}

// requestLink is InstancesController.BuildRequestLink: without a token the request's own path
// and query; with one, the query re-encoded by QueryBuilder without its continuationToken and
// with the given one appended.
func (p *Platform) requestLink(r *http.Request, token string) string {
	base := p.cfg.BaseURL + r.URL.EscapedPath()
	if token == "" {
		if r.URL.RawQuery == "" {
			return base
		}
		return base + "?" + r.URL.RawQuery
	}
	type group struct {
		key    string
		values []string
	}
	var groups []*group
outer:
	for _, pair := range parseQuery(r.URL.RawQuery) {
		for _, g := range groups {
			if strings.EqualFold(g.key, pair.key) {
				g.values = append(g.values, pair.value)
				continue outer
			}
		}
		groups = append(groups, &group{pair.key, []string{pair.value}})
	}
	var parts []string
	for _, g := range groups {
		if g.key == "continuationToken" {
			continue
		}
		for _, v := range g.values {
			parts = append(parts, urlEncoderDefault(g.key)+"="+urlEncoderDefault(v))
		}
	}
	parts = append(parts, "continuationToken="+urlEncoderDefault(token))
	return base + "?" + strings.Join(parts, "&")
}

var (
	personNumberRE = regexp.MustCompile(`^\d{11}$`)
	orgNumberRE    = regexp.MustCompile(`^\d{9}$`)
)

// parseOwnerIdentifier checks X-Ai-InstanceOwnerIdentifier and returns the stored owner key,
// or Storage's message for a bad value.
func parseOwnerIdentifier(h string) (ident, msg string) {
	kind, value, ok := strings.Cut(h, ":")
	switch {
	case ok && strings.EqualFold(kind, "Person"):
		if !personNumberRE.MatchString(value) {
			return "", "Person number needs to be exactly 11 digits."
		}
		return "Person:" + value, ""
	case ok && strings.EqualFold(kind, "Organisation"):
		if !orgNumberRE.MatchString(value) {
			return "", "Organization number needs to be exactly 9 digits."
		}
		return "Organisation:" + value, ""
	}
	return "", "Invalid InstanceOwnerIdentifier."
}

// getInstance serves GET /storage/api/v1/instances/{partyId}/{guid} and /instances/{guid}.
// The party id in the path is not checked against the instance, as in Storage.
func (p *Platform) getInstance(w http.ResponseWriter, r *http.Request, guid string) {
	who, ok := p.authenticate(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	inst, found, err := p.instanceByGUID(r.Context(), guid, true)
	if err != nil {
		p.serverError(w, "read instance", err)
		return
	}
	if !found {
		writeJSONString(w, http.StatusNotFound, "Unable to find instance "+guid)
		return
	}
	if !who.canRead(inst.Org) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	writeJSON(w, http.StatusOK, inst)
}

// listDataElements serves GET .../instances/{partyId}/{guid}/dataelements.
func (p *Platform) listDataElements(w http.ResponseWriter, r *http.Request, party int32, guid string) {
	who, ok := p.authenticate(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if party == 0 {
		writeJSONString(w, http.StatusBadRequest, "Missing parameter value: instanceOwnerPartyId can not be empty")
		return
	}
	inst, found, err := p.instanceByGUID(r.Context(), guid, true)
	if err != nil {
		p.serverError(w, "read instance", err)
		return
	}
	if !found {
		writeJSONString(w, http.StatusNotFound, fmt.Sprintf("Unable to find any instance with id: %d/%s.", party, guid))
		return
	}
	if !who.canRead(inst.Org) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	writeJSON(w, http.StatusOK, dataElementList{DataElements: inst.Data})
}

// getData serves GET .../instances/{partyId}/{guid}/data/{dataGuid}: the file itself, with the
// element's content type and, when it has a file name, an attachment disposition.
func (p *Platform) getData(w http.ResponseWriter, r *http.Request, party int32, guid, dataGUID string) {
	who, ok := p.authenticate(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if party == 0 {
		writeJSONString(w, http.StatusBadRequest, "Missing parameter value: instanceOwnerPartyId can not be empty")
		return
	}
	ctx := r.Context()
	inst, found, err := p.instanceByGUID(ctx, guid, true)
	if err != nil {
		p.serverError(w, "read instance", err)
		return
	}
	if !found {
		writeJSONString(w, http.StatusNotFound, fmt.Sprintf("Unable to find any instance with id: %d/%s.", party, guid))
		return
	}
	if !who.canRead(inst.Org) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	var el *dataElement
	for i := range inst.Data {
		if inst.Data[i].ID == dataGUID {
			el = &inst.Data[i]
		}
	}
	if el == nil {
		writeJSONString(w, http.StatusNotFound, fmt.Sprintf("Unable to find any data element with id: %s.", dataGUID))
		return
	}
	content, err := renderContent(&inst, el)
	if err != nil {
		writeJSONString(w, http.StatusNotFound, "Unable to read data element from blob storage for "+dataGUID)
		return
	}
	w.Header().Set("Content-Type", el.ContentType)
	if el.Filename != "" {
		w.Header().Set("Content-Disposition", contentDisposition(el.Filename))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(content)
}

// serverError answers an unexpected failure; the simulator's own faults are logged, not shown.
func (p *Platform) serverError(w http.ResponseWriter, op string, err error) {
	slog.Error("platform simulator", "env", p.cfg.Env, "op", op, "err", err)
	writeJSONString(w, http.StatusInternalServerError, "Unable to perform query on instances due to: "+op)
}
