package platform

import (
	"context"
	"slices"
)

// scheduleJobs runs the cluster's periodic jobs on the node holding the
// lease, so nodes sharing a database do each once. Each package declares
// its own jobs and owns the retention they apply: SPI invocation records
// and API analytics (spi.InvocationRetention, gateway.AnalyticsRetention),
// webhook delivery records, expired idempotency keys, stream tickets,
// single sign-on logins and ended portal sessions; and four-eyes finishes
// the confirmations a stopped node left executing (foureyes.Recover). Published outbox rows
// are pruned by the relay while it holds the same lease; the
// data-partnering sweep runs in datashare.Run, asking the lease too; the
// data-partnering audit trail is kept.
func (p *Platform) scheduleJobs() {
	jobs := slices.Concat(p.SPI.Jobs(), p.Gateway.Jobs(), p.Identity.Jobs(), p.Webhooks.Jobs(), p.portal.Jobs(), p.FourEyes.Jobs())
	if p.SSO != nil {
		jobs = append(jobs, p.SSO.Jobs()...)
	}
	for _, job := range jobs {
		p.background(func(ctx context.Context) error { return p.Lease.Schedule(ctx, job) })
	}
}
