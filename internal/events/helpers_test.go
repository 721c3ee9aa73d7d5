package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

const adminToken = "cwadm_events-test"

// testAppHeader names the calling app in these tests, standing in for the
// gateway, which authenticates an access token and puts the app in the
// context.
const testAppHeader = "X-Test-App"

// env is one platform slice: a database, a bus, the outbox relay running,
// the events service, and an HTTP server with its routes.
type env struct {
	db     *store.DB
	bus    *bus.Bus
	svc    *events.Service
	srv    *httpapi.Server
	url    string
	access *customerAccess
	doc    *openapitest.Validator
}

// The backends: a fresh database and bus per test.
var (
	databases = []struct {
		name string
		open func(testing.TB) *store.DB
	}{
		{"sqlite", storetest.OpenSQLite},
		{"postgres", storetest.OpenPostgres},
	}
	buses = []struct {
		name string
		open func(testing.TB) *bus.Bus
	}{
		{"embedded", func(tb testing.TB) *bus.Bus { return bustest.OpenEmbedded(tb, tb.TempDir()) }},
		{"external", bustest.OpenExternal},
	}
)

// each runs fn on every combination of database and bus, as subtests such
// as "postgres/external".
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			for _, b := range buses {
				t.Run(b.name, func(t *testing.T) {
					fn(t, newEnv(t, d.open(t), b.open(t), events.Options{}))
				})
			}
		})
	}
}

// eachBus runs fn on SQLite with both buses: for tests about the stream,
// not the database.
func eachBus(t *testing.T, opts events.Options, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range buses {
		t.Run(b.name, func(t *testing.T) {
			fn(t, newEnv(t, storetest.OpenSQLite(t), b.open(t), opts))
		})
	}
}

// sqliteEnv is one environment on SQLite and the embedded bus.
func sqliteEnv(t testing.TB, opts events.Options) *env {
	return newEnv(t, storetest.OpenSQLite(t), bustest.OpenEmbedded(t, t.TempDir()), opts)
}

func newEnv(t testing.TB, db *store.DB, b *bus.Bus, opts events.Options) *env {
	t.Helper()
	ctx := context.Background()
	if err := outbox.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := events.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// The bank's registrations and publications append to the audit trail.
	if err := audit.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.EnsureStream(ctx, b, outbox.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	relay := outbox.NewRelay(db, b, outbox.RelayOptions{Logger: log, Interval: 20 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { relay.Run(runCtx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	access := &customerAccess{seen: map[string]map[string]bool{}}
	if opts.Logger == nil {
		opts.Logger = log
	}
	opts.Notify = relay.Notify
	svc, err := events.New(db, b, events.Visibility{Customers: access}, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.New(httpapi.Config{Version: "test", AdminToken: adminToken, Logger: log, Registerer: prometheus.NewRegistry()})
	srv.Use(fakeGateway)
	svc.Register(srv)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{db: db, bus: b, svc: svc, srv: srv, url: ts.URL, access: access, doc: openapitest.Fetch(t, ts.URL)}
}

// fakeGateway puts the app named by testAppHeader in the context.
func fakeGateway(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(testAppHeader); id != "" {
			r = r.WithContext(auth.WithApp(r.Context(), &auth.App{ID: id, Scopes: []string{auth.ScopeEventsRead}}))
		}
		next.ServeHTTP(w, r)
	})
}

// customerAccess is a CustomerAccess whose grants tests set.
type customerAccess struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // app -> customers
}

func (a *customerAccess) grant(appID string, customers ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[appID] == nil {
		a.seen[appID] = map[string]bool{}
	}
	for _, c := range customers {
		a.seen[appID][c] = true
	}
}

func (a *customerAccess) CanSeeCustomer(_ context.Context, appID, customerID string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[appID][customerID], nil
}

// response is an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d %s: %v", r.status, r.body, err)
	}
}

// problem returns the machine code and detail of a problem response.
func (r response) problem(t testing.TB) (code, detail string) {
	t.Helper()
	var p struct{ Code, Detail string }
	r.decode(t, &p)
	return p.Code, p.Detail
}

// request sends a request; app "" with admin sends the bank's admin token.
func (e *env) request(t testing.TB, method, path string, header http.Header, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// asApp calls a /v1 route as app.
func (e *env) asApp(t testing.TB, app, path string) response {
	t.Helper()
	return e.request(t, http.MethodGet, path, http.Header{testAppHeader: {app}}, nil)
}

// asBank calls a /bank/v1 route with the admin token and a JSON body.
func (e *env) asBank(t testing.TB, method, path, contentType string, body any) response {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	h := http.Header{"Authorization": {"Bearer " + adminToken}}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return e.request(t, method, path, h, raw)
}

// publish posts a structured CloudEvent and returns its id.
func (e *env) publish(t testing.TB, ce map[string]any) string {
	t.Helper()
	res := e.asBank(t, http.MethodPost, "/bank/v1/events", "application/cloudevents+json", ce)
	if res.status != http.StatusAccepted {
		t.Fatalf("publish %v = %d %s", ce, res.status, res.body)
	}
	var out struct{ ID string }
	res.decode(t, &out)
	return out.ID
}

// cloudEvent is a bank event of typ with data.
func cloudEvent(typ string, data any, ext map[string]any) map[string]any {
	ce := map[string]any{"specversion": "1.0", "type": typ, "source": "/bank/test", "data": data}
	for k, v := range ext {
		ce[k] = v
	}
	return ce
}

// received is one event from the pull feed.
type received struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Source      string          `json:"source"`
	Subject     string          `json:"subject"`
	Time        time.Time       `json:"time"`
	Data        json.RawMessage `json:"data"`
}

type eventPage struct {
	Data       []received `json:"data"`
	NextCursor string     `json:"next_cursor"`
}

// pull reads one page of the feed as app.
func (e *env) pull(t testing.TB, app, query string) eventPage {
	t.Helper()
	res := e.asApp(t, app, "/v1/events"+query)
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/events%s as %s = %d %s", query, app, res.status, res.body)
	}
	e.doc.Check(t, http.MethodGet, "/v1/events", res.status, res.header.Get("Content-Type"), res.body)
	var p eventPage
	res.decode(t, &p)
	return p
}

// pullAll follows next_cursor from the start until a page comes back empty.
func (e *env) pullAll(t testing.TB, app string, limit int) []received {
	t.Helper()
	var all []received
	query := "?limit=" + itoa(limit)
	for range 1000 {
		p := e.pull(t, app, query)
		all = append(all, p.Data...)
		if len(p.Data) == 0 {
			return all
		}
		if p.NextCursor == "" {
			t.Fatal("a page with events has no next_cursor")
		}
		query = "?limit=" + itoa(limit) + "&after=" + p.NextCursor
	}
	t.Fatal("the feed does not end")
	return nil
}

// waitFor polls the feed until app sees want events in all.
func (e *env) waitFor(t testing.TB, app string, want int) []received {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		all := e.pullAll(t, app, events.MaxPageSize)
		if len(all) >= want || time.Now().After(deadline) {
			if len(all) < want {
				t.Fatalf("%s sees %d events, want %d", app, len(all), want)
			}
			return all
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(evs []received) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
