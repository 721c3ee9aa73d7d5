package core_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// kycAnswer makes kyc.verify answer result and every other point not at
// all.
func kycAnswer(result string) extensions {
	return func(call core.ExtensionCall) core.ExtensionAnswer {
		if call.Point != core.PointKYCVerify {
			return core.ExtensionAnswer{}
		}
		return core.ExtensionAnswer{Answered: true, Provider: "idv-co", Body: json.RawMessage(`{"result":"` + result + `"}`)}
	}
}

// creditAnswer makes loans.credit-decision answer body as the bank's own
// provider, and every other point not at all.
func creditAnswer(body string) extensions {
	return func(call core.ExtensionCall) core.ExtensionAnswer {
		if call.Point != core.PointCreditDecision {
			return core.ExtensionAnswer{}
		}
		return core.ExtensionAnswer{Answered: true, Provider: "bank-credit", Body: json.RawMessage(body)}
	}
}

// Whoever approves a loan, the bank's floors hold: no approval for a
// customer whose KYC has not passed, and none above the approval's own
// limit.
func TestTheBanksFloorsHoldWhoeverApprovesALoan(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		for _, tt := range []struct {
			name    string
			kyc     string // the customer's KYC result before applying
			answer  string
			status  string
			because string
		}{
			{"within its limit", core.KYCPass, `{"decision":"approve","reason":"fine","limit":{"amount":"5000.00","currency":"EUR"}}`,
				core.LoanApproved, "fine"},
			{"without a limit: the amount applied for", core.KYCPass, `{"decision":"approve","reason":"fine"}`, core.LoanApproved, "fine"},
			{"above its own limit", core.KYCPass, `{"decision":"approve","reason":"fine","limit":{"amount":"4999.99","currency":"EUR"}}`,
				core.LoanReferred, "above the approval's own limit of 4999.99 EUR"},
			{"with a limit of zero", core.KYCPass, `{"decision":"approve","reason":"fine","limit":{"amount":"0.00","currency":"EUR"}}`,
				core.LoanDeclined, "nothing can be lent"},
			{"KYC referred", core.KYCRefer, `{"decision":"approve","reason":"fine"}`, core.LoanReferred, `KYC status is "refer"`},
			{"KYC failed", core.KYCFail, `{"decision":"approve","reason":"fine"}`, core.LoanDeclined, "KYC check failed"},
			{"KYC never checked", core.KYCPending, `{"decision":"approve","reason":"fine"}`, core.LoanReferred, `KYC status is "pending"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				c, _ := f.customerWithAccount(t, appA, "Sunny Homeowner", "")
				if tt.kyc != core.KYCPending {
					f.answer(kycAnswer(tt.kyc))
					if v, err := f.bank.VerifyCustomer(ctx, appA, c.ID); err != nil || v.Result != tt.kyc {
						t.Fatalf("kyc = %+v, %v", v, err)
					}
				}
				f.answer(creditAnswer(tt.answer))
				l, err := f.bank.ApplyForLoan(ctx, appA, core.NewLoanApplication{
					CustomerID: c.ID, Amount: eur(t, "5000.00"), TermMonths: 24, Purpose: "battery", MonthlyIncome: eur(t, "4000.00"),
				})
				if err != nil {
					t.Fatal(err)
				}
				if l.Status != tt.status || l.Decision.Provider != "bank-credit" || !strings.Contains(l.Decision.Reason, tt.because) {
					t.Errorf("loan = %s %+v, want %s because %q", l.Status, l.Decision, tt.status, tt.because)
				}
				if l.Status == core.LoanApproved && l.Decision.Limit.Minor < l.Amount.Minor {
					t.Errorf("approved %s above its limit %s", l.Amount, l.Decision.Limit)
				}
			})
		}
	})
}

// Funding checks again what the bank lends on, whoever decided the loan: a
// customer whose KYC has since been referred or failed is not paid out,
// nor a loan above its decided limit (as one approved before the bank held
// its floors may be). A refusal is a conflict, leaves the loan approved and
// books nothing.
func TestFundingRechecksKYCAndTheLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		c, acc := f.customerWithAccount(t, appA, "Sunny Homeowner", "")
		if v, err := f.bank.VerifyCustomer(ctx, appA, c.ID); err != nil || v.Result != core.KYCPass {
			t.Fatalf("kyc = %+v, %v", v, err)
		}
		l, err := f.bank.ApplyForLoan(ctx, appA, core.NewLoanApplication{
			CustomerID: c.ID, Amount: eur(t, "12000.00"), TermMonths: 60, Purpose: "solar panels", MonthlyIncome: eur(t, "4000.00"),
		})
		if err != nil || l.Status != core.LoanApproved {
			t.Fatalf("loan = %+v, %v", l, err)
		}
		refused := func(code string) {
			t.Helper()
			_, err := f.bank.FundLoan(ctx, appA, l.ID, acc.ID)
			if causeway.ErrorKind(err) != causeway.ECONFLICT {
				t.Errorf("funding: %v, want a conflict", err)
			}
			wantCode(t, err, code)
			if got, _ := f.bank.LoanApplication(ctx, appA, l.ID); got.Status != core.LoanApproved {
				t.Errorf("loan after a refused funding = %s", got.Status)
			}
			if booked, _ := f.balance(t, acc.ID); booked != "0.00" {
				t.Errorf("balance after a refused funding = %s", booked)
			}
		}

		// A KYC check since the decision refers or fails the customer.
		for _, result := range []string{core.KYCRefer, core.KYCFail} {
			f.answer(kycAnswer(result))
			if v, err := f.bank.VerifyCustomer(ctx, appA, c.ID); err != nil || v.Result != result {
				t.Fatalf("kyc = %+v, %v", v, err)
			}
			refused("kyc_not_passed")
		}
		f.answer(nil)
		if v, err := f.bank.VerifyCustomer(ctx, appA, c.ID); err != nil || v.Result != core.KYCPass {
			t.Fatalf("kyc = %+v, %v", v, err)
		}

		// A loan approved above its limit, as the 1,000,000,000.00 EUR
		// one of issue 14 was: its row says so.
		if _, err := db.Exec(`UPDATE core_loans SET limit_minor = 0 WHERE id = $1`, l.ID); err != nil {
			t.Fatal(err)
		}
		refused("loan_exceeds_limit")

		if _, err := db.Exec(`UPDATE core_loans SET limit_minor = amount WHERE id = $1`, l.ID); err != nil {
			t.Fatal(err)
		}
		if funded, err := f.bank.FundLoan(ctx, appA, l.ID, acc.ID); err != nil || funded.Status != core.LoanFunded {
			t.Fatalf("funding within the limit with KYC passed = %+v, %v", funded, err)
		}
		if booked, _ := f.balance(t, acc.ID); booked != "12000.00" {
			t.Errorf("balance after funding = %s", booked)
		}
	})
}
