// Package core is the sandbox bank: customers, accounts, a double-entry
// ledger, payments, KYC checks, loans and offers. It makes Causeway useful on
// first start and gives the stories something real to run on.
//
// The bank talks to the platform only through the ports it declares here:
// an EventWriter, which must write events in the caller's database
// transaction (the outbox), Extensions, which calls the extension points
// (SPIs) at the places a bank process asks an outside party, and an
// AuditTrail, which records the bank's decisions in the transaction that
// makes them. It never imports the events, SPI or audit packages; the
// composition root plugs them in.
package core

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/batch"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// EventSource is the CloudEvents source of every event the sandbox bank emits.
const EventSource = "/causeway/sandbox-bank"

// Event is a domain event, written with the state change it describes.
//
// Every event of the bank is about a customer, and reaches exactly the apps
// entitled to that customer (the one that created it, was seeded with it, or
// was granted it); never the app that caused it merely by acting. That is
// why an Event names no app: a payment's credit leg on another tenant's
// account must not reach the payer.
type Event struct {
	Type       string // e.g. "payment.completed"
	Subject    string // the resource id
	Data       any    // the resource as the API shows it
	CustomerID string // the customer it concerns; decides who sees it
}

// EventWriter writes events inside tx, so they commit or roll back with the
// change (the transactional outbox).
type EventWriter interface {
	WriteEvents(ctx context.Context, tx *sql.Tx, events []Event) error
}

// ExtensionCall asks an extension point for an answer.
type ExtensionCall struct {
	Point   string // e.g. "payments.fraud-check"
	AppID   string // the app whose process this is ("" for the bank's own)
	Payload any
}

// ExtensionAnswer is what an extension point said: the answer its
// registrations' replies combine to under the point's combination rule,
// and the replies themselves.
//
// Answers combine so that the bank's controls can only be tightened. At
// payments.fraud-check and kyc.verify every reply counts and the strictest
// is the answer; at accounts.lookup the replies' insights are merged. At
// loans.credit-decision the answer is the bank's alone (its bank-scope
// registrations'), and the calling app's own replies are only in Replies:
// the bank applies them to tighten its decision, never to loosen it.
type ExtensionAnswer struct {
	// Answered is false when no provider is registered (at
	// loans.credit-decision: no bank-scope one); the bank then uses its
	// built-in rules.
	Answered bool
	// Failed is true when providers failed and the policy is to fail
	// closed; Reason says why.
	Failed bool
	// Provider is the registration whose reply decided the answer.
	Provider string
	StandIn  bool
	Reason   string
	Body     json.RawMessage
	// Replies are the replies the answer was made from, in the order the
	// registrations were asked (the app's own first). A registration that
	// failed under the policy "next" gave none.
	Replies []ExtensionReply
}

// Scopes of the registration an ExtensionReply came from.
const (
	// ExtensionScopeApp is the calling app's own registration.
	ExtensionScopeApp = "app"
	// ExtensionScopeBank is a registration the bank activated for every
	// process: the bank's own control.
	ExtensionScopeBank = "bank"
)

// ExtensionReply is one registration's reply: its answer, or the stand-in
// its failure policy chose, or a failure its policy fails closed on.
type ExtensionReply struct {
	Provider string // the registration
	Scope    string // ExtensionScopeApp or ExtensionScopeBank
	Failed   bool
	StandIn  bool
	Reason   string
	Body     json.RawMessage
}

// replies are the replies a is made of; an answer without them (from an
// Extensions that does not list them) is its own only reply.
func (a ExtensionAnswer) replies() []ExtensionReply {
	if len(a.Replies) > 0 || !a.Answered {
		return a.Replies
	}
	return []ExtensionReply{{Provider: a.Provider, Scope: ExtensionScopeBank, Failed: a.Failed, StandIn: a.StandIn, Reason: a.Reason, Body: a.Body}}
}

// Extensions calls extension points. Implementations enforce deadlines and
// failure policies; the bank only reads the answer.
type Extensions interface {
	Call(ctx context.Context, call ExtensionCall) (ExtensionAnswer, error)
}

// Extension point names the bank calls.
const (
	PointFraudCheck     = "payments.fraud-check"
	PointCreditDecision = "loans.credit-decision"
	PointKYCVerify      = "kyc.verify"
	PointAccountsLookup = "accounts.lookup"
)

type noExtensions struct{}

func (noExtensions) Call(context.Context, ExtensionCall) (ExtensionAnswer, error) {
	return ExtensionAnswer{}, nil
}

// Change is one of the bank's decisions as an audit trail keeps it: what
// was done (Action, such as "payment.release") to which resource, with a
// summary of before and after (nil: none; never a secret).
type Change struct {
	Action     string
	TargetType string
	TargetID   string
	Before     any
	After      any
}

// AuditTrail records the bank's decisions (grants, deposits, the bank's
// own payments, decisions on held payments) inside tx, so a decision and
// its record commit or roll back together. caller is who decided.
type AuditTrail interface {
	RecordChange(ctx context.Context, tx *sql.Tx, caller auth.Caller, c Change) error
}

type noAudit struct{}

func (noAudit) RecordChange(context.Context, *sql.Tx, auth.Caller, Change) error { return nil }

type noEvents struct{}

func (noEvents) WriteEvents(context.Context, *sql.Tx, []Event) error { return nil }

// Who asks is an auth.Caller: an app sees only the customers it may see
// (those it created, was seeded with or was granted; see visibleClause),
// the bank sees everything, and anyone else (nobody, a developer) sees
// nothing.

// asBank is how the bank reads its own books inside a process that is
// already authorized (a payment reading its debtor for the fraud check).
var asBank = auth.BankProcess()

// appOf is the calling app's id, or "" for a caller that is not an app
// (the bank): what the bank records as a resource's app.
func appOf(c auth.Caller) string {
	id, _ := c.App()
	return id
}

// Bank is the sandbox bank service.
type Bank struct {
	db     *store.DB
	events EventWriter
	ext    Extensions
	audit  AuditTrail
	now    func() time.Time

	payments *paymentCommitter         // books payments by group commit
	access   batch.Queue[*accessCheck] // answers CanSeeCustomer in batches
}

// Options configure a Bank. Nil ports mean: no events, no extension
// points, no audit trail.
type Options struct {
	Events     EventWriter
	Extensions Extensions
	Audit      AuditTrail
	// Now is the clock; tests set it.
	Now func() time.Time
}

// Migrate creates or updates the bank's tables.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "core", migrationFiles, "migrations")
}

// New returns the bank over db, whose tables Migrate has created.
func New(db *store.DB, opts Options) *Bank {
	b := &Bank{db: db, events: opts.Events, ext: opts.Extensions, audit: opts.Audit, now: opts.Now}
	b.payments = newPaymentCommitter(b)
	b.access = batch.Queue[*accessCheck]{Max: maxAccessBatch, Run: b.checkAccess}
	if b.events == nil {
		b.events = noEvents{}
	}
	if b.audit == nil {
		b.audit = noAudit{}
	}
	if b.ext == nil {
		b.ext = noExtensions{}
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// SetExtensions plugs in the extension-point caller after construction,
// for the composition root (the SPI invoker itself needs the bank's data).
func (b *Bank) SetExtensions(ext Extensions) { b.ext = ext }
