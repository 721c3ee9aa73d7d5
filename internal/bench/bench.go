// Package bench measures Causeway under bounded load and reports each figure
// beside a baseline measured in the same run (for example payments per
// second beside raw database commits per second), so a number means
// something on any machine and runs can be compared across commits.
// `causeway bench` runs the benchmarks listed by All.
package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/causewayhq/causeway/internal/store"
)

// Options bound a benchmark run. Zero fields take their defaults.
type Options struct {
	// Duration bounds each measurement (the benchmark and its baseline
	// each run this long at most). Default 5s.
	Duration time.Duration
	// Concurrency is the number of goroutines issuing operations.
	// Default 8.
	Concurrency int
	// MaxOps bounds the number of operations of each measurement, whichever
	// of it and Duration comes first. Default 100000.
	MaxOps int
	// DatabaseURL, when set, runs against PostgreSQL (each measurement in a
	// fresh schema, dropped afterwards) instead of a SQLite file in a
	// temporary directory. With Server, it is only where the payments
	// benchmark measures its raw-commit baseline (the server's own
	// database is out of reach), and only for a server on PostgreSQL.
	DatabaseURL string
	// NATSURL, when set, gives the benchmarks that run a whole node (and so
	// a bus) an external NATS with JetStream instead of a server embedded in
	// the process. Each node gets a fresh bus prefix, so runs sharing the
	// NATS never see each other's streams, and the streams made under it
	// are deleted afterwards. It has no meaning with Server.
	NATSURL string
	// Server, when set, is the base URL of a running `causeway serve` in
	// sandbox mode that the benchmarks measure instead of starting their
	// own node, through its public API only: each signs up an app of its
	// own there (deleted afterwards) and gets out of its rate limit with
	// AdminToken. Baselines are still measured in this process, in the
	// same run. The webhook receivers and SPI endpoints the benchmarks
	// start listen on 127.0.0.1, so the server must run on this machine
	// with --allow-private-targets covering 127.0.0.0/8.
	Server string
	// AdminToken is the bank admin token of Server.
	AdminToken string
	// Rate is the events per second of the events benchmark's steady-rate
	// runs (open loop: bank events, then payments committing Rate/3
	// payments per second, three events each). Default 500.
	Rate float64
}

// runtime is what a benchmark runs on under o; withBus says whether it
// runs a bus at all.
func (o Options) runtime(withBus bool) Runtime {
	rt := Runtime{Database: string(store.SQLite), Bus: BusNone}
	if o.DatabaseURL != "" {
		rt.Database = string(store.Postgres)
	}
	switch {
	case withBus && o.NATSURL != "":
		rt.Bus = BusExternal
	case withBus:
		rt.Bus = BusEmbedded
	}
	return rt
}

func (o Options) withDefaults() Options {
	o.Duration = cmp.Or(o.Duration, 5*time.Second)
	o.Concurrency = cmp.Or(o.Concurrency, 8)
	o.MaxOps = cmp.Or(o.MaxOps, 100_000)
	o.Rate = cmp.Or(o.Rate, 500)
	return o
}

// Benchmark is one named benchmark.
type Benchmark struct {
	Name  string // the subcommand: causeway bench <name>
	Short string // one line for help
	Run   func(ctx context.Context, opts Options) (*Report, error)
}

// All returns every benchmark, in the order `causeway bench all` runs them.
// A new benchmark is added here and nowhere else.
func All() []Benchmark {
	return []Benchmark{
		{Name: "gateway", Short: "Authenticated balances requests through the gateway vs the same handlers without it vs a bare handler; the upstream proxy (one token, a fresh token per request) vs the upstream called directly", Run: Gateway},
		{Name: "payments", Short: "Internal transfers through the sandbox bank vs raw single-row commits", Run: Payments},
		{Name: "events", Short: "Webhook deliveries of sandbox-bank events to a local receiver vs raw POSTs to it; commit-to-receipt latency at saturation and at a steady --rate (bank events, payment events)", Run: Events},
		{Name: "spi", Short: "Fraud-check calls through the SPI invoker vs direct signed POSTs to the same endpoint; lateness past a hanging endpoint's deadline", Run: SPI},
		{Name: "data", Short: "A dataset (1 GiB; CAUSEWAY_BENCH_DATA_BYTES) agent -> hub -> client decrypt on loopback vs raw in-memory age", Run: Data},
	}
}

// load is the outcome of one bounded load run.
type load struct {
	ops       int
	elapsed   time.Duration
	latencies []time.Duration // one per operation, sorted
}

// perSecond is the throughput of the run.
func (l load) perSecond() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.ops) / l.elapsed.Seconds()
}

// percentile returns the latency at or below which a fraction p of the
// operations finished (nearest rank).
func (l load) percentile(p float64) time.Duration {
	if len(l.latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(l.latencies)))) - 1
	return l.latencies[min(max(i, 0), len(l.latencies)-1)]
}

// runLoad calls op from opts.Concurrency goroutines until opts.Duration has
// passed or opts.MaxOps calls have been started. The first error stops the
// run and is returned. Each goroutine gets its own random source, seeded by
// its number, so runs are repeatable in what they ask for.
func runLoad(ctx context.Context, opts Options, op func(ctx context.Context, rng *rand.Rand) error) (load, error) {
	opts = opts.withDefaults()
	g, ctx := errgroup.WithContext(ctx)
	perWorker := make([][]time.Duration, opts.Concurrency)
	var started atomic.Int64
	start := time.Now()
	// The deadline is checked between operations rather than put on ctx:
	// cancelling an operation in flight would turn the end of the run into
	// errors.
	deadline := start.Add(opts.Duration)
	for w := range opts.Concurrency {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(1, uint64(w)))
			for ctx.Err() == nil && time.Now().Before(deadline) && started.Add(1) <= int64(opts.MaxOps) {
				t := time.Now()
				if err := op(ctx, rng); err != nil {
					return err
				}
				perWorker[w] = append(perWorker[w], time.Since(t))
			}
			return ctx.Err()
		})
	}
	err := g.Wait()
	l := load{elapsed: time.Since(start), latencies: slices.Concat(perWorker...)}
	l.ops = len(l.latencies)
	slices.SortFunc(l.latencies, cmp.Compare)
	return l, err
}

// pickPair picks two different indexes below n (at least 2) at random: the
// debtor and the creditor account of a payment.
func pickPair(rng *rand.Rand, n int) (from, to int) {
	from = rng.IntN(n)
	to = rng.IntN(n - 1)
	if to >= from {
		to++
	}
	return from, to
}

// steadyLoad is the outcome of an open-loop run at a fixed rate: the
// latencies are each call's own, from the moment it started.
type steadyLoad struct {
	load
	// late counts the calls that started more than lateAfter past the
	// moment they were due, because every goroutine was busy or the
	// machine did not wake the schedule in time. They were made anyway.
	late int
}

// lateAfter is how far past its due time a call of a steady run may start
// and still count as on time: one interval between calls, and at least a
// millisecond (about what a sleeping goroutine may oversleep).
func lateAfter(interval time.Duration) time.Duration { return max(interval, time.Millisecond) }

// runSteady calls op at perSecond calls per second, open loop: call i is
// due at start + i/perSecond whether or not the calls before it have
// returned, and runs on the first of inFlight goroutines that is free. It
// makes perSecond × opts.Duration calls, at most opts.MaxOps and at least
// one; a call that cannot start on time starts late and is counted (see
// steadyLoad.late), never skipped. The first error stops the run and is
// returned, and so does a schedule that has fallen so far behind that the
// run would last twice its length and 30 seconds more.
func runSteady(ctx context.Context, opts Options, perSecond float64, inFlight int, op func(ctx context.Context, i int) error) (steadyLoad, error) {
	opts = opts.withDefaults()
	if !(perSecond > 0) || inFlight < 1 {
		return steadyLoad{}, fmt.Errorf("a steady run needs a positive rate and goroutines, not %v/s on %d", perSecond, inFlight)
	}
	n := max(1, min(int(perSecond*opts.Duration.Seconds()), opts.MaxOps))
	interval := time.Duration(float64(time.Second) / perSecond)
	type call struct {
		i   int
		due time.Time
	}
	calls := make(chan call)
	g, ctx := errgroup.WithContext(ctx)
	perWorker := make([][]time.Duration, inFlight)
	late := make([]int, inFlight)
	for w := range inFlight {
		g.Go(func() error {
			for c := range calls {
				t := time.Now()
				if t.Sub(c.due) > lateAfter(interval) {
					late[w]++
				}
				if err := op(ctx, c.i); err != nil {
					return err
				}
				perWorker[w] = append(perWorker[w], time.Since(t))
			}
			return nil
		})
	}
	start := time.Now()
	giveUp := time.NewTimer(2*time.Duration(n)*interval + 30*time.Second)
	defer giveUp.Stop()
	wait := time.NewTimer(0)
	defer wait.Stop()
	var behind error
schedule:
	for i := range n {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / perSecond))
		if d := time.Until(due); d > 0 {
			wait.Reset(d)
			select {
			case <-wait.C:
			case <-ctx.Done():
				break schedule
			}
		}
		select {
		case calls <- call{i, due}:
		case <-ctx.Done():
			break schedule
		case <-giveUp.C:
			behind = fmt.Errorf("the schedule of %d calls at %v/s fell behind: %d started in %s", n, perSecond, i, time.Since(start).Round(time.Millisecond))
			break schedule
		}
	}
	close(calls)
	err := g.Wait()
	l := steadyLoad{load: load{elapsed: time.Since(start), latencies: slices.Concat(perWorker...)}}
	l.ops = len(l.latencies)
	for _, n := range late {
		l.late += n
	}
	slices.SortFunc(l.latencies, cmp.Compare)
	return l, cmp.Or(err, behind)
}
