package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core/coreapi"
	"github.com/causewayhq/causeway/internal/httpapi"
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
// Then the upstream proxy: an upstream API of the bank on loopback that
// answers 327 bytes of JSON, published on the node (POST
// /bank/v1/upstreams) for apps with accounts:read and reached through
// /v1/ext/{prefix}/… (token, scope, rate limit, quota, signing the
// forwarded call, analytics), beside the same upstream called directly:
// once with one access token for every request, once with a new token for
// every request (minted from /oauth2/token before that run), so that the
// token check's cost without its cache shows. The upstream is unpublished
// afterwards.
//
// With opts.DatabaseURL the node runs on a fresh PostgreSQL schema, dropped
// afterwards, and with opts.NATSURL on the external NATS under a fresh bus
// prefix, whose streams are deleted afterwards.
//
// With opts.Server the app is signed up on that server and its balances
// requests go through the server's gateway. The same handlers without the
// gateway exist only inside the server, so the baseline is the bare
// handler alone, in this process, answering the same bytes: gateway/bare
// is what the server's gateway and API cost above HTTP itself. The
// upstream proxy is measured the same way on the server, the upstream
// listening on 127.0.0.1 here.
func Gateway(ctx context.Context, opts Options) (*Report, error) {
	run := gatewayBalances
	if opts.Server != "" {
		run = gatewayOnServer
	}
	r, err := run(ctx, opts.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return r, nil
}

func gatewayBalances(ctx context.Context, opts Options) (*Report, error) {
	rig, err := startGatewayRig(ctx, opts, opts.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer rig.Close()

	// Cheapest first, so nothing the later runs leave behind (the gateway's
	// analytics flushes) falls on the baselines.
	bare, err := rig.measure(ctx, opts, "bare", rig.BareURL)
	if err != nil {
		return nil, err
	}
	direct, err := rig.measure(ctx, opts, "direct", rig.DirectURL)
	if err != nil {
		return nil, err
	}
	gated, err := rig.measure(ctx, opts, "gateway", rig.GatewayURL)
	if err != nil {
		return nil, err
	}
	proxied, err := measureProxy(ctx, opts, rig.api, rig.app)
	if err != nil {
		return nil, fmt.Errorf("upstream proxy: %w", err)
	}

	r := NewReport("gateway", opts.runtime(true))
	r.Figures = append(r.Figures,
		NewFigure("gateway_requests_per_s", gated.perSecond(), "1/s", "direct_requests_per_s", direct.perSecond()),
		NewFigure("gateway_latency_p50", ms(gated.percentile(0.50)), "ms", "direct_latency_p50", ms(direct.percentile(0.50))),
		NewFigure("gateway_latency_p99", ms(gated.percentile(0.99)), "ms", "direct_latency_p99", ms(direct.percentile(0.99))),
		NewFigure("direct_requests_per_s", direct.perSecond(), "1/s", "bare_requests_per_s", bare.perSecond()),
	)
	r.Figures = append(r.Figures, proxied.figures()...)
	return r, nil
}

func gatewayOnServer(ctx context.Context, opts Options) (*Report, error) {
	srv, err := connectServer(ctx, opts, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	rig := &gatewayRig{api: srv.api, GatewayURL: srv.URL}
	defer rig.Close()
	app, err := srv.signUp(ctx, "Gateway benchmark", []string{auth.ScopeAccountsRead})
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	if _, err := rig.prepare(ctx, app); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	if err := rig.serveBare(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}

	bare, err := rig.measure(ctx, opts, "bare", rig.BareURL)
	if err != nil {
		return nil, err
	}
	gated, err := rig.measure(ctx, opts, "gateway", rig.GatewayURL)
	if err != nil {
		return nil, err
	}
	proxied, err := measureProxy(ctx, opts, srv.api, app)
	if err != nil {
		return nil, fmt.Errorf("upstream proxy: %w", err)
	}
	r := srv.report("gateway")
	r.Figures = append(r.Figures,
		NewFigure("gateway_requests_per_s", gated.perSecond(), "1/s", "bare_requests_per_s", bare.perSecond()),
		NewFigure("gateway_latency_p50", ms(gated.percentile(0.50)), "ms", "bare_latency_p50", ms(bare.percentile(0.50))),
		NewFigure("gateway_latency_p99", ms(gated.percentile(0.99)), "ms", "bare_latency_p99", ms(bare.percentile(0.99))),
	)
	r.Figures = append(r.Figures, proxied.figures()...)
	return r, nil
}

// gatewayRig is a node with an app signed up the way a developer does it,
// and the loopback servers answering the app's balances request: the node
// itself (through the gateway), the same public handlers without the
// gateway (only for a node in this process), and a bare handler.
type gatewayRig struct {
	*api // the node
	// GatewayURL, DirectURL and BareURL are the base URLs of the three
	// servers.
	GatewayURL, DirectURL, BareURL string
	// Path is GET /v1/accounts/{id}/balances of one of the app's seeded
	// accounts.
	Path string

	tokens  oauth2.TokenSource
	app     benchApp // the app whose token tokens keeps
	closers undo
}

// startGatewayRig starts a node (see startBenchNode), signs up a developer
// with an app holding accounts:read, gets an access token from
// /oauth2/token, and starts the direct and bare servers. The node runs on
// the database and bus opts name; the client keeps up to concurrency idle
// connections to each server.
func startGatewayRig(ctx context.Context, opts Options, concurrency int) (_ *gatewayRig, err error) {
	node, err := startBenchNode(ctx, opts, "gateway", concurrency)
	if err != nil {
		return nil, err
	}
	g := &gatewayRig{api: node.api, GatewayURL: node.URL, closers: undo{node.Close}}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()
	created, err := node.signUpApp(ctx, "Gateway benchmark", []string{auth.ScopeAccountsRead})
	if err != nil {
		return nil, err
	}
	token, err := g.prepare(ctx, created)
	if err != nil {
		return nil, err
	}
	app, err := node.Identity.AuthenticateApp(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	direct := httpapi.New(httpapi.Config{Version: "bench", Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	// What the gateway would have done for this app: put it in the context.
	direct.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(auth.WithApp(r.Context(), app)))
		})
	})
	coreapi.RegisterPublic(direct, node.Bank)
	if g.DirectURL, err = g.serve(direct); err != nil {
		return nil, err
	}
	if err := g.get(ctx, g.DirectURL, io.Discard); err != nil {
		return nil, fmt.Errorf("balances without the gateway: %w", err)
	}
	if err := g.serveBare(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// prepare keeps a renewing token source for app and picks its first
// seeded account. It returns an access token of the app.
func (g *gatewayRig) prepare(ctx context.Context, app benchApp) (string, error) {
	// The token source renews the token before it expires, for long runs;
	// every request of all the servers asks it, so they share that cost.
	g.app, g.tokens = app, g.api.tokens(ctx, app)
	tok, err := g.tokens.Token()
	if err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	var accounts struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := g.call(ctx, http.MethodGet, "/v1/accounts", tok.AccessToken, nil, http.StatusOK, &accounts); err != nil {
		return "", fmt.Errorf("list accounts: %w", err)
	}
	if len(accounts.Data) == 0 {
		return "", errors.New("the new app has no seeded accounts")
	}
	g.Path = "/v1/accounts/" + accounts.Data[0].ID + "/balances"
	return tok.AccessToken, nil
}

// serveBare starts the bare handler. It answers with the very bytes of a
// real balances response through the gateway, so all the servers move the
// same payload.
func (g *gatewayRig) serveBare(ctx context.Context) error {
	var body bytes.Buffer
	if err := g.get(ctx, g.GatewayURL, &body); err != nil {
		return fmt.Errorf("balances through the gateway: %w", err)
	}
	var err error
	g.BareURL, err = g.serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body.Bytes())
	}))
	return err
}

// serve serves h on loopback until Close and returns its base URL.
func (g *gatewayRig) serve(h http.Handler) (string, error) {
	url, stop, err := serveLoopback(h)
	if err != nil {
		return "", err
	}
	g.closers = append(g.closers, stop)
	return url, nil
}

// measure runs the bounded load of balances requests to the server at
// base; any answer other than 200 fails it.
func (g *gatewayRig) measure(ctx context.Context, opts Options, name, base string) (load, error) {
	l, err := runLoad(ctx, opts, func(ctx context.Context, _ *rand.Rand) error {
		return g.get(ctx, base, io.Discard)
	})
	if err != nil {
		return l, fmt.Errorf("%s: a request failed after %d succeeded: %w", name, l.ops, err)
	}
	return l, nil
}

// Close stops the servers the rig started, and its node if it started
// one, in reverse order.
func (g *gatewayRig) Close() error {
	return g.closers.Close()
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
