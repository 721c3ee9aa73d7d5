package webhooks_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
	"github.com/causewayhq/causeway/internal/webhooks"
)

// The backend pairs tests run on: the embedded default, and the scale-out
// pair (PostgreSQL and an external NATS), each with a fresh database and
// stream.
var backends = []struct {
	name   string
	openDB func(testing.TB) *store.DB
	openMQ func(testing.TB) *bus.Bus
}{
	{"sqlite+embedded", storetest.OpenSQLite, func(tb testing.TB) *bus.Bus { return bustest.OpenEmbedded(tb, tb.TempDir()) }},
	{"postgres+external", storetest.OpenPostgres, bustest.OpenExternal},
}

// each runs fn on every backend pair, in parallel: the tests mostly wait
// on timers and receivers.
func each(t *testing.T, opts webhooks.Options, fn func(t *testing.T, h *harness)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newHarness(t, b.openDB(t), b.openMQ(t), opts, nil))
		})
	}
}

// embeddedOnly runs fn on SQLite and the embedded bus, for behaviour that
// does not depend on the backends. resolver, when set, is the guard's.
func embeddedOnly(t *testing.T, opts webhooks.Options, resolver netguard.Resolver, fn func(t *testing.T, h *harness)) {
	t.Helper()
	t.Parallel()
	fn(t, newHarness(t, storetest.OpenSQLite(t), bustest.OpenEmbedded(t, t.TempDir()), opts, resolver))
}

// fastSchedule is the retry schedule of most tests: four attempts within
// about a third of a second.
var fastSchedule = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// harness is one platform slice: database, bus, outbox relay, the webhook
// service running its dispatcher, and its API behind a test
// authentication that takes the app from the X-Test-App header.
type harness struct {
	t         testing.TB
	db        *store.DB
	bus       *bus.Bus
	svc       *webhooks.Service
	api       *httptest.Server
	customers *customers
	logs      *syncBuffer
	openapi   *openapitest.Validator
}

const (
	appA = "app_a"
	appB = "app_b"
)

func newHarness(t testing.TB, db *store.DB, b *bus.Bus, opts webhooks.Options, resolver netguard.Resolver) *harness {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return newSealedHarness(t, db, b, opts, resolver, sealer)
}

// newSealedHarness is newHarness with the given sealer, for tests of the
// secret key.
func newSealedHarness(t testing.TB, db *store.DB, b *bus.Bus, opts webhooks.Options, resolver netguard.Resolver, sealer *seal.Sealer) *harness {
	t.Helper()
	ctx := context.Background()
	if err := outbox.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.EnsureStream(ctx, b, outbox.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	relay := outbox.NewRelay(db, b, outbox.RelayOptions{Interval: 20 * time.Millisecond, Logger: logger})
	cust := &customers{grants: map[string]bool{}}
	vis := events.Visibility{Customers: cust, Public: func(string) bool { return false }}
	// Only 127.0.0.1, where the receivers listen: tests of a refused
	// address use another loopback address, never one outside 127.0.0.0/8.
	guard := netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Resolver: resolver}
	if opts.Schedule == nil {
		opts.Schedule = fastSchedule
	}
	if opts.Jitter == 0 {
		opts.Jitter = -1
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = 100 * time.Millisecond
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 3 * time.Second
	}
	opts.Logger = logger
	opts.NotifyOutbox = relay.Notify
	opts.Registerer = prometheus.NewRegistry()
	svc, err := webhooks.New(db, b, vis, sealer, guard, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); relay.Run(runCtx) }()
	go func() {
		defer wg.Done()
		if err := svc.Run(runCtx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	srv := httpapi.New(httpapi.Config{AdminToken: "admin-token", Logger: logger, Registerer: prometheus.NewRegistry()})
	srv.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if app := r.Header.Get("X-Test-App"); app != "" {
				r = r.WithContext(auth.WithApp(r.Context(), &auth.App{ID: app, Scopes: []string{auth.ScopeEventsRead, auth.ScopeWebhooksWrite}}))
			}
			next.ServeHTTP(w, r)
		})
	})
	svc.Register(srv)
	api := httptest.NewServer(srv)
	t.Cleanup(func() {
		api.Close()
		stop()
		wg.Wait()
		svc.Close()
	})
	return &harness{t: t, db: db, bus: b, svc: svc, api: api, customers: cust, logs: logs, openapi: openapitest.Fetch(t, api.URL)}
}

// customers is a fake CustomerAccess: an app sees a customer it was
// granted.
type customers struct {
	mu     sync.Mutex
	grants map[string]bool // app|customer
}

func (c *customers) grant(app, customer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grants[app+"|"+customer] = true
}

func (c *customers) CanSeeCustomer(_ context.Context, app, customer string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.grants[app+"|"+customer], nil
}

// call makes an API request as app ("" for none, "admin" for the bank) and
// decodes a JSON answer into out when given.
func (h *harness) call(method, path, app string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.api.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch app {
	case "":
	case "admin":
		req.Header.Set("Authorization", "Bearer admin-token")
	default:
		req.Header.Set("X-Test-App", app)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	h.openapi.Check(h.t, method, pathTemplate(path), resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// pathTemplate turns a request path into its OpenAPI path.
func pathTemplate(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(path, "/")
	for i := range parts {
		switch {
		case i == 3 && parts[2] == "webhooks":
			parts[i] = "{id}"
		case i == 5 && parts[4] == "deliveries":
			parts[i] = "{delivery_id}"
		}
	}
	return strings.Join(parts, "/")
}

// problem is the problem+json body of an error.
type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// subscribe creates a subscription through the API and fails the test if
// it is refused.
func (h *harness) subscribe(app string, body map[string]any) *webhooks.Subscription {
	h.t.Helper()
	var sub webhooks.Subscription
	if code := h.call(http.MethodPost, "/v1/webhooks", app, body, &sub); code != http.StatusCreated {
		h.t.Fatalf("create webhook: %d %+v", code, sub)
	}
	return &sub
}

func (h *harness) get(app, id string) *webhooks.Subscription {
	h.t.Helper()
	var sub webhooks.Subscription
	if code := h.call(http.MethodGet, "/v1/webhooks/"+id, app, nil, &sub); code != http.StatusOK {
		h.t.Fatalf("get webhook %s: %d", id, code)
	}
	return &sub
}

// deliveries lists a subscription's delivery records (first page of 200)
// with an optional query.
func (h *harness) deliveries(app, id, query string) []webhooks.Delivery {
	h.t.Helper()
	var page struct {
		Data []webhooks.Delivery `json:"data"`
	}
	if code := h.call(http.MethodGet, "/v1/webhooks/"+id+"/deliveries?limit=200&"+query, app, nil, &page); code != http.StatusOK {
		h.t.Fatalf("deliveries of %s: %d", id, code)
	}
	return page.Data
}

// publish appends events through the outbox in one transaction; the relay
// puts them on the stream.
func (h *harness) publish(evs ...outbox.Event) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.db.Tx(ctx, func(tx *sql.Tx) error { return outbox.Append(ctx, tx, evs...) }); err != nil {
		h.t.Fatal(err)
	}
}

// eventSeq numbers the test events: the relay publishes in id order, so ids
// must sort in the order tests append them.
var eventSeq atomic.Int64

// eventID returns an event id that sorts after every earlier one and ends
// in name, which tests use to tell events apart (see name).
func eventID(name string) string { return fmt.Sprintf("evt_%08d_%s", eventSeq.Add(1), name) }

// name is the name part of an eventID.
func name(id string) string {
	if len(id) > 13 && strings.HasPrefix(id, "evt_") {
		return id[13:]
	}
	return id
}

// payment is a payment.completed event of app with the given amount.
func payment(app, id, amount string) outbox.Event {
	return outbox.Event{
		ID:      eventID(id),
		Type:    "payment.completed",
		Source:  "/causeway/sandbox-bank",
		Subject: id,
		AppID:   app,
		Data:    json.RawMessage(fmt.Sprintf(`{"id":%q,"status":"completed","amount":{"amount":%q,"currency":"EUR"}}`, id, amount)),
	}
}

// eventually polls cond until it holds or the deadline passes. Deadlines
// bound a hung test; they do not measure anything.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiver is a webhook endpoint on loopback that records every request
// and answers what respond says (200 when nil); a 429 comes with
// Retry-After: 1.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	respond  func(r request, n int) int // n: 1-based count of requests so far for this event id
}

type request struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// id is the name of the event in the request (see eventID).
func (r request) id() string { return name(r.Header.Get("webhook-id")) }

func newReceiver(t testing.TB, respond func(r request, n int) int) *receiver {
	return newReceiverOn(t, "127.0.0.1", respond)
}

// newReceiverOn is a receiver listening on another loopback address, one
// the harness's guard refuses.
func newReceiverOn(t testing.TB, ip string, respond func(r request, n int) int) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = testkit.ServerOn(t, ip, http.HandlerFunc(rc.serve))
	return rc
}

// failTwice is a receiver's answer: 500 to an event's first two
// attempts, then 200.
func failTwice(_ request, n int) int {
	if n <= 2 {
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := request{Header: r.Header.Clone(), Body: body, At: time.Now()}
	rc.mu.Lock()
	rc.requests = append(rc.requests, req)
	n := 0
	for _, q := range rc.requests {
		if q.id() == req.id() {
			n++
		}
	}
	respond := rc.respond
	rc.mu.Unlock()
	status := http.StatusOK
	if respond != nil {
		status = respond(req, n)
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answer %d", status)
}

func (rc *receiver) all() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.requests...)
}

// ids returns the event name of every request, in arrival order.
func (rc *receiver) ids() []string {
	var out []string
	for _, r := range rc.all() {
		out = append(out, r.id())
	}
	return out
}

func (rc *receiver) count(id string) int {
	n := 0
	for _, r := range rc.all() {
		if r.id() == id {
			n++
		}
	}
	return n
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// closedPort returns an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }
