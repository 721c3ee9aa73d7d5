package datashare_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// racers is how many officers decide at once in the race tests.
const racers = 10

// count runs a COUNT(*) query.
func count(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// decisionsOf counts a request's dataset.access.* events and its audit
// entries of the given action.
func decisionsOf(t *testing.T, db *store.DB, id, action string) (events, audits int) {
	t.Helper()
	return count(t, db, `SELECT count(*) FROM outbox_events WHERE subject = $1 AND type = $2`, id, "dataset.access."+action),
		count(t, db, `SELECT count(*) FROM datashare_audit WHERE request_id = $1 AND action = $2`, id, action)
}

func TestTwoOfficersApprovingOneDataRequestGrantItOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		winner := testkit.OneWinner(t, testkit.Race(racers, func(i int) error {
			_, err := h.svc.Approve(context.Background(), r.ID, datashare.Decision{By: fmt.Sprintf("officer %d", i)})
			return err
		}), causeway.ECONFLICT, "invalid_transition")
		got, err := h.svc.AccessRequest(context.Background(), auth.BankProcess(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != datashare.StatusApproved || got.DecidedBy != fmt.Sprintf("officer %d", winner) {
			t.Errorf("after the race: %s by %q, want approved by officer %d", got.Status, got.DecidedBy, winner)
		}
		if events, audits := decisionsOf(t, db, r.ID, "approved"); events != 1 || audits != 1 {
			t.Errorf("%d approval events and %d audit entries, want 1 and 1", events, audits)
		}
		if n := count(t, db, `SELECT count(*) FROM datashare_contents WHERE request_id = $1`, r.ID); n != 1 {
			t.Errorf("%d content jobs queued, want 1", n)
		}
	})
}

func TestOfficersApprovingAndRejectingOneDataRequestAtOnceTakeOneDecision(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		action := func(i int) string {
			if i%2 == 0 {
				return "approved"
			}
			return "rejected"
		}
		winner := testkit.OneWinner(t, testkit.Race(racers, func(i int) error {
			var err error
			if action(i) == "approved" {
				_, err = h.svc.Approve(context.Background(), r.ID, datashare.Decision{})
			} else {
				_, err = h.svc.Reject(context.Background(), r.ID, datashare.Decision{})
			}
			return err
		}), causeway.ECONFLICT, "invalid_transition")
		got, err := h.svc.AccessRequest(context.Background(), auth.BankProcess(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != action(winner) {
			t.Errorf("status %s, want the winner's %s", got.Status, action(winner))
		}
		ae, aa := decisionsOf(t, db, r.ID, "approved")
		re, ra := decisionsOf(t, db, r.ID, "rejected")
		if ae+re != 1 || aa+ra != 1 {
			t.Errorf("events: %d approved, %d rejected; audit: %d approved, %d rejected; want one decision", ae, re, aa, ra)
		}
	})
}

func TestTwoOfficersRevokingOneGrantRevokeItOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		h.approve(r.ID)
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := h.svc.Revoke(context.Background(), r.ID, datashare.Decision{Reason: "contract ended"})
			return err
		}), causeway.ECONFLICT, "invalid_transition")
		if got, _ := h.svc.AccessRequest(context.Background(), auth.BankProcess(), r.ID); got.Status != datashare.StatusRevoked {
			t.Errorf("status after the race = %s", got.Status)
		}
		if events, audits := decisionsOf(t, db, r.ID, "revoked"); events != 1 || audits != 1 {
			t.Errorf("%d revocation events and %d audit entries, want 1 and 1", events, audits)
		}
	})
}

// An agent reporting a failed job while the bank revokes the grant: the
// failure must not put the retired content back in the queue.
func TestAnAgentFailingAJobWhileTheBankRevokesLeavesItRetired(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		ctx := context.Background()
		d := h.publishSynthetic("s", 5)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		h.approve(r.ID)
		jobs, err := h.svc.Jobs(ctx, 10)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("jobs = %v, %v", jobs, err)
		}
		job, err := h.svc.Claim(ctx, jobs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		errs := testkit.Race(racers, func(i int) error {
			if i == 0 {
				_, err := h.svc.Revoke(ctx, r.ID, datashare.Decision{})
				return err
			}
			// After the revocation the agent is told to stop: access_ended
			// if it sees the request revoked, lease_lost if the content
			// was retired under it.
			switch err := h.svc.FailContent(ctx, job.ID, job.Lease, "source unreachable"); causeway.ErrorCode(err) {
			case "access_ended", "lease_lost":
				return nil
			default:
				return err
			}
		})
		for _, err := range errs {
			if err != nil {
				t.Errorf("revoke or fail: %v", err)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM datashare_contents WHERE request_id = $1 AND status <> 'deleted'`, r.ID); n != 0 {
			t.Errorf("%d contents of a revoked request are not retired", n)
		}
		if jobs, err := h.svc.Jobs(ctx, 10); err != nil || len(jobs) != 0 {
			t.Errorf("jobs after revocation = %v, %v", jobs, err)
		}
	})
}

// Who sees what of data partnering is decided from the Caller: the
// catalog for every app and developer, where the data comes from only for
// the bank, a request for its app and the bank; the zero Caller nothing.
// A bank bool used to widen the dataset view.
func TestEachCallerSeesItsShareOfDataPartnering(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHub(t, db)
		d := h.publishSynthetic("s", 5)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		bank := auth.OperatorCaller(auth.AdminTokenOperator)
		if got, err := h.svc.Dataset(ctx, bank, d.ID); err != nil || got.Source == nil {
			t.Errorf("the bank's view of a dataset: %+v, %v", got, err)
		}
		for name, c := range map[string]auth.Caller{"an app": auth.AppCaller("app_b"), "a developer": auth.DeveloperCaller("dev_1")} {
			if got, err := h.svc.Dataset(ctx, c, d.ID); err != nil || got.Source != nil {
				t.Errorf("%s's view of a dataset: %+v, %v; want it without its source", name, got, err)
			}
		}
		if _, err := h.svc.Dataset(ctx, auth.Caller{}, d.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
			t.Errorf("nobody reads a dataset: %v", err)
		}
		if pg, err := h.svc.Datasets(ctx, auth.Caller{}, 0, ""); err != nil || len(pg.Data) != 0 {
			t.Errorf("nobody lists datasets: %v %v", pg, err)
		}
		for name, c := range map[string]auth.Caller{"nobody": {}, "another app": auth.AppCaller("app_b"), "a developer": auth.DeveloperCaller("dev_1")} {
			if _, err := h.svc.AccessRequest(ctx, c, r.ID); causeway.ErrorKind(err) != causeway.ENOTFOUND {
				t.Errorf("%s reads the request: %v", name, err)
			}
			if pg, err := h.svc.AccessRequests(ctx, c, datashare.RequestFilter{AppID: "app_a"}); err != nil || len(pg.Data) != 0 {
				t.Errorf("%s lists the request by naming its app: %v %v", name, pg, err)
			}
			if _, err := h.svc.OpenContent(ctx, c, r.ID, ""); causeway.ErrorKind(err) != causeway.EFORBIDDEN {
				t.Errorf("%s opens its content: %v", name, err)
			}
		}
		if _, err := h.svc.RequestAccess(ctx, auth.Caller{}, datashare.NewAccessRequest{DatasetID: d.ID, Purpose: "x", DurationDays: 1,
			Recipient: newIdentity(t).Recipient().String()}); causeway.ErrorKind(err) != causeway.EFORBIDDEN {
			t.Errorf("nobody asks for data: %v", err)
		}
		if got, err := h.svc.AccessRequest(ctx, auth.AppCaller("app_a"), r.ID); err != nil || got.ID != r.ID {
			t.Errorf("its app reads the request: %v %v", got, err)
		}
	})
}
