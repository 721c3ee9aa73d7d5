package spi_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

var fraudStandIn = fraud{Decision: "approve", Score: 50, Reason: "stand-in: no answer from the fraud provider in time"}

// misbehaviours are the ways an endpoint fails to answer; each must end in
// the failing registration's policy. The hanging ones have a 100 ms
// deadline; the others a generous one, so that a slow test machine cannot
// turn their failure into a timeout.
var misbehaviours = []struct {
	name      string
	b         spitest.Behaviour
	timeoutMS int
	reason    string // part of the failure reason
	status    int    // status code audited
}{
	{"hang", spitest.Behaviour{Mode: spitest.Hang}, 100, "no answer within the deadline of 100ms", 0},
	{"hang after headers", spitest.Behaviour{Mode: spitest.HangAfterHeaders}, 100, "no answer within the deadline of 100ms", 200},
	{"500", spitest.Behaviour{Mode: spitest.Status, Status: 500}, 3000, "answered HTTP 500", 500},
	{"bad JSON", spitest.Behaviour{Mode: spitest.BadJSON}, 3000, "answer is not JSON", 200},
	{"schema-invalid JSON", spitest.Behaviour{Mode: spitest.Answer, Body: json.RawMessage(`{"decision":"maybe","score":500}`)}, 3000, "does not match the response schema", 200},
	{"huge body", spitest.Behaviour{Mode: spitest.Huge, Size: 1 << 20}, 3000, "larger than the 65536-byte limit", 200},
	{"redirect", spitest.Behaviour{Mode: spitest.Redirect, Body: approve(1, "via redirect")}, 3000, "HTTP 307; redirects are not followed", 307},
}

// At a "first" point (test.first) the registrations are asked one after
// the other, and a policy other than next ends the call; at
// payments.fraud-check, whose answers combine strictest-first, every
// registration is asked, so the healthy one answers too, and the failing
// one's policy decides what its own attempt counts as.
func TestEachMisbehaviourEndsInTheRegistrationsPolicyWithinItsDeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		definePointLike(t, s, "test.first", core.PointFraudCheck, spi.Combination{Rule: spi.CombineFirst})
		bad := spitest.New(t, approve(1, "bad"))
		good := spitest.New(t, approve(7, "second opinion"))
		for _, point := range []string{"test.first", core.PointFraudCheck} {
			for _, m := range misbehaviours {
				for _, policy := range []string{spi.OnFailureReject, spi.OnFailureStandIn, spi.OnFailureNext} {
					t.Run(point+"/"+m.name+"/"+policy, func(t *testing.T) {
						bad.Set(m.b)
						failing := bankReg(t, s, "app_fraud", point, bad.URL,
							spi.Activation{TimeoutMS: m.timeoutMS, OnFailure: policy, Priority: priority(1)})
						healthy := bankReg(t, s, "app_other", point, good.URL,
							spi.Activation{TimeoutMS: 3000, OnFailure: spi.OnFailureReject, Priority: priority(2)})
						goodHits := good.Hits()

						a, err := s.Invoke(context.Background(), point, "app_payer", mustJSON(t, fraudPayload()))
						if err != nil {
							t.Fatal(err)
						}

						if !a.Answered {
							t.Fatalf("answer = %+v, want answered", a)
						}
						switch policy {
						case spi.OnFailureReject:
							if !a.Failed || a.StandIn || a.Provider != failing.ID || !strings.Contains(a.Reason, m.reason) {
								t.Errorf("answer = %+v, want failed by %s because %q", a, failing.ID, m.reason)
							}
						case spi.OnFailureStandIn:
							if a.Failed || !a.StandIn || a.Provider != failing.ID || !strings.Contains(a.Reason, m.reason) {
								t.Errorf("answer = %+v, want stand-in after %s failed with %q", a, failing.ID, m.reason)
							}
							if got := decode(t, a.Body); got != fraudStandIn {
								t.Errorf("stand-in body = %+v", got)
							}
						case spi.OnFailureNext:
							if a.Failed || a.StandIn || a.Provider != healthy.ID {
								t.Errorf("answer = %+v, want the next registration's", a)
							}
							if got := decode(t, a.Body); got != approve(7, "second opinion") {
								t.Errorf("body = %+v", got)
							}
						}
						asked := good.Hits() - goodHits
						switch {
						case point == core.PointFraudCheck && asked != 1:
							t.Errorf("the healthy registration was asked %d times, want once: every registration is asked", asked)
						case point != core.PointFraudCheck && policy != spi.OnFailureNext && asked != 0:
							t.Errorf("policy %s went on to the next registration", policy)
						}
						if bad.RedirectHits() != 0 {
							t.Error("a redirect was followed")
						}

						audit := invocations(t, s, failing.ID)
						if len(audit) != 1 {
							t.Fatalf("audit of the failing registration = %d rows", len(audit))
						}
						inv := audit[0]
						wantOutcome := map[string]string{spi.OnFailureReject: spi.OutcomeFailed,
							spi.OnFailureStandIn: spi.OutcomeStandIn, spi.OnFailureNext: spi.OutcomeFailed}[policy]
						if inv.Outcome != wantOutcome || inv.StandIn != (policy == spi.OnFailureStandIn) ||
							!strings.Contains(inv.FailureReason, m.reason) || inv.StatusCode != m.status ||
							inv.AppID != "app_payer" || inv.ExtensionPoint != point {
							t.Errorf("audit row = %+v, want outcome %s, status %d", inv, wantOutcome, m.status)
						}
					})
				}
			}
		}
	})
}

func TestAnAnswerIsUsedWhateverThePolicy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		srv := spitest.New(t, nil)
		for _, answer := range []fraud{approve(3, "fine"), {Decision: "deny", Score: 97, Reason: "mule account"}, {Decision: "review", Score: 60}} {
			for _, policy := range []string{spi.OnFailureReject, spi.OnFailureStandIn, spi.OnFailureNext} {
				t.Run(answer.Decision+"/"+policy, func(t *testing.T) {
					srv.Reply(answer)
					r := bankReg(t, s, "app_fraud", core.PointFraudCheck, srv.URL, spi.Activation{OnFailure: policy})
					a := call(t, s, "app_payer")
					if !a.Answered || a.Failed || a.StandIn || a.Provider != r.ID || decode(t, a.Body) != answer {
						t.Errorf("answer = %+v (%s), want %+v from %s", a, a.Body, answer, r.ID)
					}
					if audit := invocations(t, s, r.ID); len(audit) != 1 || audit[0].Outcome != spi.OutcomeAnswered || audit[0].StatusCode != 200 {
						t.Errorf("audit = %+v", audit)
					}
				})
			}
		}
	})
}

func TestNextFallsBackToTheStandInWhenEveryRegistrationFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		down := spitest.New(t, nil)
		down.Set(spitest.Behaviour{Mode: spitest.Status, Status: 503})
		slow := spitest.New(t, nil)
		slow.Set(spitest.Behaviour{Mode: spitest.Hang})
		first := bankReg(t, s, "app_a", core.PointFraudCheck, down.URL, spi.Activation{OnFailure: spi.OnFailureNext, Priority: priority(1)})
		last := bankReg(t, s, "app_b", core.PointFraudCheck, slow.URL, spi.Activation{TimeoutMS: 50, OnFailure: spi.OnFailureNext, Priority: priority(2)})

		a := call(t, s, "")
		if !a.Answered || a.Failed || !a.StandIn || a.Provider != last.ID || decode(t, a.Body) != fraudStandIn ||
			!strings.Contains(a.Reason, "none of 2 registrations answered") {
			t.Errorf("answer = %+v", a)
		}
		if inv := invocations(t, s, first.ID); len(inv) != 1 || inv[0].Outcome != spi.OutcomeFailed || inv[0].StandIn {
			t.Errorf("first audit = %+v", inv[0])
		}
		if inv := invocations(t, s, last.ID); len(inv) != 1 || inv[0].Outcome != spi.OutcomeStandIn || !inv[0].StandIn {
			t.Errorf("last audit = %+v", inv[0])
		}
	})
}

func TestTheWholeCallEndsWithinThePointsMaximum(t *testing.T) {
	s := newService(t, storetest.OpenSQLite(t))
	// A bank-defined point with a maximum of 400 ms, and three hanging
	// registrations: the first with a 100 ms deadline, the second with
	// the maximum, which it cannot have in full.
	if _, err := s.DefinePoint(context.Background(), spi.NewPoint{
		Name: "test.quick", RequestSchema: json.RawMessage(`{}`), ResponseSchema: json.RawMessage(`{"type":"object"}`),
		DefaultTimeoutMS: 100, MaxTimeoutMS: 400, StandIn: json.RawMessage(`{"stand_in":true}`),
	}); err != nil {
		t.Fatal(err)
	}
	hang := spitest.New(t, nil)
	hang.Set(spitest.Behaviour{Mode: spitest.Hang})
	var regs []*spi.Registration
	for i, timeout := range []int{100, 400, 400} {
		regs = append(regs, bankReg(t, s, "app_a", "test.quick", hang.URL,
			spi.Activation{TimeoutMS: timeout, OnFailure: spi.OnFailureNext, Priority: priority(i)}))
	}
	a, err := s.Invoke(context.Background(), "test.quick", "", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !a.StandIn || string(a.Body) != `{"stand_in":true}` || !strings.Contains(a.Reason, "no time left for 1 more registration") {
		t.Errorf("answer = %+v", a)
	}
	if n := len(invocations(t, s, regs[2].ID)); n != 0 || hang.Hits() != 2 {
		t.Errorf("third registration audited %d times; endpoint hit %d times, want 2", n, hang.Hits())
	}
	second := invocations(t, s, regs[1].ID)
	if len(second) != 1 || !strings.Contains(second[0].FailureReason, "no answer within the deadline") ||
		strings.Contains(second[0].FailureReason, "400ms") || !second[0].StandIn {
		t.Errorf("second attempt = %+v, want a timeout with what was left of the budget, and the stand-in", *second[0])
	}
}

func TestTheBreakerOpensAfterRepeatedFailuresAndClosesAfterAProbe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db, func(o *spi.Options) { o.BreakerFailures, o.BreakerOpenFor = 3, 500*time.Millisecond })
		srv := spitest.New(t, approve(5, "back"))
		srv.Set(spitest.Behaviour{Mode: spitest.Status, Status: 500})
		r := bankReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.Activation{OnFailure: spi.OnFailureStandIn})

		for range 3 {
			if a := call(t, s, ""); !a.StandIn {
				t.Fatalf("answer = %+v", a)
			}
		}
		if srv.Hits() != 3 {
			t.Fatalf("hits = %d", srv.Hits())
		}
		// Open: calls fail at once, without reaching the endpoint.
		for range 5 {
			a := call(t, s, "")
			if !a.StandIn || !strings.Contains(a.Reason, "circuit open") {
				t.Fatalf("answer while open = %+v", a)
			}
		}
		if srv.Hits() != 3 {
			t.Fatalf("an open breaker let %d calls through", srv.Hits()-3)
		}
		audit := invocations(t, s, r.ID)
		if audit[0].Outcome != spi.OutcomeSkippedBreakerOpen || !audit[0].StandIn || audit[0].LatencyMS != 0 {
			t.Errorf("newest audit row = %+v", audit[0])
		}

		// The endpoint recovers; after the open period one probe goes
		// through, succeeds, and the breaker closes.
		srv.Reply(approve(5, "back"))
		deadline := time.Now().Add(10 * time.Second)
		for {
			a := call(t, s, "")
			if !a.StandIn {
				if decode(t, a.Body) != approve(5, "back") {
					t.Errorf("answer = %s", a.Body)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the breaker never let a probe through")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if srv.Hits() != 4 {
			t.Errorf("hits = %d, want 4: one probe", srv.Hits())
		}
		for range 3 {
			if a := call(t, s, ""); a.StandIn {
				t.Fatalf("answer after closing = %+v", a)
			}
		}
		if srv.Hits() != 7 {
			t.Errorf("hits = %d, want 7: the closed breaker lets every call through", srv.Hits())
		}
	})
}

func TestAFailedProbeOpensTheBreakerAgain(t *testing.T) {
	s := newService(t, storetest.OpenSQLite(t), func(o *spi.Options) { o.BreakerFailures, o.BreakerOpenFor = 2, 500*time.Millisecond })
	srv := spitest.New(t, nil)
	srv.Set(spitest.Behaviour{Mode: spitest.Status, Status: 502})
	bankReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.Activation{OnFailure: spi.OnFailureReject})
	call(t, s, "")
	call(t, s, "")
	deadline := time.Now().Add(10 * time.Second)
	for srv.Hits() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no probe")
		}
		time.Sleep(10 * time.Millisecond)
		call(t, s, "")
	}
	// The probe failed: open again, so the next call is skipped.
	if a := call(t, s, ""); !a.Failed || !strings.Contains(a.Reason, "circuit open") || srv.Hits() != 3 {
		t.Errorf("after a failed probe: %+v, hits %d", a, srv.Hits())
	}
}

func TestCallsAreSignedForTheStandardWebhooksVerifier(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		srv := spitest.New(t, approve(1, "ok"))
		r, secret := appReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{})
		if !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("secret = %q", secret)
		}
		call(t, s, "app_a")
		req, ok := srv.Last()
		if !ok {
			t.Fatal("no call")
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(req.Body, req.Header); err != nil {
			t.Errorf("the Standard Webhooks verifier refused the call: %v", err)
		}
		tampered := strings.Replace(string(req.Body), "12.34", "99.99", 1)
		if err := wh.Verify([]byte(tampered), req.Header); err == nil {
			t.Error("a tampered body verified")
		}
		other, _ := standardwebhooks.NewWebhook("whsec_" + strings.Repeat("A", 43) + "=")
		if err := other.Verify(req.Body, req.Header); err == nil {
			t.Error("another secret verified")
		}

		// The body is {id, extension_point, deadline, payload}; id is the
		// webhook-id and the audit row's id.
		c := req.Call
		if c.ID == "" || c.ID != req.Header.Get("webhook-id") || c.ExtensionPoint != core.PointFraudCheck {
			t.Errorf("call = %+v, webhook-id %q", c, req.Header.Get("webhook-id"))
		}
		if _, err := time.Parse(time.RFC3339, c.Deadline); err != nil {
			t.Errorf("deadline %q: %v", c.Deadline, err)
		}
		var payload map[string]map[string]any
		json.Unmarshal(c.Payload, &payload)
		if payload["payment"]["id"] != "pay_1" || payload["debtor"]["id"] != "cus_1" {
			t.Errorf("payload = %s", c.Payload)
		}
		if audit := invocations(t, s, r.ID); len(audit) != 1 || audit[0].ID != c.ID {
			t.Errorf("audit = %+v, want one row with id %s", audit, c.ID)
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
	})
}

func TestAnAppsRegistrationIsNeverCalledForAnotherAppsProcess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		srv := spitest.New(t, approve(1, "app a's own"))
		r, _ := appReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{})
		for _, app := range []string{"app_b", ""} {
			if a := call(t, s, app); a.Answered {
				t.Errorf("a process of %q got an answer: %+v", app, a)
			}
		}
		if srv.Hits() != 0 {
			t.Fatalf("app a's endpoint was called %d times for others", srv.Hits())
		}
		if a := call(t, s, "app_a"); !a.Answered || a.Provider != r.ID {
			t.Errorf("app a's own process: %+v", a)
		}
	})
}

// At payments.fraud-check every registration is asked; of equal
// decisions the one asked first decides: the app's own, then the bank's by
// priority.
func TestEveryRegistrationIsAskedAndTiesGoToTheAppsOwnThenBankScopeByPriority(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		own := spitest.New(t, approve(1, "own"))
		p1 := spitest.New(t, approve(2, "priority 1"))
		p5 := spitest.New(t, approve(3, "priority 5"))
		// Activated in the opposite order of their priority.
		r5 := bankReg(t, s, "app_x", core.PointFraudCheck, p5.URL, spi.Activation{Priority: priority(5), OnFailure: spi.OnFailureNext})
		r1 := bankReg(t, s, "app_y", core.PointFraudCheck, p1.URL, spi.Activation{Priority: priority(1), OnFailure: spi.OnFailureNext})
		ra, _ := appReg(t, s, "app_a", core.PointFraudCheck, own.URL, spi.NewRegistration{OnFailure: spi.OnFailureNext})

		a := call(t, s, "app_a")
		if a.Provider != ra.ID || decode(t, a.Body).Reason != "own" {
			t.Errorf("app a: %+v, want its own registration's", a)
		}
		if len(a.Replies) != 3 || a.Replies[0].Provider != ra.ID || a.Replies[0].Scope != spi.ScopeApp ||
			a.Replies[1].Provider != r1.ID || a.Replies[2].Provider != r5.ID || a.Replies[2].Scope != spi.ScopeBank {
			t.Errorf("replies = %+v, want own, priority 1, priority 5", a.Replies)
		}
		if a := call(t, s, "app_b"); a.Provider != r1.ID || decode(t, a.Body).Reason != "priority 1" {
			t.Errorf("app b: %+v, want priority 1", a)
		}
		// Those that fail with next give no reply.
		own.Set(spitest.Behaviour{Mode: spitest.Status, Status: 500})
		p1.Set(spitest.Behaviour{Mode: spitest.BadJSON})
		if a := call(t, s, "app_a"); a.Provider != r5.ID || decode(t, a.Body).Reason != "priority 5" || len(a.Replies) != 1 {
			t.Errorf("app a after failures: %+v", a)
		}
		if own.Hits() != 2 || p1.Hits() != 3 || p5.Hits() != 3 {
			t.Errorf("hits own %d, p1 %d, p5 %d; want 2, 3, 3", own.Hits(), p1.Hits(), p5.Hits())
		}
	})
}

func TestInactivePendingAndDeletedRegistrationsAreNotCalled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		ctx := context.Background()
		srv := spitest.New(t, approve(1, "x"))
		pending, _, err := s.CreateRegistration(ctx, auth.AppCaller("app_a"), spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: srv.URL, Scope: spi.ScopeBank})
		if err != nil {
			t.Fatal(err)
		}
		if a := call(t, s, "app_b"); a.Answered {
			t.Errorf("a pending registration answered: %+v", a)
		}
		if _, err := s.Activate(ctx, auth.BankProcess(), pending.ID, spi.Activation{}); err != nil {
			t.Fatal(err)
		}
		if a := call(t, s, "app_b"); a.Provider != pending.ID {
			t.Errorf("after activation: %+v", a)
		}
		if _, err := s.Deactivate(ctx, auth.BankProcess(), pending.ID); err != nil {
			t.Fatal(err)
		}
		if a := call(t, s, "app_b"); a.Answered {
			t.Errorf("a deactivated registration answered: %+v", a)
		}
		own, _ := appReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{})
		if err := s.DeleteRegistration(ctx, auth.AppCaller("app_b"), own.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
			t.Errorf("another app deleted it: %v", err)
		}
		if err := s.DeleteRegistration(ctx, auth.AppCaller("app_a"), own.ID); err != nil {
			t.Fatal(err)
		}
		if a := call(t, s, "app_a"); a.Answered {
			t.Errorf("a deleted registration answered: %+v", a)
		}
		if _, err := s.Activate(ctx, auth.BankProcess(), own.ID, spi.Activation{}); causeway.ErrorCode(err) != "registration_deleted" {
			t.Errorf("activating a deleted registration: %v", err)
		}
		if srv.Hits() != 1 {
			t.Errorf("hits = %d, want 1", srv.Hits())
		}
	})
}

// A node keeps the registrations it read for a point for a moment (a
// change through it applies at once, see above). A change made through
// another node reaches it too: the bank's deactivation of a misbehaving
// endpoint must stop every node calling it.
func TestADeactivationThroughAnotherNodeStopsTheCallsHere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		here, there := newService(t, db), newService(t, db)
		srv := spitest.New(t, approve(1, "x"))
		r := bankReg(t, there, "app_a", core.PointFraudCheck, srv.URL, spi.Activation{})
		if a := call(t, here, "app_b"); a.Provider != r.ID {
			t.Fatalf("before deactivation: %+v", a)
		}
		if _, err := there.Deactivate(context.Background(), auth.BankProcess(), r.ID); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, "the other node to stop calling the deactivated registration", func() bool {
			return !call(t, here, "app_b").Answered
		})
		hits := srv.Hits()
		if a := call(t, here, "app_b"); a.Answered || srv.Hits() != hits {
			t.Errorf("called again once stopped: %+v", a)
		}
	})
}

func TestAPayloadThatBreaksTheRequestSchemaIsRefused(t *testing.T) {
	s := newService(t, storetest.OpenSQLite(t))
	srv := spitest.New(t, approve(1, "x"))
	bankReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.Activation{})
	_, err := s.Call(context.Background(), core.ExtensionCall{Point: core.PointFraudCheck, Payload: map[string]any{"payment": 1}})
	if causeway.ErrorCode(err) != "invalid_payload" {
		t.Errorf("err = %v", err)
	}
	if _, err := s.Call(context.Background(), core.ExtensionCall{Point: "no.such-point"}); causeway.ErrorKind(err) != causeway.ENOTFOUND {
		t.Errorf("unknown point: %v", err)
	}
	if srv.Hits() != 0 {
		t.Error("the endpoint was called")
	}
}

func TestACallerThatGivesUpGetsItsErrorAndDoesNotTripTheBreaker(t *testing.T) {
	s := newService(t, storetest.OpenSQLite(t), func(o *spi.Options) { o.BreakerFailures = 1 })
	srv := spitest.New(t, approve(1, "x"))
	srv.Set(spitest.Behaviour{Mode: spitest.Hang})
	r := bankReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.Activation{TimeoutMS: 5000, OnFailure: spi.OnFailureStandIn})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.Hits() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := s.Call(ctx, core.ExtensionCall{Point: core.PointFraudCheck, Payload: fraudPayload()})
	if err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	srv.Reply(approve(2, "y"))
	if a := call(t, s, ""); a.StandIn || a.Provider != r.ID {
		t.Errorf("after the caller gave up, the breaker opened: %+v", a)
	}
	if audit := invocations(t, s, r.ID); len(audit) != 2 || !strings.Contains(audit[1].FailureReason, "caller gave up") {
		t.Errorf("audit = %+v", audit)
	}
}

func TestRegistrationsRefuseBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		public := newService(t, db, func(o *spi.Options) { o.Guard.Allow = nil })
		ctx := context.Background()
		ok := "http://127.0.0.1:1/spi"
		for _, tt := range []struct {
			name string
			svc  *spi.Service
			n    spi.NewRegistration
			code string
		}{
			{"unknown point", s, spi.NewRegistration{ExtensionPoint: "payments.nope", URL: ok}, "unknown_extension_point"},
			{"bad scope", s, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: ok, Scope: "world"}, "invalid_scope"},
			{"ftp url", s, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: "ftp://127.0.0.1/x"}, "invalid_url"},
			{"credentials", s, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: "http://u:p@127.0.0.1/x"}, "invalid_url"},
			{"loopback not allowed", public, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: ok}, "url_not_allowed"},
			{"IPv6 loopback not allowed", public, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: "http://[::1]:1/spi"}, "url_not_allowed"},
			{"timeout over max", s, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: ok, TimeoutMS: 5001}, "invalid_timeout"},
			{"bad policy", s, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: ok, OnFailure: "retry"}, "invalid_on_failure"},
		} {
			if _, _, err := tt.svc.CreateRegistration(ctx, auth.AppCaller("app_a"), tt.n); causeway.ErrorCode(err) != tt.code {
				t.Errorf("%s: err = %v, want %s", tt.name, err, tt.code)
			}
		}
		r, _, err := s.CreateRegistration(ctx, auth.AppCaller("app_a"), spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: ok})
		if err != nil {
			t.Fatal(err)
		}
		if r.Scope != spi.ScopeApp || r.Status != spi.StatusActive || r.OnFailure != spi.OnFailureStandIn || r.TimeoutMS != 1500 {
			t.Errorf("defaults: %+v", r)
		}
		if _, err := s.Activate(ctx, auth.BankProcess(), r.ID, spi.Activation{TimeoutMS: 5001}); causeway.ErrorCode(err) != "invalid_timeout" {
			t.Errorf("activate over the max: %v", err)
		}
		if _, err := s.Activate(ctx, auth.BankProcess(), r.ID, spi.Activation{Priority: priority(-1)}); causeway.ErrorCode(err) != "invalid_priority" {
			t.Errorf("negative priority: %v", err)
		}
	})
}

// The real sandbox bank, with the invoker plugged in as its extensions:
// app A's fraud check decides app A's payments and nobody else's.
func TestTheBankUsesAnAppsFraudCheckOnlyForThatAppsPayments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		if err := core.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		bank := core.New(db, core.Options{})
		bank.SetExtensions(s)
		srv := spitest.New(t, fraud{Decision: "review", Score: 80, Reason: "new payee"})
		r, _ := appReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{})

		pay := func(app string) *core.Payment {
			t.Helper()
			actor := auth.AppCaller(app)
			c, err := bank.CreateCustomer(ctx, actor, core.NewCustomer{Type: "person", Name: "Ada Lovelace", DateOfBirth: "1985-04-12",
				Email: "ada@example.com", Address: core.Address{Line1: "Keizersgracht 1", City: "Amsterdam", Postcode: "1015 CJ", Country: "NL"}})
			if err != nil {
				t.Fatal(err)
			}
			acc, err := bank.OpenAccount(ctx, actor, core.NewAccount{CustomerID: c.ID, Product: "current", Currency: "EUR"})
			if err != nil {
				t.Fatal(err)
			}
			m, _ := core.ParseMoney("100.00", "EUR")
			if _, err := bank.Deposit(ctx, auth.BankProcess(), acc.ID, m, "salary"); err != nil {
				t.Fatal(err)
			}
			amount, _ := core.ParseMoney("12.34", "EUR")
			p, err := bank.CreatePayment(ctx, actor, core.NewPayment{DebtorAccountID: acc.ID,
				Creditor: core.Creditor{IBAN: "DE89370400440532013000", Name: "Landlord"}, Amount: amount, Reference: "rent"})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		b := pay("app_b")
		if srv.Hits() != 0 || b.FraudCheck.Provider != "builtin" || b.Status != core.PaymentCompleted {
			t.Errorf("app b's payment: %+v, fraud %+v; app a's endpoint hit %d times", b, b.FraudCheck, srv.Hits())
		}
		a := pay("app_a")
		if srv.Hits() != 1 || a.FraudCheck.Provider != r.ID || a.FraudCheck.Decision != "review" || a.Status != core.PaymentHeld {
			t.Errorf("app a's payment: %+v, fraud %+v", a, a.FraudCheck)
		}
		// The payment the endpoint saw is the one the bank made.
		req, _ := srv.Last()
		var payload struct {
			Payment struct{ ID string } `json:"payment"`
		}
		json.Unmarshal(req.Call.Payload, &payload)
		if payload.Payment.ID != a.ID {
			t.Errorf("endpoint saw payment %q, want %s", payload.Payment.ID, a.ID)
		}

		// A hanging provider with the default policy: the stand-in
		// approves, and the payment says so.
		srv.Set(spitest.Behaviour{Mode: spitest.Hang})
		if _, err := s.Configure(ctx, auth.BankProcess(), r.ID, spi.Activation{TimeoutMS: 50}); err != nil {
			t.Fatal(err)
		}
		held := pay("app_a")
		if !held.FraudCheck.StandIn || held.FraudCheck.Decision != "approve" || held.Status != core.PaymentCompleted {
			t.Errorf("payment with a hanging provider: %+v, fraud %+v", held, held.FraudCheck)
		}
		// Reject fails closed: the payment is denied.
		if _, err := s.Configure(ctx, auth.BankProcess(), r.ID, spi.Activation{OnFailure: spi.OnFailureReject}); err != nil {
			t.Fatal(err)
		}
		denied := pay("app_a")
		if denied.Status != core.PaymentRejected || !strings.Contains(denied.FraudCheck.Reason, "fraud check failed") {
			t.Errorf("payment with reject policy: %+v, fraud %+v", denied, denied.FraudCheck)
		}
	})
}

// The other built-in points' schemas accept what the bank sends and their
// stand-ins are what the bank reads.
func TestTheBankUsesKYCAndCreditDecisionAnswers(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	s := newService(t, db)
	if err := core.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	bank := core.New(db, core.Options{})
	bank.SetExtensions(s)
	kyc := spitest.New(t, map[string]any{"result": "refer", "checks": []map[string]string{{"name": "pep", "result": "refer", "detail": "politically exposed"}}})
	credit := spitest.New(t, map[string]any{"decision": "decline", "reason": "thin file"})
	appReg(t, s, "app_a", core.PointKYCVerify, kyc.URL, spi.NewRegistration{})
	appReg(t, s, "app_a", core.PointCreditDecision, credit.URL, spi.NewRegistration{})
	actor := auth.AppCaller("app_a")
	c, err := bank.CreateCustomer(ctx, actor, core.NewCustomer{Type: "person", Name: "Ada Lovelace", DateOfBirth: "1985-04-12",
		Email: "ada@example.com", DocumentNumber: "NX12345678",
		Address: core.Address{Line1: "Keizersgracht 1", City: "Amsterdam", Postcode: "1015 CJ", Country: "NL"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := bank.VerifyCustomer(ctx, actor, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if kyc.Hits() != 1 || v.Result != "refer" || v.StandIn {
		t.Errorf("kyc = %+v", v)
	}
	amount, _ := core.ParseMoney("5000.00", "EUR")
	income, _ := core.ParseMoney("4000.00", "EUR")
	l, err := bank.ApplyForLoan(ctx, actor, core.NewLoanApplication{CustomerID: c.ID, Amount: amount, TermMonths: 24, Purpose: "car", MonthlyIncome: income})
	if err != nil {
		t.Fatal(err)
	}
	if credit.Hits() != 1 || l.Status != core.LoanDeclined || l.Decision.Reason != "thin file" {
		t.Errorf("loan = %+v", l)
	}
	// Stand-ins: KYC refers, credit refers.
	kyc.Set(spitest.Behaviour{Mode: spitest.Status, Status: 500})
	credit.Set(spitest.Behaviour{Mode: spitest.Status, Status: 500})
	if v, err = bank.VerifyCustomer(ctx, actor, c.ID); err != nil || !v.StandIn || v.Result != "refer" {
		t.Errorf("kyc with stand-in = %+v, %v", v, err)
	}
	if l, err = bank.ApplyForLoan(ctx, actor, core.NewLoanApplication{CustomerID: c.ID, Amount: amount, TermMonths: 24, Purpose: "car", MonthlyIncome: income}); err != nil ||
		l.Status != core.LoanReferred || !l.Decision.StandIn {
		t.Errorf("loan with stand-in = %+v, %v", l, err)
	}
}

// TestInvocationRecordsArePrunedByAge: retention deletes the records of
// calls started before the cut, and no others.
func TestInvocationRecordsArePrunedByAge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		srv := spitest.New(t, nil)
		srv.Reply(approve(3, "fine"))
		r := bankReg(t, s, "app_fraud", core.PointFraudCheck, srv.URL, spi.Activation{OnFailure: spi.OnFailureReject})
		call(t, s, "app_payer")
		audit := invocations(t, s, r.ID)
		if len(audit) != 1 {
			t.Fatalf("audit = %+v", audit)
		}
		started := audit[0].StartedAt
		if n, err := s.PruneInvocations(context.Background(), started); err != nil || n != 0 {
			t.Errorf("pruning before the call: %d, %v; want 0", n, err)
		}
		if n, err := s.PruneInvocations(context.Background(), started.Add(time.Millisecond)); err != nil || n != 1 {
			t.Errorf("pruning after the call: %d, %v; want 1", n, err)
		}
		if audit := invocations(t, s, r.ID); len(audit) != 0 {
			t.Errorf("after pruning: %+v", audit)
		}
	})
}

// TestRotatedSecretOverlapsForADay: after a rotation, calls carry a
// signature with the new secret and one with the previous, which standard
// verifiers accept with either secret; after SecretOverlap only the new one
// signs. Another app cannot rotate the registration's secret.
func TestRotatedSecretOverlapsForADay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var later atomic.Int64 // added to the real clock
		s := newService(t, db, func(o *spi.Options) {
			o.Now = func() time.Time { return time.Now().Add(time.Duration(later.Load())) }
		})
		srv := spitest.New(t, approve(1, "ok"))
		r, old := appReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{})
		ctx := context.Background()
		if _, _, err := s.RotateSecret(ctx, auth.AppCaller("app_b"), r.ID); causeway.ErrorCode(err) != "registration_not_found" {
			t.Errorf("another app rotating: %v", err)
		}
		rotated, fresh, err := s.RotateSecret(ctx, auth.AppCaller("app_a"), r.ID)
		if err != nil || fresh == old || !strings.HasPrefix(fresh, "whsec_") || rotated.PreviousSecretExpiresAt == nil {
			t.Fatalf("rotate = %+v, %q, %v", rotated, fresh, err)
		}
		verifies := func(secret string, ignoreTime bool) bool {
			req, ok := srv.Last()
			if !ok {
				t.Fatal("no call")
			}
			wh, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				t.Fatal(err)
			}
			if ignoreTime {
				return wh.VerifyIgnoringTimestamp(req.Body, req.Header) == nil
			}
			return wh.Verify(req.Body, req.Header) == nil
		}
		call(t, s, "app_a")
		if !verifies(fresh, false) || !verifies(old, false) {
			t.Errorf("during the overlap: new secret verifies %v, old %v; want both", verifies(fresh, false), verifies(old, false))
		}
		later.Store(int64(spi.SecretOverlap + time.Minute))
		call(t, s, "app_a")
		if !verifies(fresh, true) || verifies(old, true) {
			t.Errorf("after the overlap: new secret verifies %v, old %v; want only the new", verifies(fresh, true), verifies(old, true))
		}
	})
}

// Who may reach a registration is decided from the Caller: its app (which
// may not activate it, nor list another app's by naming it in the filter),
// the bank, and nobody else. The zero Caller used to be the bank.
func TestOnlyItsAppAndTheBankReachARegistration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		ctx := context.Background()
		srv := spitest.New(t, approve(1, "x"))
		r, _ := appReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{Scope: spi.ScopeBank})
		for name, c := range map[string]auth.Caller{"nobody": {}, "an empty app id": auth.AppCaller(""), "another app": auth.AppCaller("app_b"),
			"a developer": auth.DeveloperCaller("dev_1")} {
			if _, err := s.Registration(ctx, c, r.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s reads it: %v", name, err)
			}
			if _, err := s.Invocations(ctx, c, r.ID, 0, ""); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s reads its calls: %v", name, err)
			}
			if _, _, err := s.RotateSecret(ctx, c, r.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s rotates its secret: %v", name, err)
			}
			if err := s.DeleteRegistration(ctx, c, r.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s deletes it: %v", name, err)
			}
			if pg, err := s.Registrations(ctx, c, spi.RegistrationFilter{AppID: "app_a"}); err != nil || len(pg.Data) != 0 {
				t.Errorf("%s lists it: %v, %v", name, pg, err)
			}
		}
		for name, c := range map[string]auth.Caller{"nobody": {}, "its own app": auth.AppCaller("app_a")} {
			if _, err := s.Activate(ctx, c, r.ID, spi.Activation{}); causeway.ErrorKind(err) != causeway.EFORBIDDEN {
				t.Errorf("%s activates it: %v, want forbidden", name, err)
			}
			if _, err := s.Configure(ctx, c, r.ID, spi.Activation{OnFailure: spi.OnFailureNext}); causeway.ErrorKind(err) != causeway.EFORBIDDEN {
				t.Errorf("%s configures it: %v, want forbidden", name, err)
			}
		}
		if _, _, err := s.CreateRegistration(ctx, auth.Caller{}, spi.NewRegistration{ExtensionPoint: core.PointFraudCheck, URL: srv.URL}); causeway.ErrorKind(err) != causeway.EFORBIDDEN {
			t.Errorf("nobody registered: %v", err)
		}
		if got, err := s.Registration(ctx, auth.OperatorCaller(auth.AdminTokenOperator), r.ID); err != nil || got.AppID != "app_a" {
			t.Errorf("the bank reads it: %v %v", got, err)
		}
	})
}
