package altinn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DateOp is a Storage date comparison.
type DateOp string

// Date operators Storage understands.
const (
	GT  DateOp = "gt"
	GTE DateOp = "gte"
	LT  DateOp = "lt"
	LTE DateOp = "lte"
	EQ  DateOp = "eq"
)

// DateFilter is one "<op>:<datetime>" expression; repeat for ranges.
// Value may be partial ("2019-02"), as Storage accepts.
type DateFilter struct {
	Op    DateOp
	Value string
}

// At builds a filter for an exact time, in UTC.
func At(op DateOp, t time.Time) DateFilter {
	return DateFilter{Op: op, Value: t.UTC().Format(time.RFC3339)}
}

// ParseDateFilter reads "gt:2025-01-01" as typed in a form.
func ParseDateFilter(s string) (DateFilter, error) {
	op, v, ok := strings.Cut(strings.TrimSpace(s), ":")
	f := DateFilter{Op: DateOp(strings.ToLower(op)), Value: strings.TrimSpace(v)}
	if !ok {
		return DateFilter{}, fmt.Errorf("date filter %q: want <op>:<date>", s)
	}
	return f, f.check()
}

func (f DateFilter) check() error {
	switch f.Op {
	case GT, GTE, LT, LTE, EQ:
	default:
		return fmt.Errorf("date filter: operator %q is not gt, gte, lt, lte or eq", f.Op)
	}
	if f.Value == "" {
		return errors.New("date filter: no date")
	}
	return nil
}

func (f DateFilter) String() string { return string(f.Op) + ":" + f.Value }

// InstanceQuery is a Storage instance search. Org or AppID is required by
// Storage; zero members are not sent.
type InstanceQuery struct {
	Org                  string
	AppID                string // {org}/{app}
	IsComplete           *bool  // process.isComplete
	CurrentTask          string // process.currentTask
	ProcessEnded         []DateFilter
	Created              []DateFilter
	LastChanged          []DateFilter
	VisibleAfter         []DateFilter
	DueBefore            []DateFilter
	IsArchived           *bool
	IsSoftDeleted        *bool
	IsHardDeleted        *bool
	Confirmed            *bool
	ExcludeConfirmedBy   string
	InstanceOwnerPartyID string
	SearchString         string
	Size                 int    // Storage's default is 100
	ContinuationToken    string // as found (decoded once) in a next link
	Order                string // e.g. "desc:lastChanged" (default) or "asc:lastChanged"
}

// Values encodes q as Storage's query parameters.
func (q InstanceQuery) Values() (url.Values, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	setBool := func(k string, b *bool) {
		if b != nil {
			v.Set(k, strconv.FormatBool(*b))
		}
	}
	set("org", q.Org)
	set("appId", q.AppID)
	setBool("process.isComplete", q.IsComplete)
	set("process.currentTask", q.CurrentTask)
	for _, d := range []struct {
		key string
		fs  []DateFilter
	}{
		{"process.ended", q.ProcessEnded}, {"created", q.Created}, {"lastChanged", q.LastChanged},
		{"visibleAfter", q.VisibleAfter}, {"dueBefore", q.DueBefore},
	} {
		for _, f := range d.fs {
			if err := f.check(); err != nil {
				return nil, fmt.Errorf("%s: %w", d.key, err)
			}
			v.Add(d.key, f.String())
		}
	}
	setBool("status.isArchived", q.IsArchived)
	setBool("status.isSoftDeleted", q.IsSoftDeleted)
	setBool("status.isHardDeleted", q.IsHardDeleted)
	setBool("confirmed", q.Confirmed)
	set("excludeConfirmedBy", q.ExcludeConfirmedBy)
	set("instanceOwner.partyId", q.InstanceOwnerPartyID)
	set("searchString", q.SearchString)
	if q.Size < 0 {
		return nil, errors.New("size is negative")
	}
	if q.Size > 0 {
		v.Set("size", strconv.Itoa(q.Size))
	}
	set("continuationToken", q.ContinuationToken)
	set("order", q.Order)
	return v, nil
}

// Instances runs a query with an Altinn token.
func (c *Client) Instances(ctx context.Context, altinnToken string, q InstanceQuery) (*InstancePage, error) {
	v, err := q.Values()
	if err != nil {
		return nil, fmt.Errorf("altinn list instances: %w", err)
	}
	return c.instancesPage(ctx, altinnToken, v.Encode())
}

// ErrNoNextPage is returned by NextInstances on the last page.
var ErrNoNextPage = errors.New("no next page")

// NextInstances follows page.Next. Only its query is used, against this
// client's own Storage URL, so the token never goes to a host taken from a
// response.
func (c *Client) NextInstances(ctx context.Context, altinnToken string, page *InstancePage) (*InstancePage, error) {
	if page == nil || page.Next == "" {
		return nil, ErrNoNextPage
	}
	u, err := url.Parse(page.Next)
	if err != nil || !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/storage/api/v1/instances") {
		return nil, fmt.Errorf("altinn list instances: next link is not an instances query")
	}
	// RawQuery keeps Storage's double encoding of the continuation token.
	return c.instancesPage(ctx, altinnToken, u.RawQuery)
}

func (c *Client) instancesPage(ctx context.Context, token, rawQuery string) (*InstancePage, error) {
	u := c.InstancesURL()
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	var page InstancePage
	if err := c.getJSON(ctx, "list instances", u, token, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// splitInstanceID checks "{partyId}/{instanceGuid}".
func splitInstanceID(id string) (party, guid string, err error) {
	party, guid, ok := strings.Cut(id, "/")
	if !ok || !isDigits(party) || !isGUIDish(guid) {
		return "", "", fmt.Errorf("instance id %q is not {partyId}/{guid}", id)
	}
	return party, guid, nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isGUIDish(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return false
		}
	}
	return true
}

func (c *Client) instanceURL(id string) (string, error) {
	party, guid, err := splitInstanceID(id)
	if err != nil {
		return "", err
	}
	return c.InstancesURL() + "/" + party + "/" + guid, nil
}

// Instance reads one instance by "{partyId}/{instanceGuid}".
func (c *Client) Instance(ctx context.Context, altinnToken, instanceID string) (*Instance, error) {
	u, err := c.instanceURL(instanceID)
	if err != nil {
		return nil, fmt.Errorf("altinn get instance: %w", err)
	}
	var inst Instance
	if err := c.getJSON(ctx, "get instance", u, altinnToken, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// DataElements lists an instance's data elements.
func (c *Client) DataElements(ctx context.Context, altinnToken, instanceID string) ([]DataElement, error) {
	u, err := c.instanceURL(instanceID)
	if err != nil {
		return nil, fmt.Errorf("altinn list data elements: %w", err)
	}
	var out struct {
		DataElements []DataElement `json:"dataElements"`
	}
	if err := c.getJSON(ctx, "list data elements", u+"/dataelements", altinnToken, &out); err != nil {
		return nil, err
	}
	return out.DataElements, nil
}

// Download is an open data element body. The caller must Close it.
type Download struct {
	Body          io.ReadCloser
	ContentType   string
	Filename      string // from Content-Disposition, reduced to a base name; may be empty
	ContentLength int64  // -1 when unknown
}

// Data opens a data element for streaming; nothing is buffered. The
// configured timeout bounds the wait for the headers; reading the body is
// bounded only by ctx.
func (c *Client) Data(ctx context.Context, altinnToken, instanceID, dataID string) (*Download, error) {
	u, err := c.instanceURL(instanceID)
	if err != nil {
		return nil, fmt.Errorf("altinn download data: %w", err)
	}
	if !isGUIDish(dataID) {
		return nil, fmt.Errorf("altinn download data: data id %q is not a guid", dataID)
	}
	if altinnToken == "" {
		return nil, errors.New("altinn download data: no token")
	}
	// The timer bounds only the wait for the headers; its cause tells a circuit breaker
	// that the upstream was slow, not that the caller gave up.
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	timer := time.AfterFunc(c.timeout, func() { cancelCause(context.DeadlineExceeded) })
	resp, err := c.get(ctx, outgoing{op: "download data", url: u + "/data/" + dataID, token: altinnToken, stream: true})
	timedOut := !timer.Stop()
	if err != nil {
		cancel()
		if timedOut {
			err = fmt.Errorf("%w (no answer within %s)", err, c.timeout)
		}
		return nil, fmt.Errorf("altinn %w", err)
	}
	if resp.open == nil {
		cancel()
		return nil, ParseError("download data", resp.status, resp.body)
	}
	if timedOut {
		// Headers arrived just as the timer fired; the body is already cut.
		resp.open.Close()
		cancel()
		return nil, fmt.Errorf("altinn download data: %w", context.DeadlineExceeded)
	}
	d := &Download{
		Body:          &cancelOnClose{ReadCloser: resp.open, cancel: cancel},
		ContentType:   resp.header.Get("Content-Type"),
		Filename:      DispositionFilename(resp.header.Get("Content-Disposition")),
		ContentLength: -1,
	}
	if n, err := strconv.ParseInt(resp.header.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		d.ContentLength = n
	}
	return d, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel func()
	once   sync.Once
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.cancel)
	return err
}

// DispositionFilename extracts a safe base file name from a
// Content-Disposition header (filename* preferred), or "".
func DispositionFilename(h string) string {
	if h == "" || len(h) > 4096 {
		return ""
	}
	var name string
	if _, params, err := mime.ParseMediaType(h); err == nil {
		name = params["filename"] // mime folds filename* into filename
	} else if _, rest, ok := strings.Cut(h, "filename="); ok {
		// Servers sometimes leave spaces unquoted, which mime rejects.
		name, _, _ = strings.Cut(rest, ";")
		name = strings.Trim(strings.TrimSpace(name), `"`)
	}
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "." || name == ".." || len(name) > 255 {
		return ""
	}
	return name
}
