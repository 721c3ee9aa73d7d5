package platform_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

type hookReceiver struct {
	mu     sync.Mutex
	secret string
	events []cloudevents.Event
	errs   []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(h.secret)
	if err == nil {
		err = wh.Verify(body, r.Header)
	}
	if err != nil {
		h.errs = append(h.errs, "verify: "+err.Error())
		w.WriteHeader(400)
		return
	}
	var ev cloudevents.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Validate() != nil {
		h.errs = append(h.errs, "cloudevent: "+string(body))
	}
	if r.Header.Get("webhook-id") != ev.ID() {
		h.errs = append(h.errs, "webhook-id differs from the event id")
	}
	h.events = append(h.events, ev)
	w.WriteHeader(204)
}

func (h *hookReceiver) find(typ, subject string) *cloudevents.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.events {
		if h.events[i].Type() == typ && h.events[i].Subject() == subject {
			return &h.events[i]
		}
	}
	return nil
}

// TestWebhookReceivesSignedPaymentEvents is the events issue's acceptance:
// a webhook set up through the API receives a payment's event, signed so
// the Standard Webhooks verifier accepts it, as a CloudEvent the SDK
// parses; another app's subscriber never receives it.
func TestWebhookReceivesSignedPaymentEvents(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		// Only 127.0.0.1, where the receivers listen: 127.0.0.2 is refused.
		cfg.AllowPrivateTargets = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		n := platformtest.Start(t, cfg)
		doc := openapitest.Fetch(t, n.URL)
		a, _ := developerApp(t, n, doc, "hooks@solarworld.example")
		b, _ := developerApp(t, n, doc, "spy@example.com")
		recA, recB := &hookReceiver{}, &hookReceiver{}
		srvA, srvB := httptest.NewServer(recA), httptest.NewServer(recB)
		defer srvA.Close()
		defer srvB.Close()
		for _, x := range []struct {
			c   *client
			rec *hookReceiver
			url string
		}{{a, recA, srvA.URL}, {b, recB, srvB.URL}} {
			var wh struct{ ID, Secret string }
			res := x.c.do("POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": x.url, "event_types": []string{"payment.*", "transaction.booked"}})
			if res.status != 201 {
				t.Fatalf("create webhook: %d %s", res.status, res.body)
			}
			res.decode(t, &wh)
			x.rec.mu.Lock()
			x.rec.secret = wh.Secret
			x.rec.mu.Unlock()
		}
		if res := a.do("POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": "http://127.0.0.2/hook", "event_types": []string{"payment.*"}}); res.status != 422 {
			t.Errorf("a webhook to an address outside the allow-list was accepted: %d", res.status)
		}
		if res := a.do("POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": srvA.URL, "event_types": []string{"payment.*"}, "filter": "data.amount.amount >"}); res.status != 422 {
			t.Errorf("a broken CEL filter was accepted: %d", res.status)
		}

		var accounts page
		a.do("GET", "/v1/accounts", "", nil).decode(t, &accounts)
		var pay struct{ ID, Status string }
		a.do("POST", "/v1/payments", "", map[string]any{"debtor_account_id": accounts.Data[0].ID,
			"creditor": map[string]any{"account_id": accounts.Data[1].ID}, "amount": map[string]any{"amount": "3.21", "currency": "EUR"}}).decode(t, &pay)
		if pay.Status != "completed" {
			t.Fatalf("payment = %+v", pay)
		}
		var got *cloudevents.Event
		for deadline := time.Now().Add(30 * time.Second); got == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			got = recA.find("payment.completed", pay.ID)
		}
		if got == nil {
			t.Fatal("the subscriber did not receive payment.completed")
		}
		var data struct {
			ID     string
			Amount struct{ Amount string }
		}
		got.DataAs(&data)
		if data.ID != pay.ID || data.Amount.Amount != "3.21" || got.Source() == "" {
			t.Errorf("event data = %+v", data)
		}
		recA.mu.Lock()
		if len(recA.errs) > 0 {
			t.Errorf("delivery problems: %v", recA.errs)
		}
		recA.mu.Unlock()

		// Give app B's dispatcher the same time to (wrongly) deliver.
		var deliveries struct {
			Data []struct{ Outcome string } `json:"data"`
		}
		var whList struct {
			Data []struct{ ID string } `json:"data"`
		}
		a.do("GET", "/v1/webhooks", "/v1/webhooks", nil).decode(t, &whList)
		a.do("GET", "/v1/webhooks/"+whList.Data[0].ID+"/deliveries", "/v1/webhooks/{id}/deliveries", nil).decode(t, &deliveries)
		if len(deliveries.Data) == 0 || deliveries.Data[0].Outcome != "succeeded" {
			t.Errorf("delivery log = %+v", deliveries.Data)
		}
		time.Sleep(time.Second)
		if ev := recB.find("payment.completed", pay.ID); ev != nil {
			t.Error("app B received app A's payment event")
		}
	})
}
