package foureyes

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// maxBody bounds a kept request body; the guarded operations take small
// JSON documents.
const maxBody = 64 << 10

// hold is the bank API's middleware (httpapi.HoldDecisions): a call to a
// guarded operation whose action is on, and whose thresholds it passes,
// is kept as a proposal and answered 202 with it, instead of running. A
// confirmed proposal's own request runs.
func (s *Service) hold(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	action, guarded := operations[op.OperationID]
	if _, confirmed := httpapi.ConfirmedDecision(ctx.Context()); !guarded || confirmed || !s.Enabled(action) {
		next(ctx)
		return
	}
	r, _ := humago.Unwrap(ctx)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = causeway.Errorf(causeway.EINVALID, "body_too_large", "the request body is too large")
	}
	if err == nil && len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
		err = causeway.Errorf(causeway.EBADREQUEST, "invalid_json", "the request body is not JSON")
	}
	if err != nil {
		writeProblem(ctx, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	operator, _ := auth.OperatorFrom(ctx.Context())
	p, err := s.Hold(ctx.Context(), operator, op.OperationID, r.Method, r.URL.RequestURI(), ctx.Param("id"), bytes.TrimSpace(body))
	if err != nil {
		writeProblem(ctx, err)
		return
	}
	if p == nil {
		next(ctx)
		return
	}
	ctx.SetHeader("Content-Type", "application/json")
	ctx.SetHeader("Location", "/bank/v1/proposals/"+p.ID)
	ctx.SetStatus(http.StatusAccepted)
	_ = json.NewEncoder(ctx.BodyWriter()).Encode(p)
}

// Hold keeps a decision an operator makes outside the bank API (the
// console) as a proposal when the bank API would: when four-eyes guards
// operationID and the call passes its thresholds. It returns the
// proposal, or nil when the decision may be carried out at once. method,
// path and body are the /bank/v1 request the decision is, which runs
// when a second operator confirms it.
func (s *Service) Hold(ctx context.Context, op *auth.Operator, operationID, method, path, id string, body []byte) (*Proposal, error) {
	action, guarded := operations[operationID]
	if !guarded || !s.Enabled(action) {
		return nil, nil
	}
	if need, err := s.needs(ctx, action, id, body); err != nil || !need {
		return nil, err
	}
	role, _ := httpapi.OperationRole(operationID)
	return s.propose(ctx, op, action, operationID, string(role), method, path, body)
}

func writeProblem(ctx huma.Context, err error) {
	p := httpapi.ProblemFor(err)
	p.RequestID = httpapi.RequestID(ctx.Context())
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	_ = json.NewEncoder(ctx.BodyWriter()).Encode(p)
}

// needs reports whether a call for action needs a second operator: always,
// except new app limits within RateAbove and QuotaAbove, and the release
// of a held payment of at most PaymentAbove. A body it cannot read is
// held back: the operation refuses it when it is confirmed.
func (s *Service) needs(ctx context.Context, action, id string, body []byte) (bool, error) {
	switch action {
	case ActionAppLimits:
		var limits struct {
			RequestsPerSecond float64 `json:"requests_per_second"`
			DailyQuota        int64   `json:"daily_quota"`
		}
		if json.Unmarshal(body, &limits) != nil {
			return true, nil
		}
		return limits.RequestsPerSecond > s.cfg.RateAbove || limits.DailyQuota > s.cfg.QuotaAbove, nil
	case ActionPaymentRelease:
		if s.cfg.PaymentAmount == nil {
			return true, nil
		}
		amount, err := s.cfg.PaymentAmount(ctx, id)
		if causeway.ErrorKind(err) == causeway.ENOTFOUND {
			// A payment the bank does not have is the operation's 404.
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return amount > s.cfg.PaymentAbove, nil
	}
	return true, nil
}
