package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/testkit"
)

type echoInput struct {
	Body struct {
		Name  string `json:"name" minLength:"1" maxLength:"20"`
		Count int    `json:"count,omitempty" minimum:"0"`
	}
}

type echoOutput struct {
	Body struct {
		Greeting string `json:"greeting"`
	}
}

func newTestServer(t *testing.T, logs io.Writer) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := httpapi.New(httpapi.Config{
		Version:      "test",
		AdminToken:   "s3cret-admin",
		Logger:       slog.New(slog.NewJSONHandler(logs, nil)),
		Registerer:   reg,
		MaxBodyBytes: 1024,
	})
	huma.Register(s.API, huma.Operation{OperationID: "echo", Method: http.MethodPost, Path: "/v1/echo"},
		func(ctx context.Context, in *echoInput) (*echoOutput, error) {
			switch in.Body.Name {
			case "missing":
				return nil, causeway.Errorf(causeway.ENOTFOUND, "customer_not_found", "no customer %s", "cus_1")
			case "broke":
				return nil, causeway.Errorf(causeway.ECONFLICT, "insufficient_funds", "balance too low")
			case "down":
				return nil, errors.Join(errors.New("dial tcp: connection refused"),
					causeway.Errorf(causeway.EUNAVAILABLE, "database_unavailable", "the database is unavailable"))
			case "bug":
				return nil, errors.New("secret internal detail: pq: relation does not exist")
			case "panic":
				panic("handler panic")
			}
			out := &echoOutput{}
			out.Body.Greeting = "hello " + in.Body.Name
			return out, nil
		})
	huma.Register(s.Bank, huma.Operation{OperationID: "bank-ping", Method: http.MethodGet, Path: "/ping"},
		func(ctx context.Context, _ *struct{}) (*echoOutput, error) {
			out := &echoOutput{}
			out.Body.Greeting = "bank"
			return out, nil
		})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, reg
}

func decodeProblem(t *testing.T, res *http.Response) httpapi.Problem {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p httpapi.Problem
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	if p.Type == "" || p.Title == "" || p.Status != res.StatusCode || p.Code == "" {
		t.Errorf("incomplete problem: %+v (status %d)", p, res.StatusCode)
	}
	if p.RequestID == "" || p.RequestID != res.Header.Get("X-Request-Id") {
		t.Errorf("problem request_id %q, header %q", p.RequestID, res.Header.Get("X-Request-Id"))
	}
	return p
}

func TestErrorsBecomeProblemsWithStableCodes(t *testing.T) {
	var logs testkit.SyncBuffer
	srv, _ := newTestServer(t, &logs)
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"malformed json", "application/json", `{"name":`, 400, "bad_request"},
		{"wrong content type", "text/plain", `name=x`, 415, "unsupported_media_type"},
		{"oversize body", "application/json", `{"name":"` + strings.Repeat("x", 2000) + `"}`, 413, "body_too_large"},
		{"schema violation", "application/json", `{"name":"","count":-1}`, 422, "validation_failed"},
		{"unknown field type", "application/json", `{"name":5}`, 422, "validation_failed"},
		{"domain not found", "application/json", `{"name":"missing"}`, 404, "customer_not_found"},
		{"domain conflict", "application/json", `{"name":"broke"}`, 409, "insufficient_funds"},
		{"dependency down", "application/json", `{"name":"down"}`, 503, "database_unavailable"},
		{"bug", "application/json", `{"name":"bug"}`, 500, "internal"},
		{"panic", "application/json", `{"name":"panic"}`, 500, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := http.Post(srv.URL+"/v1/echo", tt.contentType, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			p := decodeProblem(t, res)
			if p.Code != tt.code {
				t.Errorf("code = %q, want %q (detail %q)", p.Code, tt.code, p.Detail)
			}
			if strings.Contains(p.Detail, "secret internal detail") {
				t.Errorf("a 500 leaked internals: %q", p.Detail)
			}
		})
	}
	if !strings.Contains(logs.String(), "secret internal detail") {
		t.Error("the internal error was not logged for operators")
	}
}

func TestSuccessAndUnknownRoutes(t *testing.T) {
	srv, _ := newTestServer(t, io.Discard)
	res, err := http.Post(srv.URL+"/v1/echo", "application/json", strings.NewReader(`{"name":"ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Greeting string }
	json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if res.StatusCode != 200 || out.Greeting != "hello ada" {
		t.Errorf("echo = %d %q", res.StatusCode, out.Greeting)
	}

	res, err = http.Get(srv.URL + "/v1/no-such-route")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("unknown route status = %d", res.StatusCode)
	}
	if p := decodeProblem(t, res); p.Code != "not_found" {
		t.Errorf("code = %q", p.Code)
	}
}

func TestRequestIDIsGeneratedOrPropagated(t *testing.T) {
	srv, _ := newTestServer(t, io.Discard)
	res, _ := http.Get(srv.URL + "/v1/nothing")
	res.Body.Close()
	if id := res.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("generated request id = %q", id)
	}
	for _, tt := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"bad id with spaces", ""},
		{strings.Repeat("x", 200), ""},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/nothing", nil)
		req.Header.Set("X-Request-Id", tt.sent)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := res.Header.Get("X-Request-Id")
		if tt.want != "" && got != tt.want {
			t.Errorf("sent %q, got %q", tt.sent, got)
		}
		if tt.want == "" && (got == tt.sent || !strings.HasPrefix(got, "req_")) {
			t.Errorf("unsafe id %q was echoed as %q", tt.sent, got)
		}
	}
}

func TestBankRoutesNeedTheAdminToken(t *testing.T) {
	srv, _ := newTestServer(t, io.Discard)
	for _, tt := range []struct {
		auth   string
		status int
	}{
		{"", 401},
		{"Bearer wrong", 401},
		{"Basic czNjcmV0LWFkbWlu", 401},
		{"Bearer s3cret-admin-but-longer", 401},
		{"Bearer s3cret-admin", 200},
		{"bearer s3cret-admin", 200},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/bank/v1/ping", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tt.status {
			t.Errorf("Authorization %q: status %d, want %d", tt.auth, res.StatusCode, tt.status)
		}
		if tt.status == 401 {
			if p := decodeProblem(t, res); p.Code != "unauthorized" {
				t.Errorf("code = %q", p.Code)
			}
		}
		res.Body.Close()
	}
}

func TestMetricsCountRequestsByRoutePattern(t *testing.T) {
	srv, reg := newTestServer(t, io.Discard)
	for _, name := range []string{"a", "b", "missing"} {
		res, err := http.Post(srv.URL+"/v1/echo", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "causeway_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			counts[labels["route"]+" "+labels["status"]] += m.GetCounter().GetValue()
		}
	}
	if counts["POST /v1/echo 200"] != 2 || counts["POST /v1/echo 404"] != 1 {
		t.Errorf("request counts = %v", counts)
	}
	if n := testutil.CollectAndCount(reg, "causeway_http_request_duration_seconds"); n == 0 {
		t.Error("no latency histogram")
	}
}

// A handler that runs longer than the time allowed to read its body keeps
// its context, and the keep-alive connection it ran on still serves. When
// middleware had read the body first (the gateway does, for idempotency
// keys), huma's body-read deadline was set under net/http's background read
// and fired while the handler ran: the slow request's context was
// cancelled, and so was every later request's on that connection (each
// answered 500 "context canceled").
func TestSlowHandlerOutlivesTheBodyReadDeadline(t *testing.T) {
	s := httpapi.New(httpapi.Config{Version: "test", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	s.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body) // as the gateway's idempotency check does
			r.Body = io.NopCloser(strings.NewReader(string(b)))
			next.ServeHTTP(w, r)
		})
	})
	const readTimeout = 50 * time.Millisecond
	huma.Register(s.API, huma.Operation{OperationID: "slow", Method: http.MethodPost, Path: "/v1/slow", BodyReadTimeout: readTimeout},
		func(ctx context.Context, in *echoInput) (*echoOutput, error) {
			if in.Body.Name == "slow" {
				// Outlive the read deadline several times over.
				select {
				case <-ctx.Done():
					return nil, causeway.Errorf(causeway.EUNAVAILABLE, "cancelled", "the request's context was cancelled: %v", ctx.Err())
				case <-time.After(8 * readTimeout):
				}
			}
			out := &echoOutput{}
			out.Body.Greeting = "done"
			return out, nil
		})
	srv := httptest.NewServer(s)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}} // one keep-alive connection for both
	defer client.CloseIdleConnections()
	for _, name := range []string{"slow", "fast"} {
		res, err := client.Post(srv.URL+"/v1/slow", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s request: %d %s", name, res.StatusCode, b)
		}
	}
}
