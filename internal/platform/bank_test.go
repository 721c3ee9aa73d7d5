package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

func bankCall(t *testing.T, n *platformtest.Node, method, path string, body any, into any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, n.URL+"/bank/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+platformtest.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if into != nil {
		json.NewDecoder(res.Body).Decode(into)
	}
	return res.StatusCode
}

type accountPage struct {
	Data []struct {
		ID, IBAN, Currency, Product, CustomerID string
	} `json:"data"`
}

// TestSandboxBankServesTheBankAndPublishesEvents drives the sandbox bank
// through /bank/v1 on both runtimes: the seeded sandbox is there, a payment
// books both sides, its event reaches JetStream as a CloudEvent, bad input
// gets problems, and the ledger balances.
func TestSandboxBankServesTheBankAndPublishesEvents(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		var customers struct {
			Data []struct{ ID, Name, KYCStatus string } `json:"data"`
		}
		if code := bankCall(t, n, "GET", "/customers", nil, &customers); code != 200 || len(customers.Data) != 8 {
			t.Fatalf("seeded customers = %d (%d)", len(customers.Data), code)
		}
		var accounts accountPage
		bankCall(t, n, "GET", "/accounts?limit=200", nil, &accounts)
		if len(accounts.Data) < 8 {
			t.Fatalf("seeded accounts = %d", len(accounts.Data))
		}
		from, to := accounts.Data[0], accounts.Data[len(accounts.Data)-1]
		var before struct{ Booked struct{ Amount string } }
		bankCall(t, n, "GET", "/accounts/"+from.ID+"/balances", nil, &before)

		var pay struct {
			ID, Status string
			FraudCheck struct{ Decision string } `json:"fraud_check"`
		}
		code := bankCall(t, n, "POST", "/payments", map[string]any{
			"debtor_account_id": from.ID, "creditor": map[string]any{"account_id": to.ID},
			"amount": map[string]any{"amount": "1.23", "currency": "EUR"}, "reference": "test",
		}, &pay)
		if code != 201 || pay.Status != "completed" || pay.FraudCheck.Decision != "approve" {
			t.Fatalf("payment = %d %+v", code, pay)
		}
		var txns struct {
			Data []struct {
				Amount    struct{ Amount string }
				Direction string
			} `json:"data"`
		}
		bankCall(t, n, "GET", "/accounts/"+to.ID+"/transactions?limit=1", nil, &txns)
		if len(txns.Data) != 1 || txns.Data[0].Amount.Amount != "1.23" || txns.Data[0].Direction != "credit" {
			t.Errorf("creditor's newest transaction = %+v", txns.Data)
		}

		for _, tt := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"too many decimals", map[string]any{"debtor_account_id": from.ID, "creditor": map[string]any{"account_id": to.ID},
				"amount": map[string]any{"amount": "1.234", "currency": "EUR"}}, 422, "too_many_decimals"},
			{"bad iban", map[string]any{"debtor_account_id": from.ID, "creditor": map[string]any{"iban": "NL00CWAY0000000000", "name": "x"},
				"amount": map[string]any{"amount": "1.00", "currency": "EUR"}}, 422, "invalid_iban"},
			{"negative", map[string]any{"debtor_account_id": from.ID, "creditor": map[string]any{"account_id": to.ID},
				"amount": map[string]any{"amount": "-1.00", "currency": "EUR"}}, 422, ""},
			{"unknown account", map[string]any{"debtor_account_id": "acc_nope", "creditor": map[string]any{"account_id": to.ID},
				"amount": map[string]any{"amount": "1.00", "currency": "EUR"}}, 404, "account_not_found"},
		} {
			var p httpapi.Problem
			if code := bankCall(t, n, "POST", "/payments", tt.body, &p); code != tt.status || (tt.code != "" && p.Code != tt.code) {
				t.Errorf("%s: %d %s, want %d %s", tt.name, code, p.Code, tt.status, tt.code)
			}
		}

		var ledger struct{ Balanced bool }
		if bankCall(t, n, "GET", "/ledger", nil, &ledger); !ledger.Balanced {
			t.Error("ledger does not balance")
		}

		// The payment's event reaches the bus as a CloudEvent, once.
		ctx := context.Background()
		stream, err := n.Bus.JetStream().Stream(ctx, n.Bus.Stream("events"))
		if err != nil {
			t.Fatal(err)
		}
		cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		found := 0
		for found == 0 && time.Now().Before(deadline) {
			batch, err := cons.Fetch(50, jetstream.FetchMaxWait(500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			for m := range batch.Messages() {
				var ev cloudevents.Event
				if err := json.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatalf("not a CloudEvent: %v: %s", err, m.Data())
				}
				if ev.Type() == "payment.completed" && ev.Subject() == pay.ID {
					found++
					if m.Headers().Get("Nats-Msg-Id") != ev.ID() {
						t.Errorf("Nats-Msg-Id %q, event id %q", m.Headers().Get("Nats-Msg-Id"), ev.ID())
					}
					var data struct{ ID, Status string }
					ev.DataAs(&data)
					if data.ID != pay.ID || data.Status != "completed" {
						t.Errorf("event data = %+v", data)
					}
				}
			}
		}
		if found != 1 {
			t.Errorf("payment.completed events on the bus = %d, want 1", found)
		}
	})
}
