package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/testkit"
)

// scaleOut is tiny on the scale-out runtime: PostgreSQL and the external
// NATS of the test environment. It skips without them, and fails instead
// under CAUSEWAY_REQUIRE_POSTGRES / CAUSEWAY_REQUIRE_NATS.
func scaleOut(t *testing.T) Options {
	t.Helper()
	opts := tiny
	opts.Duration = 300 * time.Millisecond
	opts.DatabaseURL = testkit.Postgres.URL(t)
	opts.NATSURL = testkit.NATS.URL(t)
	return opts
}

// benchStreams lists the streams on the NATS at natsURL that bench nodes
// make (under causeway_bench_… prefixes).
func benchStreams(t *testing.T, natsURL string) []string {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{URL: natsURL})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	lister := b.JetStream().StreamNames(context.Background())
	var names []string
	for name := range lister.Name() {
		if strings.HasPrefix(name, "CAUSEWAY_BENCH_") {
			names = append(names, name)
		}
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestBenchNodeUsesTheExternalNATSUnderAFreshPrefixAndDeletesItsStreams(t *testing.T) {
	opts := scaleOut(t)
	ctx := context.Background()
	before := benchStreams(t, opts.NATSURL)
	a, err := startBenchNode(ctx, opts, "nats", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startBenchNode(ctx, opts, "nats", 1)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	events := func(n *benchNode) string { return n.Bus.Stream(outbox.StreamName) }
	for _, n := range []*benchNode{a, b} {
		if n.Bus.Embedded() {
			t.Errorf("node bus is embedded, want the external NATS")
		}
		if !strings.HasPrefix(events(n), "CAUSEWAY_BENCH_") {
			t.Errorf("events stream %s, want one under a causeway_bench_ prefix", events(n))
		}
	}
	if events(a) == events(b) {
		t.Errorf("two nodes share the events stream %s, want a prefix each", events(a))
	}
	running := benchStreams(t, opts.NATSURL)
	for _, n := range []*benchNode{a, b} {
		if !slices.Contains(running, events(n)) {
			t.Errorf("streams while running = %v, want %s among them", running, events(n))
		}
	}
	if err := errors.Join(a.Close(), b.Close()); err != nil {
		t.Fatal(err)
	}
	if after := benchStreams(t, opts.NATSURL); !slices.Equal(after, before) {
		t.Errorf("bench streams after Close = %v, want those before (%v)", after, before)
	}
}

// TestEveryBenchmarkRunsOnTheScaleOutRuntime is `causeway bench all
// --database-url … --nats-url …` in short: every benchmark runs briefly on
// PostgreSQL and the external NATS, reports positive figures beside its
// baselines and says what it ran on, and the runs leave no streams behind.
// Nothing here asserts on speed.
func TestEveryBenchmarkRunsOnTheScaleOutRuntime(t *testing.T) {
	opts := scaleOut(t)
	ctx := context.Background()
	before := benchStreams(t, opts.NATSURL)

	// How each benchmark of All is run here (smaller than its default
	// where it has a size of its own), the bus it must say it ran on, and
	// the checks its own tests make.
	type run struct {
		bench func() (*Report, error)
		bus   string
		check func(*testing.T, *Report)
	}
	runs := map[string]run{
		"gateway": {func() (*Report, error) { return Gateway(ctx, opts) }, BusExternal, checkGatewayReport},
		"payments": {func() (*Report, error) { return Payments(ctx, opts) }, BusNone,
			func(t *testing.T, r *Report) { checkPaymentsReport(t, r, "raw_postgres_commits_per_s") }},
		"events": {func() (*Report, error) { return EventsWith(ctx, opts, EventsConfig{Subscriptions: 2}) }, BusExternal,
			func(t *testing.T, r *Report) { checkEventsReport(t, r, opts) }},
		"spi":  {func() (*Report, error) { return SPI(ctx, opts) }, BusNone, checkSPIReport},
		"data": {func() (*Report, error) { return DataWith(ctx, opts, DataConfig{Bytes: 2 << 20}) }, BusNone, checkDataReport},
	}
	var reports []*Report
	for _, b := range All() {
		r, ok := runs[b.Name]
		if !ok {
			t.Errorf("benchmark %s has no scale-out run here", b.Name)
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			rep, err := r.bench()
			if err != nil {
				t.Fatal(err)
			}
			if want := (Runtime{Database: "postgres", Bus: r.bus}); rep.Runtime != want {
				t.Errorf("runtime = %+v, want %+v", rep.Runtime, want)
			}
			r.check(t, rep)
			reports = append(reports, rep)
		})
	}
	if after := benchStreams(t, opts.NATSURL); !slices.Equal(after, before) {
		t.Errorf("bench streams after the runs = %v, want those before (%v)", after, before)
	}
	if len(reports) != len(All()) {
		return
	}

	// The table and the JSON say what each benchmark ran on.
	var table bytes.Buffer
	if err := WriteTable(&table, reports...); err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{
		"gateway on PostgreSQL + external NATS (go", "payments on PostgreSQL, no bus (go",
		"events on PostgreSQL + external NATS (go", "spi on PostgreSQL, no bus (go", "data on PostgreSQL, no bus (go",
	} {
		if !strings.Contains(table.String(), "\n"+title) && !strings.HasPrefix(table.String(), title) {
			t.Errorf("table has no title %q:\n%s", title, table.String())
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, reports...); err != nil {
		t.Fatal(err)
	}
	var back []struct {
		Benchmark string `json:"benchmark"`
		Runtime   struct {
			Database string `json:"database"`
			Bus      string `json:"bus"`
		} `json:"runtime"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back) != len(reports) {
		t.Fatalf("JSON of %d reports: %v\n%s", len(reports), err, js.String())
	}
	for i, r := range back {
		if r.Benchmark != reports[i].Benchmark || r.Runtime.Database != "postgres" || r.Runtime.Bus != reports[i].Runtime.Bus {
			t.Errorf("JSON report %d = %+v, want %s on postgres and bus %s", i, r, reports[i].Benchmark, reports[i].Runtime.Bus)
		}
	}
}
