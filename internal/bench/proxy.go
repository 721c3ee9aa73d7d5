package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/errgroup"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpsig"
)

// upstreamBody is what the benchmark's upstream answers: 327 bytes of
// JSON, the size of the upstream other gateways were measured against in
// issue 18.
const upstreamBody = `{"id":"crd_01jqz8w2b4c6d8e0f2g4h6j8k0","account_id":"acc_01jqz8r3k2m4n6p8q0s2t4v6w8",` +
	`"status":"active","brand":"visa","last4":"4242","expires":"2029-03","limits":{"daily_cash_minor":50000,` +
	`"daily_pos_minor":250000,"currency":"EUR"},"controls":{"online":true,"contactless":true,"abroad":false},` +
	`"updated_at":"2026-03-14T09:26:53.589793Z"}`

// upstreamPath is the upstream's resource the benchmark asks for; through
// the gateway it is /v1/ext/{prefix}/cards/crd_1.
const upstreamPath = "/cards/crd_1"

// proxyRig is an upstream API of the bank on loopback, published through
// a node's gateway under /v1/ext/{prefix}/ for apps with accounts:read.
type proxyRig struct {
	node *api
	// UpstreamURL is the upstream's base URL (the direct baseline);
	// ProxyURL is the node's /v1/ext/{prefix} in front of it.
	UpstreamURL, ProxyURL string
	// calls and signed count the upstream's requests, and those of them
	// carrying the gateway's signature and app id.
	calls, signed atomic.Int64
	closers       undo
}

// startProxyRig starts the upstream and publishes it on node with the
// admin token (POST /bank/v1/upstreams) under a path prefix new to this
// run; Close unpublishes it and stops the upstream.
func startProxyRig(ctx context.Context, node *api) (_ *proxyRig, err error) {
	g := &proxyRig{node: node}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()
	url, stop, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		if r.Header.Get(httpsig.HeaderSignature) != "" && r.Header.Get(gateway.HeaderAppID) != "" {
			g.signed.Add(1)
		}
		if r.URL.Path != upstreamPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, upstreamBody)
	}))
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, stop)
	g.UpstreamURL = url
	// A slug: lower-case letters and digits.
	prefix := strings.ToLower(randomToken("bench-"))[:20]
	var up struct {
		ID string `json:"id"`
	}
	if err := node.call(ctx, http.MethodPost, "/bank/v1/upstreams", node.Admin, map[string]any{
		"name": "Benchmark upstream", "base_url": url, "path_prefix": prefix, "scope": auth.ScopeAccountsRead,
	}, http.StatusCreated, &up); err != nil {
		return nil, fmt.Errorf("publish the upstream: %w", err)
	}
	g.closers = append(g.closers, func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return node.call(ctx, http.MethodDelete, "/bank/v1/upstreams/"+up.ID, node.Admin, nil, http.StatusNoContent, nil)
	})
	g.ProxyURL = node.URL + "/v1/ext/" + prefix
	return g, nil
}

// Close unpublishes the upstream and stops it.
func (g *proxyRig) Close() error {
	return g.closers.Close()
}

// get is one measured request: GET base + upstreamPath with the access
// token (none when empty), which must answer 200 with upstreamBody.
func (g *proxyRig) get(ctx context.Context, base, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+upstreamPath, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := g.node.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4096))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || len(b) != len(upstreamBody) {
		return fmt.Errorf("GET %s%s: %d %s", base, upstreamPath, res.StatusCode, b)
	}
	return nil
}

// measureProxy publishes an upstream on node and measures it (see
// proxyRig.measure) for app, which must hold accounts:read.
func measureProxy(ctx context.Context, opts Options, node *api, app benchApp) (proxyLoads, error) {
	g, err := startProxyRig(ctx, node)
	if err != nil {
		return proxyLoads{}, fmt.Errorf("setup: %w", err)
	}
	m, err := g.measure(ctx, opts, app)
	return m, errors.Join(err, g.Close())
}

// proxyLoads are the upstream proxy's measurements.
type proxyLoads struct {
	direct, reused, fresh load
}

// measure runs, one after the other and under the same bounds: the
// upstream called directly; through the gateway with one access token of
// app for every request (the gateway's verified-token cache answers all
// but the first); and through the gateway with a new token for every
// request, each minted from the node's /oauth2/token before that run (so
// the run measures checking tokens, not issuing them). The pool of new
// tokens is what the reused-token run would have used in the same time,
// and a quarter more: the fresh-token run ends when it is spent, if its
// duration has not.
func (g *proxyRig) measure(ctx context.Context, opts Options, app benchApp) (proxyLoads, error) {
	var m proxyLoads
	cc := clientcredentials.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, TokenURL: g.node.URL + "/oauth2/token"}
	tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, g.node.client)
	tok, err := cc.Token(tctx)
	if err != nil {
		return m, fmt.Errorf("access token: %w", err)
	}
	// One of each first, so connections exist and the upstream is cached.
	if err := g.get(ctx, g.UpstreamURL, ""); err != nil {
		return m, fmt.Errorf("upstream warm-up: %w", err)
	}
	if err := g.get(ctx, g.ProxyURL, tok.AccessToken); err != nil {
		return m, fmt.Errorf("proxy warm-up: %w", err)
	}
	run := func(name string, opts Options, token func() string, base string) (load, error) {
		l, err := runLoad(ctx, opts, func(ctx context.Context, _ *rand.Rand) error {
			return g.get(ctx, base, token())
		})
		if err != nil {
			return l, fmt.Errorf("%s: a request failed after %d succeeded: %w", name, l.ops, err)
		}
		return l, nil
	}
	if m.direct, err = run("upstream", opts, func() string { return "" }, g.UpstreamURL); err != nil {
		return m, err
	}
	if m.reused, err = run("proxy", opts, func() string { return tok.AccessToken }, g.ProxyURL); err != nil {
		return m, err
	}

	n := min(opts.MaxOps, int(1.25*m.reused.perSecond()*opts.Duration.Seconds())+opts.Concurrency)
	tokens, err := mintTokens(tctx, cc, n, opts.Concurrency)
	if err != nil {
		return m, err
	}
	var next atomic.Int64
	freshOpts := opts
	freshOpts.MaxOps = len(tokens)
	if m.fresh, err = run("proxy with fresh tokens", freshOpts, func() string {
		return tokens[next.Add(1)-1]
	}, g.ProxyURL); err != nil {
		return m, err
	}
	return m, nil
}

// mintTokens gets n access tokens from cc's token endpoint, from
// concurrency goroutines. It gives up after five minutes.
func mintTokens(ctx context.Context, cc clientcredentials.Config, n, concurrency int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	tokens := make([]string, n)
	var next atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for range concurrency {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				tok, err := cc.Token(ctx)
				if err != nil {
					return fmt.Errorf("mint access token %d of %d: %w", i+1, n, err)
				}
				tokens[i] = tok.AccessToken
			}
			return nil
		})
	}
	return tokens, g.Wait()
}

// figures are the upstream proxy's rows of the gateway report.
func (m proxyLoads) figures() []Figure {
	d := m.direct
	return []Figure{
		NewFigure("proxy_requests_per_s", m.reused.perSecond(), "1/s", "upstream_requests_per_s", d.perSecond()),
		NewFigure("proxy_latency_p50", ms(m.reused.percentile(0.50)), "ms", "upstream_latency_p50", ms(d.percentile(0.50))),
		NewFigure("proxy_latency_p99", ms(m.reused.percentile(0.99)), "ms", "upstream_latency_p99", ms(d.percentile(0.99))),
		NewFigure("proxy_fresh_token_requests_per_s", m.fresh.perSecond(), "1/s", "upstream_requests_per_s", d.perSecond()),
		NewFigure("proxy_fresh_token_latency_p50", ms(m.fresh.percentile(0.50)), "ms", "upstream_latency_p50", ms(d.percentile(0.50))),
		NewFigure("proxy_fresh_token_latency_p99", ms(m.fresh.percentile(0.99)), "ms", "upstream_latency_p99", ms(d.percentile(0.99))),
	}
}
