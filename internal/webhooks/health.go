package webhooks

import (
	"context"
	"time"

	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
)

// Queue is how far a subscription is behind: events matching it not yet
// sent, and events sent but not settled (in flight or waiting for their
// next attempt). Known is false when the bus could not tell in time.
type Queue struct {
	Known    bool
	Backlog  uint64
	Retrying int
}

// Queues reads the queue of each subscription from its JetStream consumer,
// one request per subscription, bounded to two seconds in total: on a slow
// or unreachable bus the rest are left unknown rather than failing the
// caller (the bank's subscription list and the console's health page).
func (s *Service) Queues(ctx context.Context, subs []*Subscription) []Queue {
	out := make([]Queue, len(subs))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	stream := s.bus.Stream(outbox.StreamName)
	for i, sub := range subs {
		if ctx.Err() != nil {
			break
		}
		c, err := s.bus.JetStream().Consumer(ctx, stream, sub.ID)
		if err != nil {
			continue
		}
		info := c.CachedInfo() // fetched just now by Consumer
		out[i] = Queue{Known: true, Backlog: info.NumPending, Retrying: info.NumAckPending}
	}
	return out
}

// DeadLetters counts, per subscription, the events whose automatic
// attempts ended dead since the given time (each is in the subscription's
// delivery log and can be re-sent). Subscriptions with none are absent.
func (s *Service) DeadLetters(ctx context.Context, since time.Time) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT subscription_id, COUNT(*) FROM webhook_deliveries
		 WHERE outcome = $1 AND created_at >= $2 GROUP BY subscription_id`,
		OutcomeDead, store.Micros(since))
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, store.Classify(err)
		}
		out[id] = n
	}
	return out, store.Classify(rows.Err())
}
