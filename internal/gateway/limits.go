package gateway

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/store"
)

// Bounds on the limits the bank may set.
const (
	MaxRequestsPerSecond = 100000
	MaxBurst             = 1000000
	MaxDailyQuota        = 1000000000
)

// Validate checks that every limit is positive and sane. The rate is kept
// in thousandths of a request per second, so it must be at least 0.001.
func (l Limits) Validate() error {
	switch {
	case math.IsNaN(l.RequestsPerSecond) || l.RequestsPerSecond < 0.001 || l.RequestsPerSecond > MaxRequestsPerSecond:
		return causeway.Errorf(causeway.EINVALID, "invalid_limits", "requests_per_second must be between 0.001 and %d", MaxRequestsPerSecond)
	case l.Burst < 1 || l.Burst > MaxBurst:
		return causeway.Errorf(causeway.EINVALID, "invalid_limits", "burst must be between 1 and %d", MaxBurst)
	case l.DailyQuota < 1 || l.DailyQuota > MaxDailyQuota:
		return causeway.Errorf(causeway.EINVALID, "invalid_limits", "daily_quota must be between 1 and %d", MaxDailyQuota)
	}
	return nil
}

func rateMilli(rps float64) int64 { return int64(math.Round(rps * 1000)) }

// SetLimits gives an app its own rate limit and daily quota. The app must
// exist (ENOTFOUND app_not_found otherwise). This node applies them to the
// next request; other nodes within CacheTTL.
func (g *Gateway) SetLimits(ctx context.Context, appID string, l Limits) (Limits, error) {
	if err := l.Validate(); err != nil {
		return Limits{}, err
	}
	if _, err := g.auth.AppOrganization(ctx, appID); err != nil {
		return Limits{}, err
	}
	l.RequestsPerSecond = float64(rateMilli(l.RequestsPerSecond)) / 1000
	err := g.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO gateway_limits (app_id, rate_milli, burst, daily_quota, updated_at)
			 VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (app_id) DO UPDATE SET rate_milli = excluded.rate_milli,
			   burst = excluded.burst, daily_quota = excluded.daily_quota, updated_at = excluded.updated_at`,
			appID, rateMilli(l.RequestsPerSecond), l.Burst, l.DailyQuota, store.Micros(g.now()))
		return err
	})
	if err != nil {
		return Limits{}, err
	}
	g.apps.invalidate(appID)
	return l, nil
}

// AppLimits returns the limits that apply to an app, and whether they are
// its own (false: the defaults). The app must exist.
func (g *Gateway) AppLimits(ctx context.Context, appID string) (Limits, bool, error) {
	if _, err := g.auth.AppOrganization(ctx, appID); err != nil {
		return Limits{}, false, err
	}
	return g.loadLimits(ctx, appID)
}

func (g *Gateway) loadLimits(ctx context.Context, appID string) (Limits, bool, error) {
	var milli int64
	var l Limits
	err := g.db.QueryRowContext(ctx,
		`SELECT rate_milli, burst, daily_quota FROM gateway_limits WHERE app_id = $1`, appID).
		Scan(&milli, &l.Burst, &l.DailyQuota)
	if errors.Is(err, sql.ErrNoRows) {
		return g.defaults, false, nil
	}
	if err != nil {
		return Limits{}, false, store.Classify(err)
	}
	l.RequestsPerSecond = float64(milli) / 1000
	return l, true, nil
}

// appStates holds, per app, the node-local rate-limit bucket and the daily
// quota counter.
type appStates struct{ m sync.Map } // app id -> *appState

type appState struct {
	mu       sync.Mutex
	limits   Limits
	loaded   time.Time // on the real clock; zero forces a reload
	limiter  *rate.Limiter
	day      int64 // UTC day number that used counts
	used     int64
	lastSeen time.Time
}

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

// sweep forgets apps idle for longer than idle whose bucket is full again
// and who have used nothing today, so forgetting them changes nothing.
func (a *appStates) sweep(now time.Time, idle time.Duration) {
	a.m.Range(func(k, v any) bool {
		st := v.(*appState)
		st.mu.Lock()
		forget := now.Sub(st.lastSeen) > idle &&
			(st.limiter == nil || st.limiter.TokensAt(now) >= float64(st.limiter.Burst())) &&
			(st.day != dayOf(now) || st.used == 0)
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

// admit takes one request from the app's bucket and its daily quota.
func (g *Gateway) admit(ctx context.Context, appID string, now time.Time) verdict {
	st := g.apps.get(appID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.loaded.IsZero() || time.Since(st.loaded) > g.cacheTTL {
		g.refresh(ctx, appID, st, now)
	}
	st.lastSeen = now
	if day := dayOf(now); st.day != day {
		st.day, st.used = day, 0
	}
	rps := st.limits.RequestsPerSecond
	burst := float64(st.limits.Burst)
	untilMidnight := ceilSeconds(time.Unix((dayOf(now)+1)*86400, 0).Sub(now))
	if !st.limiter.AllowN(now, 1) {
		tokens := st.limiter.TokensAt(now)
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
		return verdict{code: "quota_exceeded", retryAfter: max(untilMidnight, 1),
			limit: st.limits.DailyQuota, remaining: 0, reset: untilMidnight}
	}
	st.used++
	// Two policies apply; like the IETF draft asks, the headers describe the
	// one closer to exhaustion.
	tokens := st.limiter.TokensAt(now)
	v := verdict{
		allowed:   true,
		limit:     int64(burst),
		remaining: int64(math.Floor(tokens)),
		reset:     ceilSeconds(time.Duration((burst - tokens) / rps * float64(time.Second))),
	}
	if left := st.limits.DailyQuota - st.used; left < v.remaining {
		v.limit, v.remaining, v.reset = st.limits.DailyQuota, left, untilMidnight
	}
	return v
}

// refresh reads the app's limits and applies them to its bucket, keeping
// the tokens it has. If the database cannot be read, the node keeps what it
// had (or the defaults) and tries again in a second: a database hiccup
// should not turn into refusing every request.
func (g *Gateway) refresh(ctx context.Context, appID string, st *appState, now time.Time) {
	l, _, err := g.loadLimits(ctx, appID)
	if err != nil {
		g.log.Warn("gateway: reading app limits failed; using the last known", "app_id", appID, "error", err.Error())
		if st.limiter == nil {
			l = g.defaults
		} else {
			l = st.limits
		}
		st.loaded = time.Now().Add(-g.cacheTTL + time.Second)
	} else {
		st.loaded = time.Now()
	}
	if st.limiter == nil {
		st.limiter = rate.NewLimiter(rate.Limit(l.RequestsPerSecond), l.Burst)
	} else if l != st.limits {
		st.limiter.SetLimitAt(now, rate.Limit(l.RequestsPerSecond))
		st.limiter.SetBurstAt(now, l.Burst)
	}
	st.limits = l
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
			"the app used its daily quota of %d requests; it resets at midnight UTC, in %d s", v.limit, v.retryAfter)
	}
	return causeway.Errorf(causeway.ERATELIMIT, v.code, "too many requests; retry in %d s", v.retryAfter)
}
