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
	op := func(id, method, path, summary, description string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Description: description, Tags: tags}
	}
	huma.Register(g, op("bank-list-customers", http.MethodGet, "/customers", "List every customer",
		"Every customer of the sandbox bank, whichever app created it or none, oldest first; paged with limit and cursor."), h.listCustomers)
	huma.Register(g, op("bank-get-customer", http.MethodGet, "/customers/{id}", "Get a customer",
		"One customer with its contact details and KYC status."), h.getCustomer)
	huma.Register(g, op("bank-customer-offers", http.MethodGet, "/customers/{id}/offers", "Offers for a customer",
		"The products that fit the customer, best first, with a score and the reason: what an app sees from GET /v1/offers, "+
			"for any customer."), h.offers)
	huma.Register(g, op("bank-list-accounts", http.MethodGet, "/accounts", "List customer accounts",
		"Every customer account, oldest first; customer_id narrows to one customer. The bank's own ledger accounts are not listed."), h.listAccounts)
	huma.Register(g, op("bank-get-account", http.MethodGet, "/accounts/{id}", "Get an account",
		"One customer account: product, currency, IBAN, status and owner."), h.getAccount)
	huma.Register(g, op("bank-get-balances", http.MethodGet, "/accounts/{id}/balances", "Booked and available balance",
		"booked is the sum of the booked transactions; available is booked minus what payments held for review hold."), h.balances)
	huma.Register(g, op("bank-list-transactions", http.MethodGet, "/accounts/{id}/transactions", "An account's transactions, newest first",
		"The account's booked transactions, newest first; from and to (RFC 3339 or YYYY-MM-DD) narrow to [from, to)."), h.transactions)
	deposit := op("bank-deposit", http.MethodPost, "/accounts/{id}/deposits", "Credit an account with money from outside the bank",
		"Books money that enters the bank (cash at a branch, a transfer in from another bank) on a customer account, "+
			"against the bank's cash account; the sandbox's way to fund accounts. The amount must be positive and in the "+
			"account's currency; a closed account is 409 account_closed. Emits transaction.booked.")
	deposit.DefaultStatus = http.StatusCreated
	huma.Register(g, deposit, h.deposit)
	pay := op("bank-create-payment", http.MethodPost, "/payments", "Make a payment from any customer account",
		"A payment the bank initiates (a standing order, a branch transfer) from any customer account, through the same "+
			"fraud check and booking as an app's. A refusal is 201 with status rejected and why; with an Idempotency-Key a "+
			"retry returns the first payment, and the key with another body is 422 idempotency_key_reused.")
	pay.DefaultStatus = http.StatusCreated
	huma.Register(g, pay, h.createPayment)
	huma.Register(g, op("bank-get-payment", http.MethodGet, "/payments/{id}", "Get a payment",
		"Any payment with its status, fraud check and, when rejected, why."), h.getPayment)
	huma.Register(g, op("bank-release-payment", http.MethodPost, "/payments/{id}/release", "Release a payment held for review",
		"Books a payment a fraud check held for review, if the funds are still there (else it is rejected, "+
			"insufficient_funds). The decision names the state it leaves: a payment no longer held, or one another "+
			"operator decided a moment earlier, is 409 payment_not_held, and the account is debited once."), h.release)
	huma.Register(g, op("bank-reject-payment", http.MethodPost, "/payments/{id}/reject", "Reject a payment held for review",
		"Rejects a payment held for review (rejected_after_review, with the reason given) and releases its hold on the "+
			"account. A payment no longer held is 409 payment_not_held."), h.reject)
	huma.Register(g, op("bank-check-ledger", http.MethodGet, "/ledger", "Check the ledger's invariants",
		"Proves, each in one statement over one consistent state: every entry balances, all postings sum to zero per "+
			"currency, every account's balance is the sum of its postings, no customer account is below zero "+
			"(accounts_below_minimum), and every held amount is the sum of its held payments (held_mismatches). "+
			"balanced is true only when every check passed."), h.ledger)
	grant := op("bank-create-grant", http.MethodPost, "/grants", "Let an app see a customer",
		"Lets an app see one of the bank's customers it did not create (a partner serving the bank's customer): the app "+
			"then reads the customer, its accounts and events, and may act for it within its scopes.")
	grant.DefaultStatus = http.StatusCreated
	huma.Register(g, grant, h.grant)
	huma.Register(g, op("bank-list-grants", http.MethodGet, "/grants", "List the customers the bank let apps see",
		"The bank's grants, ordered by app and customer; app_id narrows to one app. Access an app has because it created "+
			"or was seeded with a customer is not a grant and is not listed."), h.grants)
	revoke := op("bank-delete-grant", http.MethodDelete, "/grants/{app_id}/{customer_id}", "Stop letting an app see a customer",
		"Takes back the app's access to the customer, however it came by it: from then on the customer, its accounts "+
			"and payments are 404 to the app. Deleting access the app does not have is not an error.")
	revoke.DefaultStatus = http.StatusNoContent
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
