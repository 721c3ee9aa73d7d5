package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/store"
)

const (
	// paymentCustomers is how many customers, each with one funded current
	// account, the transfers move money between.
	paymentCustomers = 64
	// openingBalance is large enough that no random walk of transfers of
	// transferAmount within MaxOps empties an account: a rejected payment
	// would be a different, cheaper path than the one measured.
	openingBalance = 1_000_000_00 // EUR 1,000,000.00
	transferAmount = 1_00         // EUR 1.00
)

// Payments measures internal transfers through the sandbox bank (no events,
// no extension points: the ports are nil) between random pairs of funded
// accounts, against the raw single-row commit rate of the same database.
// It fails when any transfer errors or is not completed, or when the ledger
// does not balance afterwards.
//
// A server's core cannot be driven directly, so with opts.Server the same
// payments go through its API: an app signed up there pays between its
// seeded accounts with POST /v1/payments, each under an Idempotency-Key,
// through the whole node (gateway, idempotency, core, events and any
// fraud-check SPI the bank activated), beside raw commits on this machine
// to the server's kind of database: a SQLite file here, or a fresh schema
// in the PostgreSQL of opts.DatabaseURL, which a server on PostgreSQL
// needs. The ledger check is the bank's (GET /bank/v1/ledger).
func Payments(ctx context.Context, opts Options) (*Report, error) {
	run := payments
	if opts.Server != "" {
		run = paymentsOnServer
	}
	r, err := run(ctx, opts.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	return r, nil
}

func payments(ctx context.Context, opts Options) (*Report, error) {
	raw, err := rawCommits(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	db, err := openFresh(ctx, opts.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	bank, accounts, err := newTransferBank(ctx, db.DB, paymentCustomers)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	transfers, err := runLoad(ctx, opts, func(ctx context.Context, rng *rand.Rand) error {
		return transfer(ctx, bank, accounts, rng)
	})
	if err != nil {
		return nil, fmt.Errorf("a transfer failed after %d succeeded: %w", transfers.ops, err)
	}
	ledger, err := bank.CheckLedger(ctx)
	if err != nil {
		return nil, fmt.Errorf("check ledger: %w", err)
	}
	if !ledger.Balanced {
		return nil, fmt.Errorf("ledger out of balance after %d transfers: %s", transfers.ops, ledger)
	}

	r := NewReport("payments", opts.runtime(false))
	r.Figures = append(r.Figures,
		NewFigure("transfers_per_s", transfers.perSecond(), "1/s", rawName(opts, "commits_per_s"), raw.perSecond()),
		NewFigure("transfer_latency_p50", ms(transfers.percentile(0.50)), "ms", rawName(opts, "commit_latency_p50"), ms(raw.percentile(0.50))),
		NewFigure("transfer_latency_p99", ms(transfers.percentile(0.99)), "ms", rawName(opts, "commit_latency_p99"), ms(raw.percentile(0.99))),
	)
	return r, nil
}

func paymentsOnServer(ctx context.Context, opts Options) (*Report, error) {
	srv, err := connectServer(ctx, opts, opts.Concurrency)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	// The baseline commits to the kind of database the server commits to.
	switch db := srv.Runtime.Database; {
	case db == string(store.Postgres) && opts.DatabaseURL == "":
		return nil, fmt.Errorf("the server at %s runs on PostgreSQL, and its raw-commit baseline needs one too: give --database-url (the server's database, where a fresh schema is made and dropped)", srv.URL)
	case db == string(store.SQLite) && opts.DatabaseURL != "":
		return nil, fmt.Errorf("the server at %s runs on SQLite: leave out --database-url, so that its raw-commit baseline runs on a SQLite file too", srv.URL)
	case db != string(store.Postgres) && db != string(store.SQLite):
		return nil, fmt.Errorf("the server at %s runs on database %q, which has no raw-commit baseline", srv.URL, db)
	}
	raw, err := rawCommits(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	app, err := srv.signUp(ctx, "Payments benchmark", []string{auth.ScopeAccountsRead, auth.ScopePaymentsWrite})
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	tokens := srv.tokens(ctx, app)
	tok, err := tokens.Token()
	if err != nil {
		return nil, fmt.Errorf("setup: access token: %w", err)
	}
	// The seeded balances are smaller than openingBalance: pay less.
	const amount = 1 // EUR 0.01
	accounts, err := srv.fundedAccounts(ctx, tok.AccessToken, amount)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	payer := newAPIPayer(srv.api, tokens, accounts, amount, "benchmark transfer")
	paid, err := runLoad(ctx, opts, payer.pay)
	if err != nil {
		return nil, fmt.Errorf("a payment failed after %d succeeded: %w", paid.ops, err)
	}
	var ledger core.LedgerReport
	if err := srv.call(ctx, http.MethodGet, "/bank/v1/ledger", srv.Admin, nil, http.StatusOK, &ledger); err != nil {
		return nil, fmt.Errorf("check ledger: %w", err)
	}
	if !ledger.Balanced {
		return nil, fmt.Errorf("the server's ledger is out of balance after %d payments: %+v", paid.ops, ledger)
	}

	// Named apart from the in-process figures: a payment over the API is
	// more than a transfer through the core.
	r := srv.report("payments")
	r.Figures = append(r.Figures,
		NewFigure("api_payments_per_s", paid.perSecond(), "1/s", rawName(opts, "commits_per_s"), raw.perSecond()),
		NewFigure("api_payment_latency_p50", ms(paid.percentile(0.50)), "ms", rawName(opts, "commit_latency_p50"), ms(raw.percentile(0.50))),
		NewFigure("api_payment_latency_p99", ms(paid.percentile(0.99)), "ms", rawName(opts, "commit_latency_p99"), ms(raw.percentile(0.99))),
	)
	return r, nil
}

// newTransferBank migrates the bank's tables into db and opens n customers,
// each with a current account funded with openingBalance. It returns the
// account ids.
func newTransferBank(ctx context.Context, db *store.DB, n int) (*core.Bank, []string, error) {
	if err := core.Migrate(ctx, db); err != nil {
		return nil, nil, err
	}
	bank := core.New(db, core.Options{})
	accounts := make([]string, n)
	for i := range n {
		c, err := bank.CreateCustomer(ctx, auth.BankProcess(), core.NewCustomer{
			Type: core.CustomerPerson, Name: fmt.Sprintf("Bench Customer %02d", i+1), DateOfBirth: "1980-01-01",
			Email:   fmt.Sprintf("bench%02d@example.com", i+1),
			Address: core.Address{Line1: "Damrak 1", City: "Amsterdam", Postcode: "1012 LG", Country: "NL"},
		})
		if err != nil {
			return nil, nil, err
		}
		a, err := bank.OpenAccount(ctx, auth.BankProcess(), core.NewAccount{CustomerID: c.ID, Product: core.ProductCurrent, Currency: "EUR"})
		if err != nil {
			return nil, nil, err
		}
		if _, err := bank.Deposit(ctx, auth.BankProcess(), a.ID, core.Money{Minor: openingBalance, Currency: "EUR"}, "opening deposit"); err != nil {
			return nil, nil, err
		}
		accounts[i] = a.ID
	}
	return bank, accounts, nil
}

// transfer pays transferAmount from one random account to another and
// fails unless the payment completed.
func transfer(ctx context.Context, bank *core.Bank, accounts []string, rng *rand.Rand) error {
	from, to := pickPair(rng, len(accounts))
	p, err := bank.CreatePayment(ctx, auth.BankProcess(), core.NewPayment{
		DebtorAccountID: accounts[from],
		Creditor:        core.Creditor{AccountID: accounts[to]},
		Amount:          core.Money{Minor: transferAmount, Currency: "EUR"},
		Reference:       "benchmark transfer",
	})
	if err != nil {
		return err
	}
	if p.Status != core.PaymentCompleted {
		return fmt.Errorf("payment %s is %s, not completed: %+v", p.ID, p.Status, p.Rejection)
	}
	return nil
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
