package client

import (
	"fmt"
	"strconv"
	"strings"
)

// Money is an amount in an ISO 4217 currency, exactly as the API writes it:
// {"amount":"12.34","currency":"EUR"}. The amount is a decimal string so
// that no value ever passes through a float; the platform refuses more
// decimals than the currency has (code too_many_decimals).
type Money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// NewMoney returns amount (a decimal string such as "12.34") in currency. It
// does not validate: the platform does, and answers with a problem code.
func NewMoney(amount, currency string) Money {
	return Money{Amount: amount, Currency: currency}
}

// EUR returns amount in euros, e.g. EUR("12.34").
func EUR(amount string) Money { return Money{Amount: amount, Currency: "EUR"} }

// FromMinorUnits returns minor units (cents for EUR, yen for JPY) of currency as
// Money, e.g. FromMinorUnits(1234, "EUR") is 12.34 EUR.
func FromMinorUnits(minor int64, currency string) Money {
	exp := CurrencyExponent(currency)
	// Work on the magnitude as uint64 so that math.MinInt64 has one.
	mag := uint64(minor)
	sign := ""
	if minor < 0 {
		mag = -mag
		sign = "-"
	}
	digits := strconv.FormatUint(mag, 10)
	if exp == 0 {
		return Money{Amount: sign + digits, Currency: currency}
	}
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	cut := len(digits) - exp
	return Money{Amount: sign + digits[:cut] + "." + digits[cut:], Currency: currency}
}

// MinorUnits returns m's amount in minor units of its currency, for
// arithmetic without floats. It fails on a malformed amount or on more
// decimals than the currency has. The API writes negative amounts only in
// balances ("-1.00"); they are accepted here.
func (m Money) MinorUnits() (int64, error) {
	exp := CurrencyExponent(m.Currency)
	s, neg := strings.CutPrefix(m.Amount, "-")
	whole, frac, hasPoint := strings.Cut(s, ".")
	if !digitsOnly(whole) || hasPoint && !digitsOnly(frac) {
		return 0, fmt.Errorf("causeway: amount %q is not a decimal such as \"12.34\"", m.Amount)
	}
	if len(frac) > exp {
		return 0, fmt.Errorf("causeway: amount %q has more than %d decimals for %s", m.Amount, exp, m.Currency)
	}
	n, err := strconv.ParseInt(whole+frac+strings.Repeat("0", exp-len(frac)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("causeway: amount %q is out of range", m.Amount)
	}
	if neg {
		n = -n
	}
	return n, nil
}

// String returns m as "12.34 EUR".
func (m Money) String() string { return m.Amount + " " + m.Currency }

func digitsOnly(s string) bool {
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

// exponents lists the ISO 4217 currencies whose minor unit is not the
// hundredth.
var exponents = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// CurrencyExponent returns the number of decimals of currency's minor unit
// under ISO 4217: 2 for EUR, 0 for JPY, 3 for KWD. Codes it does not list
// have 2.
func CurrencyExponent(currency string) int {
	if exp, ok := exponents[currency]; ok {
		return exp
	}
	return 2
}
