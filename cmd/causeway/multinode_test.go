package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/client"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// TestTwoNodesBehaveAsOnePlatform runs two serve processes on one
// PostgreSQL and one NATS: a token from one node works on the other, an
// app's rate limit and daily quota are one budget for both nodes (not one
// per node), each event reaches a subscription once (not once per node),
// and when one node is killed under load, clients retrying on the other
// with the same Idempotency-Key never pay twice and lose nothing.
func TestTwoNodesBehaveAsOnePlatform(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	natsURL, prefix := testkit.NATS.URL(t), bustest.Prefix()
	// The nodes' streams and buckets go when the test ends.
	nats := bustest.OpenExternalURL(t, natsURL, prefix)
	t.Cleanup(func() { nats.JetStream().DeleteKeyValue(context.Background(), nats.Stream(gateway.BudgetBucket)) })
	shared := []string{"--database-url", storetest.PostgresURL(t), "--nats-url", natsURL,
		"--bus-prefix", prefix, "--secret-key", base64.StdEncoding.EncodeToString(key),
		"--allow-private-targets", "127.0.0.0/8",
		// One issuer for both, as behind a load balancer: each node's own
		// listen address would make it refuse the other's tokens.
		"--public-url", "http://causeway.nodes.test"}
	a := startNode(t, append([]string{"--data-dir", t.TempDir()}, shared...))
	b := startNode(t, append([]string{"--data-dir", t.TempDir()}, shared...))

	dev, err := client.SignUp(ctx, a.base, "nodes@solarworld.example", "a long enough passphrase", "SolarWorld")
	if err != nil {
		t.Fatal(err)
	}
	app, err := dev.CreateApp(ctx, "two nodes", []string{"accounts:read", "payments:write", "events:read", "webhooks:write"})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := a.call("PUT", "/apps/"+app.ID+"/limits", map[string]any{
		"requests_per_second": 100000, "burst": 100000, "daily_quota": 100000000}, nil); err != nil || code != 200 {
		t.Fatalf("raise limits: %d %v", code, err)
	}
	// A token issued by node A is accepted by node B.
	tok := accessToken(t, a.base, app)
	onB := client.New(b.base, app.ClientID, app.ClientSecret)
	if code := getWithToken(t, b.base+"/v1/accounts", tok); code != 200 {
		t.Fatalf("node A's token on node B: %d", code)
	}
	// One budget for both nodes: requests alternate between them, and
	// together they admit the burst (the rate refills one request per
	// 1000 s), or the daily quota, and refuse the rest.
	for _, tt := range []struct {
		name   string
		limits map[string]any
		passes int
		code   string
	}{
		{"burst", map[string]any{"requests_per_second": 0.001, "burst": 6, "daily_quota": 1000}, 6, "rate_limited"},
		{"quota", map[string]any{"requests_per_second": 100000, "burst": 1000000, "daily_quota": 5}, 5, "quota_exceeded"},
	} {
		got := budgetAcrossNodes(t, dev, a, b, tt.name, tt.limits, 20)
		if got["200"] != tt.passes || got["429 "+tt.code] != 20-tt.passes {
			t.Errorf("%s: two nodes answered %v; want %d passed and %d refused with %s",
				tt.name, got, tt.passes, 20-tt.passes, tt.code)
		}
	}

	var accounts []string
	for acc, err := range onB.AllAccounts(ctx, client.AccountFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if acc.Product == "current" {
			accounts = append(accounts, acc.ID)
		}
	}

	rec := &receiver{bodies: map[string][32]byte{}, subjects: map[string]string{}}
	counts := map[string]int{}
	var countMu sync.Mutex
	hook := httptest.NewServer(countingHandler(rec, counts, &countMu))
	defer hook.Close()
	secret := createWebhook(t, a.base, app, hook.URL)
	rec.mu.Lock()
	rec.verifier, _ = standardwebhooks.NewWebhook(secret)
	rec.mu.Unlock()

	// Payments go to both nodes; node A dies halfway; a client whose call
	// fails retries the same key on node B.
	const total = 600
	var next, done atomic.Int64
	var killOnce sync.Once
	var wg sync.WaitGroup
	keys := make([]string, total)
	for i := range keys {
		b := make([]byte, 8)
		rand.Read(b)
		keys[i] = "pay-" + hex.EncodeToString(b)
	}
	clients := []*client.Client{client.New(a.base, app.ClientID, app.ClientSecret), onB}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				if i == total/2 {
					killOnce.Do(func() { a.cmd.Process.Kill() })
				}
				p := client.NewPayment{DebtorAccountID: accounts[i%len(accounts)], Creditor: client.Creditor{AccountID: accounts[(i+1)%len(accounts)]},
					Amount: client.EUR("0.01")}
				var err error
				// A key claimed by the dead node stays "in progress" until
				// the gateway deems the claim abandoned (30 s): keep retrying
				// with the same key, as a client following Retry-After would.
				deadline := time.Now().Add(90 * time.Second)
				for attempt := 0; time.Now().Before(deadline); attempt++ {
					c := clients[(i+attempt+w)%2]
					if attempt > 0 {
						c = onB // after a failure, the surviving node
					}
					_, err = c.CreatePayment(ctx, p, client.WithIdempotencyKey(keys[i]))
					var apiErr *client.Error
					if err == nil || (errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != 409) {
						break
					}
					wait := 200 * time.Millisecond
					if apiErr != nil && apiErr.RetryAfter > 0 {
						wait = apiErr.RetryAfter
					}
					time.Sleep(wait)
				}
				if err != nil {
					t.Errorf("payment %d: %v", i, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	a.cmd.Wait()
	if done.Load() != total {
		t.Fatalf("%d of %d payments succeeded", done.Load(), total)
	}

	db := openNodeDB(t, shared)
	var payments, distinctKeys int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM core_payments WHERE app_id = $1`, app.ID).
		Scan(&payments, &distinctKeys); err != nil {
		t.Fatal(err)
	}
	if payments != total || distinctKeys != total {
		t.Errorf("%d payments for %d keys (%d distinct stored): a retry paid twice or a payment was lost", payments, total, distinctKeys)
	}
	var ledger struct{ Balanced bool }
	if _, err := b.call("GET", "/ledger", nil, &ledger); err != nil || !ledger.Balanced {
		t.Errorf("ledger: %+v %v", ledger, err)
	}

	// Every payment event arrives; in normal operation once, not once per
	// node (duplicates can only come from the kill).
	var completed []string
	rows, _ := db.QueryContext(ctx, `SELECT id FROM core_payments WHERE app_id = $1 AND status = 'completed'`, app.ID)
	for rows.Next() {
		var id string
		rows.Scan(&id)
		completed = append(completed, id)
	}
	rows.Close()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		all := true
		for _, id := range completed {
			if !rec.received(id) {
				all = false
				break
			}
		}
		if all {
			break
		}
	}
	countMu.Lock()
	defer countMu.Unlock()
	missing, dupes := 0, 0
	for _, id := range completed {
		if !rec.received(id) {
			missing++
		}
	}
	for _, n := range counts {
		if n > 1 {
			dupes++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d payment events never arrived", missing, len(completed))
	}
	// A kill can cause a few redeliveries of in-flight events; twice per
	// node for every event would be a dispatcher running per node.
	if dupes > len(completed)/10 {
		t.Errorf("%d of %d events arrived more than once: delivery is not once per subscription", dupes, len(counts))
	}
	t.Logf("payments %d, events %d, duplicates %d", payments, len(counts), dupes)
}

// budgetAcrossNodes creates an app with accounts:read and limits, then
// sends requests GET /v1/accounts alternately to nodes a and b, and counts
// the answers: "200", or status and problem code ("429 rate_limited").
// Every refusal must carry Retry-After.
func budgetAcrossNodes(t *testing.T, dev *client.Developer, a, b *node, name string, limits map[string]any, requests int) map[string]int {
	t.Helper()
	app, err := dev.CreateApp(context.Background(), "budget "+name, []string{"accounts:read"})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := a.call("PUT", "/apps/"+app.ID+"/limits", limits, nil); err != nil || code != 200 {
		t.Fatalf("%s: put limits: %d %v", name, code, err)
	}
	tok := accessToken(t, a.base, app)
	got := map[string]int{}
	for i := range requests {
		req, _ := http.NewRequest("GET", []*node{a, b}[i%2].base+"/v1/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var problem struct{ Code string }
		json.NewDecoder(res.Body).Decode(&problem)
		res.Body.Close()
		k := strconv.Itoa(res.StatusCode)
		if res.StatusCode != 200 {
			k += " " + problem.Code
			if res.Header.Get("Retry-After") == "" {
				t.Errorf("%s: %s without Retry-After", name, k)
			}
		}
		got[k]++
	}
	return got
}
