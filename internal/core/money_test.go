package core

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
)

func TestParseMoneyAcceptsDecimalStrings(t *testing.T) {
	tests := []struct {
		amount, currency string
		want             int64
	}{
		{"12.34", "EUR", 1234},
		{"12", "EUR", 1200},
		{"0.5", "EUR", 50},
		{"0", "EUR", 0},
		{"0.00", "EUR", 0},
		{"007.10", "USD", 710},
		{"1500", "JPY", 1500},
		{"100000000000.00", "EUR", MaxMinor},
		{"00100000000000", "EUR", MaxMinor},
		{"10000000000000", "JPY", MaxMinor},
	}
	for _, tt := range tests {
		t.Run(tt.amount+" "+tt.currency, func(t *testing.T) {
			got, err := ParseMoney(tt.amount, tt.currency)
			if err != nil {
				t.Fatalf("ParseMoney: %v", err)
			}
			if want := (Money{Minor: tt.want, Currency: tt.currency}); got != want {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestParseMoneyRejectsWithStableCodes(t *testing.T) {
	tests := []struct {
		amount, currency, code string
	}{
		{"", "EUR", "invalid_amount"},
		{"-1.00", "EUR", "invalid_amount"},
		{"+1.00", "EUR", "invalid_amount"},
		{"1e3", "EUR", "invalid_amount"},
		{"1E3", "EUR", "invalid_amount"},
		{" 1.00", "EUR", "invalid_amount"},
		{"1.00 ", "EUR", "invalid_amount"},
		{"1 000", "EUR", "invalid_amount"},
		{"1,00", "EUR", "invalid_amount"},
		{".5", "EUR", "invalid_amount"},
		{"5.", "EUR", "invalid_amount"},
		{"1.2.3", "EUR", "invalid_amount"},
		{"0x10", "EUR", "invalid_amount"},
		{"NaN", "EUR", "invalid_amount"},
		{"١٢", "EUR", "invalid_amount"}, // Arabic-Indic digits are not ASCII digits
		{"100000000000.01", "EUR", "amount_too_large"},
		{"100000000001", "EUR", "amount_too_large"},
		{"10000000000001", "JPY", "amount_too_large"},
		{"92233720368547758.07", "EUR", "amount_too_large"},
		{"92233720368547758.08", "EUR", "amount_too_large"},
		{"9223372036854775807", "JPY", "amount_too_large"},
		{"9223372036854775808", "JPY", "amount_too_large"},
		{"99999999999999999999999999", "EUR", "amount_too_large"},
		{"1.234", "EUR", "too_many_decimals"},
		{"1.230", "EUR", "too_many_decimals"},
		{"1.5", "JPY", "too_many_decimals"},
		{"1.0", "JPY", "too_many_decimals"},
		{"1.00", "XXX", "unknown_currency"},
		{"1.00", "eur", "unknown_currency"},
		{"1.00", "", "unknown_currency"},
	}
	for _, tt := range tests {
		t.Run(tt.amount+" "+tt.currency, func(t *testing.T) {
			_, err := ParseMoney(tt.amount, tt.currency)
			if err == nil {
				t.Fatal("accepted")
			}
			if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != tt.code {
				t.Errorf("got %v (kind %s), want code %s", err, causeway.ErrorKind(err), tt.code)
			}
		})
	}
}

func TestMoneyAmountFormatsCurrencyDecimals(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{Money{1230, "EUR"}, "12.30"},
		{Money{5, "EUR"}, "0.05"},
		{Money{0, "EUR"}, "0.00"},
		{Money{-100, "EUR"}, "-1.00"},
		{Money{-5, "EUR"}, "-0.05"},
		{Money{1500, "JPY"}, "1500"},
		{Money{-7, "JPY"}, "-7"},
		{Money{math.MaxInt64, "EUR"}, "92233720368547758.07"},
		{Money{math.MinInt64, "EUR"}, "-92233720368547758.08"},
		{Money{1234, ""}, "12.34"},
	}
	for _, tt := range tests {
		if got := tt.m.Amount(); got != tt.want {
			t.Errorf("%#v.Amount() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestMoneyAddSubRefuseMismatchAndOverflow(t *testing.T) {
	eur := func(n int64) Money { return Money{n, "EUR"} }
	tests := []struct {
		name    string
		op      func() (Money, error)
		want    Money
		errCode string
	}{
		{"add", func() (Money, error) { return eur(150).Add(eur(275)) }, eur(425), ""},
		{"sub below zero", func() (Money, error) { return eur(150).Sub(eur(275)) }, eur(-125), ""},
		{"add mismatch", func() (Money, error) { return eur(1).Add(Money{1, "USD"}) }, Money{}, "currency_mismatch"},
		{"sub mismatch", func() (Money, error) { return eur(1).Sub(Money{1, "USD"}) }, Money{}, "currency_mismatch"},
		{"add overflow", func() (Money, error) { return eur(math.MaxInt64).Add(eur(1)) }, Money{}, "amount_overflow"},
		{"add negative overflow", func() (Money, error) { return eur(math.MinInt64).Add(eur(-1)) }, Money{}, "amount_overflow"},
		{"sub overflow", func() (Money, error) { return eur(math.MinInt64).Sub(eur(1)) }, Money{}, "amount_overflow"},
		{"sub overflow upwards", func() (Money, error) { return eur(0).Sub(eur(math.MinInt64)) }, Money{}, "amount_overflow"},
		{"add to max", func() (Money, error) { return eur(math.MaxInt64 - 1).Add(eur(1)) }, eur(math.MaxInt64), ""},
		{"sub to min", func() (Money, error) { return eur(-1).Sub(eur(math.MaxInt64)) }, eur(math.MinInt64), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.op()
			if tt.errCode != "" {
				if causeway.ErrorCode(err) != tt.errCode {
					t.Fatalf("got %v, %v; want error %s", got, err, tt.errCode)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestMoneyJSONWireForm(t *testing.T) {
	b, err := json.Marshal(struct {
		Amount Money `json:"amount"`
	}{Money{1234, "EUR"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"amount":{"amount":"12.34","currency":"EUR"}}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}

	var m Money
	if err := json.Unmarshal([]byte(`{"amount":"0.5","currency":"EUR"}`), &m); err != nil {
		t.Fatal(err)
	}
	if m != (Money{50, "EUR"}) {
		t.Errorf("got %#v", m)
	}
}

func TestMoneyJSONRejectsBadInput(t *testing.T) {
	tests := []struct {
		body, code string
	}{
		{`{"amount":"-1.00","currency":"EUR"}`, "invalid_amount"},
		{`{"amount":12.34,"currency":"EUR"}`, "invalid_money"},
		{`{"amount":"12.345","currency":"EUR"}`, "too_many_decimals"},
		{`{"amount":"12.34","currency":"ZZZ"}`, "unknown_currency"},
		{`{"amount":"12.34"}`, "unknown_currency"},
		{`{"currency":"EUR"}`, "invalid_amount"},
		{`"12.34 EUR"`, "invalid_money"},
		{`[]`, "invalid_money"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var m Money
			err := json.Unmarshal([]byte(tt.body), &m)
			if causeway.ErrorCode(err) != tt.code {
				t.Errorf("got %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestMoneyJSONNullLeavesValue(t *testing.T) {
	m := Money{100, "EUR"}
	if err := json.Unmarshal([]byte(`null`), &m); err != nil || m != (Money{100, "EUR"}) {
		t.Errorf("got %#v, %v", m, err)
	}
}

func TestMoneyRoundTripsThroughAmountAndJSON(t *testing.T) {
	for _, cur := range []string{"EUR", "JPY", "GBP"} {
		for _, minor := range []int64{0, 1, 9, 10, 99, 100, 101, 123456789, MaxMinor} {
			m := Money{minor, cur}
			back, err := ParseMoney(m.Amount(), cur)
			if err != nil || back != m {
				t.Errorf("ParseMoney(%q) = %#v, %v; want %#v", m.Amount(), back, err, m)
			}
			b, _ := json.Marshal(m)
			var viaJSON Money
			if err := json.Unmarshal(b, &viaJSON); err != nil || viaJSON != m {
				t.Errorf("JSON %s -> %#v, %v", b, viaJSON, err)
			}
		}
	}
}

func TestMaxAmountIsTheSameMinorUnitsInEveryCurrency(t *testing.T) {
	for cur, want := range map[string]string{"EUR": "100000000000.00", "GBP": "100000000000.00", "JPY": "10000000000000", "ISK": "10000000000000"} {
		m, ok := MaxAmount(cur)
		if !ok || m.Amount() != want {
			t.Errorf("MaxAmount(%s) = %s, %v; want %s", cur, m.Amount(), ok, want)
		}
		if _, err := ParseMoney(want, cur); err != nil {
			t.Errorf("the maximum %s %s is refused: %v", want, cur, err)
		}
	}
	if _, ok := MaxAmount("XXX"); ok {
		t.Error("an unknown currency has a maximum")
	}
	// Sums of accepted amounts stay far from overflow.
	if math.MaxInt64/MaxMinor < 900_000 {
		t.Errorf("only %d maximal amounts fit in int64", math.MaxInt64/MaxMinor)
	}
	_, err := ParseMoney("92233720368547758.07", "EUR")
	if causeway.ErrorCode(err) != "amount_too_large" || !strings.Contains(err.Error(), "100000000000.00 EUR") {
		t.Errorf("err = %v, want amount_too_large naming the maximum", err)
	}
}

func TestCurrencyExponent(t *testing.T) {
	for _, c := range []string{"EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN"} {
		if exp, ok := CurrencyExponent(c); !ok || exp != 2 {
			t.Errorf("CurrencyExponent(%s) = %d, %v", c, exp, ok)
		}
	}
	if exp, ok := CurrencyExponent("JPY"); !ok || exp != 0 {
		t.Errorf("CurrencyExponent(JPY) = %d, %v", exp, ok)
	}
	if _, ok := CurrencyExponent("BTC"); ok {
		t.Error("BTC is known")
	}
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"12.34", "0", "0.5", "-1", "1e5", "92233720368547758.07", "100000000000.00", "100000000000.01", "1.", ".1", "00000000000000000000001.00"} {
		f.Add(s, "EUR")
		f.Add(s, "JPY")
	}
	f.Fuzz(func(t *testing.T, amount, currency string) {
		m, err := ParseMoney(amount, currency)
		if err != nil {
			var e *causeway.Error
			if !errors.As(err, &e) || e.Kind != causeway.EINVALID {
				t.Fatalf("error %v is not an EINVALID causeway.Error", err)
			}
			return
		}
		if m.Minor < 0 || m.Minor > MaxMinor || m.Currency != currency {
			t.Fatalf("ParseMoney(%q, %q) = %#v", amount, currency, m)
		}
		formatted := m.Amount()
		back, err := ParseMoney(formatted, currency)
		if err != nil || back != m {
			t.Fatalf("%q -> %#v -> %q -> %#v, %v", amount, m, formatted, back, err)
		}
		// The canonical form only drops leading zeros and pads decimals.
		if strings.TrimLeft(formatted, "0") != strings.TrimLeft(canonicalPad(amount, currency), "0") {
			t.Fatalf("%q formatted as %q", amount, formatted)
		}
	})
}

// canonicalPad pads amount's decimals to the currency's exponent.
func canonicalPad(amount, currency string) string {
	exp, _ := CurrencyExponent(currency)
	if exp == 0 {
		return amount
	}
	whole, frac, _ := strings.Cut(amount, ".")
	return whole + "." + frac + strings.Repeat("0", exp-len(frac))
}

func FuzzMoneyJSON(f *testing.F) {
	for _, s := range []string{
		`{"amount":"12.34","currency":"EUR"}`,
		`{"amount":"1500","currency":"JPY"}`,
		`{"amount":"-1.00","currency":"EUR"}`,
		`{"amount":12.34,"currency":"EUR"}`,
		`{"AMOUNT":"1","Currency":"GBP","extra":true}`,
		`null`, `{}`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Money
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		if m == (Money{}) {
			return // null, which leaves the zero value
		}
		if m.Minor < 0 {
			t.Fatalf("accepted negative %#v from %s", m, data)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Money
		if err := json.Unmarshal(out, &back); err != nil || back != m {
			t.Fatalf("%s -> %#v -> %s -> %#v, %v", data, m, out, back, err)
		}
	})
}
