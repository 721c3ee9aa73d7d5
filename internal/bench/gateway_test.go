package bench

import (
	"context"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/testkit"
)

func TestGatewayReportsBalancesThroughTheGatewayBesideDirectAndBare(t *testing.T) {
	r, err := Gateway(context.Background(), tiny)
	if err != nil {
		t.Fatal(err)
	}
	checkGatewayReport(t, r)
}

func TestGatewayRunsOnAFreshPostgresSchema(t *testing.T) {
	opts := tiny
	opts.DatabaseURL = testkit.Postgres.URL(t)
	r, err := Gateway(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	checkGatewayReport(t, r)
}

func checkGatewayReport(t *testing.T, r *Report) {
	t.Helper()
	if r.Benchmark != "gateway" || !strings.HasPrefix(r.Go, "go") || r.CPUs < 1 {
		t.Errorf("report header = %q %q %d", r.Benchmark, r.Go, r.CPUs)
	}
	want := []struct{ name, unit, baseline string }{
		{"gateway_requests_per_s", "1/s", "direct_requests_per_s"},
		{"gateway_latency_p50", "ms", "direct_latency_p50"},
		{"gateway_latency_p99", "ms", "direct_latency_p99"},
		{"direct_requests_per_s", "1/s", "bare_requests_per_s"},
	}
	if len(r.Figures) != len(want) {
		t.Fatalf("figures = %+v, want %d", r.Figures, len(want))
	}
	for i, w := range want {
		f := r.Figures[i]
		if f.Name != w.name || f.Unit != w.unit || f.Baseline != w.baseline {
			t.Errorf("figure %d = %s (%s) beside %s, want %s (%s) beside %s", i, f.Name, f.Unit, f.Baseline, w.name, w.unit, w.baseline)
		}
		if f.Value <= 0 || f.BaselineValue <= 0 || f.Ratio <= 0 {
			t.Errorf("%s: value %v, baseline %v, ratio %v; want all positive", f.Name, f.Value, f.BaselineValue, f.Ratio)
		}
		if want := f.Value / f.BaselineValue; math.Abs(f.Ratio-want) > 1e-9*want {
			t.Errorf("%s: ratio %v, want value/baseline_value = %v", f.Name, f.Ratio, want)
		}
	}
	// The direct throughput is the same measurement in both places.
	if r.Figures[0].BaselineValue != r.Figures[3].Value {
		t.Errorf("direct_requests_per_s is %v as a baseline but %v as a figure", r.Figures[0].BaselineValue, r.Figures[3].Value)
	}
}

func TestGatewayRigServesTheSameBalancesWithAndWithoutTheGateway(t *testing.T) {
	// The comparison is only fair if the node really gates the measured
	// route (without a token it answers 401) and the direct server answers
	// the same request with the same bytes.
	rig, err := startGatewayRig(context.Background(), Options{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rig.Close()
	res, err := rig.client.Get(rig.GatewayURL + rig.Path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("GET %s without a token = %d, want 401", rig.Path, res.StatusCode)
	}
	var viaGateway, direct strings.Builder
	if err := rig.get(context.Background(), rig.GatewayURL, &viaGateway); err != nil {
		t.Fatal(err)
	}
	if err := rig.get(context.Background(), rig.DirectURL, &direct); err != nil {
		t.Fatal(err)
	}
	if viaGateway.String() != direct.String() {
		t.Errorf("balances differ:\ngateway %s\ndirect  %s", viaGateway.String(), direct.String())
	}
}

// BenchmarkGatewayBalances is the gateway benchmark as a Go benchmark, for
// profiling: the app's balances request over loopback HTTP to the bare
// handler, to the public handlers without the gateway, and through the
// whole node, from 4×GOMAXPROCS goroutines (8 on two CPUs, the default
// concurrency of `causeway bench`). Client and servers share the process,
// so a CPU profile shows both sides; a fixed count makes the profile's
// seconds divide into a cost per request:
//
//	go test -run '^$' -bench GatewayBalances/gateway -benchtime 20000x -cpuprofile cpu.out ./internal/bench/
func BenchmarkGatewayBalances(b *testing.B) {
	const parallelism = 4
	ctx := context.Background()
	rig, err := startGatewayRig(ctx, Options{}, parallelism*runtime.GOMAXPROCS(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rig.Close() })
	for _, s := range []struct{ name, base string }{
		{"bare", rig.BareURL}, {"direct", rig.DirectURL}, {"gateway", rig.GatewayURL},
	} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(parallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := rig.get(ctx, s.base, io.Discard); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
		})
	}
}
