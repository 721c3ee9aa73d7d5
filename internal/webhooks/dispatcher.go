package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/outbox"
)

// sweepEvery is how many syncs pass between sweeps for consumers whose
// subscription is gone (normally Delete removes them at once).
const sweepEvery = 60

// Run delivers events until ctx is done, then stops every consumer, lets
// attempts in flight finish or cancels them, and returns nil. It keeps one
// durable pull consumer per active subscription on the events stream,
// starting and stopping them as subscriptions are created, paused,
// resumed, disabled and deleted: it re-reads the subscriptions every
// Options.SyncInterval, and at once after a change through this node.
// Until the relay has created the events stream, Run waits for it. Errors
// (database or bus down) are logged and retried.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("webhooks: Run after Close")
	}
	if s.stopRun != nil {
		s.mu.Unlock()
		return errors.New("webhooks: Run is already running")
	}
	s.stopRun = cancel
	runDone := make(chan struct{})
	s.runDone = runDone
	s.mu.Unlock()
	defer close(runDone)

	var workers sync.WaitGroup
	d := &dispatcher{s: s, ctx: ctx, workers: &workers}
	defer func() {
		s.mu.Lock()
		for id, w := range s.workers {
			w.stop(true)
			delete(s.workers, id)
		}
		s.stopRun = nil
		s.mu.Unlock()
		workers.Wait()
	}()

	syncTick := time.NewTicker(s.opts.SyncInterval)
	defer syncTick.Stop()
	failures := 0
	for {
		covered := s.startSync()
		err := d.sync()
		s.endSync(covered)
		if err != nil && ctx.Err() == nil {
			failures++
			if failures == 1 || failures%60 == 0 {
				s.log.WarnContext(ctx, "sync failed; retrying", "error", err.Error(), "failures", failures)
			}
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-syncTick.C:
		case <-s.wake:
		}
	}
}

// dispatcher is the state of one Run.
type dispatcher struct {
	s       *Service
	ctx     context.Context
	workers *sync.WaitGroup
	stream  jetstream.Stream
	syncs   int
}

// sync brings the running consumers in line with the subscriptions table.
func (d *dispatcher) sync() error {
	s := d.s
	if d.stream == nil {
		st, err := s.bus.JetStream().Stream(d.ctx, s.bus.Stream(outbox.StreamName))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil // the relay has not published yet; nothing to deliver
		}
		if err != nil {
			return fmt.Errorf("events stream: %w", err)
		}
		d.stream = st
	}
	if d.syncs%sweepEvery == 0 {
		if err := d.sweep(); err != nil {
			s.log.Warn("sweeping orphaned consumers failed", "error", err.Error())
		}
	}
	d.syncs++
	recs, err := activeRecords(d.ctx, s.db)
	if err != nil {
		return err
	}
	active := make(map[string]bool, len(recs))
	var firstErr error
	for _, r := range recs {
		active[r.ID] = true
		if err := d.apply(r); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("subscription %s: %w", r.ID, err)
		}
	}
	s.mu.Lock()
	for id, w := range s.workers {
		if !active[id] {
			w.stop(false)
			delete(s.workers, id)
		}
	}
	s.mu.Unlock()
	return firstErr
}

// apply starts, refreshes or restarts the worker of an active
// subscription.
func (d *dispatcher) apply(r *record) error {
	s := d.s
	s.mu.Lock()
	w := s.workers[r.ID]
	s.mu.Unlock()
	key := consumerKey(r)
	if w != nil && !w.broken.Load() && w.key == key {
		if cur := w.state.Load(); !cur.updatedAt.Equal(r.UpdatedAt) {
			st, err := s.newState(r)
			if err != nil {
				return err
			}
			w.state.Store(st)
		}
		return nil
	}
	st, err := s.newState(r)
	if err != nil {
		return err
	}
	cons, err := d.stream.CreateOrUpdateConsumer(d.ctx, s.consumerConfig(r))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		d.stream = nil // deleted under us; look it up again next time
	}
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	if w != nil && !w.broken.Load() && w.state.Load().ordered == r.Ordered {
		// Only the event types changed; the running pull keeps working
		// against the updated consumer.
		w.key = key
		w.state.Store(st)
		return nil
	}
	if w != nil {
		w.stop(false) // broken, or its number of attempts in flight changes
	}
	nw, err := s.startWorker(d.ctx, cons, st, key, d.workers)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.workers[r.ID] = nw
	s.mu.Unlock()
	return nil
}

// sweep deletes subscription consumers whose subscription is gone. It
// lists consumers before reading the table: a consumer is created only
// after its row is committed, so a subscription created meanwhile is never
// mistaken for an orphan.
func (d *dispatcher) sweep() error {
	var names []string
	lister := d.stream.ConsumerNames(d.ctx)
	for name := range lister.Name() {
		if ids.Valid(name, "wh") {
			names = append(names, name)
		}
	}
	if err := lister.Err(); err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	exist, err := existingIDs(d.ctx, d.s.db)
	if err != nil {
		return err
	}
	for _, name := range names {
		if !exist[name] {
			if err := d.stream.DeleteConsumer(d.ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
			d.s.log.Info("deleted the consumer of a deleted subscription", "webhook_id", name)
		}
	}
	return nil
}

// consumerKey is what, when it changes, needs the consumer updated.
func consumerKey(r *record) string {
	return fmt.Sprintf("%v|%s", r.Ordered, strings.Join(r.EventTypes, ","))
}

// filterSubjects maps event type patterns to stream subjects: "payment.*"
// to <prefix>.events.payment.>, and "*" to no filter at all. A server
// older than 2.10 takes one filter subject only; a subscription with
// several patterns then reads every event and the dispatcher filters by
// type itself (it always checks the type anyway).
func (s *Service) filterSubjects(patterns []string) []string {
	var out []string
	for _, p := range normalizePatterns(patterns) {
		if p == "*" {
			return nil
		}
		if prefix, ok := strings.CutSuffix(p, ".*"); ok {
			out = append(out, outbox.Subject(s.bus, prefix+".>"))
		} else {
			out = append(out, outbox.Subject(s.bus, p))
		}
	}
	if len(out) > 1 && !serverAtLeast(s.bus.Conn().ConnectedServerVersion(), 2, 10) {
		return nil
	}
	slices.Sort(out)
	return out
}

// serverAtLeast reports whether a NATS server version is at least
// major.minor.
func serverAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// maxDeliver is the number of attempts an event gets.
func (s *Service) maxDeliver() int { return len(s.opts.Schedule) + 1 }

// ackWait must outlast an attempt, and the wait of a message buffered
// behind a full set of attempts in flight; InProgress restarts it when an
// attempt begins.
func (s *Service) ackWait() time.Duration { return 2*s.opts.RequestTimeout + 30*time.Second }

// maxAckPending bounds the messages of an unordered subscription's
// consumer that JetStream has delivered and not yet had acknowledged.
const maxAckPending = 1000

// consumerConfig is the durable consumer of a subscription: named after
// it, filtered by its event types, starting at its creation, with one
// attempt per delivery and MaxAckPending 1 when it is ordered.
func (s *Service) consumerConfig(r *record) jetstream.ConsumerConfig {
	start := r.CreatedAt
	maxPending := maxAckPending
	if r.Ordered {
		maxPending = 1
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       r.ID,
		Description:   "webhook subscription " + r.ID,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &start,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.ackWait(),
		MaxDeliver:    s.maxDeliver(),
		MaxAckPending: maxPending,
	}
	// One subject goes in FilterSubject, which every server version knows.
	if subjects := s.filterSubjects(r.EventTypes); len(subjects) == 1 {
		cfg.FilterSubject = subjects[0]
	} else {
		cfg.FilterSubjects = subjects
	}
	return cfg
}

func (s *Service) deleteConsumer(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := s.bus.JetStream().DeleteConsumer(ctx, s.bus.Stream(outbox.StreamName), id)
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	return err
}

// worker pulls one subscription's consumer and runs its attempts.
//
// It takes messages through Consume, whose subscription queues what
// arrives, rather than through Messages, whose fixed buffer of
// MaxMessages drops what does not fit ("slow consumer"). After a NATS
// reconnect the server still holds the pull request made before the
// disconnect, on the same inbox, while the client makes a new one: up to
// twice MaxMessages arrive, and with Messages the surplus was dropped,
// delivered as far as the server knew, and only sent again after AckWait
// (a minute) had passed.
type worker struct {
	s     *Service
	id    string
	key   string
	state atomic.Pointer[subState]
	cc    jetstream.ConsumeContext
	// ctx ends attempts in flight: when the subscription is deleted or Run
	// stops. A pause lets them finish.
	ctx      context.Context
	cancel   context.CancelFunc
	stopping atomic.Bool
	stopOnce sync.Once
	// broken is set when the consumer vanished under the worker; the next
	// sync creates it again.
	broken   atomic.Bool
	slots    chan struct{} // attempts in flight, from pull to settling
	attempts sync.WaitGroup
}

func (s *Service) startWorker(ctx context.Context, cons jetstream.Consumer, st *subState, key string, wg *sync.WaitGroup) (*worker, error) {
	inFlight := s.opts.MaxInFlight
	if st.ordered {
		inFlight = 1
	}
	w := &worker{s: s, id: st.id, key: key, slots: make(chan struct{}, inFlight)}
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.state.Store(st)
	cc, err := cons.Consume(w.receive, jetstream.PullMaxMessages(inFlight), jetstream.ConsumeErrHandler(w.consumeError))
	if err != nil {
		w.cancel()
		return nil, fmt.Errorf("pull: %w", err)
	}
	w.cc = cc
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run()
	}()
	return w, nil
}

// stop ends the worker without waiting for it: messages it holds but has
// not started are handed back at once, attempts in flight finish (or are
// cancelled, with abort).
func (w *worker) stop(abort bool) {
	w.stopOnce.Do(func() {
		w.stopping.Store(true)
		w.cc.Drain()
	})
	if abort {
		w.cancel()
	}
}

// stopWorker stops a subscription's worker on this node, if it has one.
func (s *Service) stopWorker(id string, abort bool) {
	s.mu.Lock()
	w := s.workers[id]
	delete(s.workers, id)
	s.mu.Unlock()
	if w != nil {
		w.stop(abort)
	}
}

// run waits until the pull ends, by stop or because the consumer or the
// connection went away, and then for the attempts in flight.
func (w *worker) run() {
	<-w.cc.Closed()
	if !w.stopping.Load() {
		w.broken.Store(true)
	}
	w.attempts.Wait()
	w.cancel()
}

// receive starts an attempt for msg when a slot is free. Consume calls it
// for one message at a time, so waiting for a slot holds back the next
// pull. An attempt holds its slot until its record is written and its
// message settled.
func (w *worker) receive(msg jetstream.Msg) {
	if w.stopping.Load() {
		msg.Nak() // hand it back for the next worker, here or on another node
		return
	}
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		msg.Nak()
		return
	}
	if w.stopping.Load() {
		<-w.slots
		msg.Nak()
		return
	}
	w.attempts.Add(1)
	go func() {
		defer w.attempts.Done()
		defer func() { <-w.slots }()
		w.s.handle(w.ctx, w.state.Load(), msg)
	}()
}

func (w *worker) consumeError(_ jetstream.ConsumeContext, err error) {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		w.broken.Store(true)
		w.s.kick()
	}
	if !errors.Is(err, jetstream.ErrNoHeartbeat) {
		w.s.log.Debug("pull", "webhook_id", w.id, "error", err.Error())
	}
}
