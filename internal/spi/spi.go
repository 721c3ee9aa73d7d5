// Package spi lets a bank process ask an outside party for an answer at a
// defined extension point (an SPI): a fintech registers an HTTPS endpoint at
// a point such as payments.fraud-check, the bank activates it, and from then
// on the bank's process POSTs a signed request to it and uses the answer.
//
// The package owns the extension-point catalog (built-in points in code,
// bank-defined points in the database), the registrations, the invoker
// (deadline, response schema, circuit breaker and failure policy per
// registration) and the audit of every call. Service implements
// core.Extensions, so the sandbox bank calls it without importing it.
//
// Who is asked at a point: the calling app's own active app-scope
// registrations and the active bank-scope registrations, in that order,
// the bank's by priority. How their replies make one answer is the
// point's combination rule (Combination, named in the catalog), chosen so
// that an app's own registration can only tighten the bank's controls:
//
//   - payments.fraud-check and kyc.verify: strictest. Every registration
//     is asked at once, and the strictest reply wins (deny, review,
//     approve; fail, refer, pass).
//   - loans.credit-decision: tighten_only. The bank-scope registrations
//     decide as under first; the app's own are asked beside them, and the
//     bank applies their replies only where they decline, refer, lower the
//     limit or raise the rate.
//   - accounts.lookup: merge. Every registration is asked at once, and the
//     insights of every reply are merged, each marked with its provider.
//   - a point the bank defines: first (the default), strictest or merge.
//     Under first the registrations are asked one after the other and the
//     first valid reply is the answer.
//
// A failure is handled by the failing registration's on_failure policy,
// whatever the rule: reject makes its reply a failure the process fails
// closed on (under strictest it ranks as the point's failed_as value),
// stand_in makes its reply the point's stand-in result, next gives no reply
// (under first: the next registration is tried). When no registration
// replies at all, the stand-in is the answer. The whole call ends within
// the point's maximum deadline.
package spi

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/page"
)

// Registration scopes.
const (
	// ScopeApp registrations answer only for process instances the
	// registering app started, and are active at once. Their replies can
	// only tighten what the bank's controls decide.
	ScopeApp = core.ExtensionScopeApp
	// ScopeBank registrations answer for every process instance, once the
	// bank activates them.
	ScopeBank = core.ExtensionScopeBank
)

// Registration statuses.
const (
	StatusActive            = "active"
	StatusPendingActivation = "pending_activation"
	StatusInactive          = "inactive"
	// StatusDeleted marks a registration its app deleted. It is never
	// called again; the bank keeps its audit.
	StatusDeleted = "deleted"
)

// Failure policies: what happens when a registration does not give a valid
// answer in time.
const (
	// OnFailureReject fails the process closed: the reply is Failed.
	OnFailureReject = "reject"
	// OnFailureStandIn answers with the point's stand-in result.
	OnFailureStandIn = "stand_in"
	// OnFailureNext gives no reply: under the rule first the next
	// registration is tried. When no registration replies, the stand-in
	// result is the answer.
	OnFailureNext = "next"
)

// Invocation outcomes.
const (
	OutcomeAnswered = "answered"
	// OutcomeFailed is an attempt that gave no valid answer in time.
	OutcomeFailed = "failed"
	// OutcomeStandIn is a failed attempt whose policy answered with the
	// stand-in result.
	OutcomeStandIn = "stand_in"
	// OutcomeSkippedBreakerOpen is an attempt not made because the
	// registration's circuit breaker was open.
	OutcomeSkippedBreakerOpen = "skipped_breaker_open"
)

// Registration is a fintech endpoint registered at an extension point.
type Registration struct {
	ID             string    `json:"id" example:"spi_01jd3k7m9q6x4t2w8y5z0abcde"`
	AppID          string    `json:"app_id" doc:"The app that registered it"`
	ExtensionPoint string    `json:"extension_point" example:"payments.fraud-check"`
	URL            string    `json:"url" example:"https://fraud.example.com/causeway"`
	Scope          string    `json:"scope" enum:"app,bank"`
	Status         string    `json:"status" enum:"active,pending_activation,inactive,deleted"`
	TimeoutMS      int       `json:"timeout_ms" doc:"Deadline of one call; the point's maximum caps it"`
	OnFailure      string    `json:"on_failure" enum:"reject,stand_in,next"`
	Priority       int       `json:"priority" doc:"Bank-scope registrations are asked in ascending priority (1 before 2), after the app's own; the order decides under the rule first and breaks ties otherwise"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// PreviousSecretExpiresAt is set after a secret rotation: until then
	// calls carry a signature with the previous secret too.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`

	sealedSecret, sealedPrevious string
}

// NewRegistration is what an app gives to register an endpoint.
type NewRegistration struct {
	ExtensionPoint string
	URL            string
	// Scope is ScopeApp (the default) or ScopeBank.
	Scope string
	// TimeoutMS is the deadline of one call; 0 means the point's default.
	// For a bank-scope registration it is a wish the bank may override at
	// activation.
	TimeoutMS int
	// OnFailure is the failure policy; "" means OnFailureStandIn.
	OnFailure string
}

// Activation is how the bank activates a registration. Zero fields keep
// the registration's current values.
type Activation struct {
	TimeoutMS int
	OnFailure string
	Priority  *int
}

// Invocation is one attempt to reach a registration, as audited.
type Invocation struct {
	ID             string    `json:"id" doc:"Also the webhook-id and body id the endpoint received"`
	RegistrationID string    `json:"registration_id"`
	AppID          string    `json:"app_id,omitempty" doc:"The app whose process made the call; empty for the bank's own"`
	ExtensionPoint string    `json:"extension_point"`
	StartedAt      time.Time `json:"started_at"`
	LatencyMS      float64   `json:"latency_ms"`
	Outcome        string    `json:"outcome" enum:"answered,failed,stand_in,skipped_breaker_open"`
	FailureReason  string    `json:"failure_reason,omitempty"`
	StandIn        bool      `json:"stand_in" doc:"True when this failure made the bank use the stand-in result"`
	StatusCode     int       `json:"status_code,omitempty" doc:"HTTP status the endpoint answered with, 0 when none"`
}

// RegistrationFilter selects registrations to list.
type RegistrationFilter struct {
	// AppID limits the list to one app's registrations; "" lists all.
	AppID          string
	ExtensionPoint string
	Status         string
	// IncludeDeleted lists registrations their app deleted too (the
	// bank's view).
	IncludeDeleted bool
	Limit          int
	Cursor         string
}

// Limits on what a registration may ask for.
const (
	maxURLLength = 2048
	// MaxTimeoutMS caps any point's maximum deadline: an SPI sits inside a
	// running bank process, which cannot wait longer.
	MaxTimeoutMS = 60_000
)

func validPolicy(p string) bool {
	return p == OnFailureReject || p == OnFailureStandIn || p == OnFailureNext
}

func errPolicy() error {
	return causeway.Errorf(causeway.EINVALID, "invalid_on_failure", "on_failure must be reject, stand_in or next")
}

// validateURL checks the form of an endpoint URL; the SSRF guard checks
// where it leads.
func validateURL(raw string) (string, error) {
	bad := causeway.Errorf(causeway.EINVALID, "invalid_url",
		"url must be an absolute http or https URL without credentials or fragment, at most %d characters", maxURLLength)
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxURLLength {
		return "", bad
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Fragment != "" || u.Opaque != "" {
		return "", bad
	}
	return u.String(), nil
}

// compactJSON returns raw without insignificant whitespace.
func compactJSON(raw []byte) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// Page sizes of the lists.
const (
	DefaultPageSize = page.DefaultSize
	MaxPageSize     = page.MaxSize
)
