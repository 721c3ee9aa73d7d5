package gateway

import (
	"context"
	"database/sql"
	"errors"
	"math"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
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
		// Lock the app's row, if it has one, before reading it: the audit
		// entry's before is what this change replaced, even when two
		// operators set limits at once.
		if _, err := tx.ExecContext(ctx, `UPDATE gateway_limits SET updated_at = updated_at WHERE app_id = $1`, appID); err != nil {
			return err
		}
		var before any // none: the platform's defaults
		var milli int64
		var old Limits
		err := tx.QueryRowContext(ctx, `SELECT rate_milli, burst, daily_quota FROM gateway_limits WHERE app_id = $1`, appID).
			Scan(&milli, &old.Burst, &old.DailyQuota)
		switch {
		case err == nil:
			old.RequestsPerSecond = float64(milli) / 1000
			before = limitsSummary(old)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO gateway_limits (app_id, rate_milli, burst, daily_quota, updated_at)
			 VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (app_id) DO UPDATE SET rate_milli = excluded.rate_milli,
			   burst = excluded.burst, daily_quota = excluded.daily_quota, updated_at = excluded.updated_at`,
			appID, rateMilli(l.RequestsPerSecond), l.Burst, l.DailyQuota, store.Micros(g.now()))
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "app.limits.set", TargetType: "app", TargetID: appID,
			Before: before, After: limitsSummary(l)})
	})
	if err != nil {
		return Limits{}, err
	}
	g.apps.invalidate(appID)
	return l, nil
}

// limitsSummary is an app's limits in the audit trail, named as on the
// wire.
func limitsSummary(l Limits) map[string]any {
	return map[string]any{"requests_per_second": l.RequestsPerSecond, "burst": l.Burst, "daily_quota": l.DailyQuota}
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
