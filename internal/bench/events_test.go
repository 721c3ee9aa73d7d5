package bench

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/testkit"
)

// figureSpec is what a report's figure must be called and be beside.
type figureSpec struct{ name, unit, baseline string }

// checkFigures checks a report's header and that its figures are, in
// order, the ones in want, each with a ratio of value to baseline value.
// Values must be positive unless mayBeZero names them.
func checkFigures(t *testing.T, r *Report, benchmark string, want []figureSpec, mayBeZero ...string) {
	t.Helper()
	if r.Benchmark != benchmark || !strings.HasPrefix(r.Go, "go") || r.CPUs < 1 {
		t.Errorf("report header = %q %q %d", r.Benchmark, r.Go, r.CPUs)
	}
	if len(r.Figures) != len(want) {
		t.Fatalf("figures = %+v, want %d", r.Figures, len(want))
	}
	for i, w := range want {
		f := r.Figures[i]
		if f.Name != w.name || f.Unit != w.unit || f.Baseline != w.baseline {
			t.Errorf("figure %d = %s (%s) beside %s, want %s (%s) beside %s", i, f.Name, f.Unit, f.Baseline, w.name, w.unit, w.baseline)
		}
		if f.BaselineValue <= 0 {
			t.Errorf("%s: baseline %v, want positive", f.Name, f.BaselineValue)
			continue
		}
		if f.Value <= 0 && !contains(mayBeZero, f.Name) {
			t.Errorf("%s: value %v, want positive", f.Name, f.Value)
		}
		if want := f.Value / f.BaselineValue; math.Abs(f.Ratio-want) > 1e-9*math.Abs(want) {
			t.Errorf("%s: ratio %v, want value/baseline_value = %v", f.Name, f.Ratio, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var eventsFigures = []figureSpec{
	{"deliveries_per_s", "1/s", "raw_post_per_s"},
	{"commit_to_receipt_p50", "ms", "raw_post_latency_p50"},
	{"commit_to_receipt_p99", "ms", "raw_post_latency_p99"},
	{"connections_per_1k_deliveries", "1/1000", "raw_post_connections_per_1k"},
	{"steady_published_per_s", "1/s", "steady_rate_per_s"},
	{"steady_commit_to_receipt_p50", "ms", "raw_post_steady_latency_p50"},
	{"steady_commit_to_receipt_p99", "ms", "raw_post_steady_latency_p99"},
	{"steady_late_publishes", "1", "steady_publishes"},
	{"steady_payment_commit_to_receipt_p50", "ms", "raw_post_steady_latency_p50"},
	{"steady_payment_commit_to_receipt_p99", "ms", "raw_post_steady_latency_p99"},
	{"steady_late_payments", "1", "steady_payments"},
	{"raw_post_steady_late", "1", "raw_post_steady_posts"},
}

// checkEventsReport checks an events report of a run at opts.Rate (the
// default when zero): its figures, its percentiles in order, and the
// steady-rate runs' counts.
func checkEventsReport(t *testing.T, r *Report, opts Options) {
	t.Helper()
	// Reusing every connection is allowed to open none while measuring,
	// and a steady run may keep its schedule.
	checkFigures(t, r, "events", eventsFigures,
		"connections_per_1k_deliveries", "steady_late_publishes", "steady_late_payments", "raw_post_steady_late")
	checkOrdered(t, r, "commit_to_receipt", "steady_commit_to_receipt", "steady_payment_commit_to_receipt")
	f := figures(r)
	if rate := opts.withDefaults().Rate; f["steady_published_per_s"].BaselineValue != rate {
		t.Errorf("steady rate = %v, want %v", f["steady_published_per_s"].BaselineValue, rate)
	}
	for _, late := range []string{"steady_late_publishes", "steady_late_payments", "raw_post_steady_late"} {
		if v := f[late]; v.Value < 0 || v.Value > v.BaselineValue || v.Value != math.Trunc(v.Value) {
			t.Errorf("%s = %v of %v, want a count between none and all", late, v.Value, v.BaselineValue)
		}
	}
	// Each steady run makes rate × duration calls, at most MaxOps: none
	// is skipped, however late.
	o := opts.withDefaults()
	calls := func(rate float64) float64 { return float64(max(1, min(int(rate*o.Duration.Seconds()), o.MaxOps))) }
	for name, want := range map[string]float64{
		"steady_late_publishes": calls(o.Rate), "raw_post_steady_late": calls(o.Rate), "steady_late_payments": calls(o.Rate / 3),
	} {
		if got := f[name].BaselineValue; got != want {
			t.Errorf("%s beside %v calls, want %v", name, got, want)
		}
	}
}

// figures returns r's figures by name.
func figures(r *Report) map[string]Figure {
	m := map[string]Figure{}
	for _, f := range r.Figures {
		m[f.Name] = f
	}
	return m
}

// checkOrdered checks that each named latency's p50 is at most its p99,
// and so are their baselines'.
func checkOrdered(t *testing.T, r *Report, names ...string) {
	t.Helper()
	f := figures(r)
	for _, name := range names {
		p50, ok1 := f[name+"_p50"]
		p99, ok2 := f[name+"_p99"]
		if !ok1 || !ok2 {
			t.Errorf("no %s_p50 and _p99 in %+v", name, r.Figures)
			continue
		}
		if p50.Value > p99.Value || p50.BaselineValue > p99.BaselineValue {
			t.Errorf("%s: p50 %v > p99 %v, or baseline p50 %v > p99 %v", name, p50.Value, p99.Value, p50.BaselineValue, p99.BaselineValue)
		}
	}
}

func TestEventsReportsDeliveriesBesideRawPostsToTheSameReceiver(t *testing.T) {
	r, err := EventsWith(context.Background(), tiny, EventsConfig{Subscriptions: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkEventsReport(t, r, tiny)
}

func TestEventsRunsOnAFreshPostgresSchema(t *testing.T) {
	opts := tiny
	opts.DatabaseURL = testkit.Postgres.URL(t)
	r, err := EventsWith(context.Background(), opts, EventsConfig{Subscriptions: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkEventsReport(t, r, opts)
}

func TestEventsReceiverCountsTheFirstReceiptOfEachEventPerSubscription(t *testing.T) {
	rc := newEventsReceiver(2)
	defer rc.Close()
	post := func(url, body string) int {
		t.Helper()
		res, err := http.Post(url, "application/cloudevents+json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	ev := func(id string) string {
		return `{"specversion":"1.0","id":"` + id + `","type":"payment.completed","time":"` +
			time.Now().Add(-time.Millisecond).UTC().Format(time.RFC3339Nano) + `"}`
	}
	rc.startMeasuring()
	for _, c := range []struct {
		url, body string
		want      int
	}{
		{rc.URL(0), ev("evt_1"), 204},
		{rc.URL(0), ev("evt_1"), 204}, // a redelivery: answered, not counted
		{rc.URL(1), ev("evt_1"), 204},
		{rc.RawURL(), ev("evt_2"), 204}, // the baseline: not counted
		{rc.URL(0), `{"id":"evt_3"}`, 400},
		{rc.URL(2), ev("evt_4"), 404},
	} {
		if got := post(c.url, c.body); got != c.want {
			t.Errorf("POST %s %s = %d, want %d", c.url, c.body, got, c.want)
		}
	}
	if err := rc.wait(context.Background(), 1, time.Second); err != nil {
		t.Error(err)
	}
	if err := rc.wait(context.Background(), 2, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "had 1 of 2") {
		t.Errorf("wait for 2 = %v, want a timeout naming 1 of 2", err)
	}
	m := rc.measured()
	if len(m.latencies) != 2 || m.latencies[0] <= 0 {
		t.Errorf("latencies = %v, want two positive", m.latencies)
	}
	if b := rc.sampleBodies(); len(b[0]) == 0 {
		t.Errorf("no payment.completed body kept for the baseline")
	}
}

// BenchmarkEvents is the events benchmark as a Go benchmark, for
// profiling: b.N payments through the sandbox bank of a whole node, each
// delivered as three events to each of four subscriptions, timed until the
// receiver has them all. A fixed count makes the profile's seconds divide
// into a cost per delivery (12 per payment):
//
//	go test -run '^$' -bench Events -benchtime 2000x -cpuprofile cpu.out ./internal/bench/
func BenchmarkEvents(b *testing.B) {
	const subscriptions = 4
	ctx := context.Background()
	rig, err := startEventsRig(ctx, Options{}, subscriptions)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rig.Close() })
	if err := rig.pay(ctx, rand.New(rand.NewPCG(0, 0))); err != nil {
		b.Fatal(err)
	}
	if err := rig.recv.wait(ctx, eventsPerPayment, time.Minute); err != nil {
		b.Fatal(err)
	}
	conns := rig.recv.conns.Load()
	b.ResetTimer()
	_, err = runLoad(ctx, Options{Duration: time.Hour, Concurrency: 8, MaxOps: b.N}, func(ctx context.Context, rng *rand.Rand) error {
		return rig.pay(ctx, rng)
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := rig.recv.wait(ctx, eventsPerPayment*(1+b.N), 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	deliveries := float64(eventsPerPayment * subscriptions * b.N)
	b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(1000*float64(rig.recv.conns.Load()-conns)/deliveries, "conns/1k")
}
