package coreapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// RegisterPublic adds the public banking API under /v1. Every route
// declares the OAuth2 scope it needs; the gateway authenticates the app,
// checks the scope and puts the app in the context before a handler runs.
// An app sees only the customers it created, was seeded with, or was granted.
func RegisterPublic(s *httpapi.Server, bank *core.Bank) {
	RegisterSchemas(s.API)
	h := &publicHandlers{bank: bank}
	tags := []string{"Banking"}
	huma.Register(s.API, httpapi.Route{ID: "create-customer", Method: http.MethodPost, Path: "/v1/customers", Tags: tags, Status: http.StatusCreated,
		Summary: "Onboard a customer",
		Description: "Creates a person (date_of_birth required) or a business as a customer of the bank, visible to this app from now on. " +
			"Its kyc_status is pending until a KYC check runs; lending needs a passed one. document_number feeds the KYC check; " +
			"homeowner, geo and monthly_income tailor the offers. Emits customer.created."}.App(auth.ScopeCustomersWrite), h.createCustomer)
	huma.Register(s.API, httpapi.Route{ID: "list-customers", Method: http.MethodGet, Path: "/v1/customers", Tags: tags,
		Summary: "List the app's customers",
		Description: "The customers this app may see, oldest first: those it created, its seeded sandbox customers and those the bank " +
			"granted it. Pass next_cursor as cursor for the next page; an empty next_cursor is the last page."}.App(auth.ScopeAccountsRead), h.listCustomers)
	huma.Register(s.API, httpapi.Route{ID: "get-customer", Method: http.MethodGet, Path: "/v1/customers/{id}", Tags: tags,
		Summary:     "Get a customer",
		Description: "One customer with its contact details and KYC status. An id this app may not see is 404 customer_not_found."}.App(auth.ScopeAccountsRead), h.getCustomer)
	huma.Register(s.API, httpapi.Route{ID: "open-account", Method: http.MethodPost, Path: "/v1/accounts", Tags: tags, Status: http.StatusCreated,
		Summary: "Open an account for a customer",
		Description: "Opens a current or savings account in a supported currency for a customer this app may see, with an IBAN and a " +
			"zero balance. Emits account.opened. Fund it with a payment into it (sandbox: the bank's deposits)."}.App(auth.ScopeCustomersWrite), h.openAccount)
	huma.Register(s.API, httpapi.Route{ID: "list-accounts", Method: http.MethodGet, Path: "/v1/accounts", Tags: tags,
		Summary: "List accounts",
		Description: "The accounts of the customers this app may see, oldest first; customer_id narrows to one customer. Paged with " +
			"limit and cursor."}.App(auth.ScopeAccountsRead), h.listAccounts)
	huma.Register(s.API, httpapi.Route{ID: "get-account", Method: http.MethodGet, Path: "/v1/accounts/{id}", Tags: tags,
		Summary: "Get an account",
		Description: "One account: product, currency, IBAN, status and owner. An account of a customer this app may not see is 404 " +
			"account_not_found."}.App(auth.ScopeAccountsRead), h.getAccount)
	huma.Register(s.API, httpapi.Route{ID: "get-balances", Method: http.MethodGet, Path: "/v1/accounts/{id}/balances", Tags: tags,
		Summary: "Booked and available balance",
		Description: "booked is the sum of the account's booked transactions; available is booked minus the amounts held by payments " +
			"waiting for the bank's review, so it is what the customer can spend now."}.App(auth.ScopeAccountsRead), h.balances)
	huma.Register(s.API, httpapi.Route{ID: "list-transactions", Method: http.MethodGet, Path: "/v1/accounts/{id}/transactions", Tags: tags,
		Summary: "Transactions, newest first",
		Description: "The account's booked transactions, newest first, each a credit or a debit with its amount, description and the " +
			"balance after it. from and to (RFC 3339 or YYYY-MM-DD) narrow to [from, to); from after to is 422 invalid_range."}.App(auth.ScopeAccountsRead), h.transactions)
	huma.Register(s.API, httpapi.Route{ID: "create-payment", Method: http.MethodPost, Path: "/v1/payments", Tags: tags, Status: http.StatusCreated,
		Summary: "Make a payment",
		Description: "Pays from a current or savings account this app may see to another account of the bank (creditor.account_id) " +
			"or to an IBAN elsewhere (creditor.iban with creditor.name). The payments.fraud-check extension point is asked " +
			"first. A payment the bank refuses is not an error: it comes back 201 with status rejected and a rejection " +
			"saying why (insufficient_funds, fraud_denied); a review decision holds it (status held, the amount held on " +
			"the account) until the bank releases or rejects it. Send an Idempotency-Key: a retry then returns the first " +
			"payment instead of paying twice. Emits payment.completed, payment.rejected or payment.held."}.App(auth.ScopePaymentsWrite), h.createPayment)
	huma.Register(s.API, httpapi.Route{ID: "get-payment", Method: http.MethodGet, Path: "/v1/payments/{id}", Tags: tags,
		Summary: "Get a payment",
		Description: "One payment with its status (completed, rejected, held), its fraud check and, when rejected, why. A payment " +
			"from an account this app may not see is 404 payment_not_found."}.App(auth.ScopePaymentsWrite), h.getPayment)
	huma.Register(s.API, httpapi.Route{ID: "create-kyc-check", Method: http.MethodPost, Path: "/v1/kyc-checks", Tags: tags, Status: http.StatusCreated,
		Summary: "Run a KYC check on a customer",
		Description: "Runs the bank's KYC rules (required fields, age, sanctions, document number, email, country) and asks the kyc.verify providers, the bank's " +
			"and this app's own; the worst result wins (fail, then refer, then pass), so no provider can clear what " +
			"another flagged. The result becomes the customer's kyc_status; every check is listed with its outcome. " +
			"Lending needs a passed KYC. Emits kyc.check.completed."}.App(auth.ScopeKYCWrite), h.createKYC)
	huma.Register(s.API, httpapi.Route{ID: "get-kyc-check", Method: http.MethodGet, Path: "/v1/kyc-checks/{id}", Tags: tags,
		Summary:     "Get a KYC check",
		Description: "One KYC check with its result, each check that led to it and the provider whose answer decided."}.App(auth.ScopeKYCWrite), h.getKYC)
	huma.Register(s.API, httpapi.Route{ID: "create-loan-application", Method: http.MethodPost, Path: "/v1/loan-applications", Tags: tags, Status: http.StatusCreated,
		Summary: "Apply for a loan",
		Description: "Applies for a loan for a customer this app may see and decides it at once: through the loans.credit-decision " +
			"extension point, or the bank's scorecard when no provider is active. The answer is 201 whatever the " +
			"decision: status approved (with the limit and rate decided), declined or referred (a person decides). " +
			"A customer whose KYC has not passed is never approved. Emits loan.application.decided."}.App(auth.ScopeLoansWrite), h.applyLoan)
	huma.Register(s.API, httpapi.Route{ID: "get-loan-application", Method: http.MethodGet, Path: "/v1/loan-applications/{id}", Tags: tags,
		Summary:     "Get a loan application",
		Description: "One loan application with its decision and, once funded, the account it was paid into and its repayment schedule."}.App(auth.ScopeLoansWrite), h.getLoan)
	huma.Register(s.API, httpapi.Route{ID: "fund-loan-application", Method: http.MethodPost, Path: "/v1/loan-applications/{id}/funding", Tags: tags,
		Summary: "Disburse an approved loan into an account",
		Description: "Pays an approved loan into a current account of the borrower in the loan's currency and fixes the annuity " +
			"schedule from today. A loan is funded once: again is 409 loan_already_funded; one not approved is 409 " +
			"loan_not_approved. The bank checks again what it lends on: an amount above the decided limit is 409 " +
			"loan_exceeds_limit, a customer whose KYC no longer passes 409 kyc_not_passed. Emits loan.funded."}.App(auth.ScopeLoansWrite), h.fundLoan)
	huma.Register(s.API, httpapi.Route{ID: "list-offers", Method: http.MethodGet, Path: "/v1/offers", Tags: tags,
		Summary: "Product offers for a customer",
		Description: "Products that fit a customer this app may see, best first, each with a score (0 to 100) and the reason, from " +
			"what the bank knows: home ownership and location, balances, income and loans. An empty list is a valid answer."}.App(auth.ScopeAccountsRead), h.offers)
}

type publicHandlers struct{ bank *core.Bank }

// CustomerBody is the body of POST /v1/customers.
type CustomerBody struct {
	Type           string       `json:"type" enum:"person,business"`
	Name           string       `json:"name" minLength:"1" maxLength:"200"`
	DateOfBirth    string       `json:"date_of_birth,omitempty" maxLength:"10" doc:"YYYY-MM-DD; required for persons" example:"1985-04-12"`
	Email          string       `json:"email" maxLength:"254" example:"ada@example.com"`
	Phone          string       `json:"phone,omitempty" maxLength:"32"`
	Address        core.Address `json:"address"`
	DocumentNumber string       `json:"document_number,omitempty" maxLength:"32" doc:"Passport or ID card number, for KYC"`
	Homeowner      bool         `json:"homeowner,omitempty"`
	Geo            *core.Geo    `json:"geo,omitempty" doc:"Where the customer lives, for tailored offers"`
	MonthlyIncome  *MoneyInput  `json:"monthly_income,omitempty"`
}

type createCustomerInput struct{ Body CustomerBody }

func (h *publicHandlers) createCustomer(ctx context.Context, in *createCustomerInput) (*httpapi.Out[*core.Customer], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	b := in.Body
	n := core.NewCustomer{
		Type: b.Type, Name: b.Name, DateOfBirth: b.DateOfBirth, Email: b.Email, Phone: b.Phone,
		Address: b.Address, DocumentNumber: b.DocumentNumber, Homeowner: b.Homeowner, Geo: b.Geo,
	}
	if b.MonthlyIncome != nil {
		m, err := b.MonthlyIncome.Money()
		if err != nil {
			return nil, err
		}
		n.MonthlyIncome = &m
	}
	return httpapi.Reply(h.bank.CreateCustomer(ctx, a, n))
}

func (h *publicHandlers) listCustomers(ctx context.Context, in *httpapi.PageQuery) (*httpapi.Out[*page.Page[*core.Customer]], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Customers(ctx, a, in.Limit, in.Cursor))
}

func (h *publicHandlers) getCustomer(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Customer], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Customer(ctx, a, in.ID))
}

type openAccountInput struct {
	Body struct {
		CustomerID string `json:"customer_id" maxLength:"64"`
		Product    string `json:"product" enum:"current,savings"`
		Currency   string `json:"currency" minLength:"3" maxLength:"3" example:"EUR"`
		Name       string `json:"name,omitempty" maxLength:"100"`
	}
}

func (h *publicHandlers) openAccount(ctx context.Context, in *openAccountInput) (*httpapi.Out[*core.Account], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	b := in.Body
	return httpapi.Reply(h.bank.OpenAccount(ctx, a, core.NewAccount{CustomerID: b.CustomerID, Product: b.Product, Currency: b.Currency, Name: b.Name}))
}

func (h *publicHandlers) listAccounts(ctx context.Context, in *listAccountsInput) (*httpapi.Out[*page.Page[*core.Account]], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Accounts(ctx, a, core.AccountFilter{CustomerID: in.CustomerID, Limit: in.Limit, Cursor: in.Cursor}))
}

func (h *publicHandlers) getAccount(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Account], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Account(ctx, a, in.ID))
}

func (h *publicHandlers) balances(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Balances], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Balances(ctx, a, in.ID))
}

func (h *publicHandlers) transactions(ctx context.Context, in *TransactionsInput) (*httpapi.Out[*page.Page[*core.Transaction]], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	f, err := in.Filter()
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Transactions(ctx, a, in.ID, f))
}

func (h *publicHandlers) createPayment(ctx context.Context, in *paymentInput) (*httpapi.Out[*core.Payment], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	n, err := in.Body.NewPayment()
	if err != nil {
		return nil, err
	}
	n.IdempotencyKey = in.IdempotencyKey
	return httpapi.Reply(h.bank.CreatePayment(ctx, a, n))
}

func (h *publicHandlers) getPayment(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Payment], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Payment(ctx, a, in.ID))
}

type kycInput struct {
	Body struct {
		CustomerID string `json:"customer_id" maxLength:"64"`
	}
}

func (h *publicHandlers) createKYC(ctx context.Context, in *kycInput) (*httpapi.Out[*core.KYCVerification], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.VerifyCustomer(ctx, a, in.Body.CustomerID))
}

func (h *publicHandlers) getKYC(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.KYCVerification], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Verification(ctx, a, in.ID))
}

type loanInput struct {
	Body struct {
		CustomerID    string     `json:"customer_id" maxLength:"64"`
		Amount        MoneyInput `json:"amount"`
		TermMonths    int        `json:"term_months" minimum:"1" maximum:"480"`
		Purpose       string     `json:"purpose" minLength:"1" maxLength:"200" example:"solar panels"`
		MonthlyIncome MoneyInput `json:"monthly_income"`
	}
}

func (h *publicHandlers) applyLoan(ctx context.Context, in *loanInput) (*httpapi.Out[*core.LoanApplication], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	b := in.Body
	amount, err := b.Amount.Money()
	if err != nil {
		return nil, err
	}
	income, err := b.MonthlyIncome.Money()
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.ApplyForLoan(ctx, a, core.NewLoanApplication{
		CustomerID: b.CustomerID, Amount: amount, TermMonths: b.TermMonths, Purpose: b.Purpose, MonthlyIncome: income,
	}))
}

func (h *publicHandlers) getLoan(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.LoanApplication], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.LoanApplication(ctx, a, in.ID))
}

type fundInput struct {
	httpapi.IDPath
	Body struct {
		AccountID string `json:"account_id" maxLength:"64"`
	}
}

func (h *publicHandlers) fundLoan(ctx context.Context, in *fundInput) (*httpapi.Out[*core.LoanApplication], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.FundLoan(ctx, a, in.ID, in.Body.AccountID))
}

type offersInput struct {
	CustomerID string `query:"customer_id" required:"true" maxLength:"64"`
}

func (h *publicHandlers) offers(ctx context.Context, in *offersInput) (*httpapi.Out[OffersBody], error) {
	a, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	offers, err := h.bank.CustomerOffers(ctx, a, in.CustomerID)
	if offers == nil {
		offers = []core.Offer{}
	}
	return httpapi.Reply(OffersBody{Data: offers}, err)
}
