package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causewayhq/causeway/client"
	"github.com/causewayhq/causeway/internal/testkit"
)

// binary is the causeway command, built once without -race: these tests
// drive the real process the way an operator does.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "causeway-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "causeway")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build causeway:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the environment without any CAUSEWAY_ setting of the caller.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAUSEWAY_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func TestServeFailsWithOneClearLine(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o600)
	readOnly := filepath.Join(t.TempDir(), "ro")
	os.Mkdir(readOnly, 0o500)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"serve", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{"bad mode", []string{"serve", "--mode", "chaos"}, `mode "chaos"`},
		{"bad allow list", []string{"serve", "--allow-private-targets", "10.0.0.0/99"}, "allow-private-targets"},
		{"short event retention", []string{"serve", "--event-retention", "5m"}, "event retention must be at least 1h0m0s"},
		{"replicas on the embedded bus", []string{"serve", "--event-replicas", "3"}, "event-replicas 3 needs --nats-url"},
		{"no sign-ups", []string{"serve", "--signup-rate", "0"}, "signup-rate 0: must be at least 1"},
		{"no apps", []string{"serve", "--max-apps-per-developer", "-1"}, "max-apps-per-developer -1: must be at least 1"},
		{"no login window", []string{"serve", "--login-window", "0s"}, "login-window 0s: must be positive"},
		{"bad trusted proxy", []string{"serve", "--trusted-proxies", "10.0.0.300"}, "trusted-proxies"},
		{"data dir is a file", []string{"serve", "--data-dir", file, "--addr", "127.0.0.1:0"}, "data dir"},
		{"unreachable postgres", []string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0",
			"--database-url", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"}, "database: postgres 127.0.0.1:1/test"},
		{"unreachable nats", []string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0",
			"--nats-url", "nats://127.0.0.1:1"}, "bus: nats 127.0.0.1:1"},
		{"production without a public URL", []string{"serve", "--mode", "production", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"},
			"production mode needs --public-url"},
		{"production with an http public URL", []string{"serve", "--mode", "production", "--public-url", "http://api.bank.example",
			"--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}, "needs an https:// URL"},
		{"production with a weak admin token", []string{"serve", "--mode", "production", "--public-url", "https://api.bank.example",
			"--admin-token", "from-env-token", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}, "admin-token: a token of 14 characters is too short"},
		{"public URL with a path", []string{"serve", "--public-url", "https://bank.example/api", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"},
			"scheme and host only"},
		{"missing target CA file", []string{"serve", "--target-ca-file", filepath.Join(t.TempDir(), "none.pem")}, "target-ca-file"},
		{"target CA file without a certificate", []string{"serve", "--target-ca-file", file}, "no PEM certificate"},
		{"oidc issuer without a client id", []string{"serve", "--oidc-issuer", "https://login.bank.example"}, "oidc-issuer and oidc-client-id"},
		{"oidc role map to no role", []string{"serve", "--oidc-issuer", "https://login.bank.example", "--oidc-client-id", "c",
			"--oidc-role-map", "ops=root"}, "oidc-role-map"},
		{"oidc secret and its file", []string{"serve", "--oidc-client-secret", "s", "--oidc-client-secret-file", file}, "not both"},
		{"missing oidc secret file", []string{"serve", "--oidc-client-secret-file", filepath.Join(t.TempDir(), "none")}, "oidc-client-secret-file"},
		{"oidc over http in production", []string{"serve", "--mode", "production", "--public-url", "https://api.bank.example",
			"--oidc-issuer", "http://login.bank.example", "--oidc-client-id", "c", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"},
			"production mode needs an https:// issuer"},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"read-only data dir", []string{"serve", "--data-dir", readOnly, "--addr", "127.0.0.1:0"}, "not writable"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Env = cleanEnv()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatal("exited 0")
			}
			out := strings.TrimRight(stderr.String(), "\n")
			if strings.Count(out, "\n") != 0 {
				t.Errorf("want one line, got:\n%s", out)
			}
			if !strings.HasPrefix(out, "causeway: ") || !strings.Contains(out, tt.want) {
				t.Errorf("stderr = %q, want a causeway: line containing %q", out, tt.want)
			}
		})
	}
}

// throttlesOff raises the sign-up, login, app and stream limits of a
// `causeway serve` far beyond what a test does from 127.0.0.1; earlier
// settings in an env list are overridden by later ones.
func throttlesOff() []string {
	return []string{"CAUSEWAY_SIGNUP_RATE=1000000", "CAUSEWAY_LOGIN_FAILURES_PER_ACCOUNT=1000000",
		"CAUSEWAY_LOGIN_FAILURES_PER_ADDRESS=1000000", "CAUSEWAY_MAX_APPS_PER_DEVELOPER=1000000",
		"CAUSEWAY_MAX_STREAMS_PER_APP=1000000"}
}

func startServe(t *testing.T, dataDir string, env ...string) (*exec.Cmd, string, *testkit.SyncBuffer) {
	t.Helper()
	addr := testkit.FreePort(t)
	cmd := exec.Command(binary, "serve", "--data-dir", dataDir)
	cmd.Env = cleanEnv(append(append(throttlesOff(), env...), "CAUSEWAY_ADDR="+addr)...)
	var logs testkit.SyncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return cmd, base, &logs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready in 30s; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func status(t *testing.T, base, token string) (code int, st map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/bank/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	json.NewDecoder(res.Body).Decode(&st)
	return res.StatusCode, st
}

func TestServeStartsStopsOnSIGTERMAndKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, base, logs := startServe(t, dir)
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	code, st := status(t, base, strings.TrimSpace(string(token)))
	if code != 200 || st["mode"] != "sandbox" {
		t.Fatalf("status = %d %v", code, st)
	}
	if strings.Contains(logs.String(), strings.TrimSpace(string(token))) {
		t.Errorf("the generated admin token is in the log:\n%s", logs.String())
	}
	first := st["instance_id"]

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "shut down cleanly") {
		t.Errorf("no clean shutdown in logs:\n%s", logs.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %q", line)
		}
	}

	_, base, _ = startServe(t, dir)
	_, st = status(t, base, strings.TrimSpace(string(token)))
	if st["instance_id"] != first {
		t.Errorf("instance id after restart = %v, want %v", st["instance_id"], first)
	}
}

func TestServeReadsEnvironment(t *testing.T) {
	t.Parallel()
	const token = "cwadm_from-env-7Qm3vX8pL2rT9wK4nB7yH1cF"
	_, base, _ := startServe(t, t.TempDir(), "CAUSEWAY_ADMIN_TOKEN="+token, "CAUSEWAY_MODE=production",
		"CAUSEWAY_PUBLIC_URL=https://api.bank.example", "CAUSEWAY_METRICS_TOKEN=scraper-token")
	code, st := status(t, base, token)
	if code != 200 || st["mode"] != "production" {
		t.Errorf("status with env token = %d %v", code, st)
	}
	var meta struct{ Issuer string }
	if code := getJSON(t, base+"/.well-known/oauth-authorization-server", "", &meta); code != 200 || meta.Issuer != "https://api.bank.example" {
		t.Errorf("metadata = %d %+v, want the issuer from CAUSEWAY_PUBLIC_URL", code, meta)
	}
	if code := getJSON(t, base+"/metrics", "", nil); code != 401 {
		t.Errorf("/metrics without CAUSEWAY_METRICS_TOKEN's token = %d, want 401", code)
	}
	if code := getJSON(t, base+"/metrics", "scraper-token", nil); code != 200 {
		t.Errorf("/metrics with CAUSEWAY_METRICS_TOKEN's token = %d, want 200", code)
	}
}

// TestServeTakesSingleSignOnSettingsFromTheEnvironment: with the
// CAUSEWAY_OIDC_* variables (the secret from its file) a node starts,
// though nothing answers at the provider's address, and logs its single
// sign-on settings with the redirect URL to register, never the secret.
func TestServeTakesSingleSignOnSettingsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	const secret = "oidc-client-secret-4c1d9e"
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base, logs := startServe(t, t.TempDir(), "CAUSEWAY_OIDC_ISSUER=http://127.0.0.1:1/realms/staff",
		"CAUSEWAY_OIDC_CLIENT_ID=causeway-console", "CAUSEWAY_OIDC_CLIENT_SECRET_FILE="+secretFile,
		"CAUSEWAY_OIDC_ROLE_CLAIM=realm_access.roles", "CAUSEWAY_OIDC_ROLE_MAP=CN=Risk,OU=Groups=risk-officer,ops=admin")
	var line struct {
		Issuer      string
		RedirectURL string `json:"redirect_url"`
		RoleClaim   string `json:"role_claim"`
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"single sign-on for the console"`) {
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line.Issuer != "http://127.0.0.1:1/realms/staff" || line.RedirectURL != base+"/console/sso/callback" || line.RoleClaim != "realm_access.roles" {
		t.Errorf("single sign-on log line = %+v, want the issuer, %s/console/sso/callback and the role claim", line, base)
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the logs hold the OpenID Connect client secret")
	}
}

// TestServeIssuerIsTheListenAddress: without --public-url the issuer is
// http://localhost:PORT for an unspecified host, with the port actually
// bound when --addr asks for port 0.
func TestServeIssuerIsTheListenAddress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve", "--data-dir", dir, "--addr", ":0")
	cmd.Env = cleanEnv()
	var logs testkit.SyncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The serving line names the address bound and the issuer.
	var line struct {
		Addr      string
		PublicURL string `json:"public_url"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for line.Addr == "" {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `"msg":"causeway serving"`) {
				json.Unmarshal([]byte(l), &line)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line in 30s; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(line.Addr, "[::]"), ":")
	if want := "http://localhost:" + port; line.PublicURL != want || port == "0" || port == "" {
		t.Fatalf("serving on %s with issuer %q, want %q", line.Addr, line.PublicURL, want)
	}
	var meta struct{ Issuer string }
	if code := getJSON(t, "http://127.0.0.1:"+port+"/.well-known/oauth-authorization-server", "", &meta); code != 200 || meta.Issuer != line.PublicURL {
		t.Errorf("metadata = %d %+v, want issuer %s", code, meta, line.PublicURL)
	}
}

// getJSON sends a GET with an optional bearer token and decodes a JSON
// answer into into.
func getJSON(t *testing.T, url, token string, into any) int {
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
		json.NewDecoder(res.Body).Decode(into)
	}
	return res.StatusCode
}

var interrupt = syscall.SIGTERM

// paymentScopes are what an app that pays and follows its events holds.
var paymentScopes = []string{"accounts:read", "payments:write", "events:read", "webhooks:write"}

// newTenant signs up a developer organization named name with one app
// holding scopes, whose rate limit is out of the way (the sandbox default
// of 50 requests/s would make a load test a test of the rate limiter), and
// returns the app, an SDK client for it and its seeded current accounts
// (at least two).
func newTenant(t *testing.T, n *node, name string, scopes ...string) (*client.App, *client.Client, []string) {
	t.Helper()
	ctx := context.Background()
	dev, err := client.SignUp(ctx, n.base, name+"@tenants.example", "a long enough passphrase", name)
	if err != nil {
		t.Fatal(err)
	}
	app, err := dev.CreateApp(ctx, name+" app", scopes)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := n.call("PUT", "/apps/"+app.ID+"/limits", map[string]any{
		"requests_per_second": 100000, "burst": 100000, "daily_quota": 100000000}, nil); err != nil || code != 200 {
		t.Fatalf("raise limits: %d %v", code, err)
	}
	api := client.New(n.base, app.ClientID, app.ClientSecret)
	var accounts []string
	for acc, err := range api.AllAccounts(ctx, client.AccountFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if acc.Product == "current" {
			accounts = append(accounts, acc.ID)
		}
	}
	if len(accounts) < 2 {
		t.Fatalf("%s: %d seeded current accounts, want at least 2", name, len(accounts))
	}
	return app, api, accounts
}
