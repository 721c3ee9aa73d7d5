package platform_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/testkit"
)

// operatorClient creates an operator with roles and returns a client
// calling with a token of theirs.
func operatorClient(t *testing.T, n *platformtest.Node, email string, roles ...auth.Role) *client {
	t.Helper()
	ctx := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
	op, err := n.Identity.CreateOperator(ctx, auth.CallerFrom(ctx), identity.NewOperator{Email: email, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := n.Identity.IssueOperatorToken(ctx, op.Caller(), "test", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: n.URL, token: tok.Token}
}

type proposal struct {
	ID, Status, Role, Action string
	ProposedBy               string `json:"proposed_by"`
	DecidedBy                string `json:"decided_by"`
	Result                   *struct {
		Status int
		Body   json.RawMessage
	}
}

// TestFourEyesHoldsADecisionUntilASecondOperatorConfirmsIt: with
// four-eyes on, a grant proposed by one app manager takes effect only when
// another confirms it, exactly as proposed; the proposer, a viewer and a
// second confirmation are refused, a rejected proposal changes nothing,
// limits within the threshold need no second operator, and of operators
// confirming one proposal at once exactly one carries it out.
func TestFourEyesHoldsADecisionUntilASecondOperatorConfirmsIt(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		cfg.FourEyes = []string{"grant.create", "app.limits"}
		n := platformtest.Start(t, cfg)
		maker := operatorClient(t, n, "maker@bank.example", auth.RoleAppManager)
		checker := operatorClient(t, n, "checker@bank.example", auth.RoleAppManager)
		viewer := operatorClient(t, n, "viewer@bank.example", auth.RoleViewer)
		admin := &client{t: t, base: n.URL, token: platformtest.AdminToken}
		_, _ = developerApp(t, n, nil, "foureyes@solar.example")
		var apps struct{ Data []struct{ ID string } }
		admin.do("GET", "/bank/v1/apps", "", nil).decode(t, &apps)
		appID := apps.Data[0].ID
		customers, err := n.Bank.Customers(context.Background(), auth.BankProcess(), 3, "")
		if err != nil || len(customers.Data) < 3 {
			t.Fatalf("bank customers: %v", err)
		}
		grants := func() int {
			var g struct{ Data []any }
			admin.do("GET", "/bank/v1/grants?app_id="+appID, "", nil).decode(t, &g)
			return len(g.Data)
		}
		before := grants()

		res := maker.do("POST", "/bank/v1/grants", "", map[string]any{"app_id": appID, "customer_id": customers.Data[0].ID})
		var p proposal
		res.decode(t, &p)
		if res.status != http.StatusAccepted || p.Status != "pending_second_approval" || p.Role != "app-manager" ||
			res.header.Get("Location") != "/bank/v1/proposals/"+p.ID {
			t.Fatalf("proposing a grant = %d %s", res.status, res.body)
		}
		if grants() != before {
			t.Fatal("the grant took effect before a second operator confirmed it")
		}
		var problem struct{ Code string }
		for _, c := range []struct {
			who  *client
			code string
		}{{maker, "same_operator"}, {viewer, "role_required"}} {
			if res := c.who.do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil); res.status != http.StatusForbidden {
				t.Errorf("confirming as %s = %d %s", c.code, res.status, res.body)
			} else if res.decode(t, &problem); problem.Code != c.code {
				t.Errorf("confirming: code %s, want %s", problem.Code, c.code)
			}
		}
		res = checker.do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil)
		res.decode(t, &p)
		if res.status != http.StatusOK || p.Status != "confirmed" || p.Result == nil || p.Result.Status != http.StatusCreated {
			t.Fatalf("the second operator confirming = %d %s", res.status, res.body)
		}
		if grants() != before+1 {
			t.Error("the confirmed grant did not take effect")
		}
		// The audit trail shows who proposed and who confirmed.
		var trail struct {
			Data []struct {
				Actor, Action, Confirms string
				ProposalID              string `json:"proposal_id"`
			}
		}
		admin.do("GET", "/bank/v1/audit?action=grant.*", "", nil).decode(t, &trail)
		var proposedBy, confirmedBy string
		for _, e := range trail.Data {
			switch {
			case e.Action == "grant.create.propose" && e.ProposalID == p.ID:
				proposedBy = e.Actor
			case e.Action == "grant.create" && e.Confirms == p.ID:
				confirmedBy = e.Actor
			}
		}
		if proposedBy == "" || confirmedBy == "" || proposedBy == confirmedBy || p.DecidedBy != confirmedBy {
			t.Errorf("the audit names the proposer %q and the confirmer %q (decided by %q): %+v", proposedBy, confirmedBy, p.DecidedBy, trail.Data)
		}
		if res := checker.do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil); res.status != http.StatusConflict {
			t.Errorf("confirming twice = %d", res.status)
		}

		// Rejected: nothing happens.
		res = maker.do("POST", "/bank/v1/grants", "", map[string]any{"app_id": appID, "customer_id": customers.Data[1].ID})
		res.decode(t, &p)
		if res := checker.do("POST", "/bank/v1/proposals/"+p.ID+"/reject", "", map[string]any{"reason": "not this customer"}); res.status != http.StatusOK {
			t.Fatalf("rejecting = %d %s", res.status, res.body)
		}
		if res := checker.do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil); res.status != http.StatusConflict {
			t.Errorf("confirming a rejected proposal = %d", res.status)
		}
		if grants() != before+1 {
			t.Error("a rejected grant took effect")
		}

		// Limits: within the thresholds at once, above them held back.
		if res := maker.do("PUT", "/bank/v1/apps/"+appID+"/limits", "", map[string]any{"requests_per_second": 10, "burst": 20, "daily_quota": 1000}); res.status != http.StatusOK {
			t.Errorf("limits within the thresholds = %d %s", res.status, res.body)
		}
		if res := maker.do("PUT", "/bank/v1/apps/"+appID+"/limits", "", map[string]any{"requests_per_second": platform.DefaultFourEyesRateAbove + 1,
			"burst": 200, "daily_quota": 1000}); res.status != http.StatusAccepted {
			t.Errorf("limits above the rate threshold = %d %s", res.status, res.body)
		}

		// Operators racing to confirm one proposal: one carries it out.
		res = maker.do("POST", "/bank/v1/grants", "", map[string]any{"app_id": appID, "customer_id": customers.Data[2].ID})
		res.decode(t, &p)
		checkers := make([]*client, 6)
		for i := range checkers {
			checkers[i] = operatorClient(t, n, "racer"+string(rune('a'+i))+"@bank.example", auth.RoleAppManager)
		}
		statuses := testkit.Race(len(checkers), func(i int) error {
			if res := checkers[i].do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil); res.status != http.StatusOK {
				return &statusError{res.status}
			}
			return nil
		})
		won := 0
		for _, err := range statuses {
			switch e := err.(type) {
			case nil:
				won++
			case *statusError:
				if e.status != http.StatusConflict {
					t.Errorf("a losing confirmer got %d, want 409", e.status)
				}
			}
		}
		if won != 1 || grants() != before+2 {
			t.Errorf("%d confirmations won and the app has %d grants, want 1 and %d", won, grants(), before+2)
		}
	})
}

type statusError struct{ status int }

func (e *statusError) Error() string { return http.StatusText(e.status) }

// TestInProductionTheAdminTokenProposesButNeverConfirms: four-eyes is on
// by default in production mode, and the admin token, which names no
// person, may propose and reject but not confirm.
func TestInProductionTheAdminTokenProposesButNeverConfirms(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.Mode = platform.ModeProduction
	cfg.PublicURL = "https://api.bank.test"
	n := platformtest.Start(t, cfg)
	admin := &client{t: t, base: n.URL, token: platformtest.AdminToken}
	steward := operatorClient(t, n, "steward@bank.example", auth.RoleDataSteward, auth.RoleRiskOfficer, auth.RoleAppManager)
	customers, err := n.Bank.Customers(context.Background(), auth.BankProcess(), 1, "")
	if err != nil || len(customers.Data) == 0 {
		t.Fatal(err)
	}
	dev, _, err := n.Identity.SignUp(context.Background(), "prod-foureyes@solar.example", "a long enough password", "Solar")
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := n.Identity.CreateApp(context.Background(), dev, "Solar", []string{"accounts:read"})
	if err != nil {
		t.Fatal(err)
	}
	res := steward.do("POST", "/bank/v1/grants", "", map[string]any{"app_id": app.ID, "customer_id": customers.Data[0].ID})
	var p proposal
	res.decode(t, &p)
	if res.status != http.StatusAccepted {
		t.Fatalf("a grant in production without a second operator = %d %s", res.status, res.body)
	}
	var problem struct{ Code string }
	if res := admin.do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil); res.status != http.StatusForbidden {
		t.Errorf("the admin token confirming = %d", res.status)
	} else if res.decode(t, &problem); problem.Code != "operator_only" {
		t.Errorf("the admin token confirming: %s", problem.Code)
	}
	if res := admin.do("POST", "/bank/v1/proposals/"+p.ID+"/reject", "", map[string]any{"reason": "wrong app"}); res.status != http.StatusOK {
		t.Errorf("the admin token rejecting = %d %s", res.status, res.body)
	}
	// The admin token proposes; a named operator confirms.
	res = admin.do("POST", "/bank/v1/grants", "", map[string]any{"app_id": app.ID, "customer_id": customers.Data[0].ID})
	res.decode(t, &p)
	if res.status != http.StatusAccepted || p.ProposedBy != "operator:admin-token" {
		t.Fatalf("the admin token proposing = %d %s", res.status, res.body)
	}
	res = steward.do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil)
	res.decode(t, &p)
	if res.status != http.StatusOK || p.Status != "confirmed" {
		t.Errorf("a named operator confirming the admin token's proposal = %d %s", res.status, res.body)
	}
	var pending struct{ Data []proposal }
	admin.do("GET", "/bank/v1/proposals?pending=true", "", nil).decode(t, &pending)
	if len(pending.Data) != 0 {
		t.Errorf("%d proposals still pending", len(pending.Data))
	}
}

// TestAViewerCannotChangeAnything walks every /bank/v1 operation in the
// document a node serves: each one that changes something answers a
// viewer's token 403 role_required naming the role it needs, before
// looking at the request, and changes nothing.
func TestAViewerCannotChangeAnything(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		viewer := operatorClient(t, n, "only.viewer@bank.example", auth.RoleViewer)
		var doc struct {
			Paths map[string]map[string]struct {
				OperationID string `json:"operationId"`
				Role        string `json:"x-causeway-role"`
			}
		}
		(&client{t: t, base: n.URL}).do("GET", "/openapi.json", "", nil).decode(t, &doc)
		checked := 0
		for path, ops := range doc.Paths {
			if !strings.HasPrefix(path, "/bank/v1/") {
				continue
			}
			for method, op := range ops {
				role := auth.Role(op.Role)
				if method == "get" || role == "" || role == auth.RoleViewer {
					continue
				}
				concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
				res := viewer.do(strings.ToUpper(method), concrete, "", map[string]any{})
				var problem struct{ Code, Detail string }
				_ = json.Unmarshal(res.body, &problem)
				if res.status != http.StatusForbidden || problem.Code != "role_required" || !strings.Contains(problem.Detail, string(role)) {
					t.Errorf("%s %s as a viewer = %d %s, want 403 role_required naming %s", method, path, res.status, res.body, role)
				}
				checked++
			}
		}
		if checked < 25 {
			t.Errorf("only %d operations checked", checked)
		}
	})
}

// releaseDesk is a node with payment.release under four-eyes above
// 15.00 EUR, two risk officers (a maker and a checker) and an app whose
// payments a fraud SPI sends to review.
type releaseDesk struct {
	n              *platformtest.Node
	maker, checker *client
	app            *client
	accounts       page
}

func newReleaseDesk(t *testing.T, cfg platform.Config) *releaseDesk {
	t.Helper()
	cfg.FourEyes = []string{"payment.release"}
	cfg.FourEyesPaymentAbove = 1500 // 15.00 EUR
	d := &releaseDesk{n: platformtest.Start(t, cfg)}
	d.maker = operatorClient(t, d.n, "payments.maker@bank.example", auth.RoleRiskOfficer)
	d.checker = operatorClient(t, d.n, "payments.checker@bank.example", auth.RoleRiskOfficer)
	d.app, _ = developerApp(t, d.n, nil, "held@solar.example")
	reviewer := spitest.New(t, fraudAnswer{Decision: "review", Score: 70, Reason: "manual check"})
	if res := d.app.do("POST", "/v1/spi-registrations", "", map[string]any{"extension_point": "payments.fraud-check", "url": reviewer.URL}); res.status != 201 {
		t.Fatalf("registering the reviewer: %d %s", res.status, res.body)
	}
	d.app.do("GET", "/v1/accounts", "", nil).decode(t, &d.accounts)
	return d
}

// hold makes a payment the reviewer holds and returns its id.
func (d *releaseDesk) hold(t *testing.T, amount string) string {
	t.Helper()
	var p struct{ ID, Status string }
	res := d.app.do("POST", "/v1/payments", "", map[string]any{"debtor_account_id": d.accounts.Data[0].ID, "amount": money(amount),
		"creditor": map[string]any{"iban": "FR1420041010050500013M02606", "name": "Shop"}})
	res.decode(t, &p)
	if p.Status != "held" {
		t.Fatalf("a payment under review = %d %s", res.status, res.body)
	}
	return p.ID
}

// status reads a payment's status as the bank.
func (d *releaseDesk) status(t *testing.T, id string) string {
	var p struct{ Status string }
	d.maker.do("GET", "/bank/v1/payments/"+id, "", nil).decode(t, &p)
	return p.Status
}

// propose has the maker propose releasing a held payment.
func (d *releaseDesk) propose(t *testing.T, payment string) proposal {
	t.Helper()
	var p proposal
	res := d.maker.do("POST", "/bank/v1/payments/"+payment+"/release", "", map[string]any{})
	if res.status != http.StatusAccepted {
		t.Fatalf("proposing the release = %d %s", res.status, res.body)
	}
	res.decode(t, &p)
	return p
}

// stop leaves proposal id as a node that stopped while `by` confirmed it
// does: executing, claimed ten minutes ago, no answer recorded.
func (d *releaseDesk) stop(t *testing.T, id, by string) {
	t.Helper()
	stoppedAt := store.Micros(time.Now().Add(-10 * time.Minute))
	if _, err := d.n.DB.ExecContext(context.Background(), `UPDATE foureyes_proposals SET status = 'executing', decided_by = $1,
		decided_at = $2, result_status = NULL, result_body = NULL WHERE id = $3`, by, stoppedAt, id); err != nil {
		t.Fatal(err)
	}
}

// carriedOut counts the audit entries that carry proposal id out.
func (d *releaseDesk) carriedOut(t *testing.T, id string) int {
	t.Helper()
	var n int
	if err := d.n.DB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit_entries WHERE confirms = $1 AND target_type <> 'proposal'`,
		id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (d *releaseDesk) balanced(t *testing.T) bool {
	var ledger struct{ Balanced bool }
	d.maker.do("GET", "/bank/v1/ledger", "", nil).decode(t, &ledger)
	return ledger.Balanced
}

// TestReleasingALargeHeldPaymentWaitsForASecondOperator: with
// payment.release under four-eyes, a held payment at or below
// --four-eyes-payment-above is released by one risk officer at once, and
// a larger one waits for a second; the money moves once, when confirmed.
func TestReleasingALargeHeldPaymentWaitsForASecondOperator(t *testing.T) {
	t.Parallel()
	d := newReleaseDesk(t, platformtest.Embedded.Config(t))
	maker, checker := d.maker, d.checker
	hold := func(amount string) string { return d.hold(t, amount) }
	status := func(id string) string { return d.status(t, id) }
	small, large := hold("15.00"), hold("15.01")
	if res := maker.do("POST", "/bank/v1/payments/"+small+"/release", "", map[string]any{}); res.status != http.StatusOK || status(small) != "completed" {
		t.Errorf("releasing 15.00 = %d %s, then %s; want it released at once", res.status, res.body, status(small))
	}
	res := maker.do("POST", "/bank/v1/payments/"+large+"/release", "", map[string]any{})
	var p proposal
	res.decode(t, &p)
	if res.status != http.StatusAccepted || status(large) != "held" {
		t.Fatalf("releasing 15.01 = %d %s, then %s; want a proposal and the payment still held", res.status, res.body, status(large))
	}
	res = checker.do("POST", "/bank/v1/proposals/"+p.ID+"/confirm", "", nil)
	res.decode(t, &p)
	if res.status != http.StatusOK || p.Status != "confirmed" || status(large) != "completed" {
		t.Errorf("the second operator confirming = %d %s, then %s", res.status, res.body, status(large))
	}
	if !d.balanced(t) {
		t.Error("the ledger does not balance after the releases")
	}
}

// TestAConfirmationInterruptedByAStopIsFinishedOnce: a node that stops
// while a second operator's confirmation runs leaves the proposal
// executing. The lease holder's four-eyes job (called here, not waited
// for) finishes it: a release that never ran is carried out, as the
// confirmer; one whose money moved before the stop is only recorded as
// confirmed. Each payment is released once, with one audit entry, and the
// ledger balances.
func TestAConfirmationInterruptedByAStopIsFinishedOnce(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		ctx := context.Background()
		d := newReleaseDesk(t, rt.Config(t))
		neverRan, ranBefore := d.hold(t, "20.00"), d.hold(t, "30.00")
		pNeverRan, pRanBefore := d.propose(t, neverRan), d.propose(t, ranBefore)
		var confirmed proposal
		d.checker.do("POST", "/bank/v1/proposals/"+pRanBefore.ID+"/confirm", "", nil).decode(t, &confirmed)
		if confirmed.Status != "confirmed" || d.status(t, ranBefore) != "completed" {
			t.Fatalf("confirming = %+v, payment %s", confirmed, d.status(t, ranBefore))
		}
		// What the stop leaves: both claimed by the checker a while ago,
		// executing, with no answer recorded.
		d.stop(t, pNeverRan.ID, confirmed.DecidedBy)
		d.stop(t, pRanBefore.ID, confirmed.DecidedBy)

		if n, err := d.n.FourEyes.Recover(ctx); err != nil || n != 2 {
			t.Fatalf("Recover = %d, %v; want 2", n, err)
		}
		if n, err := d.n.FourEyes.Recover(ctx); err != nil || n != 0 {
			t.Errorf("a second Recover = %d, %v; want 0", n, err)
		}
		for _, c := range []struct {
			payment string
			p       proposal
			result  int
		}{{neverRan, pNeverRan, http.StatusOK}, {ranBefore, pRanBefore, 0}} {
			var got proposal
			d.maker.do("GET", "/bank/v1/proposals/"+c.p.ID, "", nil).decode(t, &got)
			result := 0
			if got.Result != nil {
				result = got.Result.Status
			}
			if got.Status != "confirmed" || result != c.result || d.status(t, c.payment) != "completed" {
				t.Errorf("proposal %s: %s with result %d, payment %s; want confirmed, %d, completed", c.p.ID, got.Status, result,
					d.status(t, c.payment), c.result)
			}
			if entries := d.carriedOut(t, c.p.ID); entries != 1 {
				t.Errorf("proposal %s: %d audit entries carry it out, want 1", c.p.ID, entries)
			}
		}
		// No client made the recovered release: the trail names none,
		// rather than a made-up address.
		var addr string
		if err := d.n.DB.QueryRowContext(ctx, `SELECT client_addr FROM audit_entries WHERE confirms = $1 AND target_type <> 'proposal'`,
			pNeverRan.ID).Scan(&addr); err != nil || addr != "" {
			t.Errorf("the recovered release's audit entry names client %q (%v), want none", addr, err)
		}
		if !d.balanced(t) {
			t.Error("the ledger does not balance after the recovery")
		}
	})
}

// TestTwoRecoveriesOfOneConfirmationAtOnceReleaseTheMoneyOnce: on
// PostgreSQL, two recoveries (two nodes, each believing it holds the
// lease) both take up one interrupted release, and both reach the
// payment before either changes it (its row is locked until both wait on
// it). The payment is released once, one audit entry carries the
// proposal out, and the proposal ends confirmed.
func TestTwoRecoveriesOfOneConfirmationAtOnceReleaseTheMoneyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newReleaseDesk(t, platformtest.ScaleOut.Config(t))
	payment := d.hold(t, "20.00")
	p := d.propose(t, payment)
	var checker struct{ ID string }
	d.checker.do("GET", "/bank/v1/me", "", nil).decode(t, &checker)
	d.stop(t, p.ID, auth.OperatorCaller(checker.ID).String())

	lock, err := d.n.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	var lockPID int
	if err := lock.QueryRowContext(ctx, `SELECT pg_backend_pid() FROM core_payments WHERE id = $1 FOR UPDATE`, payment).Scan(&lockPID); err != nil {
		t.Fatal(err)
	}
	var finished [2]int64
	done := make(chan []error)
	go func() {
		done <- testkit.Race(2, func(i int) error {
			n, err := d.n.FourEyes.Recover(ctx)
			finished[i] = n
			return err
		})
	}()
	testkit.WaitFor(t, "both recoveries waiting on the payment's row", func() bool {
		var waiting int
		err := d.n.DB.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0
			AND ($1 = ANY(pg_blocking_pids(pid)) OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))))`,
			lockPID).Scan(&waiting)
		return err == nil && waiting == 2
	})
	lock.Rollback()
	for _, err := range <-done {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got proposal
	d.maker.do("GET", "/bank/v1/proposals/"+p.ID, "", nil).decode(t, &got)
	if got.Status != "confirmed" || d.status(t, payment) != "completed" || finished[0]+finished[1] != 2 {
		t.Errorf("proposal %s, payment %s, recoveries finished %v; want confirmed, completed, one each", got.Status, d.status(t, payment), finished)
	}
	if n := d.carriedOut(t, p.ID); n != 1 {
		t.Errorf("%d audit entries carry the proposal out, want 1", n)
	}
	if !d.balanced(t) {
		t.Error("the ledger does not balance")
	}
}
