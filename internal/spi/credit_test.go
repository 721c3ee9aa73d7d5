package spi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// creditAnswer is a loans.credit-decision answer.
type creditAnswer struct {
	Decision string      `json:"decision"`
	Reason   string      `json:"reason,omitempty"`
	RateBP   *int        `json:"rate_bp,omitempty"`
	Limit    *core.Money `json:"limit,omitempty"`
}

func bp(n int) *int { return &n }

func limit(t *testing.T, amount string) *core.Money {
	m := money(t, amount)
	return &m
}

// The attack of issue 14, finding 3, on loans: an app-scope
// credit-decision endpoint that approves everything answered "approve"
// with a limit of 0.00 for 1,000,000,000.00 EUR to a customer whose KYC
// was referred and who has no income. The bank's own rule refers it, and
// the app cannot loosen that; nothing can be funded.
func TestAnAppsApproveAllCannotGetALoanTheBanksRuleRefers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newSandbox(t, db)
		approveAll := spitest.New(t, creditAnswer{Decision: "approve", Reason: "we approve everyone", Limit: limit(t, "0.00")})
		own, _ := appReg(t, b.s, "app_mallory", core.PointCreditDecision, approveAll.URL, spi.NewRegistration{})
		c, acc := b.customer("app_mallory", "", "1.00") // no identity document: KYC refers
		actor := auth.AppCaller("app_mallory")
		if v, err := b.bank.VerifyCustomer(context.Background(), actor, c.ID); err != nil || v.Result != core.KYCRefer {
			t.Fatalf("kyc = %+v, %v", v, err)
		}

		l := b.apply("app_mallory", c.ID, "1000000000.00", 12, "0.00")

		if l.Status == core.LoanApproved || approveAll.Hits() != 1 {
			t.Fatalf("loan = %s by %s (%s); the app's endpoint was asked %d times", l.Status, l.Decision.Provider, l.Decision.Reason, approveAll.Hits())
		}
		if l.Status != core.LoanReferred || l.Decision.Provider != "builtin" || !strings.Contains(l.Decision.Reason, own.ID+" approved, which cannot loosen") {
			t.Errorf("decision = %s %+v, want the scorecard's referral, saying the app's approval did not count", l.Status, l.Decision)
		}
		_, err := b.bank.FundLoan(context.Background(), actor, l.ID, acc.ID)
		if code := causeway.ErrorCode(err); code != "loan_not_approved" {
			t.Errorf("funding: %v, want loan_not_approved", err)
		}
		if bal, _ := b.bank.Balances(context.Background(), actor, acc.ID); bal.Booked.Minor != 100 {
			t.Errorf("balance = %s: money was paid out", bal.Booked)
		}
	})
}

// An app-scope answer can decline, refer, lower the limit or raise the
// rate; it cannot approve what the bank's rule (the scorecard, or the
// bank's own registration when one is active) does not, raise the limit or
// lower the rate. An approval never exceeds its own limit: above a limit
// of zero it is declined, above any other referred.
func TestAnAppsCreditDecisionCanOnlyTightenTheBanks(t *testing.T) {
	// 5,000.00 EUR over 24 months on 4,000.00 a month: the scorecard
	// approves at 4.75% (475 bp) with a limit far above the amount.
	// 5,000.00 over 12 months on 1,000.00 a month: the scorecard refers.
	type app struct {
		amount string
		months int
		income string
	}
	affordable, stretched := app{"5000.00", 24, "4000.00"}, app{"5000.00", 12, "1000.00"}
	for _, tt := range []struct {
		name    string
		loan    app
		bank    *creditAnswer // the bank's own registration's answer; nil: none, the scorecard decides
		app     creditAnswer
		status  string
		by      string // "app", "bank" or "builtin"
		rateBP  int    // 0: the scorecard's
		limit   string // "": the scorecard's
		because string // part of the reason
	}{
		{name: "app declines", loan: affordable, app: creditAnswer{Decision: "decline", Reason: "thin file"},
			status: core.LoanDeclined, by: "app", because: "thin file"},
		{name: "app refers", loan: affordable, app: creditAnswer{Decision: "refer", Reason: "call the customer"},
			status: core.LoanReferred, by: "app", because: "call the customer"},
		{name: "app lowers the limit", loan: affordable, app: creditAnswer{Decision: "approve", Reason: "ok", Limit: limit(t, "6000.00")},
			status: core.LoanApproved, by: "app", limit: "6000.00"},
		{name: "app raises the rate", loan: affordable, app: creditAnswer{Decision: "approve", Reason: "ok", RateBP: bp(900)},
			status: core.LoanApproved, by: "app", rateBP: 900},
		{name: "app cannot lower the rate", loan: affordable, app: creditAnswer{Decision: "approve", Reason: "ok", RateBP: bp(100)},
			status: core.LoanApproved, by: "app"},
		{name: "app cannot raise the limit", loan: affordable, app: creditAnswer{Decision: "approve", Reason: "ok", Limit: limit(t, "99000000.00")},
			status: core.LoanApproved, by: "app"},
		{name: "app approves above its own limit: referred", loan: affordable, app: creditAnswer{Decision: "approve", Reason: "ok", Limit: limit(t, "4000.00")},
			status: core.LoanReferred, by: "app", limit: "4000.00", because: "above the approval's own limit of 4000.00 EUR"},
		{name: "app approves with a limit of 0.00: declined", loan: affordable, app: creditAnswer{Decision: "approve", Reason: "ok", Limit: limit(t, "0.00")},
			status: core.LoanDeclined, by: "app", limit: "0.00", because: "nothing can be lent"},
		{name: "app cannot approve what the scorecard refers", loan: stretched, app: creditAnswer{Decision: "approve", Reason: "we like them"},
			status: core.LoanReferred, by: "builtin", because: "cannot loosen a refer decision"},
		{name: "app cannot approve what the bank's registration declines", loan: affordable,
			bank: &creditAnswer{Decision: "decline", Reason: "bank policy"}, app: creditAnswer{Decision: "approve", Reason: "fine"},
			status: core.LoanDeclined, by: "bank", because: "bank policy"},
		{name: "the bank's registration approves beyond the scorecard, app refers", loan: stretched,
			bank: &creditAnswer{Decision: "approve", Reason: "relationship", RateBP: bp(500)}, app: creditAnswer{Decision: "refer", Reason: "unsure"},
			status: core.LoanReferred, by: "app", rateBP: 500, limit: "5000.00", because: "unsure"},
		{name: "the bank's registration approves beyond the scorecard, app agrees at a lower rate", loan: stretched,
			bank: &creditAnswer{Decision: "approve", Reason: "relationship", RateBP: bp(500)}, app: creditAnswer{Decision: "approve", Reason: "fine", RateBP: bp(300)},
			status: core.LoanApproved, by: "app", rateBP: 500, limit: "5000.00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newSandbox(t, storetest.OpenSQLite(t))
			appSrv := spitest.New(t, tt.app)
			own, _ := appReg(t, b.s, "app_a", core.PointCreditDecision, appSrv.URL, spi.NewRegistration{})
			var bankSrv *spitest.Server
			var bank *spi.Registration
			if tt.bank != nil {
				bankSrv = spitest.New(t, *tt.bank)
				bank = bankReg(t, b.s, "app_vendor", core.PointCreditDecision, bankSrv.URL, spi.Activation{})
			}
			c, _ := b.customer("app_a", "NX12345678", "1.00")
			if v, err := b.bank.VerifyCustomer(context.Background(), auth.AppCaller("app_a"), c.ID); err != nil || v.Result != core.KYCPass {
				t.Fatalf("kyc = %+v, %v", v, err)
			}
			amount, income := money(t, tt.loan.amount), money(t, tt.loan.income)
			builtin, err := core.DecideCredit(core.CreditInput{Amount: amount, TermMonths: tt.loan.months, MonthlyIncome: income,
				ExistingMonthlyDebt: core.Money{Currency: "EUR"}, KYCStatus: core.KYCPass, Purpose: "car"})
			if err != nil {
				t.Fatal(err)
			}

			l := b.apply("app_a", c.ID, tt.loan.amount, tt.loan.months, tt.loan.income)

			by := map[string]string{"app": own.ID, "builtin": "builtin"}[tt.by]
			if bank != nil && tt.by == "bank" {
				by = bank.ID
			}
			wantRate, wantLimit := builtin.RateBasisPoints, builtin.Limit.Amount()
			if tt.rateBP != 0 {
				wantRate = tt.rateBP
			}
			if tt.limit != "" {
				wantLimit = tt.limit
			}
			d := l.Decision
			if l.Status != tt.status || d.Provider != by || d.RateBP != wantRate || d.Limit.Amount() != wantLimit ||
				!strings.Contains(d.Reason, tt.because) {
				t.Errorf("loan = %s %+v\nwant %s by %s at %d bp, limit %s, because %q", l.Status, d, tt.status, by, wantRate, wantLimit, tt.because)
			}
			if appSrv.Hits() != 1 || (bankSrv != nil && bankSrv.Hits() != 1) {
				t.Errorf("the app's endpoint was asked %d times; want every registration once", appSrv.Hits())
			}
		})
	}
}
