package gateway

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/causewayhq/causeway"
)

// appStates holds, per app, what this node knows of the app's budget.
type appStates struct{ m sync.Map } // app id -> *appState

type appState struct {
	mu       sync.Mutex
	limits   Limits
	rule     gcra
	loaded   time.Time // on the real clock; zero forces a reload
	lastSeen time.Time

	// local is this node's own token bucket: the whole rate limit without
	// a bus, the fallback with one. With a bus it is charged with this
	// node's admissions as well, so a fallback starts from the node's
	// recent use.
	local *rate.Limiter
	day   int64 // UTC day number that used counts
	// used is the day's admissions: this node's without a bus; with one,
	// every node's as last seen (leases included), plus this node's own
	// during a fallback.
	used int64

	// With a bus:
	shared storedBudget
	lease  lease
	// unbooked counts the admissions of day made on the local bucket
	// during a fallback, to be added to the shared count.
	unbooked int64
	// retryAt (ns) is when the next token can come, as last seen: until
	// then the node refuses without asking. Other nodes only move TAT
	// forward, except when they hand a lease back. quotaSpent is a day
	// whose quota was seen spent, quotaRecheck (ns) when to look again.
	retryAt      int64
	quotaSpent   int64
	quotaRecheck int64
}

// lease is a run of admissions reserved in the shared budget, which the
// node spends without asking until it expires.
type lease struct {
	size     int64 // admissions reserved
	left     int64 // not spent yet
	taken    int64 // when, in ns on the gateway's clock
	interval int64 // the rule's interval then
	day      int64 // the day whose quota they count against
}

func (l lease) expired(now int64) bool { return now >= l.taken+int64(leaseTTL) }

func (a *appStates) get(appID string) *appState {
	if st, ok := a.m.Load(appID); ok {
		return st.(*appState)
	}
	st, _ := a.m.LoadOrStore(appID, &appState{})
	return st.(*appState)
}

func (a *appStates) invalidate(appID string) {
	if v, ok := a.m.Load(appID); ok {
		st := v.(*appState)
		st.mu.Lock()
		st.loaded = time.Time{}
		st.mu.Unlock()
	}
}

// sweep forgets apps idle for longer than idle whose forgetting changes
// nothing: no lease or unbooked admissions, a full local bucket, and
// (without a bus, where the count lives here) nothing used today.
func (a *appStates) sweep(now time.Time, idle time.Duration, shared bool) {
	a.m.Range(func(k, v any) bool {
		st := v.(*appState)
		st.mu.Lock()
		forget := now.Sub(st.lastSeen) > idle && st.lease.left == 0 && st.unbooked == 0 &&
			(st.local == nil || st.local.TokensAt(now) >= float64(st.local.Burst())) &&
			(shared || st.day != dayOf(now) || st.used == 0)
		st.mu.Unlock()
		if forget {
			a.m.Delete(k)
		}
		return true
	})
}

// verdict is the rate limiter's answer for one request, with what the
// RateLimit-* headers report.
type verdict struct {
	allowed    bool
	code       string // rate_limited or quota_exceeded when refused
	retryAfter int64  // seconds, when refused
	limit      int64
	remaining  int64
	reset      int64 // seconds
}

func dayOf(t time.Time) int64 { return t.Unix() / 86400 }

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

func untilMidnight(now time.Time) int64 {
	return ceilSeconds(time.Unix((dayOf(now)+1)*86400, 0).Sub(now))
}

func quotaExceeded(now time.Time, quota int64) verdict {
	wait := untilMidnight(now)
	return verdict{code: "quota_exceeded", retryAfter: max(wait, 1), limit: quota, remaining: 0, reset: wait}
}

// admit takes one request from the app's rate limit and its daily quota:
// from the shared budget when the gateway has a bus (see budget.go), from
// this node's own bucket otherwise.
func (g *Gateway) admit(ctx context.Context, appID string, now time.Time) verdict {
	st := g.apps.get(appID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.loaded.IsZero() || time.Since(st.loaded) > g.cacheTTL {
		g.refresh(ctx, appID, st, now)
	}
	st.lastSeen = now
	if day := dayOf(now); day > st.day {
		st.day, st.used, st.unbooked = day, 0, 0
	}
	if g.budgets == nil {
		return st.admitLocal(now)
	}
	return g.admitShared(ctx, appID, st, now)
}

// admitLocal decides on this node's own bucket and count.
func (st *appState) admitLocal(now time.Time) verdict {
	rps := st.limits.RequestsPerSecond
	burst := float64(st.limits.Burst)
	if !st.local.AllowN(now, 1) {
		tokens := st.local.TokensAt(now)
		wait := ceilSeconds(time.Duration((1 - tokens) / rps * float64(time.Second)))
		return verdict{
			code:       "rate_limited",
			retryAfter: max(wait, 1),
			limit:      int64(burst),
			remaining:  0,
			reset:      ceilSeconds(time.Duration((burst - tokens) / rps * float64(time.Second))),
		}
	}
	if st.used >= st.limits.DailyQuota {
		return quotaExceeded(now, st.limits.DailyQuota)
	}
	st.used++
	tokens := st.local.TokensAt(now)
	return st.allowed(now, int64(math.Floor(tokens)),
		ceilSeconds(time.Duration((burst-tokens)/rps*float64(time.Second))),
		st.limits.DailyQuota-st.used)
}

// allowed is the verdict for an admitted request, given the tokens left
// and the seconds until the bucket is full, and the quota left. Two
// policies apply; like the IETF draft asks, the headers describe the one
// closer to exhaustion.
func (st *appState) allowed(now time.Time, remaining, reset, quotaLeft int64) verdict {
	v := verdict{allowed: true, limit: int64(st.limits.Burst), remaining: max(remaining, 0), reset: reset}
	if quotaLeft < v.remaining {
		v.limit, v.remaining, v.reset = st.limits.DailyQuota, max(quotaLeft, 0), untilMidnight(now)
	}
	return v
}

// admitShared spends from the node's lease, or refuses on what the node
// last saw, or else takes a new lease from the shared budget; if that
// cannot be reached it falls back to the node's own bucket.
func (g *Gateway) admitShared(ctx context.Context, appID string, st *appState, now time.Time) verdict {
	ns := now.UnixNano()
	today := dayOf(now)
	if st.lease.left > 0 && st.lease.day == today && !st.lease.expired(ns) {
		st.lease.left--
		st.local.AllowN(now, 1)
		return st.sharedVerdict(now)
	}
	if ns < st.retryAt {
		return st.rateLimited(now)
	}
	if st.quotaSpent == today && ns < st.quotaRecheck {
		return quotaExceeded(now, st.limits.DailyQuota)
	}
	if g.fallingBack() {
		return g.admitFallback(st, now)
	}
	want, s := st.leaseSize(ns), st.settlement()
	var granted int64
	var code string
	err := g.updateBudget(ctx, appID, st, func(b budget) (budget, bool) {
		var next budget
		next, granted, code = b.take(st.rule, ns, want, s)
		return next, granted > 0 || next != b
	})
	// Settled or not, the old lease is done with: handing it back twice
	// would give tokens away.
	st.lease.left = 0
	switch {
	case errors.Is(err, errContended):
		// Not an outage: the app is this busy on several nodes at once.
		// Deciding locally would admit beyond the shared budget, so this
		// one request waits a second.
		return verdict{code: "rate_limited", retryAfter: 1, limit: st.rule.burst, reset: 1}
	case err != nil:
		return g.admitFallback(st, now)
	}
	switch code {
	case "rate_limited":
		st.retryAt = max(st.shared.TAT, ns) - st.rule.tau + st.rule.interval
		return st.rateLimited(now)
	case "quota_exceeded":
		st.quotaSpent, st.quotaRecheck = today, ns+int64(time.Second)
		return quotaExceeded(now, st.limits.DailyQuota)
	}
	st.lease = lease{size: granted, left: granted - 1, taken: ns, interval: st.rule.interval, day: st.shared.Day}
	st.local.AllowN(now, 1)
	return st.sharedVerdict(now)
}

// updateBudget runs one update of the app's shared budget, bounded by
// budgetTimeout and not cut short by the request's cancellation. On
// success the node's copy of the day's count follows the shared one and
// the unbooked admissions are booked; on failure it notes the outage.
func (g *Gateway) updateBudget(ctx context.Context, appID string, st *appState, fn func(budget) (budget, bool)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetTimeout)
	defer cancel()
	if err := g.budgets.update(ctx, appID, &st.shared, fn); err != nil {
		g.budgetsFailed(err)
		return err
	}
	g.budgetsAnswered()
	st.unbooked = 0
	if st.shared.Day >= st.day {
		st.day, st.used = st.shared.Day, st.shared.Used
	}
	return nil
}

// leaseSize is how many admissions to ask for: one at first, twice the
// last lease if it was spent before it expired, what it served if not;
// never more than leaseTTL's worth of the rate.
func (st *appState) leaseSize(now int64) int64 {
	l, want := st.lease, int64(1)
	switch {
	case l.size == 0:
	case !l.expired(now):
		want = 2 * l.size
	default:
		want = l.size - l.left
	}
	return min(max(want, 1), st.rule.maxLease)
}

// settlement is what the node owes the shared budget or may hand back.
func (st *appState) settlement() settlement {
	return settlement{
		unused: st.lease.left, interval: st.lease.interval, taken: st.lease.taken, day: st.lease.day,
		unbooked: st.unbooked, unbookedDay: st.day,
	}
}

// sharedVerdict is the verdict for a request admitted from the shared
// budget. The tokens of the node's lease count as left in the bucket.
func (st *appState) sharedVerdict(now time.Time) verdict {
	r := st.rule
	ahead := max(st.shared.TAT-now.UnixNano()-st.lease.left*r.interval, 0)
	return st.allowed(now, r.burst-(ahead+r.interval-1)/r.interval, ceilSeconds(time.Duration(ahead)),
		st.limits.DailyQuota-st.used+st.lease.left)
}

// rateLimited is the verdict for a request refused for want of a token.
func (st *appState) rateLimited(now time.Time) verdict {
	r, ns := st.rule, now.UnixNano()
	base := max(st.shared.TAT, ns)
	return verdict{
		code:       "rate_limited",
		retryAfter: max(ceilSeconds(time.Duration(base-r.tau+r.interval-ns)), 1),
		limit:      r.burst,
		remaining:  0,
		reset:      ceilSeconds(time.Duration(base - ns)),
	}
}

// admitFallback decides on the node's own bucket while the shared budget
// cannot be reached, and keeps count of what it admits for the day's
// shared quota.
func (g *Gateway) admitFallback(st *appState, now time.Time) verdict {
	g.metrics.budgetFallbacks.Inc()
	v := st.admitLocal(now)
	if v.allowed {
		st.unbooked++
	}
	return v
}

// fallingBack reports whether the node decides on its own buckets for the
// moment, after the shared budget could not be reached.
func (g *Gateway) fallingBack() bool {
	until := g.fallbackUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

func (g *Gateway) budgetsFailed(err error) {
	if errors.Is(err, errContended) {
		// Not an outage: the key was busy; the caller refuses the one
		// request (or keeps a hand-back for later).
		g.log.Debug("shared budget stayed contended; update given up", "error", err.Error())
		return
	}
	if g.fallbackUntil.Swap(time.Now().Add(fallbackFor).UnixNano()) == 0 {
		g.log.Warn("the shared rate-limit budgets cannot be reached; deciding on this node's own buckets meanwhile",
			"retry_in", fallbackFor.String(), "error", err.Error())
	}
}

func (g *Gateway) budgetsAnswered() {
	if g.fallbackUntil.Load() != 0 && g.fallbackUntil.Swap(0) != 0 {
		g.log.Info("the shared rate-limit budgets answer again")
	}
}

// settleLeases hands back to the shared budget what this node's leases
// have left, and books the admissions it made during a fallback: for
// expired leases, or for all of them (on Close).
func (g *Gateway) settleLeases(ctx context.Context, all bool) {
	if g.budgets == nil || g.fallingBack() {
		return
	}
	now := g.now().UnixNano()
	g.apps.m.Range(func(k, v any) bool {
		st := v.(*appState)
		st.mu.Lock()
		defer st.mu.Unlock()
		if (st.lease.left == 0 || !(all || st.lease.expired(now))) && st.unbooked == 0 {
			return true
		}
		s := st.settlement()
		if next, _, _ := st.shared.take(st.rule, now, 0, s); st.shared.known && next == st.shared.budget {
			st.lease.left = 0 // nothing left worth handing back
			return true
		}
		g.updateBudget(ctx, k.(string), st, func(b budget) (budget, bool) {
			next, _, _ := b.take(st.rule, now, 0, s)
			return next, next != b
		})
		st.lease.left = 0
		return ctx.Err() == nil && !g.fallingBack()
	})
}

// refresh reads the app's limits and applies them to its buckets, keeping
// the tokens the local one has. If the database cannot be read, the node
// keeps what it had (or the defaults) and tries again in a second: a
// database hiccup should not turn into refusing every request.
func (g *Gateway) refresh(ctx context.Context, appID string, st *appState, now time.Time) {
	l, _, err := g.loadLimits(ctx, appID)
	if err != nil {
		g.log.WarnContext(ctx, "reading app limits failed; using the last known", "app_id", appID, "error", err.Error())
		if st.local == nil {
			l = g.defaults
		} else {
			l = st.limits
		}
		st.loaded = time.Now().Add(-g.cacheTTL + time.Second)
	} else {
		st.loaded = time.Now()
	}
	if st.local == nil {
		st.local = rate.NewLimiter(rate.Limit(l.RequestsPerSecond), l.Burst)
	} else if l != st.limits {
		st.local.SetLimitAt(now, rate.Limit(l.RequestsPerSecond))
		st.local.SetBurstAt(now, l.Burst)
	}
	if l != st.limits {
		// What the node remembers of refusals held under the old limits.
		st.retryAt, st.quotaSpent = 0, 0
	}
	st.limits, st.rule = l, gcraOf(l)
}

// setHeaders writes the IETF draft RateLimit header fields.
func (v verdict) setHeaders(h http.Header) {
	h.Set("RateLimit-Limit", strconv.FormatInt(v.limit, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(v.remaining, 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(v.reset, 10))
	if !v.allowed {
		h.Set("Retry-After", strconv.FormatInt(v.retryAfter, 10))
	}
}

func (v verdict) err() error {
	if v.code == "quota_exceeded" {
		return causeway.Errorf(causeway.ERATELIMIT, v.code,
			"the daily quota of %d requests is used; it resets at midnight UTC, in %d s", v.limit, v.retryAfter)
	}
	return causeway.Errorf(causeway.ERATELIMIT, v.code, "too many requests; retry in %d s", v.retryAfter)
}
