package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Error is a response other than 2xx: the platform's RFC 9457 problem
// (application/problem+json). Code is the stable machine code to branch on
// (insufficient_funds, too_many_decimals, customer_not_found, ...); quote
// RequestID when you ask the bank about a failed call. A refused token
// request is an Error too, with the OAuth2 error as Code (invalid_client).
type Error struct {
	Status     int           // HTTP status
	Code       string        // machine code
	Title      string        // short summary of the status
	Detail     string        // what went wrong in this request
	Type       string        // URI reference of the problem type
	RequestID  string        // the request's X-Request-Id
	Errors     []FieldError  // individual validation errors, if any
	RetryAfter time.Duration // the Retry-After header (429, 409 idempotency_in_progress), 0 if absent

	cause error
}

// FieldError is one validation error of a request: where (e.g.
// "body.amount") and what.
type FieldError struct {
	Message  string `json:"message"`
	Location string `json:"location,omitempty"`
}

// Error returns "causeway: <code> (<status> <title>): <detail> [request <id>]".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("causeway: ")
	if e.Code != "" {
		b.WriteString(e.Code + " ")
	}
	fmt.Fprintf(&b, "(%d %s)", e.Status, e.Title)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// Unwrap returns the error the Error was made from, if any: the
// *oauth2.RetrieveError of a refused token request.
func (e *Error) Unwrap() error { return e.cause }

// IsNotFound reports whether err is or wraps an *Error with status 404: the
// resource does not exist or belongs to another app (the platform does not
// tell the two apart).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// maxErrorBody bounds what is read of an error response.
const maxErrorBody = 64 << 10

// problem is the wire form of an RFC 9457 problem.
type problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	Code      string       `json:"code"`
	RequestID string       `json:"request_id"`
	Errors    []FieldError `json:"errors"`
}

// errorFrom turns a non-2xx response into an *Error. A body that is not a
// problem (from a proxy in front of the platform, say) still gives the
// status, and its start as the detail.
func errorFrom(res *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	e := &Error{
		Status:     res.StatusCode,
		Title:      http.StatusText(res.StatusCode),
		RequestID:  res.Header.Get("X-Request-Id"),
		RetryAfter: retryAfter(res.Header),
	}
	var p problem
	if json.Unmarshal(body, &p) == nil && (p.Code != "" || p.Title != "" || p.Detail != "") {
		e.Type, e.Code, e.Detail, e.Errors = p.Type, p.Code, p.Detail, p.Errors
		if p.Title != "" {
			e.Title = p.Title
		}
		if p.RequestID != "" {
			e.RequestID = p.RequestID
		}
		return e
	}
	e.Detail = snippet(body)
	return e
}

// tokenError turns a refused token request into an *Error, so that callers
// handle one error type; other failures (the network) are wrapped as they
// are.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return fmt.Errorf("causeway: fetching an access token: %w", err)
	}
	e := &Error{
		Status:     re.Response.StatusCode,
		Code:       re.ErrorCode,
		Title:      http.StatusText(re.Response.StatusCode),
		Detail:     re.ErrorDescription,
		RequestID:  re.Response.Header.Get("X-Request-Id"),
		RetryAfter: retryAfter(re.Response.Header),
		cause:      err,
	}
	// The token endpoint answers RFC 6749 errors, but a failure of the
	// platform itself (a 503) is a problem.
	var p problem
	if e.Code == "" && json.Unmarshal(re.Body, &p) == nil && p.Code != "" {
		e.Type, e.Code, e.Detail = p.Type, p.Code, p.Detail
		if p.RequestID != "" {
			e.RequestID = p.RequestID
		}
	}
	if e.Code == "" && e.Detail == "" {
		e.Detail = snippet(re.Body)
	}
	return e
}

func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// snippet is the start of a body that is not a problem, for Detail.
func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
