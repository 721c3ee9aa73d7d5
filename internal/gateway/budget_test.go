package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// outcomes counts answers by status and, for problems, code: "200",
// "429 rate_limited", ...
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(k string) {
	o.mu.Lock()
	o.n[k]++
	o.mu.Unlock()
}

// hammer sends perWorker GET /v1/things with token from workers goroutines
// per node, all at once, and counts the answers. Every answer must carry
// RateLimit-Limit limit.
func hammer(t *testing.T, nodes []*node, token string, workers, perWorker int, limit string) map[string]int {
	t.Helper()
	o := &outcomes{n: map[string]int{}}
	client := &http.Client{Timeout: 20 * time.Second}
	errs := make(chan error, len(nodes)*workers)
	var wg sync.WaitGroup
	for _, n := range nodes {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWorker {
					req, _ := http.NewRequest("GET", n.srv.URL+"/v1/things", nil)
					req.Header.Set("Authorization", "Bearer "+token)
					res, err := client.Do(req)
					if err != nil {
						errs <- err
						return
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if got := res.Header.Get("RateLimit-Limit"); got != limit {
						errs <- fmt.Errorf("RateLimit-Limit %q, want %s", got, limit)
						return
					}
					key := strconv.Itoa(res.StatusCode)
					if res.StatusCode != 200 {
						var p struct{ Code string }
						json.Unmarshal(body, &p)
						key += " " + p.Code
						if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 {
							errs <- fmt.Errorf("%s with Retry-After %q", key, res.Header.Get("Retry-After"))
							return
						}
					}
					o.add(key)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return o.n
}

func TestTwoNodesTogetherAdmitAtMostOneBurst(t *testing.T) {
	eachRuntime(t, func(t *testing.T, db *store.DB, b *bus.Bus) {
		e := newEnvOn(t, db, b, nil)
		nodes := []*node{e.node, e.newNode(t)}
		// The test clock stands still, so no token ever comes back: across
		// both nodes exactly the burst passes. At 0.001/s every admission
		// is its own update of the shared budget; at 1000/s the nodes take
		// leases, and may keep what the last ones hold unspent.
		for _, tt := range []struct {
			name, token string
			rps         float64
			burst       int
			slack       int // admissions the nodes may still hold in leases
		}{
			{"one admission per update", tokenA, 0.001, 12, 0},
			{"leases", tokenB, 1000, 80, 2 * 80 / 16},
		} {
			t.Run(tt.name, func(t *testing.T) {
				app := map[string]string{tokenA: "app_a", tokenB: "app_b"}[tt.token]
				body := fmt.Sprintf(`{"requests_per_second":%v,"burst":%d,"daily_quota":100000}`, tt.rps, tt.burst)
				if res := e.admin("PUT", "/bank/v1/apps/"+app+"/limits", body); res.status != 200 {
					t.Fatalf("put limits: %d %s", res.status, res.body)
				}
				got := hammer(t, nodes, tt.token, 3, tt.burst, strconv.Itoa(tt.burst))
				if ok := got["200"]; ok > tt.burst || ok < tt.burst-tt.slack {
					t.Errorf("two nodes admitted %d with a burst of %d: %v", ok, tt.burst, got)
				}
				if got["200"]+got["429 rate_limited"] != 2*3*tt.burst {
					t.Errorf("answers other than 200 and 429 rate_limited: %v", got)
				}
			})
		}
	})
}

func TestTwoNodesTogetherSpendOneDailyQuota(t *testing.T) {
	eachRuntime(t, func(t *testing.T, db *store.DB, b *bus.Bus) {
		e := newEnvOn(t, db, b, nil)
		nodes := []*node{e.node, e.newNode(t)}
		for _, tt := range []struct {
			name, token string
			quota       int
			slack       int
		}{
			{"one admission per update", tokenA, 9, 0},
			{"leases", tokenB, 200, 2 * 200 / 16},
		} {
			t.Run(tt.name, func(t *testing.T) {
				app := map[string]string{tokenA: "app_a", tokenB: "app_b"}[tt.token]
				body := fmt.Sprintf(`{"requests_per_second":100000,"burst":1000000,"daily_quota":%d}`, tt.quota)
				if res := e.admin("PUT", "/bank/v1/apps/"+app+"/limits", body); res.status != 200 {
					t.Fatalf("put limits: %d %s", res.status, res.body)
				}
				// The headers describe the quota once it is the closer limit:
				// every answer here, since it is below the burst.
				got := hammer(t, nodes, tt.token, 3, tt.quota, strconv.Itoa(tt.quota))
				if ok := got["200"]; ok > tt.quota || ok < tt.quota-tt.slack {
					t.Errorf("two nodes admitted %d with a daily quota of %d: %v", ok, tt.quota, got)
				}
				if got["200"]+got["429 quota_exceeded"] != 2*3*tt.quota {
					t.Errorf("answers other than 200 and 429 quota_exceeded: %v", got)
				}
			})
		}
		// A new UTC day brings the quota back, on both nodes.
		e.clock.Advance(24 * time.Hour)
		for i, n := range nodes {
			if res := n.do("GET", "/v1/things", tokenA, ""); res.status != 200 {
				t.Errorf("node %d on the next day: %d %s", i, res.status, res.body)
			}
		}
	})
}

// TestRateLimitFailsOpenWhenTheSharedBudgetsCannotBeReached cuts one
// node's connection to NATS: it keeps answering from its own bucket (no
// 5xx), and once NATS is back it adds what it admitted meanwhile to the
// shared day's count, which the other node then sees.
func TestRateLimitFailsOpenWhenTheSharedBudgetsCannotBeReached(t *testing.T) {
	for _, rt := range []struct {
		name string
		open func(t *testing.T) (*store.DB, string)
	}{
		{"embedded", func(t *testing.T) (*store.DB, string) {
			// An embedded NATS that listens, so the node can reach it
			// through a proxy.
			addr := testkit.FreePort(t)
			srv, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), ListenAddr: addr})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			return storetest.OpenSQLite(t), "nats://" + addr
		}},
		{"scaleout", func(t *testing.T) (*store.DB, string) {
			return storetest.OpenPostgres(t), testkit.NATS.URL(t)
		}},
	} {
		t.Run(rt.name, func(t *testing.T) {
			db, natsURL := rt.open(t)
			proxy := testkit.NewProxy(t, testkit.HostPort(t, natsURL))
			prefix := bustest.Prefix()
			direct := bustest.OpenExternalURL(t, natsURL, prefix)
			t.Cleanup(func() {
				direct.JetStream().DeleteKeyValue(context.Background(), direct.Stream(gateway.BudgetBucket))
			})
			e := newEnvOn(t, db, bustest.OpenExternalURL(t, "nats://"+proxy.Addr(), prefix), nil)
			cut, other := e.node, e.newNodeOn(t, direct)

			if res := e.admin("PUT", "/bank/v1/apps/app_a/limits", `{"requests_per_second":0.001,"burst":10,"daily_quota":4}`); res.status != 200 {
				t.Fatalf("put limits: %d %s", res.status, res.body)
			}
			if res := e.admin("PUT", "/bank/v1/apps/app_b/limits", `{"requests_per_second":0.001,"burst":1000,"daily_quota":100000}`); res.status != 200 {
				t.Fatalf("put limits: %d %s", res.status, res.body)
			}
			for i := range 2 {
				if res := cut.do("GET", "/v1/things", tokenA, ""); res.status != 200 {
					t.Fatalf("request %d: %d %s", i, res.status, res.body)
				}
			}
			const fallbacks = "causeway_gateway_budget_fallbacks_total"
			if n := counter(t, cut, fallbacks); n != 0 {
				t.Fatalf("%s = %v with NATS up", fallbacks, n)
			}

			proxy.Cut()
			for i := range 2 {
				if res := cut.do("GET", "/v1/things", tokenA, ""); res.status != 200 {
					t.Fatalf("request %d without NATS: %d %s", i, res.status, res.body)
				}
			}
			// The node's own count: 2 before the cut, 2 during it.
			cut.do("GET", "/v1/things", tokenA, "").problem(t, 429, "quota_exceeded")
			if n := counter(t, cut, fallbacks); n != 3 {
				t.Errorf("%s = %v, want 3", fallbacks, n)
			}

			// Once NATS answers again (the node retries after a few seconds),
			// its requests are decided on the shared budget again.
			proxy.Restore()
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; ; i++ {
				before := counter(t, cut, fallbacks)
				if res := cut.do("GET", "/v1/things", tokenB, ""); res.status != 200 {
					t.Fatalf("app_b: %d %s", res.status, res.body)
				}
				if counter(t, cut, fallbacks) == before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still on the node's own bucket after %d requests", i+1)
				}
				time.Sleep(200 * time.Millisecond)
			}
			// The two admitted during the cut count: the quota of 4 is spent
			// for the other node too.
			cut.do("GET", "/v1/things", tokenA, "").problem(t, 429, "quota_exceeded")
			other.do("GET", "/v1/things", tokenA, "").problem(t, 429, "quota_exceeded")
		})
	}
}
