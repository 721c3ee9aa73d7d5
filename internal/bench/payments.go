package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

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
func Payments(ctx context.Context, opts Options) (*Report, error) {
	r, err := payments(ctx, opts.withDefaults())
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
		c, err := bank.CreateCustomer(ctx, core.BankActor, core.NewCustomer{
			Type: core.CustomerPerson, Name: fmt.Sprintf("Bench Customer %02d", i+1), DateOfBirth: "1980-01-01",
			Email:   fmt.Sprintf("bench%02d@example.com", i+1),
			Address: core.Address{Line1: "Damrak 1", City: "Amsterdam", Postcode: "1012 LG", Country: "NL"},
		})
		if err != nil {
			return nil, nil, err
		}
		a, err := bank.OpenAccount(ctx, core.BankActor, core.NewAccount{CustomerID: c.ID, Product: core.ProductCurrent, Currency: "EUR"})
		if err != nil {
			return nil, nil, err
		}
		if _, err := bank.Deposit(ctx, a.ID, core.Money{Minor: openingBalance, Currency: "EUR"}, "opening deposit"); err != nil {
			return nil, nil, err
		}
		accounts[i] = a.ID
	}
	return bank, accounts, nil
}

// transfer pays transferAmount from one random account to another and
// fails unless the payment completed.
func transfer(ctx context.Context, bank *core.Bank, accounts []string, rng *rand.Rand) error {
	from := rng.IntN(len(accounts))
	to := rng.IntN(len(accounts) - 1)
	if to >= from {
		to++
	}
	p, err := bank.CreatePayment(ctx, core.BankActor, core.NewPayment{
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
