package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

const killTestToken = "cwadm_kill-test-token"

// node is one causeway serve process of a kill test.
type node struct {
	cmd  *exec.Cmd
	base string
	logs *testkit.SyncBuffer
}

type killRuntime struct {
	name string
	args func(t *testing.T) []string
}

var killRuntimes = []killRuntime{
	{"embedded", func(t *testing.T) []string { return []string{"--data-dir", t.TempDir()} }},
	{"scaleout", func(t *testing.T) []string {
		return []string{"--data-dir", t.TempDir(), "--database-url", storetest.PostgresURL(t),
			"--nats-url", testkit.NATS.URL(t), "--bus-prefix", bustest.Prefix()}
	}},
}

func startNode(t *testing.T, args []string) *node {
	t.Helper()
	addr := testkit.FreePort(t)
	cmd := exec.Command(binary, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env = cleanEnv(append(throttlesOff(), "CAUSEWAY_ADMIN_TOKEN="+killTestToken)...)
	n := &node{cmd: cmd, base: "http://" + addr, logs: &testkit.SyncBuffer{}}
	cmd.Stderr = n.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := http.Get(n.base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready; logs:\n%s", n.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) call(method, path string, body any, into any) (int, error) {
	var rd bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd.Reset(b)
	}
	req, _ := http.NewRequest(method, n.base+"/bank/v1"+path, &rd)
	req.Header.Set("Authorization", "Bearer "+killTestToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if into != nil {
		json.NewDecoder(res.Body).Decode(into)
	}
	return res.StatusCode, nil
}

// TestKilledNodeLosesNoPaymentAndPublishesEachEventOnce sends a stream of
// payments, kills the server with SIGKILL mid-stream, restarts it, and
// checks: every payment the clients saw completed is there; the ledger
// balances (nothing half-booked); every stored payment has exactly one
// payment event in the outbox; every outbox event is on the bus exactly once.
func TestKilledNodeLosesNoPaymentAndPublishesEachEventOnce(t *testing.T) {
	t.Parallel()
	for _, rt := range killRuntimes {
		t.Run(rt.name, func(t *testing.T) {
			t.Parallel()
			args := rt.args(t)
			n := startNode(t, args)
			var accounts struct {
				Data []struct{ ID string } `json:"data"`
			}
			if _, err := n.call("GET", "/accounts?limit=200", nil, &accounts); err != nil || len(accounts.Data) < 2 {
				t.Fatalf("accounts: %v %d", err, len(accounts.Data))
			}

			var completed sync.Map // payment id -> true, as the clients saw it
			var count atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for i := 0; i < 5000; i++ { // bounded; the kill ends it much sooner
						select {
						case <-stop:
							return
						default:
						}
						from := accounts.Data[rng.IntN(len(accounts.Data))].ID
						to := accounts.Data[rng.IntN(len(accounts.Data))].ID
						if from == to {
							continue
						}
						var p struct{ ID, Status string }
						code, err := n.call("POST", "/payments", map[string]any{
							"debtor_account_id": from, "creditor": map[string]any{"account_id": to},
							"amount": map[string]any{"amount": "0.01", "currency": "EUR"},
						}, &p)
						if err != nil {
							return // the server died under us
						}
						if code == 201 && p.Status == "completed" {
							completed.Store(p.ID, true)
							count.Add(1)
						}
					}
				}()
			}
			deadline := time.Now().Add(60 * time.Second)
			for count.Load() < 150 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			n.cmd.Process.Kill() // SIGKILL, mid-stream
			n.cmd.Wait()
			close(stop)
			wg.Wait()
			if count.Load() < 150 {
				t.Fatalf("only %d payments completed before the deadline; logs:\n%s", count.Load(), n.logs)
			}

			n = startNode(t, args)
			// The dead node's relay lease must expire before the new node
			// publishes; then the backlog drains.
			drained := false
			for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				var st struct {
					Outbox struct{ Pending int } `json:"outbox"`
				}
				if code, err := n.call("GET", "/status", nil, &st); err == nil && code == 200 && st.Outbox.Pending == 0 {
					drained = true
					break
				}
			}
			if !drained {
				t.Fatal("outbox backlog did not drain after restart")
			}
			var ledger struct {
				Balanced bool
				Postings int64
			}
			if _, err := n.call("GET", "/ledger", nil, &ledger); err != nil || !ledger.Balanced {
				t.Errorf("ledger after kill and restart: %+v %v", ledger, err)
			}
			missing := 0
			completed.Range(func(k, _ any) bool {
				var p struct{ Status string }
				if code, _ := n.call("GET", "/payments/"+k.(string), nil, &p); code != 200 || p.Status != "completed" {
					missing++
				}
				return true
			})
			if missing > 0 {
				t.Errorf("%d payments the clients saw completed are missing or changed", missing)
			}
			n.cmd.Process.Signal(interrupt)
			n.cmd.Wait()

			checkEventLog(t, args)
		})
	}
}

// checkEventLog opens the stopped node's database and bus directly.
func checkEventLog(t *testing.T, args []string) {
	t.Helper()
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i += 2 {
		flags[args[i]] = args[i+1]
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: flags["--database-url"], DataDir: flags["--data-dir"]})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var payments, withoutEvent, multiEvent int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN n = 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END), 0)
		FROM (SELECT p.id, (SELECT COUNT(*) FROM outbox_events e WHERE e.subject = p.id AND e.type LIKE 'payment.%') AS n
		      FROM core_payments p) x`).Scan(&payments, &withoutEvent, &multiEvent)
	if err != nil {
		t.Fatal(err)
	}
	if payments < 150 || withoutEvent != 0 || multiEvent != 0 {
		t.Errorf("payments %d: %d without their event, %d with more than one", payments, withoutEvent, multiEvent)
	}
	outboxIDs := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT id FROM outbox_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		outboxIDs[id] = true
	}
	rows.Close()

	b, err := bus.Open(ctx, bus.Config{URL: flags["--nats-url"], DataDir: flags["--data-dir"], Prefix: flagOr(flags, "--bus-prefix", "causeway")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stream, err := b.JetStream().Stream(ctx, b.Stream("events"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for total := uint64(0); total < info.State.Msgs; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			seen[m.Headers().Get("Nats-Msg-Id")]++
			got++
		}
		if got == 0 {
			break
		}
		total += uint64(got)
	}
	dupes, lost := 0, 0
	for _, n := range seen {
		if n > 1 {
			dupes++
		}
	}
	for id := range outboxIDs {
		if seen[id] == 0 {
			lost++
		}
	}
	if dupes != 0 || lost != 0 || len(outboxIDs) == 0 {
		t.Errorf("bus: %d events, %d duplicated, %d outbox events never published (outbox %d)", len(seen), dupes, lost, len(outboxIDs))
	}
	t.Logf("payments %d, outbox events %d, bus messages %d", payments, len(outboxIDs), info.State.Msgs)
}

func flagOr(flags map[string]string, name, def string) string {
	if v, ok := flags[name]; ok {
		return v
	}
	return def
}
