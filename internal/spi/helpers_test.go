package spi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/store"
)

const adminToken = "admin-secret"

// Every test endpoint listens on loopback, which the guard refuses unless
// the operator allows it, as --allow-private-targets 127.0.0.0/8 does.
var loopback = netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newService migrates db and returns a Service over it that may call
// loopback, with a breaker that opens after 3 failures.
func newService(t testing.TB, db *store.DB, adjust ...func(*spi.Options)) *spi.Service {
	t.Helper()
	if err := spi.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	// The bank's decisions on registrations append to the audit trail.
	if err := audit.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	opts := spi.Options{
		Sealer: sealer, Guard: loopback, Registerer: prometheus.NewRegistry(), Logger: quiet,
		BreakerFailures: 3, BreakerOpenFor: time.Minute,
	}
	for _, f := range adjust {
		f(&opts)
	}
	s, err := spi.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// fraudPayload satisfies the payments.fraud-check request schema.
func fraudPayload() map[string]any {
	return map[string]any{
		"payment": map[string]any{"id": "pay_1", "debtor_account_id": "acc_1",
			"amount": map[string]any{"amount": "12.34", "currency": "EUR"}, "reference": "rent"},
		"debtor": map[string]any{"id": "cus_1", "type": "person", "name": "Ada Lovelace"},
	}
}

// fraud is a fraud-check answer.
type fraud struct {
	Decision string `json:"decision"`
	Score    int    `json:"score"`
	Reason   string `json:"reason,omitempty"`
}

func approve(score int, reason string) fraud {
	return fraud{Decision: "approve", Score: score, Reason: reason}
}

func decode(t testing.TB, raw []byte) fraud {
	t.Helper()
	var f fraud
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return f
}

// appReg registers an app-scope endpoint, active at once.
func appReg(t testing.TB, s *spi.Service, app, point, url string, n spi.NewRegistration) (*spi.Registration, string) {
	t.Helper()
	n.ExtensionPoint, n.URL, n.Scope = point, url, spi.ScopeApp
	r, secret, err := s.CreateRegistration(context.Background(), auth.AppCaller(app), n)
	if err != nil {
		t.Fatal(err)
	}
	return r, secret
}

// bankReg registers a bank-scope endpoint and activates it as a; it is
// deactivated when the (sub)test ends, so later subtests start clean.
func bankReg(t testing.TB, s *spi.Service, app, point, url string, a spi.Activation) *spi.Registration {
	t.Helper()
	ctx := context.Background()
	r, _, err := s.CreateRegistration(ctx, auth.AppCaller(app), spi.NewRegistration{ExtensionPoint: point, URL: url, Scope: spi.ScopeBank})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != spi.StatusPendingActivation {
		t.Fatalf("new bank-scope registration is %s", r.Status)
	}
	r, err = s.Activate(ctx, auth.BankProcess(), r.ID, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Deactivate(context.Background(), auth.BankProcess(), r.ID) })
	return r
}

func priority(n int) *int { return &n }

func call(t testing.TB, s *spi.Service, app string) core.ExtensionAnswer {
	t.Helper()
	a, err := s.Call(context.Background(), core.ExtensionCall{Point: core.PointFraudCheck, AppID: app, Payload: fraudPayload()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func invocations(t testing.TB, s *spi.Service, regID string) []*spi.Invocation {
	t.Helper()
	p, err := s.Invocations(context.Background(), auth.BankProcess(), regID, 200, "")
	if err != nil {
		t.Fatal(err)
	}
	return p.Data
}

// api serves the Service's routes the way the platform does. The gateway
// is replaced by a middleware that trusts an X-Test-App header ("app_a" or
// "app_a:spi:write") and puts that app in the context.
type api struct {
	url string
	doc *openapitest.Validator
}

func newAPI(t *testing.T, s *spi.Service) *api {
	t.Helper()
	srv := httpapi.New(httpapi.Config{AdminToken: adminToken, Registerer: prometheus.NewRegistry(), Logger: quiet})
	s.Register(srv)
	srv.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := r.Header.Get("X-Test-App"); h != "" {
				id, scopes, _ := strings.Cut(h, ":")
				r = r.WithContext(auth.WithApp(r.Context(), &auth.App{ID: id, Scopes: strings.Split(scopes, ",")}))
			}
			next.ServeHTTP(w, r)
		})
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &api{url: hs.URL, doc: openapitest.Fetch(t, hs.URL)}
}

// do sends a request as app ("" with the admin token under /bank/v1) and
// checks the response against the OpenAPI document at pattern, unless
// pattern is "".
func (a *api) do(t *testing.T, app, method, path, pattern string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if app != "" {
		req.Header.Set("X-Test-App", app)
	} else {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if pattern != "" {
		a.doc.Check(t, method, pattern, res.StatusCode, res.Header.Get("Content-Type"), raw)
	}
	return res.StatusCode, raw
}

func into[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

// definePointLike defines a bank point called name with the schemas,
// deadlines and stand-in of the point like, and the combination rule c.
func definePointLike(t testing.TB, s *spi.Service, name, like string, c spi.Combination) *spi.Point {
	t.Helper()
	ctx := context.Background()
	p, err := s.Point(ctx, like)
	if err != nil {
		t.Fatal(err)
	}
	defined, err := s.DefinePoint(ctx, spi.NewPoint{Name: name, RequestSchema: p.RequestSchema, ResponseSchema: p.ResponseSchema,
		DefaultTimeoutMS: p.DefaultTimeoutMS, MaxTimeoutMS: p.MaxTimeoutMS, StandIn: p.StandIn, Combine: c})
	if err != nil {
		t.Fatal(err)
	}
	return defined
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
