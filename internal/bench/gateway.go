package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core/coreapi"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform"
)

// Gateway measures an app's authenticated GET /v1/accounts/{id}/balances
// through a whole node, where the gateway (access token, scope, rate limit,
// daily quota, analytics) runs before the public banking API, beside the
// same public handlers served without the gateway, beside a bare handler
// that writes fixed bytes. The three are served over loopback HTTP by the
// same kind of server and driven one after another by one client with the
// same concurrency and bounds, so gateway/direct is what the gateway costs
// and direct/bare what the API costs above HTTP itself. The aim is a
// gateway that keeps at least 80% of the direct throughput. Any response
// other than 200 fails the run.
//
// With opts.DatabaseURL the node runs on a fresh PostgreSQL schema, dropped
// afterwards; the bus stays embedded in both cases.
func Gateway(ctx context.Context, opts Options) (*Report, error) {
	r, err := gatewayBalances(ctx, opts.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return r, nil
}

func gatewayBalances(ctx context.Context, opts Options) (*Report, error) {
	rig, err := startGatewayRig(ctx, opts.DatabaseURL, opts.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer rig.Close()

	measure := func(name, base string) (load, error) {
		l, err := runLoad(ctx, opts, func(ctx context.Context, _ *rand.Rand) error {
			return rig.get(ctx, base, io.Discard)
		})
		if err != nil {
			return l, fmt.Errorf("%s: a request failed after %d succeeded: %w", name, l.ops, err)
		}
		return l, nil
	}
	// Cheapest first, so nothing the later runs leave behind (the gateway's
	// analytics flushes) falls on the baselines.
	bare, err := measure("bare", rig.BareURL)
	if err != nil {
		return nil, err
	}
	direct, err := measure("direct", rig.DirectURL)
	if err != nil {
		return nil, err
	}
	gated, err := measure("gateway", rig.GatewayURL)
	if err != nil {
		return nil, err
	}

	r := NewReport("gateway")
	r.Figures = append(r.Figures,
		NewFigure("gateway_requests_per_s", gated.perSecond(), "1/s", "direct_requests_per_s", direct.perSecond()),
		NewFigure("gateway_latency_p50", ms(gated.percentile(0.50)), "ms", "direct_latency_p50", ms(direct.percentile(0.50))),
		NewFigure("gateway_latency_p99", ms(gated.percentile(0.99)), "ms", "direct_latency_p99", ms(direct.percentile(0.99))),
		NewFigure("direct_requests_per_s", direct.perSecond(), "1/s", "bare_requests_per_s", bare.perSecond()),
	)
	return r, nil
}

// gatewayRig is a running node with an app signed up the way a developer
// does it, and three loopback servers answering the app's balances
// request: the node itself (through the gateway), the same public handlers
// without the gateway, and a bare handler.
type gatewayRig struct {
	Node *platform.Platform
	// GatewayURL, DirectURL and BareURL are the base URLs of the three
	// servers.
	GatewayURL, DirectURL, BareURL string
	// Path is GET /v1/accounts/{id}/balances of one of the app's seeded
	// accounts.
	Path string

	client  *http.Client
	tokens  oauth2.TokenSource
	closers []func() error
}

// benchPasswordCost makes signing up cheap; the benchmark measures
// requests, not password hashing (the same idea as platformtest's config).
var benchPasswordCost = identity.PasswordCost{Time: 1, Memory: 64, Threads: 1}

// startGatewayRig starts a node on a temporary data dir (and, when
// databaseURL is set, a fresh PostgreSQL schema), signs up a developer,
// creates an app with accounts:read, lifts the app's rate limit and daily
// quota out of the way, gets an access token from /oauth2/token, and starts
// the direct and bare servers. The client keeps up to concurrency idle
// connections to each server.
func startGatewayRig(ctx context.Context, databaseURL string, concurrency int) (_ *gatewayRig, err error) {
	g := &gatewayRig{}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()

	dir, err := os.MkdirTemp("", "causeway-bench-gateway-")
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, func() error { return os.RemoveAll(dir) })
	cfg := platform.Config{
		DataDir:      dir,
		Mode:         platform.ModeSandbox,
		Version:      "bench",
		Logger:       slog.New(slog.DiscardHandler),
		PasswordCost: benchPasswordCost,
	}
	if databaseURL != "" {
		schemaURL, drop, err := freshSchema(ctx, databaseURL)
		if err != nil {
			return nil, err
		}
		g.closers = append(g.closers, drop)
		cfg.DatabaseURL = schemaURL
	}
	g.Node, err = platform.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	g.closers = append(g.closers, func() error { g.Node.Close(); return nil })

	g.client = &http.Client{Transport: &http.Transport{
		// Loopback only: never through an environment's proxy.
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
	}}
	g.closers = append(g.closers, func() error { g.client.CloseIdleConnections(); return nil })
	if g.GatewayURL, err = g.serve(g.Node.Handler()); err != nil {
		return nil, err
	}

	app, err := g.signUpApp(ctx)
	if err != nil {
		return nil, err
	}
	direct := httpapi.New(httpapi.Config{Version: "bench", Logger: cfg.Logger, Registerer: prometheus.NewRegistry()})
	// What the gateway would have done for this app: put it in the context.
	direct.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(auth.WithApp(r.Context(), app)))
		})
	})
	coreapi.RegisterPublic(direct, g.Node.Bank)
	if g.DirectURL, err = g.serve(direct); err != nil {
		return nil, err
	}

	// The bare handler answers with the very bytes of a real balances
	// response, so all three move the same payload.
	var body bytes.Buffer
	if err := g.get(ctx, g.GatewayURL, &body); err != nil {
		return nil, fmt.Errorf("balances through the gateway: %w", err)
	}
	if err := g.get(ctx, g.DirectURL, io.Discard); err != nil {
		return nil, fmt.Errorf("balances without the gateway: %w", err)
	}
	if g.BareURL, err = g.serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body.Bytes())
	})); err != nil {
		return nil, err
	}
	return g, nil
}

// signUpApp goes from sign-up to an access token over HTTP, as a developer
// does, and picks the first seeded account of the app. It returns the app
// as the gateway puts it in the context of the app's requests.
func (g *gatewayRig) signUpApp(ctx context.Context) (*auth.App, error) {
	var dev struct {
		Token string `json:"token"`
	}
	if err := g.call(ctx, http.MethodPost, "/v1/developers", "", map[string]any{
		"email": "bench@example.com", "password": "benchmark password", "organization": "Bench",
	}, http.StatusCreated, &dev); err != nil {
		return nil, fmt.Errorf("sign up: %w", err)
	}
	var created struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := g.call(ctx, http.MethodPost, "/v1/apps", dev.Token, map[string]any{
		"name": "Gateway benchmark", "scopes": []string{auth.ScopeAccountsRead},
	}, http.StatusCreated, &created); err != nil {
		return nil, fmt.Errorf("create app: %w", err)
	}
	if created.Status != auth.AppActive {
		return nil, fmt.Errorf("new app is %s, want active (sandbox mode)", created.Status)
	}
	// The default limits (50 requests/s) would turn the run into 429s; the
	// limiter and the quota counter still run on every request.
	if _, err := g.Node.Gateway.SetLimits(ctx, created.ID, gateway.Limits{
		RequestsPerSecond: gateway.MaxRequestsPerSecond, Burst: gateway.MaxBurst, DailyQuota: gateway.MaxDailyQuota,
	}); err != nil {
		return nil, fmt.Errorf("lift limits: %w", err)
	}

	cc := clientcredentials.Config{ClientID: created.ClientID, ClientSecret: created.ClientSecret, TokenURL: g.GatewayURL + "/oauth2/token"}
	// The token source renews the token before it expires, for long runs;
	// every request of all three servers asks it, so they share that cost.
	g.tokens = cc.TokenSource(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, g.client))
	tok, err := g.tokens.Token()
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	app, err := g.Node.Identity.AuthenticateApp(ctx, tok.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}

	var accounts struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := g.call(ctx, http.MethodGet, "/v1/accounts", tok.AccessToken, nil, http.StatusOK, &accounts); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if len(accounts.Data) == 0 {
		return nil, errors.New("the new app has no seeded accounts")
	}
	g.Path = "/v1/accounts/" + accounts.Data[0].ID + "/balances"
	return app, nil
}

// call sends a JSON request to the node and decodes the response, which
// must have status want.
func (g *gatewayRig) call(ctx context.Context, method, path, token string, body any, want int, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.GatewayURL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	return json.Unmarshal(b, into)
}

// get is one measured request: the app's balances request to the server
// at base, which must answer 200. The body is copied to w, to the end, so
// the connection is reused.
func (g *gatewayRig) get(ctx context.Context, base string, w io.Writer) error {
	tok, err := g.tokens.Token()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+g.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		return fmt.Errorf("GET %s%s: %d %s", base, g.Path, res.StatusCode, b)
	}
	_, err = io.Copy(w, res.Body)
	return err
}

// serve serves h on a new loopback listener with the server settings of
// platform.Serve, until Close, and returns its base URL.
func (g *gatewayRig) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go srv.Serve(ln)
	g.closers = append(g.closers, srv.Close)
	return "http://" + ln.Addr().String(), nil
}

// Close stops the servers, then the node, and removes its data, in the
// reverse order of start-up.
func (g *gatewayRig) Close() error {
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	g.closers = nil
	return errors.Join(errs...)
}
