package events

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
)

// CloudEvent is an event to publish: the CloudEvents 1.0 attributes the
// platform keeps, and whom it concerns. Other extension attributes are not
// kept: every event is delivered in the same structured form.
type CloudEvent struct {
	// ID identifies the event; empty means a new "evt_…" id. The same id
	// from the same producer is the same event: publishing it again while
	// the first is still in the outbox changes nothing.
	ID string
	// Type must be in the catalog.
	Type string
	// Source names the producer, e.g. "/bank/branches/ams-centraal".
	Source string
	// Subject is what the event is about, e.g. a customer id; optional.
	Subject string
	// Time is when it happened; zero means now.
	Time time.Time
	// Data is JSON, validated against the type's schema.
	Data json.RawMessage
	// CustomerID is the customer the event concerns: the apps that may see
	// that customer see the event. Empty means data.customer_id, if the
	// data has one. (CloudEvents extension attribute causewaycustomerid.)
	CustomerID string
	// AppID is the one app the event is for. (Extension attribute
	// causewayappid.)
	AppID string
}

// Extension attributes that route an event.
const (
	AttrCustomerID = "causewaycustomerid"
	AttrAppID      = "causewayappid"
)

// Limits on published events.
const (
	maxIDLength     = 256
	maxSourceLength = 1024
	maxRoutingID    = 128
	// maxTimeLength and maxContentTypeLength bound the time and
	// datacontenttype attributes, which are read, not kept.
	maxTimeLength        = 64
	maxContentTypeLength = 255
	// maxEventBytes bounds the encoded CloudEvent, well below what the bus
	// accepts, so an accepted event can always be published.
	maxEventBytes = 256 << 10
)

// decodeStructured reads a CloudEvent in the structured JSON form. Errors
// are EBADREQUEST (not a JSON object) or EINVALID (an attribute is missing
// or wrong); they name the attribute.
func decodeStructured(body []byte) (CloudEvent, error) {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(body, &attrs); err != nil || attrs == nil {
		return CloudEvent{}, causeway.Errorf(causeway.EBADREQUEST, "invalid_json",
			"the body must be a CloudEvent as a JSON object (structured content mode)")
	}
	var ce CloudEvent
	var spec, when, contentType string
	for name, dst := range map[string]*string{
		"specversion": &spec, "id": &ce.ID, "type": &ce.Type, "source": &ce.Source, "subject": &ce.Subject,
		"time": &when, "datacontenttype": &contentType, AttrCustomerID: &ce.CustomerID, AttrAppID: &ce.AppID,
	} {
		raw, ok := attrs[name]
		if !ok || string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return CloudEvent{}, invalidEvent("attribute %s must be a string", name)
		}
	}
	if raw, ok := attrs["id"]; ok && string(raw) != "null" && ce.ID == "" {
		return CloudEvent{}, invalidEvent("attribute id must not be empty; leave it out to have one assigned")
	}
	if _, ok := attrs["data_base64"]; ok {
		return CloudEvent{}, causeway.Errorf(causeway.EINVALID, "unsupported_data",
			"data_base64 is not supported: event data must be JSON, in the data attribute")
	}
	if err := checkAttributes(spec, when, contentType, &ce); err != nil {
		return CloudEvent{}, err
	}
	if raw, ok := attrs["data"]; ok && string(raw) != "null" {
		ce.Data = raw
	}
	return ce, nil
}

// decodeBinary reads a CloudEvent in the binary HTTP content mode: the
// attributes in ce-* headers, the data as the body.
func decodeBinary(h http.Header, body []byte) (CloudEvent, error) {
	ce := CloudEvent{
		ID: h.Get("Ce-Id"), Type: h.Get("Ce-Type"), Source: h.Get("Ce-Source"), Subject: h.Get("Ce-Subject"),
		CustomerID: h.Get("Ce-" + AttrCustomerID), AppID: h.Get("Ce-" + AttrAppID),
	}
	if err := checkAttributes(h.Get("Ce-Specversion"), h.Get("Ce-Time"), h.Get("Content-Type"), &ce); err != nil {
		return CloudEvent{}, err
	}
	if len(body) > 0 {
		if !json.Valid(body) {
			return CloudEvent{}, causeway.Errorf(causeway.EBADREQUEST, "invalid_json", "the body (the event's data) is not valid JSON")
		}
		ce.Data = body
	}
	return ce, nil
}

// checkAttributes checks what both content modes share: the spec version,
// the required attributes, the time and the data's content type.
func checkAttributes(spec, when, contentType string, ce *CloudEvent) error {
	switch {
	case spec == "":
		return invalidEvent("attribute specversion is required; it must be \"1.0\"")
	case spec != "1.0":
		return invalidEvent("specversion %q is not supported; it must be \"1.0\"", spec)
	case ce.Type == "":
		return invalidEvent("attribute type is required")
	case ce.Source == "":
		return invalidEvent("attribute source is required")
	}
	if len(when) > maxTimeLength || len(contentType) > maxContentTypeLength {
		return invalidEvent("attributes time and datacontenttype must be at most %d and %d characters", maxTimeLength, maxContentTypeLength)
	}
	if when != "" {
		t, err := time.Parse(time.RFC3339Nano, when)
		if err != nil {
			return invalidEvent("attribute time %q is not an RFC 3339 timestamp", when)
		}
		ce.Time = t
	}
	if contentType != "" && !isJSON(contentType) {
		return causeway.Errorf(causeway.EINVALID, "unsupported_data",
			"datacontenttype %q is not supported: event data must be JSON (application/json)", contentType)
	}
	return nil
}

// isJSON reports whether a media type is JSON: application/json, text/json
// or a +json suffix.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// check validates what every published event must satisfy, whichever way it
// came in.
func (ce *CloudEvent) check() error {
	switch {
	case len(ce.ID) > maxIDLength || !printable(ce.ID):
		return invalidEvent("id must be at most %d printable characters", maxIDLength)
	case ce.Source == "":
		return invalidEvent("source is required")
	case len(ce.Source) > maxSourceLength || !printable(ce.Source):
		return invalidEvent("source must be at most %d printable characters", maxSourceLength)
	case len(ce.Subject) > maxSourceLength || !printable(ce.Subject):
		return invalidEvent("subject must be at most %d printable characters", maxSourceLength)
	case len(ce.CustomerID) > maxRoutingID || !printable(ce.CustomerID) || strings.ContainsRune(ce.CustomerID, ' '):
		return invalidEvent("%s must be a customer id", AttrCustomerID)
	case len(ce.AppID) > maxRoutingID || !printable(ce.AppID) || strings.ContainsRune(ce.AppID, ' '):
		return invalidEvent("%s must be an app id", AttrAppID)
	}
	return nil
}

// printable reports valid UTF-8 without control characters: the text
// travels in NATS headers and SSE fields, where a line break would end it.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// customerOf returns data.customer_id when data is an object with a string
// customer_id.
func customerOf(data json.RawMessage) string {
	var d struct {
		CustomerID any `json:"customer_id"`
	}
	if json.Unmarshal(data, &d) != nil {
		return ""
	}
	s, _ := d.CustomerID.(string)
	return s
}

func invalidEvent(format string, args ...any) error {
	return causeway.Errorf(causeway.EINVALID, "invalid_cloudevent", format, args...)
}
