package core

import (
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
)

// officialIBANs are the example IBANs of the SWIFT IBAN registry, printed in
// groups of four.
var officialIBANs = []string{
	"DE89 3704 0044 0532 0130 00",
	"NL91 ABNA 0417 1643 00",
	"FR14 2004 1010 0505 0001 3M02 606",
	"ES91 2100 0418 4502 0005 1332",
	"IT60 X054 2811 1010 0000 0123 456",
	"BE68 5390 0754 7034",
	"AT61 1904 3002 3457 3201",
	"IE29 AIBK 9311 5212 3456 78",
	"PT50 0002 0123 1234 5678 9015 4",
	"FI21 1234 5600 0007 85",
	"LU28 0019 4006 4475 0000",
	"GB29 NWBK 6016 1331 9268 19",
	"CH93 0076 2011 6238 5295 7",
	"SE45 5000 0000 0583 9825 7466",
	"NO93 8601 1117 947",
	"DK50 0040 0440 1162 43",
	"PL61 1090 1014 0000 0712 1981 2874",
}

func TestValidateIBANAcceptsOfficialExamples(t *testing.T) {
	for _, iban := range officialIBANs {
		t.Run(iban, func(t *testing.T) {
			got, err := ValidateIBAN(iban)
			if err != nil {
				t.Fatalf("ValidateIBAN: %v", err)
			}
			if want := strings.ReplaceAll(iban, " ", ""); got != want {
				t.Errorf("normalised to %q, want %q", got, want)
			}
			if FormatIBAN(got) != iban {
				t.Errorf("FormatIBAN(%q) = %q, want %q", got, FormatIBAN(got), iban)
			}
			lower, err := ValidateIBAN(strings.ToLower(got))
			if err != nil || lower != got {
				t.Errorf("lower case: %q, %v", lower, err)
			}
		})
	}
}

func TestValidateIBANRejectsEveryOneDigitChange(t *testing.T) {
	for _, iban := range officialIBANs {
		norm := strings.ReplaceAll(iban, " ", "")
		for i := 2; i < len(norm); i++ {
			if !isDigit(norm[i]) {
				continue
			}
			for d := byte('0'); d <= '9'; d++ {
				if d == norm[i] {
					continue
				}
				changed := norm[:i] + string(d) + norm[i+1:]
				if _, err := ValidateIBAN(changed); causeway.ErrorCode(err) != "invalid_iban" {
					t.Errorf("%s accepted (changed position %d of %s)", changed, i, norm)
				}
			}
		}
	}
}

func TestValidateIBANRejectsAdjacentSwap(t *testing.T) {
	norm := "DE89370400440532013000"
	for i := 4; i+1 < len(norm); i++ {
		if norm[i] == norm[i+1] {
			continue
		}
		swapped := norm[:i] + string(norm[i+1]) + string(norm[i]) + norm[i+2:]
		if _, err := ValidateIBAN(swapped); err == nil {
			t.Errorf("%s accepted", swapped)
		}
	}
}

func TestValidateIBANRejectsMalformed(t *testing.T) {
	tests := []struct {
		name, iban string
	}{
		{"empty", ""},
		{"short", "NL91"},
		{"unknown country", "XX91ABNA0417164300"},
		{"digits as country", "1291ABNA0417164300"},
		{"too long", "NL91ABNA04171643000"},
		{"too short for country", "NL91ABNA041716430"},
		{"letters as check digits", "NLAAABNA0417164300"},
		{"punctuation", "NL91-ABNA-0417-1643-00"},
		{"non-ASCII", "NL91ABNA041716430ø"},
		{"dotless i folded by Unicode", "ıT60X0542811101000000123456"},
		{"tab", "NL91\tABNA0417164300"},
		// 99 is congruent to 02 mod 97, so only the explicit range check catches it.
		{"check digits 99", "GB99NWBK60161331926819"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ValidateIBAN(tt.iban)
			if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != "invalid_iban" {
				t.Errorf("ValidateIBAN(%q) = %v", tt.iban, err)
			}
		})
	}
}

func TestNewIBANBuildsValidIBANs(t *testing.T) {
	tests := []struct {
		country, bank string
		account       uint64
		want          string
	}{
		{"DE", "37040044", 532013000, "DE89370400440532013000"},
		{"NL", "ABNA", 417164300, "NL91ABNA0417164300"},
		{"GB", "NWBK601613", 31926819, "GB29NWBK60161331926819"},
		{"nl", "cway", 1, ""},
		{"IT", "X0542811101", 123456, "IT60X0542811101000000123456"},
	}
	for _, tt := range tests {
		got := NewIBAN(tt.country, tt.bank, tt.account)
		if tt.want != "" && got != tt.want {
			t.Errorf("NewIBAN(%s, %s, %d) = %s, want %s", tt.country, tt.bank, tt.account, got, tt.want)
		}
		if _, err := ValidateIBAN(got); err != nil {
			t.Errorf("NewIBAN(%s, %s, %d) = %s: %v", tt.country, tt.bank, tt.account, got, err)
		}
	}
}

func TestNewIBANPanicsWhenPartsDoNotFit(t *testing.T) {
	for _, tt := range []struct {
		country, bank string
		account       uint64
	}{
		{"XX", "ABCD", 1},
		{"NL", "CWAY", 10_000_000_000},
		{"NL", "CWAYCWAYCWAYCW", 1},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewIBAN(%s, %s, %d) did not panic", tt.country, tt.bank, tt.account)
				}
			}()
			NewIBAN(tt.country, tt.bank, tt.account)
		}()
	}
}

func TestSandboxIBANIsDutchCWAY(t *testing.T) {
	for _, n := range []uint64{0, 1, 42, 1234567890, 9_999_999_999} {
		iban := SandboxIBAN(n)
		if len(iban) != 18 || !strings.HasPrefix(iban, "NL") || iban[4:8] != "CWAY" {
			t.Errorf("SandboxIBAN(%d) = %s", n, iban)
		}
		if _, err := ValidateIBAN(iban); err != nil {
			t.Errorf("SandboxIBAN(%d): %v", n, err)
		}
	}
	if SandboxIBAN(1) == SandboxIBAN(2) {
		t.Error("accounts 1 and 2 share an IBAN")
	}
}

func TestFormatIBANGroupsByFour(t *testing.T) {
	tests := map[string]string{
		"nl91abna0417164300":     "NL91 ABNA 0417 1643 00",
		" NL91 ABNA 0417164300 ": "NL91 ABNA 0417 1643 00",
		"":                       "",
		"NL91":                   "NL91",
		"NL91A":                  "NL91 A",
	}
	for in, want := range tests {
		if got := FormatIBAN(in); got != want {
			t.Errorf("FormatIBAN(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzValidateIBAN(f *testing.F) {
	for _, s := range officialIBANs {
		f.Add(s)
	}
	f.Add("nl91abna0417164300")
	f.Add("GB99NWBK60161331926819")
	f.Add("ıT60X0542811101000000123456")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		iban, err := ValidateIBAN(s)
		if err != nil {
			if causeway.ErrorCode(err) != "invalid_iban" {
				t.Fatalf("error %v has the wrong code", err)
			}
			return
		}
		for _, again := range []string{iban, FormatIBAN(iban), strings.ToLower(iban)} {
			if got, err := ValidateIBAN(again); err != nil || got != iban {
				t.Fatalf("%q -> %q, but %q -> %q, %v", s, iban, again, got, err)
			}
		}
		if len(iban) != ibanLengths[iban[:2]] {
			t.Fatalf("%q has the wrong length", iban)
		}
		if rebuilt := withCheckDigits(iban); rebuilt != iban {
			t.Fatalf("check digits of %q recompute as %q", iban, rebuilt)
		}
	})
}

// withCheckDigits recomputes iban's check digits the way NewIBAN does.
func withCheckDigits(iban string) string {
	check := 98 - ibanMod97(iban[4:]+iban[:2]+"00")
	return iban[:2] + string(rune('0'+check/10)) + string(rune('0'+check%10)) + iban[4:]
}
