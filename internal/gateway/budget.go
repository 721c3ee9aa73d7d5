package gateway

import (
	"math"
	"time"
)

// Shared budgets.
//
// An app's rate limit and daily quota are one budget shared by every node,
// kept in a NATS JetStream key-value bucket, one key per app (see
// sharedBudgets). The bus is there on both runtimes (embedded NATS, or the
// external cluster the nodes share), so there is one implementation, and
// the database, which carries the payments, takes none of the load.
//
// The rate limit is GCRA, the generic cell rate algorithm: a token bucket
// whose whole state is one instant, the theoretical arrival time (TAT).
// With interval = 1/rate and tau = burst*interval, a request at now is
// admitted when max(TAT, now) + interval - now <= tau, and moves TAT to
// max(TAT, now) + interval. A single number is what makes a
// compare-and-swap update cheap. The daily quota is a counter of the UTC
// day in the same key: {tat, day, used}.
//
// Leases. A round trip to NATS for every request would cost more than the
// rest of the gateway (see causeway bench gateway), so a node takes
// admissions in leases: one compare-and-swap reserves n admissions (TAT
// moves n intervals, used grows by n), the request at hand spends one, and
// the node spends the rest locally, without I/O, for at most leaseTTL.
// Lease sizes follow demand: a lease starts at one, doubles while each is
// spent before it expires, and shrinks to what one lease lifetime used.
// None is larger than leaseTTL's worth of the rate, nor than a
// leaseShare-th of the tokens or the quota left, so other nodes are not
// starved and small budgets (a burst or quota left under 2*leaseShare) go
// one admission per update, exactly. At full load a node thus updates an
// app's key about ten times a second. A node also remembers when the next
// token can come and that the day's quota is spent, and refuses without
// asking until then (only a handed-back lease moves TAT back, by at most
// what it held).
//
// What that guarantees, whatever the number of nodes:
//   - Rate: the admissions, each counted when its lease was charged, pass
//     an exact GCRA: a lease handed back returns its unused tokens less
//     what the bucket refilled while they were out. A leased admission is
//     spent within leaseTTL of its charge, so in any window the
//     admissions are at most burst + rate*(window + leaseTTL): a tenth of
//     a second's worth of the rate above GCRA's own bound, and nothing
//     above it for a rate under 10/s, where every lease is one admission.
//   - Quota: never more than the daily quota; admissions are reserved
//     before they are spent. Unspent ones go back (an expired lease's with
//     the node's next update or within a second, every lease on Close); a
//     node that dies takes its last lease with it, at most a leaseShare-th
//     of the quota that was left, lost for the day.
//   - When the key stays contended through casAttempts rounds, the request
//     is refused (rate_limited, Retry-After 1): deciding it locally could
//     admit beyond the budget.
//   - Nodes read the time from their own clocks; a skew of d between nodes
//     lets a burst refill d*rate early. Keep nodes on NTP.
//
// Fail open. If the bucket cannot be read or written within
// budgetTimeout, the node logs it and, for fallbackFor, decides on its own
// bucket (the node-local token bucket it keeps in step with its own
// admissions, and the day's count as last seen plus its own admissions)
// before trying the bucket again. A bank's APIs must not go down with
// their rate-limit store; for those seconds each node admits at most its
// own burst plus the rate, and causeway_gateway_budget_fallbacks_total
// counts the decisions so made. The admissions made meanwhile are added
// to the shared day's count when the bucket answers again.
const (
	// leaseTTL is how long a node may spend a lease.
	leaseTTL = 100 * time.Millisecond
	// leaseShare: a lease takes at most 1/leaseShare of the tokens, and of
	// the quota, left.
	leaseShare = 16
	// budgetTimeout bounds one update of the shared budget.
	budgetTimeout = 500 * time.Millisecond
	// fallbackFor is how long a node uses its own bucket after the shared
	// budget could not be reached.
	fallbackFor = 5 * time.Second
)

const nsPerDay = int64(24 * time.Hour)

// budget is an app's shared state, as stored in its key.
type budget struct {
	// TAT is the theoretical arrival time, in nanoseconds since the epoch.
	TAT int64 `json:"tat"`
	// Day is the UTC day number (days since the epoch) that Used counts.
	Day int64 `json:"day"`
	// Used is how many admissions were taken on Day, leases included.
	Used int64 `json:"used"`
}

// gcra is an app's Limits in the budget's units.
type gcra struct {
	interval int64 // ns between requests at the sustained rate, >= 1
	tau      int64 // burst*interval: how far TAT may run ahead of now
	burst    int64
	quota    int64
	maxLease int64 // the largest lease: leaseTTL's worth of the rate, >= 1
}

// maxTau keeps now+tau within int64 for any limits.
const maxTau = int64(1) << 61

func gcraOf(l Limits) gcra {
	interval := int64(math.Min(math.Round(float64(time.Second)/l.RequestsPerSecond), float64(maxTau)))
	interval = max(interval, 1)
	burst := int64(max(l.Burst, 1))
	tau := maxTau
	if burst <= maxTau/interval {
		tau = burst * interval
	}
	return gcra{
		interval: interval,
		tau:      tau,
		burst:    burst,
		quota:    l.DailyQuota,
		maxLease: max(int64(l.RequestsPerSecond*leaseTTL.Seconds()), 1),
	}
}

// settlement is what a node hands back with its next update.
type settlement struct {
	// unused admissions of a lease taken at taken (ns) with interval, on
	// day.
	unused, interval, taken, day int64
	// unbooked admissions made on the node's own bucket during an outage,
	// on unbookedDay: they count against that day's quota.
	unbooked, unbookedDay int64
}

// take settles s, then reserves up to want admissions at now (ns since the
// epoch). It returns the new budget and how many admissions were granted;
// when none were (and want > 0), the code says why: rate_limited or
// quota_exceeded. With want 0 it only settles.
func (b budget) take(r gcra, now, want int64, s settlement) (budget, int64, string) {
	if s.unused > 0 {
		// The unused tokens go back, less what the bucket refilled while
		// they were out: had they stayed in, a full bucket would have
		// overflowed by that much. This never hands back more than the
		// lease held above an exact count.
		if back := s.unused*s.interval - (now - s.taken); back > 0 {
			b.TAT -= back
		}
		if s.day == b.Day {
			b.Used = max(b.Used-s.unused, 0)
		}
	}
	// A node whose clock is behind must not turn the day back.
	if today := now / nsPerDay; today > b.Day {
		b.Day, b.Used = today, 0
	}
	if s.unbooked > 0 && s.unbookedDay == b.Day {
		b.Used += s.unbooked
	}
	if want < 1 {
		return b, 0, ""
	}
	base := max(b.TAT, now)
	free := (now + r.tau - base) / r.interval
	if free < 1 {
		return b, 0, "rate_limited"
	}
	left := r.quota - b.Used
	if left < 1 {
		return b, 0, "quota_exceeded"
	}
	n := min(want, max(free/leaseShare, 1), max(left/leaseShare, 1))
	b.TAT = base + n*r.interval
	b.Used += n
	return b, n, ""
}
