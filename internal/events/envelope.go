// Package events is the second building block: what happens inside the bank
// reaches developers. It holds the event catalog, the bank's publishing
// endpoint, the visibility rule (who may see which event), and the pull and
// stream endpoints for catch-up. Webhook delivery lives in package webhooks.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/outbox"
)

// Envelope is one event as read from the event stream: the CloudEvent, and
// the routing facts the relay put in headers (never in the body, so one
// app's subscribers do not learn another's ids).
type Envelope struct {
	// Seq is the stream sequence: the feed's order and cursor.
	Seq        uint64
	ID         string
	Type       string
	Subject    string
	Time       time.Time
	AppID      string
	CustomerID string
	// Body is the CloudEvents 1.0 structured JSON, exactly as published.
	Body json.RawMessage
}

// FromMsg reads an envelope from a stream message.
func FromMsg(m jetstream.Msg) (*Envelope, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	return fromParts(meta.Sequence.Stream, m.Headers().Get(outbox.HeaderAppID), m.Headers().Get(outbox.HeaderCustomerID), m.Data())
}

// FromRaw reads an envelope from a message fetched by sequence.
func FromRaw(m *jetstream.RawStreamMsg) (*Envelope, error) {
	return fromParts(m.Sequence, m.Header.Get(outbox.HeaderAppID), m.Header.Get(outbox.HeaderCustomerID), m.Data)
}

func fromParts(seq uint64, appID, customerID string, body []byte) (*Envelope, error) {
	var ce struct {
		ID      string    `json:"id"`
		Type    string    `json:"type"`
		Subject string    `json:"subject"`
		Time    time.Time `json:"time"`
	}
	if err := json.Unmarshal(body, &ce); err != nil {
		return nil, err
	}
	if ce.ID == "" || ce.Type == "" {
		return nil, errors.New("events: message is not a CloudEvent")
	}
	return &Envelope{Seq: seq, ID: ce.ID, Type: ce.Type, Subject: ce.Subject, Time: ce.Time,
		AppID: appID, CustomerID: customerID, Body: body}, nil
}

// CustomerAccess answers whether an app may see a customer (the sandbox
// bank implements it).
type CustomerAccess interface {
	CanSeeCustomer(ctx context.Context, appID, customerID string) (bool, error)
}

// Visibility decides which apps may see an event. It is the one place that
// decides, for webhooks, the pull feed and the stream alike:
//
//   - an event addressed to an app (AppID) reaches that app only: the bank's
//     decision of its audience, or the platform's event about the app's own
//     resources (a disabled webhook, a data access decision);
//   - an event about a customer (CustomerID) reaches the apps entitled to
//     the customer: the one that created it, was seeded with it, or was
//     granted it. Never the app that caused it merely by acting: a payment
//     to another tenant's IBAN shows its credit leg to the payee's apps, not
//     to the payer;
//   - any other event reaches every app only if its type is bank-wide
//     public.
type Visibility struct {
	Customers CustomerAccess
	// Public reports whether an event type is bank-wide public.
	Public func(eventType string) bool
}

// Visible reports whether app may see the event.
func (v Visibility) Visible(ctx context.Context, appID string, e *Envelope) (bool, error) {
	switch {
	case appID == "":
		return false, nil
	case e.AppID != "":
		return e.AppID == appID, nil
	case e.CustomerID != "":
		if v.Customers == nil {
			return false, nil
		}
		return v.Customers.CanSeeCustomer(ctx, appID, e.CustomerID)
	}
	return v.Public != nil && v.Public(e.Type), nil
}
