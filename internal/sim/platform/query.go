package platform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wireError is an error whose text is the message Storage sends, .NET exception text included.
type wireError string

func (e wireError) Error() string { return string(e) }

// instanceQuery is Storage's InstanceQueryParameters after model binding.
type instanceQuery struct {
	org, appID    string
	currentTask   string
	isComplete    *bool
	partyID       *int64
	createdRaw    []string
	changedRaw    []string
	dueBeforeRaw  []string
	visibleRaw    []string
	endedRaw      []string
	excludeConfBy []string
	confirmed     *bool
	isArchived    *bool
	isSoftDeleted *bool
	isHardDeleted *bool
	size          *int64
	contToken     string // as bound, i.e. URL-decoded once
	sortBy        string
	searchString  string
	mainInclude   *int64
	mainExclude   *int64
	includeData   bool
	a3Ref         string
	a2ArchRef     string
}

// bindingErrors maps a query key to model-binding messages, for the automatic 400.
type bindingErrors map[string][]string

// bindInstanceQuery binds the query string the way ASP.NET Core model binding does: keys
// without regard to case, empty strings as null, a value that does not convert is a binding
// error naming the C# property.
func bindInstanceQuery(q query) (instanceQuery, bindingErrors) {
	errs := bindingErrors{}
	b := func(key, prop string) *bool {
		v, ok := q.first(key)
		if !ok || strings.TrimSpace(v) == "" {
			return nil
		}
		x, err := parseDotNetBool(v)
		if err != nil {
			errs[key] = append(errs[key], fmt.Sprintf("The value '%s' is not valid for %s.", v, prop))
			return nil
		}
		return &x
	}
	n := func(key, prop string) *int64 {
		v, ok := q.first(key)
		if !ok || strings.TrimSpace(v) == "" {
			return nil
		}
		x, err := parseDotNetInt32(v)
		if err != nil {
			errs[key] = append(errs[key], fmt.Sprintf("The value '%s' is not valid for %s.", v, prop))
			return nil
		}
		return &x
	}
	iq := instanceQuery{
		org:           q.str("org"),
		appID:         q.str("appId"),
		currentTask:   q.str("process.currentTask"),
		isComplete:    b("process.isComplete", "ProcessIsComplete"),
		partyID:       n("instanceOwner.partyId", "InstanceOwnerPartyId"),
		createdRaw:    q.all("created"),
		changedRaw:    q.all("lastChanged"),
		dueBeforeRaw:  q.all("dueBefore"),
		visibleRaw:    q.all("visibleAfter"),
		endedRaw:      q.all("process.ended"),
		excludeConfBy: q.all("excludeConfirmedBy"),
		confirmed:     b("confirmed", "Confirmed"),
		isArchived:    b("status.isArchived", "IsArchived"),
		isSoftDeleted: b("status.isSoftDeleted", "IsSoftDeleted"),
		isHardDeleted: b("status.isHardDeleted", "IsHardDeleted"),
		size:          n("size", "Size"),
		contToken:     q.str("continuationToken"),
		sortBy:        q.str("order"),
		searchString:  q.str("searchString"),
		mainInclude:   n("mainVersionInclude", "MainVersionInclude"),
		mainExclude:   n("mainVersionExclude", "MainVersionExclude"),
		a3Ref:         q.str("A3Ref"),
		a2ArchRef:     q.str("dataValues.A2ArchRef"),
		includeData:   true,
	}
	if inc := b("includeDataElements", "IncludeDataElements"); inc != nil {
		iq.includeData = *inc
	}
	if len(errs) > 0 {
		return iq, errs
	}
	return iq, nil
}

// parseDotNetBool is bool.Parse: "true" or "false" in any case, surrounding space allowed.
func parseDotNetBool(s string) (bool, error) {
	switch strings.ToLower(strings.Trim(s, " \t\r\n\x00")) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

// parseDotNetInt32 is Int32 parsing with NumberStyles.Integer: optional sign, surrounding space.
func parseDotNetInt32(s string) (int64, error) {
	return strconv.ParseInt(strings.TrimSpace(s), 10, 32)
}

// parseDotNetInt64 is long.Parse with NumberStyles.Integer; its error text is .NET's.
func parseDotNetInt64(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, wireError("Value was either too large or too small for an Int64.")
	}
	return 0, wireError(fmt.Sprintf("The input string '%s' was not in a correct format.", s))
}

// keyset is a decoded continuation token: the last row's lastChanged ticks and internal id.
type keyset struct {
	ticks int64
	id    int64
}

// parseContinuationToken decodes a token as Storage does: one more URL-decoding, then
// "{ticks};{id}". A token without ';' is ignored; a malformed one fails the query (Storage
// answers 500 with the exception message, the simulator 400).
func parseContinuationToken(bound string) (*keyset, error) {
	if bound == "" {
		return nil, nil
	}
	tok := httpUtilityURLDecode(bound)
	if !strings.Contains(tok, ";") {
		return nil, nil
	}
	parts := strings.Split(tok, ";")
	id, err := parseDotNetInt64(parts[1])
	if err != nil {
		return nil, err
	}
	ticks, err := parseDotNetInt64(parts[0])
	if err != nil {
		return nil, err
	}
	if ticks < 0 || ticks > maxTicks {
		return nil, wireError("Ticks must be between DateTime.MinValue.Ticks and DateTime.MaxValue.Ticks. (Parameter 'ticks')")
	}
	return &keyset{ticks: ticks, id: id}, nil
}

// formatContinuationToken is the token Storage emits for the last row of a full page.
func formatContinuationToken(k keyset) string {
	return strconv.FormatInt(k.ticks, 10) + ";" + strconv.FormatInt(k.id, 10)
}

// dateOps are the operators Storage has SQL parameters for; any other operator is accepted
// and then has no effect, since no parameter of that name exists.
var dateOps = map[string]bool{"gt": true, "gte": true, "lt": true, "lte": true, "eq": true}

// dateCond is one "<op>:<value>" expression. For created and lastChanged the value is a
// timestamp (ticks); for dueBefore, visibleAfter and process.ended Storage compares strings.
type dateCond struct {
	op    string
	ticks int64
	str   string
}

// parseDateExprs parses the repeatable date parameter name. Each value is "<op>:<date>";
// a value without ':', an unparsable timestamp or the same operator twice is
// "Invalid date expression".
func parseDateExprs(name string, values []string, asString bool) ([]dateCond, error) {
	seen := map[string]bool{}
	var out []dateCond
	for _, v := range values {
		op, rest, ok := strings.Cut(v, ":")
		bad := wireError(fmt.Sprintf("Invalid date expression: %s for query key: %s", v, name))
		if !ok || v == "" || seen[op] {
			return nil, bad
		}
		seen[op] = true
		c := dateCond{op: op, str: rest}
		if !asString {
			t, ok := parseDotNetDate(rest)
			if !ok {
				return nil, bad
			}
			c.ticks = toTicks(t)
		}
		if dateOps[op] {
			out = append(out, c)
		}
	}
	return out, nil
}

// dateLayouts approximate what DateTime.Parse accepts in the invariant culture for ISO-style
// input. A value without offset is taken as UTC (the service runs in UTC).
var dateLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006-01",
}

func parseDotNetDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
