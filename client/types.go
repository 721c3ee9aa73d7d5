package client

import "time"

// OAuth2 scopes an app may hold. A Client asks for all of its app's scopes
// unless WithScopes narrows them.
const (
	ScopeAccountsRead   = "accounts:read"
	ScopeCustomersWrite = "customers:write"
	ScopePaymentsWrite  = "payments:write"
	ScopeKYCWrite       = "kyc:write"
	ScopeLoansWrite     = "loans:write"
	// ScopeEventsRead reads events and the app's webhook subscriptions.
	ScopeEventsRead = "events:read"
	// ScopeWebhooksWrite creates, changes and deletes webhook
	// subscriptions and re-sends their events.
	ScopeWebhooksWrite = "webhooks:write"
	ScopeSPIWrite      = "spi:write"
	ScopeDataRead      = "data:read"
)

// Customer types and account products.
const (
	CustomerPerson   = "person"
	CustomerBusiness = "business"

	ProductCurrent = "current"
	ProductSavings = "savings"
)

// Payment statuses.
const (
	PaymentPending   = "pending"
	PaymentCompleted = "completed"
	PaymentRejected  = "rejected"
	PaymentHeld      = "held"
)

// KYC results, of a verification and of each of its checks.
const (
	KYCPass  = "pass"
	KYCFail  = "fail"
	KYCRefer = "refer"
)

// Loan application statuses.
const (
	LoanApproved = "approved"
	LoanDeclined = "declined"
	LoanReferred = "referred"
	LoanFunded   = "funded"
)

// Page is one page of a list and the cursor of the next page, "" on the
// last one. The All* methods walk the pages for you.
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// ListOptions pages through a list. A zero Limit lets the platform choose
// (50); the most it allows is 200.
type ListOptions struct {
	Limit  int
	Cursor string
}

// Address is a postal address; Country is an ISO 3166-1 alpha-2 code.
type Address struct {
	Line1    string `json:"line1"`
	City     string `json:"city"`
	Postcode string `json:"postcode"`
	Country  string `json:"country"`
}

// Geo is where a customer lives, for offers that depend on it.
type Geo struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// Customer is a person or business banking with the bank. An app sees the
// customers it created, those it was seeded with in the sandbox, and those
// the bank granted it.
type Customer struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	Name           string    `json:"name"`
	DateOfBirth    string    `json:"date_of_birth,omitempty"`
	Email          string    `json:"email"`
	Phone          string    `json:"phone,omitempty"`
	Address        Address   `json:"address"`
	DocumentNumber string    `json:"document_number,omitempty"`
	Homeowner      bool      `json:"homeowner"`
	Geo            *Geo      `json:"geo,omitempty"`
	MonthlyIncome  *Money    `json:"monthly_income,omitempty"`
	KYCStatus      string    `json:"kyc_status"`
	CreatedAt      time.Time `json:"created_at"`
}

// NewCustomer is the body of CreateCustomer. DateOfBirth (YYYY-MM-DD) is
// required for a person; DocumentNumber is what KYC checks.
type NewCustomer struct {
	Type           string  `json:"type"`
	Name           string  `json:"name"`
	DateOfBirth    string  `json:"date_of_birth,omitempty"`
	Email          string  `json:"email"`
	Phone          string  `json:"phone,omitempty"`
	Address        Address `json:"address"`
	DocumentNumber string  `json:"document_number,omitempty"`
	Homeowner      bool    `json:"homeowner,omitempty"`
	Geo            *Geo    `json:"geo,omitempty"`
	MonthlyIncome  *Money  `json:"monthly_income,omitempty"`
}

// Account is a customer's current or savings account.
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

// NewAccount is the body of OpenAccount.
type NewAccount struct {
	CustomerID string `json:"customer_id"`
	Product    string `json:"product"`
	Currency   string `json:"currency"`
	Name       string `json:"name,omitempty"`
}

// AccountFilter narrows Accounts and AllAccounts to one customer's
// accounts when CustomerID is set, and pages them.
type AccountFilter struct {
	CustomerID string
	Limit      int
	Cursor     string
}

// Balances of an account: booked is the sum of its postings; available
// leaves out funds held for payments under review.
type Balances struct {
	AccountID string `json:"account_id"`
	Booked    Money  `json:"booked"`
	Available Money  `json:"available"`
}

// Transaction is one booking on an account. Amount is never negative;
// Direction says which way the money went.
type Transaction struct {
	ID               string    `json:"id"`
	AccountID        string    `json:"account_id"`
	Amount           Money     `json:"amount"`
	Direction        string    `json:"direction"`
	Description      string    `json:"description"`
	CounterpartyName string    `json:"counterparty_name,omitempty"`
	CounterpartyIBAN string    `json:"counterparty_iban,omitempty"`
	BalanceAfter     Money     `json:"balance_after"`
	BookedAt         time.Time `json:"booked_at"`
}

// TransactionFilter narrows Transactions to those booked in [From, To)
// when set, and pages them (newest first).
type TransactionFilter struct {
	From, To time.Time
	Limit    int
	Cursor   string
}

// Creditor is who a payment goes to: an account at the bank by AccountID,
// or any account by IBAN and Name.
type Creditor struct {
	AccountID string `json:"account_id,omitempty"`
	IBAN      string `json:"iban,omitempty"`
	Name      string `json:"name,omitempty"`
}

// NewPayment is the body of CreatePayment.
type NewPayment struct {
	DebtorAccountID string   `json:"debtor_account_id"`
	Creditor        Creditor `json:"creditor"`
	Amount          Money    `json:"amount"`
	Reference       string   `json:"reference,omitempty"`
}

// FraudCheck is the answer of the payments.fraud-check extension point;
// StandIn is true when the provider did not answer in time and the
// bank's stand-in result was used.
type FraudCheck struct {
	Decision string `json:"decision"`
	Score    int    `json:"score"`
	Reason   string `json:"reason"`
	Provider string `json:"provider"`
	StandIn  bool   `json:"stand_in"`
}

// Rejection says why a payment was rejected, e.g. code insufficient_funds.
type Rejection struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Payment is a transfer from a customer account. A payment the bank
// refuses (insufficient funds, fraud denial) is not an error: it comes back
// with Status "rejected" and a Rejection.
type Payment struct {
	ID              string      `json:"id"`
	DebtorAccountID string      `json:"debtor_account_id"`
	Creditor        Creditor    `json:"creditor"`
	Amount          Money       `json:"amount"`
	Reference       string      `json:"reference"`
	Status          string      `json:"status"`
	Rejection       *Rejection  `json:"rejection,omitempty"`
	FraudCheck      *FraudCheck `json:"fraud_check,omitempty"`
	CreatedAt       time.Time   `json:"created_at"`
	UpdatedAt       time.Time   `json:"updated_at"`
}

// KYCCheck is one rule of a KYC verification (age, sanctions, ...).
type KYCCheck struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// KYCVerification is a KYC check run on a customer: the overall result and
// every check that led to it.
type KYCVerification struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id"`
	Result     string     `json:"result"`
	Checks     []KYCCheck `json:"checks"`
	Provider   string     `json:"provider"`
	StandIn    bool       `json:"stand_in"`
	CreatedAt  time.Time  `json:"created_at"`
}

// NewLoanApplication is the body of ApplyForLoan.
type NewLoanApplication struct {
	CustomerID    string `json:"customer_id"`
	Amount        Money  `json:"amount"`
	TermMonths    int    `json:"term_months"`
	Purpose       string `json:"purpose"`
	MonthlyIncome Money  `json:"monthly_income"`
}

// LoanDecision is the credit decision on a loan application. Rate is the
// nominal annual rate in percent as a decimal string ("4.50").
type LoanDecision struct {
	Provider string `json:"provider"`
	Reason   string `json:"reason"`
	Rate     string `json:"rate"`
	RateBP   int    `json:"rate_bp"`
	Limit    Money  `json:"limit"`
	Score    int    `json:"score"`
	StandIn  bool   `json:"stand_in"`
}

// Instalment is one monthly repayment of a funded loan; DueDate is
// YYYY-MM-DD.
type Instalment struct {
	DueDate   string `json:"due_date"`
	Principal Money  `json:"principal"`
	Interest  Money  `json:"interest"`
}

// LoanApplication is a loan from application to funding. Schedule is set
// once it is funded.
type LoanApplication struct {
	ID              string       `json:"id"`
	CustomerID      string       `json:"customer_id"`
	Amount          Money        `json:"amount"`
	TermMonths      int          `json:"term_months"`
	Purpose         string       `json:"purpose"`
	MonthlyIncome   Money        `json:"monthly_income"`
	Status          string       `json:"status"`
	Decision        LoanDecision `json:"decision"`
	FundedAccountID string       `json:"funded_account_id,omitempty"`
	Schedule        []Instalment `json:"schedule,omitempty"`
	CreatedAt       time.Time    `json:"created_at"`
	FundedAt        *time.Time   `json:"funded_at,omitempty"`
}

// Offer is a product the bank suggests for a customer, best first.
type Offer struct {
	ID      string `json:"id"`
	Product string `json:"product"`
	Title   string `json:"title"`
	Reason  string `json:"reason"`
	Score   int    `json:"score"`
}
