package core

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"slices"
)

// Products the sandbox bank offers.
const (
	ProductSolarLoan        = "solar_loan"
	ProductSavingsDeposit   = "savings_deposit"
	ProductEmergencySavings = "emergency_savings"
	ProductPersonalLoan     = "personal_loan"
	ProductRetirementPlan   = "retirement_plan"
	ProductYouthAccount     = "youth_account"
)

// OfferInput is what the offer rules know about a customer. Latitude and
// Longitude are nil when unknown; geography is no money, so floats are fine.
// Age zero means unknown.
type OfferInput struct {
	CustomerID          string
	IsHomeowner         bool
	Latitude, Longitude *float64
	Balances            []Money
	MonthlyIncome       Money
	HasLoan             bool
	Age                 int
}

// Offer is a product suggested to a customer. ID is stable for the same
// customer and product, so a repeated offer is recognisable. Score runs from
// 0 to 100; higher fits better.
type Offer struct {
	ID      string `json:"id"`
	Product string `json:"product"`
	Title   string `json:"title"`
	Reason  string `json:"reason"`
	Score   int    `json:"score" minimum:"0" maximum:"100"`
}

// RecommendOffers returns the products that fit the customer, best first.
// A solar-panel loan goes to homeowners, scored higher in sunny latitudes
// (below 45°); a fixed-term deposit to customers holding more than 10,000 in
// a currency; a savings buffer to those holding less than a month's income;
// a personal loan to earners without a loan; a retirement plan from 45 to 66
// and a youth account from 18 to 25.
func RecommendOffers(in OfferInput) []Offer {
	var offers []Offer
	add := func(product, title, reason string, score int) {
		offers = append(offers, Offer{
			ID:      offerID(in.CustomerID, product),
			Product: product,
			Title:   title,
			Reason:  reason,
			Score:   min(max(score, 0), 100),
		})
	}
	totals := balanceTotals(in.Balances)

	if in.IsHomeowner {
		score, reason := 60, "homeowner: panels on the roof cut the energy bill"
		if lat, ok := latitude(in.Latitude); ok {
			switch abs := math.Abs(lat); {
			case abs < 45:
				score, reason = 85, fmt.Sprintf("homeowner at latitude %.1f°, where the sun makes solar panels pay back fast", lat)
			case abs < 52:
				score = 70
			}
		}
		if in.HasLoan {
			score -= 15
		}
		add(ProductSolarLoan, "Solar panel loan", reason, score)
	}

	for _, t := range totals {
		threshold := majorUnits(10_000, t.Currency)
		if t.Minor.Cmp(threshold) <= 0 {
			continue
		}
		// 50, plus 10 for every further 20,000, up to 90.
		steps := new(big.Int).Quo(new(big.Int).Sub(t.Minor, threshold), majorUnits(20_000, t.Currency))
		score := 90
		if steps.IsInt64() && steps.Int64() < 4 {
			score = 50 + 10*int(steps.Int64())
		}
		add(ProductSavingsDeposit, "Fixed-term deposit",
			fmt.Sprintf("more than 10,000 %s on the accounts could earn a fixed rate", t.Currency), score)
		break
	}

	if in.MonthlyIncome.IsPositive() {
		held := new(big.Int)
		for _, t := range totals {
			if t.Currency == in.MonthlyIncome.Currency {
				held = t.Minor
			}
		}
		if held.Cmp(big.NewInt(in.MonthlyIncome.Minor)) < 0 {
			add(ProductEmergencySavings, "Savings buffer",
				"balances are below one month's income; a buffer absorbs surprises", 55)
		}
		if !in.HasLoan && big.NewInt(in.MonthlyIncome.Minor).Cmp(majorUnits(2_000, in.MonthlyIncome.Currency)) >= 0 &&
			(in.Age == 0 || (in.Age >= 21 && in.Age <= 70)) {
			add(ProductPersonalLoan, "Personal loan",
				fmt.Sprintf("a monthly income of %s and no loan yet", in.MonthlyIncome), 45)
		}
	}

	switch {
	case in.Age >= 45 && in.Age <= 66:
		add(ProductRetirementPlan, "Retirement plan",
			fmt.Sprintf("at %d, every year of saving for retirement still counts", in.Age), 40+(in.Age-45))
	case in.Age >= 18 && in.Age <= 25:
		add(ProductYouthAccount, "Youth account", "free banking and a bonus rate up to 25", 50)
	}

	slices.SortFunc(offers, func(a, b Offer) int {
		if a.Score != b.Score {
			return cmp.Compare(b.Score, a.Score)
		}
		return cmp.Compare(a.Product, b.Product)
	})
	return offers
}

// offerID is "off_" and the start of a hash of customer and product, so the
// same offer keeps its ID from one call to the next.
func offerID(customerID, product string) string {
	sum := sha256.Sum256([]byte(customerID + "\x00" + product))
	return "off_" + hex.EncodeToString(sum[:10])
}

func latitude(lat *float64) (float64, bool) {
	if lat == nil || math.IsNaN(*lat) || *lat < -90 || *lat > 90 {
		return 0, false
	}
	return *lat, true
}

// currencyTotal is the sum of balances in one currency. It is a big.Int so
// that many large balances cannot overflow.
type currencyTotal struct {
	Currency string
	Minor    *big.Int
}

// balanceTotals sums balances per currency, in currency order.
func balanceTotals(balances []Money) []currencyTotal {
	var totals []currencyTotal
	for _, b := range balances {
		i := slices.IndexFunc(totals, func(t currencyTotal) bool { return t.Currency == b.Currency })
		if i < 0 {
			totals = append(totals, currencyTotal{Currency: b.Currency, Minor: new(big.Int)})
			i = len(totals) - 1
		}
		totals[i].Minor.Add(totals[i].Minor, big.NewInt(b.Minor))
	}
	slices.SortFunc(totals, func(a, b currencyTotal) int { return cmp.Compare(a.Currency, b.Currency) })
	return totals
}

// majorUnits returns n whole units of the currency in minor units.
func majorUnits(n int64, currency string) *big.Int {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		exp = 2
	}
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)
	return scale.Mul(scale, big.NewInt(n))
}
