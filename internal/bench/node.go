package bench

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/platform"
)

// benchPasswordCost makes signing up cheap; the benchmarks measure
// requests, not password hashing (the same idea as platformtest's config).
var benchPasswordCost = identity.PasswordCost{Time: 1, Memory: 64, Threads: 1}

// benchNode is a whole platform node on a temporary data dir (and, when a
// database URL is given, a fresh PostgreSQL schema; when a NATS URL is
// given, the external NATS under a fresh bus prefix), served on loopback,
// with an HTTP client to call it. The benchmarks that drive the platform
// end to end build on it.
type benchNode struct {
	*platform.Platform
	URL    string // the node's base URL
	Admin  string // its bank admin token
	client *http.Client
	// closers undo start-up, run in reverse by Close.
	closers []func() error
}

// startBenchNode starts a node on the database and bus opts name. It may
// deliver to loopback (webhook receivers and SPI servers of the benchmarks
// listen there), and its client keeps up to idleConns idle connections to
// each server.
func startBenchNode(ctx context.Context, opts Options, name string, idleConns int) (_ *benchNode, err error) {
	n := &benchNode{}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	dir, err := os.MkdirTemp("", "causeway-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() error { return os.RemoveAll(dir) })
	tok := make([]byte, 16)
	crand.Read(tok)
	n.Admin = "cwadm_bench_" + hex.EncodeToString(tok)
	cfg := platform.Config{
		DataDir:             dir,
		Mode:                platform.ModeSandbox,
		Version:             "bench",
		AdminToken:          n.Admin,
		Logger:              slog.New(slog.DiscardHandler),
		PasswordCost:        benchPasswordCost,
		AllowPrivateTargets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	if opts.DatabaseURL != "" {
		schemaURL, drop, err := freshSchema(ctx, opts.DatabaseURL)
		if err != nil {
			return nil, err
		}
		n.closers = append(n.closers, drop)
		cfg.DatabaseURL = schemaURL
	}
	if opts.NATSURL != "" {
		// Named like the schema, and sorted by the time of the run. The
		// streams go after the node has closed (closers run in reverse),
		// so no relay of it makes them again.
		natsURL, prefix := opts.NATSURL, "causeway_"+ids.New("bench")
		cfg.NATSURL, cfg.BusPrefix = natsURL, prefix
		n.closers = append(n.closers, func() error { return deleteStreams(ctx, natsURL, prefix) })
	}
	n.Platform, err = platform.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.closers = append(n.closers, func() error { n.Platform.Close(); return nil })
	n.client = &http.Client{Transport: &http.Transport{
		// Loopback only: never through an environment's proxy.
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: idleConns,
		IdleConnTimeout:     90 * time.Second,
	}}
	n.closers = append(n.closers, func() error { n.client.CloseIdleConnections(); return nil })
	if n.URL, err = n.serve(n.Handler()); err != nil {
		return nil, err
	}
	return n, nil
}

// serve serves h on a new loopback listener with the server settings of
// platform.Serve, until Close, and returns its base URL.
func (n *benchNode) serve(h http.Handler) (string, error) {
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
	n.closers = append(n.closers, srv.Close)
	return "http://" + ln.Addr().String(), nil
}

// benchApp is an app a benchmark signed up, with its one-time secret.
type benchApp struct {
	ID, ClientID, ClientSecret string
}

// signUpApp goes from sign-up to an active app over HTTP, as a developer
// does, and lifts the app's rate limit and daily quota out of the way: the
// default 50 requests/s would turn a run into 429s (the limiter and the
// quota counter still run on every request).
func (n *benchNode) signUpApp(ctx context.Context, email, name string, scopes []string) (benchApp, error) {
	var dev struct {
		Token string `json:"token"`
	}
	if err := n.call(ctx, http.MethodPost, "/v1/developers", "", map[string]any{
		"email": email, "password": "benchmark password", "organization": "Bench",
	}, http.StatusCreated, &dev); err != nil {
		return benchApp{}, fmt.Errorf("sign up: %w", err)
	}
	var app struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := n.call(ctx, http.MethodPost, "/v1/apps", dev.Token, map[string]any{"name": name, "scopes": scopes},
		http.StatusCreated, &app); err != nil {
		return benchApp{}, fmt.Errorf("create app: %w", err)
	}
	if app.Status != auth.AppActive {
		return benchApp{}, fmt.Errorf("new app is %s, want active (sandbox mode)", app.Status)
	}
	if _, err := n.Gateway.SetLimits(ctx, app.ID, gateway.Limits{
		RequestsPerSecond: gateway.MaxRequestsPerSecond, Burst: gateway.MaxBurst, DailyQuota: gateway.MaxDailyQuota,
	}); err != nil {
		return benchApp{}, fmt.Errorf("lift limits: %w", err)
	}
	return benchApp{ID: app.ID, ClientID: app.ClientID, ClientSecret: app.ClientSecret}, nil
}

// call sends a JSON request to the node and decodes the response, which
// must have status want.
func (n *benchNode) call(ctx context.Context, method, path, token string, body any, want int, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.URL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return n.do(req, want, into)
}

// do sends req and decodes the response, which must have status want.
func (n *benchNode) do(req *http.Request, want int, into any) error {
	res, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s, want %d", req.Method, req.URL.Path, res.StatusCode, b, want)
	}
	return json.Unmarshal(b, into)
}

// deleteStreams deletes every stream under prefix on the NATS at natsURL,
// even after ctx is done.
func deleteStreams(ctx context.Context, natsURL, prefix string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URL: natsURL, Prefix: prefix})
	if err != nil {
		return fmt.Errorf("delete streams under %s: %w", prefix, err)
	}
	defer b.Close()
	// bus.Stream names a stream <PREFIX>_<NAME>; the id in the prefix
	// keeps every other installation's streams out of the match.
	mine := strings.ToUpper(prefix) + "_"
	lister := b.JetStream().StreamNames(ctx)
	var streams []string
	for name := range lister.Name() {
		if strings.HasPrefix(name, mine) {
			streams = append(streams, name)
		}
	}
	errs := []error{lister.Err()}
	for _, name := range streams {
		if err := b.JetStream().DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Close undoes start-up in reverse order: servers, node, streams, schema,
// data.
func (n *benchNode) Close() error {
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		errs = append(errs, n.closers[i]())
	}
	n.closers = nil
	return errors.Join(errs...)
}
