package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/spi"
)

// spiDeadline is the deadline of the hanging endpoint's registration.
const spiDeadline = 100 * time.Millisecond

// spiBenchApp is the app whose payments the fraud checks are for.
const spiBenchApp = "app_bench_spi"

// spiAnswer is the fraud-check answer of the benchmark's endpoint, valid
// against the point's response schema.
var spiAnswer = []byte(`{"decision":"approve","score":12,"reason":"known payee, usual amount"}`)

// SPI measures payments.fraud-check calls through the SPI invoker (finding
// the registrations, checking the payload against the point's schema,
// signing, the deadline, checking the answer, the circuit breaker and the
// audit row) beside direct signed POSTs of the same call from this process
// to the same loopback endpoint, one after the other with the same
// concurrency and bounds: calls per second, p50 and p99, and the latency
// the invoker adds at the median. Then an endpoint that never answers,
// registered with a 100 ms deadline and the stand-in policy: how late past
// the deadline the (stand-in) answers come back, beside the deadline.
//
// The service runs on a fresh SQLite file, or a fresh PostgreSQL schema
// with opts.DatabaseURL. It fails when a call through the invoker is not
// the endpoint's answer, or a call to the hanging endpoint is not the
// stand-in.
//
// With opts.Server the invoker is the server's, reached as a bank process
// reaches it: POST /bank/v1/extension-points/payments.fraud-check/invoke
// for an app signed up there, whose own (app-scope) registrations point at
// the endpoints on 127.0.0.1, so the server must run on this machine and
// allow 127.0.0.0/8 as a target. Those calls include the bank process's
// round trip to the server, so their figures are named invoke_*. The
// server's circuit breakers cannot be switched off from here: each
// registration of the hanging endpoint takes fewer calls than open its
// breaker (spi.DefaultBreakerFailures), then makes way for a new one.
func SPI(ctx context.Context, opts Options) (*Report, error) {
	run := spiBench
	if opts.Server != "" {
		run = spiOnServer
	}
	r, err := run(ctx, opts.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("spi: %w", err)
	}
	return r, nil
}

func spiBench(ctx context.Context, opts Options) (*Report, error) {
	rig, err := startSPIRig(ctx, opts.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer rig.Close()

	fast, secret, err := rig.register(ctx, rig.fastURL, 0)
	if err != nil {
		return nil, err
	}
	direct, err := newDirectCaller(rig.fastURL, secret)
	if err != nil {
		return nil, err
	}
	defer direct.client.CloseIdleConnections()
	// One of each first, so the prepared statements and a connection
	// exist before anything is timed.
	if err := direct.call(ctx); err != nil {
		return nil, fmt.Errorf("direct warm-up: %w", err)
	}
	if err := rig.callAnswered(ctx); err != nil {
		return nil, fmt.Errorf("invoker warm-up: %w", err)
	}

	// Cheapest first, so the audit the invoker leaves behind does not fall
	// on the baseline.
	posts, err := runLoad(ctx, opts, func(ctx context.Context, _ *mrand.Rand) error { return direct.call(ctx) })
	if err != nil {
		return nil, fmt.Errorf("direct: a POST failed after %d succeeded: %w", posts.ops, err)
	}
	calls, err := runLoad(ctx, opts, func(ctx context.Context, _ *mrand.Rand) error { return rig.callAnswered(ctx) })
	if err != nil {
		return nil, fmt.Errorf("invoker: a call failed after %d succeeded: %w", calls.ops, err)
	}

	// The hanging endpoint alone at the point: the fast one steps aside.
	if _, err := rig.svc.Deactivate(ctx, auth.BankProcess(), fast.ID); err != nil {
		return nil, fmt.Errorf("deactivate: %w", err)
	}
	if _, _, err := rig.register(ctx, rig.hangURL, spiDeadline); err != nil {
		return nil, err
	}
	hung, err := runLoad(ctx, opts, func(ctx context.Context, _ *mrand.Rand) error { return rig.callStandIn(ctx) })
	if err != nil {
		return nil, fmt.Errorf("hanging endpoint: a call failed after %d succeeded: %w", hung.ops, err)
	}

	r := NewReport("spi", opts.runtime(false))
	r.Figures = append(r.Figures,
		NewFigure("spi_calls_per_s", calls.perSecond(), "1/s", "direct_posts_per_s", posts.perSecond()),
		NewFigure("spi_p50", ms(calls.percentile(0.50)), "ms", "direct_p50", ms(posts.percentile(0.50))),
		NewFigure("spi_p99", ms(calls.percentile(0.99)), "ms", "direct_p99", ms(posts.percentile(0.99))),
		// Beside the direct median, so the ratio says how much the
		// invoker adds relative to the call itself.
		NewFigure("added_latency_p50", ms(calls.percentile(0.50)-posts.percentile(0.50)), "ms", "direct_p50", ms(posts.percentile(0.50))),
		NewFigure("added_latency_p99", ms(calls.percentile(0.99)-posts.percentile(0.99)), "ms", "direct_p99", ms(posts.percentile(0.99))),
		NewFigure("lateness_p50", ms(hung.percentile(0.50)-spiDeadline), "ms", "deadline", ms(spiDeadline)),
		NewFigure("lateness_p99", ms(hung.percentile(0.99)-spiDeadline), "ms", "deadline", ms(spiDeadline)),
	)
	return r, nil
}

// spiRig is an SPI service on a fresh database with two loopback
// endpoints: one that answers a valid fraud check at once, and one that
// never answers.
type spiRig struct {
	svc              *spi.Service
	fastURL, hangURL string
	payload          map[string]any
	closers          undo
}

func startSPIRig(ctx context.Context, databaseURL string) (_ *spiRig, err error) {
	g := &spiRig{payload: spiFraudPayload()}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.Close())
		}
	}()
	ep := startSPIEndpoints()
	g.closers = append(g.closers, func() error { ep.Close(); return nil })
	g.fastURL, g.hangURL = ep.fastURL, ep.hangURL
	db, err := openFresh(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, db.Close)
	// The bank's decisions append to the audit trail.
	if err := audit.Migrate(ctx, db.DB); err != nil {
		return nil, err
	}
	if err := spi.Migrate(ctx, db.DB); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := seal.New(key)
	if err != nil {
		return nil, err
	}
	g.svc, err = spi.New(db.DB, spi.Options{
		Sealer:     sealer,
		Guard:      loopbackGuard,
		Registerer: prometheus.NewRegistry(),
		Logger:     slog.New(slog.DiscardHandler),
		// Every call to the hanging endpoint must wait for its deadline:
		// an open breaker would answer at once and measure the breaker.
		BreakerFailures: math.MaxUint32,
	})
	if err != nil {
		return nil, err
	}
	if err := g.svc.Start(ctx); err != nil {
		return nil, err
	}
	g.closers = append(g.closers, func() error { g.svc.Close(); return nil })
	return g, nil
}

// spiEndpoints are the benchmark's two loopback endpoints: one that
// answers a valid fraud check at once, and one that never answers.
type spiEndpoints struct {
	fastURL, hangURL string
	fast, hang       *httptest.Server
	quit             chan struct{}
}

func startSPIEndpoints() *spiEndpoints {
	ep := &spiEndpoints{quit: make(chan struct{})}
	ep.fast = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(spiAnswer)
	}))
	ep.fastURL = ep.fast.URL + "/fraud-check"
	// The hanging handler returns when the caller hangs up, or at Close.
	ep.hang = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-ep.quit:
		}
	}))
	ep.hangURL = ep.hang.URL + "/fraud-check"
	return ep
}

func (ep *spiEndpoints) Close() {
	ep.fast.Close()
	close(ep.quit)
	ep.hang.Close()
}

func spiOnServer(ctx context.Context, opts Options) (*Report, error) {
	srv, err := connectServer(ctx, opts, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	ep := startSPIEndpoints()
	defer ep.Close()
	app, err := srv.signUp(ctx, "SPI benchmark", []string{auth.ScopeSPIWrite})
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	token, err := srv.accessToken(ctx, app)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	rig := &spiServerRig{server: srv, token: token, appID: app.ID, payload: spiFraudPayload()}

	fast, secret, err := rig.register(ctx, ep.fastURL, 0)
	if err != nil {
		return nil, err
	}
	direct, err := newDirectCaller(ep.fastURL, secret)
	if err != nil {
		return nil, err
	}
	defer direct.client.CloseIdleConnections()
	if err := direct.call(ctx); err != nil {
		return nil, fmt.Errorf("direct warm-up: %w", err)
	}
	if err := rig.invokeAnswered(ctx); err != nil {
		return nil, fmt.Errorf("invoke warm-up: %w", err)
	}
	posts, err := runLoad(ctx, opts, func(ctx context.Context, _ *mrand.Rand) error { return direct.call(ctx) })
	if err != nil {
		return nil, fmt.Errorf("direct: a POST failed after %d succeeded: %w", posts.ops, err)
	}
	calls, err := runLoad(ctx, opts, func(ctx context.Context, _ *mrand.Rand) error { return rig.invokeAnswered(ctx) })
	if err != nil {
		return nil, fmt.Errorf("invoke: a call failed after %d succeeded: %w", calls.ops, err)
	}

	// The hanging endpoint alone at the point for the app.
	if err := rig.unregister(ctx, fast); err != nil {
		return nil, err
	}
	hung, err := rig.hangingCalls(ctx, opts, ep.hangURL)
	if err != nil {
		return nil, fmt.Errorf("hanging endpoint: %w", err)
	}

	r := srv.report("spi")
	r.Figures = append(r.Figures,
		NewFigure("invoke_calls_per_s", calls.perSecond(), "1/s", "direct_posts_per_s", posts.perSecond()),
		NewFigure("invoke_p50", ms(calls.percentile(0.50)), "ms", "direct_p50", ms(posts.percentile(0.50))),
		NewFigure("invoke_p99", ms(calls.percentile(0.99)), "ms", "direct_p99", ms(posts.percentile(0.99))),
		NewFigure("added_latency_p50", ms(calls.percentile(0.50)-posts.percentile(0.50)), "ms", "direct_p50", ms(posts.percentile(0.50))),
		NewFigure("added_latency_p99", ms(calls.percentile(0.99)-posts.percentile(0.99)), "ms", "direct_p99", ms(posts.percentile(0.99))),
		NewFigure("lateness_p50", ms(hung.percentile(0.50)-spiDeadline), "ms", "deadline", ms(spiDeadline)),
		NewFigure("lateness_p99", ms(hung.percentile(0.99)-spiDeadline), "ms", "deadline", ms(spiDeadline)),
	)
	return r, nil
}

// spiServerRig is an app of a server with registrations at
// payments.fraud-check, called as a bank process calls the point.
type spiServerRig struct {
	*server
	token, appID string
	payload      map[string]any
	// live are the registrations not deleted yet; the server's Close
	// deletes them.
	live sync.Map
}

// register registers url for the app at payments.fraud-check, with the
// stand-in policy and the given deadline (0: the point's default). An
// app's own registration is active at once. It returns the registration's
// id and its signing secret.
func (g *spiServerRig) register(ctx context.Context, url string, deadline time.Duration) (string, string, error) {
	var reg struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Secret string `json:"secret"`
	}
	if err := g.call(ctx, http.MethodPost, "/v1/spi-registrations", g.token, map[string]any{
		"extension_point": core.PointFraudCheck, "url": url, "scope": spi.ScopeApp,
		"timeout_ms": int(deadline / time.Millisecond), "on_failure": spi.OnFailureStandIn,
	}, http.StatusCreated, &reg); err != nil {
		return "", "", fmt.Errorf("register %s: %w", url, refusedTarget(err, url))
	}
	g.live.Store(reg.ID, true)
	g.closers = append(g.closers, func() error {
		if _, live := g.live.Load(reg.ID); !live {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return g.unregister(ctx, reg.ID)
	})
	if reg.Status != spi.StatusActive {
		return "", "", fmt.Errorf("register %s: the registration is %s, want active", url, reg.Status)
	}
	return reg.ID, reg.Secret, nil
}

// unregister deletes registration id.
func (g *spiServerRig) unregister(ctx context.Context, id string) error {
	if err := g.call(ctx, http.MethodDelete, "/v1/spi-registrations/"+id, g.token, nil, http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("delete registration %s: %w", id, err)
	}
	g.live.Delete(id)
	return nil
}

// invoke is one fraud check for the app, as a bank process makes it.
func (g *spiServerRig) invoke(ctx context.Context) (spi.InvokeResult, error) {
	var a spi.InvokeResult
	err := g.call(ctx, http.MethodPost, "/bank/v1/extension-points/"+core.PointFraudCheck+"/invoke", g.Admin,
		map[string]any{"app_id": g.appID, "payload": g.payload}, http.StatusOK, &a)
	return a, err
}

// invokeAnswered is a call that must be the endpoint's own answer.
func (g *spiServerRig) invokeAnswered(ctx context.Context) error {
	a, err := g.invoke(ctx)
	if err != nil {
		return err
	}
	if !a.Answered || a.StandIn || a.Failed {
		return fmt.Errorf("answer = %+v, want the endpoint's", a)
	}
	return nil
}

// hangingCalls calls the point with only a registration of the hanging
// endpoint, under spiDeadline, until opts.Duration has passed or
// opts.MaxOps calls were made; every call must end in the stand-in after
// the deadline. A registration takes one call fewer than open its circuit
// breaker (on each node), so no call measures an open breaker instead of
// the deadline; then a new registration takes over.
func (g *spiServerRig) hangingCalls(ctx context.Context, opts Options, url string) (load, error) {
	const perRegistration = spi.DefaultBreakerFailures - 1
	var all load
	start := time.Now()
	deadline := start.Add(opts.Duration)
	for all.ops < opts.MaxOps {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		id, _, err := g.register(ctx, url, spiDeadline)
		if err != nil {
			return all, err
		}
		batch := Options{Duration: left, Concurrency: min(opts.Concurrency, perRegistration),
			MaxOps: min(perRegistration, opts.MaxOps-all.ops)}
		l, err := runLoad(ctx, batch, func(ctx context.Context, _ *mrand.Rand) error {
			a, err := g.invoke(ctx)
			if err != nil {
				return err
			}
			if !a.Answered || !a.StandIn || strings.HasPrefix(a.Reason, "circuit open") {
				return fmt.Errorf("answer = %+v, want the stand-in after the deadline", a)
			}
			return nil
		})
		all.ops += l.ops
		all.latencies = append(all.latencies, l.latencies...)
		if err != nil {
			return all, fmt.Errorf("a call failed after %d succeeded: %w", all.ops, err)
		}
		if err := g.unregister(ctx, id); err != nil {
			return all, err
		}
	}
	all.elapsed = time.Since(start)
	slices.Sort(all.latencies)
	return all, nil
}

// loopbackGuard lets SPI calls reach loopback, as --allow-private-targets
// 127.0.0.0/8 does.
var loopbackGuard = netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// register registers url at payments.fraud-check in the bank's scope and
// activates it with the stand-in policy and the given deadline (0: the
// point's default). It returns the registration and its signing secret.
func (g *spiRig) register(ctx context.Context, url string, deadline time.Duration) (*spi.Registration, string, error) {
	timeout := int(deadline / time.Millisecond)
	r, secret, err := g.svc.CreateRegistration(ctx, auth.AppCaller(spiBenchApp), spi.NewRegistration{
		ExtensionPoint: core.PointFraudCheck, URL: url, Scope: spi.ScopeBank, TimeoutMS: timeout,
	})
	if err != nil {
		return nil, "", fmt.Errorf("register %s: %w", url, err)
	}
	if r, err = g.svc.Activate(ctx, auth.BankProcess(), r.ID, spi.Activation{TimeoutMS: timeout, OnFailure: spi.OnFailureStandIn}); err != nil {
		return nil, "", fmt.Errorf("activate %s: %w", url, err)
	}
	return r, secret, nil
}

// call is one fraud check through the invoker, as the bank's payment
// makes it.
func (g *spiRig) call(ctx context.Context) (core.ExtensionAnswer, error) {
	return g.svc.Call(ctx, core.ExtensionCall{Point: core.PointFraudCheck, AppID: spiBenchApp, Payload: g.payload})
}

// callAnswered is a call that must be the endpoint's own answer.
func (g *spiRig) callAnswered(ctx context.Context) error {
	a, err := g.call(ctx)
	if err != nil {
		return err
	}
	if !a.Answered || a.StandIn || a.Failed {
		return fmt.Errorf("answer = %+v, want the endpoint's", a)
	}
	return nil
}

// callStandIn is a call that must end in the stand-in answer.
func (g *spiRig) callStandIn(ctx context.Context) error {
	a, err := g.call(ctx)
	if err != nil {
		return err
	}
	if !a.Answered || !a.StandIn {
		return fmt.Errorf("answer = %+v, want the stand-in", a)
	}
	return nil
}

func (g *spiRig) Close() error {
	return g.closers.Close()
}

// spiFraudPayload is a fraud-check request as the sandbox bank makes one:
// the pending payment and its debtor.
func spiFraudPayload() map[string]any {
	return map[string]any{
		"payment": map[string]any{
			"id": "pay_01jd3k7m9q6x4t2w8y5z0abcde", "debtor_account_id": "acc_01jd3k7m9q6x4t2w8y5z0abcde",
			"creditor": map[string]any{"account_id": "acc_01jd3k7m9q6x4t2w8y5z0fghij", "iban": "NL91CWAY0417164300"},
			"amount":   map[string]any{"amount": "12.34", "currency": "EUR"}, "reference": "rent", "status": "pending",
		},
		"debtor": map[string]any{
			"id": "cus_01jd3k7m9q6x4t2w8y5z0abcde", "type": "person", "name": "Ada Lovelace",
			"email": "ada@example.com", "kyc_status": "verified",
		},
	}
}

// directCaller is the baseline: what a bank process would do without the
// platform. It sends the same call body the invoker sends, signed the
// Standard Webhooks way with the registration's secret, under the same
// deadline, on a transport with the invoker's settings, and reads the
// answer.
type directCaller struct {
	url     string
	client  *http.Client
	signer  *standardwebhooks.Webhook
	payload map[string]any
}

func newDirectCaller(url, secret string) (*directCaller, error) {
	signer, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	transport := loopbackGuard.Transport()
	transport.MaxIdleConnsPerHost = 64 // as the invoker's
	return &directCaller{
		url: url, signer: signer, payload: spiFraudPayload(),
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func (d *directCaller) call(ctx context.Context) error {
	timeout := 1500 * time.Millisecond // the point's default deadline
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	payload, err := json.Marshal(d.payload)
	if err != nil {
		return err
	}
	id := ids.New("inv")
	body, err := json.Marshal(spi.CallBody{
		ID: id, ExtensionPoint: core.PointFraudCheck,
		Deadline: deadline.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Payload: payload,
	})
	if err != nil {
		return err
	}
	now := time.Now()
	sig, err := d.signer.Sign(id, now, body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(spi.HeaderID, id)
	req.Header.Set(spi.HeaderTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(spi.HeaderSignature, sig)
	res, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, spi.DefaultMaxResponseBytes+1))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", d.url, res.StatusCode, raw)
	}
	var answer struct {
		Decision string `json:"decision"`
		Score    int    `json:"score"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.Decision != "approve" {
		return fmt.Errorf("POST %s: answer %s: %v", d.url, raw, err)
	}
	return nil
}
