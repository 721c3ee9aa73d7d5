package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

type analyticsBody struct {
	AppID  string    `json:"app_id"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Totals stats     `json:"totals"`
	Routes []struct {
		Route string `json:"route"`
		stats
	} `json:"routes"`
	Series []struct {
		Minute time.Time `json:"minute"`
		Calls  int64     `json:"calls"`
		Errors int64     `json:"errors"`
	} `json:"series"`
}

type stats struct {
	Calls        int64   `json:"calls"`
	ClientErrors int64   `json:"client_errors"`
	ServerErrors int64   `json:"server_errors"`
	P50          float64 `json:"p50_ms"`
	P95          float64 `json:"p95_ms"`
	P99          float64 `json:"p99_ms"`
	Streams      int64   `json:"streams"`
	StreamSecs   float64 `json:"stream_seconds"`
}

const analyticsRange = "?from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z"

func TestAnalyticsCountCallsErrorsAndLatencyPerRoute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		other := e.newNode(t)
		for range 5 {
			e.do("GET", "/v1/things", tokenA, "")
		}
		e.do("POST", "/v1/things", tokenA, `{"name":"boom"}`)   // 503
		e.do("POST", "/v1/things", tokenA, `{"name":"bad"}`)    // 422
		e.do("POST", "/v1/things", tokenARead, `{"name":"x"}`)  // 403
		other.do("POST", "/v1/things", tokenA, `{"name":"ok"}`) // 201
		other.do("GET", "/v1/things", tokenA, "")               // 200
		e.do("GET", "/v1/things", tokenB, "")                   // another app
		e.do("GET", "/v1/things", "nonsense", "")               // no app: not counted
		e.clock.Advance(time.Minute)
		other.do("GET", "/v1/things", tokenA, "") // the next minute

		var a analyticsBody
		res := e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "")
		res.json(t, &a)
		if res.status != 200 || a.Totals.Calls != 0 {
			t.Fatalf("before any flush: %d %+v", res.status, a.Totals)
		}
		e.flush()
		other.flush()

		res = e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "")
		res.json(t, &a)
		if res.status != 200 {
			t.Fatalf("analytics: %d %s", res.status, res.body)
		}
		want := stats{Calls: 11, ClientErrors: 2, ServerErrors: 1}
		if got := a.Totals; got.Calls != want.Calls || got.ClientErrors != want.ClientErrors || got.ServerErrors != want.ServerErrors {
			t.Errorf("totals %+v, want %+v", got, want)
		}
		if !(a.Totals.P50 > 0 && a.Totals.P50 <= a.Totals.P95 && a.Totals.P95 <= a.Totals.P99) {
			t.Errorf("percentiles %v %v %v", a.Totals.P50, a.Totals.P95, a.Totals.P99)
		}
		routes := map[string]stats{}
		for _, r := range a.Routes {
			routes[r.Route] = r.stats
		}
		if r := routes["GET /v1/things"]; r.Calls != 7 || r.ClientErrors != 0 {
			t.Errorf("GET /v1/things: %+v", r)
		}
		if r := routes["POST /v1/things"]; r.Calls != 4 || r.ClientErrors != 2 || r.ServerErrors != 1 {
			t.Errorf("POST /v1/things: %+v", r)
		}
		if len(a.Series) != 2 || a.Series[0].Calls != 10 || a.Series[0].Errors != 3 || a.Series[1].Calls != 1 ||
			!a.Series[0].Minute.Equal(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("series %+v", a.Series)
		}

		// Flushes add up: more calls, another flush.
		e.do("GET", "/v1/things", tokenA, "")
		e.flush()
		e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "").json(t, &a)
		if a.Totals.Calls != 12 {
			t.Errorf("after a second flush: %d calls, want 12", a.Totals.Calls)
		}
		e.admin("GET", "/bank/v1/apps/app_b/analytics"+analyticsRange, "").json(t, &a)
		if a.Totals.Calls != 1 {
			t.Errorf("app_b: %d calls, want 1", a.Totals.Calls)
		}
		// The platform's traffic: every app together.
		var all analyticsBody
		e.admin("GET", "/bank/v1/analytics"+analyticsRange, "").json(t, &all)
		if all.Totals.Calls != 13 || all.AppID != "" {
			t.Errorf("every app: %d calls (app %q), want 13", all.Totals.Calls, all.AppID)
		}

		// Retention drops whole minutes before the cut, and nothing after.
		n, err := e.gw.PruneAnalytics(context.Background(), time.Date(2026, 3, 10, 12, 1, 0, 0, time.UTC))
		if err != nil || n == 0 {
			t.Fatalf("prune: %d rows, %v", n, err)
		}
		var kept analyticsBody
		e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "").json(t, &kept)
		if kept.Totals.Calls != 2 || len(kept.Series) != 1 {
			t.Errorf("after pruning the first minute: %d calls, series %+v; want the 2 calls of the second", kept.Totals.Calls, kept.Series)
		}
	})
}

// TestAnalyticsCountStreamsApartFromLatency: a call answered with an event
// stream is a call, but how long its client stayed is not latency: it is
// counted as a stream, and the percentiles leave it out.
func TestAnalyticsCountStreamsApartFromLatency(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	for range 2 {
		if res := e.do("GET", "/v1/stream", tokenA, ""); res.status != 200 || res.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %d %s", res.status, res.header.Get("Content-Type"))
		}
	}
	e.do("GET", "/v1/stream", "app:app_a:payments:write", "") // refused 403: a call with a latency
	e.do("GET", "/v1/things", tokenA, "")
	e.flush()

	var a analyticsBody
	e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "").json(t, &a)
	routes := map[string]stats{}
	for _, r := range a.Routes {
		routes[r.Route] = r.stats
	}
	if r := routes["GET /v1/stream"]; r.Calls != 3 || r.Streams != 2 || r.ClientErrors != 1 || r.P99 == 0 {
		t.Errorf("GET /v1/stream: %+v, want 3 calls, 2 of them streams, and the refusal's latency", r)
	}
	if r := routes["GET /v1/things"]; r.Streams != 0 || r.P50 == 0 {
		t.Errorf("GET /v1/things: %+v", r)
	}
	if a.Totals.Calls != 4 || a.Totals.Streams != 2 || a.Totals.StreamSecs < 0 {
		t.Errorf("totals %+v, want 4 calls, 2 streams", a.Totals)
	}

	// Only streams: no latency at all.
	e.do("GET", "/v1/stream", tokenB, "")
	e.flush()
	e.admin("GET", "/bank/v1/apps/app_b/analytics"+analyticsRange, "").json(t, &a)
	if got := a.Totals; got.Calls != 1 || got.Streams != 1 || got.P50 != 0 || got.P95 != 0 || got.P99 != 0 {
		t.Errorf("an app that only streamed: %+v, want one stream and no latency", got)
	}
}

func TestAnalyticsQueryValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		var a analyticsBody
		res := e.admin("GET", "/bank/v1/apps/app_a/analytics", "")
		res.json(t, &a)
		if res.status != 200 || !a.To.Equal(e.clock.Now()) || !a.From.Equal(e.clock.Now().Add(-24*time.Hour)) || a.Routes == nil || a.Series == nil {
			t.Errorf("default range: %d %s", res.status, res.body)
		}
		e.admin("GET", "/bank/v1/apps/app_a/analytics?from=yesterday", "").problem(t, 400, "invalid_time")
		e.admin("GET", "/bank/v1/apps/app_a/analytics?from=2026-03-11&to=2026-03-10", "").problem(t, 422, "invalid_range")
		e.admin("GET", "/bank/v1/apps/app_a/analytics?from=2026-01-01&to=2026-03-10", "").problem(t, 422, "invalid_range")
		e.admin("GET", "/bank/v1/apps/app_x/analytics", "").problem(t, 404, "app_not_found")
	})
}

func TestDeveloperSeesOnlyTheAnalyticsOfTheirOrganizationsApps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.do("GET", "/v1/things", tokenA, "")
		e.flush()
		var a analyticsBody
		res := e.do("GET", "/v1/apps/app_a/analytics"+analyticsRange, tokenDevOrg, "")
		res.json(t, &a)
		if res.status != 200 || a.AppID != "app_a" || a.Totals.Calls != 1 {
			t.Errorf("own app: %d %s", res.status, res.body)
		}
		e.do("GET", "/v1/apps/app_c/analytics", tokenDevOrg, "").problem(t, 404, "app_not_found")
		e.do("GET", "/v1/apps/app_x/analytics", tokenDevOrg, "").problem(t, 404, "app_not_found")
		e.do("GET", "/v1/apps/app_a/analytics", "", "").problem(t, 401, "unauthorized")
		e.do("GET", "/v1/apps/app_a/analytics", tokenA, "").problem(t, 401, "invalid_token")
	})
}

func TestCloseFlushesAnalytics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		other := e.newNode(t)
		other.do("GET", "/v1/things", tokenA, "")
		other.srv.Close()
		other.gw.Close()
		var a analyticsBody
		e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "").json(t, &a)
		if a.Totals.Calls != 1 {
			t.Errorf("after Close: %d calls, want 1", a.Totals.Calls)
		}
	})
}
