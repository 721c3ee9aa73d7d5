package demo

import (
	"strings"
	"testing"
)

// TestProfilesGroupDatasetRowsPerCustomer reads a pseudonymized-transactions
// CSV and sums each customer's spending the way the model sees it.
func TestProfilesGroupDatasetRowsPerCustomer(t *testing.T) {
	csv := `customer_hash,account_hash,account_type,booked_date,amount,currency,direction,category
a,a1,current,2026-01-01,12000.00,EUR,credit,opening_balance
a,a1,current,2026-01-25,4000.00,EUR,credit,salary
a,a1,current,2026-02-01,1000.00,EUR,debit,mortgage
a,a1,current,2026-02-03,400.00,EUR,debit,card_payment
a,a1,current,2026-02-27,600.00,EUR,debit,savings_transfer
a,a2,savings,2026-02-27,600.00,EUR,credit,savings_transfer
b,b1,current,2026-01-01,500.00,EUR,credit,opening_balance
b,b1,current,2026-01-25,2000.00,EUR,credit,salary
b,b1,current,2026-02-01,800.00,EUR,debit,rent
`
	profiles, rows, err := readTransactionsCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if rows != 9 || len(profiles) != 2 {
		t.Fatalf("rows %d, customers %d", rows, len(profiles))
	}
	a, b := profiles["a"], profiles["b"]
	if !a.saver() || b.saver() || !a.mortgage || !a.hasSavings || a.balance != 14600 {
		t.Errorf("a = %+v, b = %+v", a, b)
	}
	if got := a.features(); got[0] != 4 || got[1] != 0.15 || got[2] != 0.1 || got[3] != 0.25 || got[4] != 1 || got[5] != 1 {
		t.Errorf("a's features = %v", got)
	}
	if _, _, err := readTransactionsCSV(strings.NewReader("customer_hash,amount\nx,1\n")); err == nil {
		t.Error("a CSV without the needed columns was read")
	}
}

// TestLogisticRegressionLearnsASeparableRule: savers are those with a high
// income here; the model must rank them above the others.
func TestLogisticRegressionLearnsASeparableRule(t *testing.T) {
	var x [][]float64
	var y []bool
	for i := range 40 {
		income := 1.5 + float64(i)*0.15
		x = append(x, []float64{income, 0.5, 1})
		y = append(y, income > 4)
	}
	m, err := trainLogistic(x, y)
	if err != nil {
		t.Fatal(err)
	}
	if acc := m.accuracy(x, y); acc < 0.95 {
		t.Errorf("training accuracy %.2f", acc)
	}
	low, high := m.predict([]float64{2, 0.5, 1}), m.predict([]float64{6, 0.5, 1})
	if !(low < 0.2 && high > 0.8) {
		t.Errorf("p(low income) = %.2f, p(high income) = %.2f", low, high)
	}
	if _, err := trainLogistic(nil, nil); err == nil {
		t.Error("trained on nothing")
	}
}

func TestCategoriesMatchTheDataAgents(t *testing.T) {
	for desc, want := range map[string]string{
		"Salary November 2026":           "salary",
		"Mortgage instalment March 2026": "mortgage",
		"Card payment Starbucks Lyon":    "card_payment",
		"Transfer to savings":            "savings_transfer",
		"Energy March 2026":              "utilities",
		"invoice 42":                     "other",
	} {
		if got := categoryOf(desc); got != want {
			t.Errorf("categoryOf(%q) = %q, want %q", desc, got, want)
		}
	}
}
