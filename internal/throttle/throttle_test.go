package throttle

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/testkit"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var rule = Rule{Limit: 4, Free: 2, Window: time.Minute, Code: "too_many_tries", Message: "too many tries"}

func wantRefused(t *testing.T, err error, atLeast time.Duration) {
	t.Helper()
	var ce *causeway.Error
	if !errors.As(err, &ce) || ce.Kind != causeway.ERATELIMIT || ce.Code != rule.Code || ce.RetryAfter < atLeast {
		t.Fatalf("got %v, want ERATELIMIT %s with RetryAfter >= %s", err, rule.Code, atLeast)
	}
}

func TestCountersSlowDownThenStopUntilTheWindowEnds(t *testing.T) {
	bustest.Each(t, func(t *testing.T, b *bus.Bus) {
		c := &clock{t: time.Unix(1_800_000_000, 0)}
		counters, err := OpenCounters(context.Background(), b, time.Hour, c.now)
		if err != nil {
			t.Fatal(err)
		}
		ctx, key := context.Background(), Key("test", "someone")
		for i := range 2 {
			if err := counters.Take(ctx, key, rule); err != nil {
				t.Fatalf("free attempt %d: %v", i+1, err)
			}
		}
		// The third is taken and starts the slow-down: the fourth waits 1 s.
		if err := counters.Take(ctx, key, rule); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, counters.Take(ctx, key, rule), time.Second)
		c.advance(time.Second)
		if err := counters.Take(ctx, key, rule); err != nil {
			t.Fatalf("after the slow-down: %v", err)
		}
		// At the limit: refused for the rest of the window.
		c.advance(10 * time.Second)
		wantRefused(t, counters.Take(ctx, key, rule), 45*time.Second)
		// A refund makes room for one; a reset for all.
		if err := counters.Refund(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := counters.Take(ctx, key, rule); err != nil {
			t.Fatalf("after a refund: %v", err)
		}
		if err := counters.Reset(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := counters.Take(ctx, key, rule); err != nil {
			t.Fatalf("after a reset: %v", err)
		}
		// The window ends.
		for counters.Take(ctx, key, rule) == nil {
			c.advance(time.Minute / 4)
		}
		c.advance(time.Minute)
		if err := counters.Take(ctx, key, rule); err != nil {
			t.Fatalf("in a new window: %v", err)
		}
	})
}

func TestCountersTakenAtOnceNeverPassTheLimit(t *testing.T) {
	bustest.Each(t, func(t *testing.T, b *bus.Bus) {
		// Two nodes' counters on one bucket.
		c := &clock{t: time.Unix(1_800_000_000, 0)}
		one, err := OpenCounters(context.Background(), b, time.Hour, c.now)
		if err != nil {
			t.Fatal(err)
		}
		two, err := OpenCounters(context.Background(), b, time.Hour, c.now)
		if err != nil {
			t.Fatal(err)
		}
		r := Rule{Limit: 5, Free: 5, Window: time.Minute, Code: "too_many_tries"}
		errs := testkit.Race(20, func(i int) error {
			return []*Counters{one, two}[i%2].Take(context.Background(), "race.key", r)
		})
		taken := 0
		for _, err := range errs {
			if err == nil {
				taken++
			} else if causeway.ErrorKind(err) != causeway.ERATELIMIT {
				t.Errorf("unexpected %v", err)
			}
		}
		if taken != 5 {
			t.Fatalf("%d of 20 attempts at once taken, want 5", taken)
		}
	})
}

func TestStreamSlotsHoldAcrossNodesAndADeadNodesRunOut(t *testing.T) {
	bustest.Each(t, func(t *testing.T, b *bus.Bus) {
		ctx := context.Background()
		a, err := OpenStreams(ctx, b, "node-a", 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		bb, err := OpenStreams(ctx, b, "node-b", 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		var releases []func()
		for _, s := range []*Streams{a, bb, a} {
			rel, err := s.Acquire(ctx, "app_1")
			if err != nil {
				t.Fatal(err)
			}
			releases = append(releases, rel)
		}
		for _, s := range []*Streams{a, bb} {
			if _, err := s.Acquire(ctx, "app_1"); causeway.ErrorCode(err) != "too_many_streams" {
				t.Fatalf("4th slot: %v, want too_many_streams", err)
			}
		}
		if _, err := a.Acquire(ctx, "app_2"); err != nil {
			t.Fatalf("another app: %v", err)
		}
		releases[1]() // b's
		releases[1]() // twice is once
		rel, err := a.Acquire(ctx, "app_1")
		if err != nil {
			t.Fatalf("after a release: %v", err)
		}
		defer rel()
		if _, err := bb.Acquire(ctx, "app_1"); err == nil {
			t.Fatal("a double release freed two slots")
		}

		// A node that died holding slots: its lease has run out, so its
		// slots count no more. One whose lease runs holds them.
		key := "app." + Key("id", "app_3")
		for _, tc := range []struct {
			until int64
			free  bool
		}{{time.Now().Add(-time.Second).UnixNano(), true}, {time.Now().Add(time.Hour).UnixNano(), false}} {
			data, _ := json.Marshal(streamSlots{"dead-node": {N: 3, Until: tc.until}})
			if _, err := a.kv.Put(ctx, key, data); err != nil {
				t.Fatal(err)
			}
			rel, err := a.Acquire(ctx, "app_3")
			if (err == nil) != tc.free {
				t.Fatalf("slots of a node whose lease ends %v: %v", time.Unix(0, tc.until), err)
			}
			if rel != nil {
				rel()
			}
		}
	})
}
