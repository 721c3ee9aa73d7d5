package core

import (
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/causewayhq/causeway"
)

// Credit decisions.
const (
	CreditApprove = "approve"
	CreditDecline = "decline"
	CreditRefer   = "refer"
)

// Scorecard parameters. A debt-service ratio is (the new loan's monthly
// instalment + existing monthly debt) / monthly income.
const (
	BaseRateBasisPoints      = 450
	GreenDiscountBasisPoints = 50 // for purpose "solar" or "green"
	ApproveRatioPercent      = 35 // at most this ratio is approved
	ReferRatioPercent        = 50 // at most this ratio is referred, above declined
)

// CreditInput is a loan application as the scorecard sees it. Income and
// debt must be in the loan's currency; a zero Money{} counts as zero.
type CreditInput struct {
	Amount              Money
	TermMonths          int
	MonthlyIncome       Money
	ExistingMonthlyDebt Money
	KYCStatus           string // pass, fail, refer or pending
	Purpose             string
}

// CreditDecision is the scorecard's answer. RateBasisPoints is the annual rate
// offered (zero when declined); Limit is the largest amount the applicant
// could borrow over the same term at that rate within the approval ratio;
// Score runs from 0 (worst) to 100.
type CreditDecision struct {
	Decision        string
	Reason          string
	RateBasisPoints int
	Limit           Money
	Score           int
}

// DecideCredit is the built-in credit decision, used when no
// loans.credit-decision SPI is registered. Failed KYC declines and KYC that
// has not passed refers. Otherwise the debt-service ratio at the offered rate
// decides: up to 35% approves, up to 50% refers, anything more (or no income)
// declines. The rate is 450 bp plus add-ons for a longer term and a higher
// ratio, minus 50 bp for a solar or green purpose. It is deterministic and
// uses exact arithmetic only. Invalid input is an EINVALID error.
func DecideCredit(in CreditInput) (CreditDecision, error) {
	if err := validateCreditInput(in); err != nil {
		return CreditDecision{}, err
	}
	cur := in.Amount.Currency
	income, debt := in.MonthlyIncome.Minor, in.ExistingMonthlyDebt.Minor

	if in.KYCStatus == KYCFail {
		return CreditDecision{
			Decision: CreditDecline,
			Reason:   "KYC check failed",
			Limit:    Money{Currency: cur},
		}, nil
	}

	rate := BaseRateBasisPoints + termAddOn(in.TermMonths)
	if isGreenPurpose(in.Purpose) {
		rate -= GreenDiscountBasisPoints
	}
	// The ratio add-on depends on the instalment, which depends on the rate:
	// price the ratio at the rate without it, then decide at the final rate.
	preliminary, _ := debtServiceRatio(in.Amount.Minor, rate, in.TermMonths, debt, income)
	rate += ratioAddOn(preliminary)
	ratio, ok := debtServiceRatio(in.Amount.Minor, rate, in.TermMonths, debt, income)
	decision := CreditDecision{
		RateBasisPoints: rate,
		Limit:           Money{Minor: creditLimit(rate, in.TermMonths, debt, income), Currency: cur},
		Score:           creditScore(ratio, ok, in.TermMonths),
	}

	switch {
	case in.KYCStatus != KYCPass:
		decision.Decision = CreditRefer
		decision.Reason = fmt.Sprintf("KYC status is %q, not pass", in.KYCStatus)
	case !ok:
		decision.Decision = CreditDecline
		decision.Reason = "no monthly income to repay the loan from"
	case ratio.Cmp(big.NewRat(ApproveRatioPercent, 100)) <= 0:
		decision.Decision = CreditApprove
		decision.Reason = fmt.Sprintf("debt-service ratio %s is within %d%%", percent(ratio), ApproveRatioPercent)
	case ratio.Cmp(big.NewRat(ReferRatioPercent, 100)) <= 0:
		decision.Decision = CreditRefer
		decision.Reason = fmt.Sprintf("debt-service ratio %s is above %d%% but within %d%%; up to %s would be approved",
			percent(ratio), ApproveRatioPercent, ReferRatioPercent, decision.Limit)
	default:
		decision.Decision = CreditDecline
		decision.Reason = fmt.Sprintf("debt-service ratio %s is above %d%%; up to %s would be approved",
			percent(ratio), ReferRatioPercent, decision.Limit)
	}
	if decision.Decision == CreditDecline {
		decision.RateBasisPoints = 0
	}
	return decision, nil
}

func validateCreditInput(in CreditInput) error {
	if err := validateLoanTerms(in.Amount, 0, in.TermMonths); err != nil {
		return err
	}
	for _, m := range []struct {
		name  string
		money Money
	}{{"monthly income", in.MonthlyIncome}, {"existing monthly debt", in.ExistingMonthlyDebt}} {
		if m.money == (Money{}) {
			continue
		}
		if m.money.Currency != in.Amount.Currency {
			return causeway.Errorf(causeway.EINVALID, "currency_mismatch",
				"%s is in %s, the loan in %s", m.name, m.money.Currency, in.Amount.Currency)
		}
		if m.money.Minor < 0 {
			return causeway.Errorf(causeway.EINVALID, "invalid_amount", "%s must not be negative", m.name)
		}
	}
	switch in.KYCStatus {
	case KYCPass, KYCFail, KYCRefer, "pending":
		return nil
	}
	return causeway.Errorf(causeway.EINVALID, "invalid_kyc_status", "KYC status %q is not pass, fail, refer or pending", in.KYCStatus)
}

// termAddOn prices the longer exposure of a longer loan.
func termAddOn(months int) int {
	switch {
	case months <= 12:
		return 0
	case months <= 36:
		return 25
	case months <= 60:
		return 50
	case months <= 120:
		return 100
	case months <= 240:
		return 150
	}
	return 200
}

// ratioAddOn prices a stretched budget; nil means no income.
func ratioAddOn(ratio *big.Rat) int {
	switch {
	case ratio == nil:
		return 200
	case ratio.Cmp(big.NewRat(15, 100)) <= 0:
		return 0
	case ratio.Cmp(big.NewRat(25, 100)) <= 0:
		return 50
	case ratio.Cmp(big.NewRat(ApproveRatioPercent, 100)) <= 0:
		return 100
	}
	return 200
}

func isGreenPurpose(purpose string) bool {
	p := strings.ToLower(strings.TrimSpace(purpose))
	return p == "solar" || p == "green"
}

// debtServiceRatio returns (instalment + debt) / income, with the instalment
// rounded as the repayment schedule rounds it (kept as a big.Int because an
// oversized loan's may not fit an int64), and false if there is no income.
func debtServiceRatio(principal int64, rateBP, termMonths int, debt, income int64) (*big.Rat, bool) {
	if income <= 0 {
		return nil, false
	}
	instalment := roundHalfUp(annuityPayment(principal, rateBP, termMonths))
	outgoing := new(big.Int).Add(instalment, big.NewInt(debt))
	return new(big.Rat).SetFrac(outgoing, big.NewInt(income)), true
}

// creditLimit returns the largest principal (minor units) whose rounded
// instalment plus debt stays within the approval ratio of income, and zero
// when no instalment above zero fits.
func creditLimit(rateBP, termMonths int, debt, income int64) int64 {
	// The instalment is whole minor units, so it must be at most
	// budget = floor(income * 35 / 100) - debt.
	budget := new(big.Int).Mul(big.NewInt(income), big.NewInt(ApproveRatioPercent))
	budget.Quo(budget, big.NewInt(100))
	budget.Sub(budget, big.NewInt(debt))
	if budget.Sign() <= 0 {
		return 0
	}
	// round(P*k) <= budget  <=>  P*k < budget + 1/2  <=>  P < (2*budget + 1) / (2*k),
	// with k the exact payment per minor unit borrowed.
	perUnit := annuityPayment(1, rateBP, termMonths)
	bound := new(big.Rat).SetInt(new(big.Int).Add(new(big.Int).Lsh(budget, 1), big.NewInt(1)))
	bound.Quo(bound, new(big.Rat).Mul(perUnit, big.NewRat(2, 1)))
	// Largest integer strictly below bound.
	limit := new(big.Int).Quo(bound.Num(), bound.Denom())
	if bound.IsInt() {
		limit.Sub(limit, big.NewInt(1))
	}
	if !limit.IsInt64() {
		return math.MaxInt64
	}
	return limit.Int64()
}

// creditScore maps the ratio and term to 0..100: 100 for a loan that costs
// nothing of the income over a short term, losing 1.2 points per percent of
// ratio and a point per two years of term.
func creditScore(ratio *big.Rat, ok bool, termMonths int) int {
	if !ok {
		return 0
	}
	penalty := new(big.Int).Mul(ratio.Num(), big.NewInt(120))
	penalty.Quo(penalty, ratio.Denom())
	penalty.Add(penalty, big.NewInt(int64(termMonths/24)))
	if penalty.Cmp(big.NewInt(100)) >= 0 {
		return 0
	}
	return 100 - int(penalty.Int64())
}

// percent formats a ratio as a percentage with one decimal, rounded half-up.
func percent(ratio *big.Rat) string {
	tenths := roundHalfUp(new(big.Rat).Mul(ratio, big.NewRat(1000, 1)))
	whole, frac := new(big.Int).QuoRem(tenths, big.NewInt(10), new(big.Int))
	return fmt.Sprintf("%s.%s%%", whole, frac)
}
