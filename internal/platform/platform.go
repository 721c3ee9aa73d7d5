// Package platform is the composition root: it opens the store and the bus,
// wires the capability packages onto the HTTP server in start-up order, runs
// the background workers, and shuts everything down in reverse.
package platform

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/audit/auditapi"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/core/coreapi"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/dirlock"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/foureyes"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/portal"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/sso"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/throttle"
	"github.com/causewayhq/causeway/internal/webhooks"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Platform is one running node.
type Platform struct {
	cfg        Config
	log        *slog.Logger
	started    time.Time
	instanceID string
	nodeID     string
	// draining is set while a stopping node waits out ShutdownDelay.
	draining   atomic.Bool
	adminToken string
	// issuer is the base URL and OAuth2 issuer (Config.Issuer).
	issuer string
	runCtx context.Context

	DB    *store.DB
	Bus   *bus.Bus
	HTTP  *httpapi.Server
	Bank  *core.Bank
	Relay *outbox.Relay
	// Lease elects the node that publishes the outbox and runs the
	// cluster's periodic jobs (package leader).
	Lease     *leader.Lease
	Identity  *identity.Service
	Gateway   *gateway.Gateway
	Events    *events.Service
	SPI       *spi.Service
	Webhooks  *webhooks.Service
	Datashare *datashare.Service
	// FourEyes holds back the decisions that need a second operator.
	FourEyes *foureyes.Service
	// SSO logs operators in to the console with the bank's OpenID
	// Connect provider; nil without --oidc-issuer.
	SSO *sso.Login
	// Audit is the bank's audit trail (package audit).
	Audit *audit.Trail
	// Guard refuses webhook and SPI URLs on private networks unless the
	// operator's allow-list covers them.
	Guard netguard.Guard
	// Counters count failed logins and sign-ups, and StreamSlots the open
	// event streams per app, for every node (package throttle).
	Counters    *throttle.Counters
	StreamSlots *throttle.Streams

	portal   *portal.Portal
	registry *prometheus.Registry
	// agentKey keys the in-process data agent's pseudonyms; nil with an
	// external agent.
	agentKey []byte
	agent    *agent.Agent
	// Sealer encrypts secrets stored in the database that must be read back.
	Sealer *seal.Sealer
	// background work (the outbox relay) runs until Close cancels it.
	stop    context.CancelFunc
	workers sync.WaitGroup
	closers []func()
}

// New opens a node and starts it. It does not listen; see Run or Handler.
//
// Its four steps are the start-up order, read top to bottom, and Close
// undoes what they did in reverse:
//
//  1. open: the data dir, the database with every package's tables, the
//     bus, the secrets and the throttles every node shares: the I/O every
//     service needs;
//  2. build: every service, wired to those it needs; constructors do no
//     I/O and start nothing;
//  3. routes: the HTTP surface;
//  4. start: each service's Start and background Run, in order, then the
//     cluster's periodic jobs.
func New(ctx context.Context, cfg Config) (_ *Platform, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeSandbox
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "causeway-data"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	issuer, err := cfg.Issuer()
	if err != nil {
		return nil, err
	}
	// Every component's logger names the request of a context it is given.
	log := slog.New(httpapi.LogRequestIDs(cfg.Logger.Handler()))
	p := &Platform{cfg: cfg, log: log, started: time.Now(), nodeID: newNodeID(), issuer: issuer}
	p.runCtx, p.stop = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			p.Close()
		}
		if errors.Is(err, seal.ErrWrongKey) {
			// Whichever capability found it, say what to do.
			err = fmt.Errorf("stored secrets need a key that is not in --secret-key: start this node with the key "+
				"the other nodes use (NEW,OLD during a rotation): %w", err)
		}
	}()
	if err := p.open(ctx); err != nil {
		return nil, err
	}
	if err := p.build(); err != nil {
		return nil, err
	}
	p.routes()
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// open does the I/O the services need before they can be built: the data
// dir and its lock, the database and its tables, the bus, the admin token
// and the secret keys, the throttles every node shares and the events
// stream.
func (p *Platform) open(ctx context.Context) error {
	cfg := p.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := checkWritable(cfg.DataDir); err != nil {
		return err
	}
	if err := p.lockDataDir(); err != nil {
		return err
	}
	var err error
	p.DB, err = store.Open(ctx, store.Config{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	p.closers = append(p.closers, func() { p.DB.Close() })
	if err := p.migrate(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}

	p.Bus, err = bus.Open(ctx, bus.Config{URL: cfg.NATSURL, DataDir: cfg.DataDir, ListenAddr: cfg.NATSListen, Prefix: cfg.BusPrefix})
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	p.closers = append(p.closers, p.Bus.Close)

	// After the database and the bus, so a start that fails on them says
	// only that.
	if err := p.loadAdminToken(); err != nil {
		return err
	}
	p.warnings()
	keys, err := seal.LoadKeys(cfg.SecretKey, cfg.DataDir)
	if err != nil {
		return err
	}
	if p.Sealer, err = seal.New(keys[0], keys[1:]...); err != nil {
		return err
	}
	if cfg.DataAgent != DataAgentExternal {
		if p.agentKey, err = agent.LoadKey(cfg.DataAgentKey, cfg.DataDir); err != nil {
			return err
		}
	}

	if err := p.openThrottles(ctx); err != nil {
		return err
	}
	if _, err := outbox.EnsureStream(ctx, p.Bus, cfg.EventStream); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// build makes every service and wires it to those it needs, in the order
// of the four building blocks: the bank and its events, the APIs, the
// SPIs (within buildAPI), data partnering, then the console's single
// sign-on and the portal over all of them. Nothing here does I/O or
// starts a goroutine.
func (p *Platform) build() error {
	reg := prometheus.NewRegistry()
	p.registry = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.HTTP = httpapi.New(httpapi.Config{
		Version:        p.cfg.Version,
		AdminToken:     p.adminToken,
		Logger:         p.log,
		Registerer:     reg,
		TrustedProxies: p.cfg.TrustedProxies,
		PublicURL:      p.issuer,
	})
	p.Audit = audit.New(p.DB)
	p.Guard = p.guard()
	if err := p.buildBank(); err != nil {
		return err
	}
	if err := p.buildAPI(); err != nil {
		return err
	}
	if err := p.buildDatashare(); err != nil {
		return err
	}
	if err := p.buildSSO(); err != nil {
		return err
	}
	p.buildPortal()
	return nil
}

// routes registers the HTTP surface: the bank's API under /bank/v1, the
// gateway's middleware in front of the public /v1 API, and the portal.
// The order of registration is the OpenAPI document's order of tags.
func (p *Platform) routes() {
	p.HTTP.Handle("GET /healthz", http.HandlerFunc(p.healthz))
	p.HTTP.Handle("GET /readyz", http.HandlerFunc(p.readyz))
	if p.metricsOnMainListener() {
		p.HTTP.Handle("GET /metrics", p.MetricsHandler())
	}
	p.registerStatus()
	auditapi.Register(p.HTTP, p.Audit, p.log.With("component", "audit"))
	coreapi.Register(p.HTTP, p.Bank)
	p.Events.Register(p.HTTP)
	p.Webhooks.Register(p.HTTP)
	p.HTTP.Use(p.Gateway.Middleware(p.HTTP))
	p.Identity.Register(p.HTTP)
	p.FourEyes.Register(p.HTTP)
	p.Gateway.Register(p.HTTP)
	coreapi.RegisterPublic(p.HTTP, p.Bank)
	p.SPI.Register(p.HTTP)
	p.Datashare.Register(p.HTTP)
	p.portal.Register(p.HTTP)
}

// start brings the services up, each after those it calls: the lease and
// the stream slots, the sandbox bank and the relay publishing its events,
// identity (the token signing keys), the gateway, webhook delivery, the
// SPI's record writer, then the re-sealing of stored secrets, data
// partnering and the cluster's periodic jobs. A service with a Close is
// closed, in reverse, by Close.
func (p *Platform) start(ctx context.Context) error {
	p.background(p.StreamSlots.Run)
	p.background(p.Lease.Run)
	if seeded, err := p.Bank.EnsureBankSandbox(ctx, SandboxSeed); err != nil {
		return fmt.Errorf("sandbox seed: %w", err)
	} else if seeded {
		p.log.InfoContext(ctx, "seeded the sandbox bank", "customers", core.BankSandboxCustomers)
	}
	p.background(p.Relay.Run)

	if err := p.Identity.Start(ctx); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := p.Gateway.Start(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	p.closers = append(p.closers, p.Gateway.Close)
	if err := p.Webhooks.Start(ctx); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	p.closers = append(p.closers, p.Webhooks.Close)
	p.background(p.Webhooks.Run)
	if err := p.SPI.Start(ctx); err != nil {
		return fmt.Errorf("spi: %w", err)
	}
	p.closers = append(p.closers, p.SPI.Close)

	if err := p.resealSecrets(ctx); err != nil {
		return err
	}
	if err := p.startDatashare(ctx); err != nil {
		return err
	}
	p.scheduleJobs()
	return nil
}

// resealSecrets re-seals with the first key of --secret-key the webhook,
// SPI and upstream signing secrets and the stored idempotent responses
// sealed with an older one (identity's Start does the same for the token
// signing keys), and seals the upstream secrets and responses an older
// version stored in the clear. It fails when a stored secret opens with no
// key given: such a node would fail its deliveries and SPI calls, and is
// better refused than added to the load balancer.
func (p *Platform) resealSecrets(ctx context.Context) error {
	if _, err := p.Webhooks.ResealSecrets(ctx); err != nil {
		return err
	}
	if _, err := p.SPI.ResealSecrets(ctx); err != nil {
		return err
	}
	if _, err := p.Gateway.ResealSecrets(ctx); err != nil {
		return err
	}
	if _, err := p.Gateway.ResealResponses(ctx); err != nil {
		return err
	}
	if n := p.Sealer.Keys(); n > 1 {
		p.log.InfoContext(ctx, "secret key rotation: stored secrets are sealed with the first key of --secret-key; "+
			"once every node has started with this list, the older keys can go", "keys", n)
	}
	return nil
}

// buildBank makes the sandbox bank, writing its events to the outbox,
// the relay that publishes them under the cluster's lease, the event
// catalogue, feed and stream, and webhook delivery.
func (p *Platform) buildBank() error {
	p.Lease = leader.New(p.DB, leader.Options{Name: outbox.LeaseName, NodeID: p.nodeID, Logger: p.log.With("component", "leader")})
	p.Relay = outbox.NewRelay(p.DB, p.Bus, outbox.RelayOptions{Logger: p.log.With("component", "outbox-relay"), NodeID: p.nodeID,
		Stream: p.cfg.EventStream, Lease: p.Lease})
	p.Bank = core.New(p.DB, core.Options{Events: outboxEvents{db: p.DB, relay: p.Relay}, Audit: auditTrail{}})

	var err error
	p.Events, err = events.New(p.DB, p.Bus, events.Visibility{Customers: p.Bank},
		events.Options{Logger: p.log.With("component", "events"), Notify: p.Relay.Notify, Stream: p.cfg.EventStream,
			StreamSlots: p.StreamSlots})
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	p.Webhooks, err = webhooks.New(p.DB, p.Bus, events.Visibility{Customers: p.Bank, Public: p.Events.IsPublic},
		p.Sealer, p.Guard, webhooks.Options{
			NotifyOutbox: p.Relay.Notify,
			Registerer:   p.registry,
			Logger:       p.log.With("component", "webhooks"),
		})
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	return nil
}

// openThrottles opens the brakes every node shares through the bus: the
// failed-login and sign-up counters, and the event stream slots.
func (p *Platform) openThrottles(ctx context.Context) error {
	var err error
	p.Counters, err = throttle.OpenCounters(ctx, p.Bus, p.identityLimits().MaxWindow(), p.cfg.Testing.ThrottleClock)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	streams := p.cfg.MaxStreamsPerApp
	if streams <= 0 {
		streams = DefaultMaxStreamsPerApp
	}
	p.StreamSlots, err = throttle.OpenStreams(ctx, p.Bus, p.nodeID, streams, p.log.With("component", "throttle"))
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// identityLimits are the brakes on login, sign-up and app creation, as
// configured.
func (p *Platform) identityLimits() identity.Limits {
	return identity.Limits{
		LoginFailuresPerAccount: p.cfg.LoginFailuresPerAccount,
		LoginFailuresPerAddress: p.cfg.LoginFailuresPerAddress,
		LoginWindow:             p.cfg.LoginWindow,
		SignUpsPerHour:          p.cfg.SignupRate,
		MaxAppsPerDeveloper:     p.cfg.MaxAppsPerDeveloper,
	}
}

// background runs fn until Close.
func (p *Platform) background(fn func(context.Context) error) {
	p.workers.Add(1)
	go func() {
		defer p.workers.Done()
		if err := fn(p.runCtx); err != nil {
			p.log.Error("background worker stopped", "error", err.Error())
		}
	}()
}

// lockDataDir keeps the data dir to this process while it holds live
// state: the SQLite file, or the embedded NATS store (or ciphertext of
// data partnering, which is there only on SQLite). Two processes on them
// would both run an outbox relay and deliver events twice, and the
// embedded NATS stores would diverge. With PostgreSQL and an external NATS
// the data dir holds at most the key files, each written once (O_EXCL)
// and then only read, which nodes on one machine may share. The lock is
// the first thing opened and the last released (Close).
func (p *Platform) lockDataDir() error {
	if p.cfg.DatabaseURL != "" && p.cfg.NATSURL != "" {
		return nil
	}
	l, err := dirlock.Acquire(p.cfg.DataDir)
	var held *dirlock.HeldError
	if errors.As(err, &held) {
		return fmt.Errorf("data dir %s is in use by another node: %w; stop it first or give this one another --data-dir", p.cfg.DataDir, err)
	}
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	p.closers = append(p.closers, func() {
		if err := l.Release(); err != nil {
			p.log.Warn("releasing the data dir lock", "error", err.Error())
		}
	})
	return nil
}

func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// migrate creates or updates every package's tables, each package's in
// one list (webhooks' refer to the outbox's, so the outbox comes first),
// and names the installation.
func (p *Platform) migrate(ctx context.Context) error {
	if err := p.DB.MigrateDir(ctx, "platform", migrationFiles, "migrations"); err != nil {
		return err
	}
	for _, migrate := range []func(context.Context, *store.DB) error{
		audit.Migrate, outbox.Migrate, leader.Migrate, core.Migrate, events.Migrate, webhooks.Migrate,
		identity.Migrate, gateway.Migrate, foureyes.Migrate, spi.Migrate, datashare.Migrate, sso.Migrate, portal.Migrate,
	} {
		if err := migrate(ctx, p.DB); err != nil {
			return err
		}
	}
	// The first node to start names the installation; later starts and
	// other nodes read the same id.
	b := make([]byte, 8)
	rand.Read(b)
	err := p.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO platform_meta (key, value) VALUES ('instance_id', $1), ('created_at', $2)
			 ON CONFLICT (key) DO NOTHING`,
			"ins_"+hex.EncodeToString(b), time.Now().UTC().Format(time.RFC3339))
		return err
	})
	if err != nil {
		return err
	}
	return p.DB.QueryRowContext(ctx, "SELECT value FROM platform_meta WHERE key = 'instance_id'").Scan(&p.instanceID)
}

func newNodeID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Handler is the node's whole HTTP surface.
func (p *Platform) Handler() http.Handler { return p.HTTP }

// Close stops everything New started, in reverse order.
func (p *Platform) Close() {
	// Background workers use the database and the bus: stop them first.
	p.stop()
	p.workers.Wait()
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// Run starts a node, serves HTTP on cfg.Addr (and /metrics on
// cfg.MetricsAddr, when set) until ctx is done, then ends the open event
// streams, drains in-flight requests (up to 25 s) and closes everything. It listens before New, so
// that with port 0 the issuer names the port actually bound.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	cfg.Addr = boundAddr(cfg.Addr, ln.Addr())
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen %s (metrics-addr): %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}
	p, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	if metricsLn != nil {
		stop := p.serveMetrics(metricsLn)
		defer stop()
	}
	return p.Serve(ctx, ln)
}

// boundAddr is addr with a port 0 replaced by the port bound, keeping the
// host as configured (":0" stays unspecified, so the issuer says
// localhost).
func boundAddr(addr string, bound net.Addr) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr
	}
	_, boundPort, err := net.SplitHostPort(bound.String())
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, boundPort)
}

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully.
func (p *Platform) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	p.log.InfoContext(ctx, "causeway serving", "addr", ln.Addr().String(), "public_url", p.issuer, "mode", p.cfg.Mode,
		"database", string(p.DB.Dialect)+" "+p.DB.Location, "bus", p.Bus.Location(), "version", p.cfg.Version)
	// Event streams never end by themselves: Shutdown ends them at once,
	// each with a last frame that sends its client to another node, and
	// then waits only for requests that do end.
	srv.RegisterOnShutdown(p.HTTP.EndStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if d := p.cfg.ShutdownDelay; d > 0 {
		// Readiness fails first, so a load balancer stops sending new
		// requests before the listener closes.
		p.draining.Store(true)
		p.log.InfoContext(ctx, "shutting down: not ready, still serving", "for", d.String())
		select {
		case err := <-errc:
			return err
		case <-time.After(d):
		}
	}
	p.log.InfoContext(ctx, "shutting down: ending event streams, draining in-flight requests", "streams", len(p.HTTP.OpenStreams()))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	p.log.InfoContext(ctx, "shut down cleanly")
	return nil
}
