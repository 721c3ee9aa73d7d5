// Package client is the Go SDK for Causeway's public banking API: the
// customers, accounts, balances, transactions, payments, KYC checks, loan
// applications and offers under /v1, called by an app with its OAuth2 client
// credentials.
//
// A Client gets an access token from baseURL+"/oauth2/token" on first use and
// a new one shortly before the old one expires; callers never see tokens:
//
//	c := client.New("https://causeway.example", clientID, clientSecret)
//	for acc, err := range c.AllAccounts(ctx, client.AccountFilter{}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(acc.ID, acc.IBAN)
//	}
//	pay, err := c.CreatePayment(ctx, client.NewPayment{
//		DebtorAccountID: accountID,
//		Creditor:        client.Creditor{IBAN: "DE89370400440532013000", Name: "Solar Installers GmbH"},
//		Amount:          client.EUR("8500.00"),
//		Reference:       "invoice 1042",
//	}, client.WithIdempotencyKey("invoice-1042"))
//
// Money is always a decimal string with its currency ({"amount":"12.34",
// "currency":"EUR"}), never a float.
//
// Every call that creates something carries an Idempotency-Key (a random
// one unless WithIdempotencyKey gives it), so the SDK retries any app call
// once, with the same key, after a network error or a 503: the platform runs
// the request at most once and replays its answer to the retry. Pass your
// own key, derived from your order or invoice, to make your own retries
// safe too, across process restarts.
//
// A response other than 2xx is returned as an *Error carrying the RFC 9457
// problem's status, machine code, title, detail and request id:
//
//	var e *client.Error
//	if errors.As(err, &e) && e.Code == "insufficient_funds" { ... }
//	if client.IsNotFound(err) { ... }
//
// SignUp and LogIn give a developer session that creates apps, for demos
// and onboarding scripts; production code holds only the app's client id and
// secret.
//
// The package imports nothing of the platform's internals: every type here
// mirrors the JSON contract, and fields the platform adds later are ignored
// until the SDK learns them.
package client
