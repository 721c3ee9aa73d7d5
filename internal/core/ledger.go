package core

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
// accounts and returns their state, in one statement. On PostgreSQL the
// rows are locked in id order (so two transfers in opposite directions, or
// two batches of them, cannot deadlock); on SQLite the store already
// serializes writers. It fails with ENOTFOUND account_not_found when an
// account does not exist.
func (b *Bank) lockAccounts(ctx context.Context, tx store.Querier, accountIDs ...string) (map[string]*lockedAccount, error) {
	dialect := b.db.Dialect
	sorted := slices.Clone(accountIDs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	query := `SELECT id, COALESCE(customer_id, ''), COALESCE(iban, ''), currency, status, booked, held
		FROM core_accounts WHERE id IN ` + dialect.Values(1, len(sorted)) + ` ORDER BY id`
	if dialect == store.Postgres {
		query += ` FOR NO KEY UPDATE`
	}
	args := make([]any, len(sorted))
	for i, id := range sorted {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]*lockedAccount, len(sorted))
	for rows.Next() {
		a := &lockedAccount{}
		if err := rows.Scan(&a.ID, &a.CustomerID, &a.IBAN, &a.Currency, &a.Status, &a.Booked, &a.Held); err != nil {
			return nil, err
		}
		out[a.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range sorted {
		if out[id] == nil {
			return nil, causeway.Errorf(causeway.ENOTFOUND, "account_not_found", "no account %s", id)
		}
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
func (b *Bank) post(ctx context.Context, tx store.Querier, locked map[string]*lockedAccount, kind, reference, currency string, bookedAt time.Time, postings []posting) (string, []*Transaction, error) {
	var j journal
	entryID, txns, err := j.post(locked, kind, reference, currency, bookedAt, postings)
	if err != nil {
		return "", nil, err
	}
	return entryID, txns, j.write(ctx, tx, b.db.Dialect)
}

// A journal books entries against locked accounts in memory and writes
// them all at once: one INSERT of the entries, one of the postings and one
// UPDATE of the balances, however many entries (a batch of payments is
// one journal). The accounts must stay locked until the transaction that
// writes it commits.
type journal struct {
	entries  []journalEntry
	postings []journalPosting
	touched  []*lockedAccount // in the order first touched, each once
}

type journalEntry struct {
	id, kind, reference string
	at                  int64
}

type journalPosting struct {
	entryID string
	t       *Transaction
	amount  int64 // signed, from the account holder's side
}

// post books one entry whose postings must sum to zero, in memory: the
// locked accounts' balances move, and the entry is written by write. On
// error nothing has moved.
func (j *journal) post(locked map[string]*lockedAccount, kind, reference, currency string, bookedAt time.Time, postings []posting) (string, []*Transaction, error) {
	var sum int64
	for _, p := range postings {
		a := locked[p.AccountID]
		switch {
		case a == nil:
			return "", nil, causeway.Errorf(causeway.EINTERNAL, "posting_account_not_locked", "account %s is not locked for %s", p.AccountID, kind)
		case a.Currency != currency:
			return "", nil, causeway.Errorf(causeway.EINTERNAL, "posting_account_mismatch", "account %s is not in %s", p.AccountID, currency)
		}
		sum += p.Amount
	}
	// Checked on the balances as each posting leaves them, as they are
	// booked: an entry may post to one account twice.
	after := make(map[string]int64, len(postings))
	for _, p := range postings {
		booked, seen := after[p.AccountID]
		if !seen {
			booked = locked[p.AccountID].Booked
		}
		if p.Amount < -MaxBalance || p.Amount > MaxBalance || booked+p.Amount < -MaxBalance || booked+p.Amount > MaxBalance {
			return "", nil, causeway.Errorf(causeway.EINVALID, "balance_limit_exceeded",
				"the amount would take an account's balance beyond the bank's limit of %s", Money{Minor: MaxBalance, Currency: currency})
		}
		after[p.AccountID] = booked + p.Amount
	}
	if sum != 0 || len(postings) < 2 {
		return "", nil, causeway.Errorf(causeway.EINTERNAL, "unbalanced_entry", "journal entry %s does not balance (%d)", kind, sum)
	}
	entryID := ids.New("jnl")
	at := store.Micros(bookedAt)
	j.entries = append(j.entries, journalEntry{id: entryID, kind: kind, reference: reference, at: at})
	txns := make([]*Transaction, 0, len(postings))
	for _, p := range postings {
		a := locked[p.AccountID]
		a.Booked += p.Amount
		j.touch(a)
		t := &Transaction{
			ID: ids.New("txn"), AccountID: p.AccountID, Description: p.Description,
			CounterpartyName: p.CounterpartyName, CounterpartyIBAN: p.CounterpartyIBAN,
			BalanceAfter: Money{Minor: a.Booked, Currency: currency}, BookedAt: store.FromMicros(at),
			Direction: "credit", Amount: Money{Minor: p.Amount, Currency: currency},
		}
		if p.Amount < 0 {
			t.Direction, t.Amount.Minor = "debit", -p.Amount
		}
		j.postings = append(j.postings, journalPosting{entryID: entryID, t: t, amount: p.Amount})
		txns = append(txns, t)
	}
	return entryID, txns, nil
}

// hold moves a locked account's held amount by amount (negative releases),
// written by write with its balances.
func (j *journal) hold(a *lockedAccount, amount int64) {
	a.Held += amount
	j.touch(a)
}

func (j *journal) touch(a *lockedAccount) {
	if !slices.Contains(j.touched, a) {
		j.touched = append(j.touched, a)
	}
}

// write writes what the journal booked, in transaction tx: the entries,
// their postings and the touched accounts' balances.
func (j *journal) write(ctx context.Context, tx store.Querier, dialect store.Dialect) error {
	entries, postings := entryBatch(dialect), postingBatch(dialect)
	for _, e := range j.entries {
		entries.add(e.id, e.kind, e.reference, e.at)
	}
	for _, p := range j.postings {
		t := p.t
		postings.add(t.ID, p.entryID, t.AccountID, p.amount, t.Amount.Currency, t.BalanceAfter.Minor,
			t.Description, t.CounterpartyName, t.CounterpartyIBAN, store.Micros(t.BookedAt))
	}
	if err := flushEntries(ctx, tx, entries, postings); err != nil {
		return err
	}
	for chunk := range slices.Chunk(j.touched, maxBatchRows) {
		if err := writeBalances(ctx, tx, chunk); err != nil {
			return err
		}
	}
	return nil
}

// writeBalances sets locked accounts' booked and held amounts to what they
// are in memory, in one statement.
func writeBalances(ctx context.Context, tx store.Querier, accounts []*lockedAccount) error {
	var booked, held, in strings.Builder
	args := make([]any, 0, 5*len(accounts))
	n := 0
	param := func(v any) string {
		args = append(args, v)
		n++
		return "$" + strconv.Itoa(n)
	}
	booked.WriteString("CASE id")
	for _, a := range accounts {
		fmt.Fprintf(&booked, " WHEN %s THEN CAST(%s AS BIGINT)", param(a.ID), param(a.Booked))
	}
	booked.WriteString(" END")
	held.WriteString("CASE id")
	for _, a := range accounts {
		fmt.Fprintf(&held, " WHEN %s THEN CAST(%s AS BIGINT)", param(a.ID), param(a.Held))
	}
	held.WriteString(" END")
	for i, a := range accounts {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString(param(a.ID))
	}
	res, err := tx.ExecContext(ctx, "UPDATE core_accounts SET booked = "+booked.String()+", held = "+held.String()+
		" WHERE id IN ("+in.String()+")", args...)
	if err != nil {
		return err
	}
	if got, err := res.RowsAffected(); err == nil && got != int64(len(accounts)) {
		return causeway.Errorf(causeway.EINTERNAL, "posting_account_mismatch", "%d of %d locked accounts were updated", got, len(accounts))
	}
	return nil
}

// internalAccount returns the id of the bank's internal account for a
// purpose and currency, creating it in transaction tx on first use.
func internalAccount(ctx context.Context, tx store.Querier, purpose, currency string) (string, error) {
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
