package foureyes

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// acting is a stand-in for the platform's handler that carries out a
// confirmed grant the way a guarded operation does: the change's audit
// entry names the proposal. It answers 201 the first time and, like an
// operation's compare-and-set, 409 when the grant was made already.
type acting struct {
	db    *store.DB
	calls atomic.Int64
	as    atomic.Value // the operator id the last call acted as
}

func (a *acting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	d, _ := httpapi.ConfirmedDecision(r.Context())
	a.as.Store(d.Operator.ID)
	done, err := audit.CarriedOut(r.Context(), a.db, d.ProposalID)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if done {
		w.WriteHeader(http.StatusConflict)
		return
	}
	if err := grant(r.Context(), a.db, d.ProposalID, d.Operator.ID); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// grant records the change that carries out proposal id, as by.
func grant(ctx context.Context, db *store.DB, id, by string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		return audit.Record(ctx, tx, audit.Change{Action: "grant.create", TargetType: "grant", TargetID: "grt_" + id,
			Confirms: id, By: auth.OperatorCaller(by)})
	})
}

// interrupted leaves a proposal as a node that stopped while confirming it
// does: claimed by the confirmer (op_checker unless named), executing,
// its outcome never recorded.
func interrupted(t *testing.T, s *Service, confirmer ...string) *Proposal {
	t.Helper()
	ctx := context.Background()
	p, err := s.propose(ctx, operator("op_maker", auth.RoleAppManager), ActionGrantCreate, "bank-create-grant", "app-manager",
		"POST", "/bank/v1/grants", []byte(`{"app_id":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	by := "op_checker"
	if len(confirmer) > 0 {
		by = confirmer[0]
	}
	if err := s.claim(ctx, p.ID, p.Action, StatusExecuting, auth.OperatorCaller(by).String(), ""); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRecoverFinishesAnInterruptedConfirmationOnce: a confirmation left
// executing by a stopped node is left alone while it may still be
// running; after RecoverAfter it is carried out once, as its confirmer,
// or only recorded when its change was committed before the stop (a
// second run would meet the operation's compare-and-set); a confirmer who
// was disabled since leaves it failed, with nothing run.
func TestRecoverFinishesAnInterruptedConfirmationOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		s, _ := newService(t, db, func() time.Time { return now })
		h := &acting{db: db}
		s.SetHandler(h)
		disabled := map[string]bool{}
		s.cfg.Operator = func(_ context.Context, id string) (*auth.Operator, error) {
			if disabled[id] {
				return nil, causeway.Errorf(causeway.EFORBIDDEN, "operator_disabled", "operator %s is disabled", id)
			}
			return operator(id, auth.RoleAppManager), nil
		}
		status := func(id string) *Proposal {
			t.Helper()
			p, err := s.Proposal(ctx, auth.BankProcess(), id)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		sweep := func(want int64) {
			t.Helper()
			if n, err := s.Recover(ctx); err != nil || n != want {
				t.Fatalf("Recover = %d, %v; want %d", n, err, want)
			}
		}

		notRun := interrupted(t, s)
		committed := interrupted(t, s)
		if err := grant(ctx, db, committed.ID, "op_checker"); err != nil {
			t.Fatal(err)
		}
		disabled["op_gone"] = true
		gone := interrupted(t, s, "op_gone")

		now = now.Add(DefaultRecoverAfter - time.Second)
		sweep(0)
		if p := status(notRun.ID); p.Status != StatusExecuting || h.calls.Load() != 0 {
			t.Fatalf("within RecoverAfter: %s after %d runs, want executing and none", p.Status, h.calls.Load())
		}

		now = now.Add(2 * time.Second)
		sweep(3)
		if p := status(notRun.ID); p.Status != StatusConfirmed || p.Result == nil || p.Result.Status != http.StatusCreated {
			t.Errorf("the request never run: %+v, want confirmed with 201", p)
		}
		if p := status(committed.ID); p.Status != StatusConfirmed || p.Result != nil || !strings.Contains(p.Reason, "earlier run") {
			t.Errorf("the request committed before the stop: %+v, want confirmed without running it", p)
		}
		if p := status(gone.ID); p.Status != StatusFailed || !strings.Contains(p.Reason, "operator_disabled") {
			t.Errorf("the disabled confirmer's: %+v, want failed saying why", p)
		}
		if n, as := h.calls.Load(), h.as.Load(); n != 1 || as != "op_checker" {
			t.Errorf("the handler ran %d times, last as %v; want once, as op_checker", n, as)
		}
		sweep(0)
		if n := h.calls.Load(); n != 1 {
			t.Errorf("a second Recover ran the request again: %d runs", n)
		}
	})
}

// TestAConfirmationThatMeetsItsOwnEarlierRunIsConfirmed: when the
// operation answers 409 because an earlier run of the same proposal
// committed meanwhile (a slow confirmation and Recover both ran it), the
// proposal is confirmed, not failed: the change is in the trail.
func TestAConfirmationThatMeetsItsOwnEarlierRunIsConfirmed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db, time.Now)
		p := interrupted(t, s)
		s.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The earlier run commits while this one runs; this one then
			// loses the compare-and-set.
			if err := grant(r.Context(), db, p.ID, "op_checker"); err != nil {
				t.Error(err)
			}
			w.WriteHeader(http.StatusConflict)
		}))
		status, code, err := s.carryOut(ctx, p, operator("op_checker", auth.RoleAppManager))
		if err != nil || status != StatusConfirmed || code != http.StatusConflict {
			t.Errorf("carryOut = %s %d, %v; want confirmed after a 409", status, code, err)
		}
		s.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusConflict) }))
		other := interrupted(t, s)
		if status, _, err := s.carryOut(ctx, other, operator("op_checker", auth.RoleAppManager)); err != nil || status != StatusFailed {
			t.Errorf("a 409 with nothing in the trail = %s, %v; want failed", status, err)
		}
	})
}
