package core

import (
	"context"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
)

// CustomerOffers recommends products for a customer the caller may see, from
// what the bank knows: home ownership and location, balances, income, loans.
func (b *Bank) CustomerOffers(ctx context.Context, caller auth.Caller, customerID string) ([]Offer, error) {
	c, err := getCustomer(ctx, b.db, caller, customerID)
	if err != nil {
		return nil, err
	}
	in := OfferInput{CustomerID: c.ID, IsHomeowner: c.Homeowner}
	if c.Geo != nil {
		in.Latitude, in.Longitude = &c.Geo.Latitude, &c.Geo.Longitude
	}
	if c.MonthlyIncome != nil {
		in.MonthlyIncome = *c.MonthlyIncome
	} else {
		in.MonthlyIncome = Money{Currency: "EUR"}
	}
	if dob, err := time.Parse(time.DateOnly, c.DateOfBirth); err == nil {
		if age, ok := ageOn(dob, b.now()); ok {
			in.Age = age
		}
	}
	rows, err := b.db.QueryContext(ctx, `SELECT booked, currency FROM core_accounts WHERE customer_id = $1 AND status = $2`, c.ID, AccountActive)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m Money
		if err := rows.Scan(&m.Minor, &m.Currency); err != nil {
			return nil, err
		}
		in.Balances = append(in.Balances, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var loans int
	if err := b.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM core_loans WHERE customer_id = $1 AND status = $2`, c.ID, LoanFunded).Scan(&loans); err != nil {
		return nil, err
	}
	in.HasLoan = loans > 0
	return RecommendOffers(in), nil
}
