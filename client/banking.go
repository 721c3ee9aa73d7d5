package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Each method is one call of the public API under /v1 and needs the scope
// named in its comment. A resource that does not exist, or that belongs to
// another app, is an *Error with status 404 (IsNotFound).

// CreateCustomer onboards a customer owned by the app (customers:write).
func (c *Client) CreateCustomer(ctx context.Context, n NewCustomer, opts ...CallOption) (*Customer, error) {
	return post[Customer](ctx, &c.conn, "/v1/customers", n, opts)
}

// Customer returns one of the app's customers (accounts:read).
func (c *Client) Customer(ctx context.Context, id string) (*Customer, error) {
	return get[Customer](ctx, &c.conn, "/v1/customers/"+url.PathEscape(id), nil)
}

// Customers returns a page of the app's customers, oldest first
// (accounts:read).
func (c *Client) Customers(ctx context.Context, o ListOptions) (*Page[Customer], error) {
	return get[Page[Customer]](ctx, &c.conn, "/v1/customers", pageQuery(o.Limit, o.Cursor))
}

// OpenAccount opens a current or savings account for one of the app's
// customers (customers:write).
func (c *Client) OpenAccount(ctx context.Context, n NewAccount, opts ...CallOption) (*Account, error) {
	return post[Account](ctx, &c.conn, "/v1/accounts", n, opts)
}

// Account returns one account (accounts:read).
func (c *Client) Account(ctx context.Context, id string) (*Account, error) {
	return get[Account](ctx, &c.conn, "/v1/accounts/"+url.PathEscape(id), nil)
}

// Accounts returns a page of the accounts the app sees, oldest first, of
// one customer if f.CustomerID is set (accounts:read).
func (c *Client) Accounts(ctx context.Context, f AccountFilter) (*Page[Account], error) {
	q := pageQuery(f.Limit, f.Cursor)
	if f.CustomerID != "" {
		q.Set("customer_id", f.CustomerID)
	}
	return get[Page[Account]](ctx, &c.conn, "/v1/accounts", q)
}

// Balances returns an account's booked and available balance
// (accounts:read).
func (c *Client) Balances(ctx context.Context, accountID string) (*Balances, error) {
	return get[Balances](ctx, &c.conn, "/v1/accounts/"+url.PathEscape(accountID)+"/balances", nil)
}

// Transactions returns a page of an account's transactions, newest first
// (accounts:read).
func (c *Client) Transactions(ctx context.Context, accountID string, f TransactionFilter) (*Page[Transaction], error) {
	q := pageQuery(f.Limit, f.Cursor)
	if !f.From.IsZero() {
		q.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.Format(time.RFC3339Nano))
	}
	return get[Page[Transaction]](ctx, &c.conn, "/v1/accounts/"+url.PathEscape(accountID)+"/transactions", q)
}

// CreatePayment makes a payment from one of the app's accounts
// (payments:write). A payment the bank refuses comes back with Status
// "rejected", not as an error. The call carries an Idempotency-Key (see
// WithIdempotencyKey); after a network error or a 503 it is sent once more
// with the same key, so the payment is never made twice.
func (c *Client) CreatePayment(ctx context.Context, n NewPayment, opts ...CallOption) (*Payment, error) {
	return post[Payment](ctx, &c.conn, "/v1/payments", n, opts)
}

// Payment returns one of the app's payments (payments:write).
func (c *Client) Payment(ctx context.Context, id string) (*Payment, error) {
	return get[Payment](ctx, &c.conn, "/v1/payments/"+url.PathEscape(id), nil)
}

// CreateKYCCheck runs a KYC check on a customer and records the result as
// the customer's KYC status (kyc:write).
func (c *Client) CreateKYCCheck(ctx context.Context, customerID string, opts ...CallOption) (*KYCVerification, error) {
	body := struct {
		CustomerID string `json:"customer_id"`
	}{customerID}
	return post[KYCVerification](ctx, &c.conn, "/v1/kyc-checks", body, opts)
}

// KYCCheck returns a KYC check made earlier (kyc:write).
func (c *Client) KYCCheck(ctx context.Context, id string) (*KYCVerification, error) {
	return get[KYCVerification](ctx, &c.conn, "/v1/kyc-checks/"+url.PathEscape(id), nil)
}

// ApplyForLoan applies for a loan for a customer; the answer carries the
// credit decision (loans:write).
func (c *Client) ApplyForLoan(ctx context.Context, n NewLoanApplication, opts ...CallOption) (*LoanApplication, error) {
	return post[LoanApplication](ctx, &c.conn, "/v1/loan-applications", n, opts)
}

// LoanApplication returns a loan application (loans:write).
func (c *Client) LoanApplication(ctx context.Context, id string) (*LoanApplication, error) {
	return get[LoanApplication](ctx, &c.conn, "/v1/loan-applications/"+url.PathEscape(id), nil)
}

// FundLoan disburses an approved loan into an account of the same customer;
// the answer has Status "funded" and the repayment schedule (loans:write).
func (c *Client) FundLoan(ctx context.Context, applicationID, accountID string, opts ...CallOption) (*LoanApplication, error) {
	body := struct {
		AccountID string `json:"account_id"`
	}{accountID}
	return post[LoanApplication](ctx, &c.conn, "/v1/loan-applications/"+url.PathEscape(applicationID)+"/funding", body, opts)
}

// Offers returns the products the bank suggests for a customer, best first
// (accounts:read).
func (c *Client) Offers(ctx context.Context, customerID string) ([]Offer, error) {
	page, err := get[Page[Offer]](ctx, &c.conn, "/v1/offers", url.Values{"customer_id": {customerID}})
	if err != nil {
		return nil, err
	}
	return page.Data, nil
}

func get[T any](ctx context.Context, c *conn, path string, q url.Values) (*T, error) {
	var v T
	if err := c.do(ctx, request{method: http.MethodGet, path: path, query: q}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func post[T any](ctx context.Context, c *conn, path string, body any, opts []CallOption) (*T, error) {
	var v T
	r := request{method: http.MethodPost, path: path, body: body, idempotencyKey: idempotencyKey(opts)}
	if err := c.do(ctx, r, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func pageQuery(limit int, cursor string) url.Values {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}
