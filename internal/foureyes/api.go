package foureyes

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// Register adds the proposals routes under /bank/v1, holds back the
// guarded operations (httpapi.HoldDecisions) and documents the 202 they
// may answer, on operations registered before and after it. Confirmed
// proposals run through srv.
func (s *Service) Register(srv *httpapi.Server) {
	s.handler = srv
	srv.HoldDecisions(s.hold)
	oapi := srv.API.OpenAPI()
	for _, item := range oapi.Paths {
		for _, op := range []*huma.Operation{item.Post, item.Put} {
			s.document(op)
		}
	}
	oapi.OnAddOperation = append(oapi.OnAddOperation, func(_ *huma.OpenAPI, op *huma.Operation) { s.document(op) })

	h := &handlers{s: s}
	tags := []string{"Operators"}
	huma.Register(srv.Bank, httpapi.Route{ID: "bank-list-proposals", Method: http.MethodGet, Path: "/proposals", Tags: tags,
		Summary:     "List four-eyes proposals",
		Description: "Decisions held back for a second operator, newest first; pending=true narrows to those still waiting (not expired)."}.Bank(), h.list)
	huma.Register(srv.Bank, httpapi.Route{ID: "bank-get-proposal", Method: http.MethodGet, Path: "/proposals/{id}", Tags: tags,
		Summary:     "Get a proposal",
		Description: "A proposal with the request it holds and, once decided, who decided and the operation's answer."}.Bank(), h.get)
	huma.Register(srv.Bank, httpapi.Route{ID: "bank-confirm-proposal", Method: http.MethodPost, Path: "/proposals/{id}/confirm", Tags: tags,
		Summary: "Confirm a proposal",
		Description: "Carries out the request as proposed, acting as the confirming operator, who must hold the proposal's role and not be " +
			"its proposer (403 same_operator); the admin token may not confirm in production mode (403 operator_only). The " +
			"answer holds the operation's own answer in result; an operation that refuses leaves the proposal failed. A " +
			"proposal decided already or expired is 409 proposal_not_pending."}.Bank(), h.confirm)
	huma.Register(srv.Bank, httpapi.Route{ID: "bank-reject-proposal", Method: http.MethodPost, Path: "/proposals/{id}/reject", Tags: tags,
		Summary:     "Reject a proposal",
		Description: "Turns a proposal down, with a reason; the same rules as confirming, except that the admin token may reject."}.Bank(), h.reject)
}

// document marks a guarded operation's 202 answer in the OpenAPI
// document.
func (s *Service) document(op *huma.Operation) {
	if op == nil {
		return
	}
	action, ok := operations[op.OperationID]
	if !ok || op.Responses["202"] != nil {
		return
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	op.Responses["202"] = &huma.Response{Description: "Held for a second operator: a proposal (see /bank/v1/proposals).",
		Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Ref: "#/components/schemas/Proposal"}}}}
	op.Description = strings.TrimSpace(op.Description + "\n\nFour-eyes: where the node's --four-eyes names " + action +
		", the call is kept as a proposal (202) until a second operator confirms it (see /bank/v1/proposals).")
}

type handlers struct{ s *Service }

type listInput struct {
	Pending bool   `query:"pending" doc:"Only the proposals still waiting for a second operator"`
	Limit   int    `query:"limit" minimum:"0" maximum:"200"`
	Cursor  string `query:"cursor" maxLength:"512"`
}

type rejectInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Reason string `json:"reason,omitempty" maxLength:"500"`
	}
}

func operatorFrom(ctx context.Context) (*auth.Operator, error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "an operator is required")
	}
	return op, nil
}

func (h *handlers) list(ctx context.Context, in *listInput) (*httpapi.Out[*page.Page[*Proposal]], error) {
	return httpapi.Reply(h.s.Proposals(ctx, auth.CallerFrom(ctx), in.Pending, in.Limit, in.Cursor))
}

func (h *handlers) get(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Proposal], error) {
	return httpapi.Reply(h.s.Proposal(ctx, auth.CallerFrom(ctx), in.ID))
}

func (h *handlers) confirm(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Proposal], error) {
	op, err := operatorFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.Confirm(ctx, op, in.ID))
}

func (h *handlers) reject(ctx context.Context, in *rejectInput) (*httpapi.Out[*Proposal], error) {
	op, err := operatorFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.Reject(ctx, op, in.ID, in.Body.Reason))
}
