package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
)

// EventsConfig shapes the events benchmark. Zero fields take their
// defaults.
type EventsConfig struct {
	// Subscriptions is how many webhook subscriptions of one app receive
	// every event, all pointing at the same receiver. It is also the
	// concurrency of the raw POST baseline. Default 4.
	Subscriptions int
	// Payments bounds the payments made in the measured run (as do
	// Options.MaxOps and Options.Duration, whichever comes first). Each
	// completed payment commits three events: payment.completed and a
	// transaction.booked for each side. Default 2000.
	Payments int
}

func (c EventsConfig) withDefaults() EventsConfig {
	c.Subscriptions = cmp.Or(c.Subscriptions, 4)
	c.Payments = cmp.Or(c.Payments, 2000)
	return c
}

// eventsPerPayment is what one completed on-us payment commits:
// payment.completed, and transaction.booked for the debtor and the
// creditor account.
const eventsPerPayment = 3

// eventsPaymentAmount is the amount of each payment: small, so the seeded
// balances carry any bounded run.
const eventsPaymentAmount = 1 // EUR 0.01

// Events measures events from commit to a webhook receiver: a whole node
// runs in-process (on a SQLite file, or a fresh PostgreSQL schema with
// opts.DatabaseURL; with NATS embedded, or the external NATS of
// opts.NATSURL under a fresh prefix), an app signed up over HTTP subscribes
// cfg.Subscriptions webhooks to one local receiver, and payments through
// the sandbox bank commit the events (outbox, relay, stream, one consumer
// per subscription, signing, POST, attempt record, ack). The figures are
// deliveries per second, from the first payment to the last delivery
// received, and the latency from each event's time (taken inside the
// payment's transaction) to its first receipt; each beside a loop of raw
// POSTs of bodies of the same sizes from this process to the same
// receiver, with as many in flight as there are subscriptions. The aim is
// deliveries at 70% or more of the raw POST rate.
//
// Then the same latency at a steady rate, opts.Rate events per second,
// open loop (eventsRig.steady): bank events through POST /bank/v1/events,
// then payment-driven events (POST /v1/payments, the outbox, the relay),
// each delivered to one subscription, beside raw POSTs to the same
// receiver at the same rate; a call that could not start on time is
// counted late, never skipped.
//
// It fails when a payment is not completed, or when the receiver has not
// had every event on every subscription within a bounded wait.
//
// With opts.Server the app is signed up on that server, its webhooks point
// at the receiver on 127.0.0.1 (so the server must run on this machine and
// allow 127.0.0.0/8 as a target), and it makes its payments over the API
// (POST /v1/payments, each with an Idempotency-Key); the webhooks and the
// app are deleted afterwards.
func Events(ctx context.Context, opts Options) (*Report, error) {
	return EventsWith(ctx, opts, EventsConfig{})
}

// EventsWith runs the events benchmark with cfg.
func EventsWith(ctx context.Context, opts Options, cfg EventsConfig) (*Report, error) {
	r, err := eventsBench(ctx, opts.withDefaults(), cfg.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return r, nil
}

func eventsBench(ctx context.Context, opts Options, cfg EventsConfig) (*Report, error) {
	startRig := startEventsRig
	if opts.Server != "" {
		startRig = startEventsRigOnServer
	}
	rig, err := startRig(ctx, opts, cfg.Subscriptions)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer rig.Close()

	// Warm up: one payment, all the way to every subscription, so the
	// consumers exist and connections are open before anything is timed.
	// Its deliveries give the bodies the raw POSTs send.
	if err := rig.pay(ctx, rand.New(rand.NewPCG(0, 0))); err != nil {
		return nil, fmt.Errorf("warm-up payment: %w", err)
	}
	if err := rig.recv.wait(ctx, eventsPerPayment, time.Minute); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	bodies := rig.recv.sampleBodies()

	// The baseline first, while the node is idle.
	raw, rawConns, err := rig.rawPosts(ctx, opts, bodies, cfg)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	rig.recv.startMeasuring()
	start := time.Now()
	payOpts := opts
	payOpts.MaxOps = min(opts.MaxOps, cfg.Payments)
	paid, err := runLoad(ctx, payOpts, func(ctx context.Context, rng *rand.Rand) error {
		return rig.pay(ctx, rng)
	})
	if err != nil {
		return nil, fmt.Errorf("a payment failed after %d succeeded: %w", paid.ops, err)
	}
	// Every event must arrive; the wait is bounded by what a dispatcher a
	// hundred times slower than the commits would need, within limits.
	wait := min(max(100*paid.elapsed, 30*time.Second), 5*time.Minute)
	if err := rig.recv.wait(ctx, eventsPerPayment*(1+paid.ops), wait); err != nil {
		return nil, fmt.Errorf("after %d payments: %w", paid.ops, err)
	}
	m := rig.recv.measured()
	deliveries := load{ops: len(m.latencies), elapsed: m.last.Sub(start), latencies: m.latencies}
	perK := func(conns int64, n int) float64 { return 1000 * float64(conns) / float64(max(n, 1)) }

	steady, err := rig.steady(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("steady rate: %w", err)
	}

	r := NewReport("events", rig.runtime)
	r.Target = rig.target
	r.Figures = append(r.Figures,
		NewFigure("deliveries_per_s", deliveries.perSecond(), "1/s", "raw_post_per_s", raw.perSecond()),
		NewFigure("commit_to_receipt_p50", ms(deliveries.percentile(0.50)), "ms", "raw_post_latency_p50", ms(raw.percentile(0.50))),
		NewFigure("commit_to_receipt_p99", ms(deliveries.percentile(0.99)), "ms", "raw_post_latency_p99", ms(raw.percentile(0.99))),
		// Not an aim in itself but where delivery time went before: every
		// new connection to the receiver is a dial and a handshake.
		NewFigure("connections_per_1k_deliveries", perK(m.conns, deliveries.ops), "1/1000",
			"raw_post_connections_per_1k", perK(rawConns, raw.ops)),
	)
	r.Figures = append(r.Figures, steady.figures()...)
	return r, nil
}

// eventsRig is a node, an app of it with subscriptions to the receiver,
// and a way to pay between the app's accounts.
type eventsRig struct {
	*api // the node
	recv *eventsReceiver
	// pay makes one payment between two random accounts of the app, as
	// the app, and fails unless it completed (a rejected payment commits
	// one event, not three).
	pay func(ctx context.Context, rng *rand.Rand) error
	// signUp signs up another app with scopes; on a server Close deletes
	// it, and remove says Close deletes the app's webhooks too.
	signUp  func(ctx context.Context, name string, scopes []string) (benchApp, error)
	remove  bool
	runtime Runtime
	target  string // the server's URL, with Options.Server
	closers undo
}

// eventsScopes are what the events benchmark's app may do.
var eventsScopes = []string{auth.ScopeAccountsRead, auth.ScopeEventsRead, auth.ScopeWebhooksWrite, auth.ScopePaymentsWrite}

// startEventsRig starts a node on the database and bus opts name (see
// startBenchNode) and the receiver, signs up an app, and subscribes it
// subscriptions times to the receiver. The app pays through the sandbox
// bank in this process.
func startEventsRig(ctx context.Context, opts Options, subscriptions int) (_ *eventsRig, err error) {
	node, err := startBenchNode(ctx, opts, "events", 2)
	if err != nil {
		return nil, err
	}
	g := &eventsRig{api: node.api, signUp: node.signUpApp, runtime: opts.runtime(true), closers: undo{node.Close}}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()
	app, err := node.signUpApp(ctx, "Events benchmark", eventsScopes)
	if err != nil {
		return nil, err
	}
	accounts, err := g.subscribe(ctx, app, subscriptions)
	if err != nil {
		return nil, err
	}
	actor := auth.AppCaller(app.ID)
	g.pay = func(ctx context.Context, rng *rand.Rand) error {
		from, to := pickPair(rng, len(accounts))
		p, err := node.Bank.CreatePayment(ctx, actor, core.NewPayment{
			DebtorAccountID: accounts[from],
			Creditor:        core.Creditor{AccountID: accounts[to]},
			Amount:          core.Money{Minor: eventsPaymentAmount, Currency: "EUR"},
			Reference:       "events benchmark",
		})
		if err != nil {
			return err
		}
		if p.Status != core.PaymentCompleted {
			return fmt.Errorf("payment %s is %s, not completed: %+v", p.ID, p.Status, p.Rejection)
		}
		return nil
	}
	return g, nil
}

// startEventsRigOnServer is startEventsRig on the server of opts.Server:
// the app pays over the API, and its webhooks and the app itself are
// deleted at Close.
func startEventsRigOnServer(ctx context.Context, opts Options, subscriptions int) (_ *eventsRig, err error) {
	srv, err := connectServer(ctx, opts, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	g := &eventsRig{api: srv.api, signUp: srv.signUp, remove: true, runtime: srv.Runtime, target: srv.URL, closers: undo{srv.Close}}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()
	app, err := srv.signUp(ctx, "Events benchmark", eventsScopes)
	if err != nil {
		return nil, err
	}
	accounts, err := g.subscribe(ctx, app, subscriptions)
	if err != nil {
		return nil, err
	}
	g.pay = newAPIPayer(srv.api, srv.tokens(ctx, app), accounts, eventsPaymentAmount, "events benchmark").pay
	return g, nil
}

// subscribe starts the receiver and subscribes app subscriptions times to
// it, for the events payments commit. It returns the app's funded
// accounts to pay between.
func (g *eventsRig) subscribe(ctx context.Context, app benchApp, subscriptions int) ([]string, error) {
	g.recv = newEventsReceiver(subscriptions)
	g.closers = append(g.closers, func() error { g.recv.Close(); return nil })
	token, err := g.accessToken(ctx, app)
	if err != nil {
		return nil, err
	}
	accounts, err := g.fundedAccounts(ctx, token, eventsPaymentAmount)
	if err != nil {
		return nil, err
	}
	if err := g.subscribeTo(ctx, token, g.recv, paymentEventTypes); err != nil {
		return nil, err
	}
	return accounts, nil
}

// paymentEventTypes are what a completed payment commits.
var paymentEventTypes = []string{"payment.completed", "transaction.booked"}

// subscribeTo subscribes the app of token to types once per subscription
// of recv, each to its own URL there; Close deletes the subscriptions when
// g.remove is set.
func (g *eventsRig) subscribeTo(ctx context.Context, token string, recv *eventsReceiver, types []string) error {
	for i := range len(recv.seen) {
		var sub struct {
			ID string `json:"id"`
		}
		url := recv.URL(i)
		if err := g.call(ctx, http.MethodPost, "/v1/webhooks", token, map[string]any{
			"url":         url,
			"event_types": types,
		}, http.StatusCreated, &sub); err != nil {
			return fmt.Errorf("subscribe: %w", refusedTarget(err, url))
		}
		if g.remove {
			g.closers = append(g.closers, func() error {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				return g.call(ctx, http.MethodDelete, "/v1/webhooks/"+sub.ID, token, nil, http.StatusNoContent, nil)
			})
		}
	}
	return nil
}

// Close undoes the rig in reverse order: the subscriptions (on a server),
// the receiver, the node (or what the benchmark made on the server).
func (g *eventsRig) Close() error {
	return g.closers.Close()
}

// rawPosts is the baseline: POSTs of the warm-up's delivered bodies (in
// the proportion the payments commit them) to the receiver, from as many
// goroutines as there are subscriptions, on a plain client keeping as many
// idle connections, for as long and as many as the deliveries may take at
// most. It returns the connections the receiver saw opened meanwhile.
func (g *eventsRig) rawPosts(ctx context.Context, opts Options, bodies [][]byte, cfg EventsConfig) (load, int64, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.Subscriptions,
	}}
	defer client.CloseIdleConnections()
	conns := g.recv.conns.Load()
	rawOpts := Options{
		Duration:    opts.Duration,
		Concurrency: cfg.Subscriptions,
		MaxOps:      eventsPerPayment * cfg.Subscriptions * min(opts.MaxOps, cfg.Payments),
	}
	url := g.recv.RawURL()
	l, err := runLoad(ctx, rawOpts, func(ctx context.Context, rng *rand.Rand) error {
		return postRaw(ctx, client, url, bodies[rng.IntN(len(bodies))])
	})
	if err != nil {
		return l, 0, fmt.Errorf("a POST failed after %d succeeded: %w", l.ops, err)
	}
	return l, g.recv.conns.Load() - conns, nil
}

// eventsReceiver is the webhook endpoint: a loopback server answering 204
// at once. Subscription i posts to /hooks/i, the baseline to /raw; both
// are read and decoded the same way, so the receiver costs both the same.
// For the subscriptions it keeps which events arrived (the first receipt
// of each counts; redeliveries are at-least-once's right) and, while
// measuring, the latency from the event's time to its receipt.
type eventsReceiver struct {
	srv   *httptest.Server
	conns atomic.Int64 // connections opened to the server

	mu        sync.Mutex
	seen      []map[string]struct{} // per subscription: ids of the events received
	counted   int                   // first receipts, over all subscriptions
	bodies    map[string][]byte     // a delivered body per event type
	measuring bool
	latencies []time.Duration
	last      time.Time // the last first receipt while measuring
	conns0    int64     // conns when measuring started
	arrived   chan struct{}
}

func newEventsReceiver(subscriptions int) *eventsReceiver {
	rc := &eventsReceiver{bodies: map[string][]byte{}, arrived: make(chan struct{}, 1)}
	for range subscriptions {
		rc.seen = append(rc.seen, map[string]struct{}{})
	}
	rc.srv = httptest.NewUnstartedServer(rc)
	rc.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			rc.conns.Add(1)
		}
	}
	rc.srv.Start()
	return rc
}

// URL is where subscription i delivers.
func (rc *eventsReceiver) URL(i int) string { return rc.srv.URL + "/hooks/" + strconv.Itoa(i) }

// RawURL is where the baseline posts.
func (rc *eventsReceiver) RawURL() string { return rc.srv.URL + "/raw" }

func (rc *eventsReceiver) Close() { rc.srv.Close() }

func (rc *eventsReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	at := time.Now()
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Time string `json:"time"`
	}
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	var sent time.Time
	if err == nil {
		sent, err = time.Parse(time.RFC3339Nano, ev.Time)
	}
	if err != nil || ev.ID == "" {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	if sub, ok := strings.CutPrefix(r.URL.Path, "/hooks/"); ok {
		i, err := strconv.Atoi(sub)
		if err != nil || i < 0 || i >= len(rc.seen) {
			http.NotFound(w, r)
			return
		}
		rc.record(i, ev.ID, ev.Type, body, at, at.Sub(sent))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *eventsReceiver) record(sub int, id, typ string, body []byte, at time.Time, latency time.Duration) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, dup := rc.seen[sub][id]; dup {
		return
	}
	rc.seen[sub][id] = struct{}{}
	rc.counted++
	if _, ok := rc.bodies[typ]; !ok {
		rc.bodies[typ] = body
	}
	if rc.measuring {
		rc.latencies = append(rc.latencies, latency)
		rc.last = at
	}
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
}

// wait waits until every subscription has had perSubscription events, or
// for at most timeout.
func (rc *eventsReceiver) wait(ctx context.Context, perSubscription int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		rc.mu.Lock()
		low := perSubscription
		for _, s := range rc.seen {
			low = min(low, len(s))
		}
		rc.mu.Unlock()
		if low >= perSubscription {
			return nil
		}
		select {
		case <-rc.arrived:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("after %s a subscription had %d of %d events", timeout, low, perSubscription)
		}
	}
}

// body returns a delivered body of an event of type typ, or nil.
func (rc *eventsReceiver) body(typ string) []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.bodies[typ]
}

// sampleBodies returns a delivered payment.completed body and two
// transaction.booked bodies: what one payment commits.
func (rc *eventsReceiver) sampleBodies() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return [][]byte{rc.bodies["payment.completed"], rc.bodies["transaction.booked"], rc.bodies["transaction.booked"]}
}

// startMeasuring starts recording the latencies of first receipts, from
// none: what an earlier measurement recorded is dropped.
func (rc *eventsReceiver) startMeasuring() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.measuring = true
	rc.latencies = nil
	rc.last = time.Time{}
	rc.conns0 = rc.conns.Load()
}

// eventsMeasure is what the receiver saw while measuring.
type eventsMeasure struct {
	latencies []time.Duration // sorted
	last      time.Time
	conns     int64
}

func (rc *eventsReceiver) measured() eventsMeasure {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	m := eventsMeasure{latencies: slices.Clone(rc.latencies), last: rc.last, conns: rc.conns.Load() - rc.conns0}
	slices.Sort(m.latencies)
	return m
}
