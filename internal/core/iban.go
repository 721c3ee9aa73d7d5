package core

import (
	"fmt"
	"strings"

	"github.com/causewayhq/causeway"
)

// ibanLengths is the IBAN length per country for the SEPA area, from the
// SWIFT IBAN registry.
var ibanLengths = map[string]int{
	"AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24,
	"DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22,
	"GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
	"LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
	"NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24,
	"SM": 27, "VA": 22,
}

// SandboxBankCode is the bank code of the sandbox bank inside its Dutch-format
// IBANs: NLkk CWAY dddd dddd dd.
const SandboxBankCode = "CWAY"

// ValidateIBAN normalises s (drops spaces, upper-cases) and checks it is an
// IBAN of a supported country: two-letter country code, check digits 02-98,
// the country's length, only letters and digits, and ISO 7064 MOD 97-10.
// It returns the normalised IBAN or an EINVALID error with code invalid_iban.
func ValidateIBAN(s string) (string, error) {
	iban := normalizeIBAN(s)
	invalid := func(why string) (string, error) {
		return "", causeway.Errorf(causeway.EINVALID, "invalid_iban", "IBAN %q %s", s, why)
	}
	if len(iban) < 5 {
		return invalid("is too short")
	}
	country := iban[:2]
	if !isUpper(country[0]) || !isUpper(country[1]) {
		return invalid("does not start with a country code")
	}
	want, ok := ibanLengths[country]
	if !ok {
		return invalid("has an unsupported country code " + country)
	}
	if len(iban) != want {
		return invalid(fmt.Sprintf("has %d characters, %s IBANs have %d", len(iban), country, want))
	}
	if !isDigit(iban[2]) || !isDigit(iban[3]) {
		return invalid("has non-numeric check digits")
	}
	// 00, 01 and 99 are congruent to valid digits mod 97 but never issued.
	if check := iban[2:4]; check == "00" || check == "01" || check == "99" {
		return invalid("has impossible check digits " + check)
	}
	for i := 4; i < len(iban); i++ {
		if !isUpper(iban[i]) && !isDigit(iban[i]) {
			return invalid("contains characters other than letters and digits")
		}
	}
	if ibanMod97(iban[4:]+iban[:4]) != 1 {
		return invalid("has wrong check digits")
	}
	return iban, nil
}

// NewIBAN builds a valid IBAN from a country, a bank code (everything in the
// BBAN before the account number) and an account number, which is zero-padded
// to fill the country's length, and computes the check digits. It is meant
// for generated accounts and panics if the country is unsupported or the
// parts do not fit its length.
func NewIBAN(country, bankCode string, accountNumber uint64) string {
	country = strings.ToUpper(country)
	bankCode = strings.ToUpper(bankCode)
	length, ok := ibanLengths[country]
	if !ok {
		panic("core.NewIBAN: unsupported country " + country)
	}
	width := length - 4 - len(bankCode)
	account := fmt.Sprintf("%0*d", max(width, 0), accountNumber)
	if width <= 0 || len(account) != width {
		panic(fmt.Sprintf("core.NewIBAN: bank code %q and account %d do not fit a %s IBAN", bankCode, accountNumber, country))
	}
	bban := bankCode + account
	check := 98 - ibanMod97(bban+country+"00")
	return fmt.Sprintf("%s%02d%s", country, check, bban)
}

// SandboxIBAN returns the sandbox bank's IBAN for account number n, in Dutch
// format with bank code CWAY: NLkkCWAY followed by n as ten digits. It panics
// if n has more than ten digits.
func SandboxIBAN(n uint64) string {
	return NewIBAN("NL", SandboxBankCode, n)
}

// FormatIBAN normalises s and groups it by four characters for display:
// "NL91 ABNA 0417 1643 00". It does not validate.
func FormatIBAN(s string) string {
	iban := normalizeIBAN(s)
	var b strings.Builder
	for i := 0; i < len(iban); i++ {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(iban[i])
	}
	return b.String()
}

// normalizeIBAN drops spaces and upper-cases ASCII letters only, so that no
// Unicode case mapping (dotless ı to I) can turn foreign text into an IBAN.
func normalizeIBAN(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

// ibanMod97 returns the remainder mod 97 of s read as a number with letters
// replaced by 10..35, without building the (30+ digit) number.
func ibanMod97(s string) int {
	r := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	return r
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
