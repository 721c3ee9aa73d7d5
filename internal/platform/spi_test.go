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
