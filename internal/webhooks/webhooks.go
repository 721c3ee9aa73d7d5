// Package webhooks delivers events to developers' HTTPS endpoints: the
// last hop of "one payment, as data". An app subscribes a URL to event
// types (with "payment.*"-style wildcards and an optional CEL filter); the
// dispatcher reads the events stream the outbox relay writes, through one
// durable JetStream consumer per subscription (so one slow endpoint never
// delays another), and POSTs each event the app may see as a CloudEvents 1.0
// structured JSON body signed the Standard Webhooks way.
//
// Delivery rules, in one place:
//
//   - Only a 2xx answer is success. Anything else (another status, a
//     timeout, a refused connection, an address the SSRF guard refuses at
//     dial time) is retried after the next delay of Options.Schedule, with
//     jitter, or after Retry-After when a 429 or 503 asks for longer.
//   - 410 Gone disables the subscription at once.
//   - After the last attempt the event is dead-lettered: recorded with
//     outcome "dead", visible in the deliveries list, and re-sendable.
//   - A subscription whose attempts have failed without a success for
//     Options.DisableAfter is disabled, and a webhook.disabled event is
//     written through the outbox in the same transaction (the app's notice
//     and the bank's, which also sees it logged at warn level).
//   - Every attempt is recorded (time, status, latency, bounded response
//     snippet, error). Events skipped because the app may not see them or
//     the filter does not match are acknowledged and not recorded.
//   - An ordered subscription gets its next event only after the previous
//     one succeeded or was dead-lettered. It is implemented as one
//     outstanding event per subscription (MaxAckPending 1): global order,
//     which implies the per-subject order it promises, at the cost of
//     throughput. Unordered subscriptions have up to Options.MaxInFlight
//     attempts in flight at once.
//
// Every node runs the dispatcher; nodes share each subscription's durable
// consumer, so JetStream spreads the work and a node's death only delays
// its in-flight events until their ack wait ends. A change (pause, resume,
// new types, deletion) applies at once on the node that took it and within
// Options.SyncInterval on the others.
//
// Wiring: Migrate (after outbox.Migrate), New, Register on the HTTP server
// before it serves, then Run in the background beside the outbox relay
// (pass the relay's Notify as Options.NotifyOutbox). On shutdown: stop
// serving, cancel Run's context, then Close.
package webhooks

import (
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Subscription statuses.
const (
	StatusActive   = "active"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// Delivery outcomes.
const (
	// OutcomeSucceeded: the endpoint answered 2xx.
	OutcomeSucceeded = "succeeded"
	// OutcomeFailed: the attempt failed. For automatic deliveries another
	// attempt follows; a failed recover or manual retry is not retried.
	OutcomeFailed = "failed"
	// OutcomeDead: the last automatic attempt failed, or the endpoint
	// answered 410; the event is dead-lettered and no longer retried.
	OutcomeDead = "dead"
)

// Delivery origins: what caused an attempt.
const (
	OriginStream  = "stream"  // automatic delivery from the subscription's consumer, and its retries
	OriginRecover = "recover" // POST /v1/webhooks/{id}/recover
	OriginRetry   = "retry"   // POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry
)

// EventDisabled is the type of the event written when the platform
// disables a subscription that kept failing.
const EventDisabled = "webhook.disabled"

// eventSource is the CloudEvents source of the events this package writes.
const eventSource = "/causeway/webhooks"

// Subscription is a webhook subscription as the API shows it.
type Subscription struct {
	ID         string   `json:"id" example:"wh_01jd3k7m9q6x4t2w8y5z0abcde"`
	AppID      string   `json:"app_id"`
	URL        string   `json:"url" example:"https://example.com/hooks/causeway"`
	EventTypes []string `json:"event_types" example:"[\"payment.*\"]"`
	Filter     string   `json:"filter" doc:"CEL expression over the event; empty means every event" example:"data.amount.amount > 1000.0"`
	Ordered    bool     `json:"ordered" doc:"Deliver one event at a time, the next only after the previous succeeded or was dead-lettered"`
	Status     string   `json:"status" enum:"active,paused,disabled"`
	// DisabledReason says why the platform disabled the subscription.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// FailingSince is when the current run of failed attempts began.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// PreviousSecretExpiresAt is when the secret replaced by the last
	// rotation stops signing.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
	// Secret is the signing secret, shown only when it is created (at
	// creation and rotation).
	Secret string `json:"secret,omitempty" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
}

// Delivery is one recorded attempt to deliver an event.
type Delivery struct {
	ID             string    `json:"id" example:"whd_01jd3k7m9q6x4t2w8y5z0abcde"`
	SubscriptionID string    `json:"subscription_id"`
	EventID        string    `json:"event_id"`
	EventType      string    `json:"event_type"`
	Attempt        int       `json:"attempt" doc:"1 for the first automatic attempt; counts JetStream deliveries"`
	Origin         string    `json:"origin" enum:"stream,recover,retry"`
	Outcome        string    `json:"outcome" enum:"succeeded,failed,dead"`
	StatusCode     int       `json:"status_code" doc:"HTTP status of the answer; 0 when there was none"`
	LatencyMS      float64   `json:"latency_ms"`
	Error          string    `json:"error" doc:"What went wrong; empty on success"`
	Snippet        string    `json:"response_snippet" doc:"The first KiB of the response body"`
	CreatedAt      time.Time `json:"created_at"`
	// StreamSeq is where the event sits in the events stream, for retries.
	StreamSeq uint64 `json:"-"`
}

// DefaultSchedule is the wait after each failed attempt: ten attempts over
// about three days (0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h,
// 24 h after the event).
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Options tune a Service. The zero value is the production configuration.
type Options struct {
	// Schedule is the wait after each failed attempt: Schedule[0] after the
	// first, and so on; an event gets len(Schedule)+1 attempts. Default
	// DefaultSchedule. Tests use milliseconds.
	Schedule []time.Duration
	// Jitter spreads each wait by up to this fraction either way, so
	// retries of many events do not arrive together. Default 0.1; negative
	// means none.
	Jitter float64
	// DisableAfter is how long a subscription may fail without a single
	// success before it is disabled. Default 5 days.
	DisableAfter time.Duration
	// RequestTimeout bounds one attempt, response included. Default 15s.
	RequestTimeout time.Duration
	// SecretOverlap is how long the previous secret keeps signing after a
	// rotation. Default 24h.
	SecretOverlap time.Duration
	// SyncInterval is how often the dispatcher re-reads the subscriptions
	// to follow changes made on other nodes; changes made through this
	// node's API apply at once. Default 1s.
	SyncInterval time.Duration
	// MaxInFlight bounds the concurrent attempts of one unordered
	// subscription on one node, each from its pull to its acknowledgement.
	// Default 16.
	MaxInFlight int
	// RecoverLimit bounds the events one recover re-sends. Default 10000.
	RecoverLimit int
	// DeliveryRetention is how long delivery records are kept. Default 30
	// days.
	DeliveryRetention time.Duration
	// NotifyOutbox, when set, is called after this package appended an
	// event (webhook.disabled) so the relay publishes it at once.
	NotifyOutbox func()
	// Registerer receives the delivery metrics; nil means none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock for records, failure runs, secret expiry and
	// creation times (a subscription's consumer starts at its creation
	// time, so keep it near the stream's clock). Signature timestamps
	// always use the real clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule
	}
	o.Schedule = append([]time.Duration(nil), o.Schedule...)
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.Jitter < 0 {
		o.Jitter = 0
	}
	if o.Jitter > 1 {
		o.Jitter = 1
	}
	if o.DisableAfter <= 0 {
		o.DisableAfter = 5 * 24 * time.Hour
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 15 * time.Second
	}
	if o.SecretOverlap <= 0 {
		o.SecretOverlap = 24 * time.Hour
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 16
	}
	if o.RecoverLimit <= 0 {
		o.RecoverLimit = 10000
	}
	if o.DeliveryRetention <= 0 {
		o.DeliveryRetention = 30 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// maxPatterns bounds the event type patterns of one subscription.
const maxPatterns = 50

// validPattern reports whether p is an event type pattern: "*", dotted
// tokens of letters, digits, '-' and '_' ("payment.completed"), or such
// tokens followed by ".*" ("payment.*", which also matches
// "payment.refund.created").
func validPattern(p string) bool {
	if p == "*" {
		return true
	}
	p = strings.TrimSuffix(p, ".*")
	if p == "" {
		return false
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" || len(tok) > 64 {
			return false
		}
		for _, c := range tok {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// patternCovers reports whether pattern p matches every type q matches.
func patternCovers(p, q string) bool {
	if p == "*" || p == q {
		return true
	}
	prefix, ok := strings.CutSuffix(p, "*")
	return ok && strings.HasPrefix(q, prefix)
}

// normalizePatterns drops duplicates and patterns another one covers
// (JetStream refuses overlapping filter subjects), keeping the caller's
// order otherwise.
func normalizePatterns(ps []string) []string {
	var out []string
	for i, p := range ps {
		covered := false
		for j, q := range ps {
			if i != j && patternCovers(q, p) && (!patternCovers(p, q) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// Matches reports whether an event type matches any of the patterns.
func Matches(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if patternCovers(p, eventType) {
			return true
		}
	}
	return false
}
