package gateway

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLeasedBudgetStaysWithinTheGCRABound drives one budget from several
// simulated nodes that take leases of random sizes, spend them while they
// last, and hand the rest back late or never, under flurries faster than
// the rate, calmer spells and idle ones. It checks what budget.go
// promises: the admissions, each counted at the moment its lease was
// charged, pass an exact GCRA (hand-backs never return more than was
// held above an exact count); so in any window the admissions stay within
// burst + rate*(window + leaseTTL); and the day's count is always what was
// admitted plus what leases still hold.
func TestLeasedBudgetStaysWithinTheGCRABound(t *testing.T) {
	for _, l := range []Limits{
		{RequestsPerSecond: 200, Burst: 50, DailyQuota: 1e9},
		{RequestsPerSecond: 200, Burst: 5000, DailyQuota: 1e9},
		{RequestsPerSecond: 5000, Burst: 400, DailyQuota: 1e9},
		{RequestsPerSecond: 300, Burst: 1000, DailyQuota: 3000}, // the quota runs out
	} {
		r := gcraOf(l)
		rng := rand.New(rand.NewPCG(uint64(l.Burst), uint64(l.RequestsPerSecond)))
		start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC).UnixNano()
		now := start
		var b budget
		nodes := make([]lease, 8)
		var pending []lease // expired leases not handed back yet
		type admission struct{ charged, at int64 }
		var admitted []admission
		held := func() int64 {
			n := int64(0)
			for _, x := range nodes {
				n += x.left
			}
			for _, x := range pending {
				n += x.left
			}
			return n
		}
		for range 30000 {
			switch k := rng.IntN(100); {
			case k == 0:
				now += rng.Int64N(2 * r.tau)
			case k < 70:
				now += rng.Int64N(r.interval / 25)
			default:
				now += rng.Int64N(4 * r.interval)
			}
			if len(pending) > 0 && rng.IntN(4) == 0 {
				p := pending[0]
				pending = pending[1:]
				b, _, _ = b.take(r, now, 0, settlement{unused: p.left, interval: p.interval, taken: p.taken, day: p.day})
			}
			n := &nodes[rng.IntN(len(nodes))]
			if n.left == 0 || n.expired(now) {
				if n.left > 0 {
					pending = append(pending, *n)
				}
				var got int64
				b, got, _ = b.take(r, now, 1+rng.Int64N(r.maxLease), settlement{})
				*n = lease{size: got, left: got, taken: now, interval: r.interval, day: b.Day}
			}
			if n.left > 0 {
				n.left--
				admitted = append(admitted, admission{charged: n.taken, at: now})
			}
			if b.Used != int64(len(admitted))+held() {
				t.Fatalf("%+v: used %d, admitted %d, held %d", l, b.Used, len(admitted), held())
			}
		}
		if len(admitted) < 1000 {
			t.Fatalf("%+v: only %d admitted; the simulation exercises too little", l, len(admitted))
		}
		if int64(len(admitted)) > l.DailyQuota {
			t.Errorf("%+v: %d admitted", l, len(admitted))
		}

		charges := make([]int64, len(admitted))
		for i, a := range admitted {
			charges[i] = a.charged
		}
		slices.Sort(charges)
		tat := int64(0)
		for i, c := range charges {
			base := max(tat, c)
			if base+r.interval-c > r.tau {
				t.Fatalf("%+v: admission %d, charged at +%v, fails an exact GCRA", l, i, time.Duration(c-start))
			}
			tat = base + r.interval
		}

		// For every window [t_i, t_j]: j-i+1 <= burst + (t_j-t_i+leaseTTL)/I,
		// that is (j+1 - t_j/I) + max over i<=j of (t_i/I - i) <= burst + leaseTTL/I.
		I := float64(r.interval)
		bound := float64(r.burst) + float64(leaseTTL)/I + 1e-6
		best := -1e300
		for j, a := range admitted {
			tj := float64(a.at-start) / I
			best = max(best, tj-float64(j))
			if got := float64(j+1) - tj + best; got > bound {
				t.Fatalf("%+v: %v admissions in a window allowing %v", l, got, bound)
			}
		}
	}
}

func TestTakeSettlesBeforeItReserves(t *testing.T) {
	r := gcraOf(Limits{RequestsPerSecond: 10, Burst: 4, DailyQuota: 10})
	now := 100 * nsPerDay
	b, n, code := budget{}.take(r, now, 3, settlement{})
	if n != 1 || code != "" || b.Used != 1 || b.Day != 100 {
		// A lease takes at most what is left over leaseShare, and at least one.
		t.Fatalf("first take: %+v %d %q", b, n, code)
	}
	for range 3 {
		b, _, _ = b.take(r, now, 1, settlement{})
	}
	if _, n, code := b.take(r, now, 1, settlement{}); n != 0 || code != "rate_limited" {
		t.Fatalf("burst spent: %d %q", n, code)
	}
	// Handing back one unused admission at once makes room for one.
	back := settlement{unused: 1, interval: r.interval, taken: now, day: 100}
	if next, n, code := b.take(r, now, 1, back); n != 1 || code != "" || next.Used != 4 {
		t.Fatalf("after a hand-back: %+v %d %q", next, n, code)
	}
	// Handed back after the bucket refilled, it gives nothing extra.
	later := now + 10*r.interval
	full, _, _ := b.take(r, later, 0, settlement{})
	if got, _, _ := b.take(r, later, 0, back); got.TAT != full.TAT {
		t.Errorf("a late hand-back moved TAT to %d, want %d", got.TAT, full.TAT)
	}
	// Admissions made during an outage count against that day only.
	if got, _, _ := b.take(r, now, 0, settlement{unbooked: 3, unbookedDay: 100}); got.Used != 7 {
		t.Errorf("booked: used %d, want 7", got.Used)
	}
	if got, _, _ := b.take(r, now+nsPerDay, 0, settlement{unbooked: 3, unbookedDay: 100}); got.Used != 0 || got.Day != 101 {
		t.Errorf("booked on the next day: %+v", got)
	}
	// A node behind on the clock does not turn the day back.
	if got, _, _ := b.take(r, now-nsPerDay, 1, settlement{}); got.Day != 100 {
		t.Errorf("day went back to %d", got.Day)
	}
	// The quota is a hard limit.
	q := budget{Day: 100, Used: 10}
	if _, n, code := q.take(r, now, 1, settlement{}); n != 0 || code != "quota_exceeded" {
		t.Errorf("spent quota: %d %q", n, code)
	}
}
