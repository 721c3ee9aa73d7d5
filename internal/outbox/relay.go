package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/store"
)

// RelayOptions tune a Relay. The zero value is usable.
type RelayOptions struct {
	Logger *slog.Logger
	// Interval is how often an idle relay looks for new rows; Notify wakes it
	// sooner. Default 200ms.
	Interval time.Duration
	// BatchSize is the most rows published (and in flight at once) per
	// round. Default 500.
	BatchSize int
	// Retention is how long published rows are kept before Run prunes them.
	// Default 7 days.
	Retention time.Duration
	// PruneInterval is how often Run prunes. Default 1 hour.
	PruneInterval time.Duration
	// NodeID names this relay in the lease; it must differ between nodes.
	// Default: the host name and a random suffix.
	NodeID string
	// LeaseTTL is how long the lease lasts without renewal, and so how long
	// other nodes wait after the holder dies. Default 10s. Unused with Lease.
	LeaseTTL time.Duration
	// Lease, when set, is the cluster's lease (package leader), kept by its
	// own Run: the relay publishes while this node holds it and leaves
	// releasing it to that Run. Without it the relay keeps a lease of its
	// own, named LeaseName, and gives it up as Run returns.
	Lease *leader.Lease
	// Stream is the installation's limits for the events stream, applied
	// when the relay makes sure the stream exists before its first publish.
	Stream StreamLimits
}

func (o *RelayOptions) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Hour
	}
	if o.NodeID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		o.NodeID = strings.TrimPrefix(host+"-", "-") + hex.EncodeToString(b)
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
}

const (
	// ackTimeout bounds the wait for JetStream to acknowledge one publish;
	// an unacknowledged row stays unpublished and is tried again.
	ackTimeout = 5 * time.Second
	// maxBackoff caps the wait between attempts while the database or the
	// bus is down.
	maxBackoff = 5 * time.Second
	// markTimeout bounds marking rows published after the caller's context
	// ended: rows JetStream acknowledged are still worth marking.
	markTimeout = 5 * time.Second
)

// Relay publishes committed outbox rows to JetStream. Several relays may
// share one database (one per node); a lease lets only one of them publish at
// a time, and another takes over within LeaseTTL when the holder stops.
//
// A row that can never be published (larger than the bus accepts) is logged
// at error level and marked published, rather than left to block every row
// behind it.
type Relay struct {
	db   *store.DB
	bus  *bus.Bus
	js   jetstream.JetStream
	opts RelayOptions
	log  *slog.Logger
	wake chan struct{}

	// lease says whether this node publishes; ownLease when the relay
	// made it (RelayOptions.Lease unset) and so gives it up itself.
	lease    *leader.Lease
	ownLease bool

	// mu makes rounds one at a time, so Run and Flush on the same relay do
	// not publish the same rows side by side; it guards streamReady.
	mu          sync.Mutex
	streamReady bool
}

// LeaseName is the lease the relays compete for: one publisher per
// database. The platform's cluster lease has this name too, from when the
// relay's was the only one.
const LeaseName = "outbox-relay"

// NewRelay returns a relay from db to b; it does nothing until Run or Flush.
func NewRelay(db *store.DB, b *bus.Bus, opts RelayOptions) *Relay {
	opts.setDefaults()
	// A JetStream context of its own, so the async publish window and ack
	// timeout apply to the relay's publishes only, not to everything else
	// using the bus's shared context.
	js, err := jetstream.New(b.Conn(),
		jetstream.WithPublishAsyncMaxPending(opts.BatchSize),
		jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		// Only invalid options fail, and setDefaults rules them out.
		panic(fmt.Sprintf("outbox: jetstream context: %v", err))
	}
	r := &Relay{
		db:    db,
		bus:   b,
		js:    js,
		opts:  opts,
		log:   opts.Logger.With("node", opts.NodeID),
		wake:  make(chan struct{}, 1),
		lease: opts.Lease,
	}
	if r.lease == nil {
		r.lease = leader.New(db, leader.Options{Name: LeaseName, NodeID: opts.NodeID, TTL: opts.LeaseTTL, Logger: opts.Logger})
		r.ownLease = true
	}
	// A node that gains the lease publishes the backlog at once.
	r.lease.OnChange(func(held bool) {
		if held {
			r.poke()
		}
	})
	return r
}

// Notify wakes the relay to publish now instead of at its next poll. Call it
// after committing a transaction that appended events; it never blocks.
// When another node holds the lease, the wake-up goes to it over the bus
// (a core NATS message, not persisted: a lost one only means the holder
// publishes at its next poll), so an event committed on any node is
// published at once.
func (r *Relay) Notify() {
	r.poke()
	if !r.lease.Held() {
		// Publish buffers and never waits for the server.
		_ = r.bus.Conn().Publish(r.wakeSubject(), nil)
	}
}

// poke wakes this node's relay.
func (r *Relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// wakeSubject is where nodes wake the lease holder.
func (r *Relay) wakeSubject() string { return r.bus.Subject("outbox", "wake") }

// HoldsLease reports whether this node holds the publishing lease.
func (r *Relay) HoldsLease() bool { return r.lease.Held() }

// Run publishes until ctx is done and then returns nil, releasing a lease
// of its own so another node can take over at once. Errors (database or bus down) are
// logged and retried with backoff. While it holds the lease, Run also prunes
// rows published more than Retention ago, every PruneInterval. To drain the
// backlog on shutdown, call Flush before cancelling ctx. A relay runs one
// Run at a time.
func (r *Relay) Run(ctx context.Context) error {
	r.log.InfoContext(ctx, "outbox relay started", "interval", r.opts.Interval, "lease_ttl", r.lease.TTL())
	// Other nodes' commits wake this relay too (see Notify); without the
	// subscription they are published at the next poll, so a failure to
	// subscribe is logged, not fatal.
	if sub, err := r.bus.Conn().Subscribe(r.wakeSubject(), func(*nats.Msg) { r.poke() }); err != nil {
		r.log.WarnContext(ctx, "cannot listen for other nodes' wake-ups; they will wait for the next poll", "error", err)
	} else {
		defer sub.Unsubscribe()
	}
	defer func() {
		if r.ownLease {
			r.lease.Release()
		}
		r.log.InfoContext(ctx, "outbox relay stopped")
	}()
	// Since Go 1.23, Reset discards a stale expiry, so the timer needs no
	// draining between rounds.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	failures := 0
	nextPrune := time.Now()
	for {
		_, more, err := r.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wake := r.wake
		var wait time.Duration
		if err != nil {
			failures++
			wait = backoff(r.opts.Interval, failures)
			// A wake-up must not cut the backoff short: while the database
			// or bus is down, every commit would otherwise cause a retry.
			wake = nil
			r.log.WarnContext(ctx, "publishing failed; will retry", "error", err, "attempt", failures, "retry_in", wait.Round(time.Millisecond))
		} else {
			if failures > 0 {
				r.log.InfoContext(ctx, "outbox relay recovered", "failed_attempts", failures)
				failures = 0
			}
			if r.HoldsLease() && !time.Now().Before(nextPrune) {
				nextPrune = r.prune(ctx)
			}
			if more {
				continue
			}
			// An idle relay still wakes often enough to renew its lease, or
			// to notice a free one.
			wait = min(r.opts.Interval, r.lease.TTL()/3)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-timer.C:
		}
	}
}

// prune deletes old published rows and returns when to prune next.
func (r *Relay) prune(ctx context.Context) time.Time {
	n, err := r.Prune(ctx, time.Now().Add(-r.opts.Retention))
	if err != nil {
		if ctx.Err() == nil {
			r.log.WarnContext(ctx, "pruning failed", "error", err)
		}
		return time.Now().Add(min(r.opts.PruneInterval, time.Minute))
	}
	if n > 0 {
		r.log.InfoContext(ctx, "outbox relay pruned published events", "events", n, "retention", r.opts.Retention)
	}
	return time.Now().Add(r.opts.PruneInterval)
}

// backoff is the wait after the given number of consecutive failures:
// doubling from base up to maxBackoff, with jitter so that nodes recovering
// together do not retry in step.
func backoff(base time.Duration, failures int) time.Duration {
	d := base
	for i := 0; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + mathrand.N(d/2+1)
}

// Flush publishes every unpublished row now, in id order, and returns how
// many it published. It respects the lease like Run: when another node holds
// it, Flush publishes nothing and returns 0 and no error. A Flush on a relay
// that is not running takes the lease and keeps it until LeaseTTL passes.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		n, more, err := r.round(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// round publishes at most one batch, if this relay holds the lease. more
// reports a full batch, so that more rows may be waiting.
func (r *Relay) round(ctx context.Context) (published int, more bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	held, err := r.lease.Hold(ctx)
	if err != nil || !held {
		return 0, false, err
	}
	if !r.streamReady {
		if _, err := EnsureStream(ctx, r.bus, r.opts.Stream); err != nil {
			return 0, false, err
		}
		r.streamReady = true
	}
	events, err := r.unpublished(ctx)
	if err != nil || len(events) == 0 {
		return 0, false, err
	}
	done, published, pubErr := r.publish(ctx, events)
	if len(done) > 0 {
		// Rows JetStream stored are marked even if ctx has ended meanwhile;
		// if marking fails they are published again and deduplicated.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		defer cancel()
		if err := r.markPublished(mctx, done); err != nil {
			return 0, false, err
		}
	}
	if pubErr != nil {
		if errors.Is(pubErr, jetstream.ErrNoStreamResponse) || errors.Is(pubErr, nats.ErrNoResponders) {
			// The stream is gone (deleted, or NATS lost its store): make it
			// again before the next round.
			r.streamReady = false
		}
		return published, false, bus.Classify(pubErr)
	}
	if published > 0 {
		r.log.DebugContext(ctx, "outbox relay published events", "events", published)
	}
	return published, len(events) == r.opts.BatchSize, nil
}

func (r *Relay) unpublished(ctx context.Context) ([]Event, error) {
	rows, err := r.db.QueryContext(ctx,
		`SELECT id, type, source, subject, time, data, app_id, customer_id
		 FROM outbox_events WHERE published_at IS NULL ORDER BY id LIMIT $1`, r.opts.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("outbox: read unpublished: %w", store.Classify(err))
	}
	defer rows.Close()
	events := make([]Event, 0, r.opts.BatchSize)
	for rows.Next() {
		var e Event
		var at int64
		var data string
		if err := rows.Scan(&e.ID, &e.Type, &e.Source, &e.Subject, &at, &data, &e.AppID, &e.CustomerID); err != nil {
			return nil, fmt.Errorf("outbox: read unpublished: %w", err)
		}
		e.Time = store.FromMicros(at)
		if data != "" {
			e.Data = []byte(data)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: read unpublished: %w", store.Classify(err))
	}
	return events, nil
}

// publish sends events asynchronously, all in flight at once, and waits for
// every acknowledgement. It returns the ids to mark published (stored by
// JetStream, or impossible to publish ever), how many were stored, and the
// first error, which leaves the affected rows for the next round.
func (r *Relay) publish(ctx context.Context, events []Event) (done []string, stored int, err error) {
	type inflight struct {
		id  string
		ack jetstream.PubAckFuture
	}
	pending := make([]inflight, 0, len(events))
	for _, e := range events {
		msg, merr := r.message(e)
		if merr == nil {
			var ack jetstream.PubAckFuture
			ack, merr = r.js.PublishMsgAsync(msg)
			if merr == nil {
				pending = append(pending, inflight{e.ID, ack})
				continue
			}
		}
		if permanent(merr) {
			// Holding the row back would hold back every event after it,
			// forever; it is logged and given up instead.
			r.log.ErrorContext(ctx, "event can never be published; skipping it", "event_id", e.ID, "event_type", e.Type, "error", merr)
			done = append(done, e.ID)
			continue
		}
		err = merr
		break
	}
	for _, p := range pending {
		select {
		case <-p.ack.Ok():
			done = append(done, p.id)
			stored++
		case aerr := <-p.ack.Err():
			if err == nil {
				err = aerr
			}
		case <-ctx.Done():
			return done, stored, ctx.Err()
		}
	}
	return done, stored, err
}

// permanent reports errors that no retry can cure.
func permanent(err error) bool {
	var syntax *jsonError
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) || errors.As(err, &syntax)
}

// jsonError marks an event whose body cannot be encoded.
type jsonError struct{ err error }

func (e *jsonError) Error() string { return "encode cloudevent: " + e.err.Error() }
func (e *jsonError) Unwrap() error { return e.err }

// message is the NATS message for e: the CloudEvent body, Nats-Msg-Id for
// deduplication, and the routing headers.
func (r *Relay) message(e Event) (*nats.Msg, error) {
	body, err := CloudEvent(e)
	if err != nil {
		return nil, &jsonError{err}
	}
	msg := nats.NewMsg(Subject(r.bus, e.Type))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, e.ID)
	msg.Header.Set(HeaderEventType, e.Type)
	if e.AppID != "" {
		msg.Header.Set(HeaderAppID, e.AppID)
	}
	if e.CustomerID != "" {
		msg.Header.Set(HeaderCustomerID, e.CustomerID)
	}
	return msg, nil
}

// markChunk bounds the ids of one UPDATE statement.
const markChunk = 500

func (r *Relay) markPublished(ctx context.Context, ids []string) error {
	now := store.Micros(time.Now())
	err := r.db.SmallWrite(ctx, func(tx store.Querier) error {
		for chunk := range chunks(ids, markChunk) {
			args := make([]any, 0, len(chunk)+1)
			args = append(args, now)
			var q strings.Builder
			q.WriteString("UPDATE outbox_events SET published_at = $1 WHERE id IN (")
			for i, id := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				fmt.Fprintf(&q, "$%d", i+2)
				args = append(args, id)
			}
			q.WriteByte(')')
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: mark published: %w", err)
	}
	return nil
}

func chunks[T any](s []T, size int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			n := min(len(s), size)
			if !yield(s[:n]) {
				return
			}
			s = s[n:]
		}
	}
}

// pruneChunk bounds the rows one pruning transaction deletes, so that on
// SQLite a large prune does not hold the single writer for long.
const pruneChunk = 1000

// Prune deletes rows published before the given time and returns how many.
// Unpublished rows are never deleted, however old. It does not need the
// lease; Run prunes only while it holds it.
func (r *Relay) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := r.db.Tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx,
				`DELETE FROM outbox_events WHERE id IN (
				   SELECT id FROM outbox_events
				   WHERE published_at IS NOT NULL AND published_at < $1 LIMIT $2)`,
				store.Micros(before), pruneChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("outbox: prune: %w", err)
		}
		total += int(n)
		if n < pruneChunk {
			return total, nil
		}
	}
}
