package core

import (
	"strings"
	"testing"
	"time"
)

var kycNow = time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)

func goodPerson() KYCSubject {
	return KYCSubject{
		Type:           CustomerPerson,
		Name:           "Sanne de Vries",
		DateOfBirth:    "1990-04-12",
		Email:          "sanne.devries@example.com",
		Phone:          "+31612345678",
		AddressLine1:   "Kerkstraat 12",
		City:           "Utrecht",
		Postcode:       "3511 AB",
		Country:        "NL",
		DocumentNumber: "NW1234567",
	}
}

func checkResult(o KYCOutcome, name string) KYCCheck {
	for _, c := range o.Checks {
		if c.Name == name {
			return c
		}
	}
	return KYCCheck{}
}

func TestRunKYCRulesPassesAGoodPersonAndBusiness(t *testing.T) {
	business := goodPerson()
	business.Type, business.Name, business.DateOfBirth = CustomerBusiness, "SolarWorld B.V.", ""
	for _, s := range []KYCSubject{goodPerson(), business} {
		o := RunKYCRules(s, kycNow)
		if o.Result != KYCPass {
			t.Errorf("%s: %+v", s.Name, o)
		}
		var names []string
		for _, c := range o.Checks {
			names = append(names, c.Name)
		}
		if got := strings.Join(names, ","); got != "required_fields,age,sanctions,document_number,email_format,country" {
			t.Errorf("checks run: %s", got)
		}
	}
}

func TestRunKYCRulesOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*KYCSubject)
		check  string // the check that decides
		result string // of that check and of the outcome
	}{
		{"missing email", func(s *KYCSubject) { s.Email = "" }, "required_fields", KYCFail},
		{"blank city", func(s *KYCSubject) { s.City = "  " }, "required_fields", KYCFail},
		{"person without birth date", func(s *KYCSubject) { s.DateOfBirth = "" }, "required_fields", KYCFail},
		{"unknown type", func(s *KYCSubject) { s.Type = "trust" }, "required_fields", KYCFail},
		{"seventeen", func(s *KYCSubject) { s.DateOfBirth = "2007-06-16" }, "age", KYCFail},
		{"eighteen today", func(s *KYCSubject) { s.DateOfBirth = "2007-06-15" }, "age", KYCPass},
		{"born in the future", func(s *KYCSubject) { s.DateOfBirth = "2030-01-01" }, "age", KYCFail},
		{"birth date not ISO", func(s *KYCSubject) { s.DateOfBirth = "15/06/1990" }, "age", KYCFail},
		{"impossible date", func(s *KYCSubject) { s.DateOfBirth = "1990-02-30" }, "age", KYCFail},
		{"aged 140", func(s *KYCSubject) { s.DateOfBirth = "1885-01-01" }, "age", KYCFail},
		{"sanctioned", func(s *KYCSubject) { s.Name = "Ivan Sanctionov" }, "sanctions", KYCFail},
		{"sanctioned, reordered and shouted", func(s *KYCSubject) { s.Name = "SANCTIONOV, Ivan" }, "sanctions", KYCFail},
		{"sanctioned without accents", func(s *KYCSubject) { s.Name = "Jose Ramon Sombra" }, "sanctions", KYCFail},
		{"sanctioned with decomposed accents", func(s *KYCSubject) { s.Name = "Jose\u0301 Ramo\u0301n Sombra" }, "sanctions", KYCFail},
		{"sanctioned, hyphen as space", func(s *KYCSubject) { s.Name = "helene ecran noir" }, "sanctions", KYCFail},
		{"sanctioned business", func(s *KYCSubject) { s.Name = "acme shell holdings" }, "sanctions", KYCFail},
		{"surname and one given name", func(s *KYCSubject) { s.Name = "Dmitri Restrictov" }, "sanctions", KYCRefer},
		{"listed name plus a middle name", func(s *KYCSubject) { s.Name = "Ivan Ivanovich Sanctionov" }, "sanctions", KYCRefer},
		{"business with another legal form", func(s *KYCSubject) { s.Name = "Acme Shell Ltd." }, "sanctions", KYCRefer},
		{"surname alone", func(s *KYCSubject) { s.Name = "Anna Sanctionov" }, "sanctions", KYCPass},
		{"given name alone", func(s *KYCSubject) { s.Name = "Ivan Petrov" }, "sanctions", KYCPass},
		{"no document", func(s *KYCSubject) { s.DocumentNumber = "" }, "document_number", KYCRefer},
		{"document too short", func(s *KYCSubject) { s.DocumentNumber = "AB123" }, "document_number", KYCFail},
		{"document too long", func(s *KYCSubject) { s.DocumentNumber = "AB12345678901" }, "document_number", KYCFail},
		{"document lower case", func(s *KYCSubject) { s.DocumentNumber = "nw1234567" }, "document_number", KYCFail},
		{"document one digit", func(s *KYCSubject) { s.DocumentNumber = "ABCDEFG1" }, "document_number", KYCFail},
		{"document with dash", func(s *KYCSubject) { s.DocumentNumber = "NW-123456" }, "document_number", KYCFail},
		{"document two digits", func(s *KYCSubject) { s.DocumentNumber = "ABCDE12" }, "document_number", KYCPass},
		{"email without domain dot", func(s *KYCSubject) { s.Email = "sanne@localhost" }, "email_format", KYCFail},
		{"email with display name", func(s *KYCSubject) { s.Email = "Sanne <sanne@example.com>" }, "email_format", KYCFail},
		{"email two at signs", func(s *KYCSubject) { s.Email = "a@b@example.com" }, "email_format", KYCFail},
		{"email plus tag", func(s *KYCSubject) { s.Email = "sanne+bank@mail.example.co.uk" }, "email_format", KYCPass},
		{"unknown country", func(s *KYCSubject) { s.Country = "XX" }, "country", KYCFail},
		{"alpha-3 country", func(s *KYCSubject) { s.Country = "NLD" }, "country", KYCFail},
		{"lower-case country", func(s *KYCSubject) { s.Country = "nl" }, "country", KYCPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := goodPerson()
			tt.edit(&s)
			o := RunKYCRules(s, kycNow)
			c := checkResult(o, tt.check)
			if c.Result != tt.result {
				t.Errorf("%s = %s (%s), want %s", tt.check, c.Result, c.Detail, tt.result)
			}
			if o.Result != tt.result {
				t.Errorf("outcome %s, want %s: %+v", o.Result, tt.result, o.Checks)
			}
		})
	}
}

func TestRunKYCRulesFailBeatsRefer(t *testing.T) {
	s := goodPerson()
	s.DocumentNumber = "" // refer
	s.Email = "not-email" // fail
	if o := RunKYCRules(s, kycNow); o.Result != KYCFail {
		t.Errorf("got %s", o.Result)
	}
}

func TestRunKYCRulesLeapDayBirthday(t *testing.T) {
	s := goodPerson()
	s.DateOfBirth = "2004-02-29"
	for _, tt := range []struct {
		now  time.Time
		want string
	}{
		{time.Date(2022, 2, 28, 23, 0, 0, 0, time.UTC), KYCFail},
		{time.Date(2022, 3, 1, 0, 0, 0, 0, time.UTC), KYCPass},
	} {
		if got := checkResult(RunKYCRules(s, tt.now), "age").Result; got != tt.want {
			t.Errorf("on %s: %s, want %s", tt.now.Format(time.DateOnly), got, tt.want)
		}
	}
}

func TestRunKYCRulesBusinessSkipsAge(t *testing.T) {
	s := goodPerson()
	s.Type, s.DateOfBirth = CustomerBusiness, "2020-01-01"
	if c := checkResult(RunKYCRules(s, kycNow), "age"); c.Result != KYCPass {
		t.Errorf("age = %+v", c)
	}
}

func TestNameTokensIgnoreCaseAccentsPunctuationAndOrder(t *testing.T) {
	tests := []struct{ a, b string }{
		{"José Ramón Sombra", "SOMBRA, jose ramon"},
		{"Hélène Écran-Noir", "Noir Ecran Helene"},
		{"Sean O'Brien", "OBRIEN SEAN"},
		{"Jürgen Groß", "jurgen gross"},
		{"Łukasz Żółć", "lukasz zolc"},
		{"Иван Петров", "петров иван"},
	}
	for _, tt := range tests {
		a, b := nameTokens(tt.a), nameTokens(tt.b)
		if strings.Join(a, " ") != strings.Join(b, " ") {
			t.Errorf("%q -> %v but %q -> %v", tt.a, a, tt.b, b)
		}
	}
}

func TestIsCountryCodeKnowsAllAssignedCodes(t *testing.T) {
	codes := strings.Fields(countryCodes)
	if len(codes) != 249 {
		t.Errorf("%d codes, ISO 3166-1 assigns 249", len(codes))
	}
	for i, c := range codes {
		if !IsCountryCode(c) {
			t.Errorf("%s rejected", c)
		}
		if i > 0 && codes[i-1] >= c {
			t.Errorf("%s out of order", c)
		}
	}
	for _, c := range []string{"", "N", "nl", "NLD", "UK", "EU", "XK", " NL", "L "} {
		if IsCountryCode(c) {
			t.Errorf("%q accepted", c)
		}
	}
}
