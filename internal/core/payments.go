package core

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// Payment statuses. A payment is decided before it is stored, so callers
// never see it pending; the status exists for processes that decide later.
const (
	PaymentPending   = "pending"
	PaymentCompleted = "completed"
	PaymentRejected  = "rejected"
	PaymentHeld      = "held"
)

// Fraud-check decisions.
const (
	FraudApprove = "approve"
	FraudDeny    = "deny"
	FraudReview  = "review"
)

// Creditor is who receives a payment: an account of this bank, or any IBAN
// with the holder's name.
type Creditor struct {
	AccountID string `json:"account_id,omitempty" maxLength:"64"`
	IBAN      string `json:"iban,omitempty" maxLength:"42" doc:"Spaces allowed, as printed"`
	Name      string `json:"name,omitempty" maxLength:"140"`
}

// FraudCheck is the outcome of the payments.fraud-check extension point.
type FraudCheck struct {
	Decision string `json:"decision" enum:"approve,deny,review"`
	Score    int    `json:"score"`
	Reason   string `json:"reason"`
	Provider string `json:"provider"`
	StandIn  bool   `json:"stand_in" doc:"true when the provider did not answer and the stand-in result was used"`
}

// Rejection says why a payment was rejected.
type Rejection struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Payment is a transfer from a customer account.
type Payment struct {
	ID              string      `json:"id"`
	DebtorAccountID string      `json:"debtor_account_id"`
	Creditor        Creditor    `json:"creditor"`
	Amount          Money       `json:"amount"`
	Reference       string      `json:"reference"`
	Status          string      `json:"status" enum:"pending,completed,rejected,held"`
	Rejection       *Rejection  `json:"rejection,omitempty"`
	FraudCheck      *FraudCheck `json:"fraud_check,omitempty"`
	CreatedAt       time.Time   `json:"created_at"`
	UpdatedAt       time.Time   `json:"updated_at"`

	appID          string // the app that made it, "" for the bank
	idempotencyKey string
	requestHash    string // what it was asked to do (see NewPayment.fingerprint)
	// counterpartID is the account its booking credits: the creditor's
	// account at this bank or the clearing account. The bank's business:
	// never shown, as it may be another tenant's account.
	counterpartID string
}

// NewPayment is what a caller gives to make a payment.
type NewPayment struct {
	DebtorAccountID string
	Creditor        Creditor
	Amount          Money
	Reference       string
	// IdempotencyKey, when set, makes the payment at most once per app and
	// key: a second call with the key returns the first payment.
	IdempotencyKey string
}

// fingerprint identifies what a (validated) payment request asks for, so a
// reused idempotency key with a different request is told apart from a
// retry.
func (n *NewPayment) fingerprint() string {
	h := sha256.New()
	for _, f := range []string{n.DebtorAccountID, n.Creditor.AccountID, n.Creditor.IBAN, n.Creditor.Name,
		strconv.FormatInt(n.Amount.Minor, 10), n.Amount.Currency, n.Reference} {
		// Length-prefixed, so no two different requests share a fingerprint.
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (n *NewPayment) validate() error {
	if !n.Amount.IsPositive() {
		return causeway.Errorf(causeway.EINVALID, "invalid_amount", "amount must be positive")
	}
	if len(n.Reference) > 140 {
		return causeway.Errorf(causeway.EINVALID, "invalid_reference", "reference is at most 140 characters")
	}
	c := &n.Creditor
	switch {
	case c.AccountID != "" && c.IBAN != "":
		return causeway.Errorf(causeway.EINVALID, "invalid_creditor", "give creditor.account_id or creditor.iban, not both")
	case c.AccountID == "" && c.IBAN == "":
		return causeway.Errorf(causeway.EINVALID, "invalid_creditor", "creditor.account_id or creditor.iban is required")
	case c.IBAN != "":
		iban, err := ValidateIBAN(c.IBAN)
		if err != nil {
			return err
		}
		c.IBAN = iban
		c.Name = strings.TrimSpace(c.Name)
		if c.Name == "" {
			return causeway.Errorf(causeway.EINVALID, "invalid_creditor", "creditor.name is required with an IBAN")
		}
	}
	return nil
}

// CreatePayment makes a payment from an account the caller may see. The
// payments.fraud-check extension point is asked first, outside any lock;
// then, in one transaction (shared with the other payments waiting at that
// moment: see paycommit.go), funds are checked, the payment is stored as
// completed, rejected or held, its postings are booked, and its events are
// written. Insufficient funds and a fraud denial give a rejected payment,
// not an error; invalid input is an error.
func (b *Bank) CreatePayment(ctx context.Context, caller auth.Caller, n NewPayment) (*Payment, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	request := n.fingerprint()
	if n.IdempotencyKey != "" {
		if p, err := b.paymentByKey(ctx, caller, n.IdempotencyKey, request); err != nil || p != nil {
			return p, err
		}
	}
	// The payment's statements are the bank's most run: prepared once.
	debtor, err := getAccount(ctx, b.db.Prepared(), caller, n.DebtorAccountID)
	if err != nil {
		return nil, err
	}
	if debtor.Product != ProductCurrent && debtor.Product != ProductSavings {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_debtor", "payments are made from current or savings accounts")
	}
	if debtor.Status != AccountActive {
		return nil, causeway.Errorf(causeway.ECONFLICT, "account_closed", "account %s is closed", debtor.ID)
	}
	if n.Amount.Currency != debtor.Currency {
		return nil, causeway.Errorf(causeway.EINVALID, "currency_mismatch", "amount is in %s, the account in %s", n.Amount.Currency, debtor.Currency)
	}
	creditor, err := b.resolveCreditor(ctx, caller, &n.Creditor)
	if err != nil {
		return nil, err
	}
	if creditor != nil {
		if creditor.ID == debtor.ID {
			return nil, causeway.Errorf(causeway.EINVALID, "payment_to_self", "debtor and creditor are the same account")
		}
		if creditor.Currency != debtor.Currency {
			return nil, causeway.Errorf(causeway.EINVALID, "currency_mismatch", "creditor account is in %s", creditor.Currency)
		}
		if creditor.Status != AccountActive {
			return nil, causeway.Errorf(causeway.ECONFLICT, "account_closed", "creditor account is closed")
		}
	}

	now := b.now().UTC().Truncate(time.Microsecond)
	p := &Payment{
		ID: ids.New("pay"), DebtorAccountID: debtor.ID, Creditor: n.Creditor, Amount: n.Amount,
		Reference: n.Reference, Status: PaymentPending, CreatedAt: now, UpdatedAt: now,
	}
	fraud, err := b.fraudCheck(ctx, caller, p, debtor.CustomerID)
	if err != nil {
		return nil, err
	}
	p.appID, p.idempotencyKey, p.requestHash = appOf(caller), n.IdempotencyKey, request
	err = b.payments.book(&pendingPayment{ctx: ctx, caller: caller, p: p, debtor: debtor, creditor: creditor, fraud: fraud})
	if n.IdempotencyKey != "" && store.IsUniqueViolation(err) {
		// A concurrent call with the same key won: answer with its payment.
		return b.paymentByKey(ctx, caller, n.IdempotencyKey, request)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// paymentByKey returns the payment the caller made with an idempotency key,
// or nil. A payment made with the key for a different request (another
// fingerprint) is EINVALID idempotency_key_reused, as the gateway answers
// for any /v1 write.
func (b *Bank) paymentByKey(ctx context.Context, caller auth.Caller, key, request string) (*Payment, error) {
	p, err := scanPayment(b.db.Prepared().QueryRowContext(ctx, "SELECT "+paymentColumns+
		" FROM core_payments p WHERE p.app_id = $1 AND p.idempotency_key = $2", appOf(caller), key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	// Payments stored before fingerprints were kept have none to compare.
	if p.requestHash != "" && p.requestHash != request {
		return nil, causeway.Errorf(causeway.EINVALID, "idempotency_key_reused",
			"this Idempotency-Key was used for a different payment (debtor, creditor, amount or reference differ); use a new key")
	}
	return p, nil
}

// bookPayment posts a completed payment: the debtor is debited, the
// creditor account (on-us) or the clearing account (to another bank) is
// credited.
func bookPayment(j *journal, locked map[string]*lockedAccount, p *Payment, debtorIBAN, counterpart string, at time.Time) (string, []*Transaction, error) {
	description := p.Reference
	if description == "" {
		description = "Payment " + p.ID
	}
	creditorName, creditorIBAN := p.Creditor.Name, p.Creditor.IBAN
	return j.post(locked, "payment", p.ID, p.Amount.Currency, at, []posting{
		{AccountID: p.DebtorAccountID, Amount: -p.Amount.Minor, Description: description, CounterpartyName: creditorName, CounterpartyIBAN: creditorIBAN},
		{AccountID: counterpart, Amount: p.Amount.Minor, Description: description, CounterpartyIBAN: debtorIBAN},
	})
}

// transactionEvents makes a transaction.booked event for each posting on a
// customer account (internal accounts are the bank's business), each about
// the customer whose account it is: the payer's apps see the debit leg, the
// payee's apps the credit leg, and neither sees the other's.
// The accounts must be the ones locked for the postings.
func transactionEvents(txns []*Transaction, accounts map[string]*lockedAccount) []Event {
	var events []Event
	for _, t := range txns {
		a := accounts[t.AccountID]
		if a == nil || a.CustomerID == "" {
			continue
		}
		events = append(events, Event{Type: "transaction.booked", Subject: t.ID, Data: t, CustomerID: a.CustomerID})
	}
	return events
}

// resolveCreditor finds the creditor's account when it is at this bank: by
// account id (which the caller must be able to see) or by IBAN (any sandbox
// IBAN is on-us). It returns nil for an account at another bank.
func (b *Bank) resolveCreditor(ctx context.Context, caller auth.Caller, c *Creditor) (*Account, error) {
	if c.AccountID != "" {
		a, err := getAccount(ctx, b.db.Prepared(), caller, c.AccountID)
		if err != nil {
			var ce *causeway.Error
			if errors.As(err, &ce) && ce.Kind == causeway.ENOTFOUND {
				return nil, causeway.Errorf(causeway.ENOTFOUND, "creditor_not_found", "no creditor account %s", c.AccountID)
			}
			return nil, err
		}
		c.IBAN = a.IBAN
		return a, nil
	}
	a, err := scanAccount(b.db.Prepared().QueryRowContext(ctx, "SELECT "+accountColumns+" FROM core_accounts a WHERE a.iban = $1", c.IBAN))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return a, nil
}

// fraudCheck asks the payments.fraud-check extension point. With no
// provider the bank approves; when providers failed and the policy fails
// closed, the payment is denied with the reason.
func (b *Bank) fraudCheck(ctx context.Context, caller auth.Caller, p *Payment, customerID string) (*FraudCheck, error) {
	debtor, err := getCustomer(ctx, b.db.Prepared(), asBank, customerID)
	if err != nil {
		return nil, err
	}
	ans, err := b.ext.Call(ctx, ExtensionCall{
		Point: PointFraudCheck, AppID: appOf(caller),
		Payload: map[string]any{"payment": p, "debtor": debtor},
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !ans.Answered:
		return &FraudCheck{Decision: FraudApprove, Provider: "builtin", Reason: "no fraud-check provider registered"}, nil
	case ans.Failed:
		return &FraudCheck{Decision: FraudDeny, Provider: ans.Provider, Reason: "fraud check failed: " + ans.Reason}, nil
	}
	var body struct {
		Decision string `json:"decision"`
		Score    int    `json:"score"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal(ans.Body, &body); err != nil || (body.Decision != FraudApprove && body.Decision != FraudDeny && body.Decision != FraudReview) {
		return &FraudCheck{Decision: FraudDeny, Provider: ans.Provider, Reason: "fraud check answered with an invalid body"}, nil
	}
	return &FraudCheck{Decision: body.Decision, Score: body.Score, Reason: body.Reason, Provider: ans.Provider, StandIn: ans.StandIn}, nil
}

// nullable stores "" as NULL, so unique indexes ignore it.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const paymentColumns = `p.id, p.debtor_account_id, COALESCE(p.creditor_account_id, ''), p.creditor_iban, p.creditor_name,
	p.amount, p.currency, p.reference, p.status, p.rejection_code, p.rejection_reason, p.fraud_decision, p.fraud_score,
	p.fraud_reason, p.fraud_provider, p.fraud_stand_in, p.created_at, p.updated_at, p.app_id, p.request_hash,
	COALESCE(p.counterpart_account_id, '')`

func scanPayment(row store.Scanner) (*Payment, error) {
	var p Payment
	var code, reason string
	var f FraudCheck
	var created, updated int64
	err := row.Scan(&p.ID, &p.DebtorAccountID, &p.Creditor.AccountID, &p.Creditor.IBAN, &p.Creditor.Name,
		&p.Amount.Minor, &p.Amount.Currency, &p.Reference, &p.Status, &code, &reason, &f.Decision, &f.Score,
		&f.Reason, &f.Provider, &f.StandIn, &created, &updated, &p.appID, &p.requestHash, &p.counterpartID)
	if err != nil {
		return nil, err
	}
	if code != "" {
		p.Rejection = &Rejection{Code: code, Reason: reason}
	}
	if f.Decision != "" {
		p.FraudCheck = &f
	}
	p.CreatedAt, p.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &p, nil
}

func getPayment(ctx context.Context, q store.Querier, caller auth.Caller, id string) (*Payment, error) {
	clause, args := accountVisibleClause(caller, 2)
	p, err := scanPayment(q.QueryRowContext(ctx, "SELECT "+paymentColumns+
		" FROM core_payments p JOIN core_accounts a ON a.id = p.debtor_account_id WHERE p.id = $1"+clause,
		append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "payment_not_found", "no payment %s", id)
	}
	return p, store.Classify(err)
}

// Payment returns a payment from an account the caller may see.
func (b *Bank) Payment(ctx context.Context, caller auth.Caller, id string) (*Payment, error) {
	return getPayment(ctx, b.db, caller, id)
}

// DecideHeldPayment is the bank's decision on a payment held for review:
// release books it (if the funds are still there), reject drops the hold.
// Of concurrent decisions on one payment exactly one wins; the others, like
// any decision on a payment no longer held, are ECONFLICT payment_not_held.
// Only the bank decides (EFORBIDDEN bank_only).
//
// It is long because the decision is one transaction read top to bottom:
// the conditional update, the booking or the release of the hold, the event
// and the audit entry commit together or not at all.
func (b *Bank) DecideHeldPayment(ctx context.Context, caller auth.Caller, id string, release bool, reason string) (*Payment, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	var p *Payment
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		q := b.db.PreparedIn(tx)
		var err error
		if p, err = getPayment(ctx, q, asBank, id); err != nil {
			return err
		}
		if p.Status != PaymentHeld {
			return errNotHeld(p)
		}
		counterpart := p.counterpartID
		if counterpart == "" { // held before counterparts were recorded
			if counterpart = p.Creditor.AccountID; counterpart == "" {
				if counterpart, err = internalAccount(ctx, q, InternalClearing, p.Amount.Currency); err != nil {
					return err
				}
			}
		}
		locked, err := b.lockAccounts(ctx, q, p.DebtorAccountID, counterpart)
		if err != nil {
			return err
		}
		d := locked[p.DebtorAccountID]
		now := b.now().UTC().Truncate(time.Microsecond)
		p.UpdatedAt = now
		switch {
		case !release:
			p.Status, p.Rejection = PaymentRejected, &Rejection{Code: "rejected_after_review", Reason: reason}
		case d.Status != AccountActive:
			p.Status, p.Rejection = PaymentRejected, &Rejection{Code: "account_closed", Reason: "the debtor account is closed"}
		case d.Booked-(d.Held-p.Amount.Minor) < p.Amount.Minor:
			p.Status, p.Rejection = PaymentRejected, &Rejection{Code: "insufficient_funds", Reason: "the available balance is lower than the amount"}
		default:
			p.Status = PaymentCompleted
		}
		var j journal
		j.hold(d, -p.Amount.Minor)
		var events []Event
		var entryID any // NULL unless booked
		if p.Status == PaymentCompleted {
			id, txns, err := bookPayment(&j, locked, p, d.IBAN, counterpart, now)
			if err != nil {
				return err
			}
			entryID, events = id, transactionEvents(txns, locked)
		}
		// Claim the payment: the status names the state it leaves, so of
		// two decisions racing (the read above takes no lock) only the
		// first to commit finds it held.
		var code, why string
		if p.Rejection != nil {
			code, why = p.Rejection.Code, p.Rejection.Reason
		}
		res, err := q.ExecContext(ctx, `UPDATE core_payments SET status = $1, rejection_code = $2, rejection_reason = $3,
			updated_at = $4, entry_id = $5 WHERE id = $6 AND status = $7`, p.Status, code, why, store.Micros(now), entryID, p.ID, PaymentHeld)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return causeway.Errorf(causeway.ECONFLICT, "payment_not_held", "payment %s is no longer held: another decision came first", p.ID)
		}
		if err := j.write(ctx, q, b.db.Dialect); err != nil {
			return err
		}
		events = append([]Event{{Type: "payment." + p.Status, Subject: p.ID, Data: p, CustomerID: d.CustomerID}}, events...)
		if err := b.events.WriteEvents(ctx, tx, events); err != nil {
			return err
		}
		action := "payment.reject"
		if release {
			action = "payment.release" // which may still find the funds gone: After says
		}
		after := paymentSummary(p)
		after["reason"] = reason
		return b.audit.RecordChange(ctx, tx, caller, Change{Action: action, TargetType: "payment", TargetID: p.ID,
			Before: map[string]string{"status": PaymentHeld}, After: after})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// paymentSummary is a payment in the audit trail: its outcome, amount and
// parties.
func paymentSummary(p *Payment) map[string]any {
	s := map[string]any{"status": p.Status, "amount": p.Amount, "debtor_account_id": p.DebtorAccountID, "creditor": p.Creditor}
	if p.Rejection != nil {
		s["rejection_code"] = p.Rejection.Code
	}
	return s
}

func errNotHeld(p *Payment) error {
	return causeway.Errorf(causeway.ECONFLICT, "payment_not_held", "payment %s is %s, not held", p.ID, p.Status)
}
