package spi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// TestTheBanksDecisionsOnRegistrationsAreAudited activates a bank-scope
// registration, lets operators change its settings at once, deactivates it
// and defines a point: an entry each, whose before is exactly what the
// change replaced (so the racing changes chain: each entry's before is the
// one before's after). An app deleting its own registration is not the
// bank's change and has no entry.
func TestTheBanksDecisionsOnRegistrationsAreAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		ctx := context.Background()
		r, _, err := s.CreateRegistration(ctx, auth.AppCaller("app_a"), spi.NewRegistration{ExtensionPoint: core.PointFraudCheck,
			URL: "http://127.0.0.1:1/spi", Scope: spi.ScopeBank})
		if err != nil {
			t.Fatal(err)
		}
		anna := auth.OperatorCaller("op_anna")
		if _, err := s.Activate(ctx, anna, r.ID, spi.Activation{TimeoutMS: 300, OnFailure: spi.OnFailureReject, Priority: priority(2)}); err != nil {
			t.Fatal(err)
		}
		for _, err := range testkit.Race(racers, func(i int) error {
			_, err := s.Configure(ctx, auth.OperatorCaller(fmt.Sprintf("op_%d", i)), r.ID, spi.Activation{TimeoutMS: 100 + i})
			return err
		}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Deactivate(ctx, anna, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRegistration(ctx, auth.AppCaller("app_a"), r.ID); err != nil {
			t.Fatal(err)
		}
		definePointLike(t, s, "bank.approval-check", core.PointFraudCheck, spi.Combination{Rule: spi.CombineFirst}) // no caller: nobody
		opCtx := auth.WithCaller(ctx, anna)
		p, err := s.Point(ctx, core.PointFraudCheck)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DefinePoint(opCtx, spi.NewPoint{Name: "bank.limit-check", RequestSchema: p.RequestSchema,
			ResponseSchema: p.ResponseSchema, DefaultTimeoutMS: p.DefaultTimeoutMS, MaxTimeoutMS: p.MaxTimeoutMS, StandIn: p.StandIn}); err != nil {
			t.Fatal(err)
		}

		var got []*audit.Entry
		if err := audit.New(db).Export(ctx, anna, audit.Filter{}, 0, 0, func(e *audit.Entry) error {
			got = append(got, e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1+racers+1+2 {
			t.Fatalf("%d entries, want %d", len(got), 1+racers+1+2)
		}
		if e := got[0]; e.Action != "spi.activate" || e.Actor != "operator:op_anna" || e.TargetType != "spi_registration" ||
			e.TargetID != r.ID || !contains(e.Before, `"status":"pending_activation"`) || !contains(e.After, `"status":"active"`) ||
			!contains(e.After, `"timeout_ms":300`) {
			t.Errorf("activation = %s %s by %s: %s -> %s", e.Action, e.TargetID, e.Actor, e.Before, e.After)
		}
		actors := map[string]bool{}
		for i, e := range got[1 : 1+racers] {
			if e.Action != "spi.configure" || string(e.Before) != string(got[i].After) {
				t.Errorf("configure %d: %s %s -> %s, after %s", i, e.Action, e.Before, e.After, got[i].After)
			}
			actors[e.Actor] = true
		}
		if len(actors) != racers {
			t.Errorf("%d operators named, want %d", len(actors), racers)
		}
		if e := got[1+racers]; e.Action != "spi.deactivate" || !contains(e.After, `"status":"inactive"`) ||
			string(e.Before) != string(got[racers].After) {
			t.Errorf("deactivation = %s: %s -> %s", e.Action, e.Before, e.After)
		}
		if e := got[len(got)-2]; e.Action != "extension_point.define" || e.TargetID != "bank.approval-check" || e.Actor != "nobody" {
			t.Errorf("a point defined without a caller = %s %s by %s", e.Action, e.TargetID, e.Actor)
		}
		if e := got[len(got)-1]; e.Action != "extension_point.define" || e.TargetType != "extension_point" ||
			e.TargetID != "bank.limit-check" || e.Actor != "operator:op_anna" || !contains(e.After, `"max_timeout_ms"`) {
			t.Errorf("definition = %s %s by %s: %s", e.Action, e.TargetID, e.Actor, e.After)
		}
		if v, err := audit.New(db).Verify(ctx, anna); err != nil || !v.OK {
			t.Errorf("verify = %+v, %v", v, err)
		}
	})
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
