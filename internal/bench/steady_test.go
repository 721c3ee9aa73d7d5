package bench

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestSteadyRunMakesEveryCallOfItsScheduleOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	// 2000/s for 20 ms is 40 calls, under MaxOps.
	l, err := runSteady(context.Background(), Options{Duration: 20 * time.Millisecond, MaxOps: 1000}, 2000, 4,
		func(_ context.Context, i int) error {
			mu.Lock()
			seen[i]++
			mu.Unlock()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if l.ops != 40 || len(l.latencies) != 40 || len(seen) != 40 {
		t.Fatalf("ops = %d, latencies = %d, distinct calls = %d; want 40", l.ops, len(l.latencies), len(seen))
	}
	for i := range 40 {
		if seen[i] != 1 {
			t.Errorf("call %d made %d times, want once", i, seen[i])
		}
	}
	if l.late < 0 || l.late > l.ops || l.elapsed <= 0 {
		t.Errorf("late = %d of %d in %v", l.late, l.ops, l.elapsed)
	}
}

func TestSteadyRunStopsAtMaxOps(t *testing.T) {
	l, err := runSteady(context.Background(), Options{Duration: time.Hour, MaxOps: 7}, 10_000, 2,
		func(context.Context, int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if l.ops != 7 {
		t.Errorf("ops = %d, want 7", l.ops)
	}
}

func TestSteadyRunCountsCallsThatStartLateAndStillMakesThem(t *testing.T) {
	// One goroutine, and the first call holds it for 30 ms: calls 1 to 3,
	// due 5, 10 and 15 ms after the start, cannot start before 30 ms,
	// past their 5 ms allowance. The schedule never waits for them to
	// return (open loop): they are made, late.
	l, err := runSteady(context.Background(), Options{Duration: 20 * time.Millisecond, MaxOps: 100}, 200, 1,
		func(_ context.Context, i int) error {
			if i == 0 {
				time.Sleep(30 * time.Millisecond)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	// The first call is on time unless the machine kept the goroutine
	// from starting it for 5 ms.
	if l.ops != 4 || l.late < 3 {
		t.Errorf("ops = %d, late = %d; want 4 calls, 3 or 4 of them late", l.ops, l.late)
	}
	if l.percentile(1) < 30*time.Millisecond {
		t.Errorf("slowest call took %v, want the first call's 30 ms at least", l.percentile(1))
	}
}

func TestSteadyRunStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	_, err := runSteady(context.Background(), Options{Duration: time.Second, MaxOps: 1000}, 1000, 4,
		func(_ context.Context, i int) error {
			if i == 3 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

func TestSteadyRunRefusesNoRate(t *testing.T) {
	for _, rate := range []float64{0, -1} {
		if _, err := runSteady(context.Background(), Options{}, rate, 1, func(context.Context, int) error { return nil }); err == nil {
			t.Errorf("rate %v: no error", rate)
		}
	}
}
