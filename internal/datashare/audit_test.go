package datashare_test

import (
	"context"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// TestTheBanksDataDecisionsAreAudited publishes a dataset and decides
// access requests over HTTP: an entry per decision, with the status it
// left and the one it reached, by the admin token's holder; a retry with
// nothing failed changes nothing and has no entry, a retry of failed
// content has one; the requester's own request is not the bank's change.
func TestTheBanksDataDecisionsAreAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		ctx := context.Background()
		d := h.publishSynthetic("audited", 5)
		rcpt := newIdentity(t).Recipient().String()
		a := h.request("app_a", d.ID, rcpt)
		b := h.request("app_a", d.ID, rcpt)
		h.approve(a.ID)
		h.json("POST", "/bank/v1/dataset-access-requests/"+b.ID+"/reject", adminToken, map[string]any{"reason": "purpose too broad"}, 200, nil)
		h.json("POST", "/bank/v1/dataset-access-requests/"+a.ID+"/retry-content", adminToken, nil, 200, nil)
		if _, err := db.ExecContext(ctx, `UPDATE datashare_contents SET status = 'failed' WHERE request_id = $1`, a.ID); err != nil {
			t.Fatal(err)
		}
		h.json("POST", "/bank/v1/dataset-access-requests/"+a.ID+"/retry-content", adminToken, nil, 200, nil)
		h.json("POST", "/bank/v1/dataset-access-requests/"+a.ID+"/revoke", adminToken, map[string]any{"reason": "contract ended"}, 200, nil)

		var got []*audit.Entry
		err := audit.New(db).Export(ctx, auth.OperatorCaller("op_test"), audit.Filter{}, 0, 0, func(e *audit.Entry) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ action, target, before, after string }{
			{"dataset.publish", d.ID, "", `"name":"audited"`},
			{"dataset_access.approve", a.ID, `{"status":"awaiting_approval"}`, `"status":"approved"`},
			{"dataset_access.reject", b.ID, `{"status":"awaiting_approval"}`, `"reason":"purpose too broad"`},
			{"dataset_access.retry_content", a.ID, `"content":"failed"`, `"content":"pending"`},
			{"dataset_access.revoke", a.ID, `{"status":"approved"}`, `"status":"revoked"`},
		}
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Action != w.action || g.TargetID != w.target || g.Actor != "operator:admin-token" || g.RequestID == "" ||
				!strings.Contains(string(g.Before), w.before) || !strings.Contains(string(g.After), w.after) {
				t.Errorf("entry %d = %s %s by %s (%s): %s -> %s, want %+v", i, g.Action, g.TargetID, g.Actor, g.RequestID, g.Before, g.After, w)
			}
		}
		if got[0].TargetType != "dataset" || got[1].TargetType != "dataset_access_request" {
			t.Errorf("target types %s, %s", got[0].TargetType, got[1].TargetType)
		}
		// The sandbox's own datasets are the bank's process, not a decision.
		bank := auth.WithCaller(ctx, auth.BankProcess())
		if _, _, err := h.svc.EnsureDataset(bank, datashare.NewDataset{Name: "sandbox", Licence: "test",
			Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenSynthetic, Rows: 3, Seed: 1}}); err != nil {
			t.Fatal(err)
		}
		if pg, err := audit.New(db).List(ctx, auth.OperatorCaller("op_test"), audit.Filter{TargetType: "dataset"}, 0, ""); err != nil || len(pg.Data) != 1 {
			t.Errorf("dataset entries after the sandbox's: %v, %v", pg, err)
		}
	})
}
