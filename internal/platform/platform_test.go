package platform_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

func get(t *testing.T, url, token string, into any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if into != nil {
		if err := json.NewDecoder(res.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return res.StatusCode
}

type status struct {
	Version    string `json:"version"`
	Mode       string `json:"mode"`
	InstanceID string `json:"instance_id"`
	Database   struct {
		Healthy bool
		Engine  string
	}
	Bus struct {
		Healthy bool
		Kind    string
	}
	Leader bool `json:"leader"`
}

// TestOneNodeLeadsAndAnotherTakesOver: of two nodes on one PostgreSQL and
// one NATS, exactly one is the leader (it publishes the outbox and runs the
// periodic jobs), and when it stops the other takes over.
func TestOneNodeLeadsAndAnotherTakesOver(t *testing.T) {
	t.Parallel()
	cfg := platformtest.ScaleOut.Config(t)
	// Nodes of one installation share the secret key (it seals the token
	// signing keys, among others).
	cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	a := platformtest.Start(t, cfg)
	second := cfg
	second.DataDir = testkit.DataDir(t)
	b := platformtest.Start(t, second)
	leaders := func() (bool, bool) {
		var sa, sb status
		if code := get(t, a.URL+"/bank/v1/status", platformtest.AdminToken, &sa); code != 200 {
			t.Fatalf("status of a = %d", code)
		}
		if code := get(t, b.URL+"/bank/v1/status", platformtest.AdminToken, &sb); code != 200 {
			t.Fatalf("status of b = %d", code)
		}
		return sa.Leader, sb.Leader
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		la, lb := leaders()
		if la && lb {
			t.Fatal("both nodes say they lead")
		}
		if la || lb {
			if lb {
				a, b = b, a // a leads from here on
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no node took the lead within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The leader stops (releasing its lease); the other takes over.
	a.Close()
	deadline = time.Now().Add(30 * time.Second)
	for !b.Relay.HoldsLease() {
		if time.Now().After(deadline) {
			t.Fatal("the remaining node did not take the lead within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var st status
	if code := get(t, b.URL+"/bank/v1/status", platformtest.AdminToken, &st); code != 200 || !st.Leader {
		t.Errorf("status of the remaining node = %d, leader %v", code, st.Leader)
	}
}

func TestNodeAnswersHealthReadinessStatusAndOpenAPI(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		if code := get(t, n.URL+"/healthz", "", nil); code != 200 {
			t.Errorf("/healthz = %d", code)
		}
		if code := get(t, n.URL+"/readyz", "", nil); code != 200 {
			t.Errorf("/readyz = %d", code)
		}
		var st status
		if code := get(t, n.URL+"/bank/v1/status", platformtest.AdminToken, &st); code != 200 {
			t.Fatalf("/bank/v1/status = %d", code)
		}
		wantEngine, wantBus := "sqlite", "embedded"
		if rt.Name == "scaleout" {
			wantEngine, wantBus = "postgres", "external"
		}
		if st.Database.Engine != wantEngine || st.Bus.Kind != wantBus || !st.Database.Healthy || !st.Bus.Healthy ||
			st.Mode != "sandbox" || st.Version != "test" || !strings.HasPrefix(st.InstanceID, "ins_") {
			t.Errorf("status = %+v", st)
		}
		if code := get(t, n.URL+"/bank/v1/status", "", nil); code != 401 {
			t.Errorf("status without token = %d, want 401", code)
		}

		var doc struct {
			OpenAPI    string                    `json:"openapi"`
			Paths      map[string]map[string]any `json:"paths"`
			Components struct {
				SecuritySchemes map[string]any `json:"securitySchemes"`
			} `json:"components"`
		}
		if code := get(t, n.URL+"/openapi.json", "", &doc); code != 200 {
			t.Fatalf("/openapi.json = %d", code)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.1") {
			t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
		}
		if _, ok := doc.Paths["/bank/v1/status"]["get"]; !ok {
			t.Errorf("status route missing from the document: %v", doc.Paths)
		}
		for _, s := range []string{"bankAdmin", "oauth2", "developerToken"} {
			if doc.Components.SecuritySchemes[s] == nil {
				t.Errorf("security scheme %s missing", s)
			}
		}

		res, err := http.Get(n.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, m := range []string{"causeway_http_requests_total", "go_goroutines", `route="GET /healthz"`} {
			if !strings.Contains(string(body), m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
	})
}

func TestDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		ctx := context.Background()
		p, err := platform.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		first := instanceID(t, p)
		p.Close()
		p, err = platform.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if again := instanceID(t, p); again != first {
			t.Errorf("instance id changed across restart: %s -> %s", first, again)
		}
	})
}

func instanceID(t *testing.T, p *platform.Platform) string {
	t.Helper()
	var id string
	if err := p.DB.QueryRow("SELECT value FROM platform_meta WHERE key = 'instance_id'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAdminTokenIsGeneratedOnceIntoTheDataDir(t *testing.T) {
	t.Parallel()
	var logs testkit.SyncBuffer
	cfg := platformtest.Embedded.Config(t)
	cfg.AdminToken = ""
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	n := platformtest.Start(t, cfg)
	path := filepath.Join(cfg.DataDir, "admin-token")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode = %v, want 0600", info.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(raw))
	if len(token) < 32 {
		t.Fatalf("token %q too short", token)
	}
	if code := get(t, n.URL+"/bank/v1/status", token, nil); code != 200 {
		t.Errorf("generated token rejected: %d", code)
	}
	// The log names the file, never the token: logs are shipped and kept
	// where the admin token must not be.
	if strings.Contains(logs.String(), token) {
		t.Errorf("the admin token is in the log at first start:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"file":"`+path+`"`) {
		t.Errorf("the log does not name the token's file %s:\n%s", path, logs.String())
	}
	n.Close()

	// A restart reuses the file and does not log the token again.
	logs.Reset()
	n2 := platformtest.Start(t, cfg)
	if strings.Contains(logs.String(), token) {
		t.Error("token logged again on restart")
	}
	if code := get(t, n2.URL+"/bank/v1/status", token, nil); code != 200 {
		t.Errorf("token from file rejected after restart: %d", code)
	}
}

// TestReadinessAndRequestsFollowDatabaseAndBus runs a scale-out node whose
// PostgreSQL and NATS connections pass through proxies, cuts each, and
// checks that /readyz and a database-backed request answer 503 problems
// during the gap and recover afterwards.
func TestReadinessAndRequestsFollowDatabaseAndBus(t *testing.T) {
	t.Parallel()
	pgBase := testkit.Postgres.URL(t)
	natsURL := testkit.NATS.URL(t)
	pgProxy := testkit.NewProxy(t, testkit.HostPort(t, pgBase))
	natsProxy := testkit.NewProxy(t, testkit.HostPort(t, natsURL))

	cfg := platformtest.Embedded.Config(t)
	u, _ := url.Parse(storetest.SchemaURL(t, pgBase, storetest.NewSchema(t, pgBase)))
	u.Host = pgProxy.Addr()
	cfg.DatabaseURL = u.String()
	cfg.NATSURL = "nats://" + natsProxy.Addr()
	cfg.BusPrefix = bustest.Prefix()
	n := platformtest.Start(t, cfg)
	huma.Register(n.HTTP.API, huma.Operation{OperationID: "db-probe", Method: "GET", Path: "/v1/test-db-probe"},
		func(ctx context.Context, _ *struct{}) (*struct{}, error) {
			var one int
			return nil, store.Classify(n.DB.QueryRowContext(ctx, "SELECT 1").Scan(&one))
		})

	for _, tt := range []struct {
		name  string
		proxy *testkit.Proxy
	}{{"postgres", pgProxy}, {"nats", natsProxy}} {
		t.Run(tt.name, func(t *testing.T) {
			tt.proxy.Cut()
			testkit.WaitStatus(t, n.URL+"/readyz", 503)
			if tt.name == "postgres" {
				res, err := http.Get(n.URL + "/v1/test-db-probe")
				if err != nil {
					t.Fatal(err)
				}
				var p httpapi.Problem
				json.NewDecoder(res.Body).Decode(&p)
				res.Body.Close()
				if res.StatusCode != 503 || p.Code != "database_unavailable" {
					t.Errorf("db request while cut = %d %q, want 503 database_unavailable", res.StatusCode, p.Code)
				}
			}
			tt.proxy.Restore()
			testkit.WaitStatus(t, n.URL+"/readyz", 200)
			if code := get(t, n.URL+"/v1/test-db-probe", "", nil); code/100 != 2 {
				t.Errorf("db request after recovery = %d", code)
			}
		})
	}
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	p, err := platform.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	p.HTTP.Handle("GET /test-slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write([]byte("finished"))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, ln) }()

	var wg sync.WaitGroup
	var body string
	var code int
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, err := http.Get("http://" + ln.Addr().String() + "/test-slow")
		if err != nil {
			t.Errorf("in-flight request failed: %v", err)
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body, code = string(b), res.StatusCode
	}()
	<-entered
	cancel() // as SIGTERM does
	// The listener closes as draining starts; the held request goes on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted while draining")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if code != 200 || body != "finished" {
		t.Errorf("in-flight request = %d %q, want 200 finished", code, body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a clean shutdown", err)
	}
}

// TestStoppingNodeFailsReadinessBeforeItCloses: with a shutdown delay, a
// node told to stop answers /readyz with 503 "draining" while it still
// serves requests, so a load balancer takes it out before the listener
// closes.
func TestStoppingNodeFailsReadinessBeforeItCloses(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.ShutdownDelay = 8 * time.Second
	p, err := platform.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, ln) }()
	testkit.WaitStatus(t, base+"/readyz", 200)
	cancel() // as SIGTERM does
	testkit.WaitStatus(t, base+"/readyz", 503)
	var ready struct {
		Status string `json:"status"`
	}
	if code := get(t, base+"/readyz", "", &ready); code != 503 || ready.Status != "draining" {
		t.Errorf("readiness of a stopping node = %d %q, want 503 draining", code, ready.Status)
	}
	if code := get(t, base+"/healthz", "", nil); code != 200 {
		t.Errorf("a stopping node stopped serving during its delay: /healthz = %d", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return within 30s of the stop")
	}
}

// TestAdminTokenRotatesWithAnOverlap: a node given "new,old" accepts both
// admin tokens, so nodes can be restarted one by one onto a new token;
// any other token is refused.
func TestAdminTokenRotatesWithAnOverlap(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.AdminToken = "cwadm_new-token, cwadm_old-token"
	n := platformtest.Start(t, cfg)
	for token, want := range map[string]int{"cwadm_new-token": 200, "cwadm_old-token": 200, "cwadm_other": 401,
		"cwadm_new-token, cwadm_old-token": 401} {
		if code := get(t, n.URL+"/bank/v1/status", token, nil); code != want {
			t.Errorf("status with %q = %d, want %d", token, code, want)
		}
	}
}
