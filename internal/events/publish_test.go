package events_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/events"
)

var arrival = map[string]any{
	"customer_id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8", "branch_id": "ams-centraal", "arrived_at": "2026-03-14T09:26:53Z",
	"detected_by": "camera", "confidence": 0.97,
}

// TestBankEventsReachOnlyTheAppsThatMaySeeThem: a public bank type reaches
// every app; an event concerning a customer reaches the apps that may see
// the customer and no other; an event for one app reaches that app.
func TestBankEventsReachOnlyTheAppsThatMaySeeThem(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		public := map[string]any{}
		for k, v := range visitEnded {
			public[k] = v
		}
		public["type"], public["public"] = "branch.opening_hours.changed", true
		public["example"] = nil
		public["schema"] = map[string]any{"type": "object", "required": []string{"branch_id"}}
		if res := e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", public); res.status != http.StatusCreated {
			t.Fatalf("register = %d %s", res.status, res.body)
		}
		if res := e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", visitEnded); res.status != http.StatusCreated {
			t.Fatalf("register = %d %s", res.status, res.body)
		}
		e.access.grant("app_a", "cus_a")
		e.access.grant("app_b", "cus_b")

		everyone := e.publish(t, cloudEvent("branch.opening_hours.changed", map[string]any{"branch_id": "ams"}, nil))
		forA := e.publish(t, cloudEvent("branch.visit.ended", map[string]any{"customer_id": "cus_a", "branch_id": "ams", "minutes": 12}, nil))
		forAByExt := e.publish(t, cloudEvent("branch.customer.arrived", arrival, map[string]any{"causewaycustomerid": "cus_a"}))
		appOnlyB := e.publish(t, cloudEvent("branch.opening_hours.changed", map[string]any{"branch_id": "utr"}, map[string]any{"causewayappid": "app_b"}))
		// Not public, concerning nobody: no app sees it.
		nobody := e.publish(t, cloudEvent("branch.visit.ended", map[string]any{"branch_id": "x", "minutes": 1}, nil))

		a := e.waitFor(t, "app_a", 3)
		b := e.waitFor(t, "app_b", 2)
		if got, want := ids(a), []string{everyone, forA, forAByExt}; !slices.Equal(got, want) {
			t.Errorf("app_a sees %v, want %v", got, want)
		}
		if got, want := ids(b), []string{everyone, appOnlyB}; !slices.Equal(got, want) {
			t.Errorf("app_b sees %v, want %v", got, want)
		}
		if got := e.pullAll(t, "app_c", 50); len(got) != 1 || got[0].ID != everyone {
			t.Errorf("app_c sees %v, want only the public event", ids(got))
		}
		for _, id := range []string{nobody} {
			if slices.Contains(ids(a), id) || slices.Contains(ids(b), id) {
				t.Errorf("event %s concerning nobody reached an app", id)
			}
		}
		ev := a[1]
		if ev.SpecVersion != "1.0" || ev.Type != "branch.visit.ended" || ev.Source != "/bank/test" || ev.Time.IsZero() ||
			!strings.Contains(string(ev.Data), `"minutes":12`) {
			t.Errorf("event as pulled = %+v", ev)
		}
		if strings.Contains(string(a[2].Data), "causewaycustomerid") {
			t.Error("the routing extension leaked into the event")
		}
	})
}

func TestPublishRefusesBadEvents(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	valid := func() map[string]any { return cloudEvent("branch.customer.arrived", arrival, nil) }
	with := func(k string, v any) map[string]any {
		ce := valid()
		if v == nil {
			delete(ce, k)
		} else {
			ce[k] = v
		}
		return ce
	}
	tests := []struct {
		name        string
		contentType string
		body        any
		status      int
		code        string
		detail      string // part of the message
	}{
		{"unknown type", "application/cloudevents+json", with("type", "branch.customer.teleported"), 422, "unknown_event_type", "branch.customer.teleported"},
		{"data off schema", "application/cloudevents+json", with("data", map[string]any{"branch_id": 7}), 422, "invalid_event_data", "customer_id"},
		{"data of the wrong kind", "application/cloudevents+json", with("data", []int{1}), 422, "invalid_event_data", "object"},
		{"no data", "application/cloudevents+json", with("data", nil), 422, "invalid_event_data", "no data"},
		{"bad confidence", "application/cloudevents+json", with("data", map[string]any{"customer_id": "cus_1", "branch_id": "x", "arrived_at": "2026-03-14T09:26:53Z", "confidence": 3}), 422, "invalid_event_data", "confidence"},
		{"bad timestamp in data", "application/cloudevents+json", with("data", map[string]any{"customer_id": "cus_1", "branch_id": "x", "arrived_at": "yesterday"}), 422, "invalid_event_data", "arrived_at"},
		{"no specversion", "application/cloudevents+json", with("specversion", nil), 422, "invalid_cloudevent", "specversion"},
		{"old specversion", "application/cloudevents+json", with("specversion", "0.3"), 422, "invalid_cloudevent", "0.3"},
		{"no source", "application/cloudevents+json", with("source", nil), 422, "invalid_cloudevent", "source"},
		{"no type", "application/cloudevents+json", with("type", nil), 422, "invalid_cloudevent", "type"},
		{"type not a string", "application/cloudevents+json", with("type", 5), 422, "invalid_cloudevent", "type"},
		{"bad time", "application/cloudevents+json", with("time", "14 March"), 422, "invalid_cloudevent", "time"},
		{"empty id", "application/cloudevents+json", with("id", ""), 422, "invalid_cloudevent", "id"},
		// Control characters break the platform's text rule first.
		{"id with a line break", "application/cloudevents+json", with("id", "a\nb"), 422, "invalid_text", "body.id"},
		{"base64 data", "application/cloudevents+json", with("data_base64", "e30="), 422, "unsupported_data", "data_base64"},
		{"XML data", "application/cloudevents+json", with("datacontenttype", "application/xml"), 422, "unsupported_data", "JSON"},
		{"customer id not text", "application/cloudevents+json", with("causewaycustomerid", "a\tb"), 422, "invalid_text", "body.causewaycustomerid"},
		{"not JSON", "application/cloudevents+json", "{", 400, "invalid_json", "JSON object"},
		{"JSON array", "application/cloudevents+json", "[]", 400, "invalid_json", "JSON object"},
		{"batch", "application/cloudevents-batch+json", "[]", 415, "unsupported_media_type", "batch"},
		{"plain text", "text/plain", "hello", 415, "unsupported_media_type", "cloudevents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.asBank(t, http.MethodPost, "/bank/v1/events", tt.contentType, tt.body)
			code, detail := res.problem(t)
			if res.status != tt.status || code != tt.code || !strings.Contains(strings.ToLower(detail), strings.ToLower(tt.detail)) {
				t.Errorf("= %d %s, want %d %s mentioning %q", res.status, res.body, tt.status, tt.code, tt.detail)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
	if res := e.request(t, http.MethodPost, "/bank/v1/events", http.Header{"Content-Type": {"application/cloudevents+json"}}, []byte("{}")); res.status != 401 {
		t.Errorf("publish without the admin token = %d, want 401", res.status)
	}
}

func TestPublishAcceptsEveryContentMode(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.access.grant("app_a", "cus_01jqz8r3k2m4n6p8q0s2t4v6w8")
		ce := cloudEvent("branch.customer.arrived", arrival, map[string]any{"id": "cam-42-0001", "subject": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8", "time": "2026-03-14T09:26:53.5Z"})
		structured, _ := json.Marshal(ce)

		res := e.asBank(t, http.MethodPost, "/bank/v1/events", "application/cloudevents+json; charset=utf-8", structured)
		if res.status != http.StatusAccepted {
			t.Fatalf("structured = %d %s", res.status, res.body)
		}
		e.doc.Check(t, http.MethodPost, "/bank/v1/events", res.status, res.header.Get("Content-Type"), res.body)
		var out struct{ ID string }
		res.decode(t, &out)
		if out.ID != "cam-42-0001" {
			t.Errorf("id = %q, want the producer's", out.ID)
		}

		ce["id"] = nil
		plain, _ := json.Marshal(ce)
		res = e.asBank(t, http.MethodPost, "/bank/v1/events", "application/json", plain)
		res.decode(t, &out)
		if res.status != http.StatusAccepted || !strings.HasPrefix(out.ID, "evt_") {
			t.Errorf("application/json without id = %d %s, want 202 with an evt_ id", res.status, res.body)
		}
		generated := out.ID

		data, _ := json.Marshal(arrival)
		res = e.request(t, http.MethodPost, "/bank/v1/events", http.Header{
			"Authorization": {"Bearer " + adminToken}, "Content-Type": {"application/json"},
			"Ce-Specversion": {"1.0"}, "Ce-Id": {"cam-42-0002"}, "Ce-Type": {"branch.customer.arrived"}, "Ce-Source": {"/bank/branches/ams"},
		}, data)
		res.decode(t, &out)
		if res.status != http.StatusAccepted || out.ID != "cam-42-0002" {
			t.Errorf("binary mode = %d %s", res.status, res.body)
		}

		// The same event again is the same event: accepted, delivered once.
		res = e.asBank(t, http.MethodPost, "/bank/v1/events", "application/cloudevents+json", structured)
		if res.status != http.StatusAccepted {
			t.Errorf("the same event again = %d %s, want 202", res.status, res.body)
		}

		got := e.waitFor(t, "app_a", 3)
		// The relay publishes what it finds in id order, so the stream need
		// not keep the order of publishing across producers' ids.
		if g := ids(got); len(g) != 3 || !slices.Contains(g, "cam-42-0001") || !slices.Contains(g, "cam-42-0002") || !slices.Contains(g, generated) {
			t.Errorf("app_a sees %v, want cam-42-0001, cam-42-0002 and %s once each", g, generated)
		}
		for _, ev := range got {
			if ev.ID == "cam-42-0001" && (ev.Subject != "cus_01jqz8r3k2m4n6p8q0s2t4v6w8" || ev.Time.UnixMilli() != 1773480413500) {
				t.Errorf("attributes not kept: %+v", ev)
			}
		}
	})
}

func TestPublishFromGo(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	ctx := context.Background()
	data, _ := json.Marshal(arrival)
	id, err := e.svc.Publish(ctx, events.CloudEvent{Type: "branch.customer.arrived", Source: "/demo/camera", Data: data})
	if err != nil || !strings.HasPrefix(id, "evt_") {
		t.Fatalf("Publish = %q, %v", id, err)
	}
	_, err = e.svc.Publish(ctx, events.CloudEvent{Type: "branch.customer.arrived", Source: "/demo/camera", Data: json.RawMessage(`{}`)})
	if causeway.ErrorCode(err) != "invalid_event_data" || causeway.ErrorKind(err) != causeway.EINVALID {
		t.Errorf("Publish with bad data = %v", err)
	}
	_, err = e.svc.Publish(ctx, events.CloudEvent{Type: "no.such", Source: "/demo", Data: data})
	if causeway.ErrorCode(err) != "unknown_event_type" {
		t.Errorf("Publish of an unknown type = %v", err)
	}
	e.access.grant("app_a", arrival["customer_id"].(string))
	if got := e.waitFor(t, "app_a", 1); got[0].ID != id {
		t.Errorf("app_a sees %v, want %s (routed by data.customer_id)", ids(got), id)
	}
}
