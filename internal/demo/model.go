package demo

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The empathetic story's model: which customers hold savings worth a
// fixed-term deposit, predicted from how they spend. It is trained on the
// bank's pseudonymized-transactions dataset (rows grouped by customer_hash)
// and applied to the visiting customer's own history, read through the API
// and reduced to the same features.

// saverThreshold is the balance, in EUR, from which a customer counts as a
// saver: the bank's own threshold for offering a fixed-term deposit.
const saverThreshold = 10_000

// booking is one transaction reduced to what the model reads, the same
// from a dataset row and from an API transaction.
type booking struct {
	accountType string // current or savings
	amount      float64
	credit      bool
	category    string // as the dataset names it
}

// profile is one customer's spending, summed over their bookings.
type profile struct {
	salaries   int // salary payments seen: the months covered
	income     float64
	savings    float64 // moved from current to savings
	card       float64
	housing    float64
	mortgage   bool
	hasSavings bool
	balance    float64 // credits minus debits over every account
}

func (p *profile) add(b booking) {
	sign := -1.0
	if b.credit {
		sign = 1
	}
	p.balance += sign * b.amount
	if b.accountType == "savings" {
		p.hasSavings = true
	}
	switch {
	case b.category == "salary" && b.credit:
		p.salaries++
		p.income += b.amount
	case b.category == "savings_transfer" && !b.credit && b.accountType == "current":
		p.savings += b.amount
	case b.category == "card_payment" && !b.credit:
		p.card += b.amount
	case (b.category == "rent" || b.category == "mortgage") && !b.credit:
		p.housing += b.amount
		p.mortgage = p.mortgage || b.category == "mortgage"
	}
}

// featureNames name the model's inputs, in order.
var featureNames = []string{"monthly income (k EUR)", "savings rate", "card spend / income", "housing / income", "pays a mortgage", "holds a savings account"}

// features are the model's inputs: spending only, never the balance.
func (p *profile) features() []float64 {
	months := float64(max(p.salaries, 1))
	monthly := p.income / months
	ratio := func(x float64) float64 {
		if p.income == 0 {
			return 0
		}
		return x / p.income
	}
	return []float64{monthly / 1000, ratio(p.savings), ratio(p.card), ratio(p.housing), bit(p.mortgage), bit(p.hasSavings)}
}

// saver is the label: the customer holds at least saverThreshold.
func (p *profile) saver() bool { return p.balance >= saverThreshold }

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// readTransactionsCSV groups the rows of the pseudonymized-transactions
// dataset (CSV with a header line) into one profile per customer_hash.
func readTransactionsCSV(r io.Reader) (map[string]*profile, int, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("reading the header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, want := range []string{"customer_hash", "account_type", "amount", "direction", "category"} {
		if _, ok := col[want]; !ok {
			return nil, 0, fmt.Errorf("the dataset has no %s column (columns: %s)", want, strings.Join(header, ","))
		}
	}
	profiles := map[string]*profile{}
	rows := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, rows, err
		}
		amount, err := strconv.ParseFloat(rec[col["amount"]], 64)
		if err != nil {
			return nil, rows, fmt.Errorf("row %d: amount %q: %w", rows+1, rec[col["amount"]], err)
		}
		p := profiles[rec[col["customer_hash"]]]
		if p == nil {
			p = &profile{}
			profiles[rec[col["customer_hash"]]] = p
		}
		p.add(booking{accountType: rec[col["account_type"]], amount: amount, credit: rec[col["direction"]] == "credit", category: rec[col["category"]]})
		rows++
	}
	return profiles, rows, nil
}

// categoryOf reduces a transaction's description, as the API shows it, to
// the dataset's category, the way the bank's data agent does before any
// row leaves the bank.
func categoryOf(description string) string {
	for _, c := range []struct{ prefix, category string }{
		{"Opening balance", "opening_balance"},
		{"Salary", "salary"},
		{"Rent", "rent"},
		{"Mortgage", "mortgage"},
		{"Energy", "utilities"},
		{"Mobile and internet", "utilities"},
		{"Card payment", "card_payment"},
		{"Transfer to savings", "savings_transfer"},
		{"Transfer from current account", "savings_transfer"},
	} {
		if strings.HasPrefix(description, c.prefix) {
			return c.category
		}
	}
	return "other"
}

// logistic is a logistic-regression model over standardized features.
type logistic struct {
	mean, scale []float64
	weights     []float64
	bias        float64
}

// trainLogistic fits a logistic regression by gradient descent with a
// little L2 regularization (the training sets are small).
func trainLogistic(x [][]float64, y []bool) (*logistic, error) {
	if len(x) == 0 || len(x) != len(y) {
		return nil, errors.New("no training examples")
	}
	n, d := float64(len(x)), len(x[0])
	m := &logistic{mean: make([]float64, d), scale: make([]float64, d), weights: make([]float64, d)}
	for j := range d {
		for _, row := range x {
			m.mean[j] += row[j] / n
		}
		for _, row := range x {
			m.scale[j] += (row[j] - m.mean[j]) * (row[j] - m.mean[j]) / n
		}
		m.scale[j] = math.Sqrt(m.scale[j])
		if m.scale[j] < 1e-9 {
			m.scale[j] = 1 // a constant feature: it stays at 0 after centring
		}
	}
	z := make([][]float64, len(x))
	for i, row := range x {
		z[i] = m.standardize(row)
	}
	const (
		rate   = 0.5
		lambda = 0.05
		rounds = 3000
	)
	grad := make([]float64, d)
	for range rounds {
		clear(grad)
		var gb float64
		for i, row := range z {
			err := sigmoid(m.linear(row)) - bit(y[i])
			for j, v := range row {
				grad[j] += err * v / n
			}
			gb += err / n
		}
		for j := range m.weights {
			m.weights[j] -= rate * (grad[j] + lambda*m.weights[j])
		}
		m.bias -= rate * gb
	}
	return m, nil
}

func (m *logistic) standardize(x []float64) []float64 {
	z := make([]float64, len(x))
	for j, v := range x {
		z[j] = (v - m.mean[j]) / m.scale[j]
	}
	return z
}

func (m *logistic) linear(z []float64) float64 {
	s := m.bias
	for j, v := range z {
		s += m.weights[j] * v
	}
	return s
}

// predict is the probability that a customer with features x is a saver.
func (m *logistic) predict(x []float64) float64 { return sigmoid(m.linear(m.standardize(x))) }

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// accuracy is the share of examples the model classifies right at 0.5.
func (m *logistic) accuracy(x [][]float64, y []bool) float64 {
	right := 0
	for i, row := range x {
		if (m.predict(row) >= 0.5) == y[i] {
			right++
		}
	}
	return float64(right) / float64(len(x))
}

// savingsProducts are the offers that fit a saver; the others (a savings
// buffer, loans, a youth account) fit someone still building savings.
var savingsProducts = map[string]bool{"savings_deposit": true, "retirement_plan": true}

// fit is how well an offer suits a customer whom the model gives saver
// probability p, from 0 to 1.
func fit(product string, p float64) float64 {
	if savingsProducts[product] {
		return p
	}
	return 1 - p
}
