package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// reviewEverything makes the fraud check hold every payment for review.
func reviewEverything(call core.ExtensionCall) core.ExtensionAnswer {
	if call.Point != core.PointFraudCheck {
		return core.ExtensionAnswer{}
	}
	return core.ExtensionAnswer{Answered: true, Provider: "reviewer", Body: json.RawMessage(`{"decision":"review","score":60,"reason":"check"}`)}
}

// Attack: two operators (or ten) click release and reject on one held
// payment at once. On PostgreSQL under READ COMMITTED this used to debit
// the account once per release and drive held negative.
func TestRacingOperatorsDecideAHeldPaymentExactlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Held Payer", "100.00")
		_, to := f.customerWithAccount(t, appA, "Payee", "")
		f.answer(reviewEverything)
		var held []*core.Payment
		for range 3 {
			p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: from.ID, Creditor: core.Creditor{AccountID: to.ID}, Amount: eur(t, "10.00")})
			if err != nil || p.Status != core.PaymentHeld {
				t.Fatalf("payment = %+v, %v", p, err)
			}
			held = append(held, p)
		}
		f.answer(nil)
		const operators = 10
		var wg sync.WaitGroup
		wins := make([][]string, len(held))
		var mu sync.Mutex
		for i, p := range held {
			for op := range operators {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := f.bank.DecideHeldPayment(ctx, auth.BankProcess(), p.ID, op%2 == 0, "operator")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins[i] = append(wins[i], got.Status)
					case causeway.ErrorCode(err) != "payment_not_held":
						t.Errorf("losing decision: %v, want 409 payment_not_held", err)
					}
				}()
			}
		}
		wg.Wait()
		completed := 0
		for i, w := range wins {
			if len(w) != 1 {
				t.Errorf("payment %d was decided %d times: %v", i, len(w), w)
			}
			for _, s := range w {
				if s == core.PaymentCompleted {
					completed++
				}
			}
		}
		booked, available := f.balance(t, from.ID)
		want := fmt.Sprintf("%d.00", 100-10*completed)
		if booked != want || available != want {
			t.Errorf("debtor after %d releases = %s booked / %s available, want %s", completed, booked, available, want)
		}
		// The fixture's ledger check (held = sum of held payments,
		// nothing below its minimum) runs when the test ends.
	})
}

// A payment held for review to an IBAN of this bank credits the payee's
// account when released, as an approved one would; it used to go to the
// clearing account, as if the payee banked elsewhere.
func TestReleasedPaymentToAnOnUsIBANCreditsThePayee(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Payer", "50.00")
		_, to := f.customerWithAccount(t, appB, "Payee At This Bank", "")
		f.answer(reviewEverything)
		p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "20.00"),
			Creditor: core.Creditor{IBAN: to.IBAN, Name: "Payee"}})
		if err != nil || p.Status != core.PaymentHeld {
			t.Fatalf("payment = %+v, %v", p, err)
		}
		if _, err := f.bank.DecideHeldPayment(ctx, auth.BankProcess(), p.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		if booked, _ := f.balance(t, to.ID); booked != "20.00" {
			t.Errorf("payee balance after release = %s, want 20.00", booked)
		}
		if got, _ := f.bank.Payment(ctx, appA, p.ID); got.Creditor.AccountID != "" {
			t.Errorf("the payer learns the payee's account id %s", got.Creditor.AccountID)
		}
	})
}

// Attack: reuse a bank payment's Idempotency-Key with another amount and
// debtor; it used to answer 201 with the first payment as if it were
// this one.
func TestReusedIdempotencyKeyWithAnotherPaymentIsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, a := f.customerWithAccount(t, appA, "First Debtor", "100.00")
		_, b := f.customerWithAccount(t, appA, "Second Debtor", "100.00")
		n := core.NewPayment{DebtorAccountID: a.ID, Amount: eur(t, "5.00"),
			Creditor: core.Creditor{IBAN: "DE89 3704 0044 0532 0130 00", Name: "Shop"}, IdempotencyKey: "bank-key-1"}
		first, err := f.bank.CreatePayment(ctx, auth.BankProcess(), n)
		if err != nil {
			t.Fatal(err)
		}
		// The same request, written differently (IBAN spacing, name
		// padding), is a retry.
		retry := n
		retry.Creditor = core.Creditor{IBAN: "DE89370400440532013000", Name: " Shop "}
		if again, err := f.bank.CreatePayment(ctx, auth.BankProcess(), retry); err != nil || again.ID != first.ID {
			t.Errorf("retry = %+v, %v; want payment %s", again, err, first.ID)
		}
		for name, change := range map[string]func(*core.NewPayment){
			"amount":    func(n *core.NewPayment) { n.Amount = eur(t, "6.00") },
			"debtor":    func(n *core.NewPayment) { n.DebtorAccountID = b.ID },
			"creditor":  func(n *core.NewPayment) { n.Creditor.Name = "Another Shop" },
			"reference": func(n *core.NewPayment) { n.Reference = "changed" },
		} {
			other := n
			change(&other)
			_, err := f.bank.CreatePayment(ctx, auth.BankProcess(), other)
			if causeway.ErrorCode(err) != "idempotency_key_reused" || causeway.ErrorKind(err) != causeway.EINVALID {
				t.Errorf("key reused with another %s: %v, want 422 idempotency_key_reused", name, err)
			}
		}
		if booked, _ := f.balance(t, a.ID); booked != "95.00" {
			t.Errorf("first debtor = %s, want one payment of 5.00", booked)
		}
		if booked, _ := f.balance(t, b.ID); booked != "100.00" {
			t.Errorf("second debtor = %s, want untouched", booked)
		}
	})
}

// Attack: app A pays 0.01 to an IBAN of app B's customer to learn B's
// account id and balance from the credit leg's event. Each leg's event is
// about its own account's customer, so only that customer's apps get it.
func TestEachPaymentLegReachesOnlyItsAccountsApps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		payer, from := f.customerWithAccount(t, appA, "Curious Payer", "10.00")
		payee, to := f.customerWithAccount(t, appB, "Someone Else", "70.00")
		p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "0.01"),
			Creditor: core.Creditor{IBAN: to.IBAN, Name: "Anyone"}})
		if err != nil || p.Status != core.PaymentCompleted {
			t.Fatalf("payment = %+v, %v", p, err)
		}
		legs := map[string]string{} // account -> customer the event is about
		for _, e := range f.events.all(t) {
			if e.Type != "transaction.booked" {
				continue
			}
			var txn struct {
				AccountID string `json:"account_id"`
			}
			json.Unmarshal([]byte(e.Data), &txn)
			legs[txn.AccountID] = e.CustomerID
		}
		if legs[from.ID] != payer.ID || legs[to.ID] != payee.ID {
			t.Errorf("legs are about %v; want the debit about %s and the credit about %s", legs, payer.ID, payee.ID)
		}
		if ok, _ := f.bank.CanSeeCustomer(ctx, appID(appA), payee.ID); ok {
			t.Error("paying a customer made the payer's app entitled to it")
		}
	})
}

// Attack: deposit int64's maximum, or enough to wrap a balance around. A
// posting that would take any account beyond the bank's limit is refused
// with 422, and nothing is booked.
func TestBalancesStopAtTheBanksLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, a := f.customerWithAccount(t, appA, "Rich", "")
		if _, err := f.bank.Deposit(ctx, auth.BankProcess(), a.ID, core.Money{Minor: core.MaxBalance, Currency: "EUR"}, "all of it"); err != nil {
			t.Fatalf("deposit up to the limit: %v", err)
		}
		for _, minor := range []int64{1, core.MaxBalance, 1<<63 - 1} {
			_, err := f.bank.Deposit(ctx, auth.BankProcess(), a.ID, core.Money{Minor: minor, Currency: "EUR"}, "more")
			if causeway.ErrorCode(err) != "balance_limit_exceeded" || causeway.ErrorKind(err) != causeway.EINVALID {
				t.Errorf("deposit of %d minor units beyond the limit: %v", minor, err)
			}
		}
		want := core.Money{Minor: core.MaxBalance, Currency: "EUR"}.Amount()
		if booked, _ := f.balance(t, a.ID); booked != want {
			t.Errorf("balance = %s, want %s", booked, want)
		}
	})
}

// The ledger check is only worth something if it can fail: each invariant
// is broken by hand and must be reported.
func TestLedgerCheckReportsEachBrokenInvariant(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, a := f.customerWithAccount(t, appA, "Victim", "10.00")
		check := func() *core.LedgerReport {
			t.Helper()
			r, err := f.bank.CheckLedger(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := check(); !r.Balanced {
			t.Fatalf("clean ledger: %s", r)
		}
		// Held without a held payment: available would be wrong.
		db.Exec(`UPDATE core_accounts SET held = held + 500 WHERE id = $1`, a.ID)
		if r := check(); r.Balanced || len(r.HeldMismatches) != 1 || r.HeldMismatches[0] != a.ID {
			t.Errorf("held without payments: %s", r)
		}
		// More held than booked: available below zero.
		db.Exec(`UPDATE core_accounts SET held = 2000 WHERE id = $1`, a.ID)
		if r := check(); r.Balanced || len(r.AccountsBelowMinimum) != 1 || r.AccountsBelowMinimum[0] != a.ID {
			t.Errorf("available below zero: %s", r)
		}
		// Negative held, which made available exceed booked.
		db.Exec(`UPDATE core_accounts SET held = -100 WHERE id = $1`, a.ID)
		if r := check(); r.Balanced || len(r.AccountsBelowMinimum) != 1 {
			t.Errorf("negative held: %s", r)
		}
		db.Exec(`UPDATE core_accounts SET held = 0 WHERE id = $1`, a.ID)
		if r := check(); !r.Balanced {
			t.Errorf("repaired ledger: %s", r)
		}
	})
}

// TestLedgerInvariantsHoldUnderRandomInterleavings is the property test:
// many goroutines run random payments (on-us, to another tenant's IBAN, to
// other banks, some held for review), racing releases and rejects, loan
// applications and fundings, deposits, grants and revokes, retries with
// idempotency keys. Whatever the interleaving, every ledger invariant
// holds at the end, every completed payment is booked exactly once and
// nothing else is, and no loan is funded twice. The seed is logged.
func TestLedgerInvariantsHoldUnderRandomInterleavings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		seed := rand.Uint64()
		t.Logf("seed %d", seed)

		type party struct {
			actor     auth.Caller
			customers []*core.Customer
			accounts  []*core.Account
		}
		parties := []*party{{actor: appA}, {actor: appB}}
		for _, p := range parties {
			for i := range 4 {
				c, a := f.customerWithAccount(t, p.actor, fmt.Sprintf("%s customer %d", appID(p.actor), i), "200.00")
				if v, err := f.bank.VerifyCustomer(ctx, p.actor, c.ID); err != nil || v.Result != core.KYCPass {
					t.Fatalf("KYC: %+v, %v", v, err)
				}
				p.customers, p.accounts = append(p.customers, c), append(p.accounts, a)
			}
		}
		// The fraud check decides by the amount's cents, so every run mixes
		// approvals, denials and holds.
		f.answer(func(call core.ExtensionCall) core.ExtensionAnswer {
			if call.Point != core.PointFraudCheck {
				return core.ExtensionAnswer{}
			}
			raw, _ := json.Marshal(call.Payload)
			var body struct {
				Payment struct {
					Amount core.Money `json:"amount"`
				} `json:"payment"`
			}
			json.Unmarshal(raw, &body)
			decision := []string{"approve", "approve", "review", "deny"}[body.Payment.Amount.Minor%4]
			return core.ExtensionAnswer{Answered: true, Provider: "random", Body: json.RawMessage(`{"decision":"` + decision + `","score":1}`)}
		})

		var (
			mu    sync.Mutex
			held  []string // payments that were held when made
			loans []string // approved loan applications
		)
		pick := func(r *rand.Rand, list *[]string) string {
			mu.Lock()
			defer mu.Unlock()
			if len(*list) == 0 {
				return ""
			}
			return (*list)[r.IntN(len(*list))]
		}
		remember := func(list *[]string, id string) {
			mu.Lock()
			*list = append(*list, id)
			mu.Unlock()
		}
		// expected are the errors a correct bank may answer under races: a
		// lost race (409), a closed door (404 after a revoke), a refused
		// request (422).
		expected := map[string]bool{
			"payment_not_held": true, "loan_already_funded": true, "loan_not_approved": true,
			"account_not_found": true, "customer_not_found": true, "creditor_not_found": true,
			"loan_application_not_found": true, "idempotency_key_reused": true,
		}
		const workers = 8
		opsPerWorker := 40
		if testing.Short() {
			opsPerWorker = 15
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(w)))
				for range opsPerWorker {
					me := parties[r.IntN(len(parties))]
					other := parties[r.IntN(len(parties))]
					from := me.accounts[r.IntN(len(me.accounts))]
					amount := core.Money{Minor: 1 + r.Int64N(6000), Currency: "EUR"}
					var err error
					switch op := r.IntN(10); op {
					case 0, 1, 2: // pay someone: on-us by id, another tenant by IBAN, or another bank
						n := core.NewPayment{DebtorAccountID: from.ID, Amount: amount}
						switch r.IntN(3) {
						case 0:
							n.Creditor.AccountID = me.accounts[r.IntN(len(me.accounts))].ID
						case 1:
							n.Creditor = core.Creditor{IBAN: other.accounts[r.IntN(len(other.accounts))].IBAN, Name: "Payee"}
						default:
							n.Creditor = core.Creditor{IBAN: "FR1420041010050500013M02606", Name: "Elsewhere"}
						}
						if r.IntN(4) == 0 {
							n.IdempotencyKey = fmt.Sprintf("k-%d", r.IntN(20))
						}
						var p *core.Payment
						p, err = f.bank.CreatePayment(ctx, me.actor, n)
						if err == nil && p.Status == core.PaymentHeld {
							remember(&held, p.ID)
						}
						if causeway.ErrorCode(err) == "payment_to_self" {
							err = nil
						}
					case 3, 4: // operators race on held payments
						if id := pick(r, &held); id != "" {
							_, err = f.bank.DecideHeldPayment(ctx, auth.BankProcess(), id, r.IntN(2) == 0, "operator")
						}
					case 5:
						_, err = f.bank.Deposit(ctx, auth.BankProcess(), from.ID, amount, "top up")
					case 6:
						c := me.customers[r.IntN(len(me.customers))]
						var l *core.LoanApplication
						l, err = f.bank.ApplyForLoan(ctx, me.actor, core.NewLoanApplication{CustomerID: c.ID,
							Amount: core.Money{Minor: 100_00 + r.Int64N(2000_00), Currency: "EUR"}, TermMonths: 12, Purpose: "solar",
							MonthlyIncome: core.Money{Minor: 4000_00, Currency: "EUR"}})
						if err == nil && l.Status == core.LoanApproved {
							remember(&loans, l.ID)
						}
					case 7:
						if id := pick(r, &loans); id != "" {
							l, lerr := f.bank.LoanApplication(ctx, auth.BankProcess(), id)
							if lerr != nil {
								err = lerr
								break
							}
							var account *core.Account
							for _, p := range parties {
								for i, c := range p.customers {
									if c.ID == l.CustomerID {
										account = p.accounts[i]
									}
								}
							}
							_, err = f.bank.FundLoan(ctx, auth.BankProcess(), id, account.ID)
						}
					case 8: // the bank lets the other app see a customer, or stops
						c := me.customers[r.IntN(len(me.customers))]
						if other != me {
							if r.IntN(2) == 0 {
								err = f.bank.GrantCustomer(ctx, auth.BankProcess(), appID(other.actor), c.ID)
							} else {
								err = f.bank.RevokeCustomer(ctx, auth.BankProcess(), appID(other.actor), c.ID)
							}
						}
					case 9: // spend from a customer this app may have been granted
						c := other.customers[r.IntN(len(other.customers))]
						var a *core.Account
						for i, oc := range other.customers {
							if oc.ID == c.ID {
								a = other.accounts[i]
							}
						}
						_, err = f.bank.CreatePayment(ctx, me.actor, core.NewPayment{DebtorAccountID: a.ID, Amount: amount,
							Creditor: core.Creditor{IBAN: "FR1420041010050500013M02606", Name: "Elsewhere"}})
					}
					if err != nil && !expected[causeway.ErrorCode(err)] {
						t.Errorf("unexpected error: %v (%s)", err, causeway.ErrorCode(err))
					}
				}
			}()
		}
		wg.Wait()

		r, err := f.bank.CheckLedger(ctx)
		if err != nil || !r.Balanced {
			t.Fatalf("ledger after the interleaving (seed %d): %v %v", seed, r, err)
		}
		// Every completed payment is booked exactly once; held and
		// rejected ones not at all.
		var wrong int
		if err := db.QueryRow(`SELECT COUNT(*) FROM core_payments p WHERE
			(SELECT COUNT(*) FROM core_entries e WHERE e.kind = 'payment' AND e.reference = p.id) <>
			CASE WHEN p.status = 'completed' THEN 1 ELSE 0 END`).Scan(&wrong); err != nil || wrong != 0 {
			t.Errorf("%d payments booked other than once per completion (seed %d), %v", wrong, seed, err)
		}
		if err := db.QueryRow(`SELECT COUNT(*) FROM (SELECT reference FROM core_entries WHERE kind = 'loan_funding'
			GROUP BY reference HAVING COUNT(*) > 1) x`).Scan(&wrong); err != nil || wrong != 0 {
			t.Errorf("%d loans funded more than once (seed %d), %v", wrong, seed, err)
		}
		var payments, decided int
		db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN status <> 'held' THEN 1 ELSE 0 END), 0) FROM core_payments`).Scan(&payments, &decided)
		t.Logf("%d payments (%d held at the end), %d loans approved, ledger %s", payments, payments-decided, len(loans), r)
		if payments < workers*opsPerWorker/10 {
			t.Errorf("only %d payments were made: the interleaving did not exercise the bank", payments)
		}
	})
}

// The zero Caller is nobody: a caller lost on the way (a handler that
// forgot to pass one, an app id that came out empty) sees and does
// nothing. It used to be the bank: an empty app id read every customer.
func TestNobodySeesNothingAndMayDoNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		c, a := f.customerWithAccount(t, appA, "Somebody", "10.00")
		for name, nobody := range map[string]auth.Caller{"zero": {}, "empty app id": auth.AppCaller(""), "a developer": auth.DeveloperCaller("dev_1")} {
			if got, err := f.bank.Customers(ctx, nobody, 0, ""); err != nil || len(got.Data) != 0 {
				t.Errorf("%s lists customers: %v, %v", name, got, err)
			}
			if got, err := f.bank.Accounts(ctx, nobody, core.AccountFilter{}); err != nil || len(got.Data) != 0 {
				t.Errorf("%s lists accounts: %v, %v", name, got, err)
			}
			for what, err := range map[string]error{
				"customer": func() error { _, err := f.bank.Customer(ctx, nobody, c.ID); return err }(),
				"account":  func() error { _, err := f.bank.Account(ctx, nobody, a.ID); return err }(),
				"balances": func() error { _, err := f.bank.Balances(ctx, nobody, a.ID); return err }(),
				"payment": func() error {
					_, err := f.bank.CreatePayment(ctx, nobody, core.NewPayment{DebtorAccountID: a.ID, Amount: eur(t, "1.00"),
						Creditor: core.Creditor{IBAN: "FR1420041010050500013M02606", Name: "X"}})
					return err
				}(),
			} {
				if causeway.ErrorKind(err) != causeway.ENOTFOUND {
					t.Errorf("%s reads or pays from another's %s: %v", name, what, err)
				}
			}
			for what, err := range map[string]error{
				"creates a customer": func() error { _, err := f.bank.CreateCustomer(ctx, nobody, person("X")); return err }(),
				"deposits":           func() error { _, err := f.bank.Deposit(ctx, nobody, a.ID, eur(t, "1.00"), ""); return err }(),
				"grants":             f.bank.GrantCustomer(ctx, nobody, "app_b", c.ID),
				"revokes":            f.bank.RevokeCustomer(ctx, nobody, appID(appA), c.ID),
				"decides a payment":  func() error { _, err := f.bank.DecideHeldPayment(ctx, nobody, "pay_x", true, ""); return err }(),
			} {
				if causeway.ErrorKind(err) != causeway.EFORBIDDEN {
					t.Errorf("%s %s: %v, want forbidden", name, what, err)
				}
			}
		}
		if booked, _ := f.balance(t, a.ID); booked != "10.00" {
			t.Errorf("balance = %s: nobody moved money", booked)
		}
	})
}
