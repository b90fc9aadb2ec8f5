package tryit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
)

// Instances runs a Storage query with the Altinn token (step 4).
func (c *Chain) Instances(ctx context.Context, q altinn.InstanceQuery) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.needAltinn(StepInstances); !ok {
		return st
	}
	v, err := q.Values()
	if err != nil {
		return c.failed(StepInstances, "The query is invalid: "+err.Error()+".",
			Finding{Code: StorageDateFilter, Severity: SeverityError, Title: "The query is invalid", Cause: err.Error() + ".",
				Fix: "Write date filters as <op>:<date>, with op gt, gte, lt, lte or eq."})
	}
	u := c.env.Altinn.InstancesURL() + "?" + v.Encode()
	return c.storage(ctx, StepInstances, u, &q, func(ctx context.Context) (Response, error) {
		page, err := c.env.Altinn.Instances(ctx, c.altinnToken, q)
		if err != nil {
			return Response{}, err
		}
		c.page, c.query = page, &q
		return Response{Instances: page}, nil
	})
}

// NextInstances follows the last page's next link (step 4, paging).
func (c *Chain) NextInstances(ctx context.Context) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.needAltinn(StepInstances); !ok {
		return st
	}
	if c.page == nil || c.page.Next == "" {
		return c.failed(StepInstances, "There is no next page.")
	}
	u := c.page.Next
	if pu, err := url.Parse(c.page.Next); err == nil {
		u = c.env.Altinn.InstancesURL() + "?" + pu.RawQuery
	}
	return c.storage(ctx, StepInstances, u, c.query, func(ctx context.Context) (Response, error) {
		page, err := c.env.Altinn.NextInstances(ctx, c.altinnToken, c.page)
		if err != nil {
			return Response{}, err
		}
		c.page = page
		return Response{Instances: page}, nil
	})
}

// Instance reads one instance, with its data elements (step 4, details).
func (c *Chain) Instance(ctx context.Context, instanceID string) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.needAltinn(StepInstance); !ok {
		return st
	}
	u := c.env.Altinn.InstancesURL() + "/" + instanceID
	return c.storage(ctx, StepInstance, u, c.query, func(ctx context.Context) (Response, error) {
		inst, err := c.env.Altinn.Instance(ctx, c.altinnToken, instanceID)
		if err != nil {
			return Response{}, err
		}
		return Response{Instance: inst}, nil
	})
}

// Download opens a data element for streaming (step 4, download). On success the caller
// copies the Download's body to the person and closes it; nothing is stored.
func (c *Chain) Download(ctx context.Context, instanceID, dataID string) (Step, *altinn.Download) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.needAltinn(StepData); !ok {
		return st, nil
	}
	var dl *altinn.Download
	u := c.env.Altinn.InstancesURL() + "/" + instanceID + "/data/" + dataID
	st := c.storage(ctx, StepData, u, c.query, func(ctx context.Context) (Response, error) {
		d, err := c.env.Altinn.Data(ctx, c.altinnToken, instanceID, dataID)
		if err != nil {
			return Response{}, err
		}
		dl = d
		return Response{ContentType: d.ContentType, Download: &DownloadInfo{Filename: d.Filename, ContentType: d.ContentType,
			ContentLength: d.ContentLength}}, nil
	})
	if strings.Contains(st.Curl, "curl -sS ") {
		st.Curl = strings.Replace(st.Curl, "curl -sS ", "curl -sS -OJ ", 1)
		st.curlT = st.Curl
	}
	return st, dl
}

func (c *Chain) needAltinn(name string) (Step, bool) {
	switch {
	case c.env.Altinn == nil:
		return c.failed(name, "No Altinn platform is configured for "+c.env.label()+"."), false
	case c.altinnToken == "":
		return c.failed(name, "There is no Altinn token yet: exchange the Maskinporten token first (step 3)."), false
	}
	return Step{}, true
}

// storage runs one Storage call as a step.
func (c *Chain) storage(ctx context.Context, name, u string, q *altinn.InstanceQuery, call func(context.Context) (Response, error)) Step {
	start := time.Now()
	st := newStep(name, c.now())
	tr := &maskinporten.Trace{}
	resp, err := call(maskinporten.WithTrace(ctx, tr))
	st.Total = time.Since(start)
	st.fromTrace(tr.Calls(), "")
	ct := st.Response.ContentType
	st.Response = resp
	if st.Response.ContentType == "" {
		st.Response.ContentType = ct
	}
	if st.Request != nil {
		u = st.Request.URL
	}
	st.in = secret{placeholder: PlaceholderAltinn, value: c.altinnToken}
	st.curlT = fmt.Sprintf("curl -sS %s \\\n  -H \"Authorization: Bearer %s\" \\\n  -H 'Accept: application/json'", shellQuote(u), PlaceholderAltinn)
	st.Curl = st.curlT
	var aErr *altinn.Error
	switch {
	case err == nil:
		st.OK = true
	case errors.As(err, &aErr):
		st.Error = aErr.Error()
		st.Response.Body = errorText(aErr)
		st.Findings = ExplainStorage(aErr, c.altinnToken, q)
	default:
		var f Finding
		if len(st.Attempts) == 0 && ctx.Err() == nil {
			// Refused before any call, such as a malformed instance id: say it as it is.
			f = Finding{Code: StorageBadRequest, Severity: SeverityError, Title: "The request cannot be made", Cause: err.Error() + "."}
		} else {
			f = ExplainTransport(err, "Altinn Storage", st.Total)
		}
		st.Error = f.Title + "."
		st.Findings = []Finding{f}
	}
	return c.record(st)
}
