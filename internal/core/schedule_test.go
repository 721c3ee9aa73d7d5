package core

import (
	_ "time/tzdata" // the zone test must not depend on the machine's zoneinfo

	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestAnnuityScheduleMatchesTextbookLoan(t *testing.T) {
	// 10,000.00 at 5% over 12 months: the standard annuity is 856.07 a month.
	s, err := AnnuitySchedule(Money{1_000_000, "EUR"}, 500, 12, date(2025, 1, 15))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 12 {
		t.Fatalf("%d instalments", len(s))
	}
	if s[0].Interest != (Money{4167, "EUR"}) || s[0].Principal != (Money{81440, "EUR"}) {
		t.Errorf("first instalment %v + %v, want 814.40 + 41.67", s[0].Principal, s[0].Interest)
	}
	var principal int64
	for i, in := range s {
		principal += in.Principal.Minor
		if i < 11 && in.Principal.Minor+in.Interest.Minor != 85607 {
			t.Errorf("instalment %d pays %d, want 85607", i+1, in.Principal.Minor+in.Interest.Minor)
		}
	}
	if principal != 1_000_000 {
		t.Errorf("principal parts sum to %d", principal)
	}
	last := s[11].Principal.Minor + s[11].Interest.Minor
	if last < 85600 || last > 85615 {
		t.Errorf("last instalment pays %d, far from 85607", last)
	}
}

func TestAnnuityScheduleZeroRateSplitsEvenly(t *testing.T) {
	tests := []struct {
		amount int64
		term   int
		want   []int64
	}{
		{10000, 3, []int64{3333, 3333, 3334}},
		{2, 3, []int64{0, 0, 2}},
		{900, 1, []int64{900}},
		{1200, 12, []int64{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100}},
	}
	for _, tt := range tests {
		s, err := AnnuitySchedule(Money{tt.amount, "EUR"}, 0, tt.term, date(2025, 3, 1))
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range s {
			if in.Principal.Minor != tt.want[i] || in.Interest != (Money{0, "EUR"}) {
				t.Errorf("%d over %d: instalment %d is %v + %v, want principal %d", tt.amount, tt.term, i+1, in.Principal, in.Interest, tt.want[i])
			}
		}
	}
}

func TestAnnuityScheduleDueDatesClampToMonthEnd(t *testing.T) {
	tests := []struct {
		first time.Time
		want  []time.Time
	}{
		{date(2024, 1, 31), []time.Time{date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31)}},
		{date(2025, 1, 31), []time.Time{date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30), date(2025, 5, 31)}},
		{date(2025, 11, 30), []time.Time{date(2025, 11, 30), date(2025, 12, 30), date(2026, 1, 30), date(2026, 2, 28), date(2026, 3, 30)}},
		{date(2025, 8, 15), []time.Time{date(2025, 8, 15), date(2025, 9, 15), date(2025, 10, 15), date(2025, 11, 15), date(2025, 12, 15)}},
	}
	for _, tt := range tests {
		s, err := AnnuitySchedule(Money{50000, "EUR"}, 399, 5, tt.first)
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range s {
			if !in.DueDate.Equal(tt.want[i]) {
				t.Errorf("from %s: instalment %d due %s, want %s", tt.first.Format(time.DateOnly), i+1,
					in.DueDate.Format(time.DateOnly), tt.want[i].Format(time.DateOnly))
			}
		}
	}
}

func TestAnnuityScheduleKeepsTimeAndZone(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam") // time/tzdata is linked in below
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2025, 1, 31, 9, 30, 0, 0, ams)
	s, err := AnnuitySchedule(Money{50000, "EUR"}, 399, 4, first)
	if err != nil {
		t.Fatal(err)
	}
	// The schedule crosses the switch to summer time at the end of March.
	want := time.Date(2025, 4, 30, 9, 30, 0, 0, ams)
	if !s[3].DueDate.Equal(want) || s[3].DueDate.Location() != ams {
		t.Errorf("fourth instalment due %s, want %s", s[3].DueDate, want)
	}
}

func TestAnnuityScheduleRejectsInvalidTerms(t *testing.T) {
	tests := []struct {
		name      string
		principal Money
		rate      int
		term      int
		code      string
	}{
		{"zero amount", Money{0, "EUR"}, 500, 12, "invalid_amount"},
		{"negative amount", Money{-100, "EUR"}, 500, 12, "invalid_amount"},
		{"unknown currency", Money{100, "XYZ"}, 500, 12, "unknown_currency"},
		{"zero term", Money{100, "EUR"}, 500, 0, "invalid_term"},
		{"term too long", Money{100, "EUR"}, 500, 481, "invalid_term"},
		{"negative rate", Money{100, "EUR"}, -1, 12, "invalid_rate"},
		{"rate too high", Money{100, "EUR"}, 10001, 12, "invalid_rate"},
		{"payment overflows", Money{math.MaxInt64, "EUR"}, 10000, 1, "invalid_amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AnnuitySchedule(tt.principal, tt.rate, tt.term, date(2025, 1, 1))
			if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != tt.code {
				t.Errorf("got %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestAnnuitySchedulePrincipalSumsExactlyForRandomLoans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	amounts := []func() int64{
		func() int64 { return 1 + rng.Int64N(100) },
		func() int64 { return 1 + rng.Int64N(10_000_000) },
		func() int64 { return 1 + rng.Int64N(math.MaxInt64/2) },
	}
	for range 1500 {
		amount := amounts[rng.IntN(len(amounts))]()
		rate := rng.IntN(MaxRateBasisPoints + 1)
		if rng.IntN(10) == 0 {
			rate = 0
		}
		term := 1 + rng.IntN(MaxTermMonths)
		s, err := AnnuitySchedule(Money{amount, "EUR"}, rate, term, date(2024, 1, 31))
		if err != nil {
			t.Fatalf("%d at %d bp over %d: %v", amount, rate, term, err)
		}
		checkSchedule(t, s, amount, rate, term)
	}
}

// checkSchedule asserts the schedule's invariants against an independent
// integer recomputation of every month's interest.
func checkSchedule(t *testing.T, s []Instalment, amount int64, rate, term int) {
	t.Helper()
	if len(s) != term {
		t.Fatalf("%d at %d bp over %d: %d instalments", amount, rate, term, len(s))
	}
	balance := big.NewInt(amount)
	sum := int64(0)
	for i, in := range s {
		if in.Principal.Minor < 0 || in.Interest.Minor < 0 {
			t.Fatalf("%d at %d bp over %d: negative instalment %d: %v", amount, rate, term, i+1, in)
		}
		// Interest is balance*rate/120000, rounded half-up.
		want := new(big.Int).Mul(balance, big.NewInt(int64(2*rate)))
		want.Add(want, big.NewInt(120000))
		want.Quo(want, big.NewInt(240000))
		if want.Int64() != in.Interest.Minor {
			t.Fatalf("%d at %d bp over %d: instalment %d interest %d, want %d", amount, rate, term, i+1, in.Interest.Minor, want.Int64())
		}
		balance.Sub(balance, big.NewInt(in.Principal.Minor))
		sum += in.Principal.Minor
		if i > 0 && in.DueDate.Before(s[i-1].DueDate.Time) {
			t.Fatalf("due dates go backwards at %d", i+1)
		}
	}
	if sum != amount {
		t.Fatalf("%d at %d bp over %d: principal sums to %d", amount, rate, term, sum)
	}
	if rate == 0 {
		return
	}
	// Every instalment but the last pays the same, unless rounding has
	// clamped a principal part: to zero when a tiny loan's payment is below
	// its interest, or to the balance when compounding drift paid it off early.
	payment := s[0].Principal.Minor + s[0].Interest.Minor
	left := amount
	clamped := false
	for i, in := range s[:term-1] {
		got := in.Principal.Minor + in.Interest.Minor
		switch {
		case got == payment && !clamped:
		case in.Principal.Minor == 0 || in.Principal.Minor == left:
			clamped = true
		default:
			t.Fatalf("%d at %d bp over %d: instalment %d pays %d, the first %d", amount, rate, term, i+1, got, payment)
		}
		left -= in.Principal.Minor
	}
	if clamped {
		return
	}
	// Rounding the payment and each month's interest by at most half a unit
	// leaves an error on the balance that compounds like a savings plan of one
	// unit a month: at most ((1+r)^n - 1)/r units by the last instalment.
	r := float64(rate) / 120000
	bound := (math.Pow(1+r, float64(term))-1)/r*1.001 + 2
	last := s[term-1].Principal.Minor + s[term-1].Interest.Minor
	if diff := math.Abs(float64(last) - float64(payment)); diff > bound {
		t.Fatalf("%d at %d bp over %d: last instalment %d, regular %d, beyond drift bound %.0f", amount, rate, term, last, payment, bound)
	}
}

func TestAnnuityScheduleLargestLoans(t *testing.T) {
	for _, tt := range []struct {
		amount     int64
		rate, term int
	}{
		{math.MaxInt64, 10000, 480},
		{math.MaxInt64, 0, 7},
		{math.MaxInt64 / 2, 10000, 1},
		{1, 10000, 480},
		{1, 1, 1},
	} {
		s, err := AnnuitySchedule(Money{tt.amount, "EUR"}, tt.rate, tt.term, date(2025, 1, 1))
		if err != nil {
			t.Fatalf("%d at %d bp over %d: %v", tt.amount, tt.rate, tt.term, err)
		}
		checkSchedule(t, s, tt.amount, tt.rate, tt.term)
	}
}

func BenchmarkAnnuitySchedule480Months(b *testing.B) {
	for b.Loop() {
		if _, err := AnnuitySchedule(Money{35_000_000, "EUR"}, 425, 480, date(2025, 1, 31)); err != nil {
			b.Fatal(err)
		}
	}
}
