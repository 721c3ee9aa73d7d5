package platform_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// change is a bank-side change a test made and expects in the trail.
type change struct{ action, target, requestID string }

// TestEveryBankSideChangeIsAuditedOverHTTP makes each kind of change the
// bank can make under /bank/v1, on both runtimes, and reads the trail
// back: one entry per change, in order, by the admin token's holder, with
// the request's id and the client's address; nothing for what apps do on
// their own or what the sandbox seeds. The chain verifies, its export is
// valid JSON Lines whose hashes recompute, the filters narrow it, and a
// row edited in the database breaks it.
func TestEveryBankSideChangeIsAuditedOverHTTP(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		bank := &client{t: t, base: n.URL, token: platformtest.AdminToken, doc: doc}
		var trail audit.EntryPage
		if bank.do("GET", "/bank/v1/audit", "/bank/v1/audit", nil).decode(t, &trail); len(trail.Data) != 0 {
			t.Fatalf("a fresh node's trail holds %d entries: seeding is not a decision", len(trail.Data))
		}
		a, _ := developerApp(t, n, doc, "audited@solarworld.example")

		var want []change
		must := func(status int, action, target string, res response) response {
			t.Helper()
			if res.status != status {
				t.Fatalf("%s: %d %s", action, res.status, res.body)
			}
			want = append(want, change{action, target, res.header.Get("X-Request-Id")})
			return res
		}
		var apps struct{ Data []struct{ ID string } }
		bank.do("GET", "/bank/v1/apps", "/bank/v1/apps", nil).decode(t, &apps)
		if len(apps.Data) != 1 {
			t.Fatalf("apps = %+v", apps)
		}
		appID := apps.Data[0].ID

		// Gateway and identity.
		must(200, "app.limits.set", appID, bank.do("PUT", "/bank/v1/apps/"+appID+"/limits", "/bank/v1/apps/{id}/limits",
			map[string]any{"requests_per_second": 100, "burst": 200, "daily_quota": 100000}))
		var key struct{ KID string }
		res := bank.do("POST", "/bank/v1/signing-keys/rotate", "/bank/v1/signing-keys/rotate", nil)
		res.decode(t, &key)
		must(200, "signing_key.rotate", key.KID, res)
		var up struct{ ID string }
		res = bank.do("POST", "/bank/v1/upstreams", "/bank/v1/upstreams", map[string]any{"name": "Cards",
			"base_url": "https://cards.bank.test/api", "path_prefix": "cards", "scope": "accounts:read"})
		res.decode(t, &up)
		must(201, "upstream.create", up.ID, res)
		must(204, "upstream.delete", up.ID, bank.do("DELETE", "/bank/v1/upstreams/"+up.ID, "/bank/v1/upstreams/{id}", nil))

		// The sandbox bank: grants, a deposit, the bank's payment.
		var customers struct{ Data []struct{ ID string } }
		bank.do("GET", "/bank/v1/customers", "/bank/v1/customers", nil).decode(t, &customers)
		cus := customers.Data[0].ID
		must(201, "grant.create", appID, bank.do("POST", "/bank/v1/grants", "/bank/v1/grants", map[string]any{"app_id": appID, "customer_id": cus}))
		// Granting what the app already has changes nothing.
		if res := bank.do("POST", "/bank/v1/grants", "/bank/v1/grants", map[string]any{"app_id": appID, "customer_id": cus}); res.status != 201 {
			t.Fatalf("grant again: %d %s", res.status, res.body)
		}
		must(204, "grant.delete", appID, bank.do("DELETE", "/bank/v1/grants/"+appID+"/"+cus, "/bank/v1/grants/{app_id}/{customer_id}", nil))
		var accounts struct {
			Data []struct{ ID, Currency string }
		}
		bank.do("GET", "/bank/v1/accounts?customer_id="+cus, "/bank/v1/accounts", nil).decode(t, &accounts)
		acc := accounts.Data[0]
		amount := func(s string) map[string]any { return map[string]any{"amount": s, "currency": acc.Currency} }
		must(201, "account.deposit", acc.ID, bank.do("POST", "/bank/v1/accounts/"+acc.ID+"/deposits", "/bank/v1/accounts/{id}/deposits",
			map[string]any{"amount": amount("100.00")}))
		var pay struct{ ID, Status string }
		res = bank.do("POST", "/bank/v1/payments", "/bank/v1/payments", map[string]any{"debtor_account_id": acc.ID,
			"creditor": map[string]any{"iban": "DE89370400440532013000", "name": "Solar Installers GmbH"}, "amount": amount("12.34")})
		res.decode(t, &pay)
		must(201, "payment.create", pay.ID, res)

		// Held payments: the app's own payments and its own SPI are not the
		// bank's; the decisions on them are.
		reviewer := spitest.New(t, fraudAnswer{Decision: "review", Score: 70, Reason: "manual check"})
		var reg struct{ ID string }
		a.must(201, "POST", "/v1/spi-registrations", map[string]any{"extension_point": "payments.fraud-check", "url": reviewer.URL}, &reg)
		var own struct{ Data []struct{ ID string } }
		a.do("GET", "/v1/accounts", "/v1/accounts", nil).decode(t, &own)
		var held []string
		for range 2 {
			var p struct{ ID, Status string }
			a.must(201, "POST", "/v1/payments", map[string]any{"debtor_account_id": own.Data[0].ID, "amount": money("1.00"),
				"creditor": map[string]any{"iban": "FR1420041010050500013M02606", "name": "Shop"}}, &p)
			if p.Status != "held" {
				t.Fatalf("payment under review = %+v", p)
			}
			held = append(held, p.ID)
		}
		a.must(204, "DELETE", "/v1/spi-registrations/"+reg.ID, nil, nil)
		must(200, "payment.release", held[0], bank.do("POST", "/bank/v1/payments/"+held[0]+"/release", "/bank/v1/payments/{id}/release",
			map[string]any{"reason": "checked"}))
		must(200, "payment.reject", held[1], bank.do("POST", "/bank/v1/payments/"+held[1]+"/reject", "/bank/v1/payments/{id}/reject",
			map[string]any{"reason": "fraud"}))

		// SPIs.
		a.must(201, "POST", "/v1/spi-registrations", map[string]any{"extension_point": "accounts.lookup",
			"url": "http://127.0.0.1:1/lookup", "scope": "bank"}, &reg)
		path := "/bank/v1/spi-registrations/" + reg.ID
		must(200, "spi.activate", reg.ID, bank.do("POST", path+"/activate", "/bank/v1/spi-registrations/{id}/activate", map[string]any{"priority": 1}))
		must(200, "spi.configure", reg.ID, bank.do("PATCH", path, "/bank/v1/spi-registrations/{id}", map[string]any{"timeout_ms": 500}))
		must(200, "spi.deactivate", reg.ID, bank.do("POST", path+"/deactivate", "/bank/v1/spi-registrations/{id}/deactivate", nil))
		var points struct {
			Data []map[string]json.RawMessage `json:"data"`
		}
		bank.do("GET", "/bank/v1/extension-points", "/bank/v1/extension-points", nil).decode(t, &points)
		define := map[string]any{"name": "cards.limit-check", "description": "Ask before raising a card limit"}
		for _, p := range points.Data {
			if string(p["name"]) == `"payments.fraud-check"` {
				for _, k := range []string{"request_schema", "response_schema", "default_timeout_ms", "max_timeout_ms", "stand_in"} {
					define[k] = p[k]
				}
			}
		}
		must(201, "extension_point.define", "cards.limit-check", bank.do("POST", "/bank/v1/extension-points", "/bank/v1/extension-points", define))

		// Data partnering.
		var ds struct{ ID string }
		res = bank.do("POST", "/bank/v1/datasets", "/bank/v1/datasets", map[string]any{"name": "audited", "licence": "test",
			"source": map[string]any{"kind": "generator", "generator": "synthetic", "rows": 5, "seed": 7}})
		res.decode(t, &ds)
		must(201, "dataset.publish", ds.ID, res)
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		var dar struct{ ID string }
		a.must(201, "POST", "/v1/dataset-access-requests", map[string]any{"dataset_id": ds.ID, "purpose": "a churn model",
			"duration_days": 30, "recipient": id.Recipient().String()}, &dar)
		must(200, "dataset_access.approve", dar.ID, bank.do("POST", "/bank/v1/dataset-access-requests/"+dar.ID+"/approve",
			"/bank/v1/dataset-access-requests/{id}/approve", map[string]any{"reason": "fine"}))

		// Events.
		must(201, "event_type.register", "branch.visit.ended", bank.do("POST", "/bank/v1/event-types", "/bank/v1/event-types",
			map[string]any{"type": "branch.visit.ended", "description": "A visit to a branch ended", "schema": map[string]any{"type": "object"}}))
		must(202, "event.publish", "evt_audited", bank.do("POST", "/bank/v1/events", "/bank/v1/events",
			map[string]any{"specversion": "1.0", "id": "evt_audited", "type": "branch.visit.ended", "source": "/bank/branches", "data": map[string]any{}},
			"Content-Type", "application/cloudevents+json"))

		// Last, as it ends the app's tokens.
		must(200, "app.suspend", appID, bank.do("POST", "/bank/v1/apps/"+appID+"/suspend", "/bank/v1/apps/{id}/suspend", nil))
		must(200, "app.approve", appID, bank.do("POST", "/bank/v1/apps/"+appID+"/approve", "/bank/v1/apps/{id}/approve", nil))

		got := listTrail(t, bank, "")
		if len(got) != len(want) {
			for _, e := range got {
				t.Logf("%d %s %s", e.Seq, e.Action, e.TargetID)
			}
			t.Fatalf("%d entries, want %d", len(got), len(want))
		}
		for i, w := range want {
			e := got[len(got)-1-i] // newest first
			if e.Action != w.action || e.TargetID != w.target || e.Actor != "operator:admin-token" || e.ClientAddr != "127.0.0.1" ||
				e.RequestID == "" || (w.requestID != "" && e.RequestID != w.requestID) {
				t.Errorf("entry %d = %s %s by %s from %s (%s), want %s %s (%s)", e.Seq, e.Action, e.TargetID, e.Actor,
					e.ClientAddr, e.RequestID, w.action, w.target, w.requestID)
			}
		}

		var v audit.Verdict
		if bank.do("GET", "/bank/v1/audit/verify", "/bank/v1/audit/verify", nil).decode(t, &v); !v.OK || v.Entries != int64(len(want)) ||
			v.Head != got[0].Hash {
			t.Errorf("verify = %+v", v)
		}
		checkExport(t, n, len(want))

		for query, count := range map[string]int{
			"action=payment.*": 3, "target_id=" + appID: 5, "operator=admin-token": len(want), "operator=op_nobody": 0,
			"target_type=spi_registration&action=spi.configure": 1,
		} {
			if got := listTrail(t, bank, query); len(got) != count {
				t.Errorf("?%s: %d entries, want %d", query, len(got), count)
			}
		}
		for query, code := range map[string]string{"from=yesterday": "invalid_time", "action=App.Approve": "invalid_action",
			"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z": "invalid_range"} {
			res := bank.do("GET", "/bank/v1/audit?"+query, "/bank/v1/audit", nil)
			var p struct{ Code string }
			if res.decode(t, &p); res.status < 400 || res.status >= 500 || p.Code != code {
				t.Errorf("?%s: %d %s, want %s", query, res.status, res.body, code)
			}
		}

		// Someone with access to the database rewrites who approved.
		if _, err := n.DB.ExecContext(context.Background(), `UPDATE audit_entries SET actor = 'operator:someone-else' WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		if bank.do("GET", "/bank/v1/audit/verify", "/bank/v1/audit/verify", nil).decode(t, &v); v.OK || v.BrokenAt != 2 || v.Reason == "" {
			t.Errorf("verify after an edit = %+v", v)
		}
	})
}

// listTrail reads every page of GET /bank/v1/audit?query, newest first.
func listTrail(t *testing.T, bank *client, query string) []*audit.Entry {
	t.Helper()
	var out []*audit.Entry
	cursor := ""
	for range 100 {
		var pg audit.EntryPage
		res := bank.do("GET", fmt.Sprintf("/bank/v1/audit?limit=7&%s&cursor=%s", query, cursor), "/bank/v1/audit", nil)
		if res.status != 200 {
			t.Fatalf("list ?%s: %d %s", query, res.status, res.body)
		}
		res.decode(t, &pg)
		out = append(out, pg.Data...)
		if cursor = pg.NextCursor; cursor == "" {
			return out
		}
	}
	t.Fatal("the trail's pages never ended")
	return nil
}

// checkExport reads the JSON Lines export: one entry a line, oldest first,
// each line's hash recomputed from its own fields and chained to the line
// before, as someone checking an archived export would.
func checkExport(t *testing.T, n *platformtest.Node, entries int) {
	t.Helper()
	res, body := testkit.Fetch(t, n.URL+"/bank/v1/audit/export", map[string]string{"Authorization": "Bearer " + platformtest.AdminToken})
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/jsonl" {
		t.Fatalf("export: %d %s %.300s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	prev, lines := "", 0
	for sc.Scan() {
		var e audit.Entry
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %d is not an entry: %v: %s", lines+1, err, sc.Text())
		}
		lines++
		if e.Seq != int64(lines) || e.PrevHash != prev || e.ComputeHash() != e.Hash {
			t.Errorf("line %d: seq %d, prev_hash %q after %q, hash %q recomputes to %q", lines, e.Seq, e.PrevHash, prev, e.Hash, e.ComputeHash())
		}
		prev = e.Hash
	}
	if lines != entries {
		t.Errorf("export has %d lines, want %d", lines, entries)
	}
	res, body = testkit.Fetch(t, n.URL+"/bank/v1/audit/export?after=3&limit=2", map[string]string{"Authorization": "Bearer " + platformtest.AdminToken})
	if got := strings.Count(string(body), "\n"); res.StatusCode != 200 || got != 2 || !strings.HasPrefix(string(body), `{"seq":4,`) {
		t.Errorf("export after 3, 2 of them: %d %s", res.StatusCode, body)
	}
	res, _ = testkit.Fetch(t, n.URL+"/bank/v1/audit/export", nil)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("export without the admin token: %d", res.StatusCode)
	}
}
