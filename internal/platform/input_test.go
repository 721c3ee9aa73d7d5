package platform_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

// problemBody is the part of a problem the input tests look at.
type problemBody struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
	} `json:"errors"`
}

// refused checks that res is a 422 problem with code (and, when location
// is not "", an error at location).
func refused(t *testing.T, what string, res response, code, location string) {
	t.Helper()
	var p problemBody
	json.Unmarshal(res.body, &p)
	ct := res.header.Get("Content-Type")
	if res.status != http.StatusUnprocessableEntity || p.Code != code || ct != "application/problem+json" {
		t.Errorf("%s: %d %s %.300s, want 422 %s", what, res.status, ct, res.body, code)
		return
	}
	if location != "" && (len(p.Errors) != 1 || p.Errors[0].Location != location) {
		t.Errorf("%s: errors %+v, want one at %s", what, p.Errors, location)
	}
}

// TestBadTextAndAmountsAreRefusedNeverAServerError is issue 14's finding 5
// through a running node: an amount past the maximum, NUL in any text
// field, text past its maximum length, and control characters in query and
// path parameters and headers are each a 422 problem with a stable code,
// on both runtimes, where they were 500s. Tab and line breaks pass only in
// a multi-line field.
func TestBadTextAndAmountsAreRefusedNeverAServerError(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		app, _ := developerApp(t, n, doc, "input@solarworld.example")
		bank := &client{t: t, base: n.URL, token: platformtest.AdminToken}
		anon := &client{t: t, base: n.URL, doc: doc}

		var accounts struct {
			Data []struct{ ID, Currency string } `json:"data"`
		}
		app.do("GET", "/v1/accounts", "/v1/accounts", nil).decode(t, &accounts)
		var acc, other string
		for _, a := range accounts.Data {
			if a.Currency == "EUR" && acc == "" {
				acc = a.ID
			} else if a.Currency == "EUR" && other == "" {
				other = a.ID
			}
		}
		if acc == "" || other == "" {
			t.Fatalf("want two seeded EUR accounts: %+v", accounts.Data)
		}
		eur := func(amount string) map[string]any { return map[string]any{"amount": amount, "currency": "EUR"} }
		payment := func(creditor map[string]any, reference string) map[string]any {
			return map[string]any{"debtor_account_id": acc, "creditor": creditor, "amount": eur("1.00"), "reference": reference}
		}
		customer := func(name string) map[string]any {
			return map[string]any{"type": "person", "name": name, "date_of_birth": "1980-02-29", "email": "maria@example.com",
				"address": map[string]any{"line1": "Zonnelaan 7", "city": "Utrecht", "postcode": "3511 AB", "country": "NL"}}
		}

		t.Run("amounts", func(t *testing.T) {
			refused(t, "deposit of MaxInt64 minor units", bank.do("POST", "/bank/v1/accounts/"+acc+"/deposits", "",
				map[string]any{"amount": eur("92233720368547758.07")}), "amount_too_large", "")
			refused(t, "payment over the maximum", app.do("POST", "/v1/payments", "/v1/payments",
				map[string]any{"debtor_account_id": acc, "creditor": map[string]any{"account_id": other},
					"amount": eur("100000000000.01")}), "amount_too_large", "")
		})

		t.Run("NUL in text fields", func(t *testing.T) {
			refused(t, "customer name", app.do("POST", "/v1/customers", "/v1/customers", customer("Maria\x00Jansen")),
				"invalid_text", "body.name")
			refused(t, "creditor name", app.do("POST", "/v1/payments", "/v1/payments",
				payment(map[string]any{"iban": "DE89370400440532013000", "name": "Solar\x00 GmbH"}, "panels")),
				"invalid_text", "body.creditor.name")
			refused(t, "reference", app.do("POST", "/v1/payments", "/v1/payments",
				payment(map[string]any{"account_id": other}, "invoice\x0042")), "invalid_text", "body.reference")
			dev := &client{t: t, base: n.URL, doc: doc}
			res := dev.do("POST", "/v1/developers", "/v1/developers",
				map[string]any{"email": "nul@solarworld.example", "password": "correct horse battery staple", "organization": "Solar"})
			var signedUp struct{ Token string }
			res.decode(t, &signedUp)
			dev.token = signedUp.Token
			refused(t, "app name", dev.do("POST", "/v1/apps", "/v1/apps",
				map[string]any{"name": "Solar\x00app", "scopes": []string{"accounts:read"}}), "invalid_text", "body.name")
			refused(t, "organization at sign-up", anon.do("POST", "/v1/developers", "/v1/developers",
				map[string]any{"email": "org@solarworld.example", "password": "correct horse battery staple", "organization": "Solar\x00World"}),
				"invalid_text", "body.organization")
			refused(t, "a member name", app.do("POST", "/v1/customers", "/v1/customers",
				map[string]any{"type": "person", "name\x00": "x"}), "invalid_text", "body")
		})

		t.Run("text past its maximum length", func(t *testing.T) {
			res := app.do("POST", "/v1/payments", "/v1/payments",
				payment(map[string]any{"iban": "DE89370400440532013000", "name": strings.Repeat("a", 100_000)}, "long"))
			refused(t, "100,000-character creditor name", res, "validation_failed", "body.creditor.name")
			if len(res.body) > 4000 {
				t.Errorf("the problem is %d bytes: it echoes the name", len(res.body))
			}
		})

		t.Run("query, path and header", func(t *testing.T) {
			refused(t, "NUL in a query parameter", app.do("GET", "/v1/accounts?customer_id=%00", "/v1/accounts", nil),
				"invalid_text", "query.customer_id")
			refused(t, "control character in a cursor", app.do("GET", "/v1/customers?cursor=a%01b", "/v1/customers", nil),
				"invalid_text", "query.cursor")
			refused(t, "NUL in a path parameter", app.do("GET", "/v1/accounts/acc%00x", "/v1/accounts/{id}", nil),
				"invalid_text", "path.id")
			refused(t, "invalid UTF-8 in a path parameter", bank.do("GET", "/bank/v1/customers/cus%FF", "", nil),
				"invalid_text", "path.id")
			bankPay := map[string]any{"debtor_account_id": acc, "creditor": map[string]any{"account_id": other}, "amount": eur("1.00")}
			refused(t, "tab in Idempotency-Key", bank.do("POST", "/bank/v1/payments", "", bankPay, "Idempotency-Key", "key\t1"),
				"invalid_text", "header.Idempotency-Key")
			refused(t, "invalid UTF-8 in Idempotency-Key", bank.do("POST", "/bank/v1/payments", "", bankPay, "Idempotency-Key", "key\xff"),
				"invalid_text", "header.Idempotency-Key")
		})

		t.Run("multi-line fields", func(t *testing.T) {
			eventType := func(typ, description string) map[string]any {
				return map[string]any{"type": typ, "description": description, "schema": map[string]any{"type": "object"}}
			}
			if res := bank.do("POST", "/bank/v1/event-types", "",
				eventType("branch.note.taken", "An officer took a note.\nIt may span lines,\r\n\tand be indented.")); res.status != http.StatusCreated {
				t.Errorf("tab and line breaks in a description: %d %s", res.status, res.body)
			}
			refused(t, "newline in an event type's name", bank.do("POST", "/bank/v1/event-types", "",
				eventType("branch.note\n.taken", "A note.")), "invalid_text", "body.type")
			refused(t, "NUL in a description", bank.do("POST", "/bank/v1/event-types", "",
				eventType("branch.note.kept", "A\x00note.")), "invalid_text", "body.description")
			refused(t, "tab in a customer name", app.do("POST", "/v1/customers", "/v1/customers", customer("Maria\tJansen")),
				"invalid_text", "body.name")
			refused(t, "newline in a creditor name", app.do("POST", "/v1/payments", "/v1/payments",
				payment(map[string]any{"iban": "DE89370400440532013000", "name": "Solar\nGmbH"}, "panels")),
				"invalid_text", "body.creditor.name")
		})
	})
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formPost GETs a portal page for its form token, then posts form to it
// with the token, and returns the status and body of the answer.
func formPost(t *testing.T, c *http.Client, pageURL string, form url.Values) (int, string) {
	t.Helper()
	res, err := c.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no form token on %s (%d)", pageURL, res.StatusCode)
	}
	form.Set("csrf", string(m[1]))
	res, err = c.PostForm(pageURL, form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b)
}

// TestPortalFormsRefuseControlCharactersWithAFormError: the portal's forms
// go to the same services as the API, and the same text rule guards them:
// NUL in the organization at sign-up or in an app's name is a 422 page
// naming the field, never a 500.
func TestPortalFormsRefuseControlCharactersWithAFormError(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		password := "correct horse battery staple"

		status, body := formPost(t, c, n.URL+"/signup", url.Values{
			"email": {"portal@solarworld.example"}, "password": {password}, "organization": {"Solar\x00World"}})
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, "form.organization") {
			t.Errorf("NUL in the organization: %d, want a 422 page naming form.organization:\n%.2000s", status, body)
		}

		status, _ = formPost(t, c, n.URL+"/signup", url.Values{
			"email": {"portal@solarworld.example"}, "password": {password}, "organization": {"SolarWorld"}})
		if status != http.StatusSeeOther {
			t.Fatalf("sign-up: %d, want 303", status)
		}
		status, body = formPost(t, c, n.URL+"/apps", url.Values{"name": {"Solar\x00app"}, "scope": {"accounts:read"}})
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, "form.name") {
			t.Errorf("NUL in an app name: %d, want a 422 page naming form.name:\n%.2000s", status, body)
		}
		status, _ = formPost(t, c, n.URL+"/apps", url.Values{"name": {"Solar app"}, "scope": {"accounts:read"}})
		if status >= 400 {
			t.Errorf("a clean app name: %d", status)
		}
	})
}
