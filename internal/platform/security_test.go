package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// Issue 15's findings on the issuer and on what production mode leaves
// open, as they were found.

// metadataAs fetches the OAuth2 metadata from base, sending host as Host
// and https as X-Forwarded-Proto: what a caller who wants the document to
// name a host of theirs sends, hoping a cache keeps the answer.
func metadataAs(t *testing.T, base, host string) (identity.Metadata, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+identity.MetadataPath, nil)
	req.Host = host
	req.Header.Set("X-Forwarded-Proto", "https")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var meta identity.Metadata
	if err := json.NewDecoder(res.Body).Decode(&meta); err != nil {
		t.Fatal(err)
	}
	return meta, res
}

// tokenAs gets an access token from base's token endpoint, sending host as
// Host, and returns its "iss".
func tokenAs(t *testing.T, base, host, clientID, secret string) (token, iss string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+identity.TokenPath, strings.NewReader("grant_type=client_credentials"))
	req.Host = host
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&body)
	parsed, err := jwt.ParseString(body.AccessToken, jwt.WithVerify(false))
	if err != nil {
		t.Fatalf("token asked as Host %s: %d %v", host, res.StatusCode, err)
	}
	iss, _ = parsed.Issuer()
	return body.AccessToken, iss
}

// activeApp signs up a developer with an app holding scopes and, in
// production mode, has the bank approve it.
func activeApp(t *testing.T, n *platformtest.Node, email string, scopes ...string) (*identity.App, string) {
	t.Helper()
	ctx := context.Background()
	dev, _, err := n.Identity.SignUp(ctx, email, "a long enough password", "SolarWorld")
	if err != nil {
		t.Fatal(err)
	}
	app, secret, err := n.Identity.CreateApp(ctx, dev, "issuer app", scopes)
	if err != nil {
		t.Fatal(err)
	}
	if app.Status == auth.AppPendingApproval {
		if app, err = n.Identity.Approve(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
	}
	return app, secret
}

// TestIssuerIsNotTakenFromTheRequest: without --public-url, a Host of
// evil.example with X-Forwarded-Proto https made the cacheable metadata
// advertise https://evil.example/oauth2/token; and a token minted through
// "localhost" carried an iss that a verifier reading the metadata through
// 127.0.0.1 rejected. The issuer now comes from the configuration alone.
func TestIssuerIsNotTakenFromTheRequest(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		for _, tt := range []struct {
			name, publicURL, want string
		}{
			{"from the listen address", "", ""},
			{"from --public-url", "https://api.bank.example/", "https://api.bank.example"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				cfg := rt.Config(t)
				cfg.PublicURL = tt.publicURL
				n := platformtest.Start(t, cfg)
				want := tt.want
				if want == "" {
					want = n.URL // http://127.0.0.1:PORT, the address the node listens on
				}
				app, secret := activeApp(t, n, "iss@solarworld.example", auth.ScopeAccountsRead)
				port := strings.TrimPrefix(n.URL, "http://127.0.0.1")
				for _, host := range []string{"evil.example", "localhost" + port, "127.0.0.1" + port} {
					meta, res := metadataAs(t, n.URL, host)
					if meta.Issuer != want || meta.TokenEndpoint != want+"/oauth2/token" || meta.JWKSURI != want+"/.well-known/jwks.json" {
						t.Errorf("metadata asked as Host %s (cached: %s) = %+v, want issuer %s",
							host, res.Header.Get("Cache-Control"), meta, want)
					}
					if meta.AccessTokenAudience != identity.Audience {
						t.Errorf("metadata's access_token_audience = %q", meta.AccessTokenAudience)
					}
					token, iss := tokenAs(t, n.URL, host, app.ClientID, secret)
					if iss != meta.Issuer {
						t.Errorf("token asked as Host %s: iss %q, metadata's issuer %q", host, iss, meta.Issuer)
					}
					// The token works whichever name it was asked under.
					if code := get(t, n.URL+"/v1/accounts", token, nil); code != 200 {
						t.Errorf("token asked as Host %s: /v1/accounts = %d", host, code)
					}
				}
			})
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	const strong = "cwadm_Qm3vX8pL2rT9wK4nB7yH1cF6dJ5sA0eG"
	prod := func(publicURL, token string) platform.Config {
		return platform.Config{Mode: platform.ModeProduction, PublicURL: publicURL, AdminToken: token}
	}
	tests := []struct {
		name string
		cfg  platform.Config
		want string // "" means valid
	}{
		{"sandbox without anything", platform.Config{}, ""},
		{"sandbox keeps a weak token (warned at start)", platform.Config{AdminToken: "secret"}, ""},
		{"sandbox with an http public URL", platform.Config{PublicURL: "http://localhost:8080"}, ""},
		{"production, https, strong token", prod("https://api.bank.example", strong), ""},
		{"production, token generated into the data dir", prod("https://api.bank.example", ""), ""},
		{"production, a rotation pair of strong tokens", prod("https://api.bank.example", strong+","+strings.ToUpper(strong)), ""},
		{"production without a public URL", prod("", strong), "production mode needs --public-url"},
		{"production with an http public URL", prod("http://api.bank.example", strong), "needs an https:// URL"},
		{"production, short token", prod("https://api.bank.example", "cwadm_short-but-random-Xy7"), "too short"},
		{"production, one character repeated", prod("https://api.bank.example", strings.Repeat("a", 40)), "too uniform"},
		{"production, few distinct characters", prod("https://api.bank.example", strings.Repeat("0123", 10)), "too uniform"},
		{"production, one sequence repeated", prod("https://api.bank.example", strings.Repeat("password12", 4)), "repeats"},
		{"production, weak old token of a pair", prod("https://api.bank.example", strong+",admin"), "too short"},
		{"production, a strong token and an empty part", prod("https://api.bank.example", strong+", "), ""},
		{"production, a list of no token", prod("https://api.bank.example", " , "), "no token"},
		{"public URL with a path", platform.Config{PublicURL: "https://bank.example/causeway"}, "scheme and host only"},
		{"public URL not absolute", platform.Config{PublicURL: "api.bank.example"}, "absolute http(s) URL"},
		{"bad mode", platform.Config{Mode: "chaos"}, `mode "chaos"`},
		{"addr without a port", platform.Config{Addr: "127.0.0.1"}, "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestIssuerFromTheListenAddress(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"":               "http://localhost:8080",
		":8080":          "http://localhost:8080",
		"0.0.0.0:9000":   "http://localhost:9000",
		"[::]:9000":      "http://localhost:9000",
		"127.0.0.1:9000": "http://127.0.0.1:9000",
		"[::1]:9000":     "http://[::1]:9000",
		"api.local:443":  "http://api.local:443",
	} {
		if got, err := (platform.Config{Addr: addr}).Issuer(); err != nil || got != want {
			t.Errorf("Issuer with addr %q = %q %v, want %q", addr, got, err, want)
		}
	}
	if got, _ := (platform.Config{Addr: ":8080", PublicURL: "https://api.bank.example/"}).Issuer(); got != "https://api.bank.example" {
		t.Errorf("Issuer with a public URL = %q", got)
	}
	// Port 0 names no port a client could use: Run binds it first.
	if _, err := (platform.Config{Addr: "127.0.0.1:0"}).Issuer(); err == nil || !strings.Contains(err.Error(), "needs its port") {
		t.Errorf("Issuer with port 0 = %v", err)
	}
}

// TestProductionRefusesToStartUnsafe: a production node does not start
// without an https public URL, or with a weak admin token, given or in
// the data dir's file.
func TestProductionRefusesToStartUnsafe(t *testing.T) {
	t.Parallel()
	base := platformtest.Production(platformtest.Embedded.Config(t))
	for _, tt := range []struct {
		name   string
		change func(*platform.Config)
		want   string
	}{
		{"no public URL", func(c *platform.Config) { c.PublicURL = "" }, "needs --public-url"},
		{"http public URL", func(c *platform.Config) { c.PublicURL = "http://api.bank.example" }, "https://"},
		{"weak admin token", func(c *platform.Config) { c.AdminToken = "from-env-token" }, "admin-token"},
		{"weak admin token file", func(c *platform.Config) {
			c.AdminToken = ""
			os.WriteFile(filepath.Join(c.DataDir, "admin-token"), []byte("letmein\n"), 0o600)
		}, "admin-token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.DataDir = testkit.DataDir(t)
			tt.change(&cfg)
			p, err := platform.New(context.Background(), cfg)
			if err == nil {
				p.Close()
				t.Fatal("a production node started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want it to name %q", err, tt.want)
			}
		})
	}
	// Run refuses before it listens.
	cfg := base
	cfg.PublicURL = ""
	cfg.Addr = "127.0.0.1:0"
	if err := platform.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "needs --public-url") {
		t.Errorf("Run = %v", err)
	}
}

// TestWeakAdminTokenIsWarnedInSandbox: sandbox starts with a weak token
// but says so, without the token.
func TestWeakAdminTokenIsWarnedInSandbox(t *testing.T) {
	t.Parallel()
	var logs testkit.SyncBuffer
	cfg := platformtest.Embedded.Config(t)
	cfg.AdminToken = "weak-sandbox-token"
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	platformtest.Start(t, cfg)
	if !strings.Contains(logs.String(), "the bank admin token is weak") {
		t.Errorf("no warning about the weak token:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), cfg.AdminToken) {
		t.Errorf("the admin token is in the log:\n%s", logs.String())
	}
}

// hookCount counts the requests an https receiver got.
type hookCount struct {
	mu     sync.Mutex
	bodies []string
}

func (h *hookCount) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, string(b))
	h.mu.Unlock()
	w.Write([]byte(`{"decision":"approve","score":1,"reason":"ok"}`))
}

func (h *hookCount) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

// call sends a JSON request with a bearer token and returns the status and
// the problem code, if any.
func call(t *testing.T, method, url, token string, body any) (int, string, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var p struct{ Code string }
	json.Unmarshal(raw, &p)
	return res.StatusCode, p.Code, raw
}

// TestProductionCallsWebhooksAndSPIsOverHTTPSOnly: fraud-check payloads
// carry dates of birth and document numbers, and webhooks customers'
// records; in production an http:// URL is refused (422 https_required) at
// registration and on update, and an https one is accepted and called.
// Sandbox keeps http for local work.
func TestProductionCallsWebhooksAndSPIsOverHTTPSOnly(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		recv, plainRecv := &hookCount{}, &hookCount{}
		secure := httptest.NewTLSServer(recv)
		t.Cleanup(secure.Close)
		plain := httptest.NewServer(plainRecv)
		t.Cleanup(plain.Close)

		t.Run("production", func(t *testing.T) {
			n := platformtest.Start(t, platformtest.Production(rt.Config(t), secure))
			app, secret := activeApp(t, n, "https@solarworld.example", auth.ScopeEventsRead, auth.ScopeWebhooksWrite, auth.ScopeSPIWrite, auth.ScopeCustomersWrite)
			token, _ := tokenAs(t, n.URL, "127.0.0.1", app.ClientID, secret)

			for _, path := range []string{"/v1/webhooks", "/v1/spi-registrations"} {
				body := map[string]any{"url": plain.URL + "/hook", "event_types": []string{"*"}}
				if path == "/v1/spi-registrations" {
					body = map[string]any{"extension_point": "payments.fraud-check", "url": plain.URL + "/fraud"}
				}
				if code, problem, raw := call(t, "POST", n.URL+path, token, body); code != 422 || problem != "https_required" {
					t.Errorf("POST %s with an http URL = %d %s", path, code, raw)
				}
			}
			code, _, raw := call(t, "POST", n.URL+"/v1/webhooks", token, map[string]any{"url": secure.URL + "/hook", "event_types": []string{"*"}})
			if code != 201 {
				t.Fatalf("POST /v1/webhooks with an https URL = %d %s", code, raw)
			}
			var wh struct{ ID string }
			json.Unmarshal(raw, &wh)
			if code, problem, raw := call(t, "PATCH", n.URL+"/v1/webhooks/"+wh.ID, token, map[string]any{"url": plain.URL + "/hook"}); code != 422 || problem != "https_required" {
				t.Errorf("PATCH to an http URL = %d %s", code, raw)
			}
			if code, _, raw := call(t, "POST", n.URL+"/v1/spi-registrations", token,
				map[string]any{"extension_point": "payments.fraud-check", "url": secure.URL + "/fraud"}); code != 201 {
				t.Errorf("POST /v1/spi-registrations with an https URL = %d %s", code, raw)
			}
			// An event reaches the https receiver: its certificate is
			// trusted through TargetRootCAs.
			if code, _, raw := call(t, "POST", n.URL+"/v1/customers", token, map[string]any{
				"type": "person", "name": "Ada Secure", "date_of_birth": "1980-01-02", "email": "ada@secure.example",
				"address":         map[string]any{"line1": "Dam 1", "city": "Amsterdam", "postcode": "1012 JS", "country": "NL"},
				"document_number": "NLA123456",
			}); code != 201 {
				t.Fatalf("customer: %d %s", code, raw)
			}
			testkit.WaitFor(t, "a delivery to the https receiver", func() bool { return recv.count() > 0 })
			if n := plainRecv.count(); n != 0 {
				t.Errorf("the plain-http receiver was called %d times", n)
			}
		})

		t.Run("sandbox keeps http", func(t *testing.T) {
			n := platformtest.Start(t, rt.Config(t))
			app, secret := activeApp(t, n, "http@solarworld.example", auth.ScopeEventsRead, auth.ScopeWebhooksWrite)
			token, _ := tokenAs(t, n.URL, "127.0.0.1", app.ClientID, secret)
			if code, _, raw := call(t, "POST", n.URL+"/v1/webhooks", token, map[string]any{"url": plain.URL + "/hook", "event_types": []string{"*"}}); code != 201 {
				t.Errorf("sandbox refused an http webhook: %d %s", code, raw)
			}
		})
	})
}

// TestMetricsNeedTheirToken: /metrics on the main listener was open to
// anyone; with --metrics-token it needs that token, in production without
// one it is not served there at all, and --metrics-addr serves it on a
// listener of its own.
func TestMetricsNeedTheirToken(t *testing.T) {
	t.Parallel()
	const metricsToken = "metrics-scraper-token-7c1e2f"
	scrape := func(t *testing.T, url, token string) int {
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
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode == 200 && !strings.Contains(string(body), "go_goroutines") {
			t.Errorf("%s answered 200 without metrics", url)
		}
		return res.StatusCode
	}
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		t.Run("token", func(t *testing.T) {
			cfg := rt.Config(t)
			cfg.MetricsToken = metricsToken
			n := platformtest.Start(t, cfg)
			for token, want := range map[string]int{"": 401, "wrong": 401, platformtest.AdminToken: 401, metricsToken: 200} {
				if code := scrape(t, n.URL+"/metrics", token); code != want {
					t.Errorf("/metrics with token %q = %d, want %d", token, code, want)
				}
			}
		})
		t.Run("production without a token", func(t *testing.T) {
			n := platformtest.Start(t, platformtest.Production(rt.Config(t)))
			for _, token := range []string{"", platformtest.AdminToken} {
				if code := scrape(t, n.URL+"/metrics", token); code != 404 {
					t.Errorf("/metrics with token %q = %d, want 404", token, code)
				}
			}
		})
		t.Run("production with a token", func(t *testing.T) {
			cfg := platformtest.Production(rt.Config(t))
			cfg.MetricsToken = metricsToken
			n := platformtest.Start(t, cfg)
			if code := scrape(t, n.URL+"/metrics", ""); code != 401 {
				t.Errorf("/metrics without the token = %d, want 401", code)
			}
			if code := scrape(t, n.URL+"/metrics", metricsToken); code != 200 {
				t.Errorf("/metrics with the token = %d, want 200", code)
			}
		})
	})
}

// TestMetricsAddrServesMetricsOnItsOwnListener runs a production node
// through Run with --metrics-addr: /metrics answers there, not on the main
// listener.
func TestMetricsAddrServesMetricsOnItsOwnListener(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Production(platformtest.Embedded.Config(t))
	cfg.Addr = testkit.FreePort(t)
	cfg.MetricsAddr = testkit.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- platform.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Run: %v", err)
		}
	})
	main, metrics := "http://"+cfg.Addr, "http://"+cfg.MetricsAddr
	testkit.WaitFor(t, "the node to serve", func() bool {
		res, err := http.Get(main + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	res, err := http.Get(metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("metrics listener: %d %.200s", res.StatusCode, body)
	}
	if code := get(t, main+"/metrics", "", nil); code != 404 {
		t.Errorf("main listener /metrics = %d, want 404", code)
	}
	// The metrics listener serves nothing else.
	if code := get(t, metrics+"/bank/v1/status", platformtest.AdminToken, nil); code != 404 {
		t.Errorf("metrics listener /bank/v1/status = %d, want 404", code)
	}
}
