package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/client"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

var allScopes = []string{
	client.ScopeAccountsRead, client.ScopeCustomersWrite, client.ScopePaymentsWrite, client.ScopeKYCWrite,
	client.ScopeLoansWrite, client.ScopeEventsRead, client.ScopeWebhooksWrite, client.ScopeSPIWrite, client.ScopeDataRead,
}

// newApp signs a developer up and creates an app with every scope, all
// through the SDK, and returns the app's credentials.
func newApp(t *testing.T, baseURL, email string) *client.App {
	t.Helper()
	dev, err := client.SignUp(t.Context(), baseURL, email, "correct horse battery staple", "SolarWorld")
	if err != nil {
		t.Fatalf("sign up: %v", err)
	}
	if dev.ID == "" || dev.Token == "" {
		t.Fatalf("developer = %+v", dev)
	}
	app, err := dev.CreateApp(t.Context(), "Solar app", allScopes)
	if err != nil {
		t.Fatalf("create app: %v", err)
	}
	if app.Status != "active" || app.ClientID == "" || app.ClientSecret == "" {
		t.Fatalf("app = %+v", app)
	}
	return app
}

// TestSDKAgainstARealNode drives the public API through the SDK on both
// runtimes: a developer signs up and creates an app, and the app walks its
// seeded accounts, onboards a customer through to a funded loan and an
// idempotent payment, is refused another tenant's account, and sees the
// problem codes of bad input and bad credentials.
func TestSDKAgainstARealNode(t *testing.T) {
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		appA := newApp(t, n.URL, "a@solarworld.example")
		a := client.New(n.URL, appA.ClientID, appA.ClientSecret)

		t.Run("AllAccountsWalksEveryPageOfTheSeededAccounts", func(t *testing.T) {
			ctx := t.Context()
			one, err := a.Accounts(ctx, client.AccountFilter{Limit: 200})
			if err != nil {
				t.Fatal(err)
			}
			if len(one.Data) < 3 || one.NextCursor != "" {
				t.Fatalf("one big page: %d accounts, next %q; want the seeded accounts on one page", len(one.Data), one.NextCursor)
			}
			var walked []string
			for acc, err := range a.AllAccounts(ctx, client.AccountFilter{Limit: 2}) {
				if err != nil {
					t.Fatal(err)
				}
				walked = append(walked, acc.ID)
			}
			if len(walked) != len(one.Data) {
				t.Fatalf("walked %d accounts two at a time, one page has %d", len(walked), len(one.Data))
			}
			for i, acc := range one.Data {
				if walked[i] != acc.ID {
					t.Errorf("account %d: walked %s, page has %s", i, walked[i], acc.ID)
				}
			}
			// Breaking out of the loop is allowed and stops the walk.
			for range a.AllAccounts(ctx, client.AccountFilter{Limit: 1}) {
				break
			}
			bal, err := a.Balances(ctx, one.Data[0].ID)
			if err != nil || bal.AccountID != one.Data[0].ID || bal.Booked.Currency == "" {
				t.Errorf("balances = %+v, %v", bal, err)
			}
		})

		t.Run("OnboardingKYCLoanFundingAndAnIdempotentPayment", func(t *testing.T) {
			ctx := t.Context()
			cus, err := a.CreateCustomer(ctx, client.NewCustomer{
				Type: client.CustomerPerson, Name: "Maria Jansen", DateOfBirth: "1980-02-29", Email: "maria@example.com",
				Address:        client.Address{Line1: "Zonnelaan 7", City: "Utrecht", Postcode: "3511 AB", Country: "NL"},
				DocumentNumber: "NL1234567", Homeowner: true, Geo: &client.Geo{Latitude: 52.09, Longitude: 5.12},
			})
			if err != nil {
				t.Fatalf("create customer: %v", err)
			}
			if got, err := a.Customer(ctx, cus.ID); err != nil || got.Name != "Maria Jansen" {
				t.Errorf("customer = %+v, %v", got, err)
			}
			found := false
			for c, err := range a.AllCustomers(ctx, client.ListOptions{Limit: 2}) {
				if err != nil {
					t.Fatal(err)
				}
				found = found || c.ID == cus.ID
			}
			if !found {
				t.Errorf("AllCustomers misses %s", cus.ID)
			}

			acc, err := a.OpenAccount(ctx, client.NewAccount{CustomerID: cus.ID, Product: client.ProductCurrent, Currency: "EUR"})
			if err != nil {
				t.Fatalf("open account: %v", err)
			}
			if acc.IBAN == "" || acc.CustomerID != cus.ID {
				t.Errorf("account = %+v", acc)
			}
			if got, err := a.Account(ctx, acc.ID); err != nil || got.IBAN != acc.IBAN {
				t.Errorf("account = %+v, %v", got, err)
			}
			page, err := a.Accounts(ctx, client.AccountFilter{CustomerID: cus.ID})
			if err != nil || len(page.Data) != 1 || page.Data[0].ID != acc.ID {
				t.Errorf("the customer's accounts = %+v, %v", page, err)
			}

			kyc, err := a.CreateKYCCheck(ctx, cus.ID)
			if err != nil || kyc.Result != client.KYCPass || len(kyc.Checks) == 0 {
				t.Fatalf("kyc = %+v, %v", kyc, err)
			}
			if got, err := a.KYCCheck(ctx, kyc.ID); err != nil || got.Result != kyc.Result {
				t.Errorf("kyc again = %+v, %v", got, err)
			}

			loan, err := a.ApplyForLoan(ctx, client.NewLoanApplication{
				CustomerID: cus.ID, Amount: client.EUR("9000.00"), TermMonths: 48,
				Purpose: "solar panels", MonthlyIncome: client.EUR("3800.00"),
			})
			if err != nil || loan.Status != client.LoanApproved {
				t.Fatalf("loan = %+v, %v", loan, err)
			}
			funded, err := a.FundLoan(ctx, loan.ID, acc.ID)
			if err != nil || funded.Status != client.LoanFunded || len(funded.Schedule) != 48 || funded.Schedule[0].Principal.Currency != "EUR" {
				t.Fatalf("funded = %+v, %v", funded, err)
			}
			if got, err := a.LoanApplication(ctx, loan.ID); err != nil || got.FundedAccountID != acc.ID {
				t.Errorf("loan again = %+v, %v", got, err)
			}

			pay := client.NewPayment{
				DebtorAccountID: acc.ID,
				Creditor:        client.Creditor{IBAN: "DE89370400440532013000", Name: "Solar Installers GmbH"},
				Amount:          client.EUR("8500.00"),
				Reference:       "panels",
			}
			p1, err := a.CreatePayment(ctx, pay, client.WithIdempotencyKey("order-1"))
			if err != nil {
				t.Fatalf("payment: %v", err)
			}
			p2, err := a.CreatePayment(ctx, pay, client.WithIdempotencyKey("order-1"))
			if err != nil {
				t.Fatalf("payment again: %v", err)
			}
			if p1.Status != client.PaymentCompleted || p1.ID != p2.ID {
				t.Errorf("same key twice: %s %s then %s", p1.ID, p1.Status, p2.ID)
			}
			if got, err := a.Payment(ctx, p1.ID); err != nil || got.Amount != client.EUR("8500.00") {
				t.Errorf("payment = %+v, %v", got, err)
			}
			bal, err := a.Balances(ctx, acc.ID)
			if err != nil || bal.Booked != client.EUR("500.00") {
				t.Errorf("balance after one (replayed) payment = %+v, %v; want 500.00 EUR", bal, err)
			}
			// Without a key each call gets its own: two payments.
			small := pay
			small.Amount = client.EUR("1.00")
			q1, err1 := a.CreatePayment(ctx, small)
			q2, err2 := a.CreatePayment(ctx, small)
			if err1 != nil || err2 != nil || q1.ID == q2.ID {
				t.Errorf("two payments without a key: %v %v, %v %v", q1, err1, q2, err2)
			}

			var booked []client.Transaction
			for txn, err := range a.AllTransactions(ctx, acc.ID, client.TransactionFilter{Limit: 2}) {
				if err != nil {
					t.Fatal(err)
				}
				booked = append(booked, txn)
			}
			if len(booked) != 4 { // disbursement, 8500.00, 1.00, 1.00
				t.Errorf("transactions = %+v, want 4", booked)
			}
			offers, err := a.Offers(ctx, cus.ID)
			if err != nil || len(offers) == 0 {
				t.Errorf("offers for a homeowner = %+v, %v", offers, err)
			}
		})

		t.Run("AnotherTenantsAccountIsNotFound", func(t *testing.T) {
			ctx := t.Context()
			appB := newApp(t, n.URL, "b@solarworld.example")
			b := client.New(n.URL, appB.ClientID, appB.ClientSecret)
			aAccounts, err := a.Accounts(ctx, client.AccountFilter{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			bAccounts, err := b.Accounts(ctx, client.AccountFilter{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			theirs, mine := aAccounts.Data[0], bAccounts.Data[0]
			_, err = b.CreatePayment(ctx, client.NewPayment{
				DebtorAccountID: mine.ID, Creditor: client.Creditor{AccountID: theirs.ID}, Amount: client.NewMoney("1.00", mine.Currency),
			})
			var e *client.Error
			if !client.IsNotFound(err) || !errors.As(err, &e) || e.Code != "creditor_not_found" {
				t.Errorf("payment to another tenant's account: %v, want 404 creditor_not_found", err)
			}
			if _, err := b.Account(ctx, theirs.ID); !client.IsNotFound(err) {
				t.Errorf("another tenant's account: %v, want 404", err)
			}
			if _, err := b.Customer(ctx, theirs.CustomerID); !client.IsNotFound(err) {
				t.Errorf("another tenant's customer: %v, want 404", err)
			}
		})

		t.Run("AProblemSurfacesItsCode", func(t *testing.T) {
			ctx := t.Context()
			accs, err := a.Accounts(ctx, client.AccountFilter{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			acc := accs.Data[0]
			_, err = a.CreatePayment(ctx, client.NewPayment{
				DebtorAccountID: acc.ID, Creditor: client.Creditor{IBAN: "DE89370400440532013000", Name: "x"},
				Amount: client.NewMoney("1.001", acc.Currency),
			})
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *client.Error", err)
			}
			if e.Status != 422 || e.Code != "too_many_decimals" || e.Detail == "" || e.RequestID == "" || client.IsNotFound(err) {
				t.Errorf("error = %+v", e)
			}
			if !strings.Contains(err.Error(), "too_many_decimals") {
				t.Errorf("message %q does not name the code", err)
			}
		})

		t.Run("AWrongSecretIsInvalidClient", func(t *testing.T) {
			bad := client.New(n.URL, appA.ClientID, "not-the-secret")
			_, err := bad.Accounts(t.Context(), client.AccountFilter{})
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_client" || !strings.Contains(err.Error(), "invalid_client") {
				t.Errorf("wrong secret: %v (%+v), want 401 invalid_client", err, e)
			}
		})

		t.Run("NarrowScopesAreEnforced", func(t *testing.T) {
			ro := client.New(n.URL, appA.ClientID, appA.ClientSecret, client.WithScopes(client.ScopeAccountsRead))
			ctx := t.Context()
			if _, err := ro.Accounts(ctx, client.AccountFilter{Limit: 1}); err != nil {
				t.Fatalf("read with accounts:read: %v", err)
			}
			_, err := ro.CreateKYCCheck(ctx, "cus_whatever")
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 403 || e.Code != "insufficient_scope" {
				t.Errorf("write with a read-only token: %v, want 403 insufficient_scope", err)
			}
		})

		t.Run("LogInGivesASessionThatCreatesApps", func(t *testing.T) {
			ctx := t.Context()
			if _, err := client.LogIn(ctx, n.URL, "a@solarworld.example", "wrong password!"); err == nil {
				t.Error("log in with a wrong password succeeded")
			}
			dev, err := client.LogIn(ctx, n.URL, "a@solarworld.example", "correct horse battery staple")
			if err != nil {
				t.Fatal(err)
			}
			app, err := dev.CreateApp(ctx, "second", []string{client.ScopeAccountsRead})
			if err != nil || app.ClientSecret == "" {
				t.Fatalf("app = %+v, %v", app, err)
			}
			if _, err := client.New(n.URL, app.ClientID, app.ClientSecret).Accounts(ctx, client.AccountFilter{}); err != nil {
				t.Error(err)
			}
		})
	})
}
