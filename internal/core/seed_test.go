package core

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

var seedEnd = time.Date(2025, 6, 15, 14, 30, 0, 0, time.UTC)

func sandboxHash(t *testing.T, d SandboxData) string {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestGenerateSandboxIsDeterministic(t *testing.T) {
	a := sandboxHash(t, GenerateSandbox(42, 25, 120, seedEnd))
	b := sandboxHash(t, GenerateSandbox(42, 25, 120, seedEnd))
	if a != b {
		t.Errorf("seed 42 gave %s, then %s", a, b)
	}
	if c := sandboxHash(t, GenerateSandbox(43, 25, 120, seedEnd)); c == a {
		t.Error("seeds 42 and 43 gave the same data")
	}
}

func TestGenerateSandboxMoreCustomersKeepsTheFirst(t *testing.T) {
	few := GenerateSandbox(7, 5, 60, seedEnd)
	many := GenerateSandbox(7, 12, 60, seedEnd)
	if !reflect.DeepEqual(few.Customers, many.Customers[:5]) {
		t.Error("generating more customers changed the first five")
	}
}

func TestGenerateSandboxHistoryIsConsistent(t *testing.T) {
	const days = 200
	data := GenerateSandbox(2025, 40, days, seedEnd)
	if len(data.Customers) != 40 {
		t.Fatalf("%d customers", len(data.Customers))
	}
	first := time.Date(2025, 6, 15, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	emails := map[string]bool{}
	savers, homeowners := 0, 0

	for _, c := range data.Customers {
		if o := RunKYCRules(c.KYCSubject, seedEnd); o.Result != KYCPass {
			t.Errorf("%s fails KYC: %+v", c.Name, o.Checks)
		}
		if emails[c.Email] {
			t.Errorf("email %s used twice", c.Email)
		}
		emails[c.Email] = true
		if c.Latitude < 35 || c.Latitude > 56 || c.Longitude < -10 || c.Longitude > 20 {
			t.Errorf("%s lives at %f,%f, outside western Europe", c.Name, c.Latitude, c.Longitude)
		}
		if !c.MonthlyIncome.IsPositive() || c.MonthlyIncome.Currency != "EUR" {
			t.Errorf("%s earns %v", c.Name, c.MonthlyIncome)
		}
		if c.IsHomeowner {
			homeowners++
		}

		if len(c.Accounts) == 0 || c.Accounts[0].Product != AccountCurrent {
			t.Fatalf("%s has no current account first: %+v", c.Name, c.Accounts)
		}
		if len(c.Accounts) == 2 {
			savers++
		}
		categories := map[string]int{}
		moved := map[string]int64{}
		for _, a := range c.Accounts {
			if a.Currency != "EUR" {
				t.Errorf("%s account in %s", c.Name, a.Currency)
			}
			var balance int64
			for i, tx := range a.Transactions {
				if tx.BookedAt.Before(first) || tx.BookedAt.After(seedEnd) {
					t.Errorf("%s: %s booked outside the window", c.Name, tx.BookedAt)
				}
				if i > 0 && tx.BookedAt.Before(a.Transactions[i-1].BookedAt) {
					t.Errorf("%s: transactions out of order at %d", c.Name, i)
				}
				if !tx.Amount.IsPositive() || tx.Amount.Currency != "EUR" || tx.Description == "" || tx.Counterparty == "" {
					t.Errorf("%s: bad transaction %+v", c.Name, tx)
				}
				if tx.CounterpartyIBAN != "" {
					if _, err := ValidateIBAN(tx.CounterpartyIBAN); err != nil {
						t.Errorf("%s: %v", c.Name, err)
					}
				}
				switch tx.Direction {
				case DirectionCredit:
					balance += tx.Amount.Minor
				case DirectionDebit:
					balance -= tx.Amount.Minor
				default:
					t.Errorf("%s: direction %q", c.Name, tx.Direction)
				}
				if balance < 0 {
					t.Fatalf("%s's %s account goes to %d after %+v", c.Name, a.Product, balance, tx)
				}
				categories[tx.Category]++
				if tx.Category == CategorySavingsTransfer {
					moved[tx.Direction] += tx.Amount.Minor
				}
			}
			if a.Balance().Minor != balance {
				t.Errorf("%s: Balance() = %v, running total %d", c.Name, a.Balance(), balance)
			}
		}
		if moved[DirectionDebit] != moved[DirectionCredit] {
			t.Errorf("%s: %d left current for savings, %d arrived", c.Name, moved[DirectionDebit], moved[DirectionCredit])
		}
		if c.Accounts[0].Transactions[0].Category != CategoryOpeningBalance {
			t.Errorf("%s: history starts with %+v", c.Name, c.Accounts[0].Transactions[0])
		}
		// 200 days span at least six paydays and six first-of-months.
		if categories[CategorySalary] < 6 || categories[CategoryRent]+categories[CategoryMortgage] < 6 ||
			categories[CategoryUtilities] < 12 || categories[CategoryGroceries] < 25 || categories[CategoryCardPayment] < 100 {
			t.Errorf("%s: thin history %v", c.Name, categories)
		}
		if c.IsHomeowner && categories[CategoryRent] > 0 {
			t.Errorf("%s owns a home but pays rent", c.Name)
		}
	}
	if savers == 0 || savers == 40 || homeowners == 0 || homeowners == 40 {
		t.Errorf("%d savers and %d homeowners out of 40", savers, homeowners)
	}
}

func TestGenerateSandboxEdgeSizes(t *testing.T) {
	if d := GenerateSandbox(1, 0, 30, seedEnd); len(d.Customers) != 0 {
		t.Errorf("0 customers gave %d", len(d.Customers))
	}
	if d := GenerateSandbox(1, -3, 30, seedEnd); len(d.Customers) != 0 {
		t.Errorf("-3 customers gave %d", len(d.Customers))
	}
	for _, c := range GenerateSandbox(1, 3, 0, seedEnd).Customers {
		for _, a := range c.Accounts {
			if len(a.Transactions) != 0 {
				t.Errorf("0 days gave %d transactions", len(a.Transactions))
			}
		}
	}
	for _, c := range GenerateSandbox(1, 3, 1, seedEnd).Customers {
		if txns := c.Accounts[0].Transactions; len(txns) == 0 || txns[0].Category != CategoryOpeningBalance {
			t.Errorf("1 day gave %+v", txns)
		}
	}
}

func TestIsPaydayMovesWeekendsToFriday(t *testing.T) {
	tests := []struct {
		day  time.Time
		want bool
	}{
		{date(2025, 6, 25), true},  // Wednesday
		{date(2025, 5, 23), true},  // Friday before Sunday the 25th
		{date(2025, 5, 25), false}, // Sunday
		{date(2025, 10, 24), true}, // Friday before Saturday the 25th
		{date(2025, 6, 24), false},
	}
	for _, tt := range tests {
		if got := isPayday(tt.day); got != tt.want {
			t.Errorf("isPayday(%s) = %v", tt.day.Format(time.DateOnly), got)
		}
	}
}

func BenchmarkGenerateSandbox(b *testing.B) {
	for b.Loop() {
		GenerateSandbox(1, 50, 365, seedEnd)
	}
}
