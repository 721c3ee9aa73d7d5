package webhooks_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/webhooks"
)

const wait = 15 * time.Second

func TestPaymentEventReachesReceiverSignedAsStandardWebhookCloudEvent(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		sub := h.subscribe(appA, map[string]any{"url": rc.URL + "/hooks", "event_types": []string{"payment.*"}})
		if !hasPrefix(sub.ID, "wh_") || !hasPrefix(sub.Secret, "whsec_") || sub.Status != webhooks.StatusActive {
			t.Fatalf("created %+v", sub)
		}
		if again := h.get(appA, sub.ID); again.Secret != "" {
			t.Errorf("the secret is shown again: %+v", again)
		}
		h.publish(payment(appA, "pay_1", "12.34"))
		eventually(t, wait, "the receiver gets the event", func() bool { return len(rc.all()) == 1 })

		got := rc.all()[0]
		if ct := got.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Errorf("Content-Type %q", ct)
		}
		wh, err := standardwebhooks.NewWebhook(sub.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(got.Body, got.Header); err != nil {
			t.Errorf("the Standard Webhooks verifier refuses the delivery: %v\nheaders %v", err, got.Header)
		}
		var ce cloudevents.Event
		if err := json.Unmarshal(got.Body, &ce); err != nil {
			t.Fatalf("the CloudEvents SDK cannot read the body: %v\n%s", err, got.Body)
		}
		if err := ce.Validate(); err != nil {
			t.Errorf("the CloudEvents SDK finds the body invalid: %v", err)
		}
		if name(ce.ID()) != "pay_1" || got.Header.Get("webhook-id") != ce.ID() || ce.Type() != "payment.completed" || ce.Subject() != "pay_1" {
			t.Errorf("webhook-id %q, event id %q type %q subject %q", got.Header.Get("webhook-id"), ce.ID(), ce.Type(), ce.Subject())
		}
		if strings.Contains(string(got.Body), appA) {
			t.Errorf("the body reveals the app id: %s", got.Body)
		}

		eventually(t, wait, "the attempt is recorded", func() bool { return len(h.deliveries(appA, sub.ID, "")) == 1 })
		d := h.deliveries(appA, sub.ID, "")[0]
		if name(d.EventID) != "pay_1" || d.EventType != "payment.completed" || d.Attempt != 1 || d.Outcome != webhooks.OutcomeSucceeded ||
			d.StatusCode != 200 || d.Origin != webhooks.OriginStream || d.Snippet != "answer 200" || d.CreatedAt.IsZero() {
			t.Errorf("delivery record %+v", d)
		}
	})
}

func TestRetriedUntilSuccessWithTheSameWebhookID(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, failTwice)
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.completed"}})
		h.publish(payment(appA, "pay_1", "12.34"))
		eventually(t, wait, "three attempts recorded", func() bool { return len(h.deliveries(appA, sub.ID, "")) == 3 })

		if ids := rc.ids(); len(ids) != 3 || ids[0] != "pay_1" || ids[1] != ids[0] || ids[2] != ids[0] {
			t.Errorf("webhook-ids %v, want pay_1 three times", ids)
		}
		ds := h.deliveries(appA, sub.ID, "") // newest first
		for i, want := range []struct {
			attempt int
			outcome string
			status  int
		}{{3, webhooks.OutcomeSucceeded, 200}, {2, webhooks.OutcomeFailed, 500}, {1, webhooks.OutcomeFailed, 500}} {
			if d := ds[i]; d.Attempt != want.attempt || d.Outcome != want.outcome || d.StatusCode != want.status {
				t.Errorf("delivery %d: attempt %d %s %d, want %+v", i, d.Attempt, d.Outcome, d.StatusCode, want)
			}
		}
		if ds[2].Error == "" || ds[2].Snippet != "answer 500" {
			t.Errorf("a failed attempt records error %q snippet %q", ds[2].Error, ds[2].Snippet)
		}
		if got := h.get(appA, sub.ID); got.FailingSince != nil || got.Status != webhooks.StatusActive {
			t.Errorf("after a success: failing_since %v status %s", got.FailingSince, got.Status)
		}
	})
}

func TestDeliveredOnceTheReceiverComesBack(t *testing.T) {
	each(t, webhooks.Options{Schedule: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second, time.Second}}, func(t *testing.T, h *harness) {
		addr := closedPort(t)
		sub := h.subscribe(appA, map[string]any{"url": "http://" + addr + "/hooks", "event_types": []string{"*"}})
		h.publish(payment(appA, "pay_1", "12.34"))
		eventually(t, wait, "two refused attempts", func() bool {
			return len(h.deliveries(appA, sub.ID, "outcome=failed")) >= 2
		})
		if d := h.deliveries(appA, sub.ID, "")[0]; d.StatusCode != 0 || !strings.Contains(d.Error, "refused") {
			t.Errorf("a refused connection records status %d error %q", d.StatusCode, d.Error)
		}
		if h.get(appA, sub.ID).FailingSince == nil {
			t.Error("failing_since is not set while attempts fail")
		}

		// The port was free a moment ago; another process may take it in
		// between, which this test cannot recover from.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port %s was taken meanwhile: %v", addr, err)
		}
		rc := &receiver{}
		rc.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(rc.serve)}}
		rc.Start()
		t.Cleanup(rc.Close)
		eventually(t, wait, "delivered after the receiver is back", func() bool {
			return len(h.deliveries(appA, sub.ID, "outcome=succeeded")) == 1
		})
		if ids := rc.ids(); len(ids) != 1 || ids[0] != "pay_1" {
			t.Errorf("the receiver got %v", ids)
		}
		if h.get(appA, sub.ID).FailingSince != nil {
			t.Error("failing_since stays set after a success")
		}
	})
}

func TestGoneDisablesTheSubscription(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, func(request, int) int { return http.StatusGone })
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		h.publish(payment(appA, "pay_1", "12.34"))
		eventually(t, wait, "disabled", func() bool { return h.get(appA, sub.ID).Status == webhooks.StatusDisabled })
		got := h.get(appA, sub.ID)
		if !strings.Contains(got.DisabledReason, "410") {
			t.Errorf("disabled_reason %q", got.DisabledReason)
		}
		ds := h.deliveries(appA, sub.ID, "")
		if len(ds) != 1 || ds[0].Outcome != webhooks.OutcomeDead || ds[0].StatusCode != 410 {
			t.Errorf("deliveries %+v", ds)
		}
		if n := outboxEvents(t, h, webhooks.EventDisabled, appA, sub.ID); n != 1 {
			t.Errorf("%d webhook.disabled events, want 1", n)
		}
		// Nothing more is sent while disabled.
		h.publish(payment(appA, "pay_2", "12.34"))
		probe := newReceiver(t, nil)
		h.subscribe(appA, map[string]any{"url": probe.URL, "event_types": []string{"payment.*"}, "ordered": true})
		h.publish(payment(appA, "pay_3", "12.34"))
		eventually(t, wait, "a second subscription gets pay_3", func() bool { return probe.count("pay_3") == 1 })
		if n := len(rc.all()); n != 1 {
			t.Errorf("a disabled subscription got %d requests, want 1", n)
		}
	})
}

// outboxEvents counts the outbox rows of a type for an app and subject.
func outboxEvents(t *testing.T, h *harness, typ, app, subject string) int {
	t.Helper()
	var n int
	err := h.db.QueryRowContext(context.Background(),
		"SELECT count(*) FROM outbox_events WHERE type = $1 AND app_id = $2 AND subject = $3", typ, app, subject).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeadLetteredAfterTheLastAttempt(t *testing.T) {
	each(t, webhooks.Options{Schedule: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, func(request, int) int { return http.StatusInternalServerError })
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.completed"}})
		h.publish(payment(appA, "pay_1", "12.34"))
		eventually(t, wait, "dead-lettered", func() bool { return len(h.deliveries(appA, sub.ID, "outcome=dead")) == 1 })
		ds := h.deliveries(appA, sub.ID, "")
		if len(ds) != 3 || ds[0].Attempt != 3 || ds[0].Outcome != webhooks.OutcomeDead || ds[1].Outcome != webhooks.OutcomeFailed {
			t.Errorf("deliveries %+v", ds)
		}
		if got := h.get(appA, sub.ID); got.Status != webhooks.StatusActive {
			t.Errorf("one dead letter changed the status to %s", got.Status)
		}
		// The next event is still delivered: a dead letter blocks nothing.
		h.publish(payment(appA, "pay_2", "12.34"))
		eventually(t, wait, "the next event is attempted", func() bool { return rc.count("pay_2") >= 1 })
		if n := rc.count("pay_1"); n != 3 {
			t.Errorf("pay_1 sent %d times, want 3", n)
		}
	})
}

func TestDisabledAfterFailingLongerThanDisableAfter(t *testing.T) {
	each(t, webhooks.Options{DisableAfter: time.Millisecond, Schedule: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}},
		func(t *testing.T, h *harness) {
			failing := newReceiver(t, func(request, int) int { return http.StatusServiceUnavailable })
			sub := h.subscribe(appA, map[string]any{"url": failing.URL, "event_types": []string{"payment.*"}})
			// The app's other subscription hears about it.
			notices := newReceiver(t, nil)
			h.subscribe(appA, map[string]any{"url": notices.URL, "event_types": []string{"webhook.*"}})
			h.publish(payment(appA, "pay_1", "12.34"))

			eventually(t, wait, "disabled", func() bool { return h.get(appA, sub.ID).Status == webhooks.StatusDisabled })
			got := h.get(appA, sub.ID)
			if !strings.Contains(got.DisabledReason, "failed since") || got.FailingSince == nil {
				t.Errorf("disabled_reason %q failing_since %v", got.DisabledReason, got.FailingSince)
			}
			if n := outboxEvents(t, h, webhooks.EventDisabled, appA, sub.ID); n != 1 {
				t.Errorf("%d webhook.disabled events in the outbox, want 1", n)
			}
			eventually(t, wait, "the app's other subscription gets webhook.disabled", func() bool { return len(notices.all()) == 1 })
			var ce cloudevents.Event
			if err := json.Unmarshal(notices.all()[0].Body, &ce); err != nil || ce.Type() != webhooks.EventDisabled || ce.Subject() != sub.ID {
				t.Errorf("notice %s (%v)", notices.all()[0].Body, err)
			}
			if !strings.Contains(h.logs.String(), "webhook subscription disabled") {
				t.Error("the disabling is not logged for the bank")
			}
			var bank struct {
				Data []webhooks.BankSubscription `json:"data"`
			}
			if code := h.call(http.MethodGet, "/bank/v1/webhooks?status=disabled", "admin", nil, &bank); code != http.StatusOK ||
				len(bank.Data) != 1 || bank.Data[0].ID != sub.ID || bank.Data[0].AppID != appA || bank.Data[0].DisabledReason == "" {
				t.Errorf("bank list of disabled: %d %+v", code, bank.Data)
			}

			// Resume re-enables it and forgets the failures.
			var resumed webhooks.Subscription
			if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/resume", appA, nil, &resumed); code != http.StatusOK ||
				resumed.Status != webhooks.StatusActive || resumed.FailingSince != nil || resumed.DisabledReason != "" {
				t.Errorf("resume: %d %+v", code, resumed)
			}
		})
}

func TestAnAppReceivesOnlyEventsItMaySee(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rcA, rcB := newReceiver(t, nil), newReceiver(t, nil)
		// Ordered, so that when a later event arrives every earlier one was
		// decided.
		h.subscribe(appA, map[string]any{"url": rcA.URL, "event_types": []string{"*"}, "ordered": true})
		h.subscribe(appB, map[string]any{"url": rcB.URL, "event_types": []string{"*"}, "ordered": true})

		// Events about a customer reach the apps entitled to it; an event
		// addressed to an app reaches that app only, even when it names a
		// customer the other app may see.
		private := payment("", "pay_a", "1.00")
		private.CustomerID = "cus_a"
		h.customers.grant(appA, "cus_a")
		shared := payment("", "pay_shared", "2.00")
		shared.CustomerID = "cus_shared"
		h.customers.grant(appA, "cus_shared")
		h.customers.grant(appB, "cus_shared")
		addressed := payment(appA, "pay_for_a", "4.00")
		addressed.CustomerID = "cus_shared"
		h.publish(private, shared, addressed, payment(appB, "pay_b", "3.00"))

		eventually(t, wait, "B gets its own event", func() bool { return rcB.count("pay_b") == 1 })
		if got := rcB.ids(); strings.Join(got, ",") != "pay_shared,pay_b" {
			t.Errorf("app B received %v, want the shared customer's event and its own", got)
		}
		eventually(t, wait, "A gets its events", func() bool { return len(rcA.all()) == 3 })
		if got := rcA.ids(); strings.Join(got, ",") != "pay_a,pay_shared,pay_for_a" {
			t.Errorf("app A received %v", got)
		}
	})
}

func TestFilterSelectsEvents(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		big, completed := newReceiver(t, nil), newReceiver(t, nil)
		h.subscribe(appA, map[string]any{"url": big.URL, "event_types": []string{"*"}, "ordered": true,
			"filter": `data.amount.amount > 1000.0 || type == "marker.sent"`})
		h.subscribe(appA, map[string]any{"url": completed.URL, "event_types": []string{"*"}, "ordered": true,
			"filter": `event.type == "payment.completed" && data.amount.currency == "EUR" || type == "marker.sent"`})
		small, large := payment(appA, "pay_small", "12.34"), payment(appA, "pay_big", "1234.50")
		rejected := payment(appA, "pay_rejected", "5000.00")
		rejected.Type = "payment.rejected"
		marker := outbox.Event{ID: eventID("marker"), Type: "marker.sent", Source: "/test", AppID: appA}
		h.publish(small, large, rejected, marker)

		eventually(t, wait, "the marker arrives", func() bool { return big.count("marker") == 1 })
		if got := strings.Join(big.ids(), ","); got != "pay_big,pay_rejected,marker" {
			t.Errorf("amount filter passed %s", got)
		}
		eventually(t, wait, "the marker arrives", func() bool { return completed.count("marker") == 1 })
		if got := strings.Join(completed.ids(), ","); got != "pay_small,pay_big,marker" {
			t.Errorf("type filter passed %s", got)
		}
	})
}

func TestCreateRefusesBadInputWith422(t *testing.T) {
	embeddedOnly(t, webhooks.Options{}, nil, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		for _, c := range []struct {
			name   string
			body   map[string]any
			code   string
			detail string
		}{
			{"filter does not parse", map[string]any{"url": rc.URL, "event_types": []string{"*"}, "filter": "data.amount.amount >"}, "invalid_filter", "Syntax error"},
			{"filter does not type-check", map[string]any{"url": rc.URL, "event_types": []string{"*"}, "filter": "nosuch == 1"}, "invalid_filter", "undeclared reference"},
			{"filter is not boolean", map[string]any{"url": rc.URL, "event_types": []string{"*"}, "filter": `type + "x"`}, "invalid_filter", "boolean"},
			{"address outside the allow-list", map[string]any{"url": "http://127.0.0.2/hook", "event_types": []string{"*"}}, "url_not_allowed", "127.0.0.2 is a loopback address"},
			{"IPv6 loopback", map[string]any{"url": "http://[::1]/hook", "event_types": []string{"*"}}, "url_not_allowed", "loopback"},
			{"not http", map[string]any{"url": "ftp://127.0.0.1/x", "event_types": []string{"*"}}, "invalid_url", "http"},
			{"bad pattern", map[string]any{"url": rc.URL, "event_types": []string{"payment.*.completed"}}, "invalid_event_type", "payment.*.completed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				var p problem
				status := h.call(http.MethodPost, "/v1/webhooks", appA, c.body, &p)
				if status != http.StatusUnprocessableEntity || p.Code != c.code || !strings.Contains(p.Detail, c.detail) {
					t.Errorf("got %d %+v, want 422 %s with %q", status, p, c.code, c.detail)
				}
			})
		}
		var list struct {
			Data []webhooks.Subscription `json:"data"`
		}
		if h.call(http.MethodGet, "/v1/webhooks", appA, nil, &list); len(list.Data) != 0 {
			t.Errorf("refused subscriptions were stored: %+v", list.Data)
		}
	})
}

func TestAnotherAppsSubscriptionIsNotFound(t *testing.T) {
	embeddedOnly(t, webhooks.Options{}, nil, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"*"}})
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, ""}, {http.MethodPatch, ""}, {http.MethodDelete, ""}, {http.MethodPost, "/pause"},
			{http.MethodPost, "/resume"}, {http.MethodPost, "/rotate-secret"}, {http.MethodGet, "/deliveries"},
			{http.MethodPost, "/recover"}, {http.MethodPost, "/deliveries/whd_01jd3k7m9q6x4t2w8y5z0abcde/retry"},
		} {
			var body any
			switch {
			case c.method == http.MethodPatch:
				body = map[string]any{"ordered": true}
			case c.path == "/recover":
				body = map[string]any{"since": time.Now().Add(-time.Hour)}
			}
			var p problem
			if status := h.call(c.method, "/v1/webhooks/"+sub.ID+c.path, appB, body, &p); status != http.StatusNotFound || p.Code != "webhook_not_found" {
				t.Errorf("%s %s as another app: %d %+v", c.method, c.path, status, p)
			}
		}
		var list struct {
			Data []webhooks.Subscription `json:"data"`
		}
		if h.call(http.MethodGet, "/v1/webhooks", appB, nil, &list); len(list.Data) != 0 {
			t.Errorf("another app lists %+v", list.Data)
		}
		if got := h.get(appA, sub.ID); got.Status != webhooks.StatusActive || got.Ordered {
			t.Errorf("another app changed the subscription: %+v", got)
		}
	})
}

func TestOrderedSubscriptionHoldsLaterEventsUntilTheFailingOneSucceeds(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, func(r request, n int) int {
			if r.id() == "pay_1" && n <= 3 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}, "ordered": true})
		h.publish(payment(appA, "pay_1", "1"), payment(appA, "pay_2", "2"), payment(appA, "pay_3", "3"))
		eventually(t, wait, "every event delivered", func() bool {
			return len(h.deliveries(appA, sub.ID, "outcome=succeeded")) == 3
		})
		if got := strings.Join(rc.ids(), ","); got != "pay_1,pay_1,pay_1,pay_1,pay_2,pay_3" {
			t.Errorf("arrival order %s", got)
		}
	})
}

func TestSlowEndpointDoesNotDelayAnotherSubscription(t *testing.T) {
	each(t, webhooks.Options{RequestTimeout: 5 * time.Second}, func(t *testing.T, h *harness) {
		release := make(chan struct{})
		slow := newReceiver(t, func(request, int) int {
			<-release
			return http.StatusOK
		})
		t.Cleanup(func() { close(release) }) // runs before the receiver closes
		fast := newReceiver(t, nil)
		slowSub := h.subscribe(appA, map[string]any{"url": slow.URL, "event_types": []string{"payment.*"}})
		h.subscribe(appA, map[string]any{"url": fast.URL, "event_types": []string{"payment.*"}})
		const n = 20
		var evs []outbox.Event
		for i := range n {
			evs = append(evs, payment(appA, "pay_"+string(rune('a'+i)), "1"))
		}
		h.publish(evs...)
		eventually(t, wait, "the fast endpoint gets every event", func() bool { return len(fast.all()) == n })
		if got := len(h.deliveries(appA, slowSub.ID, "outcome=succeeded")); got >= n {
			t.Errorf("the slow endpoint completed %d of %d; the test proves nothing", got, n)
		}
	})
}

func TestRotatedSecretAndPreviousBothSignDuringOverlap(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}, "ordered": true})
		var rotated webhooks.Subscription
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/rotate-secret", appA, nil, &rotated); code != http.StatusOK {
			t.Fatalf("rotate: %d", code)
		}
		if !hasPrefix(rotated.Secret, "whsec_") || rotated.Secret == sub.Secret || rotated.PreviousSecretExpiresAt == nil ||
			time.Until(*rotated.PreviousSecretExpiresAt) < 23*time.Hour {
			t.Fatalf("rotated %+v", rotated)
		}
		h.publish(payment(appA, "pay_1", "1"))
		eventually(t, wait, "delivered", func() bool { return len(rc.all()) == 1 })
		got := rc.all()[0]
		sigs := strings.Fields(got.Header.Get("webhook-signature"))
		if len(sigs) != 2 || !hasPrefix(sigs[0], "v1,") || !hasPrefix(sigs[1], "v1,") {
			t.Fatalf("webhook-signature %q, want two v1 signatures", got.Header.Get("webhook-signature"))
		}
		for i, secret := range []string{rotated.Secret, sub.Secret} {
			wh, _ := standardwebhooks.NewWebhook(secret)
			if err := wh.Verify(got.Body, got.Header); err != nil {
				t.Errorf("secret %d does not verify: %v", i, err)
			}
			// Each signature is the one of its own secret.
			one := got.Header.Clone()
			one.Set("webhook-signature", sigs[i])
			if err := wh.Verify(got.Body, one); err != nil {
				t.Errorf("signature %d is not made with secret %d: %v", i, i, err)
			}
		}
	})
}

func TestPauseStopsDeliveriesAndResumeSendsWhatWaited(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		paused, witness := newReceiver(t, nil), newReceiver(t, nil)
		sub := h.subscribe(appA, map[string]any{"url": paused.URL, "event_types": []string{"payment.*"}})
		h.subscribe(appA, map[string]any{"url": witness.URL, "event_types": []string{"payment.*"}, "ordered": true})
		h.publish(payment(appA, "pay_0", "1"))
		eventually(t, wait, "delivered before the pause", func() bool { return len(paused.all()) == 1 && len(witness.all()) == 1 })

		var got webhooks.Subscription
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/pause", appA, nil, &got); code != http.StatusOK || got.Status != webhooks.StatusPaused {
			t.Fatalf("pause: %d %+v", code, got)
		}
		h.publish(payment(appA, "pay_1", "1"), payment(appA, "pay_2", "1"), payment(appA, "pay_3", "1"))
		eventually(t, wait, "the active subscription gets them", func() bool { return len(witness.all()) == 4 })
		time.Sleep(300 * time.Millisecond) // three sync intervals: a stray worker would have sent by now
		if n := len(paused.all()); n != 1 {
			t.Fatalf("a paused subscription got %d requests, want 1", n)
		}

		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/resume", appA, nil, &got); code != http.StatusOK || got.Status != webhooks.StatusActive {
			t.Fatalf("resume: %d %+v", code, got)
		}
		eventually(t, wait, "what waited is delivered", func() bool { return len(paused.all()) == 4 })
		for _, id := range []string{"pay_1", "pay_2", "pay_3"} {
			if paused.count(id) != 1 {
				t.Errorf("%s delivered %d times after resume", id, paused.count(id))
			}
		}
	})
}

func TestRecoverResendsEventsSinceATime(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		// An event from before the subscription: never sent, not even by a
		// recover from long ago.
		h.publish(payment(appA, "pay_0", "1"))
		eventually(t, wait, "pay_0 on the stream", func() bool {
			n, err := outbox.Pending(context.Background(), h.db)
			return err == nil && n == 0
		})
		time.Sleep(2 * time.Millisecond) // the subscription's clock starts strictly after it
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}, "ordered": true})
		h.publish(payment(appA, "pay_1", "1"))
		eventually(t, wait, "first delivered", func() bool { return len(rc.all()) == 1 })
		since := time.Now()
		h.publish(payment(appA, "pay_2", "1"), payment(appA, "pay_3", "1"))
		eventually(t, wait, "all delivered", func() bool { return len(rc.all()) == 3 })

		var acc webhooks.Accepted
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/recover", appA, map[string]any{"since": since}, &acc); code != http.StatusAccepted {
			t.Fatalf("recover: %d %+v", code, acc)
		}
		eventually(t, wait, "recovered events re-sent", func() bool {
			return len(h.deliveries(appA, sub.ID, "")) == 5 && len(rc.all()) == 5
		})
		if got := strings.Join(rc.ids()[3:], ","); got != "pay_2,pay_3" {
			t.Errorf("recover re-sent %s", got)
		}
		for _, d := range h.deliveries(appA, sub.ID, "")[:2] {
			if d.Origin != webhooks.OriginRecover || d.Outcome != webhooks.OutcomeSucceeded {
				t.Errorf("recover delivery %+v", d)
			}
		}

		// From long before the subscription: everything since its creation.
		for {
			var answer map[string]any
			code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/recover", appA, map[string]any{"since": since.Add(-time.Hour)}, &answer)
			if code == http.StatusAccepted {
				break
			}
			if code != http.StatusConflict || answer["code"] != "recover_in_progress" {
				t.Fatalf("second recover: %d %+v", code, answer)
			}
			time.Sleep(10 * time.Millisecond)
		}
		var p problem
		eventually(t, wait, "recovered again", func() bool { return len(h.deliveries(appA, sub.ID, "")) == 8 })
		if got := strings.Join(rc.ids()[5:], ","); got != "pay_1,pay_2,pay_3" {
			t.Errorf("a recover from before the subscription re-sent %s", got)
		}
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/recover", appA, map[string]any{"since": time.Now().Add(time.Hour)}, &p); code != http.StatusUnprocessableEntity || p.Code != "invalid_since" {
			t.Errorf("recover from the future: %d %+v", code, p)
		}
	})
}

func TestRetryResendsOneDelivery(t *testing.T) {
	each(t, webhooks.Options{Schedule: []time.Duration{20 * time.Millisecond}}, func(t *testing.T, h *harness) {
		fail := true
		var mu sync.Mutex
		rc := newReceiver(t, func(request, int) int {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		h.publish(payment(appA, "pay_1", "1"))
		eventually(t, wait, "dead-lettered", func() bool { return len(h.deliveries(appA, sub.ID, "outcome=dead")) == 1 })
		dead := h.deliveries(appA, sub.ID, "outcome=dead")[0]
		mu.Lock()
		fail = false
		mu.Unlock()

		var acc webhooks.Accepted
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/deliveries/"+dead.ID+"/retry", appA, nil, &acc); code != http.StatusAccepted {
			t.Fatalf("retry: %d %+v", code, acc)
		}
		eventually(t, wait, "re-sent", func() bool { return len(h.deliveries(appA, sub.ID, "outcome=succeeded")) == 1 })
		d := h.deliveries(appA, sub.ID, "outcome=succeeded")[0]
		if d.Origin != webhooks.OriginRetry || name(d.EventID) != "pay_1" {
			t.Errorf("retry delivery %+v", d)
		}
		if ids := rc.ids(); len(ids) != 3 || ids[2] != "pay_1" {
			t.Errorf("webhook-ids %v", ids)
		}
		var p problem
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/deliveries/whd_nosuch/retry", appA, nil, &p); code != http.StatusNotFound || p.Code != "delivery_not_found" {
			t.Errorf("retry of an unknown delivery: %d %+v", code, p)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	embeddedOnly(t, webhooks.Options{}, nil, func(t *testing.T, h *harness) {
		rc := newReceiver(t, func(_ request, n int) int {
			if n == 1 {
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		})
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		h.publish(payment(appA, "pay_1", "1"))
		eventually(t, wait, "delivered", func() bool { return len(h.deliveries(appA, sub.ID, "outcome=succeeded")) == 1 })
		reqs := rc.all()
		if gap := reqs[1].At.Sub(reqs[0].At); gap < 900*time.Millisecond {
			t.Errorf("retried %v after a 429 with Retry-After: 1 (schedule says 50ms)", gap)
		}
	})
}

func TestDeleteRemovesSubscriptionAndConsumer(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		stream := h.bus.Stream(outbox.StreamName)
		eventually(t, wait, "the consumer exists", func() bool {
			_, err := h.bus.JetStream().Consumer(context.Background(), stream, sub.ID)
			return err == nil
		})
		if code := h.call(http.MethodDelete, "/v1/webhooks/"+sub.ID, appA, nil, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
		if _, err := h.bus.JetStream().Consumer(context.Background(), stream, sub.ID); err != jetstream.ErrConsumerNotFound {
			t.Errorf("consumer after delete: %v", err)
		}
		var p problem
		if code := h.call(http.MethodGet, "/v1/webhooks/"+sub.ID, appA, nil, &p); code != http.StatusNotFound || p.Code != "webhook_not_found" {
			t.Errorf("get after delete: %d %+v", code, p)
		}
	})
}

func TestUpdateChangesTypesFilterAndOrdering(t *testing.T) {
	embeddedOnly(t, webhooks.Options{}, nil, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		var got webhooks.Subscription
		code := h.call(http.MethodPatch, "/v1/webhooks/"+sub.ID, appA,
			map[string]any{"event_types": []string{"marker.*"}, "filter": `subject == "m2"`, "ordered": true}, &got)
		if code != http.StatusOK || got.EventTypes[0] != "marker.*" || got.Filter != `subject == "m2"` || !got.Ordered || got.URL != rc.URL {
			t.Fatalf("update: %d %+v", code, got)
		}
		var p problem
		if code := h.call(http.MethodPatch, "/v1/webhooks/"+sub.ID, appA, map[string]any{"filter": "(("}, &p); code != http.StatusUnprocessableEntity || p.Code != "invalid_filter" {
			t.Errorf("bad filter in update: %d %+v", code, p)
		}
		h.publish(payment(appA, "pay_1", "1"),
			outbox.Event{ID: eventID("m1"), Type: "marker.sent", Source: "/test", Subject: "m1", AppID: appA},
			outbox.Event{ID: eventID("m2"), Type: "marker.sent", Source: "/test", Subject: "m2", AppID: appA})
		eventually(t, wait, "the marker arrives", func() bool { return len(rc.all()) >= 1 })
		if got := strings.Join(rc.ids(), ","); got != "m2" {
			t.Errorf("after the update the receiver got %s", got)
		}
	})
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	embeddedOnly(t, webhooks.Options{Schedule: []time.Duration{20 * time.Millisecond}}, nil, func(t *testing.T, h *harness) {
		target := newReceiver(t, nil)
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
		}))
		t.Cleanup(redirector.Close)
		sub := h.subscribe(appA, map[string]any{"url": redirector.URL, "event_types": []string{"payment.*"}})
		h.publish(payment(appA, "pay_1", "1"))
		eventually(t, wait, "dead-lettered", func() bool { return len(h.deliveries(appA, sub.ID, "outcome=dead")) == 1 })
		if d := h.deliveries(appA, sub.ID, "")[0]; d.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("recorded status %d, want 307", d.StatusCode)
		}
		if n := len(target.all()); n != 0 {
			t.Errorf("the redirect was followed %d times", n)
		}
	})
}

// rebinder answers with a loopback address once (when the URL is checked
// at creation) and with another address from then on, as a DNS rebinding
// attack would.
type rebinder struct {
	mu    sync.Mutex
	calls int
	then  netip.Addr
}

func (r *rebinder) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls == 1 {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return []netip.Addr{r.then}, nil
}

func TestAddressRefusedAtConnectTimeIsAFailedAttempt(t *testing.T) {
	embeddedOnly(t, webhooks.Options{Schedule: []time.Duration{20 * time.Millisecond}}, &rebinder{then: netip.MustParseAddr("127.0.0.2")},
		func(t *testing.T, h *harness) {
			rc := newReceiverOn(t, "127.0.0.2", nil)
			_, port, _ := net.SplitHostPort(rc.Listener.Addr().String())
			sub := h.subscribe(appA, map[string]any{"url": "http://hooks.example.test:" + port + "/", "event_types": []string{"payment.*"}})
			h.publish(payment(appA, "pay_1", "1"))
			eventually(t, wait, "dead-lettered", func() bool { return len(h.deliveries(appA, sub.ID, "outcome=dead")) == 1 })
			for _, d := range h.deliveries(appA, sub.ID, "") {
				if d.StatusCode != 0 || !strings.Contains(d.Error, "url_not_allowed") || !strings.Contains(d.Error, "127.0.0.2") {
					t.Errorf("attempt %d: status %d error %q", d.Attempt, d.StatusCode, d.Error)
				}
			}
			if n := len(rc.all()); n != 0 {
				t.Errorf("the receiver got %d requests", n)
			}
		})
}

// Whose subscriptions a caller may touch is decided from its Caller: an
// app its own, the bank every one, and the zero Caller (a caller lost on
// the way) none. An empty app id used to mean the bank.
func TestOnlyItsAppAndTheBankReachASubscription(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		ctx := context.Background()
		sub := h.subscribe(appA, map[string]any{"url": newReceiver(t, nil).URL, "event_types": []string{"*"}})
		for name, c := range map[string]auth.Caller{"nobody": {}, "an empty app id": auth.AppCaller(""), "another app": auth.AppCaller(appB),
			"a developer": auth.DeveloperCaller("dev_1")} {
			if _, err := h.svc.Get(ctx, c, sub.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s gets it: %v", name, err)
			}
			if _, err := h.svc.Pause(ctx, c, sub.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s pauses it: %v", name, err)
			}
			if err := h.svc.Delete(ctx, c, sub.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s deletes it: %v", name, err)
			}
			if subs, _, err := h.svc.List(ctx, c, "", 0, ""); err != nil || len(subs) != 0 {
				t.Errorf("%s lists %d subscriptions, %v", name, len(subs), err)
			}
			if _, err := h.svc.Create(ctx, c, webhooks.NewSubscription{URL: "http://127.0.0.1:9/x", EventTypes: []string{"*"}}); err == nil && c.IsNobody() {
				t.Errorf("%s subscribed", name)
			}
		}
		if got, err := h.svc.Get(ctx, auth.OperatorCaller(auth.AdminTokenOperator), sub.ID); err != nil || got.ID != sub.ID {
			t.Errorf("the bank gets it: %v %v", got, err)
		}
		if got, err := h.svc.Get(ctx, auth.AppCaller(appA), sub.ID); err != nil || got.ID != sub.ID {
			t.Errorf("its app gets it: %v %v", got, err)
		}
	})
}

// MaxInFlight bounds the requests an unordered subscription has open at
// its endpoint at once; a slot frees when the endpoint answers, before the
// attempt's record is written, and every attempt is still recorded.
func TestAnUnorderedSubscriptionKeepsAtMostMaxInFlightRequestsOpen(t *testing.T) {
	const inFlight, events = 3, 30
	embeddedOnly(t, webhooks.Options{MaxInFlight: inFlight}, nil, func(t *testing.T, h *harness) {
		var open, most atomic.Int32
		rc := newReceiver(t, func(request, int) int {
			n := open.Add(1)
			defer open.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			// Hold the request for a moment, so that the dispatcher has
			// every chance to open more than it may.
			for deadline := time.Now().Add(100 * time.Millisecond); open.Load() <= inFlight && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			return http.StatusOK
		})
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		var evs []outbox.Event
		for i := range events {
			evs = append(evs, payment(appA, fmt.Sprintf("pay_%d", i), "1.00"))
		}
		h.publish(evs...)
		eventually(t, wait, "every event is delivered and recorded", func() bool {
			return len(h.deliveries(appA, sub.ID, "")) == events
		})
		if n := len(rc.all()); n != events {
			t.Errorf("%d requests for %d events", n, events)
		}
		if m := most.Load(); m > inFlight || m < 2 {
			t.Errorf("at most %d requests were open at once; want 2 to %d", m, inFlight)
		}
	})
}

// An attempt holds its slot until its record is written: while records
// cannot be written, an unordered subscription sends MaxInFlight requests
// and no more, so records never fall behind the attempts (and the
// consumer's unacknowledged messages stay bounded). Once the database is
// free again, everything is delivered and recorded.
func TestAttemptsWaitingForTheirRecordsAreBounded(t *testing.T) {
	const inFlight, events = 3, 30
	embeddedOnly(t, webhooks.Options{MaxInFlight: inFlight}, nil, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		var evs []outbox.Event
		for i := range events {
			evs = append(evs, payment(appA, fmt.Sprintf("pay_%d", i), "1.00"))
		}
		h.publish(evs...)

		// Hold SQLite's one writer: no attempt record can commit.
		held, release, finished := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			finished <- h.db.Tx(context.Background(), func(*sql.Tx) error {
				close(held)
				<-release
				return nil
			})
		}()
		<-held
		eventually(t, wait, "attempts up to the bound are sent", func() bool { return len(rc.all()) >= inFlight })
		time.Sleep(300 * time.Millisecond) // room for any attempt beyond the bound to show
		if n := len(rc.all()); n != inFlight {
			t.Errorf("%d requests sent while no record could be written; want MaxInFlight, %d", n, inFlight)
		}
		close(release)
		if err := <-finished; err != nil {
			t.Fatal(err)
		}
		eventually(t, wait, "every event is delivered and recorded", func() bool {
			return len(h.deliveries(appA, sub.ID, "")) == events
		})
		if n := len(rc.all()); n != events {
			t.Errorf("%d requests for %d events", n, events)
		}
	})
}

// TestListsPageWithOpaqueCursors: the subscription list and the delivery
// list page like every other list (page package): an opaque next_cursor,
// present and empty on the last page, and a malformed cursor is 400.
func TestListsPageWithOpaqueCursors(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		rc := newReceiver(t, failTwice)
		var want []string
		for _, types := range []string{"payment.completed", "account.opened", "account.opened"} {
			want = append(want, h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{types}}).ID)
		}
		type listPage struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		walk := func(path string) []string {
			var got []string
			cursor := ""
			for range 10 {
				var p listPage
				url := path + "?limit=1"
				if cursor != "" {
					url += "&cursor=" + cursor
				}
				if code := h.call(http.MethodGet, url, appA, nil, &p); code != http.StatusOK {
					t.Fatalf("GET %s: %d", url, code)
				}
				for _, d := range p.Data {
					got = append(got, d.ID)
				}
				if p.NextCursor == nil {
					t.Fatalf("GET %s: no next_cursor member", url)
				}
				if *p.NextCursor == "" {
					return got
				}
				if strings.HasPrefix(*p.NextCursor, "wh") {
					t.Fatalf("GET %s: the cursor %q is a raw id", url, *p.NextCursor)
				}
				cursor = *p.NextCursor
			}
			t.Fatalf("GET %s: more pages than items", path)
			return nil
		}
		if got := walk("/v1/webhooks"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("subscriptions paged one by one: %v, want %v", got, want)
		}

		h.publish(payment(appA, "pay_1", "12.34"))
		sub := want[0]
		eventually(t, wait, "three attempts recorded", func() bool { return len(h.deliveries(appA, sub, "")) == 3 })
		var all []string
		for _, d := range h.deliveries(appA, sub, "") {
			all = append(all, d.ID)
		}
		if got := walk("/v1/webhooks/" + sub + "/deliveries"); fmt.Sprint(got) != fmt.Sprint(all) {
			t.Errorf("deliveries paged one by one: %v, want %v", got, all)
		}

		for _, path := range []string{"/v1/webhooks?cursor=whs_1", "/v1/webhooks/" + sub + "/deliveries?cursor=whd_1"} {
			var p problem
			if code := h.call(http.MethodGet, path, appA, nil, &p); code != http.StatusBadRequest || p.Code != "invalid_cursor" {
				t.Errorf("GET %s: %d %+v, want 400 invalid_cursor", path, code, p)
			}
		}
	})
}
