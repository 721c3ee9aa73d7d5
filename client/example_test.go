package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/causewayhq/causeway/client"
)

// An app lists its accounts, onboards a customer, and pays an invoice
// exactly once however often the call is retried. (Compiled, not run: it
// needs a platform and an app's credentials.)
func Example() {
	ctx := context.Background()
	c := client.New("https://causeway.example", "app-client-id", "app-client-secret")

	for acc, err := range c.AllAccounts(ctx, client.AccountFilter{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(acc.ID, acc.IBAN, acc.Currency)
	}

	cus, err := c.CreateCustomer(ctx, client.NewCustomer{
		Type: client.CustomerPerson, Name: "Maria Jansen", DateOfBirth: "1980-02-29", Email: "maria@example.com",
		Address:        client.Address{Line1: "Zonnelaan 7", City: "Utrecht", Postcode: "3511 AB", Country: "NL"},
		DocumentNumber: "NL1234567",
	})
	if err != nil {
		log.Fatal(err)
	}
	acc, err := c.OpenAccount(ctx, client.NewAccount{CustomerID: cus.ID, Product: client.ProductCurrent, Currency: "EUR"})
	if err != nil {
		log.Fatal(err)
	}

	pay, err := c.CreatePayment(ctx, client.NewPayment{
		DebtorAccountID: acc.ID,
		Creditor:        client.Creditor{IBAN: "DE89370400440532013000", Name: "Solar Installers GmbH"},
		Amount:          client.EUR("85.00"),
		Reference:       "invoice 1042",
	}, client.WithIdempotencyKey("invoice-1042"))
	var e *client.Error
	switch {
	case errors.As(err, &e) && e.Code == "too_many_decimals":
		log.Fatalf("fix the amount: %s", e.Detail)
	case err != nil:
		log.Fatal(err)
	case pay.Status == client.PaymentRejected:
		fmt.Println("rejected:", pay.Rejection.Code) // e.g. insufficient_funds
	default:
		fmt.Println(pay.ID, pay.Status)
	}
}

// A demo or onboarding script signs a developer up and creates an app.
func ExampleSignUp() {
	ctx := context.Background()
	dev, err := client.SignUp(ctx, "http://localhost:8080", "dev@solarworld.example", "correct horse battery staple", "SolarWorld")
	if err != nil {
		log.Fatal(err)
	}
	app, err := dev.CreateApp(ctx, "Solar app", []string{client.ScopeAccountsRead, client.ScopePaymentsWrite})
	if err != nil {
		log.Fatal(err)
	}
	c := client.New("http://localhost:8080", app.ClientID, app.ClientSecret)
	_ = c
}

func ExampleFromMinorUnits() {
	fmt.Println(client.FromMinorUnits(123456, "EUR"))
	fmt.Println(client.FromMinorUnits(5, "EUR"))
	fmt.Println(client.FromMinorUnits(1500, "JPY"))
	// Output:
	// 1234.56 EUR
	// 0.05 EUR
	// 1500 JPY
}
