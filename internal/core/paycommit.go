package core

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/batch"
	"github.com/causewayhq/causeway/internal/store"
)

// Payments are booked by group commit. A payment is checked, and its fraud
// check asked, by its caller outside any lock; then it joins the payments
// waiting to be booked, and the committer books every waiting payment in
// one database transaction: it locks all their accounts in one statement,
// decides each payment in turn against the balances as the ones before it
// left them, writes all the entries, postings, balances, payments and
// events in a few multi-row statements, and commits once. One commit, one
// flush to disk, answers them all, which is what lets payments be durable
// (SQLite synchronous=FULL) and still outrun one commit per payment.
//
// A payment's own failure (a balance beyond the limit) is decided in
// memory and leaves its neighbours alone. A statement that fails for the
// batch (one payment reusing another's idempotency key, a lost connection)
// rolls the batch back, and then each of its payments is booked alone, so
// no payment fails for its neighbour.

// maxPaymentBatch bounds the payments booked in one transaction, and so
// how long other writers wait for it.
const maxPaymentBatch = 128

// paymentBatchTimeout bounds one batch's transaction. A batch runs apart
// from its callers' contexts: one caller giving up must not roll back the
// others' payments.
const paymentBatchTimeout = 30 * time.Second

// pendingPayment is a payment checked by its caller and waiting to be
// booked.
type pendingPayment struct {
	ctx      context.Context // the caller's, for the audit trail's view of the request
	caller   auth.Caller
	p        *Payment
	debtor   *Account
	creditor *Account // nil: an account at another bank
	fraud    *FraudCheck

	err  error // the payment's own failure, set while booking
	done chan error
}

// paymentCommitter books the payments waiting at one moment together.
type paymentCommitter struct {
	bank  *Bank
	queue batch.Queue[*pendingPayment]
}

func newPaymentCommitter(b *Bank) *paymentCommitter {
	c := &paymentCommitter{bank: b}
	c.queue = batch.Queue[*pendingPayment]{Max: maxPaymentBatch, Run: c.bookBatch}
	return c
}

// book queues pp and waits for its outcome: nil once it is committed, or
// its error. It waits even when pp's context ends, so that an error
// always means the payment was not made.
func (c *paymentCommitter) book(pp *pendingPayment) error {
	pp.done = make(chan error, 1)
	c.queue.Add(pp)
	return <-pp.done
}

// bookBatch books batch in one transaction and answers each payment. When
// the transaction fails as a whole, each payment is booked alone.
func (c *paymentCommitter) bookBatch(batch []*pendingPayment) {
	defer func() {
		if r := recover(); r != nil {
			err := causeway.Errorf(causeway.EINTERNAL, "payment_failed", "booking the payment failed")
			for _, pp := range batch {
				pp.err = fmt.Errorf("%w: panic: %v", err, r)
			}
			answer(batch, nil)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), paymentBatchTimeout)
	defer cancel()
	err := c.bank.db.Tx(ctx, func(tx *sql.Tx) error {
		return c.bank.bookPayments(ctx, tx, batch)
	})
	if err != nil && len(batch) > 1 {
		for _, pp := range batch {
			c.bookBatch([]*pendingPayment{pp})
		}
		return
	}
	answer(batch, err)
}

// answer gives each payment of a batch its outcome: the batch's error, or
// else its own.
func answer(batch []*pendingPayment, batchErr error) {
	for _, pp := range batch {
		if batchErr != nil {
			pp.done <- batchErr
		} else {
			pp.done <- pp.err
		}
	}
}

// bookPayments books a batch of payments in transaction tx. It may run
// again for the same batch (the store retries contention), so it starts
// every payment afresh.
func (b *Bank) bookPayments(ctx context.Context, tx *sql.Tx, batch []*pendingPayment) error {
	q := b.db.PreparedIn(tx)
	clearing := map[string]string{} // currency -> the clearing account
	accounts := make([]string, 0, 2*len(batch))
	for _, pp := range batch {
		pp.err = nil
		p := pp.p
		p.Status, p.Rejection, p.FraudCheck = PaymentPending, nil, pp.fraud
		if pp.creditor != nil {
			p.counterpartID = pp.creditor.ID
		} else {
			cur := p.Amount.Currency
			if clearing[cur] == "" {
				id, err := internalAccount(ctx, q, InternalClearing, cur)
				if err != nil {
					return err
				}
				clearing[cur] = id
			}
			p.counterpartID = clearing[cur]
		}
		accounts = append(accounts, p.DebtorAccountID, p.counterpartID)
	}
	locked, err := b.lockAccounts(ctx, q, accounts...)
	if err != nil {
		return err
	}

	var j journal
	var events []Event
	rows := make([]paymentRow, 0, len(batch))
	for _, pp := range batch {
		row, evs, err := decidePayment(&j, locked, pp.p, pp.debtor.CustomerID)
		if err != nil {
			pp.err = err
			continue
		}
		rows = append(rows, row)
		events = append(events, evs...)
	}
	if err := j.write(ctx, q, b.db.Dialect); err != nil {
		return err
	}
	if err := insertPayments(ctx, q, b.db.Dialect, rows); err != nil {
		return err
	}
	if err := b.events.WriteEvents(ctx, tx, events); err != nil {
		return err
	}
	for _, pp := range batch {
		if pp.err != nil || !pp.caller.IsBank() {
			continue // an app's payment is the app's, not a decision of the bank
		}
		err := b.audit.RecordChange(context.WithoutCancel(pp.ctx), tx, pp.caller, Change{Action: "payment.create",
			TargetType: "payment", TargetID: pp.p.ID, After: paymentSummary(pp.p)})
		if err != nil {
			return err
		}
	}
	return nil
}

// decidePayment decides a payment against its locked accounts, as the
// payments before it in the journal left them: rejected (account closed,
// fraud denied, funds short), held for review (its amount held), or
// completed (booked in j). It returns the payment's row and its events.
// On error nothing has moved.
func decidePayment(j *journal, locked map[string]*lockedAccount, p *Payment, customerID string) (paymentRow, []Event, error) {
	d := locked[p.DebtorAccountID]
	var events []Event
	var entryID string
	switch {
	case d.Status != AccountActive:
		p.Status, p.Rejection = PaymentRejected, &Rejection{Code: "account_closed", Reason: "the debtor account is closed"}
	case p.FraudCheck.Decision == FraudDeny:
		p.Status, p.Rejection = PaymentRejected, &Rejection{Code: "fraud_denied", Reason: p.FraudCheck.Reason}
	case d.Available() < p.Amount.Minor:
		p.Status, p.Rejection = PaymentRejected, &Rejection{Code: "insufficient_funds", Reason: "the available balance is lower than the amount"}
	case p.FraudCheck.Decision == FraudReview:
		p.Status = PaymentHeld
		j.hold(d, p.Amount.Minor)
	default:
		id, txns, err := bookPayment(j, locked, p, d.IBAN, p.counterpartID, p.CreatedAt)
		if err != nil {
			return paymentRow{}, nil, err
		}
		p.Status, entryID = PaymentCompleted, id
		events = transactionEvents(txns, locked)
	}
	events = append([]Event{{Type: "payment." + p.Status, Subject: p.ID, Data: p, CustomerID: customerID}}, events...)
	return paymentRow{p: p, entryID: entryID}, events, nil
}

// paymentRow is a payment to insert, with the journal entry that booked
// it ("" for none).
type paymentRow struct {
	p       *Payment
	entryID string
}

// insertPayments inserts payments in as few statements as their number
// allows.
func insertPayments(ctx context.Context, tx store.Querier, dialect store.Dialect, rows []paymentRow) error {
	payments := &rowBatch{dialect: dialect, head: `INSERT INTO core_payments
		(id, app_id, debtor_account_id, creditor_account_id, creditor_iban, creditor_name, amount, currency, reference,
		 status, rejection_code, rejection_reason, fraud_decision, fraud_score, fraud_reason, fraud_provider, fraud_stand_in,
		 entry_id, created_at, updated_at, idempotency_key, request_hash, counterpart_account_id) VALUES `, columns: 23}
	for _, r := range rows {
		p, f := r.p, r.p.FraudCheck
		var code, reason string
		if p.Rejection != nil {
			code, reason = p.Rejection.Code, p.Rejection.Reason
		}
		payments.add(p.ID, p.appID, p.DebtorAccountID, nullable(p.Creditor.AccountID), p.Creditor.IBAN,
			p.Creditor.Name, p.Amount.Minor, p.Amount.Currency, p.Reference, p.Status, code, reason, f.Decision,
			f.Score, f.Reason, f.Provider, f.StandIn, nullable(r.entryID), store.Micros(p.CreatedAt),
			store.Micros(p.UpdatedAt), nullable(p.idempotencyKey), p.requestHash, nullable(p.counterpartID))
	}
	return payments.flush(ctx, tx)
}
