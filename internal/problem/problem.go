// Package problem gives domain errors a kind and a message a person can act on. The kind decides
// the HTTP status in one place (web); the wrapped cause stays for the log and never reaches a page.
package problem

import (
	"errors"
	"fmt"
)

// Kind classifies a domain error.
type Kind int

const (
	KindInternal Kind = iota
	KindNotFound
	KindForbidden
	KindInvalid
	KindConflict
	KindUpstream
	KindThrottled
	KindUnauthenticated
	// KindUnavailable: the portal is too busy right now; the same request may work shortly.
	KindUnavailable
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindForbidden:
		return "forbidden"
	case KindInvalid:
		return "invalid"
	case KindConflict:
		return "conflict"
	case KindUpstream:
		return "upstream"
	case KindThrottled:
		return "throttled"
	case KindUnauthenticated:
		return "unauthenticated"
	case KindUnavailable:
		return "unavailable"
	}
	return "internal"
}

// Error is a domain error: Message is safe to show; Fields holds per-field messages for forms.
type Error struct {
	Kind    Kind
	Message string
	Fields  map[string]string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New makes an error of a kind with a message for people.
func New(k Kind, msg string) *Error { return &Error{Kind: k, Message: msg} }

// Wrap makes an error of a kind with a message for people, keeping cause for the log.
func Wrap(k Kind, msg string, cause error) *Error { return &Error{Kind: k, Message: msg, Err: cause} }

// Invalid reports form input errors, one message per field.
func Invalid(msg string, fields map[string]string) *Error {
	return &Error{Kind: KindInvalid, Message: msg, Fields: fields}
}

// KindOf returns the kind of err, KindInternal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// As returns err's *Error, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
