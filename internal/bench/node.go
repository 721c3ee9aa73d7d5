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
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

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
	*api // the node over HTTP: its base URL, its admin token, a client
	// closers undo start-up, run in reverse by Close.
	closers undo
}

// startBenchNode starts a node on the database and bus opts name. It may
// deliver to loopback (webhook receivers and SPI servers of the benchmarks
// listen there), and its client keeps up to idleConns idle connections to
// each server.
func startBenchNode(ctx context.Context, opts Options, name string, idleConns int) (_ *benchNode, err error) {
	n := &benchNode{api: newAPI("", randomToken("cwadm_bench_"), idleConns)}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	n.closers = append(n.closers, func() error { n.client.CloseIdleConnections(); return nil })
	dir, err := os.MkdirTemp("", "causeway-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() error { return os.RemoveAll(dir) })
	cfg := platform.Config{
		DataDir:             dir,
		Mode:                platform.ModeSandbox,
		Version:             "bench",
		AdminToken:          n.Admin,
		Logger:              slog.New(slog.DiscardHandler),
		Testing:             platform.Testing{PasswordCost: benchPasswordCost},
		AllowPrivateTargets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		// Every benchmark signs up from 127.0.0.1; a run of all of them,
		// and runs one after the other, must not meet the sign-up brake.
		SignupRate: 1 << 20,
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
	// Listen first: the node's issuer is the address it is reached at.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg.Addr = ln.Addr().String()
	n.Platform, err = platform.New(ctx, cfg)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.closers = append(n.closers, func() error { n.Platform.Close(); return nil })
	url, stop := serveOn(ln, n.Handler())
	n.URL = url
	n.closers = append(n.closers, stop)
	return n, nil
}

// serveLoopback serves h on a new loopback listener with the server
// settings of platform.Serve, until stop, and returns its base URL.
func serveLoopback(h http.Handler) (url string, stop func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	url, stop = serveOn(ln, h)
	return url, stop, nil
}

// serveOn serves h on ln with the server settings of platform.Serve,
// until stop, and returns its base URL.
func serveOn(ln net.Listener, h http.Handler) (url string, stop func() error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), srv.Close
}

// api is a Causeway node as developers and the bank reach it: over HTTP at
// its base URL, the bank's part with its admin token. What a benchmark
// does through it is the public contract only, so it works the same on a
// node this process started and on a running server (Options.Server).
type api struct {
	URL    string // base URL, without a trailing slash
	Admin  string // the bank admin token
	client *http.Client
}

// newAPI returns an api for the node at url whose client keeps up to
// idleConns idle connections to each server.
func newAPI(url, admin string, idleConns int) *api {
	return &api{URL: strings.TrimRight(url, "/"), Admin: admin, client: &http.Client{Transport: &http.Transport{
		// Never through an environment's proxy: it would be measured too.
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: idleConns,
		IdleConnTimeout:     90 * time.Second,
		// Bounds a call to a node that accepts connections but never
		// answers; a long body (a dataset) may take as long as it takes.
		ResponseHeaderTimeout: time.Minute,
	}}}
}

// benchApp is an app a benchmark signed up, with its one-time secret and
// the token of the developer who owns it.
type benchApp struct {
	ID, ClientID, ClientSecret string
	DevToken                   string
}

// signUpApp goes from sign-up to an active app over HTTP, as a developer
// does: a new developer (under an e-mail address of its own, so runs
// against a shared server never collide) creates the app. Then the bank
// lifts the app's rate limit and daily quota out of the way (PUT
// /bank/v1/apps/{id}/limits): the default 50 requests/s would turn a run
// into 429s (the limiter and the quota counter still run on every
// request).
func (a *api) signUpApp(ctx context.Context, name string, scopes []string) (benchApp, error) {
	var dev struct {
		Token string `json:"token"`
	}
	email := randomToken("bench-") + "@example.com"
	if err := a.call(ctx, http.MethodPost, "/v1/developers", "", map[string]any{
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
	if err := a.call(ctx, http.MethodPost, "/v1/apps", dev.Token, map[string]any{"name": name, "scopes": scopes},
		http.StatusCreated, &app); err != nil {
		return benchApp{}, fmt.Errorf("create app: %w", err)
	}
	created := benchApp{ID: app.ID, ClientID: app.ClientID, ClientSecret: app.ClientSecret, DevToken: dev.Token}
	if app.Status != auth.AppActive {
		return benchApp{}, errors.Join(fmt.Errorf("new app is %s, want active (sandbox mode)", app.Status), a.deleteApp(ctx, created))
	}
	if err := a.call(ctx, http.MethodPut, "/bank/v1/apps/"+app.ID+"/limits", a.Admin, map[string]any{
		"requests_per_second": gateway.MaxRequestsPerSecond, "burst": gateway.MaxBurst, "daily_quota": gateway.MaxDailyQuota,
	}, http.StatusOK, nil); err != nil {
		return benchApp{}, errors.Join(fmt.Errorf("lift limits: %w", err), a.deleteApp(ctx, created))
	}
	return created, nil
}

// deleteApp deletes app as its developer: its credentials and tokens stop
// working, even after ctx is done.
func (a *api) deleteApp(ctx context.Context, app benchApp) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := a.call(ctx, http.MethodDelete, "/v1/apps/"+app.ID, app.DevToken, nil, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("delete app %s: %w", app.ID, err)
	}
	return nil
}

// tokens returns a token source for app's access tokens from
// /oauth2/token (client credentials), renewing each before it expires, for
// long runs.
func (a *api) tokens(ctx context.Context, app benchApp) oauth2.TokenSource {
	cc := clientcredentials.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, TokenURL: a.URL + "/oauth2/token"}
	return cc.TokenSource(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, a.client))
}

// accessToken gets one access token for app from /oauth2/token.
func (a *api) accessToken(ctx context.Context, app benchApp) (string, error) {
	tok, err := a.tokens(ctx, app).Token()
	if err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	return tok.AccessToken, nil
}

// apiError is an answer of a node other than the one a call wanted, with
// the machine code of its problem+json body when it has one.
type apiError struct {
	Method, Path string
	Status, Want int
	Code, Detail string // of the problem, if the body was one
	Body         []byte
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s, want %d", e.Method, e.Path, e.Status, bytes.TrimSpace(e.Body), e.Want)
}

// problemCode is the machine code of the node's answer in err, or "".
func problemCode(err error) string {
	var e *apiError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// call sends a JSON request to the node and decodes the response, which
// must have status want, into into (unless into is nil).
func (a *api) call(ctx context.Context, method, path, token string, body any, want int, into any) error {
	req, err := jsonRequest(ctx, method, a.URL+path, body)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return a.do(req, want, into)
}

// jsonRequest is a request to url with body as JSON (none when body is
// nil).
func jsonRequest(ctx context.Context, method, url string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends req and decodes the response, which must have status want,
// into into (unless into is nil).
func (a *api) do(req *http.Request, want int, into any) error {
	res, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		e := &apiError{Method: req.Method, Path: req.URL.Path, Status: res.StatusCode, Want: want, Body: b}
		var p struct{ Code, Detail string }
		if json.Unmarshal(b, &p) == nil {
			e.Code, e.Detail = p.Code, p.Detail
		}
		return e
	}
	if into == nil {
		return nil
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

// undo is what a rig set up and its Close undoes, in reverse order.
type undo []func() error

// Close runs every function of u, the last added first, once: u is empty
// afterwards. It returns their errors joined.
func (u *undo) Close() error {
	var errs []error
	for i := len(*u) - 1; i >= 0; i-- {
		errs = append(errs, (*u)[i]())
	}
	*u = nil
	return errors.Join(errs...)
}

// Close undoes start-up in reverse order: servers, node, streams, schema,
// data.
func (n *benchNode) Close() error {
	return n.closers.Close()
}
