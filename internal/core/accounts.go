package core

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// Account products.
const (
	ProductCurrent  = "current"
	ProductSavings  = "savings"
	ProductLoan     = "loan"
	ProductInternal = "internal"
)

// Account statuses.
const (
	AccountActive = "active"
	AccountClosed = "closed"
)

// Account is a customer's account (or, for the bank only, an internal one).
type Account struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id,omitempty"`
	IBAN       string    `json:"iban,omitempty"`
	Currency   string    `json:"currency"`
	Product    string    `json:"product"`
	Name       string    `json:"name,omitempty"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

// Balances of an account, derived from its postings: booked is the sum of
// postings; available subtracts funds held for payments under review.
type Balances struct {
	AccountID string `json:"account_id"`
	Booked    Money  `json:"booked"`
	Available Money  `json:"available"`
}

// NewAccount is what a caller gives to open an account.
type NewAccount struct {
	CustomerID string
	Product    string
	Currency   string
	Name       string
}

// OpenAccount opens a current or savings account for a customer the caller
// may see.
func (b *Bank) OpenAccount(ctx context.Context, caller auth.Caller, n NewAccount) (*Account, error) {
	if n.Product != ProductCurrent && n.Product != ProductSavings {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_product", "product must be current or savings")
	}
	if _, ok := CurrencyExponent(n.Currency); !ok {
		return nil, causeway.Errorf(causeway.EINVALID, "unknown_currency", "currency %q is not supported", n.Currency)
	}
	var a *Account
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		c, err := getCustomer(ctx, tx, caller, n.CustomerID)
		if err != nil {
			return err
		}
		a, err = openAccount(ctx, tx, c.ID, n.Product, n.Currency, n.Name, b.now())
		if err != nil {
			return err
		}
		return b.events.WriteEvents(ctx, tx, []Event{{
			Type: "account.opened", Subject: a.ID, Data: a, CustomerID: c.ID,
		}})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func openAccount(ctx context.Context, tx *sql.Tx, customerID, product, currency, name string, now time.Time) (*Account, error) {
	n, err := nextSequence(ctx, tx, "iban")
	if err != nil {
		return nil, err
	}
	a := &Account{
		ID: ids.New("acc"), CustomerID: customerID, IBAN: SandboxIBAN(uint64(n)), Currency: currency,
		Product: product, Name: name, Status: AccountActive, CreatedAt: now.UTC().Truncate(time.Microsecond),
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO core_accounts (id, customer_id, iban, currency, product, name, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.ID, a.CustomerID, a.IBAN, a.Currency, a.Product, a.Name, a.Status, store.Micros(a.CreatedAt))
	return a, err
}

// nextSequence returns the next value of a named counter, in tx.
func nextSequence(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `INSERT INTO core_sequences (name, value) VALUES ($1, 1)
		ON CONFLICT (name) DO UPDATE SET value = core_sequences.value + 1 RETURNING value`, name).Scan(&v)
	return v, err
}

const accountColumns = `a.id, COALESCE(a.customer_id, ''), COALESCE(a.iban, ''), a.currency, a.product, a.name, a.status, a.created_at`

func scanAccount(row store.Scanner) (*Account, error) {
	var a Account
	var created int64
	if err := row.Scan(&a.ID, &a.CustomerID, &a.IBAN, &a.Currency, &a.Product, &a.Name, &a.Status, &created); err != nil {
		return nil, err
	}
	a.CreatedAt = store.FromMicros(created)
	return &a, nil
}

// accountVisibleClause restricts account alias a to accounts of customers
// the caller may see (see accessClause); for apps it also hides the bank's
// internal accounts, which have no customer.
func accountVisibleClause(caller auth.Caller, argPos int) (string, []any) {
	return accessClause(caller, argPos, "a.customer_id")
}

func getAccount(ctx context.Context, q store.Querier, caller auth.Caller, id string) (*Account, error) {
	clause, args := accountVisibleClause(caller, 2)
	a, err := scanAccount(q.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM core_accounts a WHERE a.id = $1"+clause,
		append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "account_not_found", "no account %s", id)
	}
	return a, store.Classify(err)
}

// Account returns one account the caller may see.
func (b *Bank) Account(ctx context.Context, caller auth.Caller, id string) (*Account, error) {
	return getAccount(ctx, b.db, caller, id)
}

// AccountFilter narrows Accounts.
type AccountFilter struct {
	CustomerID string
	Limit      int
	Cursor     string
}

// Accounts lists the customer accounts the caller may see, oldest first.
func (b *Bank) Accounts(ctx context.Context, caller auth.Caller, f AccountFilter) (*page.Page[*Account], error) {
	limit, after, err := page.Args(f.Limit, f.Cursor)
	if err != nil {
		return nil, err
	}
	query := "SELECT " + accountColumns + " FROM core_accounts a WHERE a.id > $1 AND a.internal_purpose IS NULL"
	args := []any{after, limit + 1}
	if f.CustomerID != "" {
		args = append(args, f.CustomerID)
		query += " AND a.customer_id = $" + strconv.Itoa(len(args))
	}
	clause, more := accountVisibleClause(caller, len(args)+1)
	query += clause + " ORDER BY a.id LIMIT $2"
	rows, err := b.db.QueryContext(ctx, query, append(args, more...)...)
	if err != nil {
		return nil, store.Classify(err)
	}
	return page.Collect(rows, limit, scanAccount, func(a *Account) string { return a.ID })
}

// Balances returns an account's booked and available balance.
func (b *Bank) Balances(ctx context.Context, caller auth.Caller, accountID string) (*Balances, error) {
	// A prepared statement per kind of caller (the clause's text depends
	// on nothing else): balances are the most-read figure of the API.
	clause, args := accountVisibleClause(caller, 2)
	if caller.IsBank() {
		clause = " AND a.internal_purpose IS NULL"
	}
	query := `SELECT a.id, a.currency, a.booked, a.held FROM core_accounts a WHERE a.id = $1` + clause
	args = append([]any{accountID}, args...)
	stmt, err := b.db.Stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	var id, currency string
	var booked, held int64
	err = stmt.QueryRowContext(ctx, args...).Scan(&id, &currency, &booked, &held)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "account_not_found", "no account %s", accountID)
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return &Balances{
		AccountID: id,
		Booked:    Money{Minor: booked, Currency: currency},
		Available: Money{Minor: booked - held, Currency: currency},
	}, nil
}

// Transaction is one posting on a customer account, as the API shows it.
type Transaction struct {
	ID               string    `json:"id"`
	AccountID        string    `json:"account_id"`
	Amount           Money     `json:"amount"`
	Direction        string    `json:"direction" enum:"credit,debit"`
	Description      string    `json:"description"`
	CounterpartyName string    `json:"counterparty_name,omitempty"`
	CounterpartyIBAN string    `json:"counterparty_iban,omitempty"`
	BalanceAfter     Money     `json:"balance_after"`
	BookedAt         time.Time `json:"booked_at"`
}

// TransactionFilter narrows Transactions: booked in [From, To) when set.
type TransactionFilter struct {
	From, To time.Time
	Limit    int
	Cursor   string
}

// Transactions lists an account's transactions, newest first.
func (b *Bank) Transactions(ctx context.Context, caller auth.Caller, accountID string, f TransactionFilter) (*page.Page[*Transaction], error) {
	a, err := getAccount(ctx, b.db, caller, accountID)
	if err != nil {
		return nil, err
	}
	limit, err := page.Limit(f.Limit)
	if err != nil {
		return nil, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_range", "from must be before to")
	}
	query := `SELECT id, amount, currency, balance_after, description, counterparty_name, counterparty_iban, booked_at
		FROM core_postings WHERE account_id = $1`
	args := []any{a.ID}
	if !f.From.IsZero() {
		args = append(args, store.Micros(f.From))
		query += " AND booked_at >= $" + strconv.Itoa(len(args))
	}
	if !f.To.IsZero() {
		args = append(args, store.Micros(f.To))
		query += " AND booked_at < $" + strconv.Itoa(len(args))
	}
	if f.Cursor != "" {
		key, err := page.Key(f.Cursor, 2)
		if err != nil {
			return nil, err
		}
		at, err := strconv.ParseInt(key[0], 10, 64)
		if err != nil {
			return nil, causeway.Errorf(causeway.EBADREQUEST, "invalid_cursor", "cursor is malformed")
		}
		args = append(args, at, key[1])
		n := len(args)
		query += " AND (booked_at < $" + strconv.Itoa(n-1) + " OR (booked_at = $" + strconv.Itoa(n-1) + " AND id < $" + strconv.Itoa(n) + "))"
	}
	args = append(args, limit+1)
	query += " ORDER BY booked_at DESC, id DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := b.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	pg := &page.Page[*Transaction]{Data: []*Transaction{}}
	var lastAt int64
	for rows.Next() {
		t := &Transaction{AccountID: a.ID}
		var amount, after, at int64
		if err := rows.Scan(&t.ID, &amount, &t.Amount.Currency, &after, &t.Description, &t.CounterpartyName, &t.CounterpartyIBAN, &at); err != nil {
			return nil, err
		}
		t.Direction = "credit"
		if amount < 0 {
			t.Direction, amount = "debit", -amount
		}
		t.Amount.Minor = amount
		t.BalanceAfter = Money{Minor: after, Currency: t.Amount.Currency}
		t.BookedAt = store.FromMicros(at)
		if len(pg.Data) < limit {
			lastAt = at
		}
		pg.Data = append(pg.Data, t)
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	if len(pg.Data) > limit {
		pg.Data = pg.Data[:limit]
		pg.NextCursor = page.Cursor(strconv.FormatInt(lastAt, 10), pg.Data[limit-1].ID)
	}
	return pg, nil
}

// Deposit credits an account with money from outside the bank (cash at a
// branch, a transfer in from another bank): the bank's cash account is the
// counterpart. It is the bank's operation, and the sandbox's way to fund
// accounts: anyone else is EFORBIDDEN bank_only.
func (b *Bank) Deposit(ctx context.Context, caller auth.Caller, accountID string, amount Money, description string) (*Transaction, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	if !amount.IsPositive() {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_amount", "amount must be positive")
	}
	if description == "" {
		description = "Deposit"
	}
	var txn *Transaction
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := getAccount(ctx, tx, asBank, accountID)
		if err != nil {
			return err
		}
		if a.Product == ProductInternal {
			return causeway.Errorf(causeway.EINVALID, "invalid_account", "deposits go to customer accounts")
		}
		if a.Status != AccountActive {
			return causeway.Errorf(causeway.ECONFLICT, "account_closed", "account %s is closed", a.ID)
		}
		if a.Currency != amount.Currency {
			return causeway.Errorf(causeway.EINVALID, "currency_mismatch", "amount is in %s, the account in %s", amount.Currency, a.Currency)
		}
		cash, err := internalAccount(ctx, tx, InternalCash, a.Currency)
		if err != nil {
			return err
		}
		locked, err := b.lockAccounts(ctx, tx, a.ID, cash)
		if err != nil {
			return err
		}
		_, txns, err := b.post(ctx, tx, locked, "deposit", a.ID, a.Currency, b.now(), []posting{
			{AccountID: cash, Amount: -amount.Minor, Description: description},
			{AccountID: a.ID, Amount: amount.Minor, Description: description},
		})
		if err != nil {
			return err
		}
		txn = txns[1]
		if err := b.events.WriteEvents(ctx, tx, transactionEvents(txns, locked)); err != nil {
			return err
		}
		return b.audit.RecordChange(ctx, tx, caller, Change{Action: "account.deposit", TargetType: "account", TargetID: a.ID,
			After: map[string]any{"amount": amount, "transaction_id": txn.ID, "description": description}})
	})
	if err != nil {
		return nil, err
	}
	return txn, nil
}

// CloseAccount closes an account with a zero balance and nothing held.
func (b *Bank) CloseAccount(ctx context.Context, caller auth.Caller, accountID string) (*Account, error) {
	var a *Account
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = getAccount(ctx, tx, caller, accountID); err != nil {
			return err
		}
		locked, err := b.lockAccounts(ctx, tx, a.ID)
		if err != nil {
			return err
		}
		if l := locked[a.ID]; l.Booked != 0 || l.Held != 0 {
			return causeway.Errorf(causeway.ECONFLICT, "balance_not_zero", "account %s still holds money", a.ID)
		}
		a.Status = AccountClosed
		_, err = tx.ExecContext(ctx, `UPDATE core_accounts SET status = $1 WHERE id = $2`, AccountClosed, a.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}
