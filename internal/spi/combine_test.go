package spi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// sandbox is the real sandbox bank with the invoker plugged in as its
// extensions, as the platform wires them.
type sandbox struct {
	t    *testing.T
	s    *spi.Service
	bank *core.Bank
}

func newSandbox(t *testing.T, db *store.DB) *sandbox {
	t.Helper()
	s := newService(t, db)
	if err := core.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	bank := core.New(db, core.Options{})
	bank.SetExtensions(s)
	return &sandbox{t: t, s: s, bank: bank}
}

func money(t *testing.T, amount string) core.Money {
	t.Helper()
	m, err := core.ParseMoney(amount, "EUR")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// customer creates a customer of app with a funded current account. With
// a document number the bank's KYC rules pass; without, they refer.
func (b *sandbox) customer(app, document, deposit string) (*core.Customer, *core.Account) {
	t := b.t
	t.Helper()
	ctx := context.Background()
	actor := auth.AppCaller(app)
	c, err := b.bank.CreateCustomer(ctx, actor, core.NewCustomer{Type: "person", Name: "Ada Lovelace", DateOfBirth: "1985-04-12",
		Email: "ada@example.com", DocumentNumber: document,
		Address: core.Address{Line1: "Keizersgracht 1", City: "Amsterdam", Postcode: "1015 CJ", Country: "NL"}})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := b.bank.OpenAccount(ctx, actor, core.NewAccount{CustomerID: c.ID, Product: "current", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.bank.Deposit(ctx, auth.BankProcess(), acc.ID, money(t, deposit), "salary"); err != nil {
		t.Fatal(err)
	}
	return c, acc
}

func (b *sandbox) pay(app, from, amount string) *core.Payment {
	b.t.Helper()
	p, err := b.bank.CreatePayment(context.Background(), auth.AppCaller(app), core.NewPayment{DebtorAccountID: from,
		Creditor: core.Creditor{IBAN: "LT121000011101001000", Name: "Baltic Quick Trade UAB"}, Amount: money(b.t, amount)})
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

func (b *sandbox) apply(app, customerID, amount string, months int, income string) *core.LoanApplication {
	b.t.Helper()
	l, err := b.bank.ApplyForLoan(context.Background(), auth.AppCaller(app), core.NewLoanApplication{
		CustomerID: customerID, Amount: money(b.t, amount), TermMonths: months, Purpose: "car", MonthlyIncome: money(b.t, income)})
	if err != nil {
		b.t.Fatal(err)
	}
	return l
}

// The attack of issue 14, finding 3: the bank's own fraud check denies; an
// app registers an approve-all endpoint for its own payments. The bank's
// check is still asked, and its denial stands.
func TestAnAppsApproveAllCannotOverrideTheBanksFraudDenial(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newSandbox(t, db)
		banks := spitest.New(t, fraud{Decision: "deny", Score: 95, Reason: "mule account"})
		approveAll := spitest.New(t, approve(0, "everything is fine"))
		bankCheck := bankReg(t, b.s, "app_fraud_vendor", core.PointFraudCheck, banks.URL, spi.Activation{OnFailure: spi.OnFailureReject})
		appReg(t, b.s, "app_mallory", core.PointFraudCheck, approveAll.URL, spi.NewRegistration{})
		_, from := b.customer("app_mallory", "NX12345678", "5000.00")

		p := b.pay("app_mallory", from.ID, "2000.00")

		if p.Status != core.PaymentRejected || p.Rejection == nil || p.Rejection.Code != "fraud_denied" {
			t.Errorf("payment = %+v, rejection %+v: want rejected fraud_denied", p, p.Rejection)
		}
		if f := p.FraudCheck; f.Decision != core.FraudDeny || f.Provider != bankCheck.ID || f.Reason != "mule account" || f.StandIn {
			t.Errorf("fraud check = %+v, want the bank's denial", f)
		}
		if banks.Hits() != 1 || approveAll.Hits() != 1 {
			t.Errorf("the bank's endpoint was called %d times, the app's %d; want both once", banks.Hits(), approveAll.Hits())
		}
	})
}

// At payments.fraud-check every registration is asked, the bank's and the
// calling app's own, and the strictest decision wins: deny, then review,
// then approve. A registration that failed closed (reject) counts as a
// denial; one that failed with stand_in counts as the stand-in (approve);
// one that failed with next does not count. Of equal decisions a failure
// shows before a stand-in before an answer, then the one asked first.
func TestTheStrictestFraudDecisionWins(t *testing.T) {
	deny := fraud{Decision: "deny", Score: 90, Reason: "mule account"}
	review := fraud{Decision: "review", Score: 60, Reason: "unusual"}
	fine := approve(5, "fine")
	// side is a registration's endpoint: an answer, or failing with 500
	// under a policy.
	type side struct {
		answer fraud
		fails  string // the policy of a failing endpoint; "" answers
	}
	for _, tt := range []struct {
		name      string
		bank, app side
		decision  string // of the combined answer; "" when failed
		by        string // "bank" or "app"
		standIn   bool
	}{
		{"bank denies, app approves", side{answer: deny}, side{answer: fine}, "deny", "bank", false},
		{"bank approves, app denies", side{answer: fine}, side{answer: deny}, "deny", "app", false},
		{"bank reviews, app approves", side{answer: review}, side{answer: fine}, "review", "bank", false},
		{"bank approves, app reviews", side{answer: fine}, side{answer: review}, "review", "app", false},
		{"bank reviews, app denies", side{answer: review}, side{answer: deny}, "deny", "app", false},
		{"both approve: the app's own was asked first", side{answer: fine}, side{answer: fine}, "approve", "app", false},
		{"bank fails closed, app approves", side{fails: spi.OnFailureReject}, side{answer: fine}, "", "bank", false},
		{"bank denies, app fails closed: the failure shows", side{answer: deny}, side{fails: spi.OnFailureReject}, "", "app", false},
		{"bank stands in, app approves: the stand-in shows", side{fails: spi.OnFailureStandIn}, side{answer: fine}, "approve", "bank", true},
		{"bank stands in, app reviews", side{fails: spi.OnFailureStandIn}, side{answer: review}, "review", "app", false},
		{"bank fails with next, app approves", side{fails: spi.OnFailureNext}, side{answer: fine}, "approve", "app", false},
		{"bank denies, app fails with next", side{answer: deny}, side{fails: spi.OnFailureNext}, "deny", "bank", false},
		{"both fail with next: the stand-in, as with one", side{fails: spi.OnFailureNext}, side{fails: spi.OnFailureNext}, "approve", "bank", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t, storetest.OpenSQLite(t))
			endpoint := func(sd side) *spitest.Server {
				srv := spitest.New(t, sd.answer)
				if sd.fails != "" {
					srv.Set(spitest.Behaviour{Mode: spitest.Status, Status: 500})
				}
				return srv
			}
			policy := func(sd side) string {
				if sd.fails != "" {
					return sd.fails
				}
				return spi.OnFailureReject
			}
			bankSrv, appSrv := endpoint(tt.bank), endpoint(tt.app)
			bank := bankReg(t, s, "app_vendor", core.PointFraudCheck, bankSrv.URL, spi.Activation{OnFailure: policy(tt.bank)})
			own, _ := appReg(t, s, "app_a", core.PointFraudCheck, appSrv.URL, spi.NewRegistration{OnFailure: policy(tt.app)})

			a := call(t, s, "app_a")

			want := map[string]string{"bank": bank.ID, "app": own.ID}[tt.by]
			if !a.Answered || a.Provider != want || a.StandIn != tt.standIn || a.Failed != (tt.decision == "") {
				t.Errorf("answer = %+v, want provider %s (%s), stand-in %v, failed %v", a, want, tt.by, tt.standIn, tt.decision == "")
			}
			if tt.decision != "" && decode(t, a.Body).Decision != tt.decision {
				t.Errorf("decision = %s, want %s", a.Body, tt.decision)
			}
			if bankSrv.Hits() != 1 || appSrv.Hits() != 1 {
				t.Errorf("hits: bank %d, app %d; want every registration asked once", bankSrv.Hits(), appSrv.Hits())
			}
		})
	}
}

// The whole call at a point whose registrations are asked at once is
// bounded by the point's maximum, not by the sum of their deadlines: three
// registrations whose deadlines add up to more than the maximum are each
// given their own in full.
func TestRegistrationsAskedAtOnceEachGetTheirWholeDeadline(t *testing.T) {
	s := newService(t, storetest.OpenSQLite(t))
	if _, err := s.DefinePoint(context.Background(), spi.NewPoint{
		Name: "test.strict", RequestSchema: json.RawMessage(`{}`),
		ResponseSchema:   json.RawMessage(`{"type":"object","required":["verdict"],"properties":{"verdict":{"enum":["no","maybe","yes"]}}}`),
		DefaultTimeoutMS: 300, MaxTimeoutMS: 600, StandIn: json.RawMessage(`{"verdict":"maybe"}`),
		Combine: spi.Combination{Rule: spi.CombineStrictest, Field: "verdict", Order: []string{"no", "maybe", "yes"}},
	}); err != nil {
		t.Fatal(err)
	}
	hang := spitest.New(t, nil)
	hang.Set(spitest.Behaviour{Mode: spitest.Hang})
	var regs []*spi.Registration
	for i := range 3 {
		regs = append(regs, bankReg(t, s, "app_a", "test.strict", hang.URL,
			spi.Activation{TimeoutMS: 300, OnFailure: spi.OnFailureNext, Priority: priority(i)}))
	}
	a, err := s.Invoke(context.Background(), "test.strict", "", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !a.StandIn || string(a.Body) != `{"verdict":"maybe"}` || !strings.Contains(a.Reason, "none of 3 registrations answered") {
		t.Errorf("answer = %+v", a)
	}
	if hang.Hits() != 3 {
		t.Errorf("endpoint hit %d times, want 3: every registration asked", hang.Hits())
	}
	for _, r := range regs {
		if inv := invocations(t, s, r.ID); len(inv) != 1 || !strings.Contains(inv[0].FailureReason, "no answer within the deadline of 300ms") {
			t.Errorf("audit of %s = %+v, want its own 300ms deadline in full", r.ID, inv)
		}
	}
}

// At accounts.lookup the insights of every reply are merged, each marked
// with the registration that gave it; a registration whose policy gave the
// stand-in adds its (empty) stand-in, one that failed with next nothing.
func TestLookupMergesEveryRepliesInsightsMarkedWithTheirProvider(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		a := newAPI(t, s)
		insight := func(title string) map[string]any {
			return map[string]any{"insights": []map[string]any{{"kind": "life_event", "title": title, "confidence": 0.5}}}
		}
		vendor := spitest.New(t, map[string]any{"insights": []map[string]any{
			{"kind": "life_event", "title": "Moved house"}, {"kind": "employment", "title": "New job"}}})
		ownSrv := spitest.New(t, insight("Bought solar panels"))
		down := spitest.New(t, nil)
		down.Set(spitest.Behaviour{Mode: spitest.Status, Status: 503})
		standing := spitest.New(t, nil)
		standing.Set(spitest.Behaviour{Mode: spitest.Hang})
		r1 := bankReg(t, s, "app_vendor", core.PointAccountsLookup, vendor.URL, spi.Activation{Priority: priority(1)})
		bankReg(t, s, "app_down", core.PointAccountsLookup, down.URL, spi.Activation{OnFailure: spi.OnFailureNext, Priority: priority(2)})
		r3 := bankReg(t, s, "app_slow", core.PointAccountsLookup, standing.URL, spi.Activation{TimeoutMS: 50, OnFailure: spi.OnFailureStandIn, Priority: priority(3)})
		own, _ := appReg(t, s, "app_officer", core.PointAccountsLookup, ownSrv.URL, spi.NewRegistration{})

		status, raw := a.do(t, "", http.MethodPost, "/bank/v1/extension-points/accounts.lookup/invoke", "/bank/v1/extension-points/{name}/invoke",
			map[string]any{"app_id": "app_officer", "payload": map[string]any{"customer": map[string]any{"id": "cus_1"}}})
		if status != http.StatusOK {
			t.Fatalf("invoke: %d %s", status, raw)
		}
		res := into[struct {
			spi.InvokeResult
			Body struct {
				Insights []struct{ Title, Provider string }
			} `json:"body"`
		}](t, raw)
		got := map[string]string{}
		for _, in := range res.Body.Insights {
			got[in.Title] = in.Provider
		}
		want := map[string]string{"Bought solar panels": own.ID, "Moved house": r1.ID, "New job": r1.ID}
		if len(got) != len(want) || len(res.Body.Insights) != 3 {
			t.Errorf("insights = %+v, want %v", res.Body.Insights, want)
		}
		for title, provider := range want {
			if got[title] != provider {
				t.Errorf("insight %q from %q, want %s", title, got[title], provider)
			}
		}
		if !res.Answered || res.Failed || res.StandIn || res.Provider != own.ID+","+r1.ID+","+r3.ID {
			t.Errorf("answer = %s", raw)
		}
		if len(res.Replies) != 3 || res.Replies[0].Scope != spi.ScopeApp || res.Replies[1].Provider != r1.ID ||
			!res.Replies[2].StandIn || res.Replies[2].Provider != r3.ID {
			t.Errorf("replies = %+v", res.Replies)
		}
	})
}

// The catalog names each point's combination rule.
func TestTheCatalogNamesHowEachPointsAnswersCombine(t *testing.T) {
	a := newAPI(t, newService(t, storetest.OpenSQLite(t)))
	status, raw := a.do(t, "", http.MethodGet, "/bank/v1/extension-points", "/bank/v1/extension-points", nil)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, raw)
	}
	rules := map[string]spi.Combination{}
	for _, p := range into[page.Page[spi.Point]](t, raw).Data {
		rules[p.Name] = p.Combine
	}
	for name, want := range map[string]string{
		core.PointFraudCheck: spi.CombineStrictest, core.PointKYCVerify: spi.CombineStrictest,
		core.PointCreditDecision: spi.CombineTightenOnly, core.PointAccountsLookup: spi.CombineMerge,
	} {
		if rules[name].Rule != want {
			t.Errorf("%s combines %+v, want %s", name, rules[name], want)
		}
	}
	if c := rules[core.PointFraudCheck]; c.Field != "decision" || strings.Join(c.Order, ",") != "deny,review,approve" || c.FailedAs != "deny" {
		t.Errorf("fraud-check combination = %+v", c)
	}
	if c := rules[core.PointKYCVerify]; c.Field != "result" || strings.Join(c.Order, ",") != "fail,refer,pass" || c.FailedAs != "refer" {
		t.Errorf("kyc.verify combination = %+v", c)
	}
}

// A point the bank defines declares how its answers combine: first by
// default (as every point before), strictest or merge, checked against its
// stand-in; tighten_only is the built-in credit decision's alone.
func TestTheBankDefinesHowAPointsAnswersCombine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		a := newAPI(t, s)
		point := func(name string, combine any) map[string]any {
			p := map[string]any{
				"name": name, "request_schema": json.RawMessage(`{}`),
				"response_schema":    json.RawMessage(`{"type":"object","required":["allow"],"properties":{"allow":{"enum":["no","ask","yes"]},"notes":{"type":"array"}}}`),
				"default_timeout_ms": 500, "max_timeout_ms": 1000,
				"stand_in": json.RawMessage(`{"allow":"ask","notes":[]}`),
			}
			if combine != nil {
				p["combine"] = combine
			}
			return p
		}
		for _, tt := range []struct {
			name    string
			combine any
		}{
			{"unknown rule", map[string]any{"rule": "loosest"}},
			{"tighten_only", map[string]any{"rule": "tighten_only"}},
			{"strictest without order", map[string]any{"rule": "strictest", "field": "allow"}},
			{"strictest, stand-in not in order", map[string]any{"rule": "strictest", "field": "allow", "order": []string{"no", "yes"}}},
			{"strictest, repeated value", map[string]any{"rule": "strictest", "field": "allow", "order": []string{"no", "no", "ask"}}},
			{"strictest, failed_as not in order", map[string]any{"rule": "strictest", "field": "allow", "order": []string{"no", "ask", "yes"}, "failed_as": "never"}},
			{"merge of a field that is not an array", map[string]any{"rule": "merge", "field": "allow"}},
			{"first with a field", map[string]any{"rule": "first", "field": "allow"}},
		} {
			status, raw := a.do(t, "", http.MethodPost, "/bank/v1/extension-points", "/bank/v1/extension-points", point("test.refused", tt.combine))
			if p := into[problem](t, raw); status != http.StatusUnprocessableEntity || (p.Code != "invalid_combine" && p.Code != "validation_failed") {
				t.Errorf("%s: %d %s", tt.name, status, raw)
			}
		}

		define := func(name string, combine any) spi.Point {
			t.Helper()
			status, raw := a.do(t, "", http.MethodPost, "/bank/v1/extension-points", "/bank/v1/extension-points", point(name, combine))
			if status != http.StatusCreated {
				t.Fatalf("define %s: %d %s", name, status, raw)
			}
			return into[spi.Point](t, raw)
		}
		if p := define("test.default", nil); p.Combine.Rule != spi.CombineFirst {
			t.Errorf("default combination = %+v, want first", p.Combine)
		}
		define("test.strict", map[string]any{"rule": "strictest", "field": "allow", "order": []string{"no", "ask", "yes"}})
		define("test.merged", map[string]any{"rule": "merge", "field": "notes"})
		// Read back from the database, as another node would.
		fresh := newService(t, db)
		for name, want := range map[string]string{"test.default": spi.CombineFirst, "test.strict": spi.CombineStrictest, "test.merged": spi.CombineMerge} {
			if p, err := fresh.Point(context.Background(), name); err != nil || p.Combine.Rule != want {
				t.Errorf("%s read back: %+v, %v; want %s", name, p, err, want)
			}
		}

		yes := spitest.New(t, map[string]any{"allow": "yes", "notes": []string{"long-standing customer"}})
		no := spitest.New(t, map[string]any{"allow": "no", "notes": []map[string]any{{"text": "limit reached"}}})
		invoke := func(point string) spi.InvokeResult {
			t.Helper()
			status, raw := a.do(t, "", http.MethodPost, "/bank/v1/extension-points/"+point+"/invoke", "/bank/v1/extension-points/{name}/invoke",
				map[string]any{"app_id": "app_a", "payload": map[string]any{}})
			if status != http.StatusOK {
				t.Fatalf("invoke %s: %d %s", point, status, raw)
			}
			return into[spi.InvokeResult](t, raw)
		}
		for _, point := range []string{"test.default", "test.strict", "test.merged"} {
			appReg(t, s, "app_a", point, yes.URL, spi.NewRegistration{})
			bankReg(t, s, "app_b", point, no.URL, spi.Activation{})
		}
		// first: the app's own answers and the bank's is not asked.
		hits := no.Hits()
		if r := invoke("test.default"); string(r.Body) != `{"allow":"yes","notes":["long-standing customer"]}` || no.Hits() != hits {
			t.Errorf("first: %+v, bank's endpoint asked %d times", r, no.Hits()-hits)
		}
		// strictest: both are asked and "no" wins.
		if r := invoke("test.strict"); string(r.Body) != `{"allow":"no","notes":[{"text":"limit reached"}]}` || len(r.Replies) != 2 {
			t.Errorf("strictest: %s, %+v", r.Body, r.Replies)
		}
		// merge: both notes, the object one marked with its provider.
		r := invoke("test.merged")
		var body struct {
			Notes []json.RawMessage `json:"notes"`
		}
		json.Unmarshal(r.Body, &body)
		if len(body.Notes) != 2 || string(body.Notes[0]) != `"long-standing customer"` || !strings.Contains(string(body.Notes[1]), `"provider":"spi_`) {
			t.Errorf("merge: %s", r.Body)
		}
	})
}
