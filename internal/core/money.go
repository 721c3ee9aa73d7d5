// Package core is the sandbox bank's domain: money, IBANs, repayment
// schedules, KYC rules, the built-in credit scorecard, product offers and the
// sandbox data generator. It is pure logic: no database, HTTP or bus code
// lives here, so every rule can be tested on its own.
package core

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/causewayhq/causeway"
)

// currencyExponents maps the ISO 4217 codes the sandbox bank handles to the
// number of decimals of their minor unit.
var currencyExponents = map[string]int{
	"EUR": 2,
	"USD": 2,
	"GBP": 2,
	"CHF": 2,
	"SEK": 2,
	"NOK": 2,
	"DKK": 2,
	"PLN": 2,
	"CZK": 2,
	"HUF": 2,
	"RON": 2,
	"ISK": 0,
	"JPY": 0,
}

// CurrencyExponent returns the number of decimals of the currency's minor
// unit (2 for EUR, 0 for JPY) and whether the currency is known.
func CurrencyExponent(code string) (int, bool) {
	exp, ok := currencyExponents[code]
	return exp, ok
}

// MaxMinor is the largest amount the bank takes from outside, in minor
// units of any currency: 100,000,000,000.00 for the two-decimal currencies
// (EUR, USD, ...) and 10,000,000,000,000 for those without decimals (JPY,
// ISK). ParseMoney refuses more with amount_too_large. The bound is far
// above any real payment and far below int64: more than 900,000 amounts
// this large still add up without overflow, so sums of amounts the bank
// accepted never overflow in practice.
const MaxMinor int64 = 10_000_000_000_000

// MaxAmount returns the largest amount ParseMoney accepts in currency, and
// whether the currency is known.
func MaxAmount(currency string) (Money, bool) {
	if _, ok := CurrencyExponent(currency); !ok {
		return Money{}, false
	}
	return Money{Minor: MaxMinor, Currency: currency}, true
}

// Money is an amount in integer minor units (cents for EUR) of an ISO 4217
// currency. It never holds floats. On the wire it is
// {"amount":"12.34","currency":"EUR"}.
type Money struct {
	Minor    int64
	Currency string
}

// ParseMoney parses a non-negative decimal amount such as "12.34", "12" or
// "0.5" in the given currency. It rejects signs, exponents, spaces, missing
// digits on either side of the point, more decimals than the currency has
// (code too_many_decimals), unknown currencies (unknown_currency) and amounts
// above MaxMinor minor units (amount_too_large). Zero is accepted; callers
// that need a positive amount check IsPositive. Every amount from outside
// the bank is parsed here.
func ParseMoney(amount, currency string) (Money, error) {
	if currency == "" {
		return Money{}, causeway.Errorf(causeway.EINVALID, "unknown_currency", "currency is required")
	}
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return Money{}, causeway.Errorf(causeway.EINVALID, "unknown_currency", "unknown currency %q", currency)
	}
	if amount == "" {
		return Money{}, causeway.Errorf(causeway.EINVALID, "invalid_amount", "amount is empty")
	}

	if amount[0] == '-' {
		return Money{}, causeway.Errorf(causeway.EINVALID, "invalid_amount", "amount %q must not be negative", amount)
	}
	whole, frac, hasPoint := strings.Cut(amount, ".")
	if !allDigits(whole) || (hasPoint && !allDigits(frac)) {
		return Money{}, causeway.Errorf(causeway.EINVALID, "invalid_amount",
			"amount %q is not a non-negative decimal such as \"12.34\"", amount)
	}
	if len(frac) > exp {
		return Money{}, causeway.Errorf(causeway.EINVALID, "too_many_decimals",
			"amount %q has more than %d decimals for %s", amount, exp, currency)
	}

	var minor int64
	for _, d := range []byte(whole + frac + strings.Repeat("0", exp-len(frac))) {
		v := int64(d - '0')
		if minor > (MaxMinor-v)/10 {
			return Money{}, causeway.Errorf(causeway.EINVALID, "amount_too_large",
				"amount %q is above the maximum of %s", amount, Money{Minor: MaxMinor, Currency: currency})
		}
		minor = minor*10 + v
	}
	return Money{Minor: minor, Currency: currency}, nil
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsPositive reports whether m is greater than zero.
func (m Money) IsPositive() bool { return m.Minor > 0 }

// IsZero reports whether m is zero, whatever its currency.
func (m Money) IsZero() bool { return m.Minor == 0 }

// Amount formats m as a decimal string with exactly the currency's number of
// decimals: "12.30", "-1.00", "1500" for JPY. A currency missing from the
// table is formatted with two decimals.
func (m Money) Amount() string {
	exp, ok := CurrencyExponent(m.Currency)
	if !ok {
		exp = 2
	}
	// Work on the magnitude as uint64 so that math.MinInt64 has one.
	mag := uint64(m.Minor)
	sign := ""
	if m.Minor < 0 {
		mag = -mag
		sign = "-"
	}
	digits := strconv.FormatUint(mag, 10)
	if exp == 0 {
		return sign + digits
	}
	for len(digits) <= exp {
		digits = "0" + digits
	}
	cut := len(digits) - exp
	return sign + digits[:cut] + "." + digits[cut:]
}

// String returns m as "12.34 EUR", for logs and messages.
func (m Money) String() string { return m.Amount() + " " + m.Currency }

// Add returns m + o. It refuses different currencies (currency_mismatch) and
// results beyond int64 minor units (amount_overflow).
func (m Money) Add(o Money) (Money, error) {
	if err := sameCurrency(m, o); err != nil {
		return Money{}, err
	}
	sum := m.Minor + o.Minor
	// Signed overflow happened iff both operands share a sign the sum lacks.
	if (m.Minor >= 0) == (o.Minor >= 0) && (sum >= 0) != (m.Minor >= 0) {
		return Money{}, causeway.Errorf(causeway.EINVALID, "amount_overflow", "%s + %s overflows", m, o)
	}
	return Money{Minor: sum, Currency: m.Currency}, nil
}

// Sub returns m - o. It refuses different currencies (currency_mismatch) and
// results beyond int64 minor units (amount_overflow).
func (m Money) Sub(o Money) (Money, error) {
	if err := sameCurrency(m, o); err != nil {
		return Money{}, err
	}
	diff := m.Minor - o.Minor
	if (m.Minor >= 0) != (o.Minor >= 0) && (diff >= 0) != (m.Minor >= 0) {
		return Money{}, causeway.Errorf(causeway.EINVALID, "amount_overflow", "%s - %s overflows", m, o)
	}
	return Money{Minor: diff, Currency: m.Currency}, nil
}

func sameCurrency(a, b Money) error {
	if a.Currency != b.Currency {
		return causeway.Errorf(causeway.EINVALID, "currency_mismatch",
			"cannot combine %s with %s", a.Currency, b.Currency)
	}
	return nil
}

// moneyJSON is the wire form of Money.
type moneyJSON struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// MarshalJSON encodes m as {"amount":"12.34","currency":"EUR"}.
func (m Money) MarshalJSON() ([]byte, error) {
	return json.Marshal(moneyJSON{Amount: m.Amount(), Currency: m.Currency})
}

// UnmarshalJSON decodes {"amount":"12.34","currency":"EUR"} through
// ParseMoney, so negative amounts, numbers instead of strings and unknown
// currencies are refused. JSON null leaves m unchanged, as encoding/json does
// for plain values.
func (m *Money) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var w moneyJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return causeway.Errorf(causeway.EBADREQUEST, "invalid_money",
			"money must be {\"amount\":\"12.34\",\"currency\":\"EUR\"} with a string amount: %v", err)
	}
	parsed, err := ParseMoney(w.Amount, w.Currency)
	if err != nil {
		return err
	}
	*m = parsed
	return nil
}
