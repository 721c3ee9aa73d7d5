package httpapi

import (
	"context"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/auth"
)

// Four-eyes decisions: some bank operations take effect only once a
// second operator confirms them (package foureyes). The HTTP layer only
// gives that package a place to stand: a middleware after the operator
// check on every bank operation (HoldDecisions), and a mark on a
// confirmed decision's request, which acts as the confirming operator.

// HoldDecisions sets the middleware that may hold a bank operation back
// as a proposal instead of running it; it runs after the operator and
// role check. Call it before serving.
func (s *Server) HoldDecisions(mw func(ctx huma.Context, next func(huma.Context))) { s.hold = mw }

func (s *Server) holdDecision(ctx huma.Context, next func(huma.Context)) {
	if s.hold == nil {
		next(ctx)
		return
	}
	s.hold(ctx, next)
}

// Decision is a proposal a second operator confirmed, being carried out.
type Decision struct {
	// ProposalID is the proposal confirmed.
	ProposalID string
	// ProposedBy is who proposed it (a Caller's String).
	ProposedBy string
	// Operator is who confirmed it; the operation acts as them.
	Operator *auth.Operator
}

type decisionKey struct{}

// ConfirmDecision returns ctx marking its request as the confirmed
// decision d: the bank API lets it through as d.Operator, and the
// four-eyes middleware does not hold it again. Only code in this process
// can set it; no header or token does.
func ConfirmDecision(ctx context.Context, d Decision) context.Context {
	return context.WithValue(ctx, decisionKey{}, d)
}

// ConfirmedDecision returns the confirmed decision a request carries out,
// if it is one.
func ConfirmedDecision(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(Decision)
	return d, ok
}
