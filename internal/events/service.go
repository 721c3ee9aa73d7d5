package events

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the events tables (bank-registered event
// types). The outbox tables are the outbox package's (outbox.Migrate).
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "events", migrationFiles, "migrations")
}

// Options configure a Service. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Notify is called after Publish commits, to have the outbox relay
	// publish at once rather than at its next poll (the relay's Notify).
	Notify func()
	// Heartbeat is how often the event stream sends a keep-alive comment
	// when there is nothing to send; default 15s.
	Heartbeat time.Duration
	// ReadTimeout bounds the stream reading of one pull request, and
	// separately the search for an event given by id; default 5s.
	ReadTimeout time.Duration
	// ScanLimit bounds the messages one pull request looks at, visible or
	// not, and the messages searched for an event given by id; default
	// 20000.
	ScanLimit int
	// Stream is the installation's limits for the events stream, used if
	// the service has to create it (the platform creates it at start).
	Stream outbox.StreamLimits
	// StreamSlots caps the event streams (GET /v1/events/stream) an app
	// may hold open at once, across nodes; nil means no cap.
	StreamSlots StreamSlots
}

// StreamTickets issue stream tickets: short-lived, single-use credentials
// with which a browser's EventSource opens the stream (GET
// /v1/events/stream?ticket=…), as it cannot send an Authorization header.
// The gateway redeems them.
type StreamTickets interface {
	// IssueStreamTicket issues a ticket to app, to be shown once, and
	// says when it expires.
	IssueStreamTicket(ctx context.Context, app *auth.App) (ticket string, expiresAt time.Time, err error)
}

// StreamSlots counts open event streams per app (the throttle package's
// Streams implements it over the bus, for every node).
type StreamSlots interface {
	// Acquire takes one of the app's slots, or fails with ERATELIMIT
	// (RetryAfter set) when the app holds the most it may. release gives
	// the slot back when the stream ends.
	Acquire(ctx context.Context, appID string) (release func(), err error)
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Notify == nil {
		o.Notify = func() {}
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	if o.ScanLimit <= 0 {
		o.ScanLimit = 20000
	}
}

// Service is the events capability: the catalog, publishing by the bank and
// by other packages, and the pull and stream feeds. It keeps no state that
// another node needs: types live in the database, events in the stream.
type Service struct {
	db      *store.DB
	bus     *bus.Bus
	vis     Visibility
	opts    Options
	log     *slog.Logger
	builtin map[string]*compiledType
	schemas schemaCache
	public  publicCache
	// tickets issue stream tickets (SetTickets); nil: none are issued.
	tickets StreamTickets
}

// SetTickets plugs in the issuer of stream tickets after construction, for
// the composition root (identity, which issues them, starts after events).
// Until then POST /v1/events/stream-tickets answers 503.
func (s *Service) SetTickets(t StreamTickets) { s.tickets = t }

// New returns the service on a database that Migrate (and outbox.Migrate)
// prepared. vis decides which app sees which event in the feeds; when
// vis.Public is nil, the catalog's IsPublic fills it in.
func New(db *store.DB, b *bus.Bus, vis Visibility, opts Options) (*Service, error) {
	opts.setDefaults()
	s := &Service{
		db:      db,
		bus:     b,
		opts:    opts,
		log:     opts.Logger,
		builtin: map[string]*compiledType{},
	}
	for _, t := range builtinTypes() {
		t.Builtin = true
		if t.Version == "" {
			t.Version = defaultVersion
		}
		schema, err := compileSchema(t.Type, t.Schema)
		if err != nil {
			return nil, fmt.Errorf("events: built-in type %s: %w", t.Type, err)
		}
		s.builtin[t.Type] = &compiledType{EventType: t, schema: schema}
	}
	if vis.Public == nil {
		vis.Public = s.IsPublic
	}
	s.vis = vis
	return s, nil
}

// Publish validates e against the catalog and writes it through the
// outbox, with its audit entry, so it is delivered like every other event;
// it returns the event's id. Events published at the same moment share a
// transaction (store.GroupTx): the audit trail's head, which every entry
// locks, is then taken once for all of them. Errors: EINVALID unknown_event_type,
// invalid_event_data (with the validator's findings), invalid_cloudevent or
// event_too_large.
func (s *Service) Publish(ctx context.Context, e CloudEvent) (string, error) {
	var id string
	err := s.db.GroupTx(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = s.PublishTx(ctx, tx, e); err != nil {
			return err
		}
		// The data stays in the event; the entry says which event it was.
		return audit.Record(ctx, tx, audit.Change{Action: "event.publish", TargetType: "event", TargetID: id,
			After: map[string]string{"type": e.Type, "source": e.Source, "subject": e.Subject}})
	})
	if err != nil {
		if store.IsUniqueViolation(err) {
			// The same id again: CloudEvents producers resend an event with
			// its id, and consumers treat source+id as one event.
			return e.ID, nil
		}
		return "", err
	}
	s.opts.Notify()
	return id, nil
}

// PublishTx is Publish inside the caller's transaction: the event is
// written with the caller's own changes and published once tx commits (at
// the relay's next poll). It returns the event's id. An id already in the
// outbox fails the statement; roll back.
func (s *Service) PublishTx(ctx context.Context, tx *sql.Tx, e CloudEvent) (string, error) {
	oe, err := s.prepare(ctx, tx, e)
	if err != nil {
		return "", err
	}
	if err := outbox.Append(ctx, tx, oe); err != nil {
		return "", err
	}
	return oe.ID, nil
}

// prepare checks e and turns it into the outbox's event.
func (s *Service) prepare(ctx context.Context, q store.Querier, e CloudEvent) (outbox.Event, error) {
	if err := e.check(); err != nil {
		return outbox.Event{}, err
	}
	t, err := s.lookup(ctx, q, e.Type)
	if err != nil {
		return outbox.Event{}, err
	}
	if err := t.validate(e.Data); err != nil {
		return outbox.Event{}, err
	}
	if e.ID == "" {
		e.ID = ids.New("evt")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.CustomerID == "" {
		e.CustomerID = customerOf(e.Data)
		if len(e.CustomerID) > maxRoutingID || !printable(e.CustomerID) {
			return outbox.Event{}, invalidEvent("data.customer_id is not a customer id")
		}
	}
	oe := outbox.Event{
		ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject, Time: e.Time,
		AppID: e.AppID, CustomerID: e.CustomerID,
	}
	if len(e.Data) > 0 {
		oe.Data = compact(e.Data)
	}
	body, err := outbox.CloudEvent(oe)
	if err != nil {
		return outbox.Event{}, invalidEvent("the event cannot be encoded: %v", err)
	}
	if len(body) > maxEventBytes {
		return outbox.Event{}, causeway.Errorf(causeway.EINVALID, "event_too_large",
			"the event is %d bytes as a CloudEvent; at most %d are accepted", len(body), maxEventBytes)
	}
	if err := oe.Validate(); err != nil {
		return outbox.Event{}, err
	}
	return oe, nil
}

// errNoApp is returned when a feed is asked for without a calling app; the
// gateway guarantees one on these routes.
var errNoApp = causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "an app access token is required")
