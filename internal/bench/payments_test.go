package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// tiny bounds a run so tests finish fast; nothing asserts on speed.
var tiny = Options{Duration: 200 * time.Millisecond, Concurrency: 2, MaxOps: 50}

func TestPaymentsReportsTransfersBesideRawSQLiteCommits(t *testing.T) {
	r, err := Payments(context.Background(), tiny)
	if err != nil {
		t.Fatal(err)
	}
	checkPaymentsReport(t, r, "raw_sqlite_commits_per_s")
}

func TestPaymentsReportsTransfersBesideRawPostgresCommits(t *testing.T) {
	opts := tiny
	opts.DatabaseURL = testkit.Postgres.URL(t)
	r, err := Payments(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	checkPaymentsReport(t, r, "raw_postgres_commits_per_s")
}

func checkPaymentsReport(t *testing.T, r *Report, baseline string) {
	t.Helper()
	if r.Benchmark != "payments" || !strings.HasPrefix(r.Go, "go") || r.CPUs < 1 {
		t.Errorf("report header = %q %q %d", r.Benchmark, r.Go, r.CPUs)
	}
	if len(r.Figures) != 3 {
		t.Fatalf("figures = %+v, want 3", r.Figures)
	}
	if f := r.Figures[0]; f.Name != "transfers_per_s" || f.Unit != "1/s" || f.Baseline != baseline {
		t.Errorf("first figure = %+v, want transfers_per_s beside %s", f, baseline)
	}
	for _, f := range r.Figures {
		if f.Value <= 0 || f.BaselineValue <= 0 || f.Ratio <= 0 {
			t.Errorf("%s: value %v, baseline %v, ratio %v; want all positive", f.Name, f.Value, f.BaselineValue, f.Ratio)
		}
		if want := f.Value / f.BaselineValue; math.Abs(f.Ratio-want) > 1e-9*want {
			t.Errorf("%s: ratio %v, want value/baseline_value = %v", f.Name, f.Ratio, want)
		}
	}

	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("JSON of one report is not one object: %v\n%s", err, buf.String())
	}
	if !equalReports(&back, r) {
		t.Errorf("JSON round trip = %+v, want %+v", back, *r)
	}
}

func TestPaymentsFreshPostgresSchemaIsDroppedAfterwards(t *testing.T) {
	base := testkit.Postgres.URL(t)
	db, err := openFresh(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := db.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "causeway_bench_") {
		t.Fatalf("current_schema = %q, want a fresh causeway_bench_ schema", schema)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	admin, err := store.Open(context.Background(), store.Config{URL: base})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRow(`SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after Close", schema)
	}
}

func TestLoadStopsAtMaxOps(t *testing.T) {
	l, err := runLoad(context.Background(), Options{Duration: time.Minute, Concurrency: 3, MaxOps: 10},
		func(context.Context, *rand.Rand) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if l.ops != 10 || len(l.latencies) != 10 {
		t.Errorf("ops = %d, latencies = %d; want 10", l.ops, len(l.latencies))
	}
}

func TestLoadPercentileIsNearestRank(t *testing.T) {
	l := load{}
	for i := 1; i <= 100; i++ {
		l.latencies = append(l.latencies, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{0.50: 50, 0.99: 99, 1: 100, 0: 1} {
		if got := l.percentile(p); got != want {
			t.Errorf("percentile(%v) = %v, want %v", p, got, want)
		}
	}
}

// BenchmarkTransfer measures one internal transfer through the sandbox bank
// on a fresh SQLite file, from GOMAXPROCS goroutines.
func BenchmarkTransfer(b *testing.B) {
	ctx := context.Background()
	db := storetest.OpenSQLite(b)
	bank, accounts, err := newTransferBank(ctx, db, paymentCustomers)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		for pb.Next() {
			if err := transfer(ctx, bank, accounts, rng); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	if r, err := bank.CheckLedger(ctx); err != nil || !r.Balanced {
		b.Fatalf("ledger: %v %v", r, err)
	}
}
