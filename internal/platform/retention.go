package platform

import (
	"context"
	"time"

	"github.com/causewayhq/causeway/internal/portal"
)

// How long the platform keeps records that only grow: SPI invocation
// records (each call's outcome and latency, for the developer's log and the
// bank's audit) and per-minute API analytics (charts reach back 31 days).
// Webhook delivery records, published outbox rows and idempotency keys
// have retention of their own in their packages; the data-partnering audit
// trail is kept. Portal and console sessions, stream tickets and single
// sign-on logins in flight are deleted once they end.
const (
	InvocationRetention = 90 * 24 * time.Hour
	AnalyticsRetention  = 400 * 24 * time.Hour
)

// retention prunes old records every hour, on the leader only (the node
// holding the outbox lease), so nodes sharing a database do it once.
func (p *Platform) retention(ctx context.Context) error {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if p.Relay.HoldsLease() {
			p.pruneRecords(ctx, time.Now())
		}
	}
}

// pruneRecords deletes the records older than their retention at now.
func (p *Platform) pruneRecords(ctx context.Context, now time.Time) {
	if n, err := p.SPI.PruneInvocations(ctx, now.Add(-InvocationRetention)); err != nil && ctx.Err() == nil {
		p.log.WarnContext(ctx, "pruning SPI invocation records failed", "error", err.Error())
	} else if n > 0 {
		p.log.InfoContext(ctx, "pruned SPI invocation records", "rows", n)
	}
	if n, err := p.Gateway.PruneAnalytics(ctx, now.Add(-AnalyticsRetention)); err != nil && ctx.Err() == nil {
		p.log.WarnContext(ctx, "pruning API analytics failed", "error", err.Error())
	} else if n > 0 {
		p.log.InfoContext(ctx, "pruned API analytics", "rows", n)
	}
	if n, err := p.Identity.PruneStreamTickets(ctx, now); err != nil && ctx.Err() == nil {
		p.log.WarnContext(ctx, "pruning expired stream tickets failed", "error", err.Error())
	} else if n > 0 {
		p.log.InfoContext(ctx, "pruned expired stream tickets", "rows", n)
	}
	if p.SSO != nil {
		if n, err := p.SSO.Prune(ctx, now); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "pruning expired single sign-on logins failed", "error", err.Error())
		} else if n > 0 {
			p.log.InfoContext(ctx, "pruned expired single sign-on logins", "rows", n)
		}
	}
	if n, err := portal.PruneSessions(ctx, p.DB, now); err != nil && ctx.Err() == nil {
		p.log.WarnContext(ctx, "pruning ended portal sessions failed", "error", err.Error())
	} else if n > 0 {
		p.log.InfoContext(ctx, "pruned ended portal sessions", "rows", n)
	}
}
