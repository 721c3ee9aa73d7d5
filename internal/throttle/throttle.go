// Package throttle holds the brakes on the platform's open doors, shared
// by every node: counters of attempts in a time window (failed logins per
// account and per client address, sign-ups per address) and the count of
// open event streams per app.
//
// Both live in NATS JetStream key-value buckets, like the gateway's rate
// budgets: the bus is there on both runtimes (embedded NATS, or the
// cluster every node shares), every update is a compare-and-swap on the
// key's revision, so two nodes never both take the last attempt or the
// last slot, and the database, which carries the payments, takes none of
// the load. When the bucket cannot be reached the brakes fail closed (503
// unavailable): a door left open during an outage is what an attacker
// would wait for.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/bus"
)

// CounterBucket is the name, under the bus prefix, of the bucket holding
// the attempt counters.
const CounterBucket = "throttle_counters"

// casAttempts bounds the read-modify-write rounds of one update; after a
// lost round a node waits a random moment, up to casBackoff times the
// rounds lost so far.
const (
	casAttempts = 32
	casBackoff  = 500 * time.Microsecond
	kvTimeout   = 2 * time.Second
)

// Rule is a brake: at most Limit attempts per Window, counted from the
// window's first attempt. Beyond Free attempts in a window, each further
// one must wait a delay that doubles, from one second up to what is left
// of the window: attempts slow down before they stop.
type Rule struct {
	Limit  int
	Window time.Duration
	// Free attempts are not slowed down; Free >= Limit means none is.
	Free int
	// Code is the problem code of a refusal, e.g. too_many_login_attempts.
	Code string
	// Message says what was refused, for the problem's detail.
	Message string
}

// counter is a key's state.
type counter struct {
	// Start is when the window began, ns since the epoch.
	Start int64 `json:"start"`
	// N is how many attempts were taken in it.
	N int64 `json:"n"`
	// Next is the earliest instant the next attempt is taken (slow-down).
	Next int64 `json:"next,omitempty"`
}

// Counters are attempt counters shared by every node.
type Counters struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// OpenCounters creates (or opens) the counters' bucket. Keys are dropped
// once unwritten for maxWindow, the longest window of any rule used with
// them; now is the clock of the windows (tests move it), time.Now if nil.
func OpenCounters(ctx context.Context, b *bus.Bus, maxWindow time.Duration, now func() time.Time) (*Counters, error) {
	if now == nil {
		now = time.Now
	}
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Stream(CounterBucket),
		Description: "Causeway: login and sign-up attempt counters shared by all nodes",
		History:     1,
		// The windows are judged from the values; this only forgets keys
		// nobody has touched for longer than any window.
		TTL:          maxWindow + time.Minute,
		MaxValueSize: 256,
		Storage:      jetstream.FileStorage,
	})
	if err != nil {
		return nil, bus.Classify(fmt.Errorf("throttle bucket %s: %w", b.Stream(CounterBucket), err))
	}
	return &Counters{kv: kv, now: now}, nil
}

// Key names a counter: kind (letters, digits, '.', '-', '_') and a hash of
// what is counted, so that no email address or client address is stored
// in the bus.
func Key(kind, what string) string {
	h := sha256.Sum256([]byte(what))
	return kind + "." + hex.EncodeToString(h[:16])
}

// Take counts one attempt against key under r. When the window is spent,
// or the attempt comes before the slow-down allows, it is not counted and
// the error is ERATELIMIT r.Code with RetryAfter set.
func (c *Counters) Take(ctx context.Context, key string, r Rule) error {
	var refusal error
	err := c.update(ctx, key, func(cur counter, ok bool) (counter, bool) {
		now := c.now().UnixNano()
		refusal = nil
		if !ok || now >= cur.Start+int64(r.Window) {
			cur = counter{Start: now}
		}
		// A node whose clock is behind the one that opened the window
		// must not reopen it, nor wait less.
		now = max(now, cur.Start)
		end := cur.Start + int64(r.Window)
		switch {
		case cur.N >= int64(r.Limit):
			refusal = refuse(r, time.Duration(end-now))
			return cur, false
		case now < cur.Next:
			refusal = refuse(r, time.Duration(cur.Next-now))
			return cur, false
		}
		cur.N++
		if over := cur.N - int64(r.Free); over > 0 {
			// 1 s after the first attempt over Free, then 2 s, 4 s, ...,
			// never past the window's end.
			delay := int64(time.Second) << min(over-1, 30)
			cur.Next = min(now+delay, end)
		}
		return cur, true
	})
	if err != nil {
		return err
	}
	return refusal
}

// Refund gives back one attempt taken with Take in the current window,
// for an attempt that turned out well (a correct password). The slow-down
// already set stays: it is at most a few seconds.
func (c *Counters) Refund(ctx context.Context, key string) error {
	return c.update(ctx, key, func(cur counter, ok bool) (counter, bool) {
		if !ok || cur.N == 0 {
			return cur, false
		}
		cur.N--
		return cur, true
	})
}

// Reset forgets key's attempts.
func (c *Counters) Reset(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kvTimeout)
	defer cancel()
	if err := c.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable(err)
	}
	return nil
}

func refuse(r Rule, wait time.Duration) error {
	wait = max(wait, time.Second)
	return &causeway.Error{Kind: causeway.ERATELIMIT, Code: r.Code, RetryAfter: wait,
		Message: fmt.Sprintf("%s; retry in %d s", r.Message, int64((wait+time.Second-1)/time.Second))}
}

// update applies fn to the counter at key (see updateJSON). Not cut
// short by the request's cancellation: a counted attempt must be recorded
// even if the client hung up.
func (c *Counters) update(ctx context.Context, key string, fn func(counter, bool) (counter, bool)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kvTimeout)
	defer cancel()
	return updateJSON(ctx, c.kv, key, fn)
}

// updateJSON applies fn to the JSON value at key with compare-and-set,
// reading again after another node wrote first, until it sticks. fn gets
// the current value (the zero T when the key is absent, or unreadable:
// start afresh rather than refuse for good) and whether the key exists,
// and says whether to write.
func updateJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(cur T, exists bool) (T, bool)) error {
	for lost := 0; lost < casAttempts; lost++ {
		if lost > 0 {
			select {
			case <-time.After(rand.N(casBackoff * time.Duration(lost))):
			case <-ctx.Done():
				return unavailable(ctx.Err())
			}
		}
		var cur T
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return unavailable(err)
		default:
			rev = e.Revision()
			if json.Unmarshal(e.Value(), &cur) != nil {
				var zero T
				cur = zero
			}
		}
		next, write := fn(cur, rev != 0)
		if !write {
			return nil
		}
		data, _ := json.Marshal(next)
		_, err = bus.CompareAndPut(ctx, kv, key, data, rev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, bus.ErrLostRace) {
			return unavailable(err)
		}
	}
	return causeway.Errorf(causeway.EUNAVAILABLE, "throttle_contended", "too many concurrent attempts; try again")
}

func unavailable(err error) error {
	return errors.Join(err, causeway.Errorf(causeway.EUNAVAILABLE, "throttle_unavailable",
		"the attempt counters cannot be reached; try again in a moment"))
}
