package spi

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// The audit is written behind the call, with group commit: a call hands
// its rows to one writer goroutine and returns at once, and the writer
// puts the rows of every call handed over meanwhile into one INSERT. An
// SPI call then costs its round trip to the endpoint, not a commit (a
// flush to disk on SQLite), and a busy node pays one commit for many
// calls. What the bank did with an answer is on record in its own
// transaction (a payment keeps its fraud check's decision, provider and
// stand-in); the invocation rows are the operational trail. Readers on
// this node wait for the rows handed over before they asked (flushAudit),
// so a call is listed once it has returned; a process killed outright can
// lose the rows of the last few milliseconds' calls, never an answer the
// bank used.
const (
	auditColumns = 10
	// maxAuditBatch keeps one INSERT's parameters well under PostgreSQL's
	// 65535 and SQLite's 32766.
	maxAuditBatch = 500
)

type auditBatch struct {
	invs []*Invocation
	done chan struct{}
}

// auditWriter commits the audit rows handed to it.
// Rows go to it only while it runs, between Start and Close; otherwise
// the caller writes them itself.
type auditWriter struct {
	mu      sync.RWMutex // held for reading while handing rows over
	running bool
	closed  bool
	queue   chan auditBatch
	stop    chan struct{}
	done    chan struct{}
}

func newAuditWriter() *auditWriter {
	return &auditWriter{queue: make(chan auditBatch, 256), stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *Service) startAudit() {
	a := s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running || a.closed {
		return
	}
	a.running = true
	go s.auditLoop()
}

func (s *Service) auditLoop() {
	defer close(s.audit.done)
	for {
		select {
		case b := <-s.audit.queue:
			s.commit(b)
		case <-s.audit.stop:
			// Nothing is handed over once stop is closed; commit what was.
			for {
				select {
				case b := <-s.audit.queue:
					s.commit(b)
				default:
					return
				}
			}
		}
	}
}

// auditLinger is how long the writer waits for more rows after the first
// of a batch, unless a reader is waiting (flushAudit) or the batch is
// full: no caller waits for the rows, and a busy node then commits a few
// hundred times a second at most, not once per call.
const auditLinger = 5 * time.Millisecond

// commit writes first and every batch handed over within auditLinger of
// it in one INSERT, and tells those waiting for it.
func (s *Service) commit(first auditBatch) {
	batches := []auditBatch{first}
	rows := len(first.invs)
	flush := rows == 0 // a reader waits
	linger := time.NewTimer(auditLinger)
	defer linger.Stop()
more:
	for rows < maxAuditBatch && !flush {
		select {
		case b := <-s.audit.queue:
			batches = append(batches, b)
			rows += len(b.invs)
			flush = len(b.invs) == 0
		case <-linger.C:
			break more
		case <-s.audit.stop:
			break more
		}
	}
	// Whatever else is queued already goes too.
drain:
	for rows < maxAuditBatch {
		select {
		case b := <-s.audit.queue:
			batches = append(batches, b)
			rows += len(b.invs)
		default:
			break drain
		}
	}
	invs := make([]*Invocation, 0, rows)
	for _, b := range batches {
		invs = append(invs, b.invs...)
	}
	if len(invs) > 0 { // a flush alone has none
		s.write(invs)
	}
	for _, b := range batches {
		close(b.done)
	}
}

// stopAudit stops the writer once it has committed what it was handed;
// later calls write their rows themselves.
func (s *Service) stopAudit() {
	a := s.audit
	a.mu.Lock()
	running := a.running
	a.running, a.closed = false, true
	a.mu.Unlock()
	if running {
		close(a.stop)
		<-a.done
	}
}

// record hands the audit rows of one call to the writer, which commits
// them shortly; it waits only while the writer's queue is full. Once the
// writer is not running, it writes them itself.
func (s *Service) record(invs []*Invocation) {
	if len(invs) == 0 {
		return
	}
	a := s.audit
	a.mu.RLock()
	if !a.running {
		a.mu.RUnlock()
		s.write(invs)
		return
	}
	a.queue <- auditBatch{invs: invs, done: make(chan struct{})}
	a.mu.RUnlock()
}

// flushAudit waits until the rows handed to the writer before it are
// committed, so a reader on this node sees every call that returned
// before it asked.
func (s *Service) flushAudit() {
	a := s.audit
	a.mu.RLock()
	if !a.running {
		a.mu.RUnlock()
		return
	}
	b := auditBatch{done: make(chan struct{})}
	a.queue <- b
	a.mu.RUnlock()
	<-b.done
}

// write inserts rows in one statement. The bank already has its answer
// by now; a failed write must not change it, but must not go unnoticed.
func (s *Service) write(invs []*Invocation) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := make([]any, 0, auditColumns*len(invs))
	for _, inv := range invs {
		args = append(args, inv.ID, inv.RegistrationID, inv.AppID, inv.ExtensionPoint, store.Micros(inv.StartedAt),
			int64(inv.LatencyMS*1000), inv.Outcome, inv.FailureReason, inv.StandIn, inv.StatusCode)
	}
	query := `INSERT INTO spi_invocations (id, registration_id, app_id, extension_point, started_at,
		latency_us, outcome, failure_reason, stand_in, status_code) VALUES ` + s.db.Dialect.Values(len(invs), auditColumns)
	// A quiet node writes one row at a time: that insert is prepared once.
	var st *sql.Stmt
	if len(invs) == 1 {
		var err error
		if st, err = s.prepared(ctx, &s.recordStmt, query); err != nil {
			s.log.ErrorContext(ctx, "recording invocations failed", "error", err, "rows", len(invs), "first", invs[0].ID)
			return
		}
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if st != nil {
			_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, query, args...)
		}
		return err
	})
	if err != nil {
		s.log.ErrorContext(ctx, "recording invocations failed", "error", err, "rows", len(invs), "first", invs[0].ID)
	}
}

// Invocations lists the audited calls to a registration, newest first. An
// app sees only its own registration's, and the app_id of a call only when
// the call was its own process's; the bank sees every one; anyone else
// none (ENOTFOUND).
func (s *Service) Invocations(ctx context.Context, caller auth.Caller, registrationID string, limit int, cursor string) (*page.Page[*Invocation], error) {
	if _, err := s.Registration(ctx, caller, registrationID); err != nil {
		return nil, err
	}
	s.flushAudit()
	appID, isApp := caller.App()
	limit, before, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	q := `SELECT id, registration_id, app_id, extension_point, started_at, latency_us, outcome, failure_reason,
		stand_in, status_code FROM spi_invocations WHERE registration_id = $1`
	args := []any{registrationID}
	if before != "" {
		q += ` AND id < $2`
		args = append(args, before)
	}
	args = append(args, limit+1)
	q += ` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	pg := &page.Page[*Invocation]{Data: []*Invocation{}}
	for rows.Next() {
		var inv Invocation
		var started, latency int64
		if err := rows.Scan(&inv.ID, &inv.RegistrationID, &inv.AppID, &inv.ExtensionPoint, &started, &latency,
			&inv.Outcome, &inv.FailureReason, &inv.StandIn, &inv.StatusCode); err != nil {
			return nil, store.Classify(err)
		}
		inv.StartedAt, inv.LatencyMS = store.FromMicros(started), float64(latency)/1000
		if isApp && inv.AppID != appID {
			// Another tenant's process: the provider learns that a call
			// happened, not whose.
			inv.AppID = ""
		}
		pg.Data = append(pg.Data, &inv)
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	if len(pg.Data) > limit {
		pg.Data = pg.Data[:limit]
		pg.NextCursor = page.Cursor(pg.Data[limit-1].ID)
	}
	return pg, nil
}

// InvocationRetention is how long invocation records are kept: each call's
// outcome and latency, for the developer's log and the bank's audit.
const InvocationRetention = 90 * 24 * time.Hour

// Jobs are the SPI's periodic jobs for the cluster's leader: pruning
// invocation records past InvocationRetention, hourly.
func (s *Service) Jobs() []leader.Job {
	return []leader.Job{{Name: "prune SPI invocation records", Every: time.Hour, Do: func(ctx context.Context) (int64, error) {
		return s.PruneInvocations(ctx, s.now().Add(-InvocationRetention))
	}}}
}

// PruneInvocations deletes the invocation records of calls started before
// the given time, and says how many it deleted.
func (s *Service) PruneInvocations(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM spi_invocations WHERE started_at < $1`, store.Micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
