package leader

import (
	"context"
	"time"
)

// Job is periodic work for the whole cluster, such as pruning records past
// their retention: the node holding the lease does it once per Every.
// Each package declares its own jobs; the composition root schedules them.
type Job struct {
	// Name says what the job does, for the logs ("prune SPI invocation
	// records").
	Name  string
	Every time.Duration
	// Do does the work once and returns how many records it changed.
	Do func(ctx context.Context) (int64, error)
}

// Schedule runs job every job.Every, while this node holds the lease,
// until ctx is done. A failure is logged and tried again at the next tick.
func (l *Lease) Schedule(ctx context.Context, job Job) error {
	tick := time.NewTicker(job.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if !l.Held() {
			continue
		}
		n, err := job.Do(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			l.log.WarnContext(ctx, "periodic job failed; trying again at its next run", "job", job.Name, "error", err.Error())
		case n > 0:
			l.log.InfoContext(ctx, "periodic job done", "job", job.Name, "rows", n)
		}
	}
}
