package foureyes

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// counting is a stand-in for the platform's handler: it counts the
// confirmed requests it is asked to carry out and answers 201.
type counting struct{ calls atomic.Int64 }

func (c *counting) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.calls.Add(1)
	w.WriteHeader(http.StatusCreated)
}

func newService(t *testing.T, db *store.DB, now func() time.Time) (*Service, *counting) {
	t.Helper()
	if err := audit.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	s, err := New(db, Config{Actions: Actions, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	h := &counting{}
	s.SetHandler(h)
	return s, h
}

func operator(id string, roles ...auth.Role) *auth.Operator {
	return &auth.Operator{ID: id, Roles: auth.NewRoles(roles...)}
}

func TestAProposalIsDecidedOnceByASecondOperatorBeforeItExpires(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		s, h := newService(t, db, func() time.Time { return now })
		maker := operator("op_maker", auth.RoleAppManager)
		p, err := s.propose(ctx, maker, ActionGrantCreate, "bank-create-grant", "app-manager", "POST", "/bank/v1/grants", []byte(`{"app_id":"a"}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Confirm(ctx, maker, p.ID); causeway.ErrorCode(err) != "same_operator" {
			t.Errorf("the proposer confirming = %v", err)
		}
		if _, err := s.Confirm(ctx, auth.AdminTokenHolder(), p.ID); causeway.ErrorCode(err) != "operator_only" {
			t.Errorf("the admin token confirming = %v", err)
		}
		if _, err := s.Confirm(ctx, operator("op_risk", auth.RoleRiskOfficer), p.ID); causeway.ErrorCode(err) != "role_required" {
			t.Errorf("an operator without the role confirming = %v", err)
		}
		if h.calls.Load() != 0 {
			t.Fatal("a refused confirmation ran the request")
		}
		// Past its lifetime a proposal is expired and cannot be confirmed.
		now = now.Add(DefaultTTL + time.Second)
		if _, err := s.Confirm(ctx, operator("op_checker", auth.RoleAppManager), p.ID); causeway.ErrorCode(err) != "proposal_not_pending" {
			t.Errorf("confirming an expired proposal = %v", err)
		}
		got, err := s.Proposal(ctx, auth.BankProcess(), p.ID)
		if err != nil || got.Status != StatusExpired {
			t.Errorf("status after expiry = %+v, %v", got, err)
		}
		if h.calls.Load() != 0 {
			t.Error("an expired proposal ran")
		}
	})
}

// TestOperatorsConfirmingOneProposalAtOnceCarryItOutOnce: on PostgreSQL,
// with every confirmer made to read the proposal as pending before any
// claims it (a row lock held until all of them wait on it), exactly one
// carries the request out and the others get 409.
func TestOperatorsConfirmingOneProposalAtOnceCarryItOutOnce(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	s, h := newService(t, db, time.Now)
	p, err := s.propose(ctx, operator("op_maker", auth.RoleAppManager), ActionGrantCreate, "bank-create-grant", "app-manager",
		"POST", "/bank/v1/grants", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	var lockPID int
	if err := lock.QueryRowContext(ctx, `SELECT pg_backend_pid() FROM foureyes_proposals WHERE id = $1 FOR UPDATE`, p.ID).Scan(&lockPID); err != nil {
		t.Fatal(err)
	}
	const racers = 4
	done := make(chan []error)
	go func() {
		done <- testkit.Race(racers, func(i int) error {
			_, err := s.Confirm(ctx, operator("op_checker_"+string(rune('a'+i)), auth.RoleAppManager), p.ID)
			return err
		})
	}()
	testkit.WaitFor(t, "every confirmer waiting on the proposal's row", func() bool {
		var waiting int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0
			AND ($1 = ANY(pg_blocking_pids(pid)) OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))))`,
			lockPID).Scan(&waiting)
		return err == nil && waiting == racers
	})
	lock.Rollback()
	testkit.OneWinner(t, <-done, causeway.ECONFLICT, "proposal_not_pending")
	if n := h.calls.Load(); n != 1 {
		t.Errorf("the request ran %d times, want once", n)
	}
}
