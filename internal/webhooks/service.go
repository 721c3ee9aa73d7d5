package webhooks

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/stdwebhooks"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the webhook tables. The outbox's tables must
// exist too (webhook.disabled events are written through it).
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "webhooks", migrationFiles, "migrations")
}

// maxPerApp bounds the subscriptions of one app.
const maxPerApp = 100

// Service manages webhook subscriptions and, in Run, delivers events to
// them.
type Service struct {
	db      *store.DB
	bus     *bus.Bus
	vis     events.Visibility
	sealer  *seal.Sealer
	guard   netguard.Guard
	opts    Options
	log     *slog.Logger
	client  *http.Client
	metrics *metrics

	// wake asks Run to sync at once, after a change through this node.
	wake chan struct{}
	// syncs counts the syncs asked for (by apply) and done (by Run), so
	// apply can wait for one that read the database after its change;
	// synced is closed, and replaced, after each sync.
	syncMu              sync.Mutex
	syncWanted, syncRan uint64
	synced              chan struct{}

	mu      sync.Mutex
	workers map[string]*worker // by subscription id, while Run runs
	started bool               // Start has started the record writer
	closed  bool
	stopRun context.CancelFunc

	// runDone is closed when Run returns.
	runDone chan struct{}

	// records feeds the attempt-record writer (see recorder.go), which
	// stops when recorderQuit is closed and then closes recorderDone.
	records      chan *recordReq
	recorderQuit chan struct{}
	recorderDone chan struct{}

	// bgCtx ends the background re-sends (recover, retry) at Close.
	bgCtx  context.Context
	bgStop context.CancelFunc
	bg     sync.WaitGroup
}

// New returns a service over db (migrated with Migrate and outbox.Migrate)
// and the bus the outbox relay publishes to. vis decides which events an
// app may receive; sealer encrypts signing secrets at rest; guard checks
// URLs at creation and every connection at delivery. It does no I/O and
// starts nothing: Start starts the writer of attempt records, which
// deliveries and re-sends need, and Run delivers.
func New(db *store.DB, b *bus.Bus, vis events.Visibility, sealer *seal.Sealer, guard netguard.Guard, opts Options) (*Service, error) {
	if db == nil || b == nil || sealer == nil {
		return nil, errors.New("webhooks: a database, a bus and a sealer are required")
	}
	if _, err := celEnv(); err != nil {
		return nil, fmt.Errorf("webhooks: cel environment: %w", err)
	}
	opts.setDefaults()
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		records:      make(chan *recordReq, maxRecordBatch),
		recorderQuit: make(chan struct{}),
		recorderDone: make(chan struct{}),
		metrics:      m,
		db:           db,
		bus:          b,
		vis:          vis,
		sealer:       sealer,
		guard:        guard,
		opts:         opts,
		log:          opts.Logger,
		client:       deliveryClient(guard, opts),
		wake:         make(chan struct{}, 1),
		synced:       make(chan struct{}),
		workers:      map[string]*worker{},
		bgCtx:        ctx,
		bgStop:       cancel,
	}
	return s, nil
}

// Start starts the writer of delivery attempt records. Call it once,
// before serving or Run; Close stops it.
func (s *Service) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started && !s.closed {
		s.started = true
		go s.runRecorder()
	}
	return nil
}

// Close stops Run if it is running, cancels recovers and retries in
// progress, waits for all of them, and stops the record writer. Call it after the HTTP server has
// stopped.
func (s *Service) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	stop, runDone, started := s.stopRun, s.runDone, s.started
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-runDone
	}
	s.bgStop()
	s.bg.Wait()
	if started {
		close(s.recorderQuit)
		<-s.recorderDone
	}
	s.client.CloseIdleConnections()
}

// maxIdleDeliveryConns is how many idle connections the delivery client
// keeps, to one receiver or across all.
const maxIdleDeliveryConns = 1000

// deliveryClient is the guard's client, keeping enough idle connections
// for every attempt in flight to one receiver, whatever the number of
// subscriptions aiming at it (each has up to Options.MaxInFlight). The
// headroom matters: a connection goes back to the pool a moment after its
// response is read, so the next attempt often dials meanwhile; with the
// pool's limit at the number in flight, the spare connection is then
// closed, and the next attempt dials again.
func deliveryClient(guard netguard.Guard, opts Options) *http.Client {
	c := guard.HTTPClient(opts.RequestTimeout)
	if t, ok := c.Transport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, maxIdleDeliveryConns)
		t.MaxIdleConns = max(t.MaxIdleConns, maxIdleDeliveryConns)
	}
	return c
}

// applyWait bounds how long an API change waits for this node to apply it.
const applyWait = 2 * time.Second

// apply makes Run apply a change committed through this node at once and
// waits (at most applyWait) until it has, so this node delivers by the new
// state from the moment the API answers; an event published after a
// PATCH is not sent by the old filter. Other nodes apply it at their next
// sync (Options.SyncInterval).
func (s *Service) apply() {
	s.mu.Lock()
	running := s.stopRun != nil
	s.mu.Unlock()
	s.syncMu.Lock()
	s.syncWanted++
	want := s.syncWanted
	s.syncMu.Unlock()
	s.kick()
	if !running {
		return
	}
	timeout := time.NewTimer(applyWait)
	defer timeout.Stop()
	for {
		s.syncMu.Lock()
		ran, synced := s.syncRan, s.synced
		s.syncMu.Unlock()
		if ran >= want {
			return
		}
		select {
		case <-synced:
		case <-timeout.C:
			return
		}
	}
}

// startSync notes which asked-for syncs the sync about to run covers: those
// asked for before it reads the database.
func (s *Service) startSync() uint64 {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.syncWanted
}

// endSync records that the syncs up to covered ran, and wakes apply.
func (s *Service) endSync(covered uint64) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.syncRan = max(s.syncRan, covered)
	close(s.synced)
	s.synced = make(chan struct{})
}

// kick makes Run sync at once instead of at its next tick.
func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// NewSubscription is what an app asks for when it subscribes.
type NewSubscription struct {
	URL        string
	EventTypes []string
	Filter     string
	Ordered    bool
}

// SubscriptionChange is a partial update; nil fields stay as they are.
type SubscriptionChange struct {
	URL        *string
	EventTypes []string
	Filter     *string
	Ordered    *bool
}

// validateTypes checks event type patterns and returns them without
// duplicates or patterns another one covers.
func validateTypes(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_event_type", "event_types needs at least one event type or pattern, such as \"payment.*\"")
	}
	if len(patterns) > maxPatterns {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_event_type", "at most %d event types per subscription", maxPatterns)
	}
	for _, p := range patterns {
		if !validPattern(p) {
			return nil, causeway.Errorf(causeway.EINVALID, "invalid_event_type",
				"%q is not an event type or pattern: use a type such as \"payment.completed\", a prefix such as \"payment.*\", or \"*\"", p)
		}
	}
	return normalizePatterns(patterns), nil
}

func (s *Service) checkURL(ctx context.Context, raw string) error {
	if err := s.guard.CheckURL(ctx, raw); err != nil {
		var ce *causeway.Error
		if errors.As(err, &ce) {
			return ce
		}
		return causeway.Errorf(causeway.EINVALID, netguard.CodeInvalidURL, "%v", err)
	}
	return nil
}

// Create subscribes the calling app (anyone else is EFORBIDDEN). The result carries the signing secret, which
// is never shown again. Errors: EINVALID invalid_event_type,
// invalid_filter, invalid_url, url_not_allowed or https_required (an
// http:// URL when the guard requires https, in production mode);
// ECONFLICT too_many_webhooks.
func (s *Service) Create(ctx context.Context, caller auth.Caller, n NewSubscription) (*Subscription, error) {
	appID, ok := caller.App()
	if !ok {
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "forbidden", "webhooks are subscribed by an app, not %s", caller)
	}
	types, err := validateTypes(n.EventTypes)
	if err != nil {
		return nil, err
	}
	if _, err := compileFilter(n.Filter); err != nil {
		return nil, err
	}
	if err := s.checkURL(ctx, n.URL); err != nil {
		return nil, err
	}
	var count int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM webhook_subscriptions WHERE app_id = $1", appID).Scan(&count); err != nil {
		return nil, store.Classify(err)
	}
	if count >= maxPerApp {
		return nil, causeway.Errorf(causeway.ECONFLICT, "too_many_webhooks", "an app may have at most %d webhook subscriptions", maxPerApp)
	}
	// Microsecond precision: what the database keeps, and so what the
	// consumer's start time is on every node.
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	secret := stdwebhooks.NewSecret()
	r := &record{
		Subscription: Subscription{
			ID: ids.New("wh"), AppID: appID, URL: n.URL, EventTypes: types, Filter: strings.TrimSpace(n.Filter),
			Ordered: n.Ordered, Status: StatusActive, CreatedAt: now, UpdatedAt: now,
		},
		sealedSecret: s.sealer.Seal(secret),
	}
	if err := insertSubscription(ctx, s.db, r); err != nil {
		return nil, store.Classify(err)
	}
	s.apply()
	out := r.Subscription
	out.Secret = secret
	s.log.InfoContext(ctx, "webhook subscription created", "webhook_id", r.ID, "app_id", appID, "event_types", types)
	return &out, nil
}

// Get returns an app's subscription; another app's is ENOTFOUND
// webhook_not_found.
func (s *Service) Get(ctx context.Context, caller auth.Caller, id string) (*Subscription, error) {
	r, err := getSubscription(ctx, s.db, caller, id)
	if err != nil {
		return nil, err
	}
	return &r.Subscription, nil
}

// List returns a page of the subscriptions the caller may see (an app's
// own, every app's for the bank, none for anyone else), optionally of one
// status, in creation order.
func (s *Service) List(ctx context.Context, caller auth.Caller, status string, limit int, cursor string) ([]*Subscription, string, error) {
	limit, after, err := page.Args(limit, cursor)
	if err != nil {
		return nil, "", err
	}
	recs, err := listSubscriptions(ctx, s.db, caller, status, limit, after)
	if err != nil {
		return nil, "", err
	}
	out := make([]*Subscription, len(recs.Data))
	for i, r := range recs.Data {
		out[i] = &r.Subscription
	}
	return out, recs.NextCursor, nil
}

// modify runs change on a subscription the caller may see in a transaction and writes
// it back. The row is locked before it is read (PostgreSQL under READ
// COMMITTED; SQLite serializes writers anyway), so concurrent changes of
// one subscription queue behind each other and each judges what the one
// before it left: of two callers pausing it at once, the second finds it
// paused. The write also names the status it leaves.
func (s *Service) modify(ctx context.Context, caller auth.Caller, id string, change func(r *record) error) (*record, error) {
	var out *record
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE webhook_subscriptions SET updated_at = updated_at WHERE id = $1", id); err != nil {
			return err
		}
		r, err := getSubscription(ctx, tx, caller, id)
		if err != nil {
			return err
		}
		from := r.Status
		if err := change(r); err != nil {
			return err
		}
		r.UpdatedAt = s.opts.Now().UTC()
		if err := updateRecord(ctx, tx, r, from); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.apply()
	return out, nil
}

// Update changes an app's subscription. Changed event types or ordering
// apply to events not yet delivered.
func (s *Service) Update(ctx context.Context, caller auth.Caller, id string, c SubscriptionChange) (*Subscription, error) {
	var types []string
	if c.EventTypes != nil {
		var err error
		if types, err = validateTypes(c.EventTypes); err != nil {
			return nil, err
		}
	}
	if c.Filter != nil {
		if _, err := compileFilter(*c.Filter); err != nil {
			return nil, err
		}
	}
	if c.URL != nil {
		if err := s.checkURL(ctx, *c.URL); err != nil {
			return nil, err
		}
	}
	r, err := s.modify(ctx, caller, id, func(r *record) error {
		if c.URL != nil {
			r.URL = *c.URL
		}
		if types != nil {
			r.EventTypes = types
		}
		if c.Filter != nil {
			r.Filter = strings.TrimSpace(*c.Filter)
		}
		if c.Ordered != nil {
			r.Ordered = *c.Ordered
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r.Subscription, nil
}

// Pause stops deliveries to an active subscription; events keep
// accumulating in its consumer and are delivered after Resume. Of two
// callers pausing one subscription at once exactly one succeeds. Errors:
// ENOTFOUND webhook_not_found; ECONFLICT webhook_already_paused,
// webhook_disabled.
func (s *Service) Pause(ctx context.Context, caller auth.Caller, id string) (*Subscription, error) {
	r, err := s.modify(ctx, caller, id, func(r *record) error {
		switch r.Status {
		case StatusPaused:
			return causeway.Errorf(causeway.ECONFLICT, "webhook_already_paused", "the subscription is already paused")
		case StatusDisabled:
			return causeway.Errorf(causeway.ECONFLICT, "webhook_disabled", "the subscription is disabled (%s); resume it instead", r.DisabledReason)
		}
		r.Status = StatusPaused
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.stopWorker(id, false)
	s.log.InfoContext(ctx, "webhook subscription paused", "webhook_id", id, "app_id", r.AppID, "by", caller.String())
	return &r.Subscription, nil
}

// Resume restarts deliveries to a paused or disabled subscription, from
// where they stopped, and forgets its run of failures. Of two callers
// resuming one subscription at once exactly one succeeds. Errors:
// ENOTFOUND webhook_not_found; ECONFLICT webhook_already_active.
func (s *Service) Resume(ctx context.Context, caller auth.Caller, id string) (*Subscription, error) {
	r, err := s.modify(ctx, caller, id, func(r *record) error {
		if r.Status == StatusActive {
			return causeway.Errorf(causeway.ECONFLICT, "webhook_already_active", "the subscription is already active")
		}
		r.Status = StatusActive
		r.DisabledReason = ""
		r.FailingSince = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "webhook subscription resumed", "webhook_id", id, "app_id", r.AppID, "by", caller.String())
	return &r.Subscription, nil
}

// RotateSecret gives a subscription a new signing secret and returns it.
// The previous one keeps signing too for Options.SecretOverlap, so a
// receiver can switch without losing a delivery.
func (s *Service) RotateSecret(ctx context.Context, caller auth.Caller, id string) (*Subscription, error) {
	secret := stdwebhooks.NewSecret()
	r, err := s.modify(ctx, caller, id, func(r *record) error {
		until := s.opts.Now().UTC().Add(s.opts.SecretOverlap)
		r.sealedPrevious = r.sealedSecret
		r.PreviousSecretExpiresAt = &until
		r.sealedSecret = s.sealer.Seal(secret)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := r.Subscription
	out.Secret = secret
	s.log.InfoContext(ctx, "webhook secret rotated", "webhook_id", id, "previous_expires_at", r.PreviousSecretExpiresAt)
	return &out, nil
}

// Delete removes a subscription, its consumer and its delivery records. Of
// two callers deleting one subscription at once exactly one succeeds; the
// other, like any later one, finds nothing. Errors: ENOTFOUND
// webhook_not_found.
func (s *Service) Delete(ctx context.Context, caller auth.Caller, id string) error {
	appID, all, ok := owner(caller)
	if !ok {
		return notFound(id)
	}
	query, args := "DELETE FROM webhook_subscriptions WHERE id = $1", []any{id}
	if !all {
		query, args = query+" AND app_id = $2", append(args, appID)
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, query+" RETURNING app_id", args...).Scan(&appID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return notFound(id)
			}
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM webhook_deliveries WHERE subscription_id = $1", id)
		return err
	})
	if err != nil {
		return store.Classify(err)
	}
	s.stopWorker(id, true)
	// The consumer goes now; if the bus is down, Run's orphan sweep
	// removes it later.
	if err := s.deleteConsumer(ctx, id); err != nil {
		s.log.WarnContext(ctx, "deleting the consumer of a deleted subscription failed; it will be swept later",
			"webhook_id", id, "error", err.Error())
	}
	s.apply()
	s.log.InfoContext(ctx, "webhook subscription deleted", "webhook_id", id, "app_id", appID, "by", caller.String())
	return nil
}

// Deliveries returns a page of a subscription's delivery attempts, newest
// first.
func (s *Service) Deliveries(ctx context.Context, caller auth.Caller, id string, f DeliveryFilter) ([]*Delivery, string, error) {
	if _, err := getSubscription(ctx, s.db, caller, id); err != nil {
		return nil, "", err
	}
	limit, before, err := page.Args(f.Limit, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	f.Limit, f.Cursor = limit, before
	pg, err := listDeliveries(ctx, s.db, id, f)
	if err != nil {
		return nil, "", err
	}
	return pg.Data, pg.NextCursor, nil
}

// disable marks a subscription disabled for reason and, if it was active,
// writes a webhook.disabled event in the same transaction. It returns the
// subscription as it was if this call disabled it, and nil otherwise.
func (s *Service) disable(ctx context.Context, tx *sql.Tx, id, reason string) (*record, error) {
	r, err := getSubscription(ctx, tx, auth.BankProcess(), id)
	if err != nil {
		if causeway.ErrorKind(err) == causeway.ENOTFOUND {
			return nil, nil
		}
		return nil, err
	}
	if r.Status != StatusActive {
		return nil, nil
	}
	now := s.opts.Now().UTC()
	res, err := tx.ExecContext(ctx, `UPDATE webhook_subscriptions SET status = $2, disabled_reason = $3, updated_at = $4
		WHERE id = $1 AND status = $5`, id, StatusDisabled, reason, store.Micros(now), StatusActive)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, nil
	}
	data, _ := json.Marshal(map[string]any{
		"id":              r.ID,
		"url":             r.URL,
		"event_types":     r.EventTypes,
		"status":          StatusDisabled,
		"disabled_reason": reason,
		"failing_since":   r.FailingSince,
		"disabled_at":     now,
	})
	err = outbox.Append(ctx, tx, outbox.Event{
		Type: EventDisabled, Source: eventSource, Subject: r.ID, Time: now, Data: data, AppID: r.AppID,
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// afterDisable tells the bank and the relay, and stops local deliveries.
func (s *Service) afterDisable(id, appID, reason string) {
	s.log.Warn("webhook subscription disabled", "webhook_id", id, "app_id", appID, "reason", reason)
	s.metrics.disabled.Inc()
	if s.opts.NotifyOutbox != nil {
		s.opts.NotifyOutbox()
	}
	s.stopWorker(id, false)
	s.kick()
}
