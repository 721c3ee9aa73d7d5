package datashare_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func TestAccessRequestRefusesBadInputWithClearProblems(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		recipient := newIdentity(t).Recipient().String()
		good := func() map[string]any {
			return map[string]any{"dataset_id": d.ID, "purpose": "fraud model", "duration_days": 30, "recipient": recipient}
		}
		with := func(k string, v any) map[string]any {
			b := good()
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}
		tests := []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"malformed recipient", with("recipient", "age1notakey"), 422, "invalid_recipient"},
			{"ssh key as recipient", with("recipient", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"), 422, "invalid_recipient"},
			{"secret key as recipient", with("recipient", newIdentity(t).String()), 422, "invalid_recipient"},
			{"missing recipient", with("recipient", nil), 422, "validation_failed"},
			{"unknown dataset", with("dataset_id", "ds_01jqz6k8m0p2r4t6v8w0y2a4c6"), 422, "unknown_dataset"},
			{"empty dataset", with("dataset_id", ""), 422, "unknown_dataset"},
			{"zero duration", with("duration_days", 0), 422, "invalid_duration"},
			{"negative duration", with("duration_days", -3), 422, "invalid_duration"},
			{"excessive duration", with("duration_days", 366), 422, "invalid_duration"},
			{"fractional duration", with("duration_days", 1.5), 422, "validation_failed"},
			{"missing purpose", with("purpose", nil), 422, "validation_failed"},
			{"blank purpose", with("purpose", "   "), 422, "invalid_purpose"},
			{"purpose too long", with("purpose", strings.Repeat("é", 2001)), 422, "invalid_purpose"},
			{"unknown format", with("format", "parquet"), 422, "invalid_format"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.t = t
				h.problem("POST", "/v1/dataset-access-requests", "app_a", tt.body, tt.status, tt.code)
			})
		}
		h.t = t
		// A purpose of exactly 2000 characters is fine.
		var r datashare.AccessRequest
		h.json("POST", "/v1/dataset-access-requests", "app_a", with("purpose", strings.Repeat("é", 2000)), 201, &r)
		code, _, _ := h.do("POST", "/v1/dataset-access-requests", "app_a", nil)
		if code != 400 && code != 422 {
			t.Errorf("no body = %d, want 400 or 422", code)
		}
	})
}

func TestAppsSeeOnlyTheirOwnRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		rcpt := newIdentity(t).Recipient().String()
		mine := h.request("app_a", d.ID, rcpt)
		if !ids(mine.ID, "dar") || mine.Status != datashare.StatusAwaitingApproval || mine.Format != "csv" || mine.DatasetName != "s" {
			t.Fatalf("created = %+v", mine)
		}
		h.request("app_b", d.ID, rcpt)
		var pg page.Page[*datashare.AccessRequest]
		h.json("GET", "/v1/dataset-access-requests", "app_a", nil, 200, &pg)
		if len(pg.Data) != 1 || pg.Data[0].ID != mine.ID {
			t.Fatalf("app_a lists %d requests", len(pg.Data))
		}
		h.problem("GET", "/v1/dataset-access-requests/"+mine.ID, "app_b", nil, 404, "not_found")
		var bank page.Page[*datashare.AccessRequest]
		h.json("GET", "/bank/v1/dataset-access-requests?status=awaiting_approval", adminToken, nil, 200, &bank)
		if len(bank.Data) != 2 {
			t.Errorf("the bank sees %d requests awaiting approval, want 2", len(bank.Data))
		}
		h.json("GET", "/bank/v1/dataset-access-requests?limit=1", adminToken, nil, 200, &bank)
		if len(bank.Data) != 1 || bank.NextCursor == "" {
			t.Fatalf("first page = %d, cursor %q", len(bank.Data), bank.NextCursor)
		}
		next := bank.NextCursor
		bank = page.Page[*datashare.AccessRequest]{}
		h.json("GET", "/bank/v1/dataset-access-requests?limit=1&cursor="+next, adminToken, nil, 200, &bank)
		if len(bank.Data) != 1 || bank.NextCursor != "" {
			t.Errorf("second page = %d, cursor %q", len(bank.Data), bank.NextCursor)
		}
		h.problem("GET", "/bank/v1/dataset-access-requests?cursor=not-a-cursor%21", adminToken, nil, 400, "invalid_cursor")
	})
}

func TestBankDecisionsRecordWhoWhenWhyAndTellTheRequester(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		rcpt := newIdentity(t).Recipient().String()
		a := h.request("app_a", d.ID, rcpt)
		b := h.request("app_a", d.ID, rcpt)

		before := h.clock.Now()
		approved := h.approve(a.ID)
		if approved.Status != "approved" || approved.DecidedBy != "officer@bank" || approved.Reason != "fine" || approved.DecidedAt == nil ||
			approved.DecidedAt.Before(before.Add(-time.Second)) {
			t.Fatalf("approved = %+v", approved)
		}
		if want := approved.DecidedAt.AddDate(0, 0, 30); approved.ExpiresAt == nil || approved.ExpiresAt.Sub(want).Abs() > time.Second {
			t.Errorf("expires_at = %v, want decided_at + 30 days (%v)", approved.ExpiresAt, want)
		}
		if len(approved.Content) != 1 || approved.Content[0].Status != datashare.ContentPending || approved.Content[0].Format != "csv" {
			t.Errorf("content after approval = %+v", approved.Content)
		}

		var rejected datashare.AccessRequest
		h.json("POST", "/bank/v1/dataset-access-requests/"+b.ID+"/reject", adminToken, map[string]any{"reason": "purpose too broad"}, 200, &rejected)
		if rejected.Status != "rejected" || rejected.DecidedBy != "bank" || rejected.Reason != "purpose too broad" {
			t.Errorf("rejected = %+v", rejected)
		}

		// Illegal transitions.
		h.problem("POST", "/bank/v1/dataset-access-requests/"+b.ID+"/approve", adminToken, map[string]any{}, 409, "invalid_transition")
		h.problem("POST", "/bank/v1/dataset-access-requests/"+b.ID+"/revoke", adminToken, map[string]any{}, 409, "invalid_transition")
		h.problem("POST", "/bank/v1/dataset-access-requests/"+a.ID+"/approve", adminToken, map[string]any{}, 409, "invalid_transition")
		h.problem("POST", "/bank/v1/dataset-access-requests/"+a.ID+"/reject", adminToken, map[string]any{}, 409, "invalid_transition")
		c := h.request("app_a", d.ID, rcpt)
		h.problem("POST", "/bank/v1/dataset-access-requests/"+c.ID+"/revoke", adminToken, map[string]any{}, 409, "invalid_transition")
		h.problem("POST", "/bank/v1/dataset-access-requests/dar_01jqz9a0c2e4g6j8m0p2r4t6v8/approve", adminToken, map[string]any{}, 404, "not_found")
		past := h.clock.Now().Add(-time.Hour)
		h.problem("POST", "/bank/v1/dataset-access-requests/"+c.ID+"/approve", adminToken, map[string]any{"expires_at": past}, 422, "invalid_expiry")
		far := h.clock.Now().AddDate(2, 0, 0)
		h.problem("POST", "/bank/v1/dataset-access-requests/"+c.ID+"/approve", adminToken, map[string]any{"expires_at": far}, 422, "invalid_expiry")
		h.problem("POST", "/bank/v1/dataset-access-requests/"+c.ID+"/approve", "app_a", map[string]any{}, 401, "unauthorized")
		// An approval with an explicit expiry.
		soon := h.clock.Now().Add(48 * time.Hour).Truncate(time.Second)
		var cApproved datashare.AccessRequest
		h.json("POST", "/bank/v1/dataset-access-requests/"+c.ID+"/approve", adminToken, map[string]any{"expires_at": soon}, 200, &cApproved)
		if !cApproved.ExpiresAt.Equal(soon) {
			t.Errorf("expires_at = %v, want %v", cApproved.ExpiresAt, soon)
		}

		var revoked datashare.AccessRequest
		h.json("POST", "/bank/v1/dataset-access-requests/"+a.ID+"/revoke", adminToken, map[string]any{"by": "dpo", "reason": "contract ended"}, 200, &revoked)
		if revoked.Status != "revoked" || revoked.RevokedBy != "dpo" || revoked.RevokeReason != "contract ended" || revoked.RevokedAt == nil {
			t.Errorf("revoked = %+v", revoked)
		}
		h.problem("POST", "/bank/v1/dataset-access-requests/"+a.ID+"/revoke", adminToken, map[string]any{}, 409, "invalid_transition")

		// One event per decision, addressed to the requesting app only.
		rows, err := db.QueryContext(context.Background(), `SELECT type, source, subject, app_id, data FROM outbox_events ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var typ, source, subject, app, data string
			if err := rows.Scan(&typ, &source, &subject, &app, &data); err != nil {
				t.Fatal(err)
			}
			if source != datashare.EventSource || app != "app_a" {
				t.Errorf("event %s: source %s, app %q", typ, source, app)
			}
			var body map[string]any
			json.Unmarshal([]byte(data), &body)
			if body["id"] != subject || body["status"] != strings.TrimPrefix(typ, "dataset.access.") || body["dataset_id"] != d.ID {
				t.Errorf("event %s data = %s", typ, data)
			}
			if typ == "dataset.access.rejected" && body["reason"] != "purpose too broad" {
				t.Errorf("rejection event lacks the reason: %s", data)
			}
			if typ == "dataset.access.approved" && body["expires_at"] == nil {
				t.Errorf("approval event lacks expires_at: %s", data)
			}
			got = append(got, typ+" "+subject)
		}
		want := []string{"dataset.access.approved " + a.ID, "dataset.access.rejected " + b.ID, "dataset.access.approved " + c.ID, "dataset.access.revoked " + a.ID}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("events = %v, want %v", got, want)
		}

		// The audit trail holds the request and each decision.
		var audit page.Page[*datashare.AuditEntry]
		h.json("GET", "/bank/v1/dataset-access-requests/"+a.ID+"/audit", adminToken, nil, 200, &audit)
		var actions []string
		for _, e := range audit.Data {
			actions = append(actions, e.Actor+" "+e.Action)
		}
		if strings.Join(actions, ",") != "app:app_a requested,bank:officer@bank approved,bank:dpo revoked" {
			t.Errorf("audit = %v", actions)
		}

		// A decision needs no body.
		noBody := h.request("app_a", d.ID, rcpt)
		var nb datashare.AccessRequest
		h.json("POST", "/bank/v1/dataset-access-requests/"+noBody.ID+"/reject", adminToken, nil, 200, &nb)
		if nb.Status != "rejected" || nb.DecidedBy != "bank" {
			t.Errorf("reject without a body = %+v", nb)
		}
	})
}

func TestExpiredRequestsReadAsExpiredAndTheSweeperRecordsIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		h.approve(r.ID)
		h.clock.Advance(31 * 24 * time.Hour)
		var got datashare.AccessRequest
		h.json("GET", "/v1/dataset-access-requests/"+r.ID, "app_a", nil, 200, &got)
		if got.Status != datashare.StatusExpired {
			t.Fatalf("status after expiry = %s", got.Status)
		}
		var pg page.Page[*datashare.AccessRequest]
		h.json("GET", "/bank/v1/dataset-access-requests?status=expired", adminToken, nil, 200, &pg)
		if len(pg.Data) != 1 {
			t.Errorf("expired list has %d", len(pg.Data))
		}
		h.json("GET", "/bank/v1/dataset-access-requests?status=approved", adminToken, nil, 200, &pg)
		if len(pg.Data) != 0 {
			t.Errorf("approved list still has %d", len(pg.Data))
		}
		h.problem("POST", "/bank/v1/dataset-access-requests/"+r.ID+"/revoke", adminToken, map[string]any{}, 409, "invalid_transition")
		n, err := h.svc.Sweep(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("sweep = %d, %v", n, err)
		}
		if n, _ := h.svc.Sweep(context.Background()); n != 0 {
			t.Errorf("second sweep expired %d more", n)
		}
		var audit page.Page[*datashare.AuditEntry]
		h.json("GET", "/bank/v1/dataset-access-requests/"+r.ID+"/audit", adminToken, nil, 200, &audit)
		if last := audit.Data[len(audit.Data)-1]; last.Action != "expired" || last.Actor != "system" {
			t.Errorf("last audit entry = %+v", last)
		}
	})
}

// TestOnlyTheLeaderSweeps: of nodes sharing a database, only the one the
// platform names leader expires access in its periodic sweep; another
// takes over by becoming leader.
func TestOnlyTheLeaderSweeps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var leader atomic.Bool
		asked := make(chan struct{}, 1)
		h := newHub(t, db, func(o *datashare.Options) {
			o.Leader = func() bool {
				select {
				case asked <- struct{}{}:
				default:
				}
				return leader.Load()
			}
		})
		d := h.publishSynthetic("s", 5)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		h.approve(r.ID)
		h.clock.Advance(31 * 24 * time.Hour)
		expired := func() bool {
			var audit page.Page[*datashare.AuditEntry]
			h.json("GET", "/bank/v1/dataset-access-requests/"+r.ID+"/audit", adminToken, nil, 200, &audit)
			return audit.Data[len(audit.Data)-1].Action == "expired"
		}

		// Not the leader: Run asks, and does not sweep.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.svc.Run(ctx) }()
		<-asked
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if expired() {
			t.Fatal("a node that is not the leader swept")
		}

		// The leader sweeps at once.
		leader.Store(true)
		ctx, cancel = context.WithCancel(context.Background())
		go func() { done <- h.svc.Run(ctx) }()
		deadline := time.Now().Add(20 * time.Second)
		for !expired() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		if !expired() {
			t.Fatal("the leader did not sweep within 20s")
		}
	})
}
