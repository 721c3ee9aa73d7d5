// Package causeway holds the few types every part of the platform shares:
// the domain error with its machine codes. Capability packages live under
// internal/; the HTTP layer maps Error to RFC 9457 problems in one place.
package causeway

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the class of a domain error. The HTTP layer maps each kind to one
// status code; nothing else in the code base knows about HTTP statuses.
type Kind string

// Error kinds.
const (
	EINVALID      Kind = "invalid"      // the input breaks a rule: 422
	EBADREQUEST   Kind = "bad_request"  // the input cannot be read: 400
	ENOTFOUND     Kind = "not_found"    // no such resource, or not the caller's: 404
	ECONFLICT     Kind = "conflict"     // the resource's state forbids it: 409
	EUNAUTHORIZED Kind = "unauthorized" // no or bad credentials: 401
	EFORBIDDEN    Kind = "forbidden"    // credentials fine, permission missing: 403
	ERATELIMIT    Kind = "rate_limited" // too many requests: 429
	EUNAVAILABLE  Kind = "unavailable"  // a dependency (database, bus) is down: 503
	EINTERNAL     Kind = "internal"     // a bug: 500
)

// Error is a domain error: a kind for the transport, a stable machine code
// (for example "insufficient_funds") for clients, and a human message.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// RetryAfter, when positive, is how long the caller should wait before
	// trying again; the HTTP layer sends it as Retry-After (ERATELIMIT).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error of the given kind and code with a formatted message.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the kind of err if it is or wraps an *Error, and EINTERNAL
// otherwise.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EINTERNAL
}

// ErrorCode returns the machine code of err if it is or wraps an *Error, and
// "internal" otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "internal"
}
