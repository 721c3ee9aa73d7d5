package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/client"
	"github.com/causewayhq/causeway/internal/store"
)

// receiver is a webhook endpoint that verifies every delivery and records
// what arrived, keyed by webhook-id.
type receiver struct {
	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	bodies   map[string][32]byte // webhook-id -> body hash (must not change across retries)
	subjects map[string]string   // payment id -> webhook-id of its payment.completed event
	posts    int
	changed  int // duplicates whose body differed from the first delivery
	bad      int // deliveries that failed verification
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if r.verifier == nil || r.verifier.Verify(body, req.Header) != nil || req.Header.Get("Content-Type") != "application/cloudevents+json" {
		r.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	sum := sha256.Sum256(body)
	if prev, ok := r.bodies[id]; ok && prev != sum {
		r.changed++
	}
	r.bodies[id] = sum
	var ev struct{ ID, Type, Subject string }
	json.Unmarshal(body, &ev)
	if ev.ID != id {
		r.bad++
	}
	if ev.Type == "payment.completed" {
		r.subjects[ev.Subject] = id
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) received(paymentID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.subjects[paymentID]
	return ok
}

// TestKilledNodeLosesNoWebhookEvent: 10,000 payments flow through the public
// API while a webhook subscriber receives their events; the server is
// killed with SIGKILL halfway and restarted. Every committed payment's
// event reaches the subscriber at least once, signed, with one stable
// webhook-id and body across duplicates.
func TestKilledNodeLosesNoWebhookEvent(t *testing.T) {
	t.Parallel()
	for _, rt := range killRuntimes {
		t.Run(rt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			args := append(rt.args(t), "--allow-private-targets", "127.0.0.0/8")
			n := startNode(t, args)

			app, _, accounts := newTenant(t, n, "kill", paymentScopes...)

			rec := &receiver{bodies: map[string][32]byte{}, subjects: map[string]string{}}
			hook := httptest.NewServer(rec)
			defer hook.Close()
			secret := createWebhook(t, n.base, app, hook.URL)
			rec.mu.Lock()
			var err error
			rec.verifier, err = standardwebhooks.NewWebhook(secret)
			rec.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}

			const total = 10000
			var sent atomic.Int64
			run := func(base string, upTo int64) {
				c := client.New(base, app.ClientID, app.ClientSecret)
				var wg sync.WaitGroup
				for w := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; ; i += 8 {
							if sent.Load() >= upTo {
								return
							}
							from, to := accounts[i%len(accounts)], accounts[(i+1)%len(accounts)]
							_, err := c.CreatePayment(ctx, client.NewPayment{DebtorAccountID: from,
								Creditor: client.Creditor{AccountID: to}, Amount: client.EUR("0.01")})
							var apiErr *client.Error
							if errors.As(err, &apiErr) && apiErr.Status < 500 {
								t.Errorf("payment refused: %v", err)
								return
							}
							if err != nil {
								return // the node died under us
							}
							sent.Add(1)
						}
					}()
				}
				wg.Wait()
			}
			killed := make(chan struct{})
			go func() {
				defer close(killed)
				deadline := time.Now().Add(5 * time.Minute)
				for sent.Load() < total/2 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				n.cmd.Process.Kill()
			}()
			run(n.base, total)
			n.cmd.Process.Kill() // in case the workers stopped first
			<-killed
			n.cmd.Wait()
			if t.Failed() {
				t.FailNow()
			}

			n = startNode(t, args)
			run(n.base, total)
			if sent.Load() < total {
				t.Fatalf("only %d payments went through", sent.Load())
			}

			// Every completed payment in the database must be delivered.
			db := openNodeDB(t, args)
			var completed []string
			rows, err := db.QueryContext(ctx, `SELECT id FROM core_payments WHERE status = 'completed'`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				rows.Scan(&id)
				completed = append(completed, id)
			}
			rows.Close()
			if len(completed) < total {
				t.Fatalf("%d completed payments in the database, want at least %d", len(completed), total)
			}
			missing := completed
			for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
				var still []string
				for _, id := range missing {
					if !rec.received(id) {
						still = append(still, id)
					}
				}
				if missing = still; len(missing) == 0 {
					break
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(missing) > 0 {
				t.Errorf("%d of %d committed payment events never arrived (e.g. %s)", len(missing), len(completed), missing[0])
			}
			if rec.bad > 0 || rec.changed > 0 {
				t.Errorf("%d deliveries failed verification, %d duplicates changed their body", rec.bad, rec.changed)
			}
			t.Logf("payments %d, posts %d, distinct events %d", len(completed), rec.posts, len(rec.bodies))
		})
	}
}

func createWebhook(t *testing.T, base string, app *client.App, url string) string {
	t.Helper()
	tok := accessToken(t, base, app)
	body := strings.NewReader(`{"url":"` + url + `","event_types":["payment.*"]}`)
	req, _ := http.NewRequest("POST", base+"/v1/webhooks", body)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var wh struct{ ID, Secret string }
	json.NewDecoder(res.Body).Decode(&wh)
	if res.StatusCode != 201 || !strings.HasPrefix(wh.Secret, "whsec_") {
		t.Fatalf("create webhook: %d %+v", res.StatusCode, wh)
	}
	return wh.Secret
}

func accessToken(t *testing.T, base string, app *client.App) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.SetBasicAuth(app.ClientID, app.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	return tok.AccessToken
}

func openNodeDB(t *testing.T, args []string) *store.DB {
	t.Helper()
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i += 2 {
		flags[args[i]] = args[i+1]
	}
	db, err := store.Open(context.Background(), store.Config{URL: flags["--database-url"], DataDir: flags["--data-dir"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// countingHandler wraps a receiver and counts deliveries per webhook-id.
func countingHandler(rec *receiver, counts map[string]int, mu *sync.Mutex) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.Header.Get("webhook-id")]++
		mu.Unlock()
		rec.ServeHTTP(w, r)
	})
}

func getWithToken(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
