package events_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/causewayhq/causeway/internal/events"
)

// FuzzPublishCloudEvent sends arbitrary bodies, content types and binary
// mode headers to POST /bank/v1/events: the handler never panics and never
// answers 5xx; a 202 carries an id, any other answer a problem.
func FuzzPublishCloudEvent(f *testing.F) {
	valid := `{"specversion":"1.0","type":"branch.customer.arrived","source":"/bank/branches/ams",` +
		`"data":{"customer_id":"cus_1","branch_id":"ams","arrived_at":"2026-03-14T09:26:53Z"}}`
	for _, seed := range []struct{ contentType, spec, body string }{
		{"application/cloudevents+json", "", valid},
		{"application/json", "", valid},
		{"application/cloudevents+json; charset=utf-8", "", `{"specversion":"1.0","id":"x","type":"payment.completed","source":"/s","data":{}}`},
		{"application/json", "1.0", `{"customer_id":"cus_1","branch_id":"ams","arrived_at":"2026-03-14T09:26:53Z"}`},
		{"application/cloudevents+json", "", `{"specversion":"1.0","type":"branch.customer.arrived","source":"/s","data_base64":"e30="}`},
		{"application/cloudevents+json", "", `{"specversion":1,"type":["x"],"source":{},"time":"x","causewaycustomerid":"\u0000"}`},
		{"application/cloudevents-batch+json", "", `[]`},
		{"text/plain", "", "hello"},
		{"", "", ""},
		{"application/json", "", `null`},
		{"application/json", "0.3", `{`},
	} {
		f.Add(seed.contentType, seed.spec, []byte(seed.body))
	}
	e := sqliteEnv(f, events.Options{})
	f.Fuzz(func(t *testing.T, contentType, spec string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/bank/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if spec != "" {
			req.Header.Set("Ce-Specversion", spec)
			req.Header.Set("Ce-Type", "branch.customer.arrived")
			req.Header.Set("Ce-Source", "/fuzz")
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for Content-Type %q, ce-specversion %q, body %q: %s", rec.Code, contentType, spec, body, rec.Body)
		}
		var out struct{ ID, Code string }
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%d with a body that is not JSON: %q", rec.Code, rec.Body)
		}
		if rec.Code == http.StatusAccepted && out.ID == "" || rec.Code != http.StatusAccepted && out.Code == "" {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}
