package datashare

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// maxAttempts is how often a job is tried before its content is failed;
// the bank can retry it (RetryContent).
const maxAttempts = 5

// RetryError is an error the caller may retry after After (sent as
// Retry-After).
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// ---- jobs, for data agents ----

const jobSelect = `SELECT c.id, c.request_id, c.format, c.attempts, c.lease_id, c.lease_until, r.recipient,
	d.id, d.name, d.version, d.columns, d.source
	FROM datashare_contents c
	JOIN datashare_requests r ON r.id = c.request_id
	JOIN datashare_datasets d ON d.id = r.dataset_id`

func scanJob(row store.Scanner) (*Job, error) {
	var j Job
	var leaseUntil int64
	var cols, src string
	err := row.Scan(&j.ID, &j.RequestID, &j.Format, &j.Attempts, &j.Lease, &leaseUntil, &j.Recipient,
		&j.Dataset.ID, &j.Dataset.Name, &j.Dataset.Version, &cols, &src)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no such job")
		}
		return nil, store.Classify(err)
	}
	if err := errors.Join(json.Unmarshal([]byte(cols), &j.Dataset.Columns), json.Unmarshal([]byte(src), &j.Dataset.Source)); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	if j.Lease != "" {
		t := store.FromMicros(leaseUntil)
		j.LeaseUntil = &t
	}
	return &j, nil
}

// Jobs lists up to limit jobs an agent may claim: content of approved,
// unexpired requests that is pending (and due), or whose agent's lease ran
// out. Leases are not shown.
func (s *Service) Jobs(ctx context.Context, limit int) ([]*Job, error) {
	if limit <= 0 || limit > MaxPageSize {
		limit = DefaultPageSize
	}
	now := store.Micros(s.nowUTC())
	rows, err := s.db.QueryContext(ctx, jobSelect+`
		WHERE r.status = 'approved' AND r.expires_at > $1
		AND ((c.status = 'pending' AND c.not_before <= $1) OR (c.status = 'producing' AND c.lease_until < $1))
		ORDER BY c.id LIMIT $2`, now, limit)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	jobs := []*Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		j.Lease, j.LeaseUntil = "", nil
		jobs = append(jobs, j)
	}
	return jobs, store.Classify(rows.Err())
}

// Claim gives the job to the calling agent under a fresh lease, and
// empties any partial upload of an earlier attempt. A job that is not
// claimable (taken, done, or its request no longer approved) is ECONFLICT
// job_unavailable.
func (s *Service) Claim(ctx context.Context, jobID string) (*Job, error) {
	now := s.nowUTC()
	lease := ids.New("lse")
	until := now.Add(s.leaseTTL)
	var j *Job
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE datashare_contents SET status = 'producing', lease_id = $1, lease_until = $2, attempts = attempts + 1,
			upload_size = 0, upload_hash = $5
			WHERE id = $3 AND ((status = 'pending' AND not_before <= $4) OR (status = 'producing' AND lease_until < $4))
			AND EXISTS (SELECT 1 FROM datashare_requests r WHERE r.id = datashare_contents.request_id AND r.status = 'approved' AND r.expires_at > $4)`,
			lease, store.Micros(until), jobID, store.Micros(now), hashState(sha256.New()))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return causeway.Errorf(causeway.ECONFLICT, "job_unavailable", "job %s is taken, done, or no longer wanted", jobID)
		}
		j, err = scanJob(tx.QueryRowContext(ctx, jobSelect+` WHERE c.id = $1`, jobID))
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.blobs.Reset(ctx, blobKeyOf(j.RequestID, j.Format)); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return j, nil
}

// An upload's running SHA-256 lives beside its job in datashare_contents
// (upload_hash, the hash of the first upload_size bytes), not in a node's
// memory: an agent's parts may reach different nodes behind a load
// balancer, and each takes the hash from where the previous part left it.
// Only an append that the blob store accepted at upload_size advances it,
// so it always describes a prefix of the stored upload (whose bytes never
// change under one lease). When it falls behind (a crash between storing a
// part and saving the hash, overlapping appends), the completion hashes
// the stored upload once instead.

// hashState encodes a SHA-256 in progress for upload_hash.
func hashState(h hash.Hash) string {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// resumeHash decodes upload_hash; nil when unknown.
func resumeHash(state string) hash.Hash {
	if state == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(state)
	if err != nil {
		return nil
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		return nil
	}
	return h
}

// heldJob is a job whose lease the caller holds.
type heldJob struct {
	key        string // its blob
	uploadSize int64  // bytes upload_hash covers
	uploadHash string // "" when unknown
}

// leaseHolder checks that lease still holds job jobID and that its request
// is still approved and unexpired, and stretches the lease when half of it
// is used up.
func (s *Service) leaseHolder(ctx context.Context, jobID, lease string) (*heldJob, error) {
	var status, leaseID, requestID, format, reqStatus string
	var leaseUntil int64
	var expires sql.NullInt64
	var held heldJob
	err := s.db.QueryRowContext(ctx, `SELECT c.status, c.lease_id, c.lease_until, c.request_id, c.format, c.upload_size, c.upload_hash, r.status, r.expires_at
		FROM datashare_contents c JOIN datashare_requests r ON r.id = c.request_id WHERE c.id = $1`, jobID).
		Scan(&status, &leaseID, &leaseUntil, &requestID, &format, &held.uploadSize, &held.uploadHash, &reqStatus, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no such job")
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	now := s.nowUTC()
	if effectiveStatus(reqStatus, timePtr(expires), now) != StatusApproved {
		return nil, causeway.Errorf(causeway.ECONFLICT, "access_ended", "the request was revoked or has expired; stop uploading")
	}
	if status != ContentProducing || lease == "" || leaseID != lease {
		return nil, causeway.Errorf(causeway.ECONFLICT, "lease_lost", "this agent no longer holds job %s; claim it again", jobID)
	}
	if store.FromMicros(leaseUntil).Sub(now) < s.leaseTTL/2 {
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE datashare_contents SET lease_until = $1 WHERE id = $2 AND lease_id = $3`,
				store.Micros(now.Add(s.leaseTTL)), jobID, lease)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	held.key = blobKeyOf(requestID, format)
	return &held, nil
}

var errUploadGone = causeway.Errorf(causeway.ECONFLICT, "lease_lost", "the partial upload is gone; claim the job again")

// AppendContent appends ciphertext from r at offset to a claimed job's
// upload. offset must be the upload's current size, else ECONFLICT
// wrong_offset inside an *OffsetError-carrying error (see UploadOffset).
// It returns the new size.
func (s *Service) AppendContent(ctx context.Context, jobID, lease string, offset int64, r io.Reader) (int64, error) {
	held, err := s.leaseHolder(ctx, jobID, lease)
	if err != nil {
		return 0, err
	}
	// The blob store decides whether offset is right; the hash follows
	// only an append that starts where it ends.
	h := resumeHash(held.uploadHash)
	if h != nil && held.uploadSize == offset {
		r = io.TeeReader(r, h)
	} else {
		h = nil
	}
	n, err := s.blobs.Append(ctx, held.key, offset, r)
	var oe *OffsetError
	switch {
	case errors.As(err, &oe):
		return oe.Size, &offsetConflict{size: oe.Size}
	case errors.Is(err, fs.ErrNotExist):
		return offset, errUploadGone
	case err != nil:
		return offset, err
	}
	if h == nil {
		return n, nil
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Lost in a crash, the hash is only computed again.
		if err := asyncCommit(ctx, s.db, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE datashare_contents SET upload_size = $1, upload_hash = $2
			WHERE id = $3 AND lease_id = $4 AND upload_size = $5`, n, hashState(h), jobID, lease, offset)
		return err
	})
	if err != nil {
		// The part is stored; the completion hashes the upload instead.
		s.log.WarnContext(ctx, "saving an upload's hash failed", "job_id", jobID, "error", err.Error())
	}
	return n, nil
}

// offsetConflict is ECONFLICT wrong_offset with the upload's size.
type offsetConflict struct{ size int64 }

func (e *offsetConflict) Error() string {
	return fmt.Sprintf("wrong_offset: the upload holds %d bytes; continue from there", e.size)
}

func (e *offsetConflict) Unwrap() error {
	return causeway.Errorf(causeway.ECONFLICT, "wrong_offset", "the upload holds %d bytes; send the part that starts there", e.size)
}

// UploadOffset returns the upload size an AppendContent error reports, if
// it is a wrong offset.
func UploadOffset(err error) (int64, bool) {
	var oc *offsetConflict
	if errors.As(err, &oc) {
		return oc.size, true
	}
	return 0, false
}

// CompleteContent finishes a claimed job: the upload must hold size bytes
// whose SHA-256 (hex) is sum, when sum is given. The content becomes
// ready to download, its ETag the quoted SHA-256.
func (s *Service) CompleteContent(ctx context.Context, jobID, lease string, size int64, sum string) (*ContentInfo, error) {
	held, err := s.leaseHolder(ctx, jobID, lease)
	if err != nil {
		return nil, err
	}
	key := held.key
	got, err := s.uploadSum(ctx, held, size)
	if err != nil {
		return nil, err
	}
	if sum != "" && !strings.EqualFold(sum, got) {
		return nil, causeway.Errorf(causeway.EINVALID, "checksum_mismatch", "the upload's SHA-256 is not the one the agent computed; the content was damaged on the way")
	}
	if err := s.blobs.Commit(ctx, key); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	now := s.nowUTC()
	var requestID, format string
	var attempts int
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE datashare_contents SET status = 'ready', size = $1, sha256 = $2, ready_at = $3, lease_id = '', lease_until = 0, error = ''
			WHERE id = $4 AND lease_id = $5 AND status = 'producing'`, size, got, store.Micros(now), jobID, lease)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return causeway.Errorf(causeway.ECONFLICT, "lease_lost", "job %s changed while completing", jobID)
		}
		if err := tx.QueryRowContext(ctx, `SELECT request_id, format, attempts FROM datashare_contents WHERE id = $1`, jobID).Scan(&requestID, &format, &attempts); err != nil {
			return err
		}
		return audit(ctx, tx, requestID, now, "agent", "content_ready", map[string]any{
			"job_id": jobID, "format": format, "size": size, "sha256": got, "attempts": attempts,
		})
	})
	if err != nil {
		// Revoked in the meantime: the blob must not stay.
		s.deleteBlob(ctx, key)
		return nil, err
	}
	return &ContentInfo{Format: format, Status: ContentReady, Size: size, ETag: etag(got), ReadyAt: &now}, nil
}

// uploadSum checks that the stored upload holds size bytes and returns
// its SHA-256 (hex): from upload_hash when that covers all of it, else by
// reading it once.
func (s *Service) uploadSum(ctx context.Context, held *heldJob, size int64) (string, error) {
	p, err := s.blobs.OpenPartial(ctx, held.key)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errUploadGone
	}
	if err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	defer p.Close()
	if p.Size() != size {
		return "", causeway.Errorf(causeway.ECONFLICT, "size_mismatch", "the upload holds %d bytes, not %d", p.Size(), size)
	}
	h := resumeHash(held.uploadHash)
	if h == nil || held.uploadSize != size {
		h = sha256.New()
		if n, err := io.Copy(h, p); err != nil || n != size {
			return "", fmt.Errorf("blob store: hashing the upload (%d of %d bytes): %w", n, size, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FailContent records that the agent could not produce a job. It is
// retried with growing delays, and failed after maxAttempts attempts.
// Errors: ENOTFOUND not_found; ECONFLICT access_ended (the request was
// revoked or expired), lease_lost (the agent no longer holds the job: its
// lease ran out and another agent took it, or a revocation retired the
// content while this call ran).
func (s *Service) FailContent(ctx context.Context, jobID, lease, message string) error {
	held, err := s.leaseHolder(ctx, jobID, lease)
	if err != nil {
		return err
	}
	message = strings.ToValidUTF8(strings.ReplaceAll(message, "\x00", ""), "?")
	if utf8.RuneCountInString(message) > 500 {
		message = string([]rune(message)[:500])
	}
	now := s.nowUTC()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var requestID, format string
		var attempts int
		if err := tx.QueryRowContext(ctx, `SELECT request_id, format, attempts FROM datashare_contents WHERE id = $1 AND lease_id = $2`, jobID, lease).
			Scan(&requestID, &format, &attempts); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return causeway.Errorf(causeway.ECONFLICT, "lease_lost", "this agent no longer holds job %s", jobID)
			}
			return err
		}
		status, notBefore := ContentPending, now.Add(backoff(attempts))
		if attempts >= maxAttempts {
			status = ContentFailed
		}
		// Names the state it leaves: a revocation that retired the content
		// meanwhile (status deleted, lease gone) is not undone.
		res, err := tx.ExecContext(ctx, `UPDATE datashare_contents SET status = $1, not_before = $2, error = $3, lease_id = '', lease_until = 0
			WHERE id = $4 AND lease_id = $5 AND status = 'producing'`,
			status, store.Micros(notBefore), message, jobID, lease)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return causeway.Errorf(causeway.ECONFLICT, "lease_lost", "this agent no longer holds job %s", jobID)
		}
		return audit(ctx, tx, requestID, now, "agent", "content_failed", map[string]any{
			"job_id": jobID, "format": format, "error": message, "attempts": attempts, "final": status == ContentFailed,
		})
	})
	s.deleteBlob(ctx, held.key)
	return err
}

// backoff is the wait before attempt n+1: 5 s, 20 s, 80 s, ... at most 10
// minutes.
func backoff(attempts int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempts && d < 10*time.Minute; i++ {
		d *= 4
	}
	return min(d, 10*time.Minute)
}

// ---- downloads ----

// Content is stored ciphertext opened for one download.
type Content struct {
	Blob      Blob
	ETag      string // quoted SHA-256 of the ciphertext
	Size      int64
	RequestID string
	Format    string
}

// notGranted is the one answer for a download the caller may not make,
// whether the request does not exist, is another app's, or is not (or no
// longer) approved, so the answer does not tell which ids exist.
func notGranted(id, why string) error {
	return causeway.Errorf(causeway.EFORBIDDEN, "access_not_granted", "this app holds no approved, unexpired grant for %s%s", id, why)
}

// OpenContent opens the ciphertext of the app's request in format ("" =
// the request's format) for download. It answers EFORBIDDEN
// access_not_granted unless the request is the app's, approved and
// unexpired; a *RetryError (ECONFLICT content_not_ready) while the agent
// has not produced the content yet, queueing it if needed; ECONFLICT
// content_failed when the agent gave up. Refusals are audited.
//
// It is long because the checks a download passes (the caller's grant, the
// request's state, the content's state) are one sequence, each refusal
// audited where it happens.
func (s *Service) OpenContent(ctx context.Context, caller auth.Caller, requestID, format string) (*Content, error) {
	appID, isApp := caller.App()
	if !isApp {
		return nil, notGranted(requestID, "")
	}
	r, err := s.request(ctx, s.db.DB, requestID)
	if causeway.ErrorKind(err) == causeway.ENOTFOUND {
		return nil, notGranted(requestID, "")
	}
	if err != nil {
		return nil, err
	}
	refuse := func(reason, why string) error {
		if err := s.recordAudit(ctx, r.ID, caller.String(), "download_refused", map[string]any{"reason": reason, "status": r.Status}); err != nil {
			s.log.WarnContext(ctx, "audit failed", "access_request_id", r.ID, "error", err.Error())
		}
		return notGranted(r.ID, why)
	}
	if r.AppID != appID {
		return nil, refuse("not_owner", "")
	}
	if r.Status != StatusApproved {
		return nil, refuse(r.Status, " (the request is "+strings.ReplaceAll(r.Status, "_", " ")+")")
	}
	if format == "" {
		format = r.Format
	}
	if format != r.Format {
		d, err := s.Dataset(ctx, caller, r.DatasetID)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(d.Formats, format) {
			return nil, invalid("invalid_format", "dataset %s is offered as %s", d.Name, strings.Join(d.Formats, ", "))
		}
	}
	var status, sum, cerr string
	var size, notBefore int64
	err = s.db.QueryRowContext(ctx, `SELECT status, size, sha256, not_before, error FROM datashare_contents WHERE request_id = $1 AND format = $2`,
		r.ID, format).Scan(&status, &size, &sum, &notBefore, &cerr)
	if errors.Is(err, sql.ErrNoRows) {
		status = ""
	} else if err != nil {
		return nil, store.Classify(err)
	}
	notReady := func(after time.Duration) error {
		return &RetryError{After: max(after, 2*time.Second), Err: causeway.Errorf(causeway.ECONFLICT, "content_not_ready",
			"the bank's data agent is still preparing the encrypted %s content; try again shortly", format)}
	}
	switch status {
	case "":
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO datashare_contents (id, request_id, format, status, created_at)
				VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT (request_id, format) DO NOTHING`, ids.New("dsj"), r.ID, format, store.Micros(s.nowUTC()))
			return err
		})
		if err != nil {
			return nil, err
		}
		s.signal()
		return nil, notReady(0)
	case ContentPending:
		return nil, notReady(store.FromMicros(notBefore).Sub(s.nowUTC()))
	case ContentProducing:
		return nil, notReady(0)
	case ContentFailed:
		return nil, causeway.Errorf(causeway.ECONFLICT, "content_failed", "the bank's data agent could not prepare this content (%s); ask the bank to retry", cerr)
	case ContentReady:
	default:
		return nil, notGranted(r.ID, "")
	}
	blob, err := s.blobs.Open(ctx, blobKeyOf(r.ID, format))
	if errors.Is(err, fs.ErrNotExist) {
		// Lost from the blob store (or on another node's disk): produce it
		// again.
		s.log.WarnContext(ctx, "stored ciphertext is missing; queueing it again", "access_request_id", r.ID, "format", format)
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE datashare_contents SET status = 'pending', not_before = 0, attempts = 0 WHERE request_id = $1 AND format = $2 AND status = 'ready'`, r.ID, format)
			return err
		})
		if err != nil {
			return nil, err
		}
		s.signal()
		return nil, notReady(0)
	}
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	if blob.Size() != size {
		blob.Close()
		return nil, fmt.Errorf("blob store: %s.%s holds %d bytes, not %d", r.ID, format, blob.Size(), size)
	}
	return &Content{Blob: blob, ETag: etag(sum), Size: size, RequestID: r.ID, Format: format}, nil
}

// Download is what the audit records of one download.
type Download struct {
	Format   string
	Range    string // the Range header, if any
	Status   int    // HTTP status sent
	Bytes    int64  // body bytes sent
	Duration time.Duration
	HTTPID   string // the request id of the HTTP request
}

// RecordDownload audits a download of the app's request.
func (s *Service) RecordDownload(ctx context.Context, caller auth.Caller, requestID string, d Download) error {
	detail := map[string]any{"format": d.Format, "status": d.Status, "bytes": d.Bytes, "duration_ms": d.Duration.Milliseconds()}
	if d.Range != "" {
		detail["range"] = d.Range
	}
	if d.HTTPID != "" {
		detail["http_request_id"] = d.HTTPID
	}
	return s.recordAudit(context.WithoutCancel(ctx), requestID, caller.String(), "download", detail)
}

// ---- housekeeping ----

// Sweep marks approved requests whose expiry has passed as expired,
// deleting their ciphertext. It returns how many expired.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.nowUTC()
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM datashare_requests WHERE status = 'approved' AND expires_at <= $1 ORDER BY id LIMIT 500`, store.Micros(now))
	if err != nil {
		return 0, store.Classify(err)
	}
	var due []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, store.Classify(err)
		}
		due = append(due, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, store.Classify(err)
	}
	s.sweepRetiredBlobs(ctx)
	n := 0
	for _, id := range due {
		var keys []string
		var expired bool
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			expired = false
			res, err := tx.ExecContext(ctx, `UPDATE datashare_requests SET status = 'expired' WHERE id = $1 AND status = 'approved' AND expires_at <= $2`, id, store.Micros(now))
			if err != nil {
				return err
			}
			if c, _ := res.RowsAffected(); c != 1 {
				keys = nil
				return nil
			}
			expired = true
			if keys, err = s.retireContents(ctx, tx, id); err != nil {
				return err
			}
			return audit(ctx, tx, id, now, "system", "expired", map[string]any{})
		})
		if err != nil {
			return n, err
		}
		for _, k := range keys {
			s.deleteBlob(ctx, k)
		}
		if expired {
			n++
		}
	}
	return n, nil
}

// sweepRetiredBlobs deletes again the ciphertext of retired contents whose
// delete failed after their retirement (or was never recorded), a batch at
// a time.
func (s *Service) sweepRetiredBlobs(ctx context.Context) {
	rows, err := s.db.QueryContext(ctx, `SELECT request_id, format FROM datashare_contents
		WHERE status = 'deleted' AND blob_gone = FALSE ORDER BY request_id, format LIMIT 100`)
	if err != nil {
		s.log.WarnContext(ctx, "listing retired ciphertext failed", "error", err.Error())
		return
	}
	var keys []string
	for rows.Next() {
		var requestID, format string
		if err := rows.Scan(&requestID, &format); err != nil {
			break
		}
		keys = append(keys, blobKeyOf(requestID, format))
	}
	rows.Close()
	for _, k := range keys {
		s.deleteBlob(ctx, k)
	}
}

// leads reports whether this node does the periodic sweep now.
func (s *Service) leads() bool { return s.leader == nil || s.leader() }

// Run sweeps every interval (default 30 s) until ctx is done. The platform
// runs it in the background.
func (s *Service) Run(ctx context.Context) error {
	return s.run(ctx, 30*time.Second)
}

func (s *Service) run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if s.leads() {
			if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "datashare sweep failed", "error", err.Error())
			} else if n > 0 {
				s.log.InfoContext(ctx, "dataset access expired", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
