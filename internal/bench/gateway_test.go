package bench

import (
	"context"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

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

// proxyFigures are the upstream proxy's rows of a gateway report, in
// process and against a server alike.
var proxyFigures = []figureSpec{
	{"proxy_requests_per_s", "1/s", "upstream_requests_per_s"},
	{"proxy_latency_p50", "ms", "upstream_latency_p50"},
	{"proxy_latency_p99", "ms", "upstream_latency_p99"},
	{"proxy_fresh_token_requests_per_s", "1/s", "upstream_requests_per_s"},
	{"proxy_fresh_token_latency_p50", "ms", "upstream_latency_p50"},
	{"proxy_fresh_token_latency_p99", "ms", "upstream_latency_p99"},
}

func checkGatewayReport(t *testing.T, r *Report) {
	t.Helper()
	checkFigures(t, r, "gateway", append([]figureSpec{
		{"gateway_requests_per_s", "1/s", "direct_requests_per_s"},
		{"gateway_latency_p50", "ms", "direct_latency_p50"},
		{"gateway_latency_p99", "ms", "direct_latency_p99"},
		{"direct_requests_per_s", "1/s", "bare_requests_per_s"},
	}, proxyFigures...))
	checkOrdered(t, r, "gateway_latency", "proxy_latency", "proxy_fresh_token_latency")
	// The direct throughput is the same measurement in both places.
	if len(r.Figures) > 3 && r.Figures[0].BaselineValue != r.Figures[3].Value {
		t.Errorf("direct_requests_per_s is %v as a baseline but %v as a figure", r.Figures[0].BaselineValue, r.Figures[3].Value)
	}
	checkProxyBaseline(t, r)
}

// checkProxyBaseline checks that both proxy runs stand beside the one
// direct run to the upstream.
func checkProxyBaseline(t *testing.T, r *Report) {
	t.Helper()
	f := figures(r)
	if a, b := f["proxy_requests_per_s"].BaselineValue, f["proxy_fresh_token_requests_per_s"].BaselineValue; a != b {
		t.Errorf("upstream_requests_per_s is %v beside one proxy run and %v beside the other", a, b)
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

	t.Run("upstream proxy", func(t *testing.T) {
		// The proxy runs are only fair if the gateway really checks the
		// token and signs what it forwards, while the direct calls reach
		// the same upstream unsigned; and the upstream is unpublished
		// afterwards.
		ctx := context.Background()
		p, err := startProxyRig(ctx, rig.api)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := rig.tokens.Token()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.get(ctx, p.UpstreamURL, ""); err != nil {
			t.Fatal(err)
		}
		if err := p.get(ctx, p.ProxyURL, tok.AccessToken); err != nil {
			t.Fatal(err)
		}
		if err := p.get(ctx, p.ProxyURL, ""); err == nil || !strings.Contains(err.Error(), ": 401 ") {
			t.Errorf("through the gateway without a token: %v, want 401", err)
		}
		if calls, signed := p.calls.Load(), p.signed.Load(); calls != 2 || signed != 1 {
			t.Errorf("upstream had %d calls, %d signed; want 2, the proxied one signed", calls, signed)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.get(ctx, p.ProxyURL, tok.AccessToken); err == nil || !strings.Contains(err.Error(), ": 404 ") {
			t.Errorf("after Close: %v, want 404 (unpublished)", err)
		}
	})
}

// benchParallelism makes the Go benchmarks of the gateway issue requests
// from 4×GOMAXPROCS goroutines: 8 on two CPUs, the default concurrency of
// `causeway bench`.
const benchParallelism = 4

// startBenchGatewayRig starts a gateway rig for a Go benchmark, closed at
// its end.
func startBenchGatewayRig(b *testing.B) *gatewayRig {
	rig, err := startGatewayRig(context.Background(), Options{}, benchParallelism*runtime.GOMAXPROCS(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rig.Close() })
	return rig
}

// runRequests times b.N calls of get from benchParallelism×GOMAXPROCS
// goroutines and reports them as requests/s.
func runRequests(b *testing.B, get func() error) {
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// BenchmarkGatewayBalances is the gateway benchmark as a Go benchmark, for
// profiling: the app's balances request over loopback HTTP to the bare
// handler, to the public handlers without the gateway, and through the
// whole node (see runRequests). Client and servers share the process,
// so a CPU profile shows both sides; a fixed count makes the profile's
// seconds divide into a cost per request:
//
//	go test -run '^$' -bench GatewayBalances/gateway -benchtime 20000x -cpuprofile cpu.out ./internal/bench/
func BenchmarkGatewayBalances(b *testing.B) {
	ctx := context.Background()
	rig := startBenchGatewayRig(b)
	for _, s := range []struct{ name, base string }{
		{"bare", rig.BareURL}, {"direct", rig.DirectURL}, {"gateway", rig.GatewayURL},
	} {
		b.Run(s.name, func(b *testing.B) {
			runRequests(b, func() error { return rig.get(ctx, s.base, io.Discard) })
		})
	}
}

// BenchmarkGatewayProxy is the upstream proxy's part of the gateway
// benchmark as a Go benchmark, for profiling: GET /v1/ext/{prefix}/… over
// loopback HTTP to the upstream directly, through the whole node with one
// access token reused, and through it with a new token for every request
// (see runRequests). The fresh tokens are minted from the node's
// /oauth2/token before the timer starts, but a CPU profile covers the
// minting too: leave it out with pprof's -ignore, e.g.
//
//	go test -run '^$' -bench GatewayProxy/fresh -benchtime 20000x -cpuprofile cpu.out ./internal/bench/
//	go tool pprof -top -ignore 'IssueToken|oauth2|mintTokens|identity.\(\*Service\).token' internal/bench/bench.test cpu.out
func BenchmarkGatewayProxy(b *testing.B) {
	ctx := context.Background()
	rig := startBenchGatewayRig(b)
	p, err := startProxyRig(ctx, rig.api)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	tok, err := rig.tokens.Token()
	if err != nil {
		b.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: rig.app.ClientID, ClientSecret: rig.app.ClientSecret, TokenURL: rig.URL + "/oauth2/token"}
	for _, s := range []struct {
		name, base string
		token      func(b *testing.B) func() string
	}{
		{"upstream", p.UpstreamURL, func(*testing.B) func() string { return func() string { return "" } }},
		{"reused", p.ProxyURL, func(*testing.B) func() string { return func() string { return tok.AccessToken } }},
		{"fresh", p.ProxyURL, func(b *testing.B) func() string {
			tokens, err := mintTokens(context.WithValue(ctx, oauth2.HTTPClient, rig.client), cc, b.N, runtime.GOMAXPROCS(0))
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			return func() string { return tokens[next.Add(1)-1] }
		}},
	} {
		b.Run(s.name, func(b *testing.B) {
			token := s.token(b)
			runRequests(b, func() error { return p.get(ctx, s.base, token()) })
		})
	}
}
