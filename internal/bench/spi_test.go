package bench

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/testkit"
)

var spiFigures = []figureSpec{
	{"spi_calls_per_s", "1/s", "direct_posts_per_s"},
	{"spi_p50", "ms", "direct_p50"},
	{"spi_p99", "ms", "direct_p99"},
	{"added_latency_p50", "ms", "direct_p50"},
	{"added_latency_p99", "ms", "direct_p99"},
	{"lateness_p50", "ms", "deadline"},
	{"lateness_p99", "ms", "deadline"},
}

func TestSPIReportsCallsBesideDirectPostsAndLatenessPastTheDeadline(t *testing.T) {
	r, err := SPI(context.Background(), tiny)
	if err != nil {
		t.Fatal(err)
	}
	checkSPIReport(t, r)
}

func TestSPIRunsOnAFreshPostgresSchema(t *testing.T) {
	opts := tiny
	opts.DatabaseURL = testkit.Postgres.URL(t)
	r, err := SPI(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSPIReport(t, r)
}

func checkSPIReport(t *testing.T, r *Report) {
	t.Helper()
	// The invoker may add nothing measurable, and an answer may come back
	// within the millisecond of its deadline.
	checkFigures(t, r, "spi", spiFigures, "added_latency_p50", "added_latency_p99", "lateness_p50", "lateness_p99")
	got := map[string]Figure{}
	for _, f := range r.Figures {
		got[f.Name] = f
	}
	if f, want := got["added_latency_p50"], got["spi_p50"].Value-got["spi_p50"].BaselineValue; math.Abs(f.Value-want) > 1e-6 {
		t.Errorf("added_latency_p50 = %v, want spi_p50 - direct_p50", f.Value)
	}
	if f, want := got["added_latency_p99"], got["spi_p99"].Value-got["spi_p99"].BaselineValue; math.Abs(f.Value-want) > 1e-6 {
		t.Errorf("added_latency_p99 = %v, want spi_p99 - direct_p99", f.Value)
	}
	for _, name := range []string{"lateness_p50", "lateness_p99"} {
		// Never before the deadline, and long before the point's maximum
		// (5 s) would have ended the call.
		if f := got[name]; f.BaselineValue != 100 || f.Value < 0 || f.Value > 1000 {
			t.Errorf("%s = %v ms beside a deadline of %v ms", name, f.Value, f.BaselineValue)
		}
	}
}

// TestSPIDirectPostIsTheInvokersRequest: the baseline is only fair if it
// sends what the invoker sends: the same call body (but its own id and
// deadline), signed with the registration's secret the same way.
func TestSPIDirectPostIsTheInvokersRequest(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var bodies []map[string]json.RawMessage
	var verifier *standardwebhooks.Webhook
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := verifier.Verify(raw, r.Header); err != nil {
			t.Errorf("signature: %v", err)
		}
		var b map[string]json.RawMessage
		json.Unmarshal(raw, &b)
		bodies = append(bodies, b)
		w.Header().Set("Content-Type", "application/json")
		w.Write(spiAnswer)
	}))
	defer srv.Close()

	rig, err := startSPIRig(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rig.Close()
	_, secret, err := rig.register(ctx, srv.URL+"/fraud-check", 0)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	verifier, err = standardwebhooks.NewWebhook(secret)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.callAnswered(ctx); err != nil {
		t.Fatal(err)
	}
	direct, err := newDirectCaller(srv.URL+"/fraud-check", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.client.CloseIdleConnections()
	if err := direct.call(ctx); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("the endpoint got %d calls, want 2", len(bodies))
	}
	invoker, baseline := bodies[0], bodies[1]
	if len(invoker) != len(baseline) {
		t.Errorf("fields: invoker %v, direct %v", keys(invoker), keys(baseline))
	}
	for _, k := range []string{"extension_point", "payload"} {
		if string(invoker[k]) != string(baseline[k]) {
			t.Errorf("%s: invoker %s, direct %s", k, invoker[k], baseline[k])
		}
	}
	if string(invoker["extension_point"]) != `"`+core.PointFraudCheck+`"` {
		t.Errorf("extension_point = %s", invoker["extension_point"])
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
