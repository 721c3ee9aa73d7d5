package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/textrule"
)

// Problem is an RFC 9457 problem detail with a stable machine code. Every
// error response of the platform has this shape.
type Problem struct {
	Type      string              `json:"type" doc:"URI reference identifying the problem type"`
	Title     string              `json:"title" doc:"Short summary of the problem type"`
	Status    int                 `json:"status" doc:"HTTP status code"`
	Detail    string              `json:"detail,omitempty" doc:"What went wrong in this occurrence"`
	Code      string              `json:"code" doc:"Stable machine-readable code, e.g. insufficient_funds"`
	RequestID string              `json:"request_id,omitempty" doc:"The X-Request-Id of the failed request"`
	Errors    []*huma.ErrorDetail `json:"errors,omitempty" doc:"Individual validation errors"`

	headers http.Header
}

func (p *Problem) Error() string  { return p.Code + ": " + p.Detail }
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes huma send problems as application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" || ct == "" {
		return "application/problem+json"
	}
	return ct
}

// GetHeaders lets a problem carry response headers such as Retry-After.
func (p *Problem) GetHeaders() http.Header { return p.headers }

// kindStatus is the one mapping from domain error kinds to HTTP statuses.
var kindStatus = map[causeway.Kind]int{
	causeway.EINVALID:      http.StatusUnprocessableEntity,
	causeway.EBADREQUEST:   http.StatusBadRequest,
	causeway.ENOTFOUND:     http.StatusNotFound,
	causeway.ECONFLICT:     http.StatusConflict,
	causeway.EUNAUTHORIZED: http.StatusUnauthorized,
	causeway.EFORBIDDEN:    http.StatusForbidden,
	causeway.ERATELIMIT:    http.StatusTooManyRequests,
	causeway.EUNAVAILABLE:  http.StatusServiceUnavailable,
	causeway.EINTERNAL:     http.StatusInternalServerError,
}

// statusCode names the machine code for errors that carry only a status,
// such as huma's own validation and body errors.
var statusCode = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusNotAcceptable:         "not_acceptable",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "body_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnprocessableEntity:   "validation_failed",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusInternalServerError:   "internal",
}

// NewProblem builds a problem for status with a code and detail.
func NewProblem(status int, code, detail string) *Problem {
	return &Problem{
		Type:   "https://causeway.dev/problems/" + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// ProblemFor converts any error to a problem: a causeway.Error by its kind
// and code, a bare status by the status; anything else is a 500 whose detail
// does not leak internals.
func ProblemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var te *textrule.Error
	if errors.As(err, &te) {
		p := NewProblem(http.StatusUnprocessableEntity, textrule.Code, te.Error())
		p.Errors = []*huma.ErrorDetail{{Location: te.Location, Message: te.Reason}}
		return p
	}
	var ce *causeway.Error
	if errors.As(err, &ce) {
		p := NewProblem(kindStatus[ce.Kind], ce.Code, ce.Message)
		if ce.RetryAfter > 0 {
			// Whole seconds, rounded up: a client that waits this long is
			// not refused again for the same reason.
			secs := int64((ce.RetryAfter + time.Second - 1) / time.Second)
			p.headers = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
		}
		return p
	}
	return NewProblem(http.StatusInternalServerError, "internal", "an internal error occurred; the request id identifies it in the logs")
}

// huma calls newError for its own errors (validation, body, content type)
// and for every error a handler returns. This is the single place where
// errors become HTTP: domain errors map by kind, the rest by status.
func newError(ctx context.Context, status int, msg string, errs ...error) *Problem {
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ce *causeway.Error
		var p *Problem
		if errors.As(err, &p) || errors.As(err, &ce) {
			p := ProblemFor(err)
			p.RequestID = RequestID(ctx)
			if p.Status >= 500 {
				logger(ctx).ErrorContext(ctx, "request failed", "error", err.Error(), "code", p.Code)
			}
			return p
		}
	}
	if status >= 500 {
		// An error that is not a domain error is a bug: log it with the
		// request id, answer without internals.
		attrs := []any{"status", status, "message", msg}
		for _, err := range errs {
			if err != nil {
				attrs = append(attrs, "error", err.Error())
			}
		}
		logger(ctx).ErrorContext(ctx, "request failed", attrs...)
		p := ProblemFor(errors.New(msg))
		p.Status = status
		p.Title = http.StatusText(status)
		p.RequestID = RequestID(ctx)
		return p
	}
	code, ok := statusCode[status]
	if !ok {
		code = "error"
	}
	p := NewProblem(status, code, msg)
	p.RequestID = RequestID(ctx)
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d huma.ErrorDetailer
		if errors.As(err, &d) {
			detail := d.ErrorDetail()
			// A problem never echoes text the client sent: the location
			// names the field, and the text may be a password or the
			// 100,000 characters a maxLength refused.
			if _, ok := detail.Value.(string); ok {
				detail.Value = nil
			}
			p.Errors = append(p.Errors, detail)
		} else {
			p.Errors = append(p.Errors, &huma.ErrorDetail{Message: err.Error()})
		}
	}
	if len(p.Errors) == 1 && p.Detail == "validation failed" || p.Detail == "" && len(p.Errors) > 0 {
		p.Detail = p.Errors[0].Message
	}
	return p
}

func init() {
	// huma keeps its error constructor and its array schemas' nullability
	// in package variables; this package is the only one that sets them.
	// Arrays are not nullable: generated clients get []T, not *[]T, and
	// fillNilSlices keeps the promise.
	huma.DefaultArrayNullable = false
	huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		return newError(hctx.Context(), status, msg, errs...)
	}
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return newError(context.Background(), status, msg, errs...)
	}
}

// HandlerError is err as a huma handler should return it when it may
// carry a Retry-After (causeway.Error.RetryAfter): huma sends the headers
// of the error a handler returns, not of the problem it turns it into.
// Other errors come back as they are.
func HandlerError(ctx context.Context, err error) error {
	var ce *causeway.Error
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		return newError(ctx, http.StatusInternalServerError, "", err)
	}
	return err
}

// WriteProblem writes err as a problem+json response, for handlers outside
// huma (plain net/http routes, middleware).
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := newError(r.Context(), http.StatusInternalServerError, "", err)
	for k, vs := range p.headers {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) {
	json.NewEncoder(w).Encode(v)
}
