package core

import (
	"context"
	"database/sql"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// Sandbox sizes.
const (
	SandboxDays          = 90 // days of history per account
	BankSandboxCustomers = 8  // seeded once per installation, visible to the bank
	AppSandboxCustomers  = 3  // seeded for each new app in sandbox mode
)

// EnsureBankSandbox seeds the installation's own sandbox customers once:
// the first node to start does it, in one transaction, and every later start
// (or other node) finds it done. It reports whether it seeded.
func (b *Bank) EnsureBankSandbox(ctx context.Context, seed uint64) (bool, error) {
	seeded := false
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO core_sequences (name, value) VALUES ('bank_sandbox_seed', $1)
			ON CONFLICT (name) DO NOTHING`, int64(seed>>1))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		seeded = true
		_, err = b.seed(ctx, tx, "", seed, BankSandboxCustomers)
		return err
	})
	return seeded, err
}

// SeedApp gives an app its own fresh copy of sandbox customers, accounts and
// history, generated from seed (so the same seed gives the same data), and
// returns the new customers' ids. Seeding writes no events: it is history,
// not news.
func (b *Bank) SeedApp(ctx context.Context, appID string, seed uint64, customers int) ([]string, error) {
	if appID == "" {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_app", "app id is required")
	}
	var out []string
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = b.seed(ctx, tx, appID, seed, customers)
		return err
	})
	return out, err
}

// rowBatch collects rows for multi-row INSERTs, which are many times faster
// than one statement per row on both engines.
type rowBatch struct {
	dialect store.Dialect
	head    string // INSERT INTO t (a, b, c) VALUES
	columns int
	rows    int
	args    []any
}

// maxBatchRows bounds the rows of one INSERT, well under either engine's
// limit on parameters (SQLite 32766, PostgreSQL 65535) for our tables.
const maxBatchRows = 200

func entryBatch(dialect store.Dialect) *rowBatch {
	return &rowBatch{dialect: dialect, head: "INSERT INTO core_entries (id, kind, reference, created_at) VALUES ", columns: 4}
}

func postingBatch(dialect store.Dialect) *rowBatch {
	return &rowBatch{dialect: dialect, head: `INSERT INTO core_postings (id, entry_id, account_id, amount, currency, balance_after,
		description, counterparty_name, counterparty_iban, booked_at) VALUES `, columns: 10}
}

func (bt *rowBatch) add(values ...any) {
	bt.args = append(bt.args, values...)
	bt.rows++
}

// flush inserts the rows collected, at most maxBatchRows per statement,
// and empties the batch.
func (bt *rowBatch) flush(ctx context.Context, tx store.Querier) error {
	for done := 0; done < bt.rows; done += maxBatchRows {
		n := min(bt.rows-done, maxBatchRows)
		args := bt.args[done*bt.columns : (done+n)*bt.columns]
		if _, err := tx.ExecContext(ctx, bt.head+bt.dialect.Values(n, bt.columns), args...); err != nil {
			return err
		}
	}
	bt.rows, bt.args = 0, bt.args[:0]
	return nil
}

// flushEntries writes entries before their postings (foreign key).
func flushEntries(ctx context.Context, tx store.Querier, entries, postings *rowBatch) error {
	if err := entries.flush(ctx, tx); err != nil {
		return err
	}
	return postings.flush(ctx, tx)
}

func (b *Bank) seed(ctx context.Context, tx *sql.Tx, appID string, seed uint64, customers int) ([]string, error) {
	now := b.now().UTC().Truncate(time.Microsecond)
	data := GenerateSandbox(seed, customers, SandboxDays, now)
	cash, err := internalAccount(ctx, tx, InternalCash, "EUR")
	if err != nil {
		return nil, err
	}
	entries, postings := entryBatch(b.db.Dialect), postingBatch(b.db.Dialect)
	var cashTotal int64
	var customerIDs []string
	for _, sc := range data.Customers {
		income := sc.MonthlyIncome
		c := &Customer{
			ID: ids.New("cus"), Type: sc.Type, Name: sc.Name, DateOfBirth: sc.DateOfBirth, Email: sc.Email,
			Phone: sc.Phone, Address: Address{Line1: sc.AddressLine1, City: sc.City, Postcode: sc.Postcode, Country: sc.Country},
			DocumentNumber: sc.DocumentNumber, Homeowner: sc.IsHomeowner,
			Geo: &Geo{Latitude: sc.Latitude, Longitude: sc.Longitude}, MonthlyIncome: &income,
			KYCStatus: KYCPass, CreatedAt: now,
		}
		if err := insertCustomer(ctx, tx, c, appID); err != nil {
			return nil, err
		}
		if appID != "" {
			if err := grantAccess(ctx, tx, appID, c.ID, AccessSeeded, now); err != nil {
				return nil, err
			}
		}
		customerIDs = append(customerIDs, c.ID)
		for _, sa := range sc.Accounts {
			a, err := openAccount(ctx, tx, c.ID, sa.Product, sa.Currency, "", now)
			if err != nil {
				return nil, err
			}
			var balance int64
			for _, st := range sa.Transactions {
				amount := st.Amount.Minor
				if st.Direction != DirectionCredit {
					amount = -amount
				}
				balance += amount
				cashTotal -= amount
				entryID := ids.New("jnl")
				at := store.Micros(st.BookedAt)
				entries.add(entryID, "sandbox_history", c.ID, at)
				postings.add(ids.New("txn"), entryID, a.ID, amount, sa.Currency, balance,
					st.Description, st.Counterparty, st.CounterpartyIBAN, at)
				// The counterpart is the bank's cash account; its running
				// balance is not tracked per history row.
				postings.add(ids.New("txn"), entryID, cash, -amount, sa.Currency, 0,
					st.Description, c.Name, a.IBAN, at)
				if postings.rows >= 500 {
					if err := flushEntries(ctx, tx, entries, postings); err != nil {
						return nil, err
					}
				}
			}
			if err := flushEntries(ctx, tx, entries, postings); err != nil {
				return nil, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE core_accounts SET booked = $1 WHERE id = $2`, balance, a.ID); err != nil {
				return nil, err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE core_accounts SET booked = booked + $1 WHERE id = $2`, cashTotal, cash); err != nil {
		return nil, err
	}
	return customerIDs, nil
}
