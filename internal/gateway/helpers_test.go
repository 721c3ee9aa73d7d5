package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

const adminToken = "admin-secret"

// testAuth stands in for the identity package. Access tokens are
// "app:<id>:<scope>,<scope>", developer tokens "dev:<id>:<organization>".
// Apps app_a and app_b belong to org_1, app_c to org_2.
type testAuth struct{}

var appOrgs = map[string]string{"app_a": "org_1", "app_b": "org_1", "app_c": "org_2"}

func (testAuth) AuthenticateApp(_ context.Context, bearer string) (*auth.App, error) {
	parts := strings.SplitN(bearer, ":", 3)
	if len(parts) != 3 || parts[0] != "app" {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the access token is not valid")
	}
	if parts[1] == "expired" {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "token_expired", "the access token has expired")
	}
	if _, ok := appOrgs[parts[1]]; !ok {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the access token is not valid")
	}
	var scopes []string
	for s := range strings.SplitSeq(parts[2], ",") {
		if s != "" {
			scopes = append(scopes, s)
		}
	}
	return &auth.App{ID: parts[1], ClientID: "cli_" + parts[1], Scopes: scopes}, nil
}

func (testAuth) AuthenticateDeveloper(_ context.Context, token string) (*auth.Developer, error) {
	parts := strings.SplitN(token, ":", 3)
	if len(parts) != 3 || parts[0] != "dev" {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the developer token is not valid")
	}
	return &auth.Developer{ID: parts[1], OrganizationID: parts[2]}, nil
}

func (testAuth) AppOrganization(_ context.Context, appID string) (string, error) {
	if org, ok := appOrgs[appID]; ok {
		return org, nil
	}
	return "", causeway.Errorf(causeway.ENOTFOUND, "app_not_found", "no app %s", appID)
}

// clock is a settable clock; it stands still unless a test advances it, so
// token buckets refill only when a test says so.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// app holds the test API's state, shared by the nodes of one test.
type app struct {
	posts   atomic.Int64 // runs of POST /v1/things
	notes   atomic.Int64 // runs of POST /v1/notes
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// unblock lets every "slow" request finish.
func (a *app) unblock() { a.once.Do(func() { close(a.release) }) }

type thingInput struct {
	Body struct {
		Name string `json:"name"`
	}
}

type thingOutput struct {
	Body struct {
		N     int64  `json:"n"`
		AppID string `json:"app_id"`
		Name  string `json:"name"`
	}
}

type whoOutput struct {
	Body struct {
		AppID       string `json:"app_id,omitempty"`
		DeveloperID string `json:"developer_id,omitempty"`
	}
}

func oauth2(scopes ...string) []map[string][]string {
	return []map[string][]string{{httpapi.SchemeAppOAuth2: scopes}}
}

// register adds the test operations: GET and POST /v1/things for apps
// (accounts:read, payments:write), GET /v1/me and POST /v1/notes for
// developers, GET /v1/public for anyone, GET /bank/v1/ping for the bank.
func (a *app) register(s *httpapi.Server) {
	huma.Register(s.API, huma.Operation{OperationID: "list-things", Method: http.MethodGet, Path: "/v1/things", Security: oauth2(auth.ScopeAccountsRead)},
		func(ctx context.Context, _ *struct{}) (*whoOutput, error) {
			app, ok := auth.AppFrom(ctx)
			if !ok {
				return nil, errors.New("no app in context")
			}
			out := &whoOutput{}
			out.Body.AppID = app.ID
			return out, nil
		})
	huma.Register(s.API, huma.Operation{OperationID: "create-thing", Method: http.MethodPost, Path: "/v1/things",
		Security: oauth2(auth.ScopePaymentsWrite), DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *thingInput) (*thingOutput, error) {
			app, _ := auth.AppFrom(ctx)
			n := a.posts.Add(1)
			switch in.Body.Name {
			case "boom":
				return nil, causeway.Errorf(causeway.EUNAVAILABLE, "core_down", "the core is down")
			case "slow":
				a.entered <- struct{}{}
				<-a.release
			case "sleepy":
				time.Sleep(30 * time.Millisecond)
			case "panic":
				panic("handler bug")
			case "bad":
				return nil, causeway.Errorf(causeway.EINVALID, "bad_thing", "not this thing")
			}
			out := &thingOutput{}
			out.Body.N, out.Body.AppID, out.Body.Name = n, app.ID, in.Body.Name
			return out, nil
		})
	// An event stream: one event, then it ends.
	s.HandleSecured("GET /v1/stream", oauth2(auth.ScopeAccountsRead), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sse := httpapi.OpenEventStream(w, r, time.Second)
		defer sse.Close()
		sse.Send([]byte("data: {}\n\n"))
	}))
	huma.Register(s.API, huma.Operation{OperationID: "me", Method: http.MethodGet, Path: "/v1/me",
		Security: []map[string][]string{{httpapi.SchemeDeveloper: {}}}},
		func(ctx context.Context, _ *struct{}) (*whoOutput, error) {
			dev, ok := auth.DeveloperFrom(ctx)
			if !ok {
				return nil, errors.New("no developer in context")
			}
			out := &whoOutput{}
			out.Body.DeveloperID = dev.ID
			return out, nil
		})
	huma.Register(s.API, huma.Operation{OperationID: "create-note", Method: http.MethodPost, Path: "/v1/notes",
		Security: []map[string][]string{{httpapi.SchemeDeveloper: {}}}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *thingInput) (*thingOutput, error) {
			out := &thingOutput{}
			out.Body.N, out.Body.Name = a.notes.Add(1), in.Body.Name
			return out, nil
		})
	huma.Register(s.API, huma.Operation{OperationID: "public", Method: http.MethodGet, Path: "/v1/public"},
		func(ctx context.Context, _ *struct{}) (*whoOutput, error) {
			_, isApp := auth.AppFrom(ctx)
			_, isDev := auth.DeveloperFrom(ctx)
			if isApp || isDev {
				return nil, errors.New("a public route got a caller")
			}
			return &whoOutput{}, nil
		})
	huma.Register(s.Bank, huma.Operation{OperationID: "ping", Method: http.MethodGet, Path: "/ping"},
		func(ctx context.Context, _ *struct{}) (*whoOutput, error) { return &whoOutput{}, nil })
}

// testSecretKey is the --secret-key of the test nodes.
var testSecretKey = bytes.Repeat([]byte{7}, 32)

// testSealer seals with testSecretKey.
func testSealer(t testing.TB) *seal.Sealer {
	t.Helper()
	s, err := seal.New(testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// node is one Causeway node: an httpapi server with the gateway in front of
// the test API.
type node struct {
	t   testing.TB
	gw  *gateway.Gateway
	srv *httptest.Server
	reg *prometheus.Registry
}

type env struct {
	*node
	db    *store.DB
	bus   *bus.Bus
	clock *clock
	app   *app
	opts  func(*gateway.Options)
	// sealer is every node's: they share the stored responses.
	sealer *seal.Sealer
}

// newEnv starts a node on db, with its shared budgets on an embedded NATS
// of its own.
func newEnv(t testing.TB, db *store.DB) *env { return newEnvWith(t, db, nil) }

// newEnvWith is newEnv with opts adjusting every node's gateway options.
func newEnvWith(t testing.TB, db *store.DB, opts func(*gateway.Options)) *env {
	t.Helper()
	return newEnvOn(t, db, bustest.OpenEmbedded(t, t.TempDir()), opts)
}

// newEnvOn is newEnvWith on the bus b, which every node of the env shares.
func newEnvOn(t testing.TB, db *store.DB, b *bus.Bus, opts func(*gateway.Options)) *env {
	t.Helper()
	if err := gateway.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	// The bank's changes (limits, upstreams) append to the audit trail.
	if err := audit.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, bus: b, clock: newClock(), app: &app{entered: make(chan struct{}, 16), release: make(chan struct{})}, opts: opts,
		sealer: testSealer(t)}
	e.node = e.newNode(t)
	return e
}

// eachRuntime runs fn per runtime, as the platform pairs them: "embedded"
// is a SQLite file and an embedded NATS, "scaleout" PostgreSQL and the
// external NATS under a fresh prefix (required in CI).
func eachRuntime(t *testing.T, fn func(t *testing.T, db *store.DB, b *bus.Bus)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) { fn(t, storetest.OpenSQLite(t), bustest.OpenEmbedded(t, t.TempDir())) })
	t.Run("scaleout", func(t *testing.T) { fn(t, storetest.OpenPostgres(t), openExternalBus(t, testkit.NATS.URL(t))) })
}

// openExternalBus connects to the NATS at url under a fresh prefix. Its
// streams go when t ends (bustest), and so does the budget bucket, whose
// stream (KV_<prefix>_...) bustest does not know.
func openExternalBus(t testing.TB, url string) *bus.Bus {
	t.Helper()
	b := bustest.OpenExternalURL(t, url, bustest.Prefix())
	t.Cleanup(func() { b.JetStream().DeleteKeyValue(context.Background(), b.Stream(gateway.BudgetBucket)) })
	return b
}

// newNode starts another node on the same database, bus and clock.
func (e *env) newNode(t testing.TB) *node {
	t.Helper()
	return e.newNodeOn(t, e.bus)
}

// newNodeOn starts another node on the same database and clock, with its
// own connection b to the bus.
func (e *env) newNodeOn(t testing.TB, b *bus.Bus) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := httpapi.New(httpapi.Config{Version: "test", AdminToken: adminToken, Logger: log, Registerer: reg})
	opts := gateway.Options{
		Auth:       testAuth{},
		Sealer:     e.sealer,
		Logger:     log,
		Registerer: reg,
		Now:        e.clock.Now,
		Bus:        b,
		// Flushes happen when the tests say.
		FlushInterval:   time.Hour,
		CacheTTL:        300 * time.Millisecond,
		UpstreamTimeout: 5 * time.Second,
	}
	if e.opts != nil {
		e.opts(&opts)
	}
	gw, err := gateway.New(e.db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.app.register(s)
	gw.Register(s)
	s.Use(gw.Middleware(s))
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.Close()
		gw.Close()
	})
	// Cleanups run last-in first-out: this one runs before the server
	// closes, so no slow handler keeps it open.
	t.Cleanup(e.app.unblock)
	return &node{t: t, gw: gw, srv: srv, reg: reg}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes a problem response and checks it has the right status
// and code.
func (r response) problem(t testing.TB, status int, code string) httpapi.Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p httpapi.Problem
	r.json(t, &p)
	if p.Code != code {
		t.Errorf("problem code %q, want %q (detail %q)", p.Code, code, p.Detail)
	}
	return p
}

// do sends a request. headers are name, value pairs; "Authorization" may be
// given a bare token, which is sent as a bearer token.
func (n *node) do(method, path, token, body string, headers ...string) response {
	n.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.srv.URL+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 20 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// admin sends a bank API request with the admin token.
func (n *node) admin(method, path, body string) response {
	n.t.Helper()
	return n.do(method, path, adminToken, body)
}

func (n *node) flush() {
	n.t.Helper()
	if err := n.gw.Flush(context.Background()); err != nil {
		n.t.Fatal(err)
	}
}

// Tokens used across the tests.
const (
	tokenA      = "app:app_a:accounts:read,payments:write"
	tokenB      = "app:app_b:accounts:read,payments:write"
	tokenARead  = "app:app_a:accounts:read"
	tokenDevOrg = "dev:dev_1:org_1"
)

// rejected reads causeway_gateway_rejected_total{code}.
func rejected(t testing.TB, n *node, code string) float64 {
	t.Helper()
	families, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "causeway_gateway_rejected_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// counter reads a counter without labels, 0 if it has not been created.
func counter(t testing.TB, n *node, name string) float64 {
	t.Helper()
	families, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
