package core

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// The bank's internal accounts, one per purpose and currency, so every
// posting on a customer account has a counterpart.
const (
	InternalCash            = "cash"             // money that came in from outside (deposits, salaries)
	InternalClearing        = "clearing"         // outgoing payments to other banks, until settled
	InternalLoansReceivable = "loans_receivable" // principal customers owe
	InternalInterestIncome  = "interest_income"
	InternalSuspense        = "suspense" // anything that cannot be booked where it belongs yet
)

// posting is one line of a journal entry. Amount is signed from the account
// holder's side: positive credits the account.
type posting struct {
	AccountID        string
	Amount           int64
	Description      string
	CounterpartyName string
	CounterpartyIBAN string
}

// lockedAccount is an account's state read under its row lock.
type lockedAccount struct {
	ID         string
	CustomerID string
	IBAN       string
	Currency   string
	Status     string
	Booked     int64
	Held       int64
}

// Available is what may be spent: booked minus funds held.
func (a *lockedAccount) Available() int64 { return a.Booked - a.Held }

// lockAccounts takes, in transaction tx, the row locks of the given
// accounts in id order (so two transfers in opposite directions cannot
// deadlock) and returns their state.
// On SQLite the store already serializes writers; the UPDATE makes
// PostgreSQL hold the row lock until commit.
func lockAccounts(ctx context.Context, tx querier, accountIDs ...string) (map[string]*lockedAccount, error) {
	sorted := slices.Clone(accountIDs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	out := make(map[string]*lockedAccount, len(sorted))
	for _, id := range sorted {
		a := &lockedAccount{}
		err := tx.QueryRowContext(ctx, `UPDATE core_accounts SET booked = booked WHERE id = $1
			RETURNING id, COALESCE(customer_id, ''), COALESCE(iban, ''), currency, status, booked, held`, id).
			Scan(&a.ID, &a.CustomerID, &a.IBAN, &a.Currency, &a.Status, &a.Booked, &a.Held)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, causeway.Errorf(causeway.ENOTFOUND, "account_not_found", "no account %s", id)
		}
		if err != nil {
			return nil, err
		}
		out[id] = a
	}
	return out, nil
}

// MaxBalance bounds every account's booked balance, in minor units of its
// currency, either side of zero: 10^15 (10,000,000,000,000.00 EUR). With
// every amount at most MaxMinor (see ParseMoney), no balance or sum of two
// can overflow int64, and a posting that would cross the bound is refused
// (EINVALID balance_limit_exceeded) instead of wrapping around.
const MaxBalance int64 = 1_000_000_000_000_000

// post writes, in transaction tx, one journal entry whose postings must sum
// to zero, updates the accounts' running balances, and returns the
// transactions it booked, in posting order. Every account must be in locked
// (lockAccounts in tx), whose balances it keeps current.
func post(ctx context.Context, tx querier, locked map[string]*lockedAccount, kind, reference, currency string, bookedAt time.Time, postings []posting) (string, []*Transaction, error) {
	var sum int64
	for _, p := range postings {
		a := locked[p.AccountID]
		if a == nil {
			return "", nil, causeway.Errorf(causeway.EINTERNAL, "posting_account_not_locked", "account %s is not locked for %s", p.AccountID, kind)
		}
		if p.Amount < -MaxBalance || p.Amount > MaxBalance || a.Booked+p.Amount < -MaxBalance || a.Booked+p.Amount > MaxBalance {
			return "", nil, causeway.Errorf(causeway.EINVALID, "balance_limit_exceeded",
				"the amount would take an account's balance beyond the bank's limit of %s", Money{Minor: MaxBalance, Currency: currency})
		}
		sum += p.Amount
	}
	if sum != 0 || len(postings) < 2 {
		return "", nil, causeway.Errorf(causeway.EINTERNAL, "unbalanced_entry", "journal entry %s does not balance (%d)", kind, sum)
	}
	entryID := ids.New("jnl")
	at := store.Micros(bookedAt)
	if _, err := tx.ExecContext(ctx, `INSERT INTO core_entries (id, kind, reference, created_at) VALUES ($1, $2, $3, $4)`,
		entryID, kind, reference, at); err != nil {
		return "", nil, err
	}
	txns := make([]*Transaction, 0, len(postings))
	for _, p := range postings {
		var after int64
		if err := tx.QueryRowContext(ctx, `UPDATE core_accounts SET booked = booked + $1 WHERE id = $2 AND currency = $3 RETURNING booked`,
			p.Amount, p.AccountID, currency).Scan(&after); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return "", nil, causeway.Errorf(causeway.EINTERNAL, "posting_account_mismatch", "account %s missing or not in %s", p.AccountID, currency)
			}
			return "", nil, err
		}
		locked[p.AccountID].Booked = after
		t := &Transaction{
			ID: ids.New("txn"), AccountID: p.AccountID, Description: p.Description,
			CounterpartyName: p.CounterpartyName, CounterpartyIBAN: p.CounterpartyIBAN,
			BalanceAfter: Money{Minor: after, Currency: currency}, BookedAt: store.FromMicros(at),
			Direction: "credit", Amount: Money{Minor: p.Amount, Currency: currency},
		}
		if p.Amount < 0 {
			t.Direction, t.Amount.Minor = "debit", -p.Amount
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO core_postings
			(id, entry_id, account_id, amount, currency, balance_after, description, counterparty_name, counterparty_iban, booked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			t.ID, entryID, p.AccountID, p.Amount, currency, after, p.Description, p.CounterpartyName, p.CounterpartyIBAN, at); err != nil {
			return "", nil, err
		}
		txns = append(txns, t)
	}
	return entryID, txns, nil
}

// internalAccount returns the id of the bank's internal account for a
// purpose and currency, creating it in transaction tx on first use.
func internalAccount(ctx context.Context, tx querier, purpose, currency string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM core_accounts WHERE internal_purpose = $1 AND currency = $2`, purpose, currency).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO core_accounts (id, currency, product, name, status, internal_purpose, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (internal_purpose, currency) DO NOTHING`,
		ids.New("acc"), currency, ProductInternal, "Bank "+purpose+" "+currency, AccountActive, purpose, store.Micros(time.Now())); err != nil {
		return "", err
	}
	err = tx.QueryRowContext(ctx, `SELECT id FROM core_accounts WHERE internal_purpose = $1 AND currency = $2`, purpose, currency).Scan(&id)
	return id, err
}

// LedgerReport is the result of CheckLedger.
type LedgerReport struct {
	Balanced bool `json:"balanced" doc:"true when every check passed"`
	// Totals is the sum of all postings per currency: zero in a balanced ledger.
	Totals             map[string]int64 `json:"totals"`
	Entries            int64            `json:"entries"`
	Postings           int64            `json:"postings"`
	UnbalancedEntries  []string         `json:"unbalanced_entries"`
	MismatchedAccounts []string         `json:"mismatched_accounts" doc:"accounts whose running balance differs from the sum of their postings"`
	// AccountsBelowMinimum are accounts below what they may hold: a
	// customer's current or savings account with a negative booked or
	// available (booked - held) balance, or any account with a negative
	// held amount. Internal and loan accounts have no minimum.
	AccountsBelowMinimum []string `json:"accounts_below_minimum" doc:"customer accounts with a negative booked or available (booked - held) balance, or any account holding a negative amount"`
	// HeldMismatches are accounts whose held amount is not the sum of
	// their payments held for review. Available is always booked - held,
	// so this is what keeps available honest.
	HeldMismatches []string `json:"held_mismatches" doc:"accounts whose held amount differs from the sum of their payments held for review; available is booked - held"`
}

// CheckLedger proves the ledger's invariants: every entry balances per
// currency, all postings sum to zero per currency, every account's running
// balance equals the sum of its postings, no account is below its minimum,
// and every account's held amount is the sum of its held payments (so
// available, booked - held, is what may really be spent). Each check is one
// statement, so it reads one consistent state even while payments run.
func (b *Bank) CheckLedger(ctx context.Context) (*LedgerReport, error) {
	r := &LedgerReport{Totals: map[string]int64{}, UnbalancedEntries: []string{}, MismatchedAccounts: []string{},
		AccountsBelowMinimum: []string{}, HeldMismatches: []string{}}
	collect := func(into *[]string) func(*sql.Rows) error {
		return func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			*into = append(*into, id)
			return nil
		}
	}
	q := func(query string, each func(*sql.Rows) error) error {
		rows, err := b.db.QueryContext(ctx, query)
		if err != nil {
			return store.Classify(err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return err
			}
		}
		return store.Classify(rows.Err())
	}
	err := errors.Join(
		q(`SELECT currency, COALESCE(SUM(amount), 0), COUNT(*) FROM core_postings GROUP BY currency`, func(rows *sql.Rows) error {
			var cur string
			var sum, n int64
			if err := rows.Scan(&cur, &sum, &n); err != nil {
				return err
			}
			r.Totals[cur] = sum
			r.Postings += n
			return nil
		}),
		q(`SELECT entry_id FROM core_postings GROUP BY entry_id, currency HAVING SUM(amount) <> 0`, collect(&r.UnbalancedEntries)),
		q(`SELECT a.id FROM core_accounts a LEFT JOIN
			(SELECT account_id, SUM(amount) AS total FROM core_postings GROUP BY account_id) p ON p.account_id = a.id
			WHERE a.booked <> COALESCE(p.total, 0)`, collect(&r.MismatchedAccounts)),
		q(`SELECT id FROM core_accounts WHERE held < 0 OR
			(product IN ('`+ProductCurrent+`', '`+ProductSavings+`') AND (booked < 0 OR booked - held < 0))`, collect(&r.AccountsBelowMinimum)),
		q(`SELECT a.id FROM core_accounts a LEFT JOIN
			(SELECT debtor_account_id, SUM(amount) AS total FROM core_payments WHERE status = '`+PaymentHeld+`' GROUP BY debtor_account_id) p
			ON p.debtor_account_id = a.id WHERE a.held <> COALESCE(p.total, 0)`, collect(&r.HeldMismatches)),
		q(`SELECT COUNT(*) FROM core_entries`, func(rows *sql.Rows) error { return rows.Scan(&r.Entries) }),
	)
	if err != nil {
		return nil, err
	}
	r.Balanced = len(r.UnbalancedEntries) == 0 && len(r.MismatchedAccounts) == 0 &&
		len(r.AccountsBelowMinimum) == 0 && len(r.HeldMismatches) == 0
	for _, total := range r.Totals {
		if total != 0 {
			r.Balanced = false
		}
	}
	return r, nil
}

func (r *LedgerReport) String() string {
	return fmt.Sprintf("balanced=%v totals=%v entries=%d postings=%d unbalanced=%v mismatched=%v below_minimum=%v held_mismatches=%v",
		r.Balanced, r.Totals, r.Entries, r.Postings, r.UnbalancedEntries, r.MismatchedAccounts, r.AccountsBelowMinimum, r.HeldMismatches)
}
