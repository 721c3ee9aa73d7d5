package events_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
)

// TestRegisteringTypesAndPublishingEventsIsAudited registers a type and
// replaces it, and publishes an event twice with one id: an entry for
// each registration (the replacement naming what it replaced) and one for
// the event, whose resend changed nothing. The event's data stays out of
// the trail.
func TestRegisteringTypesAndPublishingEventsIsAudited(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		if res := e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", visitEnded); res.status != http.StatusCreated {
			t.Fatalf("register = %d %s", res.status, res.body)
		}
		again := map[string]any{}
		for k, v := range visitEnded {
			again[k] = v
		}
		again["public"], again["version"] = true, "3.0"
		if res := e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", again); res.status != http.StatusOK {
			t.Fatalf("replace = %d %s", res.status, res.body)
		}
		ce := cloudEvent("branch.visit.ended", map[string]any{"customer_id": "cus_1", "branch_id": "secret-branch", "minutes": 3},
			map[string]any{"id": "evt_audited", "subject": "visit_1"})
		e.publish(t, ce)
		e.publish(t, ce)

		var got []*audit.Entry
		err := audit.New(e.db).Export(context.Background(), auth.OperatorCaller("op_test"), audit.Filter{}, 0, 0, func(en *audit.Entry) error {
			got = append(got, en)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ action, target, before, after string }{
			{"event_type.register", "branch.visit.ended", "", `{"public":false,"version":"2.1"}`},
			{"event_type.register", "branch.visit.ended", `{"public":false,"version":"2.1"}`, `{"public":true,"version":"3.0"}`},
			{"event.publish", "evt_audited", "", `{"source":"/bank/test","subject":"visit_1","type":"branch.visit.ended"}`},
		}
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Action != w.action || g.TargetID != w.target || g.Actor != "operator:admin-token" || g.RequestID == "" ||
				string(g.Before) != w.before && !(w.before == "" && g.Before == nil) || string(g.After) != w.after {
				t.Errorf("entry %d = %s %s by %s (%s): %s -> %s, want %+v", i, g.Action, g.TargetID, g.Actor, g.RequestID, g.Before, g.After, w)
			}
		}
	})
}
