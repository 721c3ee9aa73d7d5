package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/testkit"
)

// onServer is tiny against the running node n: what
// `causeway bench … --server n.URL --admin-token n.Admin` does.
func onServer(n *benchNode) Options {
	opts := tiny
	opts.Duration = 300 * time.Millisecond
	opts.Server, opts.AdminToken = n.URL, n.Admin
	return opts
}

// startServer starts a node serving on loopback in sandbox mode, with an
// admin token and 127.0.0.0/8 allowed as a target: the server the --server
// variants measure. opts names its database.
func startServer(t *testing.T, opts Options) *benchNode {
	t.Helper()
	n, err := startBenchNode(context.Background(), opts, "server", 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// checkTarget checks that r says it measured the server at url on rt, in
// its table title and in its JSON.
func checkTarget(t *testing.T, r *Report, url string, rt Runtime) {
	t.Helper()
	if r.Target != url || r.Runtime != rt {
		t.Errorf("%s: target %q on %+v, want %q on %+v", r.Benchmark, r.Target, r.Runtime, url, rt)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	if title, _, _ := strings.Cut(table.String(), "\n"); !strings.HasPrefix(title, r.Benchmark+" on "+url+": "+rt.String()+" (") {
		t.Errorf("table title %q does not name the server %s", title, url)
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Target  string  `json:"target"`
		Runtime Runtime `json:"runtime"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil || got.Target != url || got.Runtime != rt {
		t.Errorf("JSON target %q on %+v (%v), want %q on %+v", got.Target, got.Runtime, err, url, rt)
	}
}

func TestBenchmarksMeasureARunningServerThroughItsPublicAPI(t *testing.T) {
	ctx := context.Background()
	n := startServer(t, Options{})
	opts := onServer(n)
	rt := Runtime{Database: "sqlite", Bus: BusEmbedded}

	t.Run("gateway", func(t *testing.T) {
		r, err := Gateway(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		checkFigures(t, r, "gateway", append([]figureSpec{
			{"gateway_requests_per_s", "1/s", "bare_requests_per_s"},
			{"gateway_latency_p50", "ms", "bare_latency_p50"},
			{"gateway_latency_p99", "ms", "bare_latency_p99"},
		}, proxyFigures...))
		checkOrdered(t, r, "gateway_latency", "proxy_latency", "proxy_fresh_token_latency")
		checkProxyBaseline(t, r)
		checkTarget(t, r, n.URL, rt)
	})
	t.Run("payments", func(t *testing.T) {
		r, err := Payments(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		checkFigures(t, r, "payments", []figureSpec{
			{"api_payments_per_s", "1/s", "raw_sqlite_commits_per_s"},
			{"api_payment_latency_p50", "ms", "raw_sqlite_commit_latency_p50"},
			{"api_payment_latency_p99", "ms", "raw_sqlite_commit_latency_p99"},
		})
		checkTarget(t, r, n.URL, rt)
	})
	t.Run("events", func(t *testing.T) {
		r, err := EventsWith(ctx, opts, EventsConfig{Subscriptions: 2})
		if err != nil {
			t.Fatal(err)
		}
		checkEventsReport(t, r, opts)
		checkTarget(t, r, n.URL, rt)
	})
	t.Run("spi", func(t *testing.T) {
		r, err := SPI(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		checkFigures(t, r, "spi", []figureSpec{
			{"invoke_calls_per_s", "1/s", "direct_posts_per_s"},
			{"invoke_p50", "ms", "direct_p50"},
			{"invoke_p99", "ms", "direct_p99"},
			{"added_latency_p50", "ms", "direct_p50"},
			{"added_latency_p99", "ms", "direct_p99"},
			{"lateness_p50", "ms", "deadline"},
			{"lateness_p99", "ms", "deadline"},
		}, "added_latency_p99", "lateness_p50", "lateness_p99")
		checkTarget(t, r, n.URL, rt)
		for _, f := range r.Figures[5:] {
			// Past the deadline, never cut short by an open breaker, and
			// long before the point's maximum (5 s).
			if f.Value < 0 || f.Value > 1000 {
				t.Errorf("%s = %v ms beside a deadline of %v ms", f.Name, f.Value, f.BaselineValue)
			}
		}
	})
	t.Run("data", func(t *testing.T) {
		r, err := DataWith(ctx, opts, DataConfig{Bytes: 2 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var want []figureSpec
		for _, f := range []figureSpec{
			{"agent_hub_client_mb_per_s", "MB/s", "raw_age_encrypt_decrypt_mb_per_s"},
			{"agent_to_hub_mb_per_s", "MB/s", "raw_age_encrypt_decrypt_mb_per_s"},
			{"hub_to_client_decrypt_mb_per_s", "MB/s", "raw_age_encrypt_decrypt_mb_per_s"},
			{"client_peak_heap_mib", "MiB", "dataset_mib"},
			{"raw_age_peak_heap_mib", "MiB", "dataset_mib"},
			{"ciphertext_overhead_bytes", "B", "plaintext_bytes"},
			{"bench_process_peak_rss_mib", "MiB", "dataset_mib"},
		} {
			if f.name != "bench_process_peak_rss_mib" || vmHWM() > 0 {
				want = append(want, f)
			}
		}
		checkFigures(t, r, "data", want)
		checkTarget(t, r, n.URL, rt)
	})

	// What the benchmarks made on the server is gone: their apps, the
	// SPI registrations, the ciphertext of the dataset.
	var apps struct {
		Data []struct{ ID, Name string } `json:"data"`
	}
	if err := n.call(ctx, http.MethodGet, "/bank/v1/apps", n.Admin, nil, http.StatusOK, &apps); err != nil {
		t.Fatal(err)
	}
	if len(apps.Data) != 0 {
		t.Errorf("apps left on the server: %+v", apps.Data)
	}
	var upstreams struct {
		Data []struct{ ID, PathPrefix string } `json:"data"`
	}
	if err := n.call(ctx, http.MethodGet, "/bank/v1/upstreams", n.Admin, nil, http.StatusOK, &upstreams); err != nil {
		t.Fatal(err)
	}
	if len(upstreams.Data) != 0 {
		t.Errorf("upstreams left on the server: %+v", upstreams.Data)
	}
	var regs struct {
		Data []struct{ ID, Status string } `json:"data"`
	}
	if err := n.call(ctx, http.MethodGet, "/bank/v1/spi-registrations?status=active", n.Admin, nil, http.StatusOK, &regs); err != nil {
		t.Fatal(err)
	}
	if len(regs.Data) != 0 {
		t.Errorf("active SPI registrations left on the server: %+v", regs.Data)
	}
	var requests struct {
		Data []struct {
			Status  string `json:"status"`
			Content []struct {
				Status string `json:"status"`
			} `json:"content"`
		} `json:"data"`
	}
	if err := n.call(ctx, http.MethodGet, "/bank/v1/dataset-access-requests", n.Admin, nil, http.StatusOK, &requests); err != nil {
		t.Fatal(err)
	}
	for _, r := range requests.Data {
		if r.Status != "revoked" {
			t.Errorf("dataset access request left %s, want revoked: %+v", r.Status, r)
		}
	}
}

func TestPaymentsOnAPostgresServerMeasureTheBaselineInTheDatabaseURL(t *testing.T) {
	ctx := context.Background()
	pg := testkit.Postgres.URL(t)
	n := startServer(t, Options{DatabaseURL: pg})
	opts := onServer(n)

	// The server's database is out of reach: without a PostgreSQL to
	// commit to, the benchmark says so rather than compare with SQLite.
	if _, err := Payments(ctx, opts); err == nil || !strings.Contains(err.Error(), "runs on PostgreSQL") || !strings.Contains(err.Error(), "--database-url") {
		t.Errorf("payments on a PostgreSQL server without --database-url: %v, want an error asking for it", err)
	}
	opts.DatabaseURL = pg
	r, err := Payments(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkFigures(t, r, "payments", []figureSpec{
		{"api_payments_per_s", "1/s", "raw_postgres_commits_per_s"},
		{"api_payment_latency_p50", "ms", "raw_postgres_commit_latency_p50"},
		{"api_payment_latency_p99", "ms", "raw_postgres_commit_latency_p99"},
	})
	checkTarget(t, r, n.URL, Runtime{Database: "postgres", Bus: BusEmbedded})
}

func TestBenchmarksRefuseAServerTheyCannotUse(t *testing.T) {
	ctx := context.Background()
	n := startServer(t, Options{})

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	notCauseway := httptest.NewServer(http.NotFoundHandler())
	defer notCauseway.Close()
	production := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"version":"1.0.0","mode":"production","database":{"engine":"sqlite"},"bus":{"kind":"embedded"}}`))
	}))
	defer production.Close()

	for _, c := range []struct {
		name, server, token, want string
	}{
		{"wrong admin token", n.URL, "cwadm_wrong", "refused the admin token"},
		{"no admin token", n.URL, "", "give --admin-token"},
		{"unreachable", closed, "cwadm_x", "is not reachable"},
		{"not a URL", "127.0.0.1:8080", "cwadm_x", "want the base URL of a running node"},
		{"not Causeway", notCauseway.URL, "cwadm_x", "answered 404, want 200: is it a Causeway node?"},
		{"production mode", production.URL, "cwadm_x", "runs in production mode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := tiny
			opts.Server, opts.AdminToken = c.server, c.token
			err := CheckServer(ctx, opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("CheckServer: %v, want an error saying %q", err, c.want)
			}
			// Each benchmark fails the same way, at once.
			for _, b := range All() {
				if _, err := b.Run(ctx, opts); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), b.Name+": ") {
					t.Errorf("%s: %v, want an error saying %q", b.Name, err, c.want)
				}
			}
		})
	}
}

func TestBenchmarksSayHowToAllowTheirLoopbackTargets(t *testing.T) {
	// A server that may not call loopback cannot reach the webhook
	// receiver or the SPI endpoints of the benchmarks.
	ctx := context.Background()
	p, err := platform.New(ctx, platform.Config{
		DataDir: testkit.DataDir(t), Mode: platform.ModeSandbox, Version: "test", AdminToken: "cwadm_strict",
		Logger: slog.New(slog.DiscardHandler), Testing: platform.Testing{PasswordCost: benchPasswordCost}, SignupRate: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	url, stop, err := serveLoopback(p.Handler())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	opts := tiny
	opts.Server, opts.AdminToken = url, "cwadm_strict"
	for name, run := range map[string]func() (*Report, error){
		"events": func() (*Report, error) { return EventsWith(ctx, opts, EventsConfig{Subscriptions: 1}) },
		"spi":    func() (*Report, error) { return SPI(ctx, opts) },
	} {
		if _, err := run(); err == nil || !strings.Contains(err.Error(), "--allow-private-targets 127.0.0.0/8") {
			t.Errorf("%s on a server refusing loopback: %v, want an error saying to allow 127.0.0.0/8", name, err)
		}
	}
}
