package core

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// Loan application statuses.
const (
	LoanApproved = "approved"
	LoanDeclined = "declined"
	LoanReferred = "referred"
	LoanFunded   = "funded"
)

// LoanDecision is how a loan application was decided.
type LoanDecision struct {
	Provider string `json:"provider"`
	Reason   string `json:"reason"`
	// Rate is the nominal annual rate in percent, e.g. "4.50".
	Rate    string `json:"rate"`
	RateBP  int    `json:"rate_bp" doc:"the rate in basis points"`
	Limit   Money  `json:"limit"`
	Score   int    `json:"score"`
	StandIn bool   `json:"stand_in"`
}

// LoanApplication is a loan from application to funding.
type LoanApplication struct {
	ID              string       `json:"id"`
	CustomerID      string       `json:"customer_id"`
	Amount          Money        `json:"amount"`
	TermMonths      int          `json:"term_months"`
	Purpose         string       `json:"purpose"`
	MonthlyIncome   Money        `json:"monthly_income"`
	Status          string       `json:"status" enum:"approved,declined,referred,funded"`
	Decision        LoanDecision `json:"decision"`
	FundedAccountID string       `json:"funded_account_id,omitempty"`
	Schedule        []Instalment `json:"schedule,omitempty"`
	CreatedAt       time.Time    `json:"created_at"`
	FundedAt        *time.Time   `json:"funded_at,omitempty"`
	monthlyPayment  int64
}

// NewLoanApplication is what a caller gives to apply for a loan.
type NewLoanApplication struct {
	CustomerID    string
	Amount        Money
	TermMonths    int
	Purpose       string
	MonthlyIncome Money
}

func (n *NewLoanApplication) validate() error {
	n.Purpose = strings.TrimSpace(n.Purpose)
	switch {
	case !n.Amount.IsPositive():
		return causeway.Errorf(causeway.EINVALID, "invalid_amount", "amount must be positive")
	case n.TermMonths < 1 || n.TermMonths > 480:
		return causeway.Errorf(causeway.EINVALID, "invalid_term", "term_months must be between 1 and 480")
	case n.Purpose == "" || len(n.Purpose) > 200:
		return causeway.Errorf(causeway.EINVALID, "invalid_purpose", "purpose is required (at most 200 characters)")
	case n.MonthlyIncome.Minor < 0:
		return causeway.Errorf(causeway.EINVALID, "invalid_amount", "monthly_income must not be negative")
	case n.MonthlyIncome.Currency != n.Amount.Currency:
		return causeway.Errorf(causeway.EINVALID, "currency_mismatch", "monthly_income and amount must be in one currency")
	}
	return nil
}

// ApplyForLoan decides a loan application through the loans.credit-decision
// extension point, or the built-in scorecard when no provider is
// registered, and records the decision with its event.
func (b *Bank) ApplyForLoan(ctx context.Context, caller auth.Caller, n NewLoanApplication) (*LoanApplication, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	c, err := getCustomer(ctx, b.db, caller, n.CustomerID)
	if err != nil {
		return nil, err
	}
	debt, err := b.monthlyDebt(ctx, c.ID, n.Amount.Currency)
	if err != nil {
		return nil, err
	}
	now := b.now().UTC().Truncate(time.Microsecond)
	l := &LoanApplication{
		ID: ids.New("loa"), CustomerID: c.ID, Amount: n.Amount, TermMonths: n.TermMonths, Purpose: n.Purpose,
		MonthlyIncome: n.MonthlyIncome, CreatedAt: now,
	}
	builtin, err := DecideCredit(CreditInput{
		Amount: n.Amount, TermMonths: n.TermMonths, MonthlyIncome: n.MonthlyIncome,
		ExistingMonthlyDebt: Money{Minor: debt, Currency: n.Amount.Currency}, KYCStatus: c.KYCStatus, Purpose: n.Purpose,
	})
	if err != nil {
		return nil, err
	}
	decision, err := b.creditDecision(ctx, caller, l, c, debt, builtin)
	if err != nil {
		return nil, err
	}
	l.Status = map[string]string{"approve": LoanApproved, "decline": LoanDeclined, "refer": LoanReferred}[decision.Decision]
	l.Decision = LoanDecision{
		Provider: decision.provider, Reason: decision.Reason, RateBP: decision.RateBasisPoints,
		Rate:  fmt.Sprintf("%d.%02d", decision.RateBasisPoints/100, decision.RateBasisPoints%100),
		Limit: decision.Limit, Score: decision.Score, StandIn: decision.standIn,
	}
	if l.Status == LoanApproved {
		schedule, err := AnnuitySchedule(l.Amount, l.Decision.RateBP, l.TermMonths, now.AddDate(0, 1, 0))
		if err != nil {
			return nil, err
		}
		l.monthlyPayment = schedule[0].Principal.Minor + schedule[0].Interest.Minor
	}
	err = b.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO core_loans
			(id, customer_id, app_id, amount, currency, term_months, purpose, monthly_income, status, decision_provider,
			 decision_reason, decision_stand_in, rate_bp, monthly_payment, limit_minor, score, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			l.ID, l.CustomerID, appOf(caller), l.Amount.Minor, l.Amount.Currency, l.TermMonths, l.Purpose, l.MonthlyIncome.Minor,
			l.Status, l.Decision.Provider, l.Decision.Reason, l.Decision.StandIn, l.Decision.RateBP, l.monthlyPayment,
			l.Decision.Limit.Minor, l.Decision.Score, store.Micros(now)); err != nil {
			return err
		}
		return b.events.WriteEvents(ctx, tx, []Event{{
			Type: "loan.application.decided", Subject: l.ID, Data: l, CustomerID: c.ID,
		}})
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

type creditAnswer struct {
	CreditDecision
	provider string
	standIn  bool
}

// creditDecision decides a loan application at the loans.credit-decision
// extension point. The bank's own rule decides first: the answer of its
// bank-scope registrations when one is active, its scorecard otherwise.
// Each of the calling app's own replies can then only tighten that
// decision: decline or refer it, lower its limit, raise its rate, never
// approve what the bank's rule did not. Last, whoever answered, the bank's
// floors hold: no approval for a customer whose KYC has not passed, and no
// approval above its own limit.
func (b *Bank) creditDecision(ctx context.Context, caller auth.Caller, l *LoanApplication, c *Customer, debt int64, builtin CreditDecision) (creditAnswer, error) {
	ans, err := b.ext.Call(ctx, ExtensionCall{Point: PointCreditDecision, AppID: appOf(caller), Payload: map[string]any{
		"application":           l,
		"customer":              c,
		"existing_monthly_debt": Money{Minor: debt, Currency: l.Amount.Currency},
		"builtin":               map[string]any{"decision": builtin.Decision, "reason": builtin.Reason, "rate_bp": builtin.RateBasisPoints},
	}})
	if err != nil {
		return creditAnswer{}, err
	}
	d := creditAnswer{CreditDecision: builtin, provider: "builtin"}
	if ans.Answered {
		bank := ExtensionReply{Provider: ans.Provider, Failed: ans.Failed, StandIn: ans.StandIn, Reason: ans.Reason, Body: ans.Body}
		d = readCreditReply(bank, l.Amount.Currency).decide(builtin, l.Amount)
	}
	for _, r := range ans.Replies {
		if r.Scope == ExtensionScopeApp {
			d = d.tightenedBy(readCreditReply(r, l.Amount.Currency))
		}
	}
	return d.floored(l.Amount, c.KYCStatus), nil
}

// creditReply is one reply at loans.credit-decision as the bank reads it:
// the decision, and the terms it stated (nil where it left them out).
type creditReply struct {
	provider         string
	standIn          bool
	decision, reason string
	rateBP           *int
	limit            *Money
	score            *int
}

// readCreditReply reads r, for a loan in currency. A failure, or a body
// that is not an approve, decline or refer, refers the application.
func readCreditReply(r ExtensionReply, currency string) creditReply {
	c := creditReply{provider: r.Provider, standIn: r.StandIn, decision: CreditRefer}
	if r.Failed {
		c.reason = "credit decision provider failed: " + r.Reason
		return c
	}
	var body struct {
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
		RateBP   *int   `json:"rate_bp"`
		Limit    *Money `json:"limit"`
		Score    *int   `json:"score"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || creditRank[body.Decision] == 0 {
		c.reason = "credit decision provider answered with an invalid body"
		return c
	}
	c.decision, c.reason, c.score = body.Decision, body.Reason, body.Score
	if body.RateBP != nil && *body.RateBP >= 0 && *body.RateBP <= 10000 {
		c.rateBP = body.RateBP
	}
	if body.Limit != nil && body.Limit.Currency == currency {
		c.limit = body.Limit
		c.limit.Minor = max(c.limit.Minor, 0)
	}
	return c
}

// creditRank orders credit decisions from loosest to strictest; 0 is none.
var creditRank = map[string]int{CreditApprove: 1, CreditRefer: 2, CreditDecline: 3}

// decide is the bank's decision when r is its own provider's reply: the
// terms r leaves out come from the scorecard, except that an approval
// without a limit approves the amount applied for.
func (r creditReply) decide(builtin CreditDecision, amount Money) creditAnswer {
	d := creditAnswer{CreditDecision: builtin, provider: r.provider, standIn: r.standIn}
	d.Decision, d.Reason = r.decision, r.reason
	if r.rateBP != nil {
		d.RateBasisPoints = *r.rateBP
	}
	switch {
	case r.limit != nil:
		d.Limit = *r.limit
	case r.decision == CreditApprove && d.Limit.Minor < amount.Minor:
		d.Limit = amount
	}
	if r.score != nil {
		d.Score = *r.score
	}
	return d
}

// tightenedBy applies the app's own reply r to the bank's decision d. A
// decision as strict as d's or stricter takes d's place, with its reason;
// a higher rate and a lower limit apply whatever r decided; nothing in r
// loosens d.
func (d creditAnswer) tightenedBy(r creditReply) creditAnswer {
	var notes []string
	if creditRank[r.decision] >= creditRank[d.Decision] {
		d.Decision, d.Reason, d.provider, d.standIn = r.decision, r.reason, r.provider, r.standIn
		if r.score != nil {
			d.Score = *r.score
		}
	} else if r.decision == CreditApprove {
		notes = append(notes, fmt.Sprintf("%s approved, which cannot loosen a %s decision", r.provider, d.Decision))
	}
	if r.rateBP != nil && *r.rateBP > d.RateBasisPoints {
		d.RateBasisPoints = *r.rateBP
		notes = append(notes, fmt.Sprintf("rate raised to %d bp by %s", *r.rateBP, r.provider))
	}
	if r.limit != nil && r.limit.Minor < d.Limit.Minor {
		d.Limit = *r.limit
		notes = append(notes, fmt.Sprintf("limit lowered to %s by %s", *r.limit, r.provider))
	}
	if len(notes) > 0 && d.provider != r.provider {
		d.Reason = strings.TrimPrefix(d.Reason+"; "+strings.Join(notes, "; "), "; ")
	}
	return d
}

// floored holds the bank's floors on an approval, whoever gave it: the
// customer's KYC must have passed (fail declines; refer and pending refer,
// as the scorecard does), and the amount must be within the decision's
// own limit (above a limit of zero nothing can be lent: declined; above
// any other, a person decides: referred).
func (d creditAnswer) floored(amount Money, kycStatus string) creditAnswer {
	if d.Decision != CreditApprove {
		return d
	}
	why := fmt.Sprintf(" (%s approved: %s)", d.provider, d.Reason)
	switch {
	case kycStatus == KYCFail:
		d.Decision, d.Reason = CreditDecline, "KYC check failed"+why
	case kycStatus != KYCPass:
		d.Decision, d.Reason = CreditRefer, fmt.Sprintf("KYC status is %q, not pass: the bank lends only once KYC has passed", kycStatus)+why
	case amount.Minor > d.Limit.Minor && d.Limit.Minor == 0:
		d.Decision, d.Reason = CreditDecline, fmt.Sprintf("the approval's limit is %s: nothing can be lent", d.Limit)+why
	case amount.Minor > d.Limit.Minor:
		d.Decision, d.Reason = CreditRefer, fmt.Sprintf("%s is above the approval's own limit of %s: a person decides", amount, d.Limit)+why
	}
	return d
}

// monthlyDebt is what a customer already repays each month on funded loans.
func (b *Bank) monthlyDebt(ctx context.Context, customerID, currency string) (int64, error) {
	var debt int64
	err := b.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(monthly_payment), 0) FROM core_loans
		WHERE customer_id = $1 AND currency = $2 AND status = $3`, customerID, currency, LoanFunded).Scan(&debt)
	return debt, store.Classify(err)
}

const loanColumns = `l.id, l.customer_id, l.amount, l.currency, l.term_months, l.purpose, l.monthly_income, l.status,
	l.decision_provider, l.decision_reason, l.decision_stand_in, l.rate_bp, l.monthly_payment, l.limit_minor, l.score,
	COALESCE(l.funded_account_id, ''), l.schedule, l.created_at, l.funded_at`

func scanLoan(row store.Scanner) (*LoanApplication, error) {
	var l LoanApplication
	var schedule string
	var created int64
	var funded sql.NullInt64
	err := row.Scan(&l.ID, &l.CustomerID, &l.Amount.Minor, &l.Amount.Currency, &l.TermMonths, &l.Purpose,
		&l.MonthlyIncome.Minor, &l.Status, &l.Decision.Provider, &l.Decision.Reason, &l.Decision.StandIn,
		&l.Decision.RateBP, &l.monthlyPayment, &l.Decision.Limit.Minor, &l.Decision.Score, &l.FundedAccountID,
		&schedule, &created, &funded)
	if err != nil {
		return nil, err
	}
	l.MonthlyIncome.Currency, l.Decision.Limit.Currency = l.Amount.Currency, l.Amount.Currency
	l.Decision.Rate = fmt.Sprintf("%d.%02d", l.Decision.RateBP/100, l.Decision.RateBP%100)
	if schedule != "" {
		json.Unmarshal([]byte(schedule), &l.Schedule)
	}
	l.CreatedAt = store.FromMicros(created)
	if funded.Valid {
		t := store.FromMicros(funded.Int64)
		l.FundedAt = &t
	}
	return &l, nil
}

func getLoan(ctx context.Context, q store.Querier, caller auth.Caller, id string) (*LoanApplication, error) {
	clause, args := visibleClause(caller, 2)
	l, err := scanLoan(q.QueryRowContext(ctx, "SELECT "+loanColumns+
		" FROM core_loans l JOIN core_customers c ON c.id = l.customer_id WHERE l.id = $1"+clause,
		append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "loan_application_not_found", "no loan application %s", id)
	}
	return l, store.Classify(err)
}

// LoanApplication returns a loan application of a customer the caller may see.
func (b *Bank) LoanApplication(ctx context.Context, caller auth.Caller, id string) (*LoanApplication, error) {
	return getLoan(ctx, b.db, caller, id)
}

// FundLoan disburses an approved loan into a current account of the same
// customer: loans receivable is debited, the account credited, and the
// annuity schedule fixed from today. A loan is funded at most once.
//
// The bank checks again what it lends on, whoever decided the loan: the
// amount must be within the decision's limit (ECONFLICT loan_exceeds_limit)
// and the customer's KYC must still have passed (ECONFLICT kyc_not_passed;
// a check since may have referred or failed it).
func (b *Bank) FundLoan(ctx context.Context, caller auth.Caller, loanID, accountID string) (*LoanApplication, error) {
	var l *LoanApplication
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if l, err = getLoan(ctx, tx, caller, loanID); err != nil {
			return err
		}
		account, err := getAccount(ctx, tx, caller, accountID)
		if err != nil {
			return err
		}
		switch {
		case l.Status == LoanFunded:
			return causeway.Errorf(causeway.ECONFLICT, "loan_already_funded", "loan application %s is already funded", l.ID)
		case l.Status != LoanApproved:
			return causeway.Errorf(causeway.ECONFLICT, "loan_not_approved", "loan application %s is %s, not approved", l.ID, l.Status)
		case l.Amount.Minor > l.Decision.Limit.Minor:
			return causeway.Errorf(causeway.ECONFLICT, "loan_exceeds_limit", "loan application %s is for %s, above its decided limit of %s",
				l.ID, l.Amount, l.Decision.Limit)
		case account.CustomerID != l.CustomerID:
			return causeway.Errorf(causeway.EINVALID, "account_not_borrowers", "account %s does not belong to the borrower", account.ID)
		case account.Product != ProductCurrent:
			return causeway.Errorf(causeway.EINVALID, "invalid_account", "loans are paid into a current account")
		case account.Status != AccountActive:
			return causeway.Errorf(causeway.ECONFLICT, "account_closed", "account %s is closed", account.ID)
		case account.Currency != l.Amount.Currency:
			return causeway.Errorf(causeway.EINVALID, "currency_mismatch", "the loan is in %s, the account in %s", l.Amount.Currency, account.Currency)
		}
		if err := kycStillPassed(ctx, tx, l.CustomerID); err != nil {
			return err
		}
		now := b.now().UTC().Truncate(time.Microsecond)
		schedule, err := AnnuitySchedule(l.Amount, l.Decision.RateBP, l.TermMonths, now.AddDate(0, 1, 0))
		if err != nil {
			return err
		}
		// Claim the loan first: of two concurrent fundings only one finds it
		// still approved.
		res, err := tx.ExecContext(ctx, `UPDATE core_loans SET status = $1 WHERE id = $2 AND status = $3`, LoanFunded, l.ID, LoanApproved)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return causeway.Errorf(causeway.ECONFLICT, "loan_already_funded", "loan application %s is already funded", l.ID)
		}
		receivable, err := internalAccount(ctx, tx, InternalLoansReceivable, l.Amount.Currency)
		if err != nil {
			return err
		}
		locked, err := b.lockAccounts(ctx, tx, account.ID, receivable)
		if err != nil {
			return err
		}
		description := "Loan " + l.ID + ": " + l.Purpose
		entryID, txns, err := b.post(ctx, tx, locked, "loan_funding", l.ID, l.Amount.Currency, now, []posting{
			{AccountID: receivable, Amount: -l.Amount.Minor, Description: description},
			{AccountID: account.ID, Amount: l.Amount.Minor, Description: description, CounterpartyName: "Causeway Sandbox Bank"},
		})
		if err != nil {
			return err
		}
		l.Status, l.FundedAccountID, l.Schedule, l.FundedAt = LoanFunded, account.ID, schedule, &now
		l.monthlyPayment = schedule[0].Principal.Minor + schedule[0].Interest.Minor
		scheduleJSON, _ := json.Marshal(schedule)
		if _, err := tx.ExecContext(ctx, `UPDATE core_loans SET funded_account_id = $1, schedule = $2, entry_id = $3,
			funded_at = $4, monthly_payment = $5 WHERE id = $6`,
			account.ID, string(scheduleJSON), entryID, store.Micros(now), l.monthlyPayment, l.ID); err != nil {
			return err
		}
		events := append([]Event{{Type: "loan.funded", Subject: l.ID, Data: l, CustomerID: l.CustomerID}}, transactionEvents(txns, locked)...)
		return b.events.WriteEvents(ctx, tx, events)
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// kycStillPassed checks, in the funding transaction tx, that the
// customer's KYC status is pass. It locks the customer's row, so a KYC
// check that changes the status waits for the funding, or the funding sees
// its result.
func kycStillPassed(ctx context.Context, tx *sql.Tx, customerID string) error {
	var status string
	err := tx.QueryRowContext(ctx, `UPDATE core_customers SET kyc_status = kyc_status WHERE id = $1 RETURNING kyc_status`,
		customerID).Scan(&status)
	if err != nil {
		return store.Classify(err)
	}
	if status != KYCPass {
		return causeway.Errorf(causeway.ECONFLICT, "kyc_not_passed",
			"the customer's KYC status is %q: a loan is paid out only to a customer whose KYC has passed", status)
	}
	return nil
}
