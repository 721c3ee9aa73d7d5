package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/bus"
)

// NATS headers the relay sets beside the CloudEvent body. The app and
// customer an event concerns travel only here, never in the body, so the
// dispatcher can filter by them without any subscriber learning them.
const (
	HeaderAppID      = "Causeway-App-Id"
	HeaderCustomerID = "Causeway-Customer-Id"
	HeaderEventType  = "Causeway-Event-Type"
)

// StreamName is the unprefixed name of the events stream (see bus.Stream).
const StreamName = "events"

// duplicateWindow is how long JetStream remembers a Nats-Msg-Id. It must
// outlast a relay crash and restart (plus the lease timeout when another
// node takes over), so that the re-publish of events published but not yet
// marked is dropped.
const duplicateWindow = time.Hour

// StreamLimits are the installation's choices for the events stream.
type StreamLimits struct {
	// MaxAge drops events older than this from the stream: they can no
	// longer be replayed, recovered or read from /v1/events, and a
	// subscription paused for longer misses them. Zero keeps every event
	// (the stream grows by about a kilobyte per event).
	MaxAge time.Duration
	// Replicas is how many servers of a NATS cluster keep the stream (1,
	// 3 or 5); zero means 1.
	Replicas int
}

// MaxReplicas is the most copies JetStream keeps of a stream.
const MaxReplicas = 5

// Validate checks the limits.
func (l StreamLimits) Validate() error {
	switch {
	case l.MaxAge < 0:
		return fmt.Errorf("event retention must not be negative")
	case l.MaxAge > 0 && l.MaxAge < duplicateWindow:
		return fmt.Errorf("event retention must be at least %s (the duplicate window), or 0 to keep every event", duplicateWindow)
	case l.Replicas < 0 || l.Replicas > MaxReplicas:
		return fmt.Errorf("event replicas must be between 1 and %d", MaxReplicas)
	}
	return nil
}

// EnsureStream creates the events stream, or updates it to this
// configuration: every subject under Subject(b, ">"), file storage, a
// one-hour duplicate window, and the installation's limits. The platform
// calls it at start, so the flags, not edits made on the NATS side, decide
// the stream's configuration.
func EnsureStream(ctx context.Context, b *bus.Bus, l StreamLimits) (jetstream.Stream, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return b.EnsureStream(ctx, StreamName, jetstream.StreamConfig{
		Description: "Causeway domain events as CloudEvents, published by the outbox relay",
		Subjects:    []string{b.Subject(StreamName, ">")},
		Storage:     jetstream.FileStorage,
		Duplicates:  duplicateWindow,
		MaxAge:      l.MaxAge,
		Replicas:    max(l.Replicas, 1),
	})
}

// Subject returns the subject an event type is published on: the type's
// dot-separated parts stay separate tokens, so "payment.completed" becomes
// <prefix>.events.payment.completed and consumers can filter on
// <prefix>.events.payment.>.
func Subject(b *bus.Bus, eventType string) string {
	return b.Subject(StreamName, eventType)
}

// cloudEvent is the CloudEvents 1.0 structured JSON form of an Event.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// CloudEvent encodes e as a CloudEvents 1.0 structured JSON event: the body
// of every message on the stream and, later, of every webhook delivery.
// AppID and CustomerID are deliberately left out (see HeaderAppID).
func CloudEvent(e Event) ([]byte, error) {
	ce := cloudEvent{
		SpecVersion: "1.0",
		ID:          e.ID,
		Type:        e.Type,
		Source:      e.Source,
		Subject:     e.Subject,
		Time:        e.Time.UTC().Format(time.RFC3339Nano),
	}
	if len(e.Data) > 0 {
		ce.DataContentType = "application/json"
		ce.Data = e.Data
	}
	// Without HTML escaping, the data reaches subscribers byte for byte as
	// the API shows it (json.Marshal would turn '<' into \u003c).
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ce); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
