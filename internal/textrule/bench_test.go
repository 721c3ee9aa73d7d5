package textrule

import "testing"

// paymentBody is a typical request body: the rule reads every API request
// body once before its handler does.
var paymentBody = []byte(`{"debtor_account_id":"acc_01jqz6k8m0p2r4t6v8w0y2a4c6","creditor":{"iban":"DE89370400440532013000",` +
	`"name":"Solar Installers GmbH"},"amount":{"amount":"8500.00","currency":"EUR"},"reference":"invoice 42 – panels"}`)

func BenchmarkJSON(b *testing.B) {
	b.SetBytes(int64(len(paymentBody)))
	for b.Loop() {
		if err := JSON("body", paymentBody, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	for b.Loop() {
		if err := Check("body.creditor.name", "Solar Installers GmbH", SingleLine); err != nil {
			b.Fatal(err)
		}
	}
}
