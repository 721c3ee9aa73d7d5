package foureyes

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// Proposal statuses.
const (
	StatusPending   = "pending_second_approval"
	StatusExecuting = "executing"
	StatusConfirmed = "confirmed"
	StatusFailed    = "failed"
	StatusRejected  = "rejected"
	StatusExpired   = "expired"
)

// Proposal is a bank decision waiting for, or decided by, a second
// operator.
type Proposal struct {
	ID          string `json:"id"`
	Action      string `json:"action" doc:"spi.activate, dataset_access.approve, grant.create, app.limits or payment.release"`
	OperationID string `json:"operation_id" doc:"The /bank/v1 operation held back"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	// Body is the request body as proposed (a JSON document, or empty).
	Body json.RawMessage `json:"body,omitempty"`
	Role string          `json:"role" doc:"The role a confirmer must hold"`
	// ProposedBy names the proposer: "operator:op_…" or "operator:admin-token".
	ProposedBy string     `json:"proposed_by"`
	ProposedAt time.Time  `json:"proposed_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Status     string     `json:"status" enum:"pending_second_approval,executing,confirmed,failed,rejected,expired"`
	DecidedBy  string     `json:"decided_by,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	// Result is the answer of the operation once confirmed: its status
	// and body (a problem when it refused).
	Result *Result `json:"result,omitempty"`
}

// Result is what the confirmed operation answered.
type Result struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

func errNotFound() error {
	return causeway.Errorf(causeway.ENOTFOUND, "proposal_not_found", "no such proposal")
}

func errNotPending() error {
	return causeway.Errorf(causeway.ECONFLICT, "proposal_not_pending", "the proposal was decided already, or expired")
}

// propose keeps a held-back request as a proposal by op.
func (s *Service) propose(ctx context.Context, op *auth.Operator, action, operationID, role, method, path string, body []byte) (*Proposal, error) {
	now := s.now()
	p := &Proposal{ID: ids.New("prop"), Action: action, OperationID: operationID, Method: method, Path: path, Body: body,
		Role: role, ProposedBy: auth.OperatorCaller(op.ID).String(), ProposedAt: store.FromMicros(store.Micros(now)),
		ExpiresAt: store.FromMicros(store.Micros(now.Add(s.cfg.TTL))), Status: StatusPending}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO foureyes_proposals
			(id, action, operation_id, method, path, body, role, proposed_by, proposed_at, expires_at, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			p.ID, action, operationID, method, path, string(body), role, p.ProposedBy, store.Micros(now), store.Micros(p.ExpiresAt), StatusPending)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: action + ".propose", TargetType: "proposal", TargetID: p.ID, ProposalID: p.ID,
			After: map[string]any{"method": method, "path": path, "body": p.Body, "expires_at": p.ExpiresAt}})
	})
	if err != nil {
		return nil, store.Classify(err)
	}
	s.log.InfoContext(ctx, "decision proposed", "proposal_id", p.ID, "action", action, "path", path, "by", p.ProposedBy)
	return p, nil
}

const proposalColumns = `id, action, operation_id, method, path, body, role, proposed_by, proposed_at, expires_at, status,
	decided_by, decided_at, reason, result_status, result_body`

func (s *Service) scan(row store.Scanner) (*Proposal, error) {
	var p Proposal
	var body string
	var proposed, expires int64
	var decidedBy, reason, resultBody sql.NullString
	var decidedAt, resultStatus sql.NullInt64
	if err := row.Scan(&p.ID, &p.Action, &p.OperationID, &p.Method, &p.Path, &body, &p.Role, &p.ProposedBy, &proposed, &expires,
		&p.Status, &decidedBy, &decidedAt, &reason, &resultStatus, &resultBody); err != nil {
		return nil, err
	}
	if body != "" {
		p.Body = json.RawMessage(body)
	}
	p.ProposedAt, p.ExpiresAt = store.FromMicros(proposed), store.FromMicros(expires)
	p.DecidedBy, p.Reason = decidedBy.String, reason.String
	if decidedAt.Valid {
		t := store.FromMicros(decidedAt.Int64)
		p.DecidedAt = &t
	}
	if resultStatus.Valid {
		p.Result = &Result{Status: int(resultStatus.Int64)}
		if resultBody.String != "" && json.Valid([]byte(resultBody.String)) {
			p.Result.Body = json.RawMessage(resultBody.String)
		}
	}
	if p.Status == StatusPending && !s.now().Before(p.ExpiresAt) {
		p.Status = StatusExpired
	}
	return &p, nil
}

// Proposal returns one proposal. Only the bank may ask.
func (s *Service) Proposal(ctx context.Context, caller auth.Caller, id string) (*Proposal, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	p, err := s.scan(s.db.QueryRowContext(ctx, `SELECT `+proposalColumns+` FROM foureyes_proposals WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return p, nil
}

// Proposals lists proposals, newest first; pending narrows to those
// still waiting for a second operator. Only the bank may ask.
func (s *Service) Proposals(ctx context.Context, caller auth.Caller, pending bool, limit int, cursor string) (*page.Page[*Proposal], error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	limit, after, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	// Newest first: ids sort by creation time.
	q := `SELECT ` + proposalColumns + ` FROM foureyes_proposals WHERE ($1 = '' OR id < $1)`
	args := []any{after}
	if pending {
		q += ` AND status = $2 AND expires_at > $3`
		args = append(args, StatusPending, store.Micros(s.now()))
	}
	q += ` ORDER BY id DESC LIMIT ` + strconv.Itoa(limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	var items []*Proposal
	for rows.Next() {
		p, err := s.scan(rows)
		if err != nil {
			return nil, store.Classify(err)
		}
		items = append(items, p)
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	return page.Of(items, limit, func(p *Proposal) string { return p.ID }), nil
}

// decider checks that op may decide p: a different person from the
// proposer, holding the proposal's role; the admin token confirms only
// where the configuration lets it.
func (s *Service) decider(op *auth.Operator, p *Proposal, confirming bool) error {
	if auth.OperatorCaller(op.ID).String() == p.ProposedBy {
		return causeway.Errorf(causeway.EFORBIDDEN, "same_operator", "a second operator must decide: the one who proposed cannot")
	}
	if !op.Roles.Allow(auth.Role(p.Role)) {
		return causeway.Errorf(causeway.EFORBIDDEN, "role_required", "deciding this proposal needs the role %s", p.Role)
	}
	if confirming && op.IsAdminToken() && !s.cfg.AdminTokenConfirms {
		return causeway.Errorf(causeway.EFORBIDDEN, "operator_only", "the admin token may propose but not confirm; a named operator must")
	}
	return nil
}

// Confirm carries out a pending proposal as op, a second operator with
// its role, and returns it with the operation's answer. Of two operators
// confirming at once, one carries it out and the other gets 409
// proposal_not_pending. An operation that refuses (the SPI was activated
// meanwhile, say) leaves the proposal failed, with the refusal as its
// result. Errors: ENOTFOUND proposal_not_found; ECONFLICT
// proposal_not_pending; EFORBIDDEN same_operator, role_required,
// operator_only.
func (s *Service) Confirm(ctx context.Context, op *auth.Operator, id string) (*Proposal, error) {
	p, err := s.Proposal(ctx, auth.OperatorCaller(op.ID), id)
	if err != nil {
		return nil, err
	}
	if p.Status != StatusPending {
		return nil, errNotPending()
	}
	if err := s.decider(op, p, true); err != nil {
		return nil, err
	}
	confirmer := auth.OperatorCaller(op.ID).String()
	if err := s.claim(ctx, id, p.Action, StatusExecuting, confirmer, ""); err != nil {
		return nil, err
	}
	status, code, err := s.carryOut(ctx, p, op)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "decision confirmed", "proposal_id", id, "action", p.Action, "by", confirmer, "status", status, "code", code)
	return s.Proposal(ctx, auth.OperatorCaller(op.ID), id)
}

// carryOut runs an executing proposal's kept request as op and records its
// answer (finish). The request runs through the whole HTTP stack
// (validation, the operation's own compare-and-set, the audit), as op.
func (s *Service) carryOut(ctx context.Context, p *Proposal, op *auth.Operator) (status string, code int, err error) {
	req := httptest.NewRequestWithContext(httpapi.ConfirmDecision(ctx, httpapi.Decision{ProposalID: p.ID, ProposedBy: p.ProposedBy, Operator: op}),
		p.Method, p.Path, bytes.NewReader(p.Body))
	if len(p.Body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	// The confirmer's address, or none (Recover): not httptest's made-up
	// one, which the audit would record as the client.
	req.RemoteAddr = ""
	if addr := httpapi.ClientAddr(ctx); addr.IsValid() {
		req.RemoteAddr = addr.String() + ":0"
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	status, err = s.finish(ctx, p.ID, &Result{Status: rec.Code, Body: rec.Body.Bytes()}, "")
	return status, rec.Code, err
}

// finish ends an executing proposal: confirmed when the operation
// succeeded, or when the audit trail holds a change carrying the proposal
// out (an earlier run committed it, and this one met the operation's
// compare-and-set); failed otherwise. result is the operation's answer,
// nil when it did not run; reason says why, when the answer does not.
func (s *Service) finish(ctx context.Context, id string, result *Result, reason string) (string, error) {
	status := StatusFailed
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		succeeded := result != nil && result.Status < 300
		if !succeeded {
			done, err := audit.CarriedOut(ctx, tx, id)
			if err != nil {
				return err
			}
			if done {
				succeeded = true
				reason = "carried out by an earlier run of this confirmation, whose answer was not recorded"
			}
		}
		if succeeded {
			status = StatusConfirmed
		}
		var code sql.NullInt64
		var body string
		if result != nil {
			code = sql.NullInt64{Int64: int64(result.Status), Valid: true}
			body = string(result.Body)
		}
		_, err := tx.ExecContext(ctx, `UPDATE foureyes_proposals SET status = $1, result_status = $2, result_body = $3,
			reason = COALESCE($4, reason) WHERE id = $5 AND status = $6`, status, code, body, nullable(reason), id, StatusExecuting)
		return err
	})
	if err != nil {
		return "", store.Classify(err)
	}
	return status, nil
}

// Reject turns down a pending proposal: a second operator with its role
// says no, with a reason. Errors as Confirm's.
func (s *Service) Reject(ctx context.Context, op *auth.Operator, id, reason string) (*Proposal, error) {
	p, err := s.Proposal(ctx, auth.OperatorCaller(op.ID), id)
	if err != nil {
		return nil, err
	}
	if p.Status != StatusPending {
		return nil, errNotPending()
	}
	if err := s.decider(op, p, false); err != nil {
		return nil, err
	}
	by := auth.OperatorCaller(op.ID).String()
	if err := s.claim(ctx, id, p.Action, StatusRejected, by, reason); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "decision rejected", "proposal_id", id, "action", p.Action, "by", by)
	return s.Proposal(ctx, auth.OperatorCaller(op.ID), id)
}

// claim moves a pending, unexpired proposal to status, by decider: a
// compare-and-set, so one decision wins.
func (s *Service) claim(ctx context.Context, id, action, status, decider, reason string) error {
	now := s.now()
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE foureyes_proposals SET status = $1, decided_by = $2, decided_at = $3, reason = $4
			WHERE id = $5 AND status = $6 AND expires_at > $3`, status, decider, store.Micros(now), nullable(reason), id, StatusPending)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if status != StatusRejected {
			// A confirmation is recorded by the change it carries out,
			// which names the proposal (audit.Origin.Confirms).
			return nil
		}
		return audit.Record(ctx, tx, audit.Change{Action: action + ".reject", TargetType: "proposal", TargetID: id, Confirms: id,
			Before: map[string]string{"status": StatusPending}, After: map[string]string{"status": StatusRejected, "reason": reason}})
	})
	if err != nil {
		return store.Classify(err)
	}
	if n == 0 {
		return errNotPending()
	}
	return nil
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// SetHandler gives the service the platform's HTTP handler, through
// which confirmed proposals run. Call it before serving.
func (s *Service) SetHandler(h http.Handler) { s.handler = h }
