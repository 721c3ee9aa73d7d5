package webhooks_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/testkit"
	"github.com/causewayhq/causeway/internal/webhooks"
)

// racers is how many callers race in the race tests.
const racers = 10

// logged counts the log lines with message msg.
func logged(h *harness, msg string) int {
	return strings.Count(h.logs.String(), `msg="`+msg+`"`)
}

func TestTwoCallersPausingAndResumingOneWebhookChangeItOnce(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		ctx := context.Background()
		sub := h.subscribe(appA, map[string]any{"url": "http://127.0.0.1:1/hook", "event_types": []string{"payment.*"}})

		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := h.svc.Pause(ctx, auth.AppCaller(appA), sub.ID)
			return err
		}), causeway.ECONFLICT, "webhook_already_paused")
		if got := h.get(appA, sub.ID); got.Status != webhooks.StatusPaused {
			t.Errorf("status after the pauses = %s", got.Status)
		}
		if n := logged(h, "webhook subscription paused"); n != 1 {
			t.Errorf("%d pause audit lines, want 1", n)
		}
		var p problem
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/pause", appA, nil, &p); code != http.StatusConflict || p.Code != "webhook_already_paused" {
			t.Errorf("pausing a paused webhook over HTTP: %d %+v", code, p)
		}

		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := h.svc.Resume(ctx, auth.AppCaller(appA), sub.ID)
			return err
		}), causeway.ECONFLICT, "webhook_already_active")
		if got := h.get(appA, sub.ID); got.Status != webhooks.StatusActive {
			t.Errorf("status after the resumes = %s", got.Status)
		}
		if n := logged(h, "webhook subscription resumed"); n != 1 {
			t.Errorf("%d resume audit lines, want 1", n)
		}
		if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/resume", appA, nil, &p); code != http.StatusConflict || p.Code != "webhook_already_active" {
			t.Errorf("resuming an active webhook over HTTP: %d %+v", code, p)
		}
	})
}

// The dispatcher disables a subscription from every node that sees it
// fail: the webhook.disabled event is written once.
func TestNodesDisablingOneWebhookAtOnceWriteOneEvent(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		ctx := context.Background()
		sub := h.subscribe(appA, map[string]any{"url": "http://127.0.0.1:1/hook", "event_types": []string{"payment.*"}})
		var won atomic.Int32
		for _, err := range testkit.Race(racers, func(int) error {
			disabled, err := h.svc.DisableNow(ctx, sub.ID, "the endpoint answered 410 Gone")
			if disabled {
				won.Add(1)
			}
			return err
		}) {
			if err != nil {
				t.Errorf("disable: %v", err)
			}
		}
		if n := won.Load(); n != 1 {
			t.Errorf("%d calls disabled it, want 1", n)
		}
		if n := outboxEvents(t, h, webhooks.EventDisabled, appA, sub.ID); n != 1 {
			t.Errorf("%d webhook.disabled events, want 1", n)
		}
		if n := logged(h, "webhook subscription disabled"); n != 1 {
			t.Errorf("%d disable audit lines, want 1", n)
		}
	})
}

func TestTwoCallersDeletingOneWebhookDeleteItOnce(t *testing.T) {
	each(t, webhooks.Options{}, func(t *testing.T, h *harness) {
		ctx := context.Background()
		sub := h.subscribe(appA, map[string]any{"url": "http://127.0.0.1:1/hook", "event_types": []string{"payment.*"}})
		// The loser finds nothing to delete, as any later caller would.
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			return h.svc.Delete(ctx, auth.AppCaller(appA), sub.ID)
		}), causeway.ENOTFOUND, "webhook_not_found")
		if n := logged(h, "webhook subscription deleted"); n != 1 {
			t.Errorf("%d delete audit lines, want 1", n)
		}
	})
}

// Two nodes, each asked by the app to recover one subscription at the
// same moment: one recover runs, the other callers are told one is in
// progress, and each recovered event is re-sent once.
func TestTwoNodesRecoveringOneWebhookRunOneRecover(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			key := make([]byte, 32)
			rand.Read(key)
			sealer, err := seal.New(key)
			if err != nil {
				t.Fatal(err)
			}
			db, mq := b.openDB(t), b.openMQ(t)
			// A long attempt timeout: the winner's re-sends wait on the
			// receiver until every caller has had its answer.
			opts := webhooks.Options{RequestTimeout: 2 * time.Minute}
			nodes := []*harness{
				newSealedHarness(t, db, mq, opts, nil, sealer),
				newSealedHarness(t, db, mq, opts, nil, sealer),
			}
			gate := make(chan struct{})
			var once sync.Once
			open := func() { once.Do(func() { close(gate) }) }
			t.Cleanup(open)
			rc := newReceiver(t, func(_ request, n int) int {
				if n > 1 { // a re-send
					<-gate
				}
				return http.StatusOK
			})
			sub := nodes[0].subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
			since := time.Now()
			nodes[0].publish(payment(appA, "pay_1", "1"), payment(appA, "pay_2", "1"))
			eventually(t, wait, "both delivered", func() bool { return rc.count("pay_1") == 1 && rc.count("pay_2") == 1 })

			testkit.OneWinner(t, testkit.Race(racers, func(i int) error {
				return nodes[i%2].svc.Recover(context.Background(), auth.AppCaller(appA), sub.ID, since)
			}), causeway.ECONFLICT, "recover_in_progress")
			var p problem
			if code := nodes[1].call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/recover", appA, map[string]any{"since": since}, &p); code != http.StatusConflict ||
				p.Code != "recover_in_progress" {
				t.Errorf("a recover over HTTP while one runs: %d %+v", code, p)
			}
			open()

			released := func() bool {
				var until int64
				err := db.QueryRowContext(context.Background(), "SELECT recover_until FROM webhook_subscriptions WHERE id = $1", sub.ID).Scan(&until)
				return err == nil && until == 0
			}
			eventually(t, wait, "the recover re-sent both and ended", func() bool {
				return rc.count("pay_1") == 2 && rc.count("pay_2") == 2 && released()
			})
			if got := len(rc.all()); got != 4 {
				t.Errorf("the receiver got %d requests, want 4 (two deliveries, two re-sends)", got)
			}
			// The claim is free again: the next recover runs.
			if err := nodes[1].svc.Recover(context.Background(), auth.AppCaller(appA), sub.ID, since); err != nil {
				t.Errorf("a recover after the first ended: %v", err)
			}
		})
	}
}
