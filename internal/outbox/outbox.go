// Package outbox is the transactional outbox: a capability writes its domain
// events with Append inside the same database transaction as the state
// change they describe, and the Relay publishes committed events to the
// JetStream stream "events" as CloudEvents. An event therefore exists if and
// only if its change was committed, and reaches the stream at least once;
// JetStream's duplicate window (Nats-Msg-Id = event id) turns the relay's
// re-publish after a crash into exactly once in the stream.
package outbox

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// Event is one domain event, written in the same transaction as the state
// change it describes.
type Event struct {
	ID         string          // "evt_…" (ids.New("evt")); set by Append when empty
	Type       string          // e.g. "payment.completed"
	Source     string          // CloudEvents source, e.g. "/causeway/sandbox-bank"
	Subject    string          // id of the resource, e.g. "pay_…"
	Time       time.Time       // set by Append when zero
	Data       json.RawMessage // the resource as the API shows it
	AppID      string          // the app the event concerns ("" = none), for visibility filtering later
	CustomerID string          // the customer it concerns ("" = none)
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the outbox tables.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "outbox", migrationFiles, "migrations")
}

// appendChunk bounds the rows of one INSERT statement (8 parameters each),
// well below the parameter limits of both engines.
const appendChunk = 100

// Append writes events in the caller's transaction; they are published only
// if and after the transaction commits. Append fills in a missing ID and Time
// on its own copies, so a caller that needs the id (say, to return it) sets
// ID itself. It never commits or rolls back; on error the caller should roll
// back, since some rows may have been written.
//
// Append refuses the whole call if any event fails Validate: an event the
// relay could not publish would otherwise hold up every event behind it.
func Append(ctx context.Context, tx *sql.Tx, events ...Event) error {
	rows := make([]Event, len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = ids.New("evt")
		}
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("outbox: event %s: %w", e.ID, err)
		}
		rows[i] = e
	}
	for len(rows) > 0 {
		n := min(len(rows), appendChunk)
		if err := insert(ctx, tx, rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func insert(ctx context.Context, tx *sql.Tx, events []Event) error {
	var q strings.Builder
	q.WriteString("INSERT INTO outbox_events (id, type, source, subject, time, data, app_id, customer_id) VALUES ")
	args := make([]any, 0, 8*len(events))
	for i, e := range events {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j := range 8 {
			if j > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d", 8*i+j+1)
		}
		q.WriteByte(')')
		args = append(args, e.ID, e.Type, e.Source, e.Subject, store.Micros(e.Time), string(e.Data), e.AppID, e.CustomerID)
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("outbox: append: %w", err)
	}
	return nil
}

// Validate checks what Append requires of an event: a Type made of
// dot-separated tokens of letters, digits, '-' and '_' (it becomes part of a
// NATS subject), a Source, Data that is empty or valid JSON, and text that
// survives every hop: valid UTF-8 throughout (PostgreSQL and JSON require
// it), and no control characters in ID, AppID and CustomerID, which travel
// as NATS headers. ID and Time may be empty. The error is a causeway
// EINVALID error with code "invalid_event", so an API that accepts events
// from outside can answer 422.
func (e Event) Validate() error {
	invalid := func(format string, args ...any) error {
		return causeway.Errorf(causeway.EINVALID, "invalid_event", format, args...)
	}
	if !validType(e.Type) {
		return invalid("event type %q is not dot-separated tokens of letters, digits, '-' and '_'", e.Type)
	}
	if e.Source == "" {
		return invalid("event of type %s has no source", e.Type)
	}
	if !validText(e.Source) || !validText(e.Subject) {
		return invalid("source or subject of event type %s is not valid UTF-8 text", e.Type)
	}
	if !validHeader(e.ID) || !validHeader(e.AppID) || !validHeader(e.CustomerID) {
		return invalid("id, app id or customer id of event type %s has characters a header cannot carry", e.Type)
	}
	if len(e.Data) > 0 && (!json.Valid(e.Data) || !utf8.Valid(e.Data)) {
		return invalid("data of event type %s is not valid JSON", e.Type)
	}
	return nil
}

// validText reports valid UTF-8 without NUL, which PostgreSQL's TEXT
// refuses.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// validHeader reports text without control characters, which could end or
// forge a header line.
func validHeader(s string) bool {
	if !validText(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// validType reports whether t can be the tail of a NATS subject: tokens
// without wildcards, whitespace or empty parts.
func validType(t string) bool {
	if t == "" {
		return false
	}
	for tok := range strings.SplitSeq(t, ".") {
		if tok == "" {
			return false
		}
		for _, c := range tok {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

// Pending returns the number of committed events not yet published: the
// relay's backlog.
func Pending(ctx context.Context, db *store.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("outbox: pending: %w", store.Classify(err))
	}
	return n, nil
}
