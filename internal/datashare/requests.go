package datashare

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	trail "github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// RequestAccess files an app's request for a dataset. The dataset must
// exist (else EINVALID unknown_dataset) and offer the requested format.
func (s *Service) RequestAccess(ctx context.Context, caller auth.Caller, n NewAccessRequest) (*AccessRequest, error) {
	appID, ok := caller.App()
	if !ok {
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "forbidden", "datasets are requested by an app, not %s", caller)
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	d, err := s.Dataset(ctx, caller, n.DatasetID)
	if causeway.ErrorKind(err) == causeway.ENOTFOUND {
		return nil, invalid("unknown_dataset", "no dataset %s in the catalog; take an id from GET /v1/datasets", n.DatasetID)
	}
	if err != nil {
		return nil, err
	}
	if !slices.Contains(d.Formats, n.Format) {
		return nil, invalid("invalid_format", "dataset %s is offered as %s", d.Name, strings.Join(d.Formats, ", "))
	}
	now := s.nowUTC()
	r := &AccessRequest{
		ID: ids.New("dar"), AppID: appID, DatasetID: d.ID, DatasetName: d.Name, DatasetVersion: d.Version,
		Purpose: n.Purpose, DurationDays: n.DurationDays, Recipient: n.Recipient, Format: n.Format,
		Status: StatusAwaitingApproval, CreatedAt: now, Content: []ContentInfo{},
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO datashare_requests
			(id, app_id, dataset_id, dataset_version, purpose, duration_days, recipient, format, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			r.ID, appID, d.ID, d.Version, r.Purpose, r.DurationDays, r.Recipient, r.Format, r.Status, store.Micros(now))
		if err != nil {
			return err
		}
		return audit(ctx, tx, r.ID, now, caller.String(), "requested", map[string]any{
			"dataset_id": d.ID, "dataset_version": d.Version, "format": r.Format, "duration_days": r.DurationDays, "purpose": r.Purpose,
		})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

const requestColumns = `r.id, r.app_id, r.dataset_id, d.name, r.dataset_version, r.purpose, r.duration_days, r.recipient, r.format,
	r.status, r.created_at, r.decided_at, r.decided_by, r.reason, r.expires_at, r.revoked_at, r.revoked_by, r.revoke_reason`

const requestFrom = ` FROM datashare_requests r JOIN datashare_datasets d ON d.id = r.dataset_id`

func scanRequest(row store.Scanner, now time.Time) (*AccessRequest, error) {
	var r AccessRequest
	var created int64
	var decided, expires, revoked sql.NullInt64
	err := row.Scan(&r.ID, &r.AppID, &r.DatasetID, &r.DatasetName, &r.DatasetVersion, &r.Purpose, &r.DurationDays, &r.Recipient, &r.Format,
		&r.Status, &created, &decided, &r.DecidedBy, &r.Reason, &expires, &revoked, &r.RevokedBy, &r.RevokeReason)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no such dataset access request")
		}
		return nil, store.Classify(err)
	}
	r.CreatedAt = store.FromMicros(created)
	r.DecidedAt, r.ExpiresAt, r.RevokedAt = timePtr(decided), timePtr(expires), timePtr(revoked)
	r.Status = effectiveStatus(r.Status, r.ExpiresAt, now)
	r.Content = []ContentInfo{}
	return &r, nil
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// effectiveStatus is the status as callers see it: an approved request
// whose expiry has passed is expired, whether or not the sweeper has
// written that yet.
func effectiveStatus(status string, expires *time.Time, now time.Time) string {
	if status == StatusApproved && expires != nil && !now.Before(*expires) {
		return StatusExpired
	}
	return status
}

// AccessRequest returns one request: an app finds only its own (another
// app's is ENOTFOUND, as if it did not exist), the bank any, anyone else
// none.
func (s *Service) AccessRequest(ctx context.Context, caller auth.Caller, id string) (*AccessRequest, error) {
	appID, isApp := caller.App()
	if !isApp && !caller.IsBank() {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no such dataset access request")
	}
	r, err := s.request(ctx, s.db.DB, id)
	if err != nil {
		return nil, err
	}
	if isApp && r.AppID != appID {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no such dataset access request")
	}
	if err := s.attachContent(ctx, []*AccessRequest{r}); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Service) request(ctx context.Context, q store.Querier, id string) (*AccessRequest, error) {
	return scanRequest(q.QueryRowContext(ctx, `SELECT `+requestColumns+requestFrom+` WHERE r.id = $1`, id), s.nowUTC())
}

// RequestFilter selects access requests.
type RequestFilter struct {
	AppID  string // the bank's view: "" = every app's; an app sees its own whatever this says
	Status string // "" = any; one of the Status constants
	Limit  int
	Cursor string
}

// AccessRequests lists the requests the caller may see, oldest first: an
// app its own, the bank every one matching f, anyone else none.
func (s *Service) AccessRequests(ctx context.Context, caller auth.Caller, f RequestFilter) (*page.Page[*AccessRequest], error) {
	limit, after, err := page.Args(f.Limit, f.Cursor)
	if err != nil {
		return nil, err
	}
	switch appID, isApp := caller.App(); {
	case isApp:
		f.AppID = appID
	case !caller.IsBank():
		return &page.Page[*AccessRequest]{Data: []*AccessRequest{}}, nil
	}
	now := store.Micros(s.nowUTC())
	q := `SELECT ` + requestColumns + requestFrom + ` WHERE r.id > $1`
	args := []any{after}
	if f.AppID != "" {
		args = append(args, f.AppID)
		q += ` AND r.app_id = $2`
	}
	n := len(args)
	switch f.Status {
	case "":
	case StatusApproved:
		q += ` AND r.status = 'approved' AND r.expires_at > $` + strconv.Itoa(n+1)
		args = append(args, now)
	case StatusExpired:
		q += ` AND (r.status = 'expired' OR (r.status = 'approved' AND r.expires_at <= $` + strconv.Itoa(n+1) + `))`
		args = append(args, now)
	case StatusAwaitingApproval, StatusRejected, StatusRevoked:
		q += ` AND r.status = $` + strconv.Itoa(n+1)
		args = append(args, f.Status)
	default:
		return nil, invalid("invalid_status", "status must be awaiting_approval, approved, rejected, revoked or expired")
	}
	q += ` ORDER BY r.id LIMIT $` + strconv.Itoa(len(args)+1)
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	scan := func(row store.Scanner) (*AccessRequest, error) { return scanRequest(row, s.nowUTC()) }
	// Collect closes rows: attachContent needs connections of its own.
	pg, err := page.Collect(rows, limit, scan, func(r *AccessRequest) string { return r.ID })
	if err != nil {
		return nil, err
	}
	return pg, s.attachContent(ctx, pg.Data)
}

// attachContent fills in each request's content states with one query.
func (s *Service) attachContent(ctx context.Context, reqs []*AccessRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	byID := map[string]*AccessRequest{}
	var ph []string
	var args []any
	for i, r := range reqs {
		byID[r.ID] = r
		ph = append(ph, "$"+strconv.Itoa(i+1))
		args = append(args, r.ID)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT request_id, format, status, size, sha256, error, ready_at
		FROM datashare_contents WHERE request_id IN (`+strings.Join(ph, ", ")+`) ORDER BY request_id, format`, args...)
	if err != nil {
		return store.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var reqID, sum string
		var c ContentInfo
		var ready sql.NullInt64
		if err := rows.Scan(&reqID, &c.Format, &c.Status, &c.Size, &sum, &c.Error, &ready); err != nil {
			return store.Classify(err)
		}
		c.ReadyAt = timePtr(ready)
		if c.Status == ContentReady {
			c.ETag = etag(sum)
		} else {
			c.Size = 0
		}
		r := byID[reqID]
		if r.Status == StatusRevoked || r.Status == StatusExpired {
			c.Status = ContentDeleted
			c.Size, c.ETag = 0, ""
		}
		r.Content = append(r.Content, c)
	}
	return store.Classify(rows.Err())
}

func etag(sum string) string { return `"` + sum + `"` }

// ---- decisions ----

// Approve grants a request awaiting approval until d.ExpiresAt (default
// now plus the requested duration; at most 365 days ahead) and queues the
// content for the data agent. Every decision names the state it leaves,
// so of two officers deciding one request at once exactly one decision is
// taken (one event, one audit entry). Errors: ENOTFOUND not_found;
// EINVALID invalid_expiry; ECONFLICT invalid_transition (any state but
// awaiting approval, including a decision that lost a race).
func (s *Service) Approve(ctx context.Context, id string, d Decision) (*AccessRequest, error) {
	return s.decide(ctx, id, "approved", d)
}

// Reject refuses a request awaiting approval. Errors: ENOTFOUND not_found;
// EINVALID invalid_decision; ECONFLICT invalid_transition (any state but
// awaiting approval).
func (s *Service) Reject(ctx context.Context, id string, d Decision) (*AccessRequest, error) {
	return s.decide(ctx, id, "rejected", d)
}

// Revoke ends an approved, unexpired grant at once: downloads stop and the
// stored ciphertext is deleted. Errors: ENOTFOUND not_found; EINVALID
// invalid_decision; ECONFLICT invalid_transition (any state but approved).
func (s *Service) Revoke(ctx context.Context, id string, d Decision) (*AccessRequest, error) {
	return s.decide(ctx, id, "revoked", d)
}

// decide takes the bank's decision (approved, rejected or revoked) on
// request id: a conditional update from the one state the decision leaves,
// with its audit, event and trail entry in the same transaction.
func (s *Service) decide(ctx context.Context, id, action string, d Decision) (*AccessRequest, error) {
	if err := d.normalize(); err != nil {
		return nil, err
	}
	now := s.nowUTC()
	expires, err := decisionExpiry(action, d, now)
	if err != nil {
		return nil, err
	}
	var r *AccessRequest
	var deleteKeys []string
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		deleteKeys = nil
		if r, err = s.request(ctx, tx, id); err != nil {
			return err
		}
		from := StatusAwaitingApproval
		if action == "revoked" {
			from = StatusApproved
		}
		if r.Status != from {
			return causeway.Errorf(causeway.ECONFLICT, "invalid_transition",
				"the request is %s; only a request that is %s can be %s", r.Status, strings.ReplaceAll(from, "_", " "), action)
		}
		at := store.Micros(now)
		var res sql.Result
		switch action {
		case "approved":
			if expires.IsZero() {
				expires = now.AddDate(0, 0, r.DurationDays)
			}
			res, err = tx.ExecContext(ctx, `UPDATE datashare_requests SET status = 'approved', decided_at = $1, decided_by = $2, reason = $3, expires_at = $4
				WHERE id = $5 AND status = 'awaiting_approval'`, at, d.By, d.Reason, store.Micros(expires), id)
			if err == nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO datashare_contents (id, request_id, format, status, created_at)
					VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT (request_id, format) DO NOTHING`, ids.New("dsj"), id, r.Format, at)
			}
			r.Status, r.DecidedAt, r.DecidedBy, r.Reason, r.ExpiresAt = StatusApproved, &now, d.By, d.Reason, &expires
		case "rejected":
			res, err = tx.ExecContext(ctx, `UPDATE datashare_requests SET status = 'rejected', decided_at = $1, decided_by = $2, reason = $3
				WHERE id = $4 AND status = 'awaiting_approval'`, at, d.By, d.Reason, id)
			r.Status, r.DecidedAt, r.DecidedBy, r.Reason = StatusRejected, &now, d.By, d.Reason
		case "revoked":
			res, err = tx.ExecContext(ctx, `UPDATE datashare_requests SET status = 'revoked', revoked_at = $1, revoked_by = $2, revoke_reason = $3
				WHERE id = $4 AND status = 'approved'`, at, d.By, d.Reason, id)
			if err == nil {
				deleteKeys, err = s.retireContents(ctx, tx, id)
			}
			r.Status, r.RevokedAt, r.RevokedBy, r.RevokeReason = StatusRevoked, &now, d.By, d.Reason
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return causeway.Errorf(causeway.ECONFLICT, "invalid_transition", "the request changed while deciding; read it again")
		}
		return recordDecision(ctx, tx, r, action, from, d, expires, now)
	})
	if err != nil {
		return nil, err
	}
	s.committedEvents()
	for _, k := range deleteKeys {
		s.deleteBlob(ctx, k)
	}
	if action == "approved" {
		s.signal()
	}
	return s.AccessRequest(ctx, auth.BankProcess(), id)
}

// decisionExpiry is when an approval with d ends (zero: after the
// request's duration); other decisions take no expiry.
func decisionExpiry(action string, d Decision, now time.Time) (time.Time, error) {
	switch {
	case d.ExpiresAt == nil:
		return time.Time{}, nil
	case action != "approved":
		return time.Time{}, invalid("invalid_decision", "expires_at applies to approvals only")
	}
	expires := d.ExpiresAt.UTC()
	if !expires.After(now) || expires.After(now.AddDate(0, 0, MaxDurationDays)) {
		return time.Time{}, invalid("invalid_expiry", "expires_at must be in the future and at most %d days ahead", MaxDurationDays)
	}
	return expires, nil
}

// recordDecision writes, in the decision's transaction, its entry in the
// request's audit, its event, and the bank's audit trail entry.
func recordDecision(ctx context.Context, tx *sql.Tx, r *AccessRequest, action, from string, d Decision, expires, now time.Time) error {
	detail := map[string]any{"by": d.By, "reason": d.Reason}
	if action == "approved" {
		detail["expires_at"] = expires
	}
	if err := audit(ctx, tx, r.ID, now, "bank:"+d.By, action, detail); err != nil {
		return err
	}
	if err := outbox.Append(ctx, tx, accessEvent(r, action, now)); err != nil {
		return err
	}
	after := map[string]any{"status": r.Status, "dataset_id": r.DatasetID, "app_id": r.AppID, "by": d.By, "reason": d.Reason}
	if action == "approved" {
		after["expires_at"] = expires
	}
	return trail.Record(ctx, tx, trail.Change{Action: "dataset_access." + decisionVerb[action], TargetType: "dataset_access_request",
		TargetID: r.ID, Before: map[string]string{"status": from}, After: after})
}

// decisionVerb names a decision's action in the bank's audit trail.
var decisionVerb = map[string]string{"approved": "approve", "rejected": "reject", "revoked": "revoke"}

// accessEvent is the dataset.access.* event for the requesting app.
func accessEvent(r *AccessRequest, action string, now time.Time) outbox.Event {
	data := map[string]any{
		"id": r.ID, "dataset_id": r.DatasetID, "status": action, "purpose": r.Purpose,
		"duration_days": r.DurationDays, "recipient": r.Recipient, "decided_at": now,
	}
	switch action {
	case "approved":
		data["expires_at"] = r.ExpiresAt
		if r.Reason != "" {
			data["reason"] = r.Reason
		}
	case "rejected":
		if r.Reason != "" {
			data["reason"] = r.Reason
		}
	case "revoked":
		if r.RevokeReason != "" {
			data["reason"] = r.RevokeReason
		}
	}
	b, _ := json.Marshal(data)
	return outbox.Event{
		ID: ids.New("evt"), Type: "dataset.access." + action, Source: EventSource, Subject: r.ID,
		Time: now, Data: b, AppID: r.AppID,
	}
}

// retireContents marks a request's contents deleted and returns the blob
// keys to remove once the transaction commits.
func (s *Service) retireContents(ctx context.Context, tx *sql.Tx, requestID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT format FROM datashare_contents WHERE request_id = $1 AND status <> 'deleted'`, requestID)
	if err != nil {
		return nil, err
	}
	var keys []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, blobKeyOf(requestID, f))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE datashare_contents SET status = 'deleted', lease_id = '', lease_until = 0 WHERE request_id = $1`, requestID)
	return keys, err
}

func blobKeyOf(requestID, format string) string { return requestID + "." + format }

// deleteBlob removes a blob once the transaction that retired it has
// committed, even if the caller has gone away meanwhile, and records the
// outcome on a retired content: gone, or to be deleted again by the next
// sweep (sweepRetiredBlobs).
func (s *Service) deleteBlob(ctx context.Context, key string) {
	ctx = context.WithoutCancel(ctx)
	err := s.blobs.Delete(ctx, key)
	if err != nil {
		s.log.WarnContext(ctx, "deleting ciphertext failed; the sweep tries again", "blob", key, "error", err.Error())
	}
	requestID, format, _ := strings.Cut(key, ".")
	if _, uerr := s.db.ExecContext(ctx, `UPDATE datashare_contents SET blob_gone = $1
		WHERE request_id = $2 AND format = $3 AND status = 'deleted'`, err == nil, requestID, format); uerr != nil {
		s.log.WarnContext(ctx, "recording a ciphertext deletion failed", "blob", key, "error", uerr.Error())
	}
}

// RetryContent puts a request's failed content back in the agents' queue.
func (s *Service) RetryContent(ctx context.Context, id string) (*AccessRequest, error) {
	r, err := s.AccessRequest(ctx, auth.BankProcess(), id)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusApproved {
		return nil, causeway.Errorf(causeway.ECONFLICT, "invalid_transition", "the request is %s; only an approved request's content can be retried", r.Status)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE datashare_contents SET status = 'pending', attempts = 0, not_before = 0, error = ''
			WHERE request_id = $1 AND status = 'failed'`, id)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if n == 0 {
			return nil // nothing had failed: no change to record
		}
		return trail.Record(ctx, tx, trail.Change{Action: "dataset_access.retry_content", TargetType: "dataset_access_request",
			TargetID: id, Before: map[string]any{"content": "failed", "formats": n}, After: map[string]any{"content": "pending", "formats": n}})
	})
	if err != nil {
		return nil, err
	}
	s.signal()
	return s.AccessRequest(ctx, auth.BankProcess(), id)
}

// ---- audit ----

func audit(ctx context.Context, tx *sql.Tx, requestID string, at time.Time, actor, action string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO datashare_audit (id, request_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5, $6)`,
		ids.New("dsa"), requestID, store.Micros(at), actor, action, string(b))
	return err
}

// recordAudit writes one audit entry in its own transaction.
func (s *Service) recordAudit(ctx context.Context, requestID, actor, action string, detail map[string]any) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		return audit(ctx, tx, requestID, s.nowUTC(), actor, action, detail)
	})
}

// Audit lists a request's audit trail, oldest first.
func (s *Service) Audit(ctx context.Context, requestID string, limit int, cursor string) (*page.Page[*AuditEntry], error) {
	if _, err := s.request(ctx, s.db.DB, requestID); err != nil {
		return nil, err
	}
	limit, after, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, request_id, at, actor, action, detail FROM datashare_audit
		WHERE request_id = $1 AND id > $2 ORDER BY id LIMIT $3`, requestID, after, limit+1)
	if err != nil {
		return nil, store.Classify(err)
	}
	return page.Collect(rows, limit, scanAuditEntry, func(e *AuditEntry) string { return e.ID })
}

func scanAuditEntry(row store.Scanner) (*AuditEntry, error) {
	var e AuditEntry
	var at int64
	var detail string
	if err := row.Scan(&e.ID, &e.RequestID, &at, &e.Actor, &e.Action, &detail); err != nil {
		return nil, err
	}
	e.At = store.FromMicros(at)
	if detail != "" {
		e.Detail = json.RawMessage(detail)
	}
	return &e, nil
}
