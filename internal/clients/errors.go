package clients

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"portal/internal/maskinporten"
	"portal/internal/problem"
)

// formFields maps the self-service API's field identifiers to the portal's form fields.
var formFields = map[string]string{
	"client_name": "name",
	"description": "description",
	"scopes":      "scopes",
}

// refused reports whether Digdir answered with a definite refusal (4xx), or the request was
// never sent (an open circuit breaker, no admin token): either way it was not carried out.
// Anything else after a write was sent (timeout, reset, 5xx, unreadable answer) leaves its
// outcome unknown.
func refused(err error) bool {
	var ae *maskinporten.APIError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 || maskinporten.NotSent(err)
}

// upstreamProblem turns an upstream failure into words. what names the operation ("create the
// integration"); unknownOutcome is said when a write may have happened nonetheless.
func upstreamProblem(env *envState, what string, err error, unknownOutcome string) error {
	var ae *maskinporten.APIError
	if errors.As(err, &ae) {
		corr := ""
		if ae.CorrelationID != "" {
			corr = " (Digdir's correlation id: " + ae.CorrelationID + ")"
		}
		switch {
		case ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict || ae.Status == http.StatusUnprocessableEntity:
			fields := map[string]string{}
			var general []string
			for _, f := range ae.Errors {
				if name, ok := formFields[f.FieldIdentifier]; ok && f.IsFieldError {
					fields[name] = strings.TrimSpace(strings.Join(nonEmpty(fields[name], f.ErrorMessage), "; "))
				} else {
					general = append(general, f.ErrorMessage)
				}
			}
			msg := fmt.Sprintf("Digdir refused to %s in %s", what, env.label())
			if len(general) > 0 {
				msg += ": " + strings.Join(general, "; ")
			} else if d := strings.Trim(ae.Description, ", "); d != "" && len(fields) == 0 {
				msg += ": " + d
			}
			pe := problem.Invalid(msg+"."+corr+" Nothing was changed.", fields)
			pe.Err = err
			return pe
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return problem.Wrap(problem.KindUpstream, fmt.Sprintf("Digdir did not let the portal's admin client %s in %s (%d)%s. "+
				"Check that the admin client has the idporten:dcr.* scopes; an administrator sees its health under the environment's page. Nothing was changed.",
				what, env.label(), ae.Status, corr), err)
		case ae.Status == http.StatusNotFound:
			return problem.Wrap(problem.KindNotFound, fmt.Sprintf("Digdir does not know this integration in %s any more%s.", env.label(), corr), err)
		case ae.Status >= 500 && unknownOutcome != "":
			return problem.Wrap(problem.KindUpstream, fmt.Sprintf("Digdir's self-service API in %s failed (%d) while asked to %s%s. %s",
				env.label(), ae.Status, what, corr, unknownOutcome), err)
		case ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests:
			// A refusal: asking again the same way gets the same answer.
			return problem.Wrap(problem.KindUpstream, fmt.Sprintf("Digdir's self-service API in %s refused to %s (%d)%s. Nothing was changed.",
				env.label(), what, ae.Status, corr), err)
		default:
			return problem.Wrap(problem.KindUpstream, fmt.Sprintf("Digdir's self-service API in %s failed (%d) while asked to %s%s. Nothing was changed; try again in a moment.",
				env.label(), ae.Status, what, corr), err)
		}
	}
	var pe *problem.Error
	if errors.As(err, &pe) {
		return err
	}
	var open *maskinporten.CircuitOpenError
	if errors.As(err, &open) {
		// Nothing was sent, so nothing was changed, whatever the operation.
		return problem.Wrap(problem.KindUpstream, fmt.Sprintf("%s, so it did not ask Digdir to %s in %s. Nothing was changed; try again in %s.",
			open.Error(), what, env.label(), wholeSeconds(open.RetryIn)), err)
	}
	reason := "could not be reached"
	if errors.Is(err, context.DeadlineExceeded) {
		reason = "did not answer in time"
	} else if strings.Contains(err.Error(), "decode response") {
		reason = "gave an answer the portal cannot read"
	}
	if errors.Is(err, maskinporten.ErrNotSent) {
		// The admin token failed: Maskinporten, not Digdir's API, is the one at fault.
		var me *maskinporten.Error
		if errors.As(err, &me) {
			if msg := adminTokenRefusal(env, me); msg != "" {
				return problem.Wrap(problem.KindUpstream, fmt.Sprintf("%s, so it did not ask Digdir to %s. Nothing was changed. %s",
					msg, what, "This will not pass by itself: an administrator must correct the admin client's configuration (its state is on the environment's page)."), err)
			}
			reason = fmt.Sprintf("answered %d %s", me.Status, me.Code)
		}
		return problem.Wrap(problem.KindUpstream, fmt.Sprintf("Maskinporten in %s %s when the portal asked for its admin token, so it did not ask Digdir to %s. "+
			"Nothing was changed; try again in a moment.", env.label(), reason, what), err)
	}
	if unknownOutcome != "" {
		return problem.Wrap(problem.KindUpstream, fmt.Sprintf("Digdir's self-service API in %s %s while asked to %s. %s", env.label(), reason, what, unknownOutcome), err)
	}
	return problem.Wrap(problem.KindUpstream, fmt.Sprintf("Digdir's self-service API in %s %s while asked to %s. Nothing was changed; try again in a moment.",
		env.label(), reason, what), err)
}

// adminTokenRefusal words a refusal of the portal's admin token that asking again will not
// change, or returns "" for one that may pass.
func adminTokenRefusal(env *envState, me *maskinporten.Error) string {
	switch {
	case me.NotOAuth():
		where := ""
		if env.Upstream != nil {
			where = " at " + env.Upstream.TokenEndpoint()
		}
		return fmt.Sprintf("Maskinporten in %s answered %d without an OAuth error%s when the portal asked for its admin token: "+
			"the token endpoint URL is probably wrong (check the environment's maskinporten_issuer)", env.label(), me.Status, where)
	case me.Permanent():
		code := me.Code
		if me.MPCode != "" {
			code += ", " + me.MPCode
		}
		msg := fmt.Sprintf("Maskinporten in %s refused the portal's admin client (%d %s)", env.label(), me.Status, code)
		if m := me.Message(); m != "" {
			msg += ": " + strings.TrimSuffix(m, ".")
		}
		return msg
	}
	return ""
}

// wholeSeconds writes d rounded up to whole seconds, at least one: "30 s".
func wholeSeconds(d time.Duration) string {
	return fmt.Sprintf("%d s", max(1, int(math.Ceil(d.Seconds()))))
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// problemMessage is an error's message fit for a page: a problem's own words, or a generic line.
func problemMessage(err error) string {
	if pe, ok := problem.As(err); ok && pe.Message != "" {
		return pe.Message
	}
	return "the sync failed; the portal's log has the details"
}
