package gateway_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func TestRequestsWithoutAValidCredentialAreUnauthorized(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		tests := []struct {
			name, path, token, code string
			header                  []string
		}{
			{"no token", "/v1/things", "", "unauthorized", nil},
			{"basic auth", "/v1/things", "", "unauthorized", []string{"Authorization", "Basic YTpi"}},
			{"garbage token", "/v1/things", "nonsense", "invalid_token", nil},
			{"expired token", "/v1/things", "app:expired:accounts:read", "token_expired", nil},
			{"developer token on an app route", "/v1/things", tokenDevOrg, "invalid_token", nil},
			{"app token on a developer route", "/v1/me", tokenA, "invalid_token", nil},
			{"no token on a developer route", "/v1/me", "", "unauthorized", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := e.do("GET", tt.path, tt.token, "", tt.header...)
				res.problem(t, 401, tt.code)
				if ch := res.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
					t.Errorf("WWW-Authenticate = %q", ch)
				}
				if res.header.Get("RateLimit-Limit") != "" {
					t.Error("an unauthenticated request got rate-limit headers")
				}
			})
		}
	})
}

func TestAuthenticatedCallerReachesTheHandler(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		var who struct {
			AppID       string `json:"app_id"`
			DeveloperID string `json:"developer_id"`
		}
		res := e.do("GET", "/v1/things", tokenA, "")
		if res.status != 200 {
			t.Fatalf("app call: %d %s", res.status, res.body)
		}
		res.json(t, &who)
		if who.AppID != "app_a" {
			t.Errorf("handler saw app %q", who.AppID)
		}
		res = e.do("GET", "/v1/me", tokenDevOrg, "")
		if res.status != 200 {
			t.Fatalf("developer call: %d %s", res.status, res.body)
		}
		res.json(t, &who)
		if who.DeveloperID != "dev_1" {
			t.Errorf("handler saw developer %q", who.DeveloperID)
		}
		if res.header.Get("RateLimit-Limit") == "" {
			t.Error("a developer route without RateLimit headers: developers must meet the rate limiter too")
		}
	})
}

// Issue 15: developer-token routes (creating apps, rotating secrets)
// never reached the rate limiter. A developer has a budget of its own
// under the default limits.
func TestDeveloperRoutesAreRateLimited(t *testing.T) {
	eachRuntime(t, func(t *testing.T, db *store.DB, b *bus.Bus) {
		e := newEnvOn(t, db, b, func(o *gateway.Options) {
			o.DefaultLimits = gateway.Limits{RequestsPerSecond: 0.001, Burst: 2, DailyQuota: 1000}
		})
		for i := range 2 {
			if res := e.do("GET", "/v1/me", tokenDevOrg, ""); res.status != 200 {
				t.Fatalf("call %d: %d %s", i+1, res.status, res.body)
			}
		}
		res := e.do("GET", "/v1/me", tokenDevOrg, "")
		if res.status != 429 || res.header.Get("Retry-After") == "" {
			t.Fatalf("3rd call over a burst of 2: %d (Retry-After %q) %s", res.status, res.header.Get("Retry-After"), res.body)
		}
		// An app's budget is its own.
		if res := e.do("GET", "/v1/things", tokenA, ""); res.status != 200 {
			t.Fatalf("an app call: %d %s", res.status, res.body)
		}
	})
}

func TestPublicAndBankRoutesPassThroughTheGateway(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		if res := e.do("GET", "/v1/public", "", ""); res.status != 200 {
			t.Errorf("public route: %d %s", res.status, res.body)
		}
		// A token on a public route is ignored, not checked.
		if res := e.do("GET", "/v1/public", "nonsense", ""); res.status != 200 {
			t.Errorf("public route with a bad token: %d %s", res.status, res.body)
		}
		// The bank group checks the admin token itself.
		e.do("GET", "/bank/v1/ping", tokenA, "").problem(t, 401, "unauthorized")
		if res := e.admin("GET", "/bank/v1/ping", ""); res.status != 200 {
			t.Errorf("bank route with the admin token: %d %s", res.status, res.body)
		}
		e.do("GET", "/v1/no-such-route", "", "").problem(t, 404, "not_found")
	})
}

func TestMissingScopeIsForbiddenAndNamed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		res := e.do("POST", "/v1/things", tokenARead, `{"name":"x"}`)
		p := res.problem(t, 403, "insufficient_scope")
		if !strings.Contains(p.Detail, "payments:write") {
			t.Errorf("detail %q does not name the missing scope", p.Detail)
		}
		if ch := res.header.Get("WWW-Authenticate"); !strings.Contains(ch, `scope="payments:write"`) {
			t.Errorf("WWW-Authenticate = %q", ch)
		}
		if e.app.posts.Load() != 0 {
			t.Error("the handler ran without the scope")
		}
	})
}

func TestRateLimitRefusesBeyondTheBurstPerApp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		// One token per 1000 s and a burst of 3; the test clock stands
		// still, so exactly 3 requests pass.
		if res := e.admin("PUT", "/bank/v1/apps/app_a/limits", `{"requests_per_second":0.001,"burst":3,"daily_quota":1000}`); res.status != 200 {
			t.Fatalf("put limits: %d %s", res.status, res.body)
		}
		var ok, limited int
		var remaining []string
		for range 10 {
			res := e.do("GET", "/v1/things", tokenA, "")
			if res.header.Get("RateLimit-Limit") != "3" {
				t.Errorf("RateLimit-Limit = %q", res.header.Get("RateLimit-Limit"))
			}
			if res.header.Get("RateLimit-Reset") == "" {
				t.Error("no RateLimit-Reset")
			}
			remaining = append(remaining, res.header.Get("RateLimit-Remaining"))
			switch res.status {
			case 200:
				ok++
			case 429:
				limited++
				res.problem(t, 429, "rate_limited")
				if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 || ra > 1000 {
					t.Errorf("Retry-After = %q", res.header.Get("Retry-After"))
				}
			default:
				t.Fatalf("status %d %s", res.status, res.body)
			}
		}
		if ok != 3 || limited != 7 {
			t.Errorf("%d passed and %d were limited; want 3 and 7", ok, limited)
		}
		if got := strings.Join(remaining[:4], ","); got != "2,1,0,0" {
			t.Errorf("RateLimit-Remaining went %s", got)
		}

		// Another app's budget is its own.
		for i := range 10 {
			if res := e.do("GET", "/v1/things", tokenB, ""); res.status != 200 {
				t.Fatalf("app_b request %d: %d %s", i, res.status, res.body)
			}
		}

		// A token comes back after 1000 s.
		e.clock.Advance(1000 * time.Second)
		if res := e.do("GET", "/v1/things", tokenA, ""); res.status != 200 {
			t.Errorf("after the refill: %d %s", res.status, res.body)
		}
		if res := e.do("GET", "/v1/things", tokenA, ""); res.status != 429 {
			t.Errorf("one token refilled, yet a second request got %d", res.status)
		}
		if n := rejected(t, e.node, "rate_limited"); n != 8 {
			t.Errorf("rejected{rate_limited} = %v, want 8", n)
		}
	})
}

func TestDailyQuotaRefusesUntilMidnightUTC(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		if res := e.admin("PUT", "/bank/v1/apps/app_a/limits", `{"requests_per_second":1000,"burst":1000,"daily_quota":5}`); res.status != 200 {
			t.Fatalf("put limits: %d %s", res.status, res.body)
		}
		for i := range 5 {
			res := e.do("GET", "/v1/things", tokenA, "")
			if res.status != 200 {
				t.Fatalf("request %d: %d %s", i, res.status, res.body)
			}
			// Near the end of the quota, the headers describe the quota.
			if i == 4 && (res.header.Get("RateLimit-Limit") != "5" || res.header.Get("RateLimit-Remaining") != "0") {
				t.Errorf("last request's headers: limit %q remaining %q",
					res.header.Get("RateLimit-Limit"), res.header.Get("RateLimit-Remaining"))
			}
		}
		res := e.do("GET", "/v1/things", tokenA, "")
		res.problem(t, 429, "quota_exceeded")
		// The clock is at 12:00 UTC.
		if ra := res.header.Get("Retry-After"); ra != "43200" {
			t.Errorf("Retry-After = %q, want 43200 (until midnight UTC)", ra)
		}
		// Every route of the app shares the quota; another app does not.
		e.do("POST", "/v1/things", tokenA, `{"name":"x"}`).problem(t, 429, "quota_exceeded")
		if res := e.do("GET", "/v1/things", tokenB, ""); res.status != 200 {
			t.Errorf("app_b: %d", res.status)
		}
		e.clock.Advance(12 * time.Hour)
		if res := e.do("GET", "/v1/things", tokenA, ""); res.status != 200 {
			t.Errorf("next UTC day: %d %s", res.status, res.body)
		}
	})
}

func TestLimitsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		var l struct {
			AppID             string  `json:"app_id"`
			RequestsPerSecond float64 `json:"requests_per_second"`
			Burst             int     `json:"burst"`
			DailyQuota        int64   `json:"daily_quota"`
			Default           bool    `json:"default"`
		}
		res := e.admin("GET", "/bank/v1/apps/app_a/limits", "")
		res.json(t, &l)
		if res.status != 200 || !l.Default || l.RequestsPerSecond != 50 || l.Burst != 100 || l.DailyQuota != 100000 {
			t.Errorf("defaults: %d %+v", res.status, l)
		}
		res = e.admin("PUT", "/bank/v1/apps/app_a/limits", `{"requests_per_second":2.5,"burst":10,"daily_quota":500}`)
		res.json(t, &l)
		if res.status != 200 || l.Default || l.AppID != "app_a" || l.RequestsPerSecond != 2.5 || l.Burst != 10 || l.DailyQuota != 500 {
			t.Errorf("put: %d %+v", res.status, l)
		}
		res = e.admin("GET", "/bank/v1/apps/app_a/limits", "")
		res.json(t, &l)
		if l.Default || l.RequestsPerSecond != 2.5 || l.Burst != 10 || l.DailyQuota != 500 {
			t.Errorf("get after put: %+v", l)
		}
		for _, body := range []string{
			`{"requests_per_second":0,"burst":10,"daily_quota":5}`,
			`{"requests_per_second":-1,"burst":10,"daily_quota":5}`,
			`{"requests_per_second":1e9,"burst":10,"daily_quota":5}`,
			`{"requests_per_second":1,"burst":0,"daily_quota":5}`,
			`{"requests_per_second":1,"burst":10,"daily_quota":0}`,
			`{"requests_per_second":1,"burst":10}`,
		} {
			if res := e.admin("PUT", "/bank/v1/apps/app_a/limits", body); res.status != 422 {
				t.Errorf("%s: %d %s", body, res.status, res.body)
			}
		}
		e.admin("PUT", "/bank/v1/apps/app_x/limits", `{"requests_per_second":1,"burst":1,"daily_quota":1}`).problem(t, 404, "app_not_found")
		e.admin("GET", "/bank/v1/apps/app_x/limits", "").problem(t, 404, "app_not_found")
		e.do("PUT", "/bank/v1/apps/app_a/limits", tokenA, `{"requests_per_second":1,"burst":1,"daily_quota":1}`).problem(t, 401, "unauthorized")
	})
}

func TestLimitsSetOnOneNodeReachAnotherWithinTheCacheTTL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		other := e.newNode(t)
		// The other node has read app_a's (default) limits.
		if res := other.do("GET", "/v1/things", tokenA, ""); res.header.Get("RateLimit-Limit") != "100" {
			t.Fatalf("default burst: %q", res.header.Get("RateLimit-Limit"))
		}
		e.admin("PUT", "/bank/v1/apps/app_a/limits", `{"requests_per_second":1,"burst":7,"daily_quota":1000}`)
		if res := e.do("GET", "/v1/things", tokenA, ""); res.header.Get("RateLimit-Limit") != "7" {
			t.Errorf("same node: RateLimit-Limit %q, want 7 at once", res.header.Get("RateLimit-Limit"))
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			res := other.do("GET", "/v1/things", tokenA, "")
			if res.header.Get("RateLimit-Limit") == "7" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the other node still uses burst %q", res.header.Get("RateLimit-Limit"))
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}

func TestMetricsKeepTheRoutePatternBehindTheGateway(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.do("GET", "/v1/things", tokenA, "")
		n, err := testutil.GatherAndCount(e.reg, "causeway_http_requests_total")
		if err != nil || n == 0 {
			t.Fatalf("no request metrics: %v", err)
		}
		families, _ := e.reg.Gather()
		found := false
		for _, f := range families {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "route" && l.GetValue() == "GET /v1/things" {
						found = true
					}
				}
			}
		}
		if !found {
			t.Error(`the access metrics lost the route pattern ("GET /v1/things")`)
		}
	})
}
