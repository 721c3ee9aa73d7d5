package demo_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/demo"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// runStory runs a story against a fresh node of rt and returns its
// narration; it fails the test, showing the narration, if the story fails.
func runStory(t *testing.T, rt platformtest.Runtime, story func(context.Context, demo.Target, demo.Options) error) string {
	t.Helper()
	cfg := rt.Config(t)
	// The node's warnings and errors, to show when the story fails.
	var logs testkit.SyncBuffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n := platformtest.Start(t, cfg)
	var out testkit.SyncBuffer
	err := story(context.Background(), demo.Target{URL: n.URL, AdminToken: platformtest.AdminToken},
		demo.Options{Out: &out, Wait: time.Minute, Timeout: 4 * time.Minute})
	if err != nil {
		t.Fatalf("%v\n%s\nthe node's warnings and errors:\n%s", err, out.String(), logs.String())
	}
	return out.String()
}

// wantLines checks that the narration says each of want.
func wantLines(t *testing.T, narration string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(narration, w) {
			t.Errorf("the narration does not say %q", w)
		}
	}
	if t.Failed() {
		t.Log(narration)
	}
}

// TestBaaSStoryRunsEndToEnd is `causeway demo baas` on both runtimes:
// SolarWorld's app gets a token, onboards and KYCs a customer, funds a
// solar loan, its own fraud SPI lets the installer be paid and denies the
// suspicious payment with its reason, every event reaches its webhook
// signed, and the bank's offer event pops up the geo-tailored offer.
func TestBaaSStoryRunsEndToEnd(t *testing.T) {
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		out := runStory(t, rt, demo.BaaS)
		wantLines(t, out,
			"KYC kyc_", ": pass",
			"decision at loans.credit-decision",
			"SolarWorld webhook ⇐ loan.funded",
			"→ approve, score 4: payee is a SolarWorld partner installer",
			"rejected (fraud_denied: new foreign IBAN (LT) above 1000.00 EUR)",
			"SolarWorld webhook ⇐ payment.rejected",
			"SolarWorld webhook ⇐ marketing.offer.created",
			"homeowner at latitude 37.4°",
			"✓ all 5 steps produced what they should",
		)
	})
}

// TestEmpatheticStoryRunsEndToEnd is `causeway demo empathetic` on both
// runtimes: the branch camera's event reaches the officer's app, which
// reads the history, gets outside insights through accounts.lookup, trains
// a model on the approved, encrypted pseudonymized-transactions dataset
// and scores offers; the follow-up offer reaches the car and the home
// device, which read it from the offers API.
func TestEmpatheticStoryRunsEndToEnd(t *testing.T) {
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		out := runStory(t, rt, demo.Empathetic)
		wantLines(t, out,
			"officer app webhook ⇐ branch.customer.arrived",
			"transactions in the history",
			"Insight Partners accounts.lookup SPI ⇐ accounts.lookup call",
			"the bank approved it until",
			"decrypted locally to",
			"logistic regression trained in-process",
			"model: probability the visitor is a saver",
			"car dashboard ⇐ marketing.offer.created",
			"home assistant ⇐ marketing.offer.created",
			"(SDK Offers, as the car dashboard)",
			"✓ all 5 steps produced what they should",
		)
	})
}

// TestStoryFailsSayingWhatWasExpectedAndWhatCame: a node that may not call
// loopback addresses refuses the demo's webhook, and the story stops
// there with a Failure naming the step, the expectation and the answer.
func TestStoryFailsSayingWhatWasExpectedAndWhatCame(t *testing.T) {
	cfg := platformtest.Embedded.Config(t)
	cfg.AllowPrivateTargets = nil
	n := platformtest.Start(t, cfg)
	var out testkit.SyncBuffer
	err := demo.BaaS(context.Background(), demo.Target{URL: n.URL, AdminToken: platformtest.AdminToken}, demo.Options{Out: &out})
	var f *demo.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v, want a *demo.Failure\n%s", err, out.String())
	}
	if !strings.Contains(f.Step, "subscribes") || f.Expected != "POST /v1/webhooks to answer 201" || !strings.HasPrefix(f.Got, "422 ") {
		t.Errorf("failure = %+v", f)
	}
	if !strings.Contains(out.String(), "✗ FAILED") || !strings.Contains(out.String(), "expected: POST /v1/webhooks to answer 201") {
		t.Errorf("the narration does not say what failed:\n%s", out.String())
	}

	err = demo.Empathetic(context.Background(), demo.Target{URL: n.URL, AdminToken: "wrong"}, demo.Options{Out: &out})
	if !errors.As(err, &f) || !strings.HasPrefix(f.Got, "401 ") {
		t.Errorf("with a wrong admin token: %v", err)
	}
}
