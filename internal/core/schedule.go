package core

import (
	"math/big"
	"time"

	"github.com/causewayhq/causeway"
)

// Loan term and rate bounds accepted by AnnuitySchedule and the scorecard.
const (
	MaxTermMonths      = 480
	MaxRateBasisPoints = 10000 // 100% a year
)

// Instalment is one monthly repayment: the part that pays off the loan and
// the interest on the balance outstanding during the month.
type Instalment struct {
	DueDate   Date  `json:"due_date"`
	Principal Money `json:"principal"`
	Interest  Money `json:"interest"`
}

// AnnuitySchedule returns the monthly instalments of an annuity loan: every
// month the same payment, the interest part being the remaining balance times
// rate/12 rounded half-up to the minor unit. The constant payment is computed
// exactly and rounded half-up; the principal parts always add up to the loan
// amount exactly, the last instalment absorbing rounding. With a zero rate the
// principal is split evenly and the last instalment takes the remainder.
//
// Rounding errors compound at the loan's rate, so the last instalment of a
// long loan at a high rate can differ noticeably from the others; in extreme
// cases (near 100% over decades) the loan is paid off early and the
// remaining instalments are zero.
//
// The first instalment is due on firstDue and the next ones on the same day of
// each following month, clamped to the month's end (31 January, 28 or 29
// February, 31 March). Errors are EINVALID: invalid_amount, unknown_currency,
// invalid_term (1..480 months) or invalid_rate (0..10000 basis points).
func AnnuitySchedule(principal Money, annualRateBasisPoints int, termMonths int, firstDue time.Time) ([]Instalment, error) {
	if err := validateLoanTerms(principal, annualRateBasisPoints, termMonths); err != nil {
		return nil, err
	}
	parts, interests, err := amortize(principal.Minor, annualRateBasisPoints, termMonths)
	if err != nil {
		return nil, err
	}
	schedule := make([]Instalment, termMonths)
	for i := range schedule {
		schedule[i] = Instalment{
			DueDate:   Date{addMonthsClamped(firstDue, i)},
			Principal: Money{Minor: parts[i], Currency: principal.Currency},
			Interest:  Money{Minor: interests[i], Currency: principal.Currency},
		}
	}
	return schedule, nil
}

func validateLoanTerms(principal Money, rateBP, termMonths int) error {
	if _, ok := CurrencyExponent(principal.Currency); !ok {
		return causeway.Errorf(causeway.EINVALID, "unknown_currency", "unknown currency %q", principal.Currency)
	}
	if !principal.IsPositive() {
		return causeway.Errorf(causeway.EINVALID, "invalid_amount", "loan amount must be positive, got %s", principal)
	}
	if termMonths < 1 || termMonths > MaxTermMonths {
		return causeway.Errorf(causeway.EINVALID, "invalid_term", "term must be 1 to %d months, got %d", MaxTermMonths, termMonths)
	}
	if rateBP < 0 || rateBP > MaxRateBasisPoints {
		return causeway.Errorf(causeway.EINVALID, "invalid_rate", "rate must be 0 to %d basis points, got %d", MaxRateBasisPoints, rateBP)
	}
	return nil
}

// amortize splits principal (minor units) into termMonths principal parts and
// computes each month's interest.
func amortize(principal int64, rateBP, termMonths int) (parts, interests []int64, err error) {
	parts = make([]int64, termMonths)
	interests = make([]int64, termMonths)
	n := int64(termMonths)

	if rateBP == 0 {
		share := principal / n
		for i := range parts {
			parts[i] = share
		}
		parts[n-1] = principal - share*(n-1)
		return parts, interests, nil
	}

	payment, ok := roundMinor(annuityPayment(principal, rateBP, termMonths))
	if !ok {
		return nil, nil, causeway.Errorf(causeway.EINVALID, "invalid_amount", "loan amount is too large")
	}
	monthly := monthlyRate(rateBP)
	balance := principal
	for i := range parts {
		interest, _ := roundMinor(new(big.Rat).Mul(big.NewRat(balance, 1), monthly))
		part := balance
		if i < termMonths-1 {
			// Rounding the payment can leave a tiny loan's payment below its
			// interest, or pay it off early; keep every part within 0..balance.
			part = min(max(payment-interest, 0), balance)
		}
		parts[i], interests[i] = part, interest
		balance -= part
	}
	return parts, interests, nil
}

// monthlyRate is the annual rate in basis points divided by 12, as a fraction.
func monthlyRate(rateBP int) *big.Rat {
	return big.NewRat(int64(rateBP), 12*10000)
}

// annuityPayment is the exact constant monthly payment that repays principal
// minor units in termMonths at rateBP a year:
//
//	P * r * (1+r)^n / ((1+r)^n - 1),  r = rateBP / 120000
//
// and, for a zero rate, P / n.
func annuityPayment(principal int64, rateBP, termMonths int) *big.Rat {
	if rateBP == 0 {
		return big.NewRat(principal, int64(termMonths))
	}
	// With (1+r)^n = num/den the payment is P * rateBP * num / (120000 * (num - den)).
	n := big.NewInt(int64(termMonths))
	den := new(big.Int).Exp(big.NewInt(120000), n, nil)
	num := new(big.Int).Exp(big.NewInt(120000+int64(rateBP)), n, nil)

	top := new(big.Int).Mul(big.NewInt(principal), big.NewInt(int64(rateBP)))
	top.Mul(top, num)
	bottom := new(big.Int).Sub(num, den)
	bottom.Mul(bottom, big.NewInt(120000))
	return new(big.Rat).SetFrac(top, bottom)
}

// roundMinor rounds a non-negative x half-up to a whole number of minor units
// and reports whether the result fits in an int64.
func roundMinor(x *big.Rat) (int64, bool) {
	q := roundHalfUp(x)
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// roundHalfUp rounds a non-negative x half-up to an integer.
func roundHalfUp(x *big.Rat) *big.Int {
	// floor(x + 1/2) = floor((2*num + den) / (2*den)); both are positive.
	num := new(big.Int).Lsh(x.Num(), 1)
	num.Add(num, x.Denom())
	return num.Quo(num, new(big.Int).Lsh(x.Denom(), 1))
}

// addMonthsClamped returns t moved n months ahead on the same day of the
// month, or on the month's last day when it is shorter. time.AddDate would
// instead roll 31 January into March.
func addMonthsClamped(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	hour, minute, sec := t.Clock()
	lastDay := time.Date(y, m+time.Month(n)+1, 0, 0, 0, 0, 0, t.Location()).Day()
	return time.Date(y, m+time.Month(n), min(d, lastDay), hour, minute, sec, t.Nanosecond(), t.Location())
}
