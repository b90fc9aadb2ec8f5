package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"portal/internal/auth"
	"portal/internal/problem"
	"portal/templates"
)

// statusOf is the one place that maps domain error kinds to HTTP statuses.
func statusOf(err error) int {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he.Code
	}
	switch problem.KindOf(err) {
	case problem.KindNotFound:
		return http.StatusNotFound
	case problem.KindForbidden:
		return http.StatusForbidden
	case problem.KindInvalid:
		return http.StatusUnprocessableEntity
	case problem.KindConflict:
		return http.StatusConflict
	case problem.KindUpstream:
		return http.StatusBadGateway
	case problem.KindThrottled:
		return http.StatusTooManyRequests
	case problem.KindUnauthenticated:
		return http.StatusUnauthorized
	case problem.KindUnavailable:
		return http.StatusServiceUnavailable
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

var headings = map[int]string{
	http.StatusBadRequest:            "The request could not be understood",
	http.StatusUnauthorized:          "Sign in required",
	http.StatusForbidden:             "Not allowed",
	http.StatusNotFound:              "Page not found",
	http.StatusMethodNotAllowed:      "Not allowed here",
	http.StatusConflict:              "That did not work",
	http.StatusRequestEntityTooLarge: "Too much data",
	http.StatusUnprocessableEntity:   "Check what you entered",
	http.StatusTooManyRequests:       "Too many attempts",
	http.StatusBadGateway:            "An upstream service failed",
	http.StatusServiceUnavailable:    "The portal is busy",
	http.StatusGatewayTimeout:        "An upstream service did not answer in time",
	http.StatusInternalServerError:   "Something went wrong",
}

// messageOf is what a person reads: the domain's own message where it has one, a fixed text
// otherwise. Internal causes are logged, never shown.
func messageOf(err error, status int) string {
	if pe, ok := problem.As(err); ok && pe.Message != "" {
		return pe.Message
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && status < 500 {
		switch status {
		case http.StatusNotFound:
			return "There is nothing at this address. Check the link, or start from the overview."
		case http.StatusMethodNotAllowed:
			return "This address does not accept that kind of request."
		case http.StatusRequestEntityTooLarge:
			return "What you sent is larger than the portal accepts."
		}
		if m, ok := he.Message.(string); ok && m != "" {
			return m
		}
	}
	if status == http.StatusForbidden {
		return "You do not have access to this page."
	}
	if status >= 500 {
		return "The portal could not complete the request. Nothing was changed by the failed step. Try again, and quote the request id below if it keeps failing."
	}
	return http.StatusText(status)
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := statusOf(err)
	setRetryAfter(c, err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "request_id", requestID(c), "path", c.Request().URL.Path, "err", err)
	}
	msg := messageOf(err, status)
	c.Response().Header().Add("Vary", "HX-Request")
	if htmxPartial(c) {
		// htmx shows this text in the page's message region (static/js/portal.js).
		_ = c.String(status, msg+" (request id "+requestID(c)+")")
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	heading := headings[status]
	if heading == "" {
		heading = http.StatusText(status)
	}
	page := templates.ErrorPage(templates.ErrorProps{Layout: s.layout(c, heading, ""), Status: status, Heading: heading,
		Message: msg, RequestID: requestID(c)})
	if rerr := render(c, status, page); rerr != nil {
		s.log.Error("render error page", "request_id", requestID(c), "err", rerr)
		_ = c.String(status, msg)
	}
}

// setRetryAfter tells the client when a refused request may be tried again, when the refusal
// knows.
func setRetryAfter(c echo.Context, err error) {
	after, ok := auth.RetryAfter(err)
	if !ok {
		return
	}
	secs := int64(math.Ceil(after.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// htmxPartial reports whether the request is htmx asking for a part of a page. A history
// restore after a cache miss ("back" to a pushed URL) gets the whole page, as htmx swaps it
// into the body.
func htmxPartial(c echo.Context) bool {
	h := c.Request().Header
	return h.Get("HX-Request") == "true" && h.Get("HX-History-Restore-Request") != "true"
}
