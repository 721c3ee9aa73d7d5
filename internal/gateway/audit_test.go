package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// TestLimitsAndUpstreamsAreAudited sets an app's limits twice and
// publishes and removes an upstream over HTTP: each change is an entry
// with what it replaced, made by the admin token's holder in the request
// that made it, and never the upstream's secret.
func TestLimitsAndUpstreamsAreAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		var requests []string
		for _, body := range []string{`{"requests_per_second":2.5,"burst":10,"daily_quota":500}`,
			`{"requests_per_second":5,"burst":20,"daily_quota":1000}`} {
			res := e.admin("PUT", "/bank/v1/apps/app_a/limits", body)
			if res.status != 200 {
				t.Fatalf("put limits: %d %s", res.status, res.body)
			}
			requests = append(requests, res.header.Get("X-Request-Id"))
		}
		// A refused change leaves no entry.
		e.admin("PUT", "/bank/v1/apps/app_x/limits", `{"requests_per_second":1,"burst":1,"daily_quota":1}`).problem(t, 404, "app_not_found")
		up := e.createUpstream(t, "Cards", "https://cards.bank.test/api", "cards", "accounts:read")
		if res := e.admin("DELETE", "/bank/v1/upstreams/"+up.ID, ""); res.status != 204 {
			t.Fatalf("delete upstream: %d %s", res.status, res.body)
		}

		pg, err := audit.New(db).List(context.Background(), auth.OperatorCaller("op_test"), audit.Filter{}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		got := pg.Data
		want := []struct{ action, target, before, after string }{
			{"upstream.delete", up.ID, `{"base_url":"https://cards.bank.test/api","name":"Cards","path_prefix":"cards","scope":"accounts:read"}`, ""},
			{"upstream.create", up.ID, "", `{"base_url":"https://cards.bank.test/api","name":"Cards","path_prefix":"cards","scope":"accounts:read"}`},
			{"app.limits.set", "app_a", `{"burst":10,"daily_quota":500,"requests_per_second":2.5}`, `{"burst":20,"daily_quota":1000,"requests_per_second":5}`},
			{"app.limits.set", "app_a", "", `{"burst":10,"daily_quota":500,"requests_per_second":2.5}`},
		}
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Action != w.action || g.TargetID != w.target || g.Actor != "operator:admin-token" ||
				string(g.Before) != w.before && !(w.before == "" && g.Before == nil) ||
				string(g.After) != w.after && !(w.after == "" && g.After == nil) || g.RequestID == "" || g.ClientAddr != "127.0.0.1" {
				t.Errorf("entry %d = %s %s by %s from %s (%s): %s -> %s", i, g.Action, g.TargetID, g.Actor, g.ClientAddr, g.RequestID, g.Before, g.After)
			}
			if strings.Contains(string(g.Before)+string(g.After), strings.TrimPrefix(up.SigningSecret, "whsec_")) {
				t.Errorf("entry %d holds the upstream's secret", i)
			}
		}
		if got[3].RequestID != requests[0] || got[2].RequestID != requests[1] {
			t.Errorf("request ids %s, %s; the answers said %v", got[3].RequestID, got[2].RequestID, requests)
		}
	})
}
