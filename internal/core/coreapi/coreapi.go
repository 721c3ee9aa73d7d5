// Package coreapi serves the sandbox bank over HTTP: the bank's own view
// under /bank/v1 (every customer, deposits, bank-initiated payments, review
// decisions, the ledger check). Handlers only translate HTTP to core calls;
// every rule lives in package core.
package coreapi

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// MoneySchema is how core.Money looks on the wire.
type MoneySchema struct {
	Amount   string `json:"amount" pattern:"^[0-9]+(\\.[0-9]+)?$" example:"12.34" doc:"Decimal string, never a float. An amount the bank takes in is at most 10^13 minor units: 100000000000.00 in a currency with two decimals (EUR, USD, GBP, ...), 10000000000000 in one without (JPY, ISK)"`
	Currency string `json:"currency" pattern:"^[A-Z]{3}$" example:"EUR" doc:"ISO 4217 code"`
}

// RegisterSchemas teaches the OpenAPI generator the wire form of core's
// types that marshal themselves.
func RegisterSchemas(api huma.API) {
	reg := api.OpenAPI().Components.Schemas
	reg.RegisterTypeAlias(reflect.TypeFor[core.Money](), reflect.TypeFor[MoneySchema]())
	reg.RegisterTypeAlias(reflect.TypeFor[core.Date](), reflect.TypeFor[dateSchema]())
}

// MoneyInput is money in a request body. It is parsed by the handler, not
// by the JSON decoder, so a bad amount gets its own problem code
// (too_many_decimals, unknown_currency, ...) instead of a generic one.
type MoneyInput struct {
	Amount   string `json:"amount" minLength:"1" maxLength:"32" example:"12.34" doc:"Decimal string, never a float. At most 10^13 minor units: 100000000000.00 in a currency with two decimals (EUR, USD, GBP, ...), 10000000000000 in one without (JPY, ISK); more is refused with 422 amount_too_large"`
	Currency string `json:"currency" minLength:"3" maxLength:"3" example:"EUR" doc:"ISO 4217 code"`
}

// Money parses the amount in its currency.
func (m MoneyInput) Money() (core.Money, error) { return core.ParseMoney(m.Amount, m.Currency) }

type dateSchema string

// Schema describes core.Date as an RFC 3339 full-date.
func (dateSchema) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "string", Format: "date", Examples: []any{"2026-12-25"}}
}

// Register adds the bank's routes under /bank/v1.
func Register(s *httpapi.Server, bank *core.Bank) {
	RegisterSchemas(s.API)
	h := &handlers{bank: bank}
	g := s.Bank
	tags := []string{"Sandbox bank"}
	huma.Register(g, httpapi.Route{ID: "bank-list-customers", Method: http.MethodGet, Path: "/customers", Tags: tags,
		Summary:     "List every customer",
		Description: "Every customer of the sandbox bank, whichever app created it or none, oldest first; paged with limit and cursor."}.Bank(), h.listCustomers)
	huma.Register(g, httpapi.Route{ID: "bank-get-customer", Method: http.MethodGet, Path: "/customers/{id}", Tags: tags,
		Summary:     "Get a customer",
		Description: "One customer with its contact details and KYC status."}.Bank(), h.getCustomer)
	huma.Register(g, httpapi.Route{ID: "bank-customer-offers", Method: http.MethodGet, Path: "/customers/{id}/offers", Tags: tags,
		Summary: "Offers for a customer",
		Description: "The products that fit the customer, best first, with a score and the reason: what an app sees from GET /v1/offers, " +
			"for any customer."}.Bank(), h.offers)
	huma.Register(g, httpapi.Route{ID: "bank-list-accounts", Method: http.MethodGet, Path: "/accounts", Tags: tags,
		Summary:     "List customer accounts",
		Description: "Every customer account, oldest first; customer_id narrows to one customer. The bank's own ledger accounts are not listed."}.Bank(), h.listAccounts)
	huma.Register(g, httpapi.Route{ID: "bank-get-account", Method: http.MethodGet, Path: "/accounts/{id}", Tags: tags,
		Summary:     "Get an account",
		Description: "One customer account: product, currency, IBAN, status and owner."}.Bank(), h.getAccount)
	huma.Register(g, httpapi.Route{ID: "bank-get-balances", Method: http.MethodGet, Path: "/accounts/{id}/balances", Tags: tags,
		Summary:     "Booked and available balance",
		Description: "booked is the sum of the booked transactions; available is booked minus what payments held for review hold."}.Bank(), h.balances)
	huma.Register(g, httpapi.Route{ID: "bank-list-transactions", Method: http.MethodGet, Path: "/accounts/{id}/transactions", Tags: tags,
		Summary:     "An account's transactions, newest first",
		Description: "The account's booked transactions, newest first; from and to (RFC 3339 or YYYY-MM-DD) narrow to [from, to)."}.Bank(), h.transactions)
	deposit := httpapi.Route{ID: "bank-deposit", Method: http.MethodPost, Path: "/accounts/{id}/deposits", Tags: tags, Status: http.StatusCreated,
		Summary: "Credit an account with money from outside the bank",
		Description: "Books money that enters the bank (cash at a branch, a transfer in from another bank) on a customer account, " +
			"against the bank's cash account; the sandbox's way to fund accounts. The amount must be positive and in the " +
			"account's currency; a closed account is 409 account_closed. Emits transaction.booked."}.Bank()
	huma.Register(g, deposit, h.deposit)
	pay := httpapi.Route{ID: "bank-create-payment", Method: http.MethodPost, Path: "/payments", Tags: tags, Status: http.StatusCreated,
		Summary: "Make a payment from any customer account",
		Description: "A payment the bank initiates (a standing order, a branch transfer) from any customer account, through the same " +
			"fraud check and booking as an app's. A refusal is 201 with status rejected and why; with an Idempotency-Key a " +
			"retry returns the first payment, and the key with another body is 422 idempotency_key_reused."}.Bank()
	huma.Register(g, pay, h.createPayment)
	huma.Register(g, httpapi.Route{ID: "bank-get-payment", Method: http.MethodGet, Path: "/payments/{id}", Tags: tags,
		Summary:     "Get a payment",
		Description: "Any payment with its status, fraud check and, when rejected, why."}.Bank(), h.getPayment)
	huma.Register(g, httpapi.Route{ID: "bank-release-payment", Method: http.MethodPost, Path: "/payments/{id}/release", Tags: tags,
		Summary: "Release a payment held for review",
		Description: "Books a payment a fraud check held for review, if the funds are still there (else it is rejected, " +
			"insufficient_funds). The decision names the state it leaves: a payment no longer held, or one another " +
			"operator decided a moment earlier, is 409 payment_not_held, and the account is debited once."}.Bank(), h.release)
	huma.Register(g, httpapi.Route{ID: "bank-reject-payment", Method: http.MethodPost, Path: "/payments/{id}/reject", Tags: tags,
		Summary: "Reject a payment held for review",
		Description: "Rejects a payment held for review (rejected_after_review, with the reason given) and releases its hold on the " +
			"account. A payment no longer held is 409 payment_not_held."}.Bank(), h.reject)
	huma.Register(g, httpapi.Route{ID: "bank-check-ledger", Method: http.MethodGet, Path: "/ledger", Tags: tags,
		Summary: "Check the ledger's invariants",
		Description: "Proves, each in one statement over one consistent state: every entry balances, all postings sum to zero per " +
			"currency, every account's balance is the sum of its postings, no customer account is below zero " +
			"(accounts_below_minimum), and every held amount is the sum of its held payments (held_mismatches). " +
			"balanced is true only when every check passed."}.Bank(), h.ledger)
	grant := httpapi.Route{ID: "bank-create-grant", Method: http.MethodPost, Path: "/grants", Tags: tags, Status: http.StatusCreated,
		Summary: "Let an app see a customer",
		Description: "Lets an app see one of the bank's customers it did not create (a partner serving the bank's customer): the app " +
			"then reads the customer, its accounts and events, and may act for it within its scopes."}.Bank()
	huma.Register(g, grant, h.grant)
	huma.Register(g, httpapi.Route{ID: "bank-list-grants", Method: http.MethodGet, Path: "/grants", Tags: tags,
		Summary: "List the customers the bank let apps see",
		Description: "The bank's grants, ordered by app and customer; app_id narrows to one app. Access an app has because it created " +
			"or was seeded with a customer is not a grant and is not listed."}.Bank(), h.grants)
	revoke := httpapi.Route{ID: "bank-delete-grant", Method: http.MethodDelete, Path: "/grants/{app_id}/{customer_id}", Tags: tags, Status: http.StatusNoContent,
		Summary: "Stop letting an app see a customer",
		Description: "Takes back the app's access to the customer, however it came by it: from then on the customer, its accounts " +
			"and payments are 404 to the app. Deleting access the app does not have is not an error."}.Bank()
	huma.Register(g, revoke, h.revokeGrant)
}

type handlers struct{ bank *core.Bank }

func (h *handlers) listCustomers(ctx context.Context, in *httpapi.PageQuery) (*httpapi.Out[*page.Page[*core.Customer]], error) {
	return httpapi.Reply(h.bank.Customers(ctx, auth.CallerFrom(ctx), in.Limit, in.Cursor))
}

func (h *handlers) getCustomer(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Customer], error) {
	return httpapi.Reply(h.bank.Customer(ctx, auth.CallerFrom(ctx), in.ID))
}

// OffersBody lists offers.
type OffersBody struct {
	Data []core.Offer `json:"data"`
}

func (h *handlers) offers(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[OffersBody], error) {
	offers, err := h.bank.CustomerOffers(ctx, auth.CallerFrom(ctx), in.ID)
	if offers == nil {
		offers = []core.Offer{}
	}
	return httpapi.Reply(OffersBody{Data: offers}, err)
}

type listAccountsInput struct {
	httpapi.PageQuery
	CustomerID string `query:"customer_id" maxLength:"64"`
}

func (h *handlers) listAccounts(ctx context.Context, in *listAccountsInput) (*httpapi.Out[*page.Page[*core.Account]], error) {
	return httpapi.Reply(h.bank.Accounts(ctx, auth.CallerFrom(ctx), core.AccountFilter{CustomerID: in.CustomerID, Limit: in.Limit, Cursor: in.Cursor}))
}

func (h *handlers) getAccount(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Account], error) {
	return httpapi.Reply(h.bank.Account(ctx, auth.CallerFrom(ctx), in.ID))
}

func (h *handlers) balances(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Balances], error) {
	return httpapi.Reply(h.bank.Balances(ctx, auth.CallerFrom(ctx), in.ID))
}

// TransactionsInput filters an account's transactions.
type TransactionsInput struct {
	httpapi.IDPath
	httpapi.PageQuery
	From string `query:"from" maxLength:"64" doc:"Booked at or after: RFC 3339 time or YYYY-MM-DD"`
	To   string `query:"to" maxLength:"64" doc:"Booked before: RFC 3339 time or YYYY-MM-DD"`
}

// Filter parses the range.
func (in *TransactionsInput) Filter() (core.TransactionFilter, error) {
	f := core.TransactionFilter{Limit: in.Limit, Cursor: in.Cursor}
	var err error
	if f.From, err = parseTime("from", in.From); err != nil {
		return f, err
	}
	f.To, err = parseTime("to", in.To)
	return f, err
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, causeway.Errorf(causeway.EBADREQUEST, "invalid_time", "%s must be an RFC 3339 time or YYYY-MM-DD", name)
}

func (h *handlers) transactions(ctx context.Context, in *TransactionsInput) (*httpapi.Out[*page.Page[*core.Transaction]], error) {
	f, err := in.Filter()
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Transactions(ctx, auth.CallerFrom(ctx), in.ID, f))
}

type depositInput struct {
	httpapi.IDPath
	Body struct {
		Amount      MoneyInput `json:"amount"`
		Description string     `json:"description,omitempty" maxLength:"140"`
	}
}

func (h *handlers) deposit(ctx context.Context, in *depositInput) (*httpapi.Out[*core.Transaction], error) {
	amount, err := in.Body.Amount.Money()
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.bank.Deposit(ctx, auth.CallerFrom(ctx), in.ID, amount, in.Body.Description))
}

// PaymentBody is the body of a payment request.
type PaymentBody struct {
	DebtorAccountID string        `json:"debtor_account_id" maxLength:"64"`
	Creditor        core.Creditor `json:"creditor"`
	Amount          MoneyInput    `json:"amount"`
	Reference       string        `json:"reference,omitempty" maxLength:"140"`
}

// NewPayment converts the body for the core.
func (b PaymentBody) NewPayment() (core.NewPayment, error) {
	amount, err := b.Amount.Money()
	return core.NewPayment{DebtorAccountID: b.DebtorAccountID, Creditor: b.Creditor, Amount: amount, Reference: strings.TrimSpace(b.Reference)}, err
}

type paymentInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"Makes the payment at most once per key: a retry with the same key and body returns the first payment; the key with another body is 422 idempotency_key_reused"`
	Body           PaymentBody
}

func (h *handlers) createPayment(ctx context.Context, in *paymentInput) (*httpapi.Out[*core.Payment], error) {
	n, err := in.Body.NewPayment()
	if err != nil {
		return nil, err
	}
	n.IdempotencyKey = in.IdempotencyKey
	return httpapi.Reply(h.bank.CreatePayment(ctx, auth.CallerFrom(ctx), n))
}

func (h *handlers) getPayment(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*core.Payment], error) {
	return httpapi.Reply(h.bank.Payment(ctx, auth.CallerFrom(ctx), in.ID))
}

type decisionInput struct {
	httpapi.IDPath
	Body *struct {
		Reason string `json:"reason,omitempty" maxLength:"500" text:"multiline"`
	}
}

func (in *decisionInput) reason() string {
	if in.Body == nil {
		return ""
	}
	return in.Body.Reason
}

func (h *handlers) release(ctx context.Context, in *decisionInput) (*httpapi.Out[*core.Payment], error) {
	return httpapi.Reply(h.bank.DecideHeldPayment(ctx, auth.CallerFrom(ctx), in.ID, true, in.reason()))
}

func (h *handlers) reject(ctx context.Context, in *decisionInput) (*httpapi.Out[*core.Payment], error) {
	return httpapi.Reply(h.bank.DecideHeldPayment(ctx, auth.CallerFrom(ctx), in.ID, false, in.reason()))
}

func (h *handlers) ledger(ctx context.Context, _ *struct{}) (*httpapi.Out[*core.LedgerReport], error) {
	return httpapi.Reply(h.bank.CheckLedger(ctx))
}

type grantInput struct {
	Body struct {
		AppID      string `json:"app_id" minLength:"1" maxLength:"64"`
		CustomerID string `json:"customer_id" minLength:"1" maxLength:"64"`
	}
}

// GrantBody confirms a grant.
type GrantBody struct {
	AppID      string `json:"app_id"`
	CustomerID string `json:"customer_id"`
}

type grantsInput struct {
	AppID string `query:"app_id" maxLength:"64" doc:"Only this app's grants"`
	httpapi.PageQuery
}

func (h *handlers) grants(ctx context.Context, in *grantsInput) (*httpapi.Out[*page.Page[*core.Grant]], error) {
	pg, err := h.bank.Grants(ctx, auth.CallerFrom(ctx), in.AppID, in.Limit, in.Cursor)
	return httpapi.Reply(pg, err)
}

type revokeGrantInput struct {
	AppID      string `path:"app_id" maxLength:"64"`
	CustomerID string `path:"customer_id" maxLength:"64"`
}

func (h *handlers) revokeGrant(ctx context.Context, in *revokeGrantInput) (*struct{}, error) {
	return nil, h.bank.RevokeCustomer(ctx, auth.CallerFrom(ctx), in.AppID, in.CustomerID)
}

func (h *handlers) grant(ctx context.Context, in *grantInput) (*httpapi.Out[GrantBody], error) {
	err := h.bank.GrantCustomer(ctx, auth.CallerFrom(ctx), in.Body.AppID, in.Body.CustomerID)
	return httpapi.Reply(GrantBody{AppID: in.Body.AppID, CustomerID: in.Body.CustomerID}, err)
}
