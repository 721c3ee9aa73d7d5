package datashare_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/testkit"
)

const adminToken = "cwadm_datashare-test"

// hub is the hub side under test: the datashare service and its handlers
// on a real httpapi server over db, with a stand-in gateway that takes
// "Bearer app_<x>" as app app_<x> holding data:read.
type hub struct {
	t       *testing.T
	db      *store.DB
	svc     *datashare.Service
	blobs   datashare.BlobStore
	url     string
	dataDir string
	clock   *testkit.Clock
	logs    *testkit.SyncBuffer
}

type hubOption func(*datashare.Options)

func newHub(t *testing.T, db *store.DB, opts ...hubOption) *hub {
	t.Helper()
	ctx := context.Background()
	if err := outbox.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := datashare.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// The bank's decisions append to the audit trail.
	if err := audit.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	h := &hub{t: t, db: db, dataDir: testkit.DataDir(t), clock: &testkit.Clock{}, logs: &testkit.SyncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := datashare.Options{DataDir: h.dataDir, Logger: logger, Now: h.clock.Now}
	for _, f := range opts {
		f(&o)
	}
	if o.Blobs == nil {
		o.Blobs = datashare.DefaultBlobs(db, o.DataDir)
	}
	h.blobs = o.Blobs
	svc, err := datashare.New(db, o)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	srv := httpapi.New(httpapi.Config{Version: "test", AdminToken: adminToken, Logger: logger, Registerer: prometheus.NewRegistry()})
	srv.Use(fakeGateway(srv))
	svc.Register(srv)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

// fakeGateway stands in for the platform's gateway: on routes that
// declare oauth2 security it takes "Bearer app_<x>" as the app app_<x>
// with the data:read scope ("Bearer noscope_<x>": without it).
func fakeGateway(s *httpapi.Server) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pattern := s.Route(r)
			needsApp := false
			for _, req := range s.Security(pattern) {
				if _, ok := req[httpapi.SchemeAppOAuth2]; ok {
					needsApp = true
				}
			}
			if !needsApp {
				next.ServeHTTP(w, r)
				return
			}
			token, _ := httpapi.BearerToken(r.Header.Get("Authorization"))
			var app *auth.App
			switch {
			case strings.HasPrefix(token, "app_"):
				app = &auth.App{ID: token, Scopes: []string{auth.ScopeDataRead}}
			case strings.HasPrefix(token, "noscope_"):
				httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusForbidden, "insufficient_scope", "needs data:read"))
				return
			default:
				httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusUnauthorized, "unauthorized", "an app access token is required"))
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.WithApp(r.Context(), app)))
		})
	}
}

// do sends a JSON request with a bearer token and returns the status, the
// headers and the body.
func (h *hub) do(method, path, token string, body any) (int, http.Header, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// json sends a request, expects status want and decodes the body into out.
func (h *hub) json(method, path, token string, body any, want int, out any) {
	h.t.Helper()
	code, _, b := h.do(method, path, token, body)
	if code != want {
		h.t.Fatalf("%s %s = %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// problem expects a problem with status and code.
func (h *hub) problem(method, path, token string, body any, status int, code string) http.Header {
	h.t.Helper()
	got, hd, b := h.do(method, path, token, body)
	var p struct {
		Code string `json:"code"`
	}
	json.Unmarshal(b, &p)
	if got != status || p.Code != code {
		h.t.Fatalf("%s %s = %d %s, want %d %s: %s", method, path, got, p.Code, status, code, b)
	}
	if ct := hd.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		h.t.Errorf("%s %s: Content-Type %q, want application/problem+json", method, path, ct)
	}
	return hd
}

// publishSynthetic publishes a synthetic dataset of rows rows.
func (h *hub) publishSynthetic(name string, rows int64) *datashare.Dataset {
	h.t.Helper()
	var d datashare.Dataset
	h.json("POST", "/bank/v1/datasets", adminToken, datashare.NewDataset{
		Name: name, Licence: "test", Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenSynthetic, Rows: rows, Seed: 7},
	}, 201, &d)
	return &d
}

// request files an access request for app and returns it.
func (h *hub) request(app, datasetID, recipient string) *datashare.AccessRequest {
	h.t.Helper()
	var r datashare.AccessRequest
	h.json("POST", "/v1/dataset-access-requests", app, map[string]any{
		"dataset_id": datasetID, "purpose": "train a churn model", "duration_days": 30, "recipient": recipient,
	}, 201, &r)
	return &r
}

func (h *hub) approve(id string) *datashare.AccessRequest {
	h.t.Helper()
	var r datashare.AccessRequest
	h.json("POST", "/bank/v1/dataset-access-requests/"+id+"/approve", adminToken, map[string]any{"by": "officer@bank", "reason": "fine"}, 200, &r)
	return &r
}

// runProducer runs an in-process agent until the test ends.
func (h *hub) runProducer(a *agent.Agent) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.svc.RunProducer(ctx, a)
	}()
	h.t.Cleanup(func() { cancel(); <-done })
}

// waitReady polls the content until it is ready and returns the
// ciphertext.
func (h *hub) waitReady(app, id, format string) ([]byte, http.Header) {
	h.t.Helper()
	path := "/v1/dataset-access-requests/" + id + "/content"
	if format != "" {
		path += "?format=" + format
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, hd, b := h.do("GET", path, app, nil)
		if code == 200 {
			return b, hd
		}
		if code != 409 || time.Now().After(deadline) {
			h.t.Fatalf("content = %d: %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newAgent(t testing.TB, db *store.DB, dirs ...string) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{DB: db, PseudonymKey: bytes.Repeat([]byte{7}, 32), AllowedDirs: dirs,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func decrypt(t testing.TB, ciphertext []byte, id age.Identity) []byte {
	t.Helper()
	r, err := age.Decrypt(bytes.NewReader(ciphertext), id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// synthetic returns the plaintext the synthetic generator makes.
func synthetic(t testing.TB, format string, rows, seed int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := agent.Synthetic(context.Background(), &buf, format, rows, seed); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
