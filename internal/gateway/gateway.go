// Package gateway sits in front of every API route: it authenticates the
// caller (an app's access token or a developer token), checks OAuth2 scopes,
// enforces per-app rate limits and daily quotas, honours Idempotency-Key on
// POST, records per-app API analytics, and proxies the bank's upstream APIs
// under /v1/ext/{prefix}/.
//
// The order for an app request is fixed: token -> scope -> rate limit ->
// daily quota -> idempotency key -> handler -> analytics. A developer's
// request (developer token) goes token -> rate limit -> daily quota ->
// idempotency key -> handler.
//
// What lives where, with several nodes behind a load balancer:
//
//   - Idempotency keys and analytics are in the shared database, so a retry
//     that lands on another node is still answered from the stored response,
//     and every node's counts add up in one place.
//   - Rate limits and daily quotas are budgets shared by all nodes, in a
//     NATS key-value bucket updated with compare-and-swap; nodes spend
//     them in short leases so a request rarely waits on NATS, and fall
//     back to their own buckets for a moment if NATS does not answer
//     (budget.go explains the design and its bounds). The limits
//     themselves are in the database, and every node re-reads them within
//     CacheTTL.
package gateway

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Authenticator turns credentials into callers. The identity package
// implements it.
type Authenticator interface {
	// AuthenticateApp verifies an access token (a JWT) and returns the app
	// it was issued to, with the token's scopes. It fails with EUNAUTHORIZED
	// (codes invalid_token, token_expired, app_inactive, token_revoked).
	AuthenticateApp(ctx context.Context, bearer string) (*auth.App, error)
	// AuthenticateDeveloper verifies a developer token. It fails with
	// EUNAUTHORIZED invalid_token.
	AuthenticateDeveloper(ctx context.Context, token string) (*auth.Developer, error)
	// AppOrganization returns the organization that owns an app. It fails
	// with ENOTFOUND app_not_found for an unknown or deleted app.
	AppOrganization(ctx context.Context, appID string) (string, error)
}

// TicketAuthenticator consumes the single-use stream tickets that routes
// declaring httpapi.SchemeStreamTicket accept. The identity package
// implements it.
type TicketAuthenticator interface {
	// AuthenticateTicket consumes a ticket and returns the app it was
	// issued to, with the scopes it carries. It fails with EUNAUTHORIZED
	// (codes invalid_ticket, ticket_expired, app_inactive, token_revoked).
	AuthenticateTicket(ctx context.Context, ticket string) (*auth.App, error)
}

// Limits are an app's rate limit and daily quota.
type Limits struct {
	// RequestsPerSecond is the token bucket's refill rate.
	RequestsPerSecond float64 `json:"requests_per_second"`
	// Burst is the bucket's size: how many requests may arrive at once.
	Burst int `json:"burst"`
	// DailyQuota is how many requests an app may make per UTC day.
	DailyQuota int64 `json:"daily_quota"`
}

// DefaultLimits apply to apps the bank has not given limits of their own.
var DefaultLimits = Limits{RequestsPerSecond: 50, Burst: 100, DailyQuota: 100000}

// Options configure a Gateway. Auth and Sealer are required; the rest have
// defaults.
type Options struct {
	Auth Authenticator
	// Tickets redeem stream tickets (the query parameter ticket) on the
	// routes that accept them; nil means no route does.
	Tickets TicketAuthenticator
	// Sealer encrypts what the gateway keeps that could reveal a secret:
	// the upstreams' signing secrets (see ResealSecrets) and the response
	// bodies kept for Idempotency-Key replays, one of which can carry a
	// secret shown once, such as an app's client secret (see
	// ResealResponses).
	Sealer *seal.Sealer
	Logger *slog.Logger
	// Bus holds the rate-limit and quota budgets every node shares (see
	// budget.go); New creates its key-value bucket. Without a bus each
	// node keeps its own budgets, which is right for one node only.
	Bus *bus.Bus
	// Registerer receives the gateway's metrics; nil means none.
	Registerer prometheus.Registerer
	// Now is the clock for rate limits, quotas, key expiry and analytics
	// minutes (latencies are always measured on the real clock). Tests set
	// it; the default is time.Now.
	Now func() time.Time
	// DefaultLimits apply to apps without limits of their own; the zero
	// value means the package's DefaultLimits.
	DefaultLimits Limits
	// FlushInterval is how often analytics are written to the database;
	// default 5s.
	FlushInterval time.Duration
	// CacheTTL is how long a node uses an app's limits or an upstream's
	// definition before reading them again; default 5s. Changes made
	// through the same node take effect at once.
	CacheTTL time.Duration
	// UpstreamTimeout bounds a proxied call, response body included;
	// default 30s.
	UpstreamTimeout time.Duration
}

// Gateway is the API gateway of one node.
type Gateway struct {
	db      *store.DB
	auth    Authenticator
	tickets TicketAuthenticator
	sealer  *seal.Sealer
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	defaults        Limits
	cacheTTL        time.Duration
	flushEvery      time.Duration
	upstreamTimeout time.Duration

	apps    appStates
	budgets *sharedBudgets // nil: node-local budgets
	// fallbackUntil (unix ns, real clock) is when to try the shared
	// budgets again after they could not be reached; 0 when they answer.
	fallbackUntil atomic.Int64

	analytics *aggregator
	upstreams *upstreamCache
	transport *http.Transport

	bus *bus.Bus // the shared budgets' home; nil: node-local budgets

	stop      context.CancelFunc // nil until Start
	done      chan struct{}
	closeOnce sync.Once
}

// Migrate creates or updates the gateway's tables.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "gateway", migrationFiles, "migrations")
}

// New returns a gateway over db, whose tables Migrate has created. It does
// no I/O and starts nothing: Start does.
func New(db *store.DB, opts Options) (*Gateway, error) {
	if db == nil {
		return nil, errors.New("gateway: a database is required")
	}
	if opts.Auth == nil {
		return nil, errors.New("gateway: an Authenticator is required")
	}
	if opts.Sealer == nil {
		return nil, errors.New("gateway: a Sealer is required to keep upstream secrets and stored responses")
	}
	g := &Gateway{
		db:              db,
		auth:            opts.Auth,
		tickets:         opts.Tickets,
		sealer:          opts.Sealer,
		log:             opts.Logger,
		now:             opts.Now,
		defaults:        opts.DefaultLimits,
		cacheTTL:        opts.CacheTTL,
		flushEvery:      opts.FlushInterval,
		upstreamTimeout: opts.UpstreamTimeout,
		bus:             opts.Bus,
		done:            make(chan struct{}),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.defaults == (Limits{}) {
		g.defaults = DefaultLimits
	}
	if d := g.defaults; !(d.RequestsPerSecond > 0) || d.Burst < 1 || d.DailyQuota < 1 {
		return nil, errors.New("gateway: DefaultLimits must all be positive")
	}
	if g.cacheTTL <= 0 {
		g.cacheTTL = 5 * time.Second
	}
	if g.flushEvery <= 0 {
		g.flushEvery = 5 * time.Second
	}
	if g.upstreamTimeout <= 0 {
		g.upstreamTimeout = 30 * time.Second
	}
	var err error
	if g.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	g.analytics = newAggregator()
	g.upstreams = newUpstreamCache()
	g.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: g.upstreamTimeout,
	}
	return g, nil
}

// Start opens the budgets shared through the bus, when Options.Bus is set,
// and starts the background work (analytics flushes, handing back unused
// budget leases). Call it once, before serving; Close stops it.
func (g *Gateway) Start(ctx context.Context) error {
	if g.bus != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		budgets, err := openSharedBudgets(ctx, g.bus)
		cancel()
		if err != nil {
			return err
		}
		g.budgets = budgets
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.stop = cancel
	go g.background(bg)
	return nil
}

// background flushes analytics every FlushInterval, hands expired leases
// back to the shared budgets every second, and forgets idle rate-limit
// state now and then. This node's own work only: the cluster's is in Jobs.
func (g *Gateway) background(ctx context.Context) {
	defer close(g.done)
	flush := time.NewTicker(g.flushEvery)
	defer flush.Stop()
	sweep := time.NewTicker(10 * time.Minute)
	defer sweep.Stop()
	settle := time.NewTicker(time.Second)
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-settle.C:
			g.settleLeases(ctx, false)
		case <-flush.C:
			if err := g.Flush(ctx); err != nil && ctx.Err() == nil {
				g.log.WarnContext(ctx, "analytics flush failed; counts kept for the next one", "error", err.Error())
			}
		case <-sweep.C:
			g.apps.sweep(g.now(), 10*time.Minute, g.budgets != nil)
		}
	}
}

// Close stops the background work, hands this node's leases back to the
// shared budgets and writes the analytics still in memory. Call it after
// the HTTP server has stopped serving, before the bus closes.
func (g *Gateway) Close() {
	g.closeOnce.Do(func() {
		if g.stop != nil {
			g.stop()
			<-g.done
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.settleLeases(ctx, true)
		if err := g.Flush(ctx); err != nil {
			g.log.ErrorContext(ctx, "final analytics flush failed; counts lost", "error", err.Error())
		}
		g.transport.CloseIdleConnections()
	})
}

// metrics are the gateway's Prometheus metrics.
type metrics struct {
	rejected        *prometheus.CounterVec
	budgetFallbacks prometheus.Counter
	replays         prometheus.Counter
	flushErrors     prometheus.Counter
	flushedCalls    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_rejected_total",
			Help: "Requests the gateway refused, by problem code.",
		}, []string{"code"}),
		budgetFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_gateway_budget_fallbacks_total",
			Help: "Rate-limit decisions made on the node's own bucket because the shared budgets could not be reached.",
		}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_gateway_idempotent_replays_total",
			Help: "Responses replayed for a repeated Idempotency-Key.",
		}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_gateway_analytics_flush_errors_total",
			Help: "Analytics flushes that failed (counts are kept for the next flush).",
		}),
		flushedCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_gateway_analytics_flushed_calls_total",
			Help: "Calls written to the analytics table.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rejected, m.budgetFallbacks, m.replays, m.flushErrors, m.flushedCalls} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
