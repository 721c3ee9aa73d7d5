package events_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/events"
)

// eventLog is the sandbox bank's EventWriter in this test: it keeps the
// events as JSON, the way the platform's writer encodes them.
type eventLog struct {
	mu     sync.Mutex
	events []struct {
		typ  string
		data json.RawMessage
	}
}

func (l *eventLog) WriteEvents(_ context.Context, _ *sql.Tx, evs []core.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range evs {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return err
		}
		l.events = append(l.events, struct {
			typ  string
			data json.RawMessage
		}{e.Type, data})
	}
	return nil
}

type fraudAnswer string

func (f fraudAnswer) Call(_ context.Context, call core.ExtensionCall) (core.ExtensionAnswer, error) {
	if call.Point != core.PointFraudCheck || f == "" {
		return core.ExtensionAnswer{}, nil
	}
	return core.ExtensionAnswer{Answered: true, Provider: "test-fraud", Body: json.RawMessage(f)}, nil
}

// TestBuiltinSchemasMatchWhatTheSandboxBankEmits runs the sandbox bank
// through every kind of event it emits and checks each one's data against
// the catalog, so the schemas cannot drift from the bank.
func TestBuiltinSchemasMatchWhatTheSandboxBankEmits(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	ctx := context.Background()
	if err := core.Migrate(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	log := &eventLog{}
	var fraud fraudAnswer
	var mu sync.Mutex
	bank := core.New(e.db, core.Options{Events: log, Extensions: extensionFunc(func(ctx context.Context, call core.ExtensionCall) (core.ExtensionAnswer, error) {
		mu.Lock()
		f := fraud
		mu.Unlock()
		return f.Call(ctx, call)
	})})
	setFraud := func(body string) { mu.Lock(); fraud = fraudAnswer(body); mu.Unlock() }
	app := auth.AppCaller("app_a")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eur := func(amount string) core.Money {
		m, err := core.ParseMoney(amount, "EUR")
		must(err)
		return m
	}
	income := eur("4200.00")
	customer, err := bank.CreateCustomer(ctx, app, core.NewCustomer{
		Type: "person", Name: "Ada Lovelace", DateOfBirth: "1985-04-12", Email: "ada@example.com", Phone: "+31 20 555 0100",
		Address:        core.Address{Line1: "Keizersgracht 1", City: "Amsterdam", Postcode: "1015 CJ", Country: "NL"},
		DocumentNumber: "NX12345678", Homeowner: true, Geo: &core.Geo{Latitude: 52.37, Longitude: 4.9}, MonthlyIncome: &income,
	})
	must(err)
	business, err := bank.CreateCustomer(ctx, app, core.NewCustomer{
		Type: "business", Name: "Solar World BV", Email: "finance@solarworld.example",
		Address: core.Address{Line1: "Zonnelaan 7", City: "Utrecht", Postcode: "3511 AA", Country: "NL"},
	})
	must(err)
	_, err = bank.VerifyCustomer(ctx, app, customer.ID)
	must(err)
	current, err := bank.OpenAccount(ctx, app, core.NewAccount{CustomerID: customer.ID, Product: "current", Currency: "EUR", Name: "Daily"})
	must(err)
	savings, err := bank.OpenAccount(ctx, app, core.NewAccount{CustomerID: business.ID, Product: "savings", Currency: "EUR"})
	must(err)
	_, err = bank.Deposit(ctx, auth.BankProcess(), current.ID, eur("2000.00"), "salary")
	must(err)
	_, err = bank.CreatePayment(ctx, app, core.NewPayment{DebtorAccountID: current.ID, Creditor: core.Creditor{AccountID: savings.ID}, Amount: eur("42.50"), Reference: "Invoice 2026-031"})
	must(err)
	_, err = bank.CreatePayment(ctx, app, core.NewPayment{DebtorAccountID: current.ID, Creditor: core.Creditor{IBAN: "DE89370400440532013000", Name: "Elsewhere GmbH"}, Amount: eur("10.00"), Reference: "outside"})
	must(err)
	_, err = bank.CreatePayment(ctx, app, core.NewPayment{DebtorAccountID: current.ID, Creditor: core.Creditor{AccountID: savings.ID}, Amount: eur("99999.00"), Reference: "too much"})
	must(err)
	setFraud(`{"decision":"review","score":71,"reason":"new payee"}`)
	held, err := bank.CreatePayment(ctx, app, core.NewPayment{DebtorAccountID: current.ID, Creditor: core.Creditor{AccountID: savings.ID}, Amount: eur("5.00"), Reference: "held"})
	must(err)
	setFraud(`{"decision":"deny","score":95,"reason":"mule account"}`)
	_, err = bank.CreatePayment(ctx, app, core.NewPayment{DebtorAccountID: current.ID, Creditor: core.Creditor{AccountID: savings.ID}, Amount: eur("6.00"), Reference: "denied"})
	must(err)
	setFraud("")
	_, err = bank.DecideHeldPayment(ctx, auth.BankProcess(), held.ID, true, "looked fine")
	must(err)
	loan, err := bank.ApplyForLoan(ctx, app, core.NewLoanApplication{CustomerID: customer.ID, Amount: eur("12000.00"), TermMonths: 24, Purpose: "solar panels", MonthlyIncome: eur("4200.00")})
	must(err)
	_, err = bank.FundLoan(ctx, app, loan.ID, current.ID)
	must(err)
	_, err = bank.ApplyForLoan(ctx, app, core.NewLoanApplication{CustomerID: customer.ID, Amount: eur("90000.00"), TermMonths: 12, Purpose: "yacht", MonthlyIncome: eur("1500.00")})
	must(err)

	schemas := map[string]json.RawMessage{}
	var c catalog
	e.asApp(t, "app_a", "/v1/event-types").decode(t, &c)
	for _, et := range c.Data {
		schemas[et.Type] = et.Schema
	}
	seen := map[string]int{}
	for _, ev := range log.events {
		raw, ok := schemas[ev.typ]
		if !ok {
			t.Errorf("the sandbox bank emits %s, which is not in the catalog", ev.typ)
			continue
		}
		seen[ev.typ]++
		if err := validate(t, compile(t, ev.typ, raw), ev.data); err != nil {
			t.Errorf("%s data does not match its schema: %v\n%s", ev.typ, err, ev.data)
		}
	}
	t.Logf("checked %v", seen)
	for _, typ := range []string{"customer.created", "account.opened", "transaction.booked", "payment.completed",
		"payment.rejected", "payment.held", "kyc.check.completed", "loan.application.decided", "loan.funded"} {
		if seen[typ] == 0 {
			t.Errorf("the run produced no %s event to check", typ)
		}
	}
}

type extensionFunc func(context.Context, core.ExtensionCall) (core.ExtensionAnswer, error)

func (f extensionFunc) Call(ctx context.Context, call core.ExtensionCall) (core.ExtensionAnswer, error) {
	return f(ctx, call)
}
