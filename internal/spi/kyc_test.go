package spi_test

import (
	"context"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// At kyc.verify the bank's rules, the bank's provider and the app's own
// provider all count, and the worst result wins: fail, then refer, then
// pass. A provider that failed closed refers.
func TestTheStrictestKYCResultWins(t *testing.T) {
	type reply struct {
		result string // "" fails with 500
		policy string
	}
	for _, tt := range []struct {
		name      string
		document  string // "" makes the bank's own rules refer
		bank, app reply
		result    string
		by        string
	}{
		{"all pass", "NX12345678", reply{"pass", spi.OnFailureReject}, reply{"pass", spi.OnFailureReject}, "pass", "app"},
		{"bank refers, app passes", "NX12345678", reply{"refer", spi.OnFailureReject}, reply{"pass", spi.OnFailureReject}, "refer", "bank"},
		{"bank passes, app refers", "NX12345678", reply{"pass", spi.OnFailureReject}, reply{"refer", spi.OnFailureReject}, "refer", "app"},
		{"bank fails the customer, app refers", "NX12345678", reply{"fail", spi.OnFailureReject}, reply{"refer", spi.OnFailureReject}, "fail", "bank"},
		{"bank passes, app fails the customer", "NX12345678", reply{"pass", spi.OnFailureReject}, reply{"fail", spi.OnFailureReject}, "fail", "app"},
		{"bank's provider fails closed, app passes", "NX12345678", reply{"", spi.OnFailureReject}, reply{"pass", spi.OnFailureReject}, "refer", "bank"},
		{"bank's provider fails with next, app passes", "NX12345678", reply{"", spi.OnFailureNext}, reply{"pass", spi.OnFailureReject}, "pass", "app"},
		{"the bank's rules refer, both providers pass", "", reply{"pass", spi.OnFailureReject}, reply{"pass", spi.OnFailureReject}, "refer", "app"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newSandbox(t, storetest.OpenSQLite(t))
			endpoint := func(r reply, name string) *spitest.Server {
				srv := spitest.New(t, map[string]any{"result": r.result, "checks": []map[string]string{{"name": name, "result": r.result}}})
				if r.result == "" {
					srv.Set(spitest.Behaviour{Mode: spitest.Status, Status: 500})
				}
				return srv
			}
			bankSrv, appSrv := endpoint(tt.bank, "bank_idv"), endpoint(tt.app, "app_idv")
			bank := bankReg(t, b.s, "app_vendor", core.PointKYCVerify, bankSrv.URL, spi.Activation{OnFailure: tt.bank.policy})
			own, _ := appReg(t, b.s, "app_a", core.PointKYCVerify, appSrv.URL, spi.NewRegistration{OnFailure: tt.app.policy})
			c, _ := b.customer("app_a", tt.document, "1.00")

			v, err := b.bank.VerifyCustomer(context.Background(), auth.AppCaller("app_a"), c.ID)
			if err != nil {
				t.Fatal(err)
			}

			want := map[string]string{"bank": bank.ID, "app": own.ID}[tt.by]
			if v.Result != tt.result || v.Provider != want {
				t.Errorf("verification = %s by %s, want %s by %s (%s); checks %+v", v.Result, v.Provider, tt.result, want, tt.by, v.Checks)
			}
			names := map[string]bool{}
			for _, ch := range v.Checks {
				names[ch.Name] = true
			}
			if tt.bank.result != "" && !names["bank_idv"] || tt.app.result != "" && !names["app_idv"] || !names["sanctions"] {
				t.Errorf("checks = %+v, want the rules' and every answer's", v.Checks)
			}
			if stored, _ := b.bank.Customer(context.Background(), auth.AppCaller("app_a"), c.ID); stored.KYCStatus != tt.result {
				t.Errorf("kyc_status = %s, want %s", stored.KYCStatus, tt.result)
			}
			if bankSrv.Hits() != 1 || appSrv.Hits() != 1 {
				t.Errorf("hits: bank %d, app %d", bankSrv.Hits(), appSrv.Hits())
			}
		})
	}
}
