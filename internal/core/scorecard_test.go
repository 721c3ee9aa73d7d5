package core

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/causewayhq/causeway"
)

func creditInput(amount, income int64, term int) CreditInput {
	return CreditInput{
		Amount:        Money{amount, "EUR"},
		TermMonths:    term,
		MonthlyIncome: Money{income, "EUR"},
		KYCStatus:     KYCPass,
		Purpose:       "car",
	}
}

func TestDecideCredit(t *testing.T) {
	tests := []struct {
		name     string
		in       CreditInput
		decision string
		rate     int
	}{
		{
			// 10,000 over 36 months at 4.75% is about 298.60 a month: 7.5% of 4,000.
			name: "low ratio approves at base plus term add-on", in: creditInput(1_000_000, 400_000, 36),
			decision: CreditApprove, rate: 475,
		},
		{
			name: "solar purpose gets the green discount", in: func() CreditInput {
				in := creditInput(1_000_000, 400_000, 36)
				in.Purpose = "Solar"
				return in
			}(),
			decision: CreditApprove, rate: 425,
		},
		{
			// About 1,195 a month on 3,000 of income: 40%.
			name: "ratio between 35% and 50% refers", in: creditInput(4_000_000, 300_000, 36),
			decision: CreditRefer, rate: 475 + 200,
		},
		{
			name: "existing debt counts", in: func() CreditInput {
				in := creditInput(1_000_000, 400_000, 36)
				in.ExistingMonthlyDebt = Money{150_000, "EUR"}
				return in
			}(),
			decision: CreditRefer, rate: 475 + 200,
		},
		{
			name: "ratio above 50% declines", in: creditInput(10_000_000, 300_000, 36),
			decision: CreditDecline, rate: 0,
		},
		{
			name: "no income declines", in: creditInput(1_000_000, 0, 36),
			decision: CreditDecline, rate: 0,
		},
		{
			name: "failed KYC declines", in: func() CreditInput {
				in := creditInput(100_000, 1_000_000, 12)
				in.KYCStatus = KYCFail
				return in
			}(),
			decision: CreditDecline, rate: 0,
		},
		{
			name: "pending KYC refers even when affordable", in: func() CreditInput {
				in := creditInput(100_000, 1_000_000, 12)
				in.KYCStatus = "pending"
				return in
			}(),
			decision: CreditRefer, rate: 450,
		},
		{
			name: "referred KYC refers", in: func() CreditInput {
				in := creditInput(100_000, 1_000_000, 12)
				in.KYCStatus = KYCRefer
				return in
			}(),
			decision: CreditRefer, rate: 450,
		},
		{
			name: "long term costs more", in: creditInput(20_000_000, 1_000_000, 360),
			decision: CreditApprove, rate: 450 + 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecideCredit(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Decision != tt.decision || got.RateBasisPoints != tt.rate {
				t.Errorf("got %s at %d bp (%s), want %s at %d bp", got.Decision, got.RateBasisPoints, got.Reason, tt.decision, tt.rate)
			}
			if got.Reason == "" || got.Score < 0 || got.Score > 100 || got.Limit.Currency != "EUR" {
				t.Errorf("incomplete decision %+v", got)
			}
		})
	}
}

func TestDecideCreditRejectsInvalidInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(*CreditInput)
		code string
	}{
		{"zero amount", func(in *CreditInput) { in.Amount.Minor = 0 }, "invalid_amount"},
		{"term too long", func(in *CreditInput) { in.TermMonths = 481 }, "invalid_term"},
		{"income in another currency", func(in *CreditInput) { in.MonthlyIncome.Currency = "USD" }, "currency_mismatch"},
		{"debt in another currency", func(in *CreditInput) { in.ExistingMonthlyDebt = Money{100, "GBP"} }, "currency_mismatch"},
		{"negative income", func(in *CreditInput) { in.MonthlyIncome.Minor = -1 }, "invalid_amount"},
		{"unknown KYC status", func(in *CreditInput) { in.KYCStatus = "ok" }, "invalid_kyc_status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := creditInput(1_000_000, 400_000, 36)
			tt.edit(&in)
			_, err := DecideCredit(in)
			if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != tt.code {
				t.Errorf("got %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestDecideCreditLimitIsLargestAffordableAmount(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 400 {
		in := creditInput(1+rng.Int64N(50_000_000), rng.Int64N(2_000_000), 1+rng.IntN(MaxTermMonths))
		if rng.IntN(2) == 0 {
			in.ExistingMonthlyDebt = Money{rng.Int64N(in.MonthlyIncome.Minor/2 + 1), "EUR"}
		}
		if rng.IntN(4) == 0 {
			in.Purpose = "green"
		}
		d, err := DecideCredit(in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Decision == CreditDecline {
			continue // no rate to check the limit against
		}
		budget := in.MonthlyIncome.Minor*ApproveRatioPercent/100 - in.ExistingMonthlyDebt.Minor
		instalment := func(p int64) int64 {
			return roundHalfUp(annuityPayment(p, d.RateBasisPoints, in.TermMonths)).Int64()
		}
		if limit := d.Limit.Minor; limit > 0 {
			if instalment(limit) > budget || instalment(limit+1) <= budget {
				t.Fatalf("%+v: limit %d pays %d, limit+1 pays %d, budget %d", in, limit, instalment(limit), instalment(limit+1), budget)
			}
		}
		// At the offered rate, approval is exactly borrowing within the limit.
		if approved := d.Decision == CreditApprove; approved != (in.Amount.Minor <= d.Limit.Minor) {
			t.Fatalf("%+v: %s with limit %v", in, d.Decision, d.Limit)
		}
	}
}

func TestDecideCreditScoreFallsWithRatio(t *testing.T) {
	prev := 101
	for _, amount := range []int64{100_000, 1_000_000, 2_000_000, 4_000_000, 8_000_000} {
		d, err := DecideCredit(creditInput(amount, 400_000, 24))
		if err != nil {
			t.Fatal(err)
		}
		if d.Score >= prev {
			t.Errorf("borrowing %d scores %d, not below %d", amount, d.Score, prev)
		}
		prev = d.Score
	}
}

func TestPercentRoundsHalfUp(t *testing.T) {
	for _, tt := range []struct {
		ratio *big.Rat
		want  string
	}{
		{big.NewRat(7465, 100000), "7.5%"},
		{big.NewRat(35, 100), "35.0%"},
		{big.NewRat(1, 3), "33.3%"},
		{big.NewRat(3, 2), "150.0%"},
	} {
		if got := percent(tt.ratio); got != tt.want {
			t.Errorf("percent(%s) = %s, want %s", tt.ratio, got, tt.want)
		}
	}
}
