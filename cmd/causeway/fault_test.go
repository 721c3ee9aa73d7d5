package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/client"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// faultClientTimeout is the timeout of the load clients of the fault
// tests: whatever a dependency does, no answer may take longer (a request
// takes milliseconds; a lost dependency must fail it fast, not hang it).
const faultClientTimeout = 10 * time.Second

// faultKeyDeadline bounds how long one payment is retried under its key.
// It outlasts the gateway's stale-claim window (30 s), the longest a key
// can stay "in progress" after its request lost the database.
const faultKeyDeadline = 40 * time.Second

// faultMaxInProgress bounds how often a retry may be refused with 409
// idempotency_in_progress (Retry-After: 1) under one key. The gateway
// releases a claim whose request lost the database once the database is
// back, within seconds; a claim left to go stale would refuse retries for
// 30 s.
const faultMaxInProgress = 15

// TestFaultDependencyCutUnderLoadAnswers503AndLosesNothing runs a
// scale-out node whose PostgreSQL and NATS connections pass through
// proxies, and cuts each in turn while clients make payments with
// Idempotency-Keys and read balances and the event feed. Every failed
// answer is a 503 problem (or, on a retry, 409 idempotency_in_progress), or
// a connection error the client retries under the same key; never a 500 or
// an answer slower than the client's timeout. After the restore payments
// succeed again, and nothing a client saw committed is lost: every 2xx
// payment is stored once, the accounts' transactions and balances agree
// with the payments, and each payment's event reaches the webhook.
func TestFaultDependencyCutUnderLoadAnswers503AndLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pgURL := storetest.PostgresURL(t)
	natsURL := testkit.NATS.URL(t)
	prefix := bustest.Prefix()
	bustest.OpenExternalURL(t, natsURL, prefix) // deletes the node's streams when the test ends
	pgProxy := testkit.NewProxy(t, testkit.HostPort(t, pgURL))
	natsProxy := testkit.NewProxy(t, testkit.HostPort(t, natsURL))
	proxied, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	proxied.Host = pgProxy.Addr()
	n := startNode(t, []string{"--data-dir", t.TempDir(), "--database-url", proxied.String(),
		"--nats-url", "nats://" + natsProxy.Addr(), "--bus-prefix", prefix, "--allow-private-targets", "127.0.0.0/8"})
	db := openNodeDB(t, []string{"--database-url", pgURL}) // the direct path, for the checks

	app, api, accounts := newTenant(t, n, "fault", paymentScopes...)
	rec := &receiver{bodies: map[string][32]byte{}, subjects: map[string]string{}}
	hook := httptest.NewServer(rec)
	defer hook.Close()
	verifier, err := standardwebhooks.NewWebhook(createWebhook(t, n.base, app, hook.URL))
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	rec.verifier = verifier
	rec.mu.Unlock()

	before := map[string]int64{}
	for _, acc := range accounts {
		b, err := api.Balances(ctx, acc)
		if err != nil {
			t.Fatal(err)
		}
		before[acc] = faultMinor(t, b.Booked)
	}
	start := time.Now() // transactions booked from here on are the test's
	load := &faultLoad{base: n.base, token: accessToken(t, n.base, app), accounts: accounts,
		hc: &http.Client{Timeout: faultClientTimeout}, paid: map[string]faultPaid{}, kinds: map[string]int{}}

	for _, tt := range []struct {
		name  string
		proxy *testkit.Proxy
		// gapSeen reports whether the load has met the outage: held cut
		// until then (bounded), so that the gap is not empty.
		gapSeen func(failures, readerFailures int64) bool
		// quiet makes the cut while no delivery is on its way: see below.
		quiet bool
	}{
		// Payments need the database: they fail during the gap.
		{"postgres", pgProxy, func(f, _ int64) bool { return f >= 8 }, false},
		// Payments only write the outbox; the event feed reads the bus.
		{"nats", natsProxy, func(_, r int64) bool { return r >= 3 }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			halt := load.start()
			defer func() { halt() }()

			faultWaitCount(t, "payments before the cut", &load.ok, load.ok.Load()+20, 20*time.Second)
			if tt.quiet {
				// An event JetStream sends to the dispatcher at the very
				// instant the connection drops is lost on the way and sent
				// again only when the consumer's AckWait (a minute) has
				// passed, longer than this test waits. So the clients pause
				// while the cut is made, and pay through the gap and after.
				halt()
				if missing := load.undelivered(rec, 30*time.Second); len(missing) > 0 {
					t.Fatalf("%d payment events not delivered before the cut", len(missing))
				}
			}
			failures, readerFailures := load.failures.Load(), load.readerFailures.Load()
			tt.proxy.Cut()
			cut := time.Now()
			if tt.quiet {
				halt = load.start()
			}
			testkit.WaitStatus(t, n.base+"/readyz", 503)
			for end := cut.Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if tt.gapSeen(load.failures.Load()-failures, load.readerFailures.Load()-readerFailures) && time.Since(cut) > time.Second {
					break
				}
			}
			gapFailures, gapReaderFailures := load.failures.Load()-failures, load.readerFailures.Load()-readerFailures
			tt.proxy.Restore()
			testkit.WaitStatus(t, n.base+"/readyz", 200)
			// New payments succeed again (older keys may still be retrying).
			faultWaitCount(t, "payments after the restore", &load.ok, load.ok.Load()+20, 30*time.Second)
			halt()
			if !tt.gapSeen(gapFailures, gapReaderFailures) {
				t.Errorf("the load met no outage while %s was cut: %d payment and %d read failures", tt.name, gapFailures, gapReaderFailures)
			}
			load.check(ctx, t, n, db, api, rec, start, before)
		})
	}
}

// faultPaid is a payment as the client that made it saw it.
type faultPaid struct {
	id, status, debtor, creditor string
}

// faultLoad is the load of TestFaultDependencyCutUnderLoadAnswers503AndLosesNothing:
// clients that call with raw HTTP, not the SDK, to see every answer (the
// SDK retries a 503 once by itself).
type faultLoad struct {
	base, token string
	accounts    []string
	hc          *http.Client

	next           atomic.Int64 // payment sequence
	ok             atomic.Int64 // payments answered 2xx
	failures       atomic.Int64 // payment attempts that failed in a retryable way
	readerFailures atomic.Int64 // reads answered 503

	mu     sync.Mutex
	paid   map[string]faultPaid // by idempotency key
	kinds  map[string]int       // retryable failures by kind, e.g. "503 database_unavailable"
	broken []string             // answers that break the contract
}

// start runs four clients paying and one reading until the returned halt
// is called; halt waits for them and may be called more than once.
func (l *faultLoad) start() (halt func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); l.pay(w, stop) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); l.read(stop) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
		})
	}
}

// undelivered waits (at most within) until the webhook has received the
// event of every completed payment, and returns the ids of those it has
// not.
func (l *faultLoad) undelivered(rec *receiver, within time.Duration) []string {
	l.mu.Lock()
	var ids []string
	for _, p := range l.paid {
		if p.status == "completed" {
			ids = append(ids, p.id)
		}
	}
	l.mu.Unlock()
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		var missing []string
		for _, id := range ids {
			if !rec.received(id) {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
	}
}

// pay makes payments until stop is closed (at most 5,000), each under a
// new Idempotency-Key retried until it gets a 2xx.
func (l *faultLoad) pay(worker int, stop <-chan struct{}) {
	for range 5000 {
		select {
		case <-stop:
			return
		default:
		}
		i := int(l.next.Add(1))
		key := fmt.Sprintf("fault-%d-%d", worker, i)
		from, to := l.accounts[i%len(l.accounts)], l.accounts[(i+1)%len(l.accounts)]
		// The reference becomes the transactions' description, which ties
		// them to the key in the check.
		body, _ := json.Marshal(client.NewPayment{DebtorAccountID: from, Creditor: client.Creditor{AccountID: to},
			Amount: client.EUR("0.01"), Reference: key})
		l.payKey(key, body)
	}
}

func (l *faultLoad) payKey(key string, body []byte) {
	inProgress := 0
	for deadline := time.Now().Add(faultKeyDeadline); time.Now().Before(deadline); {
		a := faultExchange(l.hc, "POST", l.base+"/v1/payments", l.token, key, body)
		if a.status == http.StatusCreated {
			var p struct {
				ID, Status      string
				DebtorAccountID string `json:"debtor_account_id"`
				Creditor        struct {
					AccountID string `json:"account_id"`
				}
			}
			if err := json.Unmarshal(a.body, &p); err != nil || p.ID == "" {
				l.breach("payment %s: 201 with body %q", key, a.body)
				return
			}
			l.mu.Lock()
			l.paid[key] = faultPaid{id: p.ID, status: p.Status, debtor: p.DebtorAccountID, creditor: p.Creditor.AccountID}
			l.mu.Unlock()
			l.ok.Add(1)
			if inProgress > faultMaxInProgress {
				l.breach("payment %s: refused %d times as in progress: its claim was not released when the database came back", key, inProgress)
			}
			return
		}
		kind, retry := a.retryable(true)
		if !retry {
			l.breach("payment %s: %s", key, a)
			return
		}
		if a.status == http.StatusConflict {
			inProgress++
		}
		l.failures.Add(1)
		l.mu.Lock()
		l.kinds[kind]++
		l.mu.Unlock()
		wait := 100 * time.Millisecond
		if a.retryAfter > 0 {
			wait = a.retryAfter
		}
		time.Sleep(wait)
	}
	l.breach("payment %s: no 2xx within %s of retries under the same key", key, faultKeyDeadline)
}

// read alternates a database read (a balance) and a bus read (the event
// feed) until stop is closed (at most 5,000 reads): each is 200 or a 503
// problem.
func (l *faultLoad) read(stop <-chan struct{}) {
	for i := range 5000 {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		path := "/v1/events?limit=10"
		if i%2 == 1 {
			path = "/v1/accounts/" + l.accounts[0] + "/balances"
		}
		a := faultExchange(l.hc, "GET", l.base+path, l.token, "", nil)
		if a.status == http.StatusOK {
			continue
		}
		kind, retry := a.retryable(false)
		if !retry {
			l.breach("GET %s: %s", path, a)
			continue
		}
		l.readerFailures.Add(1)
		l.mu.Lock()
		l.kinds["read "+kind]++
		l.mu.Unlock()
	}
}

func (l *faultLoad) breach(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.broken = append(l.broken, fmt.Sprintf(format, args...))
}

// check proves, for every payment made so far on the node, that nothing a
// client saw committed was lost and nothing was paid twice.
func (l *faultLoad) check(ctx context.Context, t *testing.T, n *node, db *store.DB, api *client.Client, rec *receiver, start time.Time, before map[string]int64) {
	t.Helper()
	l.mu.Lock()
	broken, paid, kinds := l.broken, maps.Clone(l.paid), l.kinds
	l.broken, l.kinds = nil, map[string]int{}
	l.mu.Unlock()
	for i, b := range broken {
		if i == 10 {
			t.Errorf("... and %d more answers that break the contract", len(broken)-10)
			break
		}
		t.Error(b)
	}

	// Each key is stored once, as the payment its client was answered with.
	stored := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT COALESCE(idempotency_key, ''), id FROM core_payments`)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for rows.Next() {
		var key, id string
		if err := rows.Scan(&key, &id); err != nil {
			t.Fatal(err)
		}
		stored[key] = id
		count++
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if count != len(paid) {
		t.Errorf("%d payments stored for %d keys answered 2xx: a retry paid twice or a key never got its answer", count, len(paid))
	}
	debits, credits := map[string]map[string]bool{}, map[string]map[string]bool{} // account -> keys
	for key, p := range paid {
		if stored[key] != p.id {
			t.Errorf("payment %s (key %s) answered 2xx but stored as %q", p.id, key, stored[key])
		}
		got, err := api.Payment(ctx, p.id)
		if err != nil || got.Status != p.status {
			t.Errorf("GET payment %s: %+v %v, want status %s", p.id, got, err, p.status)
		}
		if p.status == "completed" {
			if debits[p.debtor] == nil {
				debits[p.debtor] = map[string]bool{}
			}
			if credits[p.creditor] == nil {
				credits[p.creditor] = map[string]bool{}
			}
			debits[p.debtor][key], credits[p.creditor][key] = true, true
		}
	}

	// The accounts' transactions are exactly the completed payments', and
	// their balances moved by as much.
	for acc, was := range before {
		want := map[string]string{}
		for key := range debits[acc] {
			want[key] = "debit"
		}
		for key := range credits[acc] {
			want[key] = "credit"
		}
		for txn, err := range api.AllTransactions(ctx, acc, client.TransactionFilter{From: start}) {
			if err != nil {
				t.Fatal(err)
			}
			if dir, ok := want[txn.Description]; !ok || dir != txn.Direction {
				t.Errorf("account %s: transaction %s %s %q is no committed payment's", acc, txn.ID, txn.Direction, txn.Description)
			}
			delete(want, txn.Description)
		}
		if len(want) > 0 {
			t.Errorf("account %s: %d committed payments have no transaction", acc, len(want))
		}
		b, err := api.Balances(ctx, acc)
		if err != nil {
			t.Fatal(err)
		}
		if got, exp := faultMinor(t, b.Booked), was+int64(len(credits[acc])-len(debits[acc])); got != exp {
			t.Errorf("account %s: booked balance %d minor units, want %d", acc, got, exp)
		}
	}
	var ledger struct{ Balanced bool }
	if code, err := n.call("GET", "/ledger", nil, &ledger); err != nil || code != 200 || !ledger.Balanced {
		t.Errorf("ledger: %d %+v %v", code, ledger, err)
	}

	// Each completed payment's event reaches the webhook (the relay
	// catches up on what it could not publish during the gap).
	if missing := l.undelivered(rec, 45*time.Second); len(missing) > 0 {
		t.Errorf("%d committed payments' events never reached the webhook (e.g. %s)", len(missing), missing[0])
	}
	rec.mu.Lock()
	if rec.bad > 0 || rec.changed > 0 {
		t.Errorf("%d deliveries failed verification, %d duplicates changed their body", rec.bad, rec.changed)
	}
	rec.mu.Unlock()
	t.Logf("payments so far %d; failures retried during this cut %v", len(paid), kinds)
}

// faultAnswer is one HTTP exchange as a load client saw it.
type faultAnswer struct {
	status     int
	ctype      string
	body       []byte
	retryAfter time.Duration
	took       time.Duration
	err        error // the network failed or the client timed out
}

func (a faultAnswer) String() string {
	if a.err != nil {
		return fmt.Sprintf("error after %s: %v", a.took.Round(time.Millisecond), a.err)
	}
	body := a.body
	if len(body) > 300 {
		body = body[:300]
	}
	return fmt.Sprintf("%d %s after %s: %s", a.status, a.ctype, a.took.Round(time.Millisecond), body)
}

// retryable tells a failure a client may retry from one that breaks the
// contract. Retryable are: a connection error; a 503 problem; and, when the
// request carries an Idempotency-Key (keyed), the 409 problem
// idempotency_in_progress. A 500, any other answer, and a request that
// hangs until the client's timeout break it. kind names the failure.
func (a faultAnswer) retryable(keyed bool) (kind string, ok bool) {
	if a.err != nil {
		var ne net.Error
		if errors.As(a.err, &ne) && ne.Timeout() {
			return "", false
		}
		return "connection error", true
	}
	mt, _, _ := mime.ParseMediaType(a.ctype)
	var p struct {
		Status int
		Code   string
	}
	if mt != "application/problem+json" || json.Unmarshal(a.body, &p) != nil || p.Status != a.status || p.Code == "" {
		return "", false
	}
	switch {
	case a.status == http.StatusServiceUnavailable:
		return "503 " + p.Code, true
	case a.status == http.StatusConflict && keyed && p.Code == "idempotency_in_progress":
		return "409 " + p.Code, true
	}
	return "", false
}

// faultExchange sends one request with an app access token and, when key
// is not empty, an Idempotency-Key.
func faultExchange(hc *http.Client, method, url, token, key string, body []byte) faultAnswer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return faultAnswer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	began := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		return faultAnswer{err: err, took: time.Since(began)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return faultAnswer{err: err, took: time.Since(began)}
	}
	a := faultAnswer{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), body: b, took: time.Since(began)}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		a.retryAfter = time.Duration(s) * time.Second
	}
	return a
}

func faultMinor(t *testing.T, m client.Money) int64 {
	t.Helper()
	v, err := m.MinorUnits()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// faultWaitCount waits (at most within) until counter reaches want.
func faultWaitCount(t *testing.T, what string, counter *atomic.Int64, want int64, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); counter.Load() < want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d within %s", what, counter.Load(), want, within)
		}
	}
}

// TestFaultMisbehavingEndpointsOfOneTenantSpareAnother: the fraud-check
// SPIs and webhooks of tenants A and C hang, reset the connection or
// answer one byte at a time; the bank made A's SPI fail closed (on_failure
// reject), C's keeps the default stand_in. Meanwhile tenant B, with a
// healthy SPI and webhook, pays. Every one of B's payments completes on
// B's own fraud answer and B's webhook receives each of their events; every
// payment of A is rejected and every payment of C completes on the
// stand-in, each answered within the client's timeout. Outcomes and counts
// only: no latency is asserted.
func TestFaultMisbehavingEndpointsOfOneTenantSpareAnother(t *testing.T) {
	t.Parallel()
	natsURL := testkit.NATS.URL(t)
	prefix := bustest.Prefix()
	bustest.OpenExternalURL(t, natsURL, prefix) // deletes the node's streams when the test ends
	n := startNode(t, []string{"--data-dir", t.TempDir(), "--database-url", storetest.PostgresURL(t),
		"--nats-url", natsURL, "--bus-prefix", prefix, "--allow-private-targets", "127.0.0.0/8"})

	bad := newFaultyEndpoint(t)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"decision":"approve","score":3,"reason":"healthy tenant"}`)
	}))
	defer good.Close()
	rec := &receiver{bodies: map[string][32]byte{}, subjects: map[string]string{}}
	hook := httptest.NewServer(rec)
	defer hook.Close()

	type tenant struct {
		name     string
		accounts []string // seeded current accounts
		token    string
		spi      string // registration id
		check    func(p *client.Payment) string
		made     atomic.Int64 // payments answered as expected
	}
	setup := func(name, spiURL, hookURL string, timeoutMS int, onFailure string) *tenant {
		app, _, accounts := newTenant(t, n, name, append(paymentScopes, "spi:write")...)
		tn := &tenant{name: name, accounts: accounts, token: accessToken(t, n.base, app)}
		body, _ := json.Marshal(map[string]any{"extension_point": "payments.fraud-check", "url": spiURL,
			"scope": "app", "timeout_ms": timeoutMS})
		a := faultExchange(http.DefaultClient, "POST", n.base+"/v1/spi-registrations", tn.token, "", body)
		var reg struct{ ID, Status string }
		if json.Unmarshal(a.body, &reg); a.status != 201 || reg.Status != "active" {
			t.Fatalf("%s: register SPI: %s", name, a)
		}
		tn.spi = reg.ID
		if onFailure != "" {
			// The bank sets the policy of the app's own registration.
			var act struct{ Status, OnFailure string }
			act.OnFailure = "unset"
			code, err := n.call("PATCH", "/spi-registrations/"+reg.ID, map[string]any{
				"timeout_ms": timeoutMS, "on_failure": onFailure}, &act)
			if err != nil || code != 200 || act.Status != "active" {
				t.Fatalf("%s: configure SPI: %d %+v %v", name, code, act, err)
			}
		}
		secret := createWebhook(t, n.base, app, hookURL)
		if hookURL == hook.URL {
			v, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			rec.verifier = v
			rec.mu.Unlock()
		}
		return tn
	}
	b := setup("healthy", good.URL, hook.URL, 5000, "reject")
	b.check = func(p *client.Payment) string {
		if p.Status != "completed" || p.FraudCheck == nil || p.FraudCheck.Provider != b.spi || p.FraudCheck.StandIn {
			return "want completed on its own fraud answer"
		}
		return ""
	}
	a := setup("failclosed", bad.URL+"/spi", bad.URL+"/hook", 500, "reject")
	a.check = func(p *client.Payment) string {
		if p.Status != "rejected" || p.Rejection == nil || p.Rejection.Code != "fraud_denied" || p.FraudCheck == nil || p.FraudCheck.Provider != a.spi {
			return "want rejected fraud_denied by the reject policy"
		}
		return ""
	}
	c := setup("standin", bad.URL+"/spi", bad.URL+"/hook", 500, "")
	c.check = func(p *client.Payment) string {
		if p.Status != "completed" || p.FraudCheck == nil || p.FraudCheck.Provider != c.spi || !p.FraudCheck.StandIn {
			return "want completed on the stand-in"
		}
		return ""
	}

	// All three pay side by side until each misbehaving tenant has made
	// enough payments to open its SPI's breaker and then some (bounded in
	// count and time).
	const healthyMin, misbehavingMin = 40, 15
	hc := &http.Client{Timeout: faultClientTimeout}
	var mu sync.Mutex
	paid := map[*tenant][]string{} // payment ids by tenant
	var problems []string
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, tn := range []*tenant{b, a, c} {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < 1000 && !stop.Load(); i += 2 {
					from, to := tn.accounts[i%len(tn.accounts)], tn.accounts[(i+1)%len(tn.accounts)]
					body, _ := json.Marshal(client.NewPayment{DebtorAccountID: from, Creditor: client.Creditor{AccountID: to},
						Amount: client.EUR("0.01")})
					ans := faultExchange(hc, "POST", n.base+"/v1/payments", tn.token, fmt.Sprintf("%s-%d", tn.name, i), body)
					var p client.Payment
					why := ""
					if ans.status != 201 || json.Unmarshal(ans.body, &p) != nil {
						why = "want 201"
					} else {
						why = tn.check(&p)
					}
					mu.Lock()
					if why != "" {
						problems = append(problems, fmt.Sprintf("%s payment %d: %s; got %s", tn.name, i, why, ans))
					} else {
						paid[tn] = append(paid[tn], p.ID)
						tn.made.Add(1)
					}
					mu.Unlock()
				}
			}()
		}
	}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if b.made.Load() >= healthyMin && a.made.Load() >= misbehavingMin && c.made.Load() >= misbehavingMin {
			break
		}
	}
	stop.Store(true)
	wg.Wait()

	for i, p := range problems {
		if i == 10 {
			t.Errorf("... and %d more", len(problems)-10)
			break
		}
		t.Error(p)
	}
	if len(paid[b]) < healthyMin || len(paid[a]) < misbehavingMin || len(paid[c]) < misbehavingMin {
		t.Errorf("payments as expected: healthy %d (want %d), fail closed %d and stand-in %d (want %d each)",
			len(paid[b]), healthyMin, len(paid[a]), len(paid[c]), misbehavingMin)
	}

	// Every event of B arrives, however A's and C's deliveries hang.
	var missing []string
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		missing = missing[:0]
		for _, id := range paid[b] {
			if !rec.received(id) {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("healthy tenant: %d of %d payment events never reached its webhook", len(missing), len(paid[b]))
	}
	rec.mu.Lock()
	if rec.bad > 0 {
		t.Errorf("healthy tenant's webhook: %d deliveries failed verification (another tenant's events?)", rec.bad)
	}
	rec.mu.Unlock()
	// The misbehaviour was met: each way of failing reached the SPIs (until
	// their breakers opened) and the webhook.
	for end := time.Now().Add(30 * time.Second); !bad.metAll() && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
	}
	if !bad.metAll() {
		t.Errorf("the misbehaving endpoints were not called in every mode: %s", bad)
	}
	t.Logf("payments: healthy %d, fail closed %d, stand-in %d; misbehaving endpoints: %s",
		len(paid[b]), len(paid[a]), len(paid[c]), bad)
}

// faultyEndpoint is an HTTP server that misbehaves, in turn for its SPI
// (/spi...) and its webhook (/hook...) paths: it hangs until the caller
// gives up, resets the connection, or answers 200 with a body trickled a
// byte every 50 ms. Its handlers end when the test does.
type faultyEndpoint struct {
	*httptest.Server
	quit  chan struct{}
	next  [2]atomic.Int64    // SPI, webhook
	calls [2][3]atomic.Int64 // by path, by mode: hang, reset, trickle
}

func newFaultyEndpoint(t *testing.T) *faultyEndpoint {
	e := &faultyEndpoint{quit: make(chan struct{})}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(func() {
		close(e.quit)
		e.Server.Close()
	})
	return e
}

// metAll reports whether each path was called in each mode.
func (e *faultyEndpoint) metAll() bool {
	for p := range e.calls {
		for m := range e.calls[p] {
			if e.calls[p][m].Load() == 0 {
				return false
			}
		}
	}
	return true
}

func (e *faultyEndpoint) String() string {
	var b strings.Builder
	for p, name := range []string{"SPI", "webhook"} {
		fmt.Fprintf(&b, "%s hang %d, reset %d, trickle %d; ", name,
			e.calls[p][0].Load(), e.calls[p][1].Load(), e.calls[p][2].Load())
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func (e *faultyEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	path := 1
	if strings.HasPrefix(r.URL.Path, "/spi") {
		path = 0
	}
	mode := (e.next[path].Add(1) - 1) % 3
	e.calls[path][mode].Add(1)
	switch mode {
	case 0:
		select {
		case <-r.Context().Done():
		case <-e.quit:
		}
	case 1:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
		conn.Close()
	case 2:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		body := `{"decision":"approve","score":1,"reason":"` + strings.Repeat(".", 200) + `"}`
		for i := range len(body) {
			select {
			case <-r.Context().Done():
				return
			case <-e.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := io.WriteString(w, body[i:i+1]); err != nil {
				return
			}
			rc.Flush()
		}
	}
}
