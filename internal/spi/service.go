package spi

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the package's tables.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "spi", migrationFiles, "migrations")
}

// Defaults of Options.
const (
	DefaultBreakerFailures  = 5
	DefaultBreakerOpenFor   = 30 * time.Second
	DefaultMaxResponseBytes = 64 << 10
)

// Options configure a Service.
type Options struct {
	// Sealer encrypts signing secrets at rest. Required.
	Sealer *seal.Sealer
	// Guard decides which addresses endpoint URLs may reach, at
	// registration and on every connection. The zero Guard allows only
	// public addresses.
	Guard netguard.Guard
	// Registerer receives the per-registration metrics; nil means none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock of recorded times; tests set it. Deadlines always
	// run on the real clock.
	Now func() time.Time
	// BreakerFailures is how many consecutive failures open a
	// registration's circuit breaker (default 5).
	BreakerFailures uint32
	// BreakerOpenFor is how long an open breaker refuses calls before it
	// lets one probe through (default 30 s).
	BreakerOpenFor time.Duration
	// MaxResponseBytes caps an endpoint's answer (default 64 KiB); a
	// larger one is a failure.
	MaxResponseBytes int64
}

// Service is the SPI capability: the extension-point catalog,
// registrations, the invoker and its audit. It implements core.Extensions.
//
// Everything a node needs is in the database except each registration's
// circuit breaker, which every node keeps for itself: a node learns that an
// endpoint is down from its own failures, which is all the breaker needs.
type Service struct {
	db      *store.DB
	sealer  *seal.Sealer
	guard   netguard.Guard
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	maxBody int64

	builtins    map[string]*Point
	builtinList []*Point
	// defined caches compiled bank-defined points; a point never changes
	// once defined, so a cached one is never stale.
	defined sync.Map // name -> *Point

	breakers *breakers
	metrics  *metrics
	cands    candidateCache

	// Statements on the path of every call, prepared once: parsing them
	// again for every payment cost more than running them.
	audit *auditWriter

	stmtMu         sync.Mutex
	candidatesStmt *sql.Stmt
	recordStmt     *sql.Stmt
}

var _ core.Extensions = (*Service)(nil)

// New returns the Service over db, whose tables Migrate has created.
func New(db *store.DB, opts Options) (*Service, error) {
	if opts.Sealer == nil {
		return nil, errors.New("spi: a Sealer is required to keep signing secrets")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BreakerFailures == 0 {
		opts.BreakerFailures = DefaultBreakerFailures
	}
	if opts.BreakerOpenFor <= 0 {
		opts.BreakerOpenFor = DefaultBreakerOpenFor
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	transport := opts.Guard.Transport()
	// Every payment may call out; keep enough warm connections per
	// endpoint for a busy bank.
	transport.MaxIdleConnsPerHost = 64
	s := &Service{
		db:     db,
		sealer: opts.Sealer,
		guard:  opts.Guard,
		client: &http.Client{
			Transport: transport,
			// Each call runs under its own context deadline; this only
			// backstops a bug that would lose it.
			Timeout: MaxTimeoutMS * time.Millisecond,
			// A redirect is a failure: where it points was never checked
			// or agreed with the bank.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log:     opts.Logger,
		now:     opts.Now,
		maxBody: opts.MaxResponseBytes,
		metrics: m,
	}
	s.builtins, s.builtinList = compileBuiltins()
	s.breakers = newBreakers(opts.BreakerFailures, opts.BreakerOpenFor, m, opts.Logger)
	s.audit = newAuditWriter()
	return s, nil
}

// Start starts the writer that commits invocation records in batches.
// Call it once, before serving; until then, and after Close, each call
// writes its own records.
func (s *Service) Start(context.Context) error {
	s.startAudit()
	return nil
}

// Close stops the audit writer and releases idle connections to endpoints
// and prepared statements. Calls still running write their own audit rows.
func (s *Service) Close() {
	s.stopAudit()
	s.client.CloseIdleConnections()
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	for _, st := range []*sql.Stmt{s.candidatesStmt, s.recordStmt} {
		if st != nil {
			st.Close()
		}
	}
	s.candidatesStmt, s.recordStmt = nil, nil
}

// prepared returns the statement in *slot, preparing query into it first
// if need be. A failed preparation is tried again on the next call.
func (s *Service) prepared(ctx context.Context, slot **sql.Stmt, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if *slot == nil {
		st, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			return nil, store.Classify(err)
		}
		*slot = st
	}
	return *slot, nil
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }
