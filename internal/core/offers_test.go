package core

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func ptr(f float64) *float64 { return &f }

func products(offers []Offer) []string {
	var ps []string
	for _, o := range offers {
		ps = append(ps, o.Product)
	}
	return ps
}

func TestRecommendOffers(t *testing.T) {
	tests := []struct {
		name string
		in   OfferInput
		want []string // products, best first
	}{
		{
			name: "homeowner in Sevilla gets a solar loan first",
			in: OfferInput{CustomerID: "cus_1", IsHomeowner: true, Latitude: ptr(37.39), Longitude: ptr(-5.98),
				Balances: []Money{{5_000_00, "EUR"}}, MonthlyIncome: Money{3_000_00, "EUR"}, HasLoan: true, Age: 40},
			want: []string{ProductSolarLoan},
		},
		{
			name: "wealthy saver gets a deposit",
			in: OfferInput{CustomerID: "cus_2", Balances: []Money{{8_000_00, "EUR"}, {7_000_00, "EUR"}},
				MonthlyIncome: Money{3_000_00, "EUR"}, HasLoan: true, Age: 35},
			want: []string{ProductSavingsDeposit},
		},
		{
			name: "thin buffer, earner without loan, young",
			in: OfferInput{CustomerID: "cus_3", Balances: []Money{{500_00, "EUR"}},
				MonthlyIncome: Money{2_500_00, "EUR"}, Age: 23},
			want: []string{ProductEmergencySavings, ProductYouthAccount, ProductPersonalLoan},
		},
		{
			name: "retirement age",
			in:   OfferInput{CustomerID: "cus_4", Balances: []Money{{20_000_00, "EUR"}}, HasLoan: true, Age: 60},
			want: []string{ProductRetirementPlan, ProductSavingsDeposit},
		},
		{
			name: "10,000 exactly is not above the threshold",
			in:   OfferInput{CustomerID: "cus_5", Balances: []Money{{10_000_00, "EUR"}}, HasLoan: true, Age: 30},
			want: nil,
		},
		{
			name: "yen are counted in yen",
			in:   OfferInput{CustomerID: "cus_6", Balances: []Money{{10_001, "JPY"}}, HasLoan: true, Age: 30},
			want: []string{ProductSavingsDeposit},
		},
		{
			name: "nothing known, nothing offered",
			in:   OfferInput{CustomerID: "cus_7"},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RecommendOffers(tt.in)
			if !slices.Equal(products(got), tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i, o := range got {
				if o.Score < 0 || o.Score > 100 || o.Title == "" || o.Reason == "" || !strings.HasPrefix(o.ID, "off_") {
					t.Errorf("incomplete offer %+v", o)
				}
				if i > 0 && got[i-1].Score < o.Score {
					t.Errorf("not sorted by score: %+v", got)
				}
			}
		})
	}
}

func TestRecommendOffersSolarScoreFollowsSunshine(t *testing.T) {
	score := func(lat *float64) int {
		offers := RecommendOffers(OfferInput{CustomerID: "cus_1", IsHomeowner: true, Latitude: lat, HasLoan: true})
		return offers[0].Score
	}
	sevilla, lyon, amsterdam := score(ptr(37.4)), score(ptr(45.76)), score(ptr(52.37))
	if sevilla <= lyon || lyon <= amsterdam {
		t.Errorf("Sevilla %d, Lyon %d, Amsterdam %d: want falling with latitude", sevilla, lyon, amsterdam)
	}
	if southern := score(ptr(-33.9)); southern != sevilla {
		t.Errorf("Cape Town %d, Sevilla %d", southern, sevilla)
	}
	// Without a usable latitude the score is the base 60, less 15 for the loan.
	for _, unknown := range []*float64{nil, ptr(math.NaN()), ptr(123)} {
		if got := score(unknown); got != 45 {
			t.Errorf("unknown latitude scored %d", got)
		}
	}
}

func TestRecommendOffersIDsAreStable(t *testing.T) {
	in := OfferInput{CustomerID: "cus_1", IsHomeowner: true, Age: 50}
	a, b := RecommendOffers(in), RecommendOffers(in)
	if !slices.Equal(a, b) {
		t.Fatalf("%v != %v", a, b)
	}
	other := RecommendOffers(OfferInput{CustomerID: "cus_2", IsHomeowner: true, Age: 50})
	if a[0].ID == other[0].ID {
		t.Error("two customers share an offer ID")
	}
	if a[0].ID == a[1].ID {
		t.Error("two products share an offer ID")
	}
}
