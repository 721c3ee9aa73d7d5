package throttle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/bus"
)

// StreamBucket is the name, under the bus prefix, of the bucket holding
// the count of open event streams per app.
const StreamBucket = "throttle_streams"

// Stream slots.
//
// An app's key holds, per node, how many of the app's streams the node
// serves and until when that count holds (its lease). A node takes a slot
// with compare-and-swap only if the sum over the nodes whose lease has not
// run out stays within the cap, so two nodes never both take the last
// slot. A serving node renews its leases every StreamLease/3, writing its
// own count afresh; a node that dies stops renewing, and its slots are
// free once its lease runs out. Leases are judged on each node's own
// clock: keep nodes on NTP (a skew shortens or lengthens a dead node's
// hold by as much).
const (
	// StreamLease is how long a node's count holds without a renewal.
	StreamLease = 30 * time.Second
	// streamRetryAfter is what a refused client is told to wait: when a
	// slot frees is not known.
	streamRetryAfter = 5 * time.Second
)

// streamSlots is an app's key: node id -> its share.
type streamSlots map[string]nodeSlots

type nodeSlots struct {
	N int `json:"n"`
	// Until is when the lease runs out, ns since the epoch.
	Until int64 `json:"until"`
}

// Streams counts open event streams per app across nodes.
type Streams struct {
	kv   jetstream.KeyValue
	node string
	max  int
	log  *slog.Logger

	mu   sync.Mutex
	held map[string]int // app id -> streams this node serves
}

// OpenStreams creates (or opens) the stream slots' bucket. node names this
// node uniquely (a restart is a new node); perApp is the cap per app.
func OpenStreams(ctx context.Context, b *bus.Bus, node string, perApp int, log *slog.Logger) (*Streams, error) {
	if perApp < 1 {
		return nil, errors.New("throttle: the stream cap must be at least 1")
	}
	if log == nil {
		log = slog.Default()
	}
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Stream(StreamBucket),
		Description: "Causeway: open event streams per app and node, with leases",
		History:     1,
		// Only forgets apps with no stream for long; leases are in values.
		TTL:          time.Hour,
		MaxValueSize: 64 * 1024,
		Storage:      jetstream.FileStorage,
	})
	if err != nil {
		return nil, bus.Classify(fmt.Errorf("throttle bucket %s: %w", b.Stream(StreamBucket), err))
	}
	return &Streams{kv: kv, node: node, max: perApp, log: log, held: map[string]int{}}, nil
}

// Max is the cap of streams per app.
func (s *Streams) Max() int { return s.max }

// Acquire takes one of the app's stream slots, or fails with ERATELIMIT
// too_many_streams (RetryAfter set) when every slot is held, or
// EUNAVAILABLE when the bucket cannot be reached. release gives the slot
// back; call it once, when the stream ends.
func (s *Streams) Acquire(ctx context.Context, appID string) (release func(), err error) {
	// The local count goes up first, so a renewal running meanwhile never
	// writes less than the slot being taken.
	s.mu.Lock()
	s.held[appID]++
	s.mu.Unlock()
	var full bool
	err = s.update(ctx, appID, func(slots streamSlots, now int64) bool {
		total := 0
		for node, n := range slots {
			if node != s.node && n.Until > now {
				total += n.N
			}
		}
		mine := s.count(appID)
		if total+mine > s.max {
			full = true
			return false
		}
		full = false
		slots[s.node] = nodeSlots{N: mine, Until: now + int64(StreamLease)}
		return true
	})
	if err == nil && full {
		err = &causeway.Error{Kind: causeway.ERATELIMIT, Code: "too_many_streams", RetryAfter: streamRetryAfter,
			Message: fmt.Sprintf("this app already has %d open event streams, the most it may have; close one, or use webhooks", s.max)}
	}
	if err != nil {
		s.drop(appID)
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { s.release(appID) }) }, nil
}

func (s *Streams) count(appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[appID]
}

func (s *Streams) drop(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[appID]--; s.held[appID] <= 0 {
		delete(s.held, appID)
	}
}

// release gives a slot back. If the bucket cannot be reached the slot is
// freed in the shared count with the next renewal, or when this node's
// lease runs out.
func (s *Streams) release(appID string) {
	s.drop(appID)
	err := s.update(context.Background(), appID, func(slots streamSlots, now int64) bool {
		mine := s.count(appID)
		if mine == 0 {
			delete(slots, s.node)
		} else {
			slots[s.node] = nodeSlots{N: mine, Until: now + int64(StreamLease)}
		}
		return true
	})
	if err != nil {
		s.log.Warn("could not give a stream slot back; it frees with the lease", "app_id", appID, "error", err.Error())
	}
}

// Open counts the event streams open now on every node: the counts whose
// lease has not run out, over every app. It fails with EUNAVAILABLE when
// the bucket cannot be read.
func (s *Streams) Open(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return 0, unavailable(err)
	}
	defer w.Stop()
	now := time.Now().UnixNano()
	total := 0
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // every current value has been seen
				return total, nil
			}
			var slots streamSlots
			if json.Unmarshal(e.Value(), &slots) != nil {
				continue
			}
			for _, n := range slots {
				if n.Until > now {
					total += n.N
				}
			}
		case <-ctx.Done():
			return 0, unavailable(ctx.Err())
		}
	}
}

// Run renews this node's leases every StreamLease/3 until ctx is done.
// Streams that end give their slots back themselves (release); what a
// stopped node still holds frees when its lease runs out.
func (s *Streams) Run(ctx context.Context) error {
	t := time.NewTicker(StreamLease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.renew(ctx)
		}
	}
}

// renew writes this node's count of each app's streams with a fresh lease.
func (s *Streams) renew(ctx context.Context) {
	s.mu.Lock()
	apps := make([]string, 0, len(s.held))
	for app := range s.held {
		apps = append(apps, app)
	}
	s.mu.Unlock()
	for _, app := range apps {
		err := s.update(ctx, app, func(slots streamSlots, now int64) bool {
			mine := s.count(app)
			if mine == 0 {
				delete(slots, s.node)
			} else {
				slots[s.node] = nodeSlots{N: mine, Until: now + int64(StreamLease)}
			}
			return true
		})
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "could not renew stream slots", "app_id", app, "error", err.Error())
		}
	}
}

// update applies fn to the app's slots with compare-and-set until it
// sticks (see updateJSON); expired leases of other nodes are dropped on
// the way. fn says whether to write.
func (s *Streams) update(ctx context.Context, appID string, fn func(streamSlots, int64) bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kvTimeout)
	defer cancel()
	return updateJSON(ctx, s.kv, "app."+Key("id", appID), func(slots streamSlots, _ bool) (streamSlots, bool) {
		if slots == nil {
			slots = streamSlots{}
		}
		now := time.Now().UnixNano()
		for node, n := range slots {
			if n.Until <= now {
				delete(slots, node)
			}
		}
		return slots, fn(slots, now)
	})
}
