package datashare

import (
	"encoding/json"
	"slices"
	"strings"
)

// Generator describes a dataset generator built into the data agent: the
// schema it emits and illustrative sample rows. The rows themselves are
// made by the agent (package datashare/agent); the hub knows only this
// description, so it can fill in the catalog entry.
type Generator struct {
	Description string
	Columns     []Column
	// Sample rows are made up for the catalog: every developer sees them,
	// so they never come from the bank's data.
	Sample []map[string]any
}

// Built-in generator names.
const (
	GenPseudonymizedTransactions = "pseudonymized-transactions"
	GenLoanPerformance           = "loan-performance"
	GenSynthetic                 = "synthetic"
)

// Generators are the agent's built-in generators, by name.
var Generators = map[string]Generator{
	GenPseudonymizedTransactions: {
		Description: "Every booked transaction on customer accounts of the sandbox bank, pseudonymized: " +
			"customer and account ids are replaced by keyed hashes (HMAC-SHA256 with a key only the bank's data agent holds), " +
			"and there are no names, IBANs or free-text descriptions, only a category. " +
			"Hashes are stable across datasets and requests, so rows of one customer can be grouped and joined with loan-performance.",
		Columns: []Column{
			{Name: "customer_hash", Type: "string", Description: "Keyed hash of the customer (32 hex digits)"},
			{Name: "account_hash", Type: "string", Description: "Keyed hash of the account (32 hex digits)"},
			{Name: "account_type", Type: "string", Description: "current or savings"},
			{Name: "booked_date", Type: "date", Description: "Day the transaction was booked (YYYY-MM-DD, UTC)"},
			{Name: "amount", Type: "number", Description: "Amount as a positive decimal in the currency's units"},
			{Name: "currency", Type: "string", Description: "ISO 4217 code"},
			{Name: "direction", Type: "string", Description: "credit (money in) or debit (money out)"},
			{Name: "category", Type: "string", Description: "opening_balance, salary, rent, mortgage, utilities, card_payment, savings_transfer, transfer, loan, deposit or other"},
		},
		Sample: []map[string]any{
			{"customer_hash": "5f0c6a1e9d3b47c2a8e1f04d6b2c9a17", "account_hash": "c41d9e07a2b84f6e9a13d5c7b0e2f846", "account_type": "current", "booked_date": "2026-03-25", "amount": json.Number("2850.00"), "currency": "EUR", "direction": "credit", "category": "salary"},
			{"customer_hash": "5f0c6a1e9d3b47c2a8e1f04d6b2c9a17", "account_hash": "c41d9e07a2b84f6e9a13d5c7b0e2f846", "account_type": "current", "booked_date": "2026-04-01", "amount": json.Number("950.00"), "currency": "EUR", "direction": "debit", "category": "rent"},
			{"customer_hash": "0b7e2d94c1a6458f8d3e6a20f9c1b753", "account_hash": "7a2f0c9d4e1b46a8b5c3d9e6f1a0b284", "account_type": "current", "booked_date": "2026-04-02", "amount": json.Number("43.17"), "currency": "EUR", "direction": "debit", "category": "card_payment"},
		},
	},
	GenLoanPerformance: {
		Description: "Every loan application to the sandbox bank with its decision, terms and whether it was funded, pseudonymized: " +
			"loan and customer ids are replaced by keyed hashes, the stated purpose by a category; no names, free text or income figures.",
		Columns: []Column{
			{Name: "loan_hash", Type: "string", Description: "Keyed hash of the loan (32 hex digits)"},
			{Name: "customer_hash", Type: "string", Description: "Keyed hash of the customer, as in pseudonymized-transactions"},
			{Name: "amount", Type: "number", Description: "Principal asked for"},
			{Name: "currency", Type: "string", Description: "ISO 4217 code"},
			{Name: "term_months", Type: "integer", Description: "Term in months"},
			{Name: "rate", Type: "number", Description: "Annual interest rate in percent, 0 when declined"},
			{Name: "monthly_payment", Type: "number", Description: "Instalment, 0 when declined"},
			{Name: "score", Type: "integer", Description: "The credit score behind the decision"},
			{Name: "purpose", Type: "string", Description: "Purpose category: car, home_improvement, debt_consolidation, education, business, medical, travel, wedding or other"},
			{Name: "status", Type: "string", Description: "approved, declined, referred or funded"},
			{Name: "applied_month", Type: "string", Description: "Month of application (YYYY-MM)"},
			{Name: "funded_month", Type: "string", Description: "Month of disbursement (YYYY-MM), empty if not funded"},
		},
		Sample: []map[string]any{
			{"loan_hash": "e2b7c40f9a1d4c6b8e3f5a7d9c0b1e24", "customer_hash": "5f0c6a1e9d3b47c2a8e1f04d6b2c9a17", "amount": json.Number("12000.00"), "currency": "EUR", "term_months": 36, "rate": json.Number("6.90"), "monthly_payment": json.Number("369.98"), "score": 712, "purpose": "car", "status": "funded", "applied_month": "2026-02", "funded_month": "2026-02"},
			{"loan_hash": "9d1a3e5c7b0f42e6a8c4d2b0f6e8a913", "customer_hash": "0b7e2d94c1a6458f8d3e6a20f9c1b753", "amount": json.Number("40000.00"), "currency": "EUR", "term_months": 60, "rate": json.Number("0"), "monthly_payment": json.Number("0"), "score": 541, "purpose": "home_improvement", "status": "declined", "applied_month": "2026-03", "funded_month": ""},
		},
	},
	GenSynthetic: {
		Description: "Synthetic transactions from a seeded random generator (source.rows rows, source.seed): for tests and benchmarks.",
		Columns: []Column{
			{Name: "row", Type: "integer", Description: "Row number from 1"},
			{Name: "customer_hash", Type: "string", Description: "Synthetic customer key (16 hex digits)"},
			{Name: "booked_date", Type: "date", Description: "Synthetic booking day"},
			{Name: "amount", Type: "number", Description: "Synthetic amount"},
			{Name: "currency", Type: "string", Description: "EUR"},
			{Name: "direction", Type: "string", Description: "credit or debit"},
			{Name: "category", Type: "string", Description: "Synthetic category"},
		},
		Sample: []map[string]any{
			{"row": 1, "customer_hash": "3f9a0c1e7b2d4a68", "booked_date": "2026-01-07", "amount": json.Number("18.40"), "currency": "EUR", "direction": "debit", "category": "groceries"},
		},
	},
}

// GeneratorNames lists the built-in generators, sorted.
func GeneratorNames() []string {
	names := make([]string, 0, len(Generators))
	for n := range Generators {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// FormatOf returns the format a file source holds, by its extension.
func FormatOf(path string) string {
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		return FormatCSV
	}
	return FormatJSONL
}
