package webhooks

import (
	"context"
	"database/sql"
)

// Attempt records are written before the event is acknowledged, so a
// record is never missing for an acknowledged attempt. One transaction per
// attempt would make SQLite's commit the dispatcher's ceiling, so one
// writer goroutine groups the records that arrive while it commits into a
// single transaction (group commit): under load, one commit carries many
// attempts; when idle, a record is written at once.

// maxRecordBatch bounds the attempts written in one transaction.
const maxRecordBatch = 128

// recordReq is one attempt waiting to be written.
type recordReq struct {
	d    *Delivery
	kind recordKind
	done chan struct{}
	// Set by the writer before done is closed.
	disabled *record
	reason   string
	err      error
}

// record writes an attempt and its effect on the subscription, then
// counts it, logs it and, if it disabled the subscription, says so. A
// failure to write is logged: the attempt happened either way.
func (s *Service) record(ctx context.Context, d *Delivery, kind recordKind) {
	req := &recordReq{d: d, kind: kind, done: make(chan struct{})}
	var (
		disabled *record
		reason   string
		err      error
	)
	// The writer owns req's result fields until it closes done.
	select {
	case s.records <- req:
		select {
		case <-req.done:
			disabled, reason, err = req.disabled, req.reason, req.err
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-s.recorderDone:
		s.writeRecords(ctx, []*recordReq{req}) // the writer has stopped: write it here
		disabled, reason, err = req.disabled, req.reason, req.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.metrics.attempts.WithLabelValues(d.Origin, d.Outcome).Inc()
	if d.StatusCode != 0 {
		s.metrics.latency.Observe(d.LatencyMS / 1000)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "recording a delivery attempt failed", "webhook_id", d.SubscriptionID,
			"event_id", d.EventID, "outcome", d.Outcome, "error", err.Error())
		return
	}
	s.log.DebugContext(ctx, "attempt", "webhook_id", d.SubscriptionID, "event_id", d.EventID, "attempt", d.Attempt,
		"origin", d.Origin, "outcome", d.Outcome, "status", d.StatusCode, "latency_ms", d.LatencyMS)
	if disabled != nil {
		s.afterDisable(d.SubscriptionID, disabled.AppID, reason)
	}
}

// runRecorder writes queued records until recorderQuit is closed.
func (s *Service) runRecorder() {
	defer close(s.recorderDone)
	for {
		var batch []*recordReq
		select {
		case r := <-s.records:
			batch = append(batch, r)
		case <-s.recorderQuit:
			// Nothing should be queued by now (Close waits for every
			// attempt first); write whatever is, all the same.
			for {
				select {
				case r := <-s.records:
					batch = append(batch, r)
				default:
					ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
					s.writeRecords(ctx, batch)
					cancel()
					return
				}
			}
		}
	more:
		for len(batch) < maxRecordBatch {
			select {
			case r := <-s.records:
				batch = append(batch, r)
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		s.writeRecords(ctx, batch)
		cancel()
	}
}

// writeRecords writes a batch in one transaction; if that fails, each
// record on its own, so that one bad record does not lose the others.
func (s *Service) writeRecords(ctx context.Context, batch []*recordReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	write := func(rs []*recordReq) error {
		return s.db.Tx(ctx, func(tx *sql.Tx) error {
			ds := make([]*Delivery, len(rs))
			for i, r := range rs {
				ds[i] = r.d
			}
			if err := insertDeliveries(ctx, tx, s.db.Dialect, ds); err != nil {
				return err
			}
			cleared := map[string]bool{}
			for _, r := range rs {
				var err error
				if r.disabled, r.reason, err = s.applyRecord(ctx, tx, r.d, r.kind, cleared); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := write(batch)
	if err == nil {
		return
	}
	if len(batch) == 1 || ctx.Err() != nil {
		for _, r := range batch {
			r.disabled, r.err = nil, err
		}
		return
	}
	for _, r := range batch {
		if r.err = write([]*recordReq{r}); r.err != nil {
			r.disabled = nil
		}
	}
}
