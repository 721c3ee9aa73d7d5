package webhooks

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
)

// Re-sends (recover and manual retry) run in the background of the node
// that took the request, outside the subscription's consumer: each event
// gets one attempt, recorded with its origin, and is not retried. They
// stop when the service closes; a recover cut short can be asked again.

// recoverBatch is how many events a recover fetches at a time.
const recoverBatch = 20

func (s *Service) activeState(ctx context.Context, caller auth.Caller, id string) (*subState, error) {
	r, err := getSubscription(ctx, s.db, caller, id)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusActive {
		return nil, causeway.Errorf(causeway.ECONFLICT, "webhook_not_active", "the subscription is %s; resume it first", r.Status)
	}
	return s.newState(r)
}

func (s *Service) stream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.bus.JetStream().Stream(ctx, s.bus.Stream(outbox.StreamName))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, bus.Classify(err)
	}
	return st, err
}

// Recover re-sends, in the background and in stream order, every event of
// the subscription published since the given time (but not before the
// subscription was created) and up to now, that the app may see and the
// filter matches: at most Options.RecoverLimit events.
// Only one recover per subscription runs at a time, whichever node took
// it: it claims the subscription in the database (see claimRecover), so of
// two callers asking at once exactly one gets its recover. Errors:
// ENOTFOUND webhook_not_found; EINVALID invalid_since; ECONFLICT
// recover_in_progress, webhook_not_active (the subscription must be
// active).
func (s *Service) Recover(ctx context.Context, caller auth.Caller, id string, since time.Time) error {
	st, err := s.activeState(ctx, caller, id)
	if err != nil {
		return err
	}
	if since.After(s.opts.Now()) {
		return causeway.Errorf(causeway.EINVALID, "invalid_since", "since is in the future")
	}
	// Nothing from before the subscription existed: a recover re-sends, it
	// does not back-fill history (GET /v1/events is for catching up).
	if since.Before(st.createdAt) {
		since = st.createdAt
	}
	stream, err := s.stream(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // no event was ever published
	}
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return bus.Classify(err)
	}
	c, err := s.claimRecover(ctx, caller, id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.release()
		return causeway.Errorf(causeway.EUNAVAILABLE, "shutting_down", "the node is shutting down; try again")
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		defer c.release()
		n, err := s.recover(s.bgCtx, stream, st, since, info.State.LastSeq, c)
		if err != nil && s.bgCtx.Err() == nil {
			s.log.WarnContext(ctx, "recover stopped early", "webhook_id", id, "sent", n, "error", err.Error())
			return
		}
		s.log.InfoContext(ctx, "recover done", "webhook_id", id, "since", since, "sent", n)
	}()
	return nil
}

// recover walks the stream from since to lastSeq with an ordered consumer
// (ephemeral, no acks) and re-sends what the subscription wants.
func (s *Service) recover(ctx context.Context, stream jetstream.Stream, st *subState, since time.Time, lastSeq uint64, c *recoverClaim) (int, error) {
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    s.filterSubjects(st.patterns),
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &since,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, err
	}
	sent := 0
	for sent < s.opts.RecoverLimit {
		batch, err := oc.Fetch(recoverBatch, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return sent, err
		}
		got, done := 0, false
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return sent, err
			}
			if meta.Sequence.Stream > lastSeq {
				done = true
				break
			}
			if meta.NumPending == 0 || meta.Sequence.Stream == lastSeq {
				done = true
			}
			env, err := events.FromMsg(msg)
			if err != nil {
				continue
			}
			want, err := s.wants(ctx, st, env)
			if err != nil {
				return sent, err
			}
			if want && sent < s.opts.RecoverLimit {
				if err := c.renew(ctx); err != nil {
					return sent, err
				}
				s.sendOnce(ctx, st, env, OriginRecover)
				sent++
			}
			if ctx.Err() != nil {
				return sent, ctx.Err()
			}
			if done {
				break // the rest of the fetch is newer than the recover; it is left behind
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			return sent, err
		}
		if done || got == 0 {
			return sent, nil
		}
	}
	return sent, nil
}

// Retry re-sends the event of one recorded delivery now, in the
// background. The subscription must be active (ECONFLICT
// webhook_not_active); an event the stream no longer holds is ENOTFOUND
// event_expired.
func (s *Service) Retry(ctx context.Context, caller auth.Caller, id, deliveryID string) error {
	st, err := s.activeState(ctx, caller, id)
	if err != nil {
		return err
	}
	d, err := getDelivery(ctx, s.db, id, deliveryID)
	if err != nil {
		return err
	}
	expired := causeway.Errorf(causeway.ENOTFOUND, "event_expired", "event %s is no longer kept in the event stream", d.EventID)
	stream, err := s.stream(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return expired
	}
	if err != nil {
		return err
	}
	raw, err := stream.GetMsg(ctx, d.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return expired
	}
	if err != nil {
		return bus.Classify(err)
	}
	env, err := events.FromRaw(raw)
	if err != nil || env.ID != d.EventID {
		return expired
	}
	visible, err := s.vis.Visible(ctx, st.appID, env)
	if err != nil {
		return err
	}
	if !visible {
		return causeway.Errorf(causeway.ENOTFOUND, "event_expired", "event %s is no longer visible to this app", d.EventID)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return causeway.Errorf(causeway.EUNAVAILABLE, "shutting_down", "the node is shutting down; try again")
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		s.sendOnce(s.bgCtx, st, env, OriginRetry)
	}()
	return nil
}

// recoverClaim is a recover's hold on its subscription: a lease in the
// subscription's row that lapses unless renewed, so a recover whose node
// died does not block the next one for long.
type recoverClaim struct {
	s       *Service
	id      string // the subscription
	lease   string
	renewed time.Time
}

// recoverLease is how long a claim lasts without renewal: long enough for
// one attempt and then some, since the claim is renewed before each
// re-send.
func (s *Service) recoverLease() time.Duration {
	return max(time.Minute, 2*s.opts.RequestTimeout)
}

// claimRecover claims an active subscription for a recover; the caller
// must have been found allowed to see it (Recover's activeState). The
// UPDATE names the state it leaves (active, no recover running or the
// last one's claim lapsed), so of concurrent claims on any nodes exactly
// one succeeds. Errors: ENOTFOUND webhook_not_found; ECONFLICT
// webhook_not_active, recover_in_progress.
func (s *Service) claimRecover(ctx context.Context, caller auth.Caller, id string) (*recoverClaim, error) {
	now := s.opts.Now()
	c := &recoverClaim{s: s, id: id, lease: ids.New("rcv"), renewed: now}
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_subscriptions SET recover_lease = $1, recover_until = $2
		WHERE id = $3 AND status = $4 AND recover_until < $5`,
		c.lease, store.Micros(now.Add(s.recoverLease())), id, StatusActive, store.Micros(now))
	if err != nil {
		return nil, store.Classify(err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return c, nil
	}
	r, err := getSubscription(ctx, s.db, caller, id)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusActive {
		return nil, causeway.Errorf(causeway.ECONFLICT, "webhook_not_active", "the subscription is %s; resume it first", r.Status)
	}
	return nil, causeway.Errorf(causeway.ECONFLICT, "recover_in_progress", "a recover of this subscription is already running")
}

// renew extends the claim once a third of it has passed. A claim that
// lapsed and was taken by another recover, or whose subscription was
// deleted, ends this recover.
func (c *recoverClaim) renew(ctx context.Context) error {
	now := c.s.opts.Now()
	lease := c.s.recoverLease()
	if now.Sub(c.renewed) < lease/3 {
		return nil
	}
	res, err := c.s.db.ExecContext(ctx, `UPDATE webhook_subscriptions SET recover_until = $1 WHERE id = $2 AND recover_lease = $3`,
		store.Micros(now.Add(lease)), c.id, c.lease)
	if err != nil {
		return store.Classify(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errors.New("the recover's claim on the subscription was lost")
	}
	c.renewed = now
	return nil
}

// release gives the claim up, even when the recover was cancelled.
func (c *recoverClaim) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.s.db.ExecContext(ctx, `UPDATE webhook_subscriptions SET recover_lease = '', recover_until = 0
		WHERE id = $1 AND recover_lease = $2`, c.id, c.lease); err != nil {
		// The claim lapses by itself within recoverLease.
		c.s.log.WarnContext(ctx, "releasing a recover's claim failed", "webhook_id", c.id, "error", err.Error())
	}
}
