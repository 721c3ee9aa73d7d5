package core_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
