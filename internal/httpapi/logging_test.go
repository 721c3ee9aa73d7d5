package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/testkit"
)

// A component logging with the request's context names the request, as
// the server's own request line does, each exactly once; a line logged
// without a request has no request_id.
func TestLogLinesOnARequestsPathCarryItsID(t *testing.T) {
	var logs testkit.SyncBuffer
	base := slog.New(slog.NewJSONHandler(&logs, nil))
	component := slog.New(httpapi.LogRequestIDs(base.Handler())).With("component", "test")
	s := httpapi.New(httpapi.Config{Version: "test", Logger: base, Registerer: prometheus.NewRegistry()})
	huma.Register(s.API, huma.Operation{OperationID: "work", Method: http.MethodPost, Path: "/v1/work"},
		func(ctx context.Context, _ *struct{}) (*struct{}, error) {
			component.InfoContext(ctx, "working")
			return nil, nil
		})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	res, err := http.Post(srv.URL+"/v1/work", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	id := res.Header.Get("X-Request-Id")
	component.InfoContext(context.Background(), "idle")

	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		seen[msg] = true
		n := strings.Count(line, `"request_id"`)
		switch msg {
		case "working", "request":
			if n != 1 || rec["request_id"] != id {
				t.Errorf("%q line has request_id %d times, %v; want once, %q: %s", msg, n, rec["request_id"], id, line)
			}
		case "idle":
			if n != 0 {
				t.Errorf("a line logged outside any request has a request_id: %s", line)
			}
		}
	}
	for _, msg := range []string{"working", "request", "idle"} {
		if !seen[msg] {
			t.Errorf("no %q line in %s", msg, logs.String())
		}
	}
	if h := httpapi.LogRequestIDs(component.Handler()); h != component.Handler() {
		t.Errorf("wrapping a wrapped handler wrapped it again")
	}
}
