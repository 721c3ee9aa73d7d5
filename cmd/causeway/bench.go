package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/bench"
)

// benchHelp is `causeway bench --help`.
const benchHelp = `Measure Causeway under bounded load and print a table of figures, each
beside a baseline measured in the same run (for example payments per second
beside raw database commits per second), so runs can be compared across
machines and commits. --json FILE also writes the reports as JSON: one object
for one benchmark, an array of objects for several.

Each measurement runs on a fresh database: a SQLite file in a temporary
directory, or, with --database-url, a new schema in that PostgreSQL database,
dropped afterwards. The benchmarks that run a whole node (gateway, events)
run NATS JetStream inside the process, or, with --nats-url, use that NATS
under a fresh bus prefix whose streams are deleted afterwards; the others
run no bus. Each table title names what its benchmark ran on. Give both
URLs to measure the scale-out runtime.

The events benchmark also measures commit-to-receipt latency at a steady
rate, open loop: --rate events per second (default 500) published by the
bank (POST /bank/v1/events), then committed by payments (POST /v1/payments,
--rate/3 per second, three events each), beside raw POSTs to the same
receiver at the same rate. Calls that start late are counted, not skipped.

With --server URL the benchmarks measure a running node instead of
starting their own, through its public API only: each signs up an app of
its own there (deleted afterwards) and lifts its rate limit with
--admin-token, that node's bank admin token. Baselines are still measured
in this process, in the same run, and each table title names the
URL. The node must run in sandbox mode, on this machine and with
--allow-private-targets 127.0.0.0/8 (the benchmarks' webhook receivers and
SPI endpoints listen on 127.0.0.1):

  causeway serve --admin-token T --allow-private-targets 127.0.0.0/8 &
  causeway bench all --server http://127.0.0.1:8080 --admin-token T

Payments then go over the API (POST /v1/payments), beside raw commits here
to the server's kind of database: a SQLite file, or, for a server on
PostgreSQL, a fresh schema in --database-url. The data benchmark leaves a
bench-… dataset in the server's catalog. A benchmark that fails says why
in one line; the others still run and print their tables.

Unlike serve, bench reads no CAUSEWAY_ environment variables (only
CAUSEWAY_BENCH_DATA_BYTES, the data benchmark's size), not even
CAUSEWAY_ADMIN_TOKEN: it creates schemas, streams and apps, so it touches a
database, a NATS or a server only when told to.`

// benchCLI is `causeway bench`'s flags, which every subcommand shares.
type benchCLI struct {
	opts       bench.Options
	jsonFile   string
	cpuProfile string
}

// newBenchCommand is `causeway bench`: one subcommand per benchmark in
// bench.All, and `all` to run them in turn.
func newBenchCommand() *cobra.Command {
	var c benchCLI
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Causeway under bounded load, each figure beside a baseline",
		Long:  benchHelp,
		// Without a benchmark, show the help; a misspelt one is an error.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	f := cmd.PersistentFlags()
	f.StringVar(&c.jsonFile, "json", "", "also write the reports as JSON to this file")
	f.DurationVar(&c.opts.Duration, "duration", 5*time.Second, "how long each measurement (and its baseline) runs at most")
	f.IntVar(&c.opts.Concurrency, "concurrency", 8, "goroutines issuing operations at once")
	f.StringVar(&c.opts.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...) to run against; empty means a SQLite file")
	f.StringVar(&c.opts.NATSURL, "nats-url", "", "NATS URL with JetStream (nats://...) for the benchmarks that run a bus; empty means an embedded server")
	f.StringVar(&c.opts.Server, "server", "", "base URL of a running node (sandbox mode) to measure instead of starting one, e.g. http://127.0.0.1:8080")
	f.StringVar(&c.opts.AdminToken, "admin-token", "", "the bank admin token of --server")
	f.Float64Var(&c.opts.Rate, "rate", 500, "events per second of the events benchmark's steady-rate runs (open loop)")
	f.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (baselines included) to this file, for go tool pprof")

	all := bench.All()
	for _, b := range all {
		cmd.AddCommand(&cobra.Command{
			Use:   b.Name,
			Short: b.Short,
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return c.run(cmd, []bench.Benchmark{b}) },
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "all",
		Short: "Run every benchmark in turn",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.run(cmd, all) },
	})
	return cmd
}

// run runs benchmarks in turn and prints their tables (and writes their
// JSON); a benchmark that fails does not stop the others.
func (c *benchCLI) run(cmd *cobra.Command, benchmarks []bench.Benchmark) error {
	if err := c.check(cmd); err != nil {
		return err
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var reports []*bench.Report
	var errs []error
	for _, b := range benchmarks {
		fmt.Fprintf(cmd.ErrOrStderr(), "running %s...\n", b.Name)
		r, err := b.Run(cmd.Context(), c.opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reports = append(reports, r)
	}
	if len(reports) == 0 {
		return errors.Join(errs...)
	}
	if err := bench.WriteTable(cmd.OutOrStdout(), reports...); err != nil {
		return err
	}
	if c.jsonFile != "" {
		var buf bytes.Buffer
		if err := bench.WriteJSON(&buf, reports...); err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonFile, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// check refuses flags that do not go together, and a --server that does
// not answer with its --admin-token.
func (c *benchCLI) check(cmd *cobra.Command) error {
	opts := c.opts
	if opts.Duration <= 0 || opts.Concurrency < 1 || !(opts.Rate > 0) {
		return errors.New("--duration, --concurrency and --rate must be positive")
	}
	switch {
	case opts.Server == "" && opts.AdminToken != "":
		return errors.New("--admin-token is the token of --server: give both, or neither")
	case opts.Server != "" && opts.NATSURL != "":
		return errors.New("--nats-url has no meaning with --server: the server has its own bus")
	case opts.Server != "":
		// Once, rather than once per benchmark: a wrong URL or token
		// is one error.
		return bench.CheckServer(cmd.Context(), opts)
	}
	return nil
}
