package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// BenchmarkGatewayOverhead serves the same huma operation through httpapi
// with and without the gateway in front, in process (no sockets), so the
// difference is the gateway's own cost: token check, scope, rate limit,
// quota and analytics; and, for POST with an Idempotency-Key, the two
// database writes that claim and complete the key (SQLite). The rate
// limit and quota are the shared budgets on an embedded NATS, as a node
// runs them, except in gateway-node-local (no bus).
func BenchmarkGatewayOverhead(b *testing.B) {
	newServer := func(withGateway, withBus bool) *httpapi.Server {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		s := httpapi.New(httpapi.Config{Version: "bench", AdminToken: adminToken, Logger: log, Registerer: prometheus.NewRegistry()})
		sec := oauth2(auth.ScopeAccountsRead)
		if !withGateway {
			sec = nil
		}
		type out struct {
			Body struct {
				OK bool `json:"ok"`
			}
		}
		handler := func(ctx context.Context, _ *struct{}) (*out, error) {
			o := &out{}
			o.Body.OK = true
			return o, nil
		}
		huma.Register(s.API, huma.Operation{OperationID: "get", Method: http.MethodGet, Path: "/v1/things", Security: sec}, handler)
		huma.Register(s.API, huma.Operation{OperationID: "post", Method: http.MethodPost, Path: "/v1/things", Security: sec}, handler)
		if withGateway {
			db := storetest.OpenSQLite(b)
			if err := gateway.Migrate(context.Background(), db); err != nil {
				b.Fatal(err)
			}
			var nats *bus.Bus
			if withBus {
				nats = bustest.OpenEmbedded(b, b.TempDir())
			}
			gw, err := gateway.New(db, gateway.Options{
				Auth:          testAuth{},
				Sealer:        testSealer(b),
				Bus:           nats,
				Logger:        log,
				DefaultLimits: gateway.Limits{RequestsPerSecond: 1e9, Burst: 1e9, DailyQuota: 1e15},
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := gw.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(gw.Close)
			s.Use(gw.Middleware(s))
		}
		return s
	}
	run := func(b *testing.B, s http.Handler, method string, key bool) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader(`{}`)
			}
			req := httptest.NewRequest(method, "/v1/things", body)
			req.Header.Set("Authorization", "Bearer "+tokenA)
			if method == http.MethodPost {
				req.Header.Set("Content-Type", "application/json")
			}
			if key {
				i++
				req.Header.Set("Idempotency-Key", "bench-"+strconv.Itoa(i)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d %s", w.Code, w.Body)
			}
		}
	}
	direct, gated, local := newServer(false, false), newServer(true, true), newServer(true, false)
	b.Run("direct", func(b *testing.B) { run(b, direct, http.MethodGet, false) })
	b.Run("gateway", func(b *testing.B) { run(b, gated, http.MethodGet, false) })
	b.Run("gateway-node-local", func(b *testing.B) { run(b, local, http.MethodGet, false) })
	b.Run("direct-post", func(b *testing.B) { run(b, direct, http.MethodPost, false) })
	b.Run("gateway-post-idempotency-key", func(b *testing.B) { run(b, gated, http.MethodPost, true) })
}
