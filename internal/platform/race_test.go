package platform_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// racers is how many callers fire the same request at once.
const racers = 10

// raced is one answer of a race.
type raced struct {
	status int
	code   string // the problem's code, if any
	body   []byte
}

// race sends racers requests at once, released together: request i is
// method url with the bearer token and body(i) (nil: none).
func race(t *testing.T, method, url, token string, body func(i int) any) []raced {
	t.Helper()
	return raceOn(t, method, []string{url}, token, body)
}

// raceOn is race with request i sent to urls[i % len(urls)]: the same
// resource on several nodes.
func raceOn(t *testing.T, method string, urls []string, token string, body func(i int) any) []raced {
	t.Helper()
	out := make([]raced, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range out {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body(i))
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, urls[i%len(urls)], rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if rd != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			var p struct{ Code string }
			json.Unmarshal(b, &p)
			out[i] = raced{status: res.StatusCode, code: p.Code, body: b}
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// oneWinner fails the test unless exactly one answer has status won and
// every other one is 409 with code; it returns the winner's index.
func oneWinner(t *testing.T, answers []raced, won int, code string) int {
	t.Helper()
	winner, n := -1, 0
	for i, a := range answers {
		switch {
		case a.status == won:
			winner = i
			n++
		case a.status != http.StatusConflict || a.code != code:
			t.Errorf("a loser got %d %s, want 409 %s", a.status, a.body, code)
		}
	}
	if n != 1 {
		t.Fatalf("%d of %d requests won, want exactly 1", n, len(answers))
	}
	return winner
}

// in is c reporting to t, for a subtest.
func (c *client) in(t *testing.T) *client {
	cc := *c
	cc.t = t
	return &cc
}

// countRows runs a COUNT(*) on the node's database.
func countRows(t *testing.T, n *platformtest.Node, query string, args ...any) int {
	t.Helper()
	var c int
	if err := n.DB.QueryRowContext(context.Background(), query, args...).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConcurrentTransitionsOverHTTPHaveOneWinner fires the same
// transition ten times at once at one resource of a running node, on both
// runtimes (one node each, shared by the subtests, which start it once):
// exactly one caller wins, every other gets 409 with the transition's
// stable code, and the state and side effects are the winner's alone.
func TestConcurrentTransitionsOverHTTPHaveOneWinner(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		a, _ := developerApp(t, n, doc, "race@solarworld.example")

		t.Run("TwoOperatorsSuspendingAndReinstatingOneApp", func(t *testing.T) {
			dev := &client{t: t, base: n.URL, doc: doc}
			var d struct{ Token string }
			dev.do("POST", "/v1/developers", "/v1/developers", map[string]any{"email": "race-apps@solarworld.example",
				"password": "correct horse battery staple", "organization": "SolarWorld"}).decode(t, &d)
			dev.token = d.Token
			var app struct{ ID, Status string }
			dev.do("POST", "/v1/apps", "/v1/apps", map[string]any{"name": "Racing app", "scopes": []string{"accounts:read"}}).decode(t, &app)

			oneWinner(t, race(t, "POST", n.URL+"/bank/v1/apps/"+app.ID+"/suspend", platformtest.AdminToken, nil), http.StatusOK, "app_already_suspended")
			if dev.do("GET", "/v1/apps/"+app.ID, "/v1/apps/{id}", nil).decode(t, &app); app.Status != "suspended" {
				t.Errorf("status after the suspensions = %s", app.Status)
			}
			oneWinner(t, race(t, "POST", n.URL+"/bank/v1/apps/"+app.ID+"/approve", platformtest.AdminToken, nil), http.StatusOK, "app_already_active")
			if dev.do("GET", "/v1/apps/"+app.ID, "/v1/apps/{id}", nil).decode(t, &app); app.Status != "active" {
				t.Errorf("status after the approvals = %s", app.Status)
			}
			// A loser's answer is a problem the OpenAPI document describes.
			res := dev.do("POST", "/bank/v1/apps/"+app.ID+"/approve", "/bank/v1/apps/{id}/approve", nil, "Authorization", "Bearer "+platformtest.AdminToken)
			if res.status != http.StatusConflict {
				t.Errorf("approving an active app: %d %s", res.status, res.body)
			}
		})

		t.Run("TwoOperatorsActivatingOneSPIRegistration", func(t *testing.T) {
			a := a.in(t)
			var reg struct{ ID, Status string }
			res := a.do("POST", "/v1/spi-registrations", "/v1/spi-registrations", map[string]any{
				"extension_point": "accounts.lookup", "url": "http://127.0.0.1:1/lookup", "scope": "bank"})
			res.decode(t, &reg)
			if res.status != 201 || reg.Status != "pending_activation" {
				t.Fatalf("register: %d %s", res.status, res.body)
			}
			// Each operator gives its own priority: the result shows whose
			// activation was applied.
			winner := oneWinner(t, race(t, "POST", n.URL+"/bank/v1/spi-registrations/"+reg.ID+"/activate", platformtest.AdminToken,
				func(i int) any { return map[string]any{"priority": i} }), http.StatusOK, "registration_already_active")
			var got struct {
				Status   string
				Priority int
			}
			if code := bankCall(t, n, "GET", "/spi-registrations/"+reg.ID, nil, &got); code != 200 || got.Status != "active" || got.Priority != winner {
				t.Errorf("after the race: %d %+v, want active with the winner's priority %d", code, got, winner)
			}
			oneWinner(t, race(t, "POST", n.URL+"/bank/v1/spi-registrations/"+reg.ID+"/deactivate", platformtest.AdminToken, nil),
				http.StatusOK, "registration_not_active")
			if bankCall(t, n, "GET", "/spi-registrations/"+reg.ID, nil, &got); got.Status != "inactive" {
				t.Errorf("status after the deactivations = %s", got.Status)
			}
		})

		t.Run("TwoCallersPausingResumingAndDeletingOneWebhook", func(t *testing.T) {
			a := a.in(t)
			var wh struct{ ID, Status string }
			res := a.do("POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:1/hooks", "event_types": []string{"payment.*"}})
			res.decode(t, &wh)
			if res.status != 201 {
				t.Fatalf("subscribe: %d %s", res.status, res.body)
			}
			oneWinner(t, race(t, "POST", n.URL+"/v1/webhooks/"+wh.ID+"/pause", a.token, nil), http.StatusOK, "webhook_already_paused")
			if a.do("GET", "/v1/webhooks/"+wh.ID, "/v1/webhooks/{id}", nil).decode(t, &wh); wh.Status != "paused" {
				t.Errorf("status after the pauses = %s", wh.Status)
			}
			oneWinner(t, race(t, "POST", n.URL+"/v1/webhooks/"+wh.ID+"/resume", a.token, nil), http.StatusOK, "webhook_already_active")
			if a.do("GET", "/v1/webhooks/"+wh.ID, "/v1/webhooks/{id}", nil).decode(t, &wh); wh.Status != "active" {
				t.Errorf("status after the resumes = %s", wh.Status)
			}
			// Deleting from two places at once: one 204, the others find
			// nothing, as any later deletion would.
			deleted := 0
			for _, ans := range race(t, "DELETE", n.URL+"/v1/webhooks/"+wh.ID, a.token, nil) {
				switch {
				case ans.status == http.StatusNoContent:
					deleted++
				case ans.status != http.StatusNotFound || ans.code != "webhook_not_found":
					t.Errorf("a second deletion got %d %s", ans.status, ans.body)
				}
			}
			if deleted != 1 {
				t.Errorf("%d deletions succeeded, want 1", deleted)
			}
		})

		// An app that sends its funding request twice at once (a retry
		// without an Idempotency-Key) gets the money paid out once.
		t.Run("TwoFundingsOfOneLoan", func(t *testing.T) {
			a := a.in(t)
			var cust struct{ ID string }
			a.do("POST", "/v1/customers", "/v1/customers", map[string]any{
				"type": "person", "name": "Maria Jansen", "date_of_birth": "1980-02-29", "email": "maria@example.com",
				"address":         map[string]any{"line1": "Zonnelaan 7", "city": "Utrecht", "postcode": "3511 AB", "country": "NL"},
				"document_number": "NL1234567", "homeowner": true,
			}).decode(t, &cust)
			var acc struct{ ID string }
			a.do("POST", "/v1/accounts", "/v1/accounts", map[string]any{"customer_id": cust.ID, "product": "current", "currency": "EUR"}).decode(t, &acc)
			var kyc struct{ Result string }
			if a.do("POST", "/v1/kyc-checks", "/v1/kyc-checks", map[string]any{"customer_id": cust.ID}).decode(t, &kyc); kyc.Result != "pass" {
				t.Fatalf("kyc = %+v", kyc)
			}
			var loan struct{ ID, Status string }
			res := a.do("POST", "/v1/loan-applications", "/v1/loan-applications", map[string]any{
				"customer_id": cust.ID, "amount": map[string]any{"amount": "9000.00", "currency": "EUR"}, "term_months": 48,
				"purpose": "solar panels", "monthly_income": map[string]any{"amount": "3800.00", "currency": "EUR"},
			})
			if res.decode(t, &loan); loan.Status != "approved" {
				t.Fatalf("loan = %d %s", res.status, res.body)
			}

			oneWinner(t, race(t, "POST", n.URL+"/v1/loan-applications/"+loan.ID+"/funding", a.token,
				func(int) any { return map[string]any{"account_id": acc.ID} }), http.StatusOK, "loan_already_funded")
			var bal struct {
				Booked struct{ Amount string } `json:"booked"`
			}
			a.do("GET", "/v1/accounts/"+acc.ID+"/balances", "/v1/accounts/{id}/balances", nil).decode(t, &bal)
			if bal.Booked.Amount != "9000.00" {
				t.Errorf("booked balance after the race = %s, want 9000.00 (paid out once)", bal.Booked.Amount)
			}
			if c := countRows(t, n, `SELECT count(*) FROM outbox_events WHERE type = 'loan.funded' AND subject = $1`, loan.ID); c != 1 {
				t.Errorf("%d loan.funded events, want 1", c)
			}
			var txns struct{ Data []struct{ ID string } }
			a.do("GET", "/v1/accounts/"+acc.ID+"/transactions", "/v1/accounts/{id}/transactions", nil).decode(t, &txns)
			if len(txns.Data) != 1 {
				t.Errorf("%d transactions on the account, want 1", len(txns.Data))
			}
		})
	})
}

// TestTwoNodesPausingAndRecoveringOneWebhookAtOnce: on the scale-out
// runtime the callers reach two nodes; the database decides. A recover
// asked of both nodes at once runs once and re-sends each event once.
func TestTwoNodesPausingAndRecoveringOneWebhookAtOnce(t *testing.T) {
	t.Parallel()
	cfg := platformtest.ScaleOut.Config(t)
	cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	// One issuer for both nodes, as behind a load balancer.
	cfg.PublicURL = "http://causeway.nodes.test"
	n1 := platformtest.Start(t, cfg)
	second := cfg
	second.DataDir = testkit.DataDir(t)
	n2 := platformtest.Start(t, second)
	a, _ := developerApp(t, n1, nil, "two-nodes@solarworld.example")

	// The receiver answers first deliveries at once and holds re-sends
	// until every recover request has been answered.
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	var mu sync.Mutex
	seen := map[string]int{} // webhook-id -> requests
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen[r.Header.Get("webhook-id")]++
		resend := seen[r.Header.Get("webhook-id")] > 1
		mu.Unlock()
		if resend {
			<-gate
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	requests := func() (ids, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range seen {
			ids++
			total += n
		}
		return ids, total
	}

	var wh struct{ ID string }
	a.do("POST", "/v1/webhooks", "", map[string]any{"url": receiver.URL, "event_types": []string{"customer.*"}}).decode(t, &wh)
	urls := func(path string) []string { return []string{n1.URL + path, n2.URL + path} }

	pauses := raceOn(t, "POST", urls("/v1/webhooks/"+wh.ID+"/pause"), a.token, nil)
	oneWinner(t, pauses, http.StatusOK, "webhook_already_paused")
	resumes := raceOn(t, "POST", urls("/v1/webhooks/"+wh.ID+"/resume"), a.token, nil)
	oneWinner(t, resumes, http.StatusOK, "webhook_already_active")

	since := time.Now().UTC().Add(-time.Minute)
	res := a.do("POST", "/v1/customers", "", map[string]any{
		"type": "person", "name": "Maria Jansen", "date_of_birth": "1980-02-29", "email": "maria@example.com",
		"address": map[string]any{"line1": "Zonnelaan 7", "city": "Utrecht", "postcode": "3511 AB", "country": "NL"},
	})
	if res.status != 201 {
		t.Fatalf("create customer: %d %s", res.status, res.body)
	}
	testkit.WaitFor(t, "the customer.created delivery", func() bool { ids, _ := requests(); return ids == 1 })

	recovers := raceOn(t, "POST", urls("/v1/webhooks/"+wh.ID+"/recover"), a.token, func(int) any { return map[string]any{"since": since} })
	oneWinner(t, recovers, http.StatusAccepted, "recover_in_progress")
	open()
	testkit.WaitFor(t, "the re-send", func() bool { _, total := requests(); return total == 2 })
	// The recover's claim is released once it ends; then nothing more
	// arrives from it.
	testkit.WaitFor(t, "the recover's claim released", func() bool {
		return countRows(t, n1, `SELECT count(*) FROM webhook_subscriptions WHERE id = $1 AND recover_until = 0`, wh.ID) == 1
	})
	if ids, total := requests(); ids != 1 || total != 2 {
		t.Errorf("the receiver got %d requests for %d events, want 2 for 1 (one delivery, one re-send)", total, ids)
	}
}
