package platform_test

import (
	"testing"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi/spitest"
)

type fraudAnswer struct {
	Decision string `json:"decision"`
	Score    int    `json:"score"`
	Reason   string `json:"reason"`
}

// TestFraudSPIDecidesPaymentsThroughThePublicAPI is the SPI issue's
// acceptance: an app's own fraud check denies a payment with its reason;
// with the endpoint down and stand_in the payment completes and says so;
// with reject it is rejected and says why. App B's payments never reach
// app A's endpoint.
func TestFraudSPIDecidesPaymentsThroughThePublicAPI(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		a, _ := developerApp(t, n, doc, "fraud@solarworld.example")
		b, _ := developerApp(t, n, doc, "other@example.com")
		srv := spitest.New(t, fraudAnswer{Decision: "deny", Score: 93, Reason: "new foreign IBAN above threshold"})

		var reg struct{ ID, Status, Secret string }
		res := a.do("POST", "/v1/spi-registrations", "/v1/spi-registrations", map[string]any{
			"extension_point": "payments.fraud-check", "url": srv.URL, "scope": "app", "timeout_ms": 200,
		})
		if res.status != 201 {
			t.Fatalf("register SPI: %d %s", res.status, res.body)
		}
		res.decode(t, &reg)

		var accounts page
		a.do("GET", "/v1/accounts", "", nil).decode(t, &accounts)
		pay := func(c *client, from string) (p struct {
			ID, Status string
			Rejection  *struct{ Code, Reason string }
			FraudCheck struct {
				Decision, Reason, Provider string
				StandIn                    bool `json:"stand_in"`
			} `json:"fraud_check"`
		}) {
			t.Helper()
			res := c.do("POST", "/v1/payments", "/v1/payments", map[string]any{
				"debtor_account_id": from, "creditor": map[string]any{"iban": "FR1420041010050500013M02606", "name": "Unknown Shop"},
				"amount": map[string]any{"amount": "25.00", "currency": "EUR"}})
			if res.status != 201 {
				t.Fatalf("payment: %d %s", res.status, res.body)
			}
			res.decode(t, &p)
			return p
		}

		denied := pay(a, accounts.Data[0].ID)
		if denied.Status != "rejected" || denied.FraudCheck.Reason != "new foreign IBAN above threshold" || denied.FraudCheck.Provider == "" {
			t.Errorf("payment denied by the SPI = %+v", denied)
		}
		if srv.Hits() != 1 {
			t.Errorf("SPI hits = %d, want 1", srv.Hits())
		}

		var bAccounts page
		b.do("GET", "/v1/accounts", "", nil).decode(t, &bAccounts)
		if p := pay(b, bAccounts.Data[0].ID); p.Status != "completed" || p.FraudCheck.Provider != "builtin" {
			t.Errorf("app B's payment = %+v", p)
		}
		if srv.Hits() != 1 {
			t.Errorf("app A's SPI was called for app B's payment (hits %d)", srv.Hits())
		}

		srv.Set(spitest.Behaviour{Mode: spitest.Hang})
		standIn := pay(a, accounts.Data[0].ID)
		if standIn.Status != "completed" || !standIn.FraudCheck.StandIn {
			t.Errorf("payment with the SPI down and stand_in = %+v", standIn)
		}

		// The bank switches the registration to fail closed.
		if code := bankCall(t, n, "PATCH", "/spi-registrations/"+reg.ID, map[string]any{"on_failure": "reject"}, nil); code != 200 {
			t.Fatalf("configure with reject: %d", code)
		}
		rejected := pay(a, accounts.Data[0].ID)
		if rejected.Status != "rejected" || rejected.Rejection == nil || rejected.FraudCheck.Reason == "" {
			t.Errorf("payment with the SPI down and reject = %+v", rejected)
		}

		var audit struct {
			Data []struct {
				Outcome string `json:"outcome"`
				StandIn bool   `json:"stand_in"`
			} `json:"data"`
		}
		a.do("GET", "/v1/spi-registrations/"+reg.ID+"/invocations", "/v1/spi-registrations/{id}/invocations", nil).decode(t, &audit)
		if len(audit.Data) != 3 {
			t.Errorf("invocations recorded = %d, want 3: %+v", len(audit.Data), audit.Data)
		}
		if res := b.do("GET", "/v1/spi-registrations/"+reg.ID+"/invocations", "", nil); res.status != 404 {
			t.Errorf("another app reads the audit: %d", res.status)
		}
	})
}

// TestAnAppCannotLoosenTheBanksControlsThroughItsOwnSPIs replays issue 14,
// finding 3, through the public API. The bank's own fraud check denies; an
// app registers an approve-all fraud check for its own payments: the bank's
// check is still asked and its denial stands. The same app's approve-all
// credit decision answers "approve" with a limit of 0.00 for
// 1,000,000,000.00 EUR to a customer whose KYC was referred and who has no
// income: the loan is not approved and cannot be funded. The catalog names
// each point's combination rule.
func TestAnAppCannotLoosenTheBanksControlsThroughItsOwnSPIs(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		mallory, _ := developerApp(t, n, doc, "mallory@example.com")
		vendor, _ := developerApp(t, n, doc, "fraud@vendor.example")
		banks := spitest.New(t, fraudAnswer{Decision: "deny", Score: 95, Reason: "mule account"})
		approveAll := spitest.New(t, fraudAnswer{Decision: "approve", Score: 0, Reason: "everything is fine"})
		creditAll := spitest.New(t, map[string]any{"decision": "approve", "reason": "we approve everyone",
			"limit": map[string]any{"amount": "0.00", "currency": "EUR"}})

		register := func(c *client, point, url, scope string) string {
			t.Helper()
			var reg struct{ ID string }
			res := c.do("POST", "/v1/spi-registrations", "/v1/spi-registrations", map[string]any{"extension_point": point, "url": url, "scope": scope})
			if res.status != 201 {
				t.Fatalf("register %s: %d %s", point, res.status, res.body)
			}
			res.decode(t, &reg)
			return reg.ID
		}
		bankCheck := register(vendor, "payments.fraud-check", banks.URL, "bank")
		if code := bankCall(t, n, "POST", "/spi-registrations/"+bankCheck+"/activate", map[string]any{"on_failure": "reject"}, nil); code != 200 {
			t.Fatalf("activate the bank's fraud check: %d", code)
		}
		register(mallory, "payments.fraud-check", approveAll.URL, "app")
		register(mallory, "loans.credit-decision", creditAll.URL, "app")

		var accounts page
		mallory.do("GET", "/v1/accounts", "", nil).decode(t, &accounts)
		var p struct {
			Status     string
			Rejection  *struct{ Code string }
			FraudCheck struct{ Decision, Provider string } `json:"fraud_check"`
		}
		res := mallory.do("POST", "/v1/payments", "/v1/payments", map[string]any{
			"debtor_account_id": accounts.Data[0].ID, "creditor": map[string]any{"iban": "LT121000011101001000", "name": "Baltic Quick Trade UAB"},
			"amount": map[string]any{"amount": "25.00", "currency": "EUR"}})
		res.decode(t, &p)
		if res.status != 201 || p.Status != "rejected" || p.Rejection == nil || p.Rejection.Code != "fraud_denied" ||
			p.FraudCheck.Decision != "deny" || p.FraudCheck.Provider != bankCheck {
			t.Errorf("payment = %d %s, want rejected fraud_denied by %s", res.status, res.body, bankCheck)
		}
		if banks.Hits() != 1 || approveAll.Hits() != 1 {
			t.Errorf("the bank's fraud check was called %d times, the app's %d; want both once", banks.Hits(), approveAll.Hits())
		}

		var cust struct{ ID string }
		mallory.do("POST", "/v1/customers", "/v1/customers", map[string]any{
			"type": "person", "name": "Nobody Special", "date_of_birth": "1990-01-01", "email": "nobody@example.com",
			"address": map[string]any{"line1": "Nowhere 1", "city": "Utrecht", "postcode": "3511 AB", "country": "NL"},
		}).decode(t, &cust)
		var acc struct{ ID string }
		mallory.do("POST", "/v1/accounts", "", map[string]any{"customer_id": cust.ID, "product": "current", "currency": "EUR"}).decode(t, &acc)
		var kyc struct{ Result string }
		mallory.do("POST", "/v1/kyc-checks", "", map[string]any{"customer_id": cust.ID}).decode(t, &kyc)
		if kyc.Result != "refer" {
			t.Fatalf("kyc = %+v, want refer (no identity document)", kyc)
		}
		var loan struct {
			ID, Status string
			Decision   struct{ Provider, Reason string }
		}
		res = mallory.do("POST", "/v1/loan-applications", "/v1/loan-applications", map[string]any{
			"customer_id": cust.ID, "amount": map[string]any{"amount": "1000000000.00", "currency": "EUR"}, "term_months": 12,
			"purpose": "anything", "monthly_income": map[string]any{"amount": "0.00", "currency": "EUR"}})
		res.decode(t, &loan)
		if res.status != 201 || loan.Status == "approved" || creditAll.Hits() != 1 {
			t.Errorf("loan = %d %s (the app's credit decision asked %d times); want it not approved", res.status, res.body, creditAll.Hits())
		}
		var problem struct{ Code string }
		res = mallory.do("POST", "/v1/loan-applications/"+loan.ID+"/funding", "/v1/loan-applications/{id}/funding", map[string]any{"account_id": acc.ID})
		res.decode(t, &problem)
		if res.status != 409 || problem.Code != "loan_not_approved" {
			t.Errorf("funding = %d %s, want 409 loan_not_approved", res.status, res.body)
		}

		var catalog struct {
			Data []struct {
				Name    string
				Combine struct{ Rule string }
			}
		}
		mallory.do("GET", "/v1/extension-points", "/v1/extension-points", nil).decode(t, &catalog)
		rules := map[string]string{}
		for _, pt := range catalog.Data {
			rules[pt.Name] = pt.Combine.Rule
		}
		want := map[string]string{"payments.fraud-check": "strictest", "kyc.verify": "strictest", "loans.credit-decision": "tighten_only", "accounts.lookup": "merge"}
		for name, rule := range want {
			if rules[name] != rule {
				t.Errorf("catalog: %s combines %q, want %q", name, rules[name], rule)
			}
		}
	})
}
