// Package apperr is the service's one vocabulary of expected failures. Capability packages
// return these; the HTTP layer maps each Kind to one status, so no package below it knows HTTP.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an expected failure.
type Kind int

const (
	KindInvalid      Kind = iota + 1 // the request is malformed (400)
	KindNotFound                     // the resource does not exist (404)
	KindConflict                     // the request conflicts with stored state (409)
	KindTooLarge                     // a body or a result is over a limit (413)
	KindUnsupported                  // wrong media type (415)
	KindUnauthorized                 // missing or bad credentials (401)
	KindUnavailable                  // a dependency is down (503)
	// KindInsufficientStorage: storing the request would take a shared store past its quota
	// (507), as when all unfinalized uploads together would exceed the configured total.
	KindInsufficientStorage
)

// FieldError names one bad field, query parameter or form field.
type FieldError struct {
	Field   string
	Message string
}

// Error is an expected failure with a message safe to show to the client.
type Error struct {
	Kind   Kind
	Detail string
	Fields []FieldError
	Err    error // the cause, for logs only; never shown to clients
	// RetryAfter is when a client may try again (the Retry-After of a 503); zero means
	// the HTTP layer's default.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports a malformed request; fields name each bad input.
func Invalid(detail string, fields ...FieldError) *Error {
	return &Error{Kind: KindInvalid, Detail: detail, Fields: fields}
}

// InvalidField reports one bad input, named in both the detail and the field list.
func InvalidField(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: KindInvalid, Detail: field + ": " + msg, Fields: []FieldError{{Field: field, Message: msg}}}
}

// NotFound reports an unknown resource.
func NotFound(detail string) *Error { return &Error{Kind: KindNotFound, Detail: detail} }

// Conflict reports a clash with stored state.
func Conflict(format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Detail: fmt.Sprintf(format, args...)}
}

// TooLarge reports a body or result over a limit.
func TooLarge(format string, args ...any) *Error {
	return &Error{Kind: KindTooLarge, Detail: fmt.Sprintf(format, args...)}
}

// InsufficientStorage reports a store shared by all clients that is at its quota: unlike
// TooLarge, the same request may succeed once others free space.
func InsufficientStorage(format string, args ...any) *Error {
	return &Error{Kind: KindInsufficientStorage, Detail: fmt.Sprintf(format, args...)}
}

// Unsupported reports a body of the wrong media type.
func Unsupported(format string, args ...any) *Error {
	return &Error{Kind: KindUnsupported, Detail: fmt.Sprintf(format, args...)}
}

// Busy reports a limit the server is at (a kind of work at its cap, a query past its time
// limit): a 503 the client should retry after retryAfter. The detail names the limit.
func Busy(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Kind: KindUnavailable, Detail: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
