package portal

import (
	"encoding/json"
	"net/http"

	"github.com/causewayhq/causeway/internal/foureyes"
)

// Four-eyes in the console: a guarded decision made on a console page is
// kept as a proposal, made of the /bank/v1 request it is, exactly as the
// bank API keeps it; the proposals page lists what waits for a second
// operator, who confirms (the request then runs, as them) or rejects it.

// proposed holds back a console decision that needs a second operator
// and sends the operator to the proposals page; it reports whether it
// did. method, path, id and body are the decision as its /bank/v1
// request (operation operationID).
func (p *Portal) proposed(w http.ResponseWriter, r *http.Request, s *consoleSession, operationID, method, path, id string, body any) (bool, error) {
	if p.d.FourEyes == nil {
		return false, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return false, err
	}
	prop, err := p.d.FourEyes.Hold(r.Context(), s.Operator, operationID, method, path, id, b)
	if err != nil || prop == nil {
		return false, err
	}
	redirect(w, r, "/console/proposals?done=proposed")
	return true, nil
}

func (p *Portal) consoleProposals(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderProposals(w, r, s, outcome{http.StatusOK, nil})
}

// renderProposals shows the proposals: those waiting, or with ?all= every
// one; failed is a decision the service refused.
func (p *Portal) renderProposals(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome) error {
	ctx, cancel := bounded(r)
	defer cancel()
	var items []*foureyes.Proposal
	next := ""
	if p.d.FourEyes != nil {
		pg, err := p.d.FourEyes.Proposals(ctx, s.Caller(), r.URL.Query().Get("all") == "", 100, r.URL.Query().Get("cursor"))
		if err != nil {
			return err
		}
		items, next = pg.Data, pg.NextCursor
	}
	v := s.view("Approvals", "console-proposals")
	v.Notice, v.Error = notice(r), o.failed
	v.D = map[string]any{"Proposals": items, "Next": next, "All": r.URL.Query().Get("all") != "", "Me": s.Caller().String(),
		"Enabled": p.d.FourEyes != nil}
	p.render(w, r, o.status, "console_proposals", v)
	return nil
}

// consoleDecideProposal confirms or rejects a proposal as the operator
// logged in; the service refuses the proposer, an operator without the
// role and, in production, the admin token.
func (p *Portal) consoleDecideProposal(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if p.d.FourEyes == nil {
		return errNotFound()
	}
	id := r.PathValue("id")
	var prop *foureyes.Proposal
	var err error
	switch r.PathValue("decision") {
	case "confirm":
		prop, err = p.d.FourEyes.Confirm(r.Context(), s.Operator, id)
	case "reject":
		prop, err = p.d.FourEyes.Reject(r.Context(), s.Operator, id, r.PostFormValue("reason"))
	default:
		return errNotFound()
	}
	if isFormError(err) {
		return p.renderProposals(w, r, s, outcome{httpStatus(err), formError(err)})
	}
	if err != nil {
		return err
	}
	done := "proposal-rejected"
	switch prop.Status {
	case foureyes.StatusConfirmed:
		done = "confirmed"
	case foureyes.StatusFailed:
		done = "confirm-failed"
	}
	redirect(w, r, "/console/proposals?all=1&done="+done)
	return nil
}
