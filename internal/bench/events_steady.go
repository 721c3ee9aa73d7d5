package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/causewayhq/causeway/internal/ids"
)

// The steady-rate runs of the events benchmark deliver every event to one
// subscription, so N events per second are N deliveries per second: the
// same load as the raw loop's N POSTs per second, and as other webhook
// senders measured the same way.
const (
	// steadyInFlight is how many calls of a steady run may be in flight at
	// once before the schedule falls behind.
	steadyInFlight = 64
	// bankEventType is what the bank publishes in the steady run: a
	// built-in type of the bank's, sent to the benchmark's app alone.
	bankEventType = "branch.customer.arrived"
)

// steadyEventTypes are what the steady-rate subscription receives: the
// bank's events and those a payment commits.
var steadyEventTypes = append([]string{bankEventType}, paymentEventTypes...)

// eventsSteady is what the steady-rate runs measured.
type eventsSteady struct {
	rate     float64    // events per second
	raw      steadyLoad // POSTs to the receiver at rate
	bank     steadyLoad // POST /bank/v1/events at rate
	bankRecv eventsMeasure
	pay      steadyLoad // POST /v1/payments at rate/3
	payRecv  eventsMeasure
}

// figures are the steady-rate rows of the events report.
func (s *eventsSteady) figures() []Figure {
	rawP50, rawP99 := ms(s.raw.percentile(0.50)), ms(s.raw.percentile(0.99))
	return []Figure{
		// Beside the rate asked for: how well the schedule held.
		NewFigure("steady_published_per_s", s.bank.perSecond(), "1/s", "steady_rate_per_s", s.rate),
		NewFigure("steady_commit_to_receipt_p50", ms(s.bankRecv.percentile(0.50)), "ms", "raw_post_steady_latency_p50", rawP50),
		NewFigure("steady_commit_to_receipt_p99", ms(s.bankRecv.percentile(0.99)), "ms", "raw_post_steady_latency_p99", rawP99),
		NewFigure("steady_late_publishes", float64(s.bank.late), "1", "steady_publishes", float64(s.bank.ops)),
		NewFigure("steady_payment_commit_to_receipt_p50", ms(s.payRecv.percentile(0.50)), "ms", "raw_post_steady_latency_p50", rawP50),
		NewFigure("steady_payment_commit_to_receipt_p99", ms(s.payRecv.percentile(0.99)), "ms", "raw_post_steady_latency_p99", rawP99),
		NewFigure("steady_late_payments", float64(s.pay.late), "1", "steady_payments", float64(s.pay.ops)),
		NewFigure("raw_post_steady_late", float64(s.raw.late), "1", "raw_post_steady_posts", float64(s.raw.ops)),
	}
}

// percentile is the latency at or below which a fraction p of the first
// receipts arrived.
func (m eventsMeasure) percentile(p float64) time.Duration {
	return load{latencies: m.latencies}.percentile(p)
}

// steady measures events at opts.Rate per second, open loop (see
// runSteady), on the rig's node: a second app subscribes once to a
// receiver of its own; then, one after the other, raw POSTs of a bank
// event's delivered body to that receiver (the baseline), bank events for
// that app through POST /bank/v1/events with the admin token, and
// payments between the app's accounts through POST /v1/payments, Rate/3
// per second (each commits three events, so the events come at Rate). The
// latencies are from each event's time, taken inside the transaction that
// commits it, to its first receipt; every event must arrive within a
// bounded wait.
//
// It is long because its three runs (raw POSTs, bank events, payments)
// share the receiver, the rate and the clock, set up once above them.
func (g *eventsRig) steady(ctx context.Context, opts Options) (*eventsSteady, error) {
	app, err := g.signUp(ctx, "Events benchmark, steady rate", eventsScopes)
	if err != nil {
		return nil, err
	}
	recv := newEventsReceiver(1)
	g.closers = append(g.closers, func() error { recv.Close(); return nil })
	token, err := g.accessToken(ctx, app)
	if err != nil {
		return nil, err
	}
	accounts, err := g.fundedAccounts(ctx, token, eventsPaymentAmount)
	if err != nil {
		return nil, err
	}
	if err := g.subscribeTo(ctx, token, recv, steadyEventTypes); err != nil {
		return nil, err
	}
	// A client of its own, keeping a connection for every call that may
	// be in flight.
	node := newAPI(g.URL, g.Admin, steadyInFlight)
	defer node.client.CloseIdleConnections()
	payer := newAPIPayer(node, node.tokens(ctx, app), accounts, eventsPaymentAmount, "events benchmark, steady rate")
	pay := func(ctx context.Context, i int) error { return payer.pay(ctx, rand.New(rand.NewPCG(2, uint64(i)))) }
	publish := func(ctx context.Context, _ int) error { return publishBankEvent(ctx, node, app.ID) }

	// Warm-up: one of each, all the way to the receiver.
	if err := publish(ctx, 0); err != nil {
		return nil, fmt.Errorf("warm-up bank event: %w", err)
	}
	if err := pay(ctx, 0); err != nil {
		return nil, fmt.Errorf("warm-up payment: %w", err)
	}
	received := 1 + eventsPerPayment
	if err := recv.wait(ctx, received, time.Minute); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}

	s := &eventsSteady{rate: opts.Rate}
	rawClient := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: steadyInFlight,
	}}
	defer rawClient.CloseIdleConnections()
	body := recv.body(bankEventType)
	s.raw, err = runSteady(ctx, opts, opts.Rate, steadyInFlight, func(ctx context.Context, _ int) error {
		return postRaw(ctx, rawClient, recv.RawURL(), body)
	})
	if err != nil {
		return nil, fmt.Errorf("baseline at %v/s: a POST failed after %d succeeded: %w", opts.Rate, s.raw.ops, err)
	}

	// drain waits for the events a run committed and returns what the
	// receiver measured meanwhile; the wait is bounded as the saturation
	// run's is.
	drain := func(run steadyLoad, events int) (eventsMeasure, error) {
		received += events
		wait := min(max(100*run.elapsed, 30*time.Second), 5*time.Minute)
		if err := recv.wait(ctx, received, wait); err != nil {
			return eventsMeasure{}, err
		}
		return recv.measured(), nil
	}
	recv.startMeasuring()
	s.bank, err = runSteady(ctx, opts, opts.Rate, steadyInFlight, publish)
	if err != nil {
		return nil, fmt.Errorf("bank events at %v/s: a publish failed after %d succeeded: %w", opts.Rate, s.bank.ops, err)
	}
	if s.bankRecv, err = drain(s.bank, s.bank.ops); err != nil {
		return nil, fmt.Errorf("after %d bank events at %v/s: %w", s.bank.ops, opts.Rate, err)
	}
	recv.startMeasuring()
	s.pay, err = runSteady(ctx, opts, opts.Rate/eventsPerPayment, steadyInFlight, pay)
	if err != nil {
		return nil, fmt.Errorf("payments at %v/s: a payment failed after %d succeeded: %w", opts.Rate/eventsPerPayment, s.pay.ops, err)
	}
	if s.payRecv, err = drain(s.pay, eventsPerPayment*s.pay.ops); err != nil {
		return nil, fmt.Errorf("after %d payments at %v/s: %w", s.pay.ops, opts.Rate/eventsPerPayment, err)
	}
	return s, nil
}

// publishBankEvent publishes a customer's arrival at a branch through the
// node's POST /bank/v1/events, as a bank system does, for the app appID
// alone. The event has no time, so the node takes it inside the
// transaction that commits the event.
func publishBankEvent(ctx context.Context, node *api, appID string) error {
	ev, err := json.Marshal(map[string]any{
		"specversion":   "1.0",
		"type":          bankEventType,
		"source":        "/bank/branches/bench",
		"causewayappid": appID,
		"data": map[string]any{
			"customer_id": ids.New("cus"),
			"branch_id":   "bench",
			"arrived_at":  time.Now().UTC().Format(time.RFC3339Nano),
			"detected_by": "check_in",
		},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node.URL+"/bank/v1/events", bytes.NewReader(ev))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+node.Admin)
	return node.do(req, http.StatusAccepted, nil)
}

// postRaw is one POST of the baselines: body to url on client, which must
// answer 204.
func postRaw(ctx context.Context, client *http.Client, url string, body []byte) error {
	if body == nil {
		return errors.New("no delivered body to post")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("raw POST: %d", res.StatusCode)
	}
	return nil
}
