package core

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Customer types.
const (
	CustomerPerson   = "person"
	CustomerBusiness = "business"
)

// KYC results, of a single check and of a whole outcome.
const (
	KYCPass  = "pass"
	KYCFail  = "fail"
	KYCRefer = "refer" // a human must look
)

// KYCSubject is what the KYC rules look at: the customer as registered.
type KYCSubject struct {
	Type           string // person or business
	Name           string
	DateOfBirth    string // YYYY-MM-DD; persons only
	Email          string
	Phone          string
	AddressLine1   string
	City           string
	Postcode       string
	Country        string // ISO 3166-1 alpha-2
	DocumentNumber string // passport or ID card number; optional
}

// KYCCheck is the result of one rule: pass, fail or refer, and why.
type KYCCheck struct {
	Name   string `json:"name"`
	Result string `json:"result" enum:"pass,fail,refer"`
	Detail string `json:"detail"`
}

// KYCOutcome is the overall result and every check that led to it.
type KYCOutcome struct {
	Result string
	Checks []KYCCheck
}

// RunKYCRules runs the sandbox bank's rule-based KYC on s as of now. The
// checks, in order: required_fields, age (a person is 18 or older on now's
// date), sanctions (name against a built-in fictional list), document_number,
// email_format and country. The outcome fails if any check fails, is referred
// if any check is referred, and passes otherwise.
func RunKYCRules(s KYCSubject, now time.Time) KYCOutcome {
	checks := []KYCCheck{
		checkRequiredFields(s),
		checkAge(s, now),
		checkSanctions(s.Name),
		checkDocumentNumber(s.DocumentNumber),
		checkEmail(s.Email),
		checkCountry(s.Country),
	}
	result := KYCPass
	for _, c := range checks {
		if c.Result == KYCFail {
			result = KYCFail
			break
		}
		if c.Result == KYCRefer {
			result = KYCRefer
		}
	}
	return KYCOutcome{Result: result, Checks: checks}
}

func checkRequiredFields(s KYCSubject) KYCCheck {
	const name = "required_fields"
	var problems []string
	if s.Type != CustomerPerson && s.Type != CustomerBusiness {
		problems = append(problems, fmt.Sprintf("type must be %q or %q, got %q", CustomerPerson, CustomerBusiness, s.Type))
	}
	fields := []struct{ name, value string }{
		{"name", s.Name},
		{"email", s.Email},
		{"address_line1", s.AddressLine1},
		{"city", s.City},
		{"postcode", s.Postcode},
		{"country", s.Country},
	}
	if s.Type != CustomerBusiness {
		fields = append(fields, struct{ name, value string }{"date_of_birth", s.DateOfBirth})
	}
	var missing []string
	for _, f := range fields {
		if strings.TrimSpace(f.value) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "missing "+strings.Join(missing, ", "))
	}
	if len(problems) > 0 {
		return KYCCheck{name, KYCFail, strings.Join(problems, "; ")}
	}
	return KYCCheck{name, KYCPass, "all required fields present"}
}

// AdultAge is the age from which a person may be a customer.
const AdultAge = 18

func checkAge(s KYCSubject, now time.Time) KYCCheck {
	const name = "age"
	if s.Type == CustomerBusiness {
		return KYCCheck{name, KYCPass, "not applicable to a business"}
	}
	dob, err := time.Parse(time.DateOnly, s.DateOfBirth)
	if err != nil {
		return KYCCheck{name, KYCFail, fmt.Sprintf("date of birth %q is not a date in YYYY-MM-DD form", s.DateOfBirth)}
	}
	age, ok := ageOn(dob, now)
	switch {
	case !ok:
		return KYCCheck{name, KYCFail, "date of birth is in the future"}
	case age < AdultAge:
		return KYCCheck{name, KYCFail, fmt.Sprintf("aged %d, under %d", age, AdultAge)}
	case age > 130:
		return KYCCheck{name, KYCFail, fmt.Sprintf("aged %d, not plausible", age)}
	}
	return KYCCheck{name, KYCPass, fmt.Sprintf("aged %d", age)}
}

// ageOn returns the age in whole years of someone born on dob, on now's
// calendar date, and false if dob is after that date. Someone born on 29
// February has a birthday on 1 March in other years.
func ageOn(dob, now time.Time) (int, bool) {
	by, bm, bd := dob.Date()
	ny, nm, nd := now.Date()
	if ny < by || (ny == by && (nm < bm || (nm == bm && nd < bd))) {
		return 0, false
	}
	age := ny - by
	if nm < bm || (nm == bm && nd < bd) {
		age--
	}
	return age, true
}

// sanctionedParty is one entry on the sandbox sanctions list. Every name on
// it is made up.
type sanctionedParty struct {
	name    string
	surname string // part of name; empty for businesses
}

var sanctionsList = []sanctionedParty{
	{"Ivan Sanctionov", "Sanctionov"},
	{"Olga Frozenko", "Frozenko"},
	{"Viktor Embargov", "Embargov"},
	{"Dmitri Petrovich Restrictov", "Restrictov"},
	{"José Ramón Sombra", "Sombra"},
	{"Hélène Écran-Noir", "Écran-Noir"},
	{"Marek Zakázaný", "Zakázaný"},
	{"Acme Shell Holdings", ""},
	{"Frozen Assets Trading", ""},
	{"Nightfall Offshore Ventures", ""},
}

// legalForms are words that do not identify a business on their own, so a
// business name differing only in them is a partial match.
var legalForms = []string{
	"ag", "bv", "co", "company", "corp", "gmbh", "group", "holding", "holdings",
	"inc", "limited", "llc", "ltd", "nv", "plc", "sa", "sarl", "spa", "srl", "trading",
}

// checkSanctions screens a name against the list: the same words in any
// order, case, accents or punctuation fail; a person's surname with one of
// their given names, or a business's distinctive words, refer.
func checkSanctions(name string) KYCCheck {
	const check = "sanctions"
	words := nameTokens(name)
	if len(words) == 0 {
		return KYCCheck{check, KYCRefer, "no name to screen"}
	}
	var partial []string
	for _, party := range sanctionsList {
		listed := nameTokens(party.name)
		if slices.Equal(words, listed) { // both sorted and distinct
			return KYCCheck{check, KYCFail, fmt.Sprintf("name matches sanctions list entry %q", party.name)}
		}
		if partialSanctionsMatch(words, listed, party) {
			partial = append(partial, strconv.Quote(party.name))
		}
	}
	if len(partial) > 0 {
		return KYCCheck{check, KYCRefer, "name partly matches sanctions list entries " + strings.Join(partial, ", ")}
	}
	return KYCCheck{check, KYCPass, "no match on the sanctions list"}
}

func partialSanctionsMatch(words, listed []string, party sanctionedParty) bool {
	if party.surname == "" {
		distinctive := slices.DeleteFunc(slices.Clone(listed), func(w string) bool {
			return slices.Contains(legalForms, w)
		})
		return len(distinctive) > 0 && containsAll(words, distinctive)
	}
	surname := nameTokens(party.surname)
	if !containsAll(words, surname) {
		return false
	}
	for _, w := range listed {
		if !slices.Contains(surname, w) && slices.Contains(words, w) {
			return true
		}
	}
	return false
}

// nameTokens lower-cases name, folds Latin accents to ASCII, drops apostrophes
// and full stops (O'Brien, J.R.) and splits on everything else that is not a
// letter or digit. It returns the distinct words, sorted.
func nameTokens(name string) []string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r == '\'' || r == '’' || r == '`' || r == '.':
			continue
		case unicode.Is(unicode.Mn, r):
			continue // a combining accent of a decomposed letter
		case accentFolds[r] != "":
			b.WriteString(accentFolds[r])
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			b.WriteByte(' ')
		}
	}
	words := strings.Fields(b.String())
	slices.Sort(words)
	return slices.Compact(words)
}

// accentFolds maps lower-case Latin letters with diacritics to ASCII.
var accentFolds = func() map[rune]string {
	groups := map[string]string{
		"a": "àáâãäåāăą", "ae": "æ", "c": "çćĉċč", "d": "ďđð",
		"e": "èéêëēĕėęě", "g": "ĝğġģ", "h": "ĥħ", "i": "ìíîïĩīĭįı", "ij": "ĳ",
		"j": "ĵ", "k": "ķ", "l": "ĺļľŀł", "n": "ñńņňŉ", "o": "òóôõöøōŏő",
		"oe": "œ", "r": "ŕŗř", "s": "śŝşšș", "ss": "ß", "t": "ţťŧț",
		"th": "þ", "u": "ùúûüũūŭůűų", "w": "ŵ", "y": "ýÿŷ", "z": "źżž",
	}
	folds := make(map[rune]string)
	for ascii, accented := range groups {
		for _, r := range accented {
			folds[r] = ascii
		}
	}
	return folds
}()

func containsAll(haystack, needles []string) bool {
	for _, n := range needles {
		if !slices.Contains(haystack, n) {
			return false
		}
	}
	return true
}

func checkDocumentNumber(doc string) KYCCheck {
	const name = "document_number"
	if doc == "" {
		return KYCCheck{name, KYCRefer, "no identity document given"}
	}
	digits := 0
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if !isUpper(c) && !isDigit(c) {
			return KYCCheck{name, KYCFail, "document number must be upper-case letters and digits"}
		}
		if isDigit(c) {
			digits++
		}
	}
	if len(doc) < 6 || len(doc) > 12 {
		return KYCCheck{name, KYCFail, fmt.Sprintf("document number has %d characters, want 6 to 12", len(doc))}
	}
	if digits < 2 {
		return KYCCheck{name, KYCFail, "document number has fewer than two digits"}
	}
	return KYCCheck{name, KYCPass, "document number well-formed"}
}

func checkEmail(email string) KYCCheck {
	const name = "email_format"
	if !ValidEmail(email) {
		return KYCCheck{name, KYCFail, fmt.Sprintf("%q is not an email address", email)}
	}
	return KYCCheck{name, KYCPass, "email address well-formed"}
}

// ValidEmail reports whether s is a plain addr-spec email address
// (local@domain.tld) of the kind people type into sign-up forms: no display
// names, comments, quoted local parts or IP-literal domains.
func ValidEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if len(s) > 254 || at < 1 || at > 64 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !isDigit(c) && !isASCIILetter(c) && !strings.ContainsRune(".!#$%&'*+/=?^_`{|}~-", rune(c)) {
			return false
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isDigit(l[i]) && !isASCIILetter(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	for i := 0; i < len(tld); i++ {
		if !isASCIILetter(tld[i]) {
			return false
		}
	}
	return len(tld) >= 2
}

func isASCIILetter(c byte) bool { return isUpper(c) || (c >= 'a' && c <= 'z') }

func checkCountry(country string) KYCCheck {
	const name = "country"
	code := strings.ToUpper(strings.TrimSpace(country))
	if !IsCountryCode(code) {
		return KYCCheck{name, KYCFail, fmt.Sprintf("%q is not an ISO 3166-1 alpha-2 country code", country)}
	}
	return KYCCheck{name, KYCPass, "country " + code}
}

// IsCountryCode reports whether code is an officially assigned ISO 3166-1
// alpha-2 code, in upper case.
func IsCountryCode(code string) bool {
	if len(code) != 2 || !isUpper(code[0]) || !isUpper(code[1]) {
		return false
	}
	return strings.Contains(countryCodes, " "+code+" ")
}

// countryCodes lists the 249 officially assigned ISO 3166-1 alpha-2 codes,
// space-separated and padded so that a lookup of " XX " is exact.
const countryCodes = " " +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"YE YT " +
	"ZA ZM ZW "
