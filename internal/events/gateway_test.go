package events_test

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// tokenAuth stands in for the identity package: the access token
// "app_a events:read" is app app_a with scope events:read.
type tokenAuth struct{}

func (tokenAuth) AuthenticateApp(_ context.Context, bearer string) (*auth.App, error) {
	id, scopes, ok := strings.Cut(bearer, " ")
	if !ok {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the access token is not valid")
	}
	return &auth.App{ID: id, Scopes: strings.Fields(scopes)}, nil
}

func (tokenAuth) AuthenticateDeveloper(context.Context, string) (*auth.Developer, error) {
	return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "no developers here")
}

func (tokenAuth) AppOrganization(context.Context, string) (string, error) { return "org_1", nil }

// TestRoutesThroughTheRealGateway wires the service the way the platform
// does, behind the gateway: the routes ask for events:read, and the stream
// flushes through the gateway's and the HTTP layer's response wrappers.
func TestRoutesThroughTheRealGateway(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	if err := gateway.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, db, bustest.OpenEmbedded(t, t.TempDir()), events.Options{Heartbeat: time.Hour})
	e.access.grant("app_a", "cus_a")
	log := slog.New(slog.DiscardHandler)
	srv := httpapi.New(httpapi.Config{Version: "test", AdminToken: adminToken, Logger: log, Registerer: prometheus.NewRegistry()})
	sealer, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(db, gateway.Options{Auth: tokenAuth{}, Sealer: sealer, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	srv.Use(g.Middleware(srv))
	e.svc.Register(srv)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, path := range []string{"/v1/event-types", "/v1/events", "/v1/events/stream"} {
		for token, want := range map[string]int{"": 401, "app_a accounts:read": 403} {
			res := get(path, token)
			res.Body.Close()
			if res.StatusCode != want {
				t.Errorf("GET %s with token %q = %d, want %d", path, token, res.StatusCode, want)
			}
		}
	}
	if res := get("/v1/event-types", "app_a events:read"); res.StatusCode != 200 {
		t.Errorf("GET /v1/event-types with events:read = %d", res.StatusCode)
	}

	res := get("/v1/events/stream", "app_a events:read")
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("stream = %d", res.StatusCode)
	}
	want := publishMix(t, e, 1)[0]
	lines, done := make(chan string), make(chan struct{})
	defer close(done)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-lines:
			if line == "id: "+want {
				return
			}
		case <-timeout:
			t.Fatal("the event did not come through the gateway within 10s")
		}
	}
}
