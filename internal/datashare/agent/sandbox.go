package agent

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/store"
)

// The sandbox generators read the sandbox bank's tables directly, read
// only. That is the agent's privilege: it is the bank-side component; the
// hub's packages go through the bank's API.

// transactionRows and loanRows say which rows the two generators write;
// RowCounter counts the same.
const (
	transactionRows = `FROM core_postings p
		JOIN core_accounts a ON a.id = p.account_id
		JOIN core_entries e ON e.id = p.entry_id
		WHERE a.customer_id IS NOT NULL`
	loanRows = `FROM core_loans`
)

// transactions writes pseudonymized-transactions: every posting on a
// customer account, with ids hashed and no names, IBANs or free text.
func (a *Agent) transactions(ctx context.Context, w io.Writer, format string) error {
	rows, err := a.db.QueryContext(ctx, `SELECT p.account_id, a.customer_id, a.product, p.amount, p.currency, p.description, p.booked_at, e.kind
		`+transactionRows+`
		ORDER BY p.booked_at, p.id`)
	if err != nil {
		return fmt.Errorf("reading transactions: %w", err)
	}
	defer rows.Close()
	rw, err := newRowWriter(ctx, w, format, datashare.Generators[datashare.GenPseudonymizedTransactions].Columns)
	if err != nil {
		return err
	}
	ps := a.pseudonymizer()
	fields := make([][]byte, 8)
	for rows.Next() {
		var account, customer, product, currency, description, kind string
		var amount, booked int64
		if err := rows.Scan(&account, &customer, &product, &amount, &currency, &description, &booked, &kind); err != nil {
			return fmt.Errorf("reading transactions: %w", err)
		}
		direction := core.DirectionCredit
		if amount < 0 {
			direction, amount = core.DirectionDebit, -amount
		}
		fields[0] = ps.hash("customer", customer)
		fields[1] = ps.hash("account", account)
		fields[2] = []byte(product)
		fields[3] = []byte(store.FromMicros(booked).Format(time.DateOnly))
		fields[4] = []byte(core.Money{Minor: amount, Currency: currency}.Amount())
		fields[5] = []byte(currency)
		fields[6] = []byte(direction)
		fields[7] = []byte(category(kind, description))
		if err := rw.row(fields); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading transactions: %w", err)
	}
	return rw.flush()
}

// category reduces a posting to a category, so no free text (merchant and
// city, payment references) leaves the bank.
func category(kind, description string) string {
	switch kind {
	case "deposit":
		return "deposit"
	case "loan_funding":
		return "loan"
	case "payment":
		return "transfer"
	}
	for _, c := range []struct{ prefix, category string }{
		{"Opening balance", core.CategoryOpeningBalance},
		{"Salary", core.CategorySalary},
		{"Rent", core.CategoryRent},
		{"Mortgage", core.CategoryMortgage},
		{"Energy", core.CategoryUtilities},
		{"Mobile and internet", core.CategoryUtilities},
		{"Card payment", core.CategoryCardPayment},
		{"Transfer to savings", core.CategorySavingsTransfer},
		{"Transfer from current account", core.CategorySavingsTransfer},
	} {
		if strings.HasPrefix(description, c.prefix) {
			return c.category
		}
	}
	return "other"
}

// loans writes loan-performance.
func (a *Agent) loans(ctx context.Context, w io.Writer, format string) error {
	rows, err := a.db.QueryContext(ctx, `SELECT id, customer_id, amount, currency, term_months, purpose, status, rate_bp, monthly_payment, score, created_at, funded_at
		`+loanRows+` ORDER BY created_at, id`)
	if err != nil {
		return fmt.Errorf("reading loans: %w", err)
	}
	defer rows.Close()
	rw, err := newRowWriter(ctx, w, format, datashare.Generators[datashare.GenLoanPerformance].Columns)
	if err != nil {
		return err
	}
	ps := a.pseudonymizer()
	fields := make([][]byte, 12)
	for rows.Next() {
		var id, customer, currency, purpose, status string
		var amount, payment, created int64
		var term, rate, score int
		var funded sql.NullInt64
		if err := rows.Scan(&id, &customer, &amount, &currency, &term, &purpose, &status, &rate, &payment, &score, &created, &funded); err != nil {
			return fmt.Errorf("reading loans: %w", err)
		}
		fields[0] = ps.hash("loan", id)
		fields[1] = ps.hash("customer", customer)
		fields[2] = []byte(core.Money{Minor: amount, Currency: currency}.Amount())
		fields[3] = []byte(currency)
		fields[4] = strconv.AppendInt(nil, int64(term), 10)
		fields[5] = []byte(percent(rate))
		fields[6] = []byte(core.Money{Minor: payment, Currency: currency}.Amount())
		fields[7] = strconv.AppendInt(nil, int64(score), 10)
		fields[8] = []byte(purposeCategory(purpose))
		fields[9] = []byte(status)
		fields[10] = []byte(store.FromMicros(created).Format("2006-01"))
		fields[11] = nil
		if funded.Valid {
			fields[11] = []byte(store.FromMicros(funded.Int64).Format("2006-01"))
		}
		if err := rw.row(fields); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading loans: %w", err)
	}
	return rw.flush()
}

// percent formats basis points as a percentage with two decimals.
func percent(bp int) string {
	if bp == 0 {
		return "0"
	}
	return fmt.Sprintf("%d.%02d", bp/100, bp%100)
}

// purposeCategory reduces the stated purpose, free text an app typed, to
// a category by keywords, so no story (or name) in it leaves the bank.
func purposeCategory(s string) string {
	s = strings.ToLower(s)
	for _, c := range []struct {
		category string
		words    []string
	}{
		{"car", []string{"car", "vehicle", "auto", "motor"}},
		{"home_improvement", []string{"home", "house", "renovat", "kitchen", "roof", "bathroom", "garden"}},
		{"debt_consolidation", []string{"debt", "consolidat", "refinanc", "credit card"}},
		{"education", []string{"educat", "study", "tuition", "school", "course", "university"}},
		{"business", []string{"business", "equipment", "stock", "inventory"}},
		{"medical", []string{"medical", "health", "dental", "hospital"}},
		{"travel", []string{"travel", "holiday", "vacation", "trip"}},
		{"wedding", []string{"wedding"}},
	} {
		for _, w := range c.words {
			if strings.Contains(s, w) {
				return c.category
			}
		}
	}
	return "other"
}

// RowCounter counts the rows the sandbox generators would write now, for
// the hub's catalog (datashare.Options.Rows): counts only, no row leaves
// the agent.
type RowCounter struct {
	// DB is the bank's database, the one the generators read.
	DB *store.DB
}

// CountRows implements datashare.RowCounter.
func (c RowCounter) CountRows(ctx context.Context, generator string) (int64, bool, error) {
	var from string
	switch generator {
	case datashare.GenPseudonymizedTransactions:
		from = transactionRows
	case datashare.GenLoanPerformance:
		from = loanRows
	default:
		return 0, false, nil
	}
	var n int64
	if err := c.DB.QueryRowContext(ctx, `SELECT count(*) `+from).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("counting %s: %w", generator, err)
	}
	return n, true, nil
}

// SandboxDatasets are the catalog entries of the sandbox's built-in
// datasets, with row counts read from db (RowCounter). The platform
// publishes them with datashare.Service.EnsureDataset.
func SandboxDatasets(ctx context.Context, db *store.DB) ([]datashare.NewDataset, error) {
	count := RowCounter{DB: db}
	txns, _, err := count.CountRows(ctx, datashare.GenPseudonymizedTransactions)
	if err != nil {
		return nil, err
	}
	loans, _, err := count.CountRows(ctx, datashare.GenLoanPerformance)
	if err != nil {
		return nil, err
	}
	const licence = "Sandbox data for development and model training only. Pseudonymized: do not attempt to re-identify customers. " +
		"Access ends at the grant's expiry; delete copies then."
	return []datashare.NewDataset{
		{
			Name: datashare.GenPseudonymizedTransactions, RowCount: txns, Licence: licence, Version: "1",
			Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenPseudonymizedTransactions},
		},
		{
			Name: datashare.GenLoanPerformance, RowCount: loans, Licence: licence, Version: "1",
			Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenLoanPerformance},
		},
	}, nil
}
