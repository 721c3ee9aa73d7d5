package core_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// eventLog is an EventWriter that writes into a table in the caller's
// transaction, like the real outbox, so rollbacks take events with them.
type eventLog struct {
	db   *store.DB
	fail error
}

func (l *eventLog) WriteEvents(ctx context.Context, tx *sql.Tx, events []core.Event) error {
	if l.fail != nil {
		return l.fail
	}
	for _, e := range events {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO test_events (type, subject, customer_id, data) VALUES ($1, $2, $3, $4)`,
			e.Type, e.Subject, e.CustomerID, string(data)); err != nil {
			return err
		}
	}
	return nil
}

type loggedEvent struct {
	Type, Subject, CustomerID, Data string
}

func (l *eventLog) all(t *testing.T) []loggedEvent {
	t.Helper()
	rows, err := l.db.Query(`SELECT type, subject, customer_id, data FROM test_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []loggedEvent
	for rows.Next() {
		var e loggedEvent
		rows.Scan(&e.Type, &e.Subject, &e.CustomerID, &e.Data)
		out = append(out, e)
	}
	return out
}

func (l *eventLog) types(t *testing.T, subject string) []string {
	var out []string
	for _, e := range l.all(t) {
		if subject == "" || e.Subject == subject {
			out = append(out, e.Type)
		}
	}
	return out
}

// extensions answers extension points from a function, standing in for a
// registered fintech endpoint (the SPI invoker is tested on its own).
type extensions func(call core.ExtensionCall) core.ExtensionAnswer

func (f extensions) Call(_ context.Context, call core.ExtensionCall) (core.ExtensionAnswer, error) {
	return f(call), nil
}

type fixture struct {
	db     *store.DB
	bank   *core.Bank
	events *eventLog
	ext    extensions
	mu     sync.Mutex
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := core.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	seqType := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if db.Dialect == store.Postgres {
		seqType = "BIGSERIAL PRIMARY KEY"
	}
	if _, err := db.Exec(`CREATE TABLE test_events (seq ` + seqType + `, type TEXT, subject TEXT, customer_id TEXT, data TEXT)`); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, events: &eventLog{db: db}}
	f.bank = core.New(db, core.Options{Events: f.events, Extensions: extensions(func(call core.ExtensionCall) core.ExtensionAnswer {
		f.mu.Lock()
		ext := f.ext
		f.mu.Unlock()
		if ext == nil {
			return core.ExtensionAnswer{}
		}
		return ext(call)
	})})
	t.Cleanup(func() { f.checkLedger(t) })
	return f
}

func (f *fixture) answer(ext extensions) {
	f.mu.Lock()
	f.ext = ext
	f.mu.Unlock()
}

// checkLedger asserts the ledger invariants; every test ends with it.
func (f *fixture) checkLedger(t *testing.T) {
	t.Helper()
	r, err := f.bank.CheckLedger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Balanced {
		t.Errorf("ledger out of balance: %s", r)
	}
}

var appA, appB = auth.AppCaller("app_a"), auth.AppCaller("app_b")

// appID is the id of a test app caller.
func appID(c auth.Caller) string {
	id, _ := c.App()
	return id
}

func person(name string) core.NewCustomer {
	return core.NewCustomer{
		Type: "person", Name: name, DateOfBirth: "1985-04-12", Email: "someone@example.com",
		Address:        core.Address{Line1: "Keizersgracht 1", City: "Amsterdam", Postcode: "1015 CJ", Country: "NL"},
		DocumentNumber: "NX12345678",
	}
}

func eur(t *testing.T, amount string) core.Money {
	t.Helper()
	m, err := core.ParseMoney(amount, "EUR")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) customerWithAccount(t *testing.T, actor auth.Caller, name, deposit string) (*core.Customer, *core.Account) {
	t.Helper()
	ctx := context.Background()
	c, err := f.bank.CreateCustomer(ctx, actor, person(name))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.bank.OpenAccount(ctx, actor, core.NewAccount{CustomerID: c.ID, Product: "current", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	if deposit != "" {
		if _, err := f.bank.Deposit(ctx, auth.BankProcess(), a.ID, eur(t, deposit), "opening deposit"); err != nil {
			t.Fatal(err)
		}
	}
	return c, a
}

func (f *fixture) balance(t *testing.T, accountID string) (booked, available string) {
	t.Helper()
	b, err := f.bank.Balances(context.Background(), auth.BankProcess(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	return b.Booked.Amount(), b.Available.Amount()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := causeway.ErrorCode(err); got != code {
		t.Errorf("error = %v, want code %s", err, code)
	}
}

func TestCustomersAreVisibleOnlyToTheirAppsAndTheBank(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		c, err := f.bank.CreateCustomer(ctx, appA, person("Ada Lovelace"))
		if err != nil {
			t.Fatal(err)
		}
		if c.KYCStatus != "pending" || c.ID[:4] != "cus_" {
			t.Errorf("new customer = %+v", c)
		}
		if _, err := f.bank.Customer(ctx, appA, c.ID); err != nil {
			t.Errorf("creator cannot see its customer: %v", err)
		}
		_, err = f.bank.Customer(ctx, appB, c.ID)
		wantCode(t, err, "customer_not_found")
		if _, err := f.bank.Customer(ctx, auth.BankProcess(), c.ID); err != nil {
			t.Errorf("bank cannot see the customer: %v", err)
		}
		_, err = f.bank.OpenAccount(ctx, appB, core.NewAccount{CustomerID: c.ID, Product: "current", Currency: "EUR"})
		wantCode(t, err, "customer_not_found")

		page, err := f.bank.Customers(ctx, appB, 0, "")
		if err != nil || len(page.Data) != 0 {
			t.Errorf("app B lists %v, %v", page, err)
		}
		if err := f.bank.GrantCustomer(ctx, auth.BankProcess(), appID(appB), c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.bank.Customer(ctx, appB, c.ID); err != nil {
			t.Errorf("granted app cannot see the customer: %v", err)
		}
		// The grant is listed (for app B only: A's access comes from
		// creating the customer, which is not a grant), and revoking it
		// hides the customer again.
		grants, err := f.bank.Grants(ctx, auth.BankProcess(), "", 0, "")
		if err != nil || len(grants.Data) != 1 || grants.Data[0].AppID != appID(appB) ||
			grants.Data[0].CustomerID != c.ID || grants.Data[0].CustomerName != c.Name {
			t.Errorf("grants = %+v, %v", grants, err)
		}
		if mine, err := f.bank.Grants(ctx, auth.BankProcess(), appID(appA), 0, ""); err != nil || len(mine.Data) != 0 {
			t.Errorf("app A's grants = %+v, %v", mine, err)
		}
		if err := f.bank.RevokeCustomer(ctx, auth.BankProcess(), appID(appB), c.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.bank.Customer(ctx, appB, c.ID)
		wantCode(t, err, "customer_not_found")
		if grants, err := f.bank.Grants(ctx, auth.BankProcess(), "", 0, ""); err != nil || len(grants.Data) != 0 {
			t.Errorf("grants after revoke = %+v, %v", grants, err)
		}
		if got := f.events.types(t, c.ID); len(got) != 1 || got[0] != "customer.created" {
			t.Errorf("events for customer = %v", got)
		}
	})
}

func TestCustomerInputIsValidated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, tt := range []struct {
			mutate func(*core.NewCustomer)
			code   string
		}{
			{func(n *core.NewCustomer) { n.Type = "robot" }, "invalid_customer_type"},
			{func(n *core.NewCustomer) { n.Name = "  " }, "invalid_name"},
			{func(n *core.NewCustomer) { n.DateOfBirth = "12/04/1985" }, "invalid_date_of_birth"},
			{func(n *core.NewCustomer) { n.Email = "not-an-email" }, "invalid_email"},
			{func(n *core.NewCustomer) { n.Address.Country = "XX" }, "invalid_country"},
			{func(n *core.NewCustomer) { n.Geo = &core.Geo{Latitude: 91} }, "invalid_geo"},
		} {
			n := person("Valid Name")
			tt.mutate(&n)
			_, err := f.bank.CreateCustomer(context.Background(), appA, n)
			wantCode(t, err, tt.code)
		}
	})
}

func TestAccountsHaveValidIBANsAndLedgerDerivedBalances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, a := f.customerWithAccount(t, appA, "Grace Hopper", "")
		if _, err := core.ValidateIBAN(a.IBAN); err != nil {
			t.Errorf("account IBAN %s: %v", a.IBAN, err)
		}
		if booked, avail := f.balance(t, a.ID); booked != "0.00" || avail != "0.00" {
			t.Errorf("new account balance = %s/%s", booked, avail)
		}
		f.bank.Deposit(ctx, auth.BankProcess(), a.ID, eur(t, "100.50"), "cash")
		f.bank.Deposit(ctx, auth.BankProcess(), a.ID, eur(t, "0.25"), "cash")
		if booked, _ := f.balance(t, a.ID); booked != "100.75" {
			t.Errorf("balance after deposits = %s, want 100.75", booked)
		}
		_, err := f.bank.OpenAccount(ctx, appA, core.NewAccount{CustomerID: a.CustomerID, Product: "current", Currency: "XYZ"})
		wantCode(t, err, "unknown_currency")
		_, err = f.bank.OpenAccount(ctx, appA, core.NewAccount{CustomerID: a.CustomerID, Product: "loan", Currency: "EUR"})
		wantCode(t, err, "invalid_product")
		_, err = f.bank.Balances(ctx, appB, a.ID)
		wantCode(t, err, "account_not_found")
		_, err = f.bank.CloseAccount(ctx, appA, a.ID)
		wantCode(t, err, "balance_not_zero")
	})
}

func TestInternalTransferBooksBothSidesWithEventsInOneTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Alan Turing", "500.00")
		_, to := f.customerWithAccount(t, appA, "Joan Clarke", "")
		p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{
			DebtorAccountID: from.ID, Creditor: core.Creditor{AccountID: to.ID}, Amount: eur(t, "123.45"), Reference: "rent",
		})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != "completed" || p.FraudCheck == nil || p.FraudCheck.Decision != "approve" || p.FraudCheck.Provider != "builtin" {
			t.Errorf("payment = %+v", p)
		}
		if b, _ := f.balance(t, from.ID); b != "376.55" {
			t.Errorf("debtor balance = %s", b)
		}
		if b, _ := f.balance(t, to.ID); b != "123.45" {
			t.Errorf("creditor balance = %s", b)
		}
		got := f.events.types(t, p.ID)
		if len(got) != 1 || got[0] != "payment.completed" {
			t.Errorf("payment events = %v", got)
		}
		booked := 0
		for _, e := range f.events.all(t) {
			if e.Type == "transaction.booked" {
				booked++
			}
		}
		if booked != 3 { // the deposit, then debit and credit of the transfer
			t.Errorf("transaction.booked events = %d, want 3", booked)
		}
		tx, err := f.bank.Transactions(ctx, appA, to.ID, core.TransactionFilter{})
		if err != nil || len(tx.Data) != 1 || tx.Data[0].Direction != "credit" || tx.Data[0].Amount.Amount() != "123.45" {
			t.Errorf("creditor transactions = %+v, %v", tx, err)
		}
		got2, err := f.bank.Payment(ctx, appA, p.ID)
		if err != nil || got2.Status != "completed" || got2.Amount != p.Amount {
			t.Errorf("Payment = %+v, %v", got2, err)
		}
		_, err = f.bank.Payment(ctx, appB, p.ID)
		wantCode(t, err, "payment_not_found")
	})
}

func TestPaymentToAnotherBankSettlesThroughClearing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, from := f.customerWithAccount(t, appA, "Alan Turing", "50.00")
		p, err := f.bank.CreatePayment(context.Background(), appA, core.NewPayment{
			DebtorAccountID: from.ID, Amount: eur(t, "20.00"),
			Creditor: core.Creditor{IBAN: "DE89 3704 0044 0532 0130 00", Name: "Solar Installers GmbH"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != "completed" || p.Creditor.IBAN != "DE89370400440532013000" {
			t.Errorf("payment = %+v", p)
		}
		if b, _ := f.balance(t, from.ID); b != "30.00" {
			t.Errorf("debtor balance = %s", b)
		}
	})
}

func TestBadPaymentsAreRefusedWithCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Alan Turing", "50.00")
		_, other := f.customerWithAccount(t, appB, "Other Tenant", "")
		usd, _ := core.ParseMoney("1.00", "USD")
		for _, tt := range []struct {
			name string
			n    core.NewPayment
			code string
		}{
			{"zero amount", core.NewPayment{DebtorAccountID: from.ID, Creditor: core.Creditor{IBAN: "DE89370400440532013000", Name: "X"}}, "invalid_amount"},
			{"bad iban", core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "1.00"), Creditor: core.Creditor{IBAN: "DE89370400440532013001", Name: "X"}}, "invalid_iban"},
			{"no creditor name", core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "1.00"), Creditor: core.Creditor{IBAN: "DE89370400440532013000"}}, "invalid_creditor"},
			{"to self", core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "1.00"), Creditor: core.Creditor{AccountID: from.ID}}, "payment_to_self"},
			{"currency mismatch", core.NewPayment{DebtorAccountID: from.ID, Amount: usd, Creditor: core.Creditor{IBAN: "DE89370400440532013000", Name: "X"}}, "currency_mismatch"},
			{"another tenant's debtor", core.NewPayment{DebtorAccountID: other.ID, Amount: eur(t, "1.00"), Creditor: core.Creditor{AccountID: from.ID}}, "account_not_found"},
			{"another tenant's creditor", core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "1.00"), Creditor: core.Creditor{AccountID: other.ID}}, "creditor_not_found"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := f.bank.CreatePayment(ctx, appA, tt.n)
				wantCode(t, err, tt.code)
			})
		}
		_, err := core.ParseMoney("1.001", "EUR")
		wantCode(t, err, "too_many_decimals")

		p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "50.01"),
			Creditor: core.Creditor{IBAN: "DE89370400440532013000", Name: "X"}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != "rejected" || p.Rejection == nil || p.Rejection.Code != "insufficient_funds" {
			t.Errorf("overdrawing payment = %+v", p)
		}
		if got := f.events.types(t, p.ID); len(got) != 1 || got[0] != "payment.rejected" {
			t.Errorf("events = %v", got)
		}

		_, empty := f.customerWithAccount(t, appA, "Closing Soon", "")
		if _, err := f.bank.CloseAccount(ctx, appA, empty.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "1.00"), Creditor: core.Creditor{AccountID: empty.ID}})
		wantCode(t, err, "account_closed")
	})
}

func TestConcurrentPaymentsNeverOverdraw(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Busy Payer", "100.00")
		_, to := f.customerWithAccount(t, appA, "Receiver", "")
		const payers, each = 8, 5 // 40 payments of 3.00 against 100.00: 33 fit
		var wg sync.WaitGroup
		var mu sync.Mutex
		completed, rejected := 0, 0
		for range payers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{
						DebtorAccountID: from.ID, Creditor: core.Creditor{AccountID: to.ID}, Amount: eur(t, "3.00"),
					})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if p.Status == "completed" {
						completed++
					} else if p.Rejection != nil && p.Rejection.Code == "insufficient_funds" {
						rejected++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if completed != 33 || rejected != 7 {
			t.Errorf("completed %d, rejected %d; want 33 and 7", completed, rejected)
		}
		if b, _ := f.balance(t, from.ID); b != "1.00" {
			t.Errorf("debtor balance = %s, want 1.00", b)
		}
		if b, _ := f.balance(t, to.ID); b != "99.00" {
			t.Errorf("creditor balance = %s, want 99.00", b)
		}
	})
}

func TestFraudCheckDecisionsShapePayments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Careful Payer", "100.00")
		pay := func(amount string) *core.Payment {
			t.Helper()
			p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, amount),
				Creditor: core.Creditor{IBAN: "FR1420041010050500013M02606", Name: "Unknown Shop"}})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		var seen core.ExtensionCall
		f.answer(func(call core.ExtensionCall) core.ExtensionAnswer {
			seen = call
			return core.ExtensionAnswer{Answered: true, Provider: "solarworld-fraud", Body: json.RawMessage(`{"decision":"deny","score":91,"reason":"new foreign IBAN above threshold"}`)}
		})
		p := pay("60.00")
		if p.Status != "rejected" || p.Rejection.Code != "fraud_denied" || p.FraudCheck.Reason != "new foreign IBAN above threshold" ||
			p.FraudCheck.Provider != "solarworld-fraud" || p.FraudCheck.Score != 91 {
			t.Errorf("denied payment = %+v %+v", p, p.FraudCheck)
		}
		if seen.Point != "payments.fraud-check" || seen.AppID != "app_a" {
			t.Errorf("extension call = %+v", seen)
		}
		payload, _ := json.Marshal(seen.Payload)
		var body struct {
			Payment struct{ ID string }   `json:"payment"`
			Debtor  struct{ Name string } `json:"debtor"`
		}
		json.Unmarshal(payload, &body)
		if body.Payment.ID != p.ID || body.Debtor.Name != "Careful Payer" {
			t.Errorf("fraud-check payload = %s", payload)
		}

		f.answer(func(core.ExtensionCall) core.ExtensionAnswer {
			return core.ExtensionAnswer{Answered: true, Provider: "p", Body: json.RawMessage(`{"decision":"review","score":55,"reason":"unusual"}`)}
		})
		held := pay("70.00")
		if held.Status != "held" {
			t.Fatalf("review payment = %+v", held)
		}
		if booked, avail := f.balance(t, from.ID); booked != "100.00" || avail != "30.00" {
			t.Errorf("balance while held = %s/%s, want 100.00/30.00", booked, avail)
		}
		if p := pay("40.00"); p.Status != "held" && p.Rejection.Code != "insufficient_funds" {
			t.Errorf("payment beyond available = %+v", p)
		}
		released, err := f.bank.DecideHeldPayment(ctx, auth.BankProcess(), held.ID, true, "")
		if err != nil || released.Status != "completed" {
			t.Fatalf("release = %+v, %v", released, err)
		}
		if booked, avail := f.balance(t, from.ID); booked != "30.00" || avail != "30.00" {
			t.Errorf("balance after release = %s/%s", booked, avail)
		}
		_, err = f.bank.DecideHeldPayment(ctx, auth.BankProcess(), held.ID, true, "")
		wantCode(t, err, "payment_not_held")
		if got := f.events.types(t, held.ID); len(got) != 2 || got[0] != "payment.held" || got[1] != "payment.completed" {
			t.Errorf("held payment events = %v", got)
		}

		f.answer(func(core.ExtensionCall) core.ExtensionAnswer {
			return core.ExtensionAnswer{Answered: true, Failed: true, Provider: "p", Reason: "timed out after 200ms"}
		})
		if p := pay("1.00"); p.Status != "rejected" || p.Rejection.Code != "fraud_denied" {
			t.Errorf("payment with failed provider (fail closed) = %+v", p)
		}
		f.answer(func(core.ExtensionCall) core.ExtensionAnswer {
			return core.ExtensionAnswer{Answered: true, StandIn: true, Provider: "stand-in", Body: json.RawMessage(`{"decision":"approve","score":0,"reason":"stand-in"}`)}
		})
		if p := pay("1.00"); p.Status != "completed" || !p.FraudCheck.StandIn {
			t.Errorf("stand-in payment = %+v", p)
		}
	})
}

func TestStateAndEventsCommitTogether(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Alan Turing", "10.00")
		f.events.fail = errors.New("outbox unavailable")
		_, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "5.00"),
			Creditor: core.Creditor{IBAN: "DE89370400440532013000", Name: "X"}})
		if err == nil {
			t.Fatal("payment succeeded although its events could not be written")
		}
		f.events.fail = nil
		if b, _ := f.balance(t, from.ID); b != "10.00" {
			t.Errorf("balance = %s: the payment was booked without its events", b)
		}
		var n int
		db.QueryRow("SELECT COUNT(*) FROM core_payments").Scan(&n)
		if n != 0 {
			t.Errorf("%d payments stored without their events", n)
		}
	})
}

func TestKYCChecksCombineRulesAndProvider(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		good, _ := f.customerWithAccount(t, appA, "Ada Lovelace", "")
		v, err := f.bank.VerifyCustomer(ctx, appA, good.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Result != "pass" || v.Provider != "builtin" || len(v.Checks) < 4 {
			t.Errorf("verification = %+v", v)
		}
		c, _ := f.bank.Customer(ctx, appA, good.ID)
		if c.KYCStatus != "pass" {
			t.Errorf("kyc_status = %s", c.KYCStatus)
		}
		young := person("Young Person")
		young.DateOfBirth = time.Now().AddDate(-16, 0, 0).Format(time.DateOnly)
		yc, _ := f.bank.CreateCustomer(ctx, appA, young)
		if v, _ := f.bank.VerifyCustomer(ctx, appA, yc.ID); v.Result != "fail" {
			t.Errorf("under-18 result = %s", v.Result)
		}
		f.answer(func(call core.ExtensionCall) core.ExtensionAnswer {
			if call.Point != "kyc.verify" {
				return core.ExtensionAnswer{}
			}
			return core.ExtensionAnswer{Answered: true, Provider: "idv-co", Body: json.RawMessage(`{"result":"refer","checks":[{"name":"liveness","result":"refer","detail":"blurry selfie"}]}`)}
		})
		v, err = f.bank.VerifyCustomer(ctx, appA, good.ID)
		if err != nil || v.Result != "refer" || v.Provider != "idv-co" {
			t.Errorf("with provider = %+v, %v", v, err)
		}
		_, err = f.bank.VerifyCustomer(ctx, appB, good.ID)
		wantCode(t, err, "customer_not_found")
		if n := len(f.events.types(t, v.ID)); n != 1 {
			t.Errorf("kyc events = %d", n)
		}
	})
}

func TestLoanIsDecidedFundedOnceAndScheduled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		c, acc := f.customerWithAccount(t, appA, "Sunny Homeowner", "")
		if _, err := f.bank.VerifyCustomer(ctx, appA, c.ID); err != nil {
			t.Fatal(err)
		}
		l, err := f.bank.ApplyForLoan(ctx, appA, core.NewLoanApplication{
			CustomerID: c.ID, Amount: eur(t, "12000.00"), TermMonths: 60, Purpose: "solar panels", MonthlyIncome: eur(t, "4000.00"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if l.Status != "approved" || l.Decision.Provider != "builtin" || l.Decision.RateBP <= 0 {
			t.Fatalf("application = %+v", l)
		}
		_, err = f.bank.FundLoan(ctx, appB, l.ID, acc.ID)
		wantCode(t, err, "loan_application_not_found")
		funded, err := f.bank.FundLoan(ctx, appA, l.ID, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if funded.Status != "funded" || len(funded.Schedule) != 60 {
			t.Fatalf("funded = %+v", funded)
		}
		var principal int64
		for _, in := range funded.Schedule {
			principal += in.Principal.Minor
		}
		if principal != 1200000 {
			t.Errorf("schedule principal sums to %d, want 1200000", principal)
		}
		if b, _ := f.balance(t, acc.ID); b != "12000.00" {
			t.Errorf("account after funding = %s", b)
		}
		_, err = f.bank.FundLoan(ctx, appA, l.ID, acc.ID)
		wantCode(t, err, "loan_already_funded")
		got, _ := f.bank.LoanApplication(ctx, appA, l.ID)
		if got.Status != "funded" || len(got.Schedule) != 60 || got.FundedAccountID != acc.ID {
			t.Errorf("stored loan = %+v", got)
		}
		if types := f.events.types(t, l.ID); len(types) != 2 || types[0] != "loan.application.decided" || types[1] != "loan.funded" {
			t.Errorf("loan events = %v", types)
		}

		low, err := f.bank.ApplyForLoan(ctx, appA, core.NewLoanApplication{
			CustomerID: c.ID, Amount: eur(t, "90000.00"), TermMonths: 24, Purpose: "yacht", MonthlyIncome: eur(t, "1500.00"),
		})
		if err != nil || low.Status != "declined" {
			t.Errorf("unaffordable loan = %+v, %v", low, err)
		}
		_, err = f.bank.FundLoan(ctx, appA, low.ID, acc.ID)
		wantCode(t, err, "loan_not_approved")

		f.answer(func(call core.ExtensionCall) core.ExtensionAnswer {
			return core.ExtensionAnswer{Answered: true, Provider: "solar-credit", Body: json.RawMessage(`{"decision":"approve","reason":"green bonus","rate_bp":199}`)}
		})
		spi, err := f.bank.ApplyForLoan(ctx, appA, core.NewLoanApplication{
			CustomerID: c.ID, Amount: eur(t, "5000.00"), TermMonths: 36, Purpose: "battery", MonthlyIncome: eur(t, "4000.00"),
		})
		if err != nil || spi.Status != "approved" || spi.Decision.Provider != "solar-credit" || spi.Decision.Rate != "1.99" {
			t.Errorf("SPI-decided loan = %+v, %v", spi, err)
		}
	})
}

func TestSandboxSeedIsDeterministicPerAppAndBalanced(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		seeded, err := f.bank.EnsureBankSandbox(ctx, 7)
		if err != nil || !seeded {
			t.Fatalf("EnsureBankSandbox = %v, %v", seeded, err)
		}
		if again, _ := f.bank.EnsureBankSandbox(ctx, 7); again {
			t.Error("the bank sandbox was seeded twice")
		}
		idsA, err := f.bank.SeedApp(ctx, appID(appA), 42, 2)
		if err != nil {
			t.Fatal(err)
		}
		idsB, err := f.bank.SeedApp(ctx, appID(appB), 42, 2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range idsA {
			ca, _ := f.bank.Customer(ctx, appA, idsA[i])
			cb, _ := f.bank.Customer(ctx, appB, idsB[i])
			if ca.Name != cb.Name || ca.ID == cb.ID {
				t.Errorf("same seed gave %q and %q", ca.Name, cb.Name)
			}
			_, err := f.bank.Customer(ctx, appB, idsA[i])
			wantCode(t, err, "customer_not_found")
			accs, _ := f.bank.Accounts(ctx, appA, core.AccountFilter{CustomerID: ca.ID})
			if len(accs.Data) == 0 {
				t.Fatal("seeded customer without accounts")
			}
			txns, err := f.bank.Transactions(ctx, appA, accs.Data[0].ID, core.TransactionFilter{Limit: 200})
			if err != nil || len(txns.Data) < 30 {
				t.Errorf("seeded history has %d transactions (%v)", len(txns.Data), err)
			}
			b, _ := f.bank.Balances(ctx, appA, accs.Data[0].ID)
			if b.Booked.Minor != txns.Data[0].BalanceAfter.Minor || b.Booked.Minor < 0 {
				t.Errorf("balance %v differs from the latest transaction's balance %v", b.Booked, txns.Data[0].BalanceAfter)
			}
		}
		all, _ := f.bank.Customers(ctx, auth.BankProcess(), 200, "")
		if len(all.Data) != core.BankSandboxCustomers+4 {
			t.Errorf("bank sees %d customers", len(all.Data))
		}
	})
}

func TestTransactionsPageNewestFirstWithinARange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		ids, err := f.bank.SeedApp(ctx, appID(appA), 3, 1)
		if err != nil {
			t.Fatal(err)
		}
		accs, _ := f.bank.Accounts(ctx, appA, core.AccountFilter{CustomerID: ids[0]})
		acc := accs.Data[0].ID
		all, err := f.bank.Transactions(ctx, appA, acc, core.TransactionFilter{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		var paged []*core.Transaction
		cursor := ""
		for {
			page, err := f.bank.Transactions(ctx, appA, acc, core.TransactionFilter{Limit: 7, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page.Data...)
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if len(paged) != len(all.Data) {
			t.Fatalf("paging gave %d transactions, one page %d", len(paged), len(all.Data))
		}
		for i := range paged {
			if paged[i].ID != all.Data[i].ID {
				t.Fatalf("page order differs at %d", i)
			}
			if i > 0 && paged[i].BookedAt.After(paged[i-1].BookedAt) {
				t.Fatalf("not newest first at %d", i)
			}
		}
		to := time.Now().AddDate(0, 0, -30)
		from := to.AddDate(0, 0, -30)
		ranged, err := f.bank.Transactions(ctx, appA, acc, core.TransactionFilter{From: from, To: to, Limit: 200})
		if err != nil || len(ranged.Data) == 0 || len(ranged.Data) >= len(all.Data) {
			t.Fatalf("range gave %d of %d (%v)", len(ranged.Data), len(all.Data), err)
		}
		for _, tx := range ranged.Data {
			if tx.BookedAt.Before(from) || !tx.BookedAt.Before(to) {
				t.Errorf("transaction at %v outside [%v, %v)", tx.BookedAt, from, to)
			}
		}
		_, err = f.bank.Transactions(ctx, appA, acc, core.TransactionFilter{Cursor: "not-a-cursor"})
		wantCode(t, err, "invalid_cursor")
		_, err = f.bank.Transactions(ctx, appA, acc, core.TransactionFilter{Limit: 1000})
		wantCode(t, err, "invalid_limit")
	})
}

func TestPaymentIdempotencyKeyMakesItAtMostOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, from := f.customerWithAccount(t, appA, "Retry Payer", "10.00")
		n := core.NewPayment{DebtorAccountID: from.ID, Amount: eur(t, "4.00"),
			Creditor: core.Creditor{IBAN: "DE89370400440532013000", Name: "X"}, IdempotencyKey: "k-1"}
		var wg sync.WaitGroup
		ids := make([]string, 4)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := f.bank.CreatePayment(ctx, appA, n)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = p.ID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("one key gave payments %v", ids)
			}
		}
		if b, _ := f.balance(t, from.ID); b != "6.00" {
			t.Errorf("balance %s after four calls with one key, want 6.00", b)
		}
		// Another app's same key is its own.
		_, other := f.customerWithAccount(t, appB, "Other", "10.00")
		n.DebtorAccountID = other.ID
		p, err := f.bank.CreatePayment(ctx, appB, n)
		if err != nil || p.ID == ids[0] {
			t.Errorf("app B with the same key: %+v, %v", p, err)
		}
	})
}
