package foureyes

import (
	"context"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// DefaultRecoverAfter is how long a confirmed proposal may stay executing
// before Recover takes its confirmation for interrupted: far longer than
// any guarded operation takes.
const DefaultRecoverAfter = 2 * time.Minute

// maxRecover bounds the proposals one Recover finishes; the next tick
// takes the rest.
const maxRecover = 100

// Jobs are four-eyes' periodic jobs, run by the node holding the lease.
func (s *Service) Jobs() []leader.Job {
	return []leader.Job{{Name: "finish interrupted four-eyes confirmations", Every: time.Minute, Do: s.Recover}}
}

// Recover finishes the confirmations a node stopped in the middle of:
// proposals claimed by a confirmer more than RecoverAfter ago whose
// outcome was never recorded. When the audit trail holds the change that
// carries the proposal out, it was committed and the proposal is
// confirmed; otherwise the kept request runs again, as its confirmer as
// they stand now (still active, still holding the role), and its answer
// is recorded as Confirm records it. Running a request twice is safe:
// every guarded operation is a compare-and-set. It returns how many
// proposals it finished.
func (s *Service) Recover(ctx context.Context) (int64, error) {
	cutoff := store.Micros(s.now().Add(-s.cfg.RecoverAfter))
	rows, err := s.db.QueryContext(ctx, `SELECT `+proposalColumns+` FROM foureyes_proposals
		WHERE status = $1 AND decided_at < $2 ORDER BY id LIMIT $3`, StatusExecuting, cutoff, maxRecover)
	if err != nil {
		return 0, store.Classify(err)
	}
	stuck, err := page.Collect(rows, maxRecover, s.scan, func(p *Proposal) string { return p.ID })
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range stuck.Data {
		status, err := s.resume(ctx, p)
		if err != nil {
			return n, err
		}
		s.log.WarnContext(ctx, "interrupted confirmation finished", "proposal_id", p.ID, "action", p.Action, "by", p.DecidedBy, "status", status)
		n++
	}
	return n, nil
}

// resume finishes one interrupted confirmation. A confirmer who can no
// longer confirm leaves it failed, unless the change was carried out.
func (s *Service) resume(ctx context.Context, p *Proposal) (string, error) {
	done, err := audit.CarriedOut(ctx, s.db, p.ID)
	if err != nil {
		return "", store.Classify(err)
	}
	if done {
		return s.finish(ctx, p.ID, nil, "")
	}
	op, err := s.confirmer(ctx, p)
	if err != nil {
		switch causeway.ErrorKind(err) {
		case causeway.ENOTFOUND, causeway.EFORBIDDEN, causeway.EUNAUTHORIZED:
			return s.finish(ctx, p.ID, nil, "not carried out: the confirmer can no longer confirm it ("+err.Error()+")")
		}
		return "", err
	}
	status, _, err := s.carryOut(ctx, p, op)
	return status, err
}

// confirmer is who confirmed p, as they stand now: the admin token, or an
// operator who is still active; either must still pass decider.
func (s *Service) confirmer(ctx context.Context, p *Proposal) (*auth.Operator, error) {
	id, ok := strings.CutPrefix(p.DecidedBy, "operator:")
	if !ok || id == "" {
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "unknown_confirmer", "the confirmer %q is not an operator", p.DecidedBy)
	}
	op := auth.AdminTokenHolder()
	if id != auth.AdminTokenOperator {
		if s.cfg.Operator == nil {
			return nil, causeway.Errorf(causeway.EFORBIDDEN, "unknown_confirmer", "operator %s cannot be looked up", id)
		}
		var err error
		if op, err = s.cfg.Operator(ctx, id); err != nil {
			return nil, err
		}
	}
	return op, s.decider(op, p, true)
}
