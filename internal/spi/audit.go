package spi

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// The audit is written with group commit: a call hands its rows to one
// writer goroutine and waits until they are committed, and the writer puts
// the rows of every call waiting at that moment into one INSERT. A busy
// node then pays one commit for many calls instead of one each (on SQLite,
// whose writers queue one at a time, that is most of an SPI call's cost),
// and a call still returns only once it is on record.
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
type auditWriter struct {
	mu     sync.RWMutex // held for reading while handing rows over
	closed bool
	queue  chan auditBatch
	stop   chan struct{}
	done   chan struct{}
}

func (s *Service) startAudit() {
	s.audit = &auditWriter{queue: make(chan auditBatch, 256), stop: make(chan struct{}), done: make(chan struct{})}
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

// commit writes first and every batch queued behind it in one INSERT and
// tells their callers.
func (s *Service) commit(first auditBatch) {
	batches := []auditBatch{first}
	rows := len(first.invs)
more:
	for rows < maxAuditBatch {
		select {
		case b := <-s.audit.queue:
			batches = append(batches, b)
			rows += len(b.invs)
		default:
			break more
		}
	}
	invs := make([]*Invocation, 0, rows)
	for _, b := range batches {
		invs = append(invs, b.invs...)
	}
	s.write(invs)
	for _, b := range batches {
		close(b.done)
	}
}

// stopAudit stops the writer once it has committed what it was handed;
// later calls write their rows themselves.
func (s *Service) stopAudit() {
	a := s.audit
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	a.mu.Unlock()
	close(a.stop)
	<-a.done
}

// record puts the audit rows of one call on record before the call
// returns, whether or not its caller is still waiting.
func (s *Service) record(invs []*Invocation) {
	if len(invs) == 0 {
		return
	}
	a := s.audit
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		s.write(invs)
		return
	}
	b := auditBatch{invs: invs, done: make(chan struct{})}
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
			s.log.Error("spi: recording invocations failed", "error", err, "rows", len(invs), "first", invs[0].ID)
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
		s.log.Error("spi: recording invocations failed", "error", err, "rows", len(invs), "first", invs[0].ID)
	}
}

// Invocations lists the audited calls to a registration, newest first. An
// app sees only its own registration's, and the app_id of a call only when
// the call was its own process's; the bank sees every one; anyone else
// none (ENOTFOUND).
func (s *Service) Invocations(ctx context.Context, caller auth.Caller, registrationID string, limit int, cursor string) (*Page[*Invocation], error) {
	if _, err := s.Registration(ctx, caller, registrationID); err != nil {
		return nil, err
	}
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
	pg := &Page[*Invocation]{Data: []*Invocation{}}
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
