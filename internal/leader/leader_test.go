package leader_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func open(t *testing.T, db *store.DB, node string, ttl time.Duration) *leader.Lease {
	t.Helper()
	if err := leader.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	return leader.New(db, leader.Options{Name: "test", NodeID: node, TTL: ttl, Logger: log})
}

func hold(t *testing.T, l *leader.Lease) bool {
	t.Helper()
	held, err := l.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOneNodeOfManyAskingAtOnceHoldsTheLease: nodes racing for a free
// lease, each from its own goroutine, end with exactly one holder.
func TestOneNodeOfManyAskingAtOnceHoldsTheLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const nodes = 8
		leases := make([]*leader.Lease, nodes)
		for i := range leases {
			leases[i] = open(t, db, fmt.Sprintf("node-%d", i), time.Minute)
		}
		var wg sync.WaitGroup
		var winners atomic.Int32
		start := make(chan struct{})
		for _, l := range leases {
			wg.Go(func() {
				<-start
				held, err := l.Hold(context.Background())
				if err != nil {
					t.Error(err)
				}
				if held {
					winners.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := winners.Load(); n != 1 {
			t.Fatalf("%d nodes hold the lease, want 1", n)
		}
		held := 0
		for _, l := range leases {
			if l.Held() {
				held++
			}
		}
		if held != 1 {
			t.Errorf("Held is true on %d nodes, want 1", held)
		}
	})
}

// TestAnExpiredLeaseGoesToTheNextNodeAndTheOldHolderIsTold: a holder that
// stops renewing loses the lease after its TTL, Held says so without a
// database round, and its callback hears of the loss at its next Hold.
func TestAnExpiredLeaseGoesToTheNextNodeAndTheOldHolderIsTold(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const ttl = 300 * time.Millisecond
		first, second := open(t, db, "first", ttl), open(t, db, "second", ttl)
		var mu sync.Mutex
		var changes []bool
		first.OnChange(func(held bool) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, held)
		})
		if !hold(t, first) {
			t.Fatal("the first node did not take the free lease")
		}
		if hold(t, second) {
			t.Fatal("the second node took a lease the first holds")
		}
		eventually(t, "the first node's lease runs out", func() bool { return !first.Held() })
		eventually(t, "the second node takes the expired lease", func() bool { return hold(t, second) })
		if hold(t, first) {
			t.Fatal("the first node took the lease back from the second")
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(changes) != "[true false]" {
			t.Errorf("the first node's callback saw %v, want [true false]", changes)
		}
	})
}

// TestRunGivesTheLeaseUpAsItEnds: a node that stops cleanly hands the
// lease over at once (the TTL is far beyond the test), and takes it no
// more.
func TestRunGivesTheLeaseUpAsItEnds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		first, second := open(t, db, "first", time.Hour), open(t, db, "second", time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- first.Run(ctx) }()
		eventually(t, "Run takes the lease", first.Held)
		if hold(t, second) {
			t.Fatal("the second node took a lease the first holds")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run returned %v", err)
		}
		if first.Held() {
			t.Error("Held is true after Run returned")
		}
		if !hold(t, second) {
			t.Fatal("the second node could not take the lease the first gave up")
		}
		second.Release()
		if hold(t, first) {
			t.Error("a node whose Run ended took the lease again")
		}
	})
}

// TestScheduledJobsRunOnlyOnTheHolder: of two nodes scheduling the same
// job, only the one holding the lease does it, and a failing run does not
// stop the next.
func TestScheduledJobsRunOnlyOnTheHolder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		holder, standby := open(t, db, "holder", time.Hour), open(t, db, "standby", time.Hour)
		if !hold(t, holder) || hold(t, standby) {
			t.Fatal("the holder did not get the lease alone")
		}
		var onHolder, onStandby atomic.Int32
		job := func(count *atomic.Int32) leader.Job {
			return leader.Job{Name: "count", Every: 5 * time.Millisecond, Do: func(context.Context) (int64, error) {
				if count.Add(1)%2 == 0 {
					return 0, fmt.Errorf("every other run fails")
				}
				return 1, nil
			}}
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { holder.Schedule(ctx, job(&onHolder)) })
		wg.Go(func() { standby.Schedule(ctx, job(&onStandby)) })
		eventually(t, "the holder runs its job five times", func() bool { return onHolder.Load() >= 5 })
		cancel()
		wg.Wait()
		if n := onStandby.Load(); n != 0 {
			t.Errorf("the standby ran the job %d times", n)
		}
	})
}
