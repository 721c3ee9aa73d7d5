package platform_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// The hostile-tenant suite: a malicious app and developer, and operators
// racing each other, against a running node on both runtimes. Each subtest
// names the attack it defends against; the first ones are issue 14's
// findings as they were found.

// tenant is one fintech: its developer, its app, and what it owns.
type tenant struct {
	dev, app *client
	appID    string
	// ids are the tenant's resources by kind, as the API names them in
	// paths ("accounts", "customers", "payments", ...).
	ids      map[string]string
	accounts []struct{ ID, IBAN, CustomerID string }
	// hooks receives every event the tenant's webhook gets, raw.
	hooks *rawReceiver
}

// rawReceiver keeps the raw bodies of webhook deliveries.
type rawReceiver struct {
	mu     sync.Mutex
	bodies []string
}

func (r *rawReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *rawReceiver) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

func (r *rawReceiver) contains(s string) bool {
	for _, b := range r.all() {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// newTenant signs a developer up with an app, subscribes a webhook to every
// event, and reads the app's seeded accounts.
func newTenant(t *testing.T, n *platformtest.Node, doc *openapitest.Validator, email string) *tenant {
	t.Helper()
	app, secrets := developerApp(t, n, doc, email)
	tn := &tenant{app: app, dev: &client{t: t, base: n.URL, token: secrets[1], doc: doc}, ids: map[string]string{}, hooks: &rawReceiver{}}
	var apps struct{ Data []struct{ ID string } }
	tn.dev.do("GET", "/v1/apps", "/v1/apps", nil).decode(t, &apps)
	if len(apps.Data) != 1 {
		t.Fatalf("developer %s has %d apps", email, len(apps.Data))
	}
	tn.appID = apps.Data[0].ID
	tn.ids["apps"] = tn.appID
	var accounts struct {
		Data []struct{ ID, IBAN, CustomerID string }
	}
	app.do("GET", "/v1/accounts?limit=200", "/v1/accounts", nil).decode(t, &accounts)
	tn.accounts = accounts.Data
	srv := httptest.NewServer(tn.hooks)
	t.Cleanup(srv.Close)
	res := app.do("POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": srv.URL, "event_types": []string{"*"}})
	if res.status != 201 {
		t.Fatalf("webhook: %d %s", res.status, res.body)
	}
	var wh struct{ ID string }
	res.decode(t, &wh)
	tn.ids["webhooks"] = wh.ID
	return tn
}

// must makes a call that has to succeed and decodes its answer.
func (c *client) must(status int, method, path string, body any, into any, headers ...string) {
	c.t.Helper()
	res := c.do(method, path, "", body, headers...)
	if res.status != status {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, res.status, res.body, status)
	}
	if into != nil {
		res.decode(c.t, into)
	}
}

func money(amount string) map[string]any { return map[string]any{"amount": amount, "currency": "EUR"} }

// TestHostileTenant runs every attack against one node per runtime: the
// victim and the attacker are set up once, each attack is a subtest.
func TestHostileTenant(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		victim := newTenant(t, n, doc, "victim@bank-customer.example")
		attacker := newTenant(t, n, doc, "mallory@attacker.example")
		giveVictimOneOfEverything(t, n, victim)

		t.Run("PayingAnotherTenantsIBANsRevealsNoAccountOrBalance", func(t *testing.T) {
			payingForeignIBANsRevealsNothing(t, n, attacker, victim)
		})
		t.Run("OperatorsRacingOnHeldPaymentsDecideEachOnce", func(t *testing.T) {
			operatorsRaceOnHeldPayments(t, n, victim)
		})
		t.Run("BankPaymentKeyReusedWithAnotherBodyIsRefused", func(t *testing.T) {
			bankKeyReusedWithAnotherBody(t, n, victim)
		})
		t.Run("EveryOperationWithAnotherTenantsIDsAnswers404", func(t *testing.T) {
			everyOperationWithForeignIDs(t, n, doc, attacker, victim)
		})
		t.Run("ListsFeedAndStreamHoldNothingOfAnotherTenant", func(t *testing.T) {
			listsHoldNothingForeign(t, n, attacker, victim)
		})
		var ledger struct {
			Balanced             bool
			AccountsBelowMinimum []string `json:"accounts_below_minimum"`
			HeldMismatches       []string `json:"held_mismatches"`
		}
		if code := bankCall(t, n, "GET", "/ledger", nil, &ledger); code != 200 || !ledger.Balanced ||
			ledger.AccountsBelowMinimum == nil || ledger.HeldMismatches == nil {
			t.Errorf("ledger after the attacks: %d %+v", code, ledger)
		}
	})
}

// giveVictimOneOfEverything makes the victim own one resource of every
// kind the API has, so the sweep has a foreign id for every path.
func giveVictimOneOfEverything(t *testing.T, n *platformtest.Node, v *tenant) {
	t.Helper()
	var cust struct{ ID string }
	v.app.must(201, "POST", "/v1/customers", map[string]any{
		"type": "person", "name": "Vera Victim", "date_of_birth": "1979-03-14", "email": "vera@victim.example",
		"address": map[string]any{"line1": "Dam 1", "city": "Amsterdam", "postcode": "1012 JS", "country": "NL"}, "document_number": "NLV123456",
	}, &cust)
	v.ids["customers"] = cust.ID
	var acc struct{ ID, IBAN string }
	v.app.must(201, "POST", "/v1/accounts", map[string]any{"customer_id": cust.ID, "product": "current", "currency": "EUR"}, &acc)
	v.ids["accounts"] = acc.ID
	v.accounts = append(v.accounts, struct{ ID, IBAN, CustomerID string }{acc.ID, acc.IBAN, cust.ID})
	// Distinctive balances, so a leaked one is recognisable.
	for i, a := range v.accounts {
		if code := bankCall(t, n, "POST", "/accounts/"+a.ID+"/deposits", map[string]any{"amount": money(fmt.Sprintf("%d4321.09", 50+i))}, nil); code != 201 {
			t.Fatalf("deposit: %d", code)
		}
	}
	var kyc struct{ ID string }
	v.app.must(201, "POST", "/v1/kyc-checks", map[string]any{"customer_id": cust.ID}, &kyc)
	v.ids["kyc-checks"] = kyc.ID
	var loan struct{ ID, Status string }
	v.app.must(201, "POST", "/v1/loan-applications", map[string]any{"customer_id": cust.ID, "amount": money("1000.00"),
		"term_months": 12, "purpose": "bike", "monthly_income": money("3000.00")}, &loan)
	v.ids["loan-applications"] = loan.ID
	var pay struct{ ID string }
	v.app.must(201, "POST", "/v1/payments", map[string]any{"debtor_account_id": acc.ID, "amount": money("12.34"),
		"creditor": map[string]any{"iban": "FR1420041010050500013M02606", "name": "Shop"}}, &pay)
	v.ids["payments"] = pay.ID
	spi := spitest.New(t, map[string]any{"insights": []any{}})
	var reg struct{ ID string }
	v.app.must(201, "POST", "/v1/spi-registrations", map[string]any{"extension_point": "accounts.lookup", "url": spi.URL}, &reg)
	v.ids["spi-registrations"] = reg.ID
	var datasets struct{ Data []struct{ ID string } }
	v.app.must(200, "GET", "/v1/datasets", nil, &datasets)
	id, _ := age.GenerateX25519Identity()
	var req struct{ ID string }
	v.app.must(201, "POST", "/v1/dataset-access-requests", map[string]any{"dataset_id": datasets.Data[0].ID,
		"purpose": "victim's research", "duration_days": 30, "recipient": id.Recipient().String()}, &req)
	v.ids["dataset-access-requests"] = req.ID
	// A delivery to the victim's webhook, for the deliveries paths.
	var deliveries struct{ Data []struct{ ID string } }
	for deadline := time.Now().Add(30 * time.Second); len(deliveries.Data) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		v.app.must(200, "GET", "/v1/webhooks/"+v.ids["webhooks"]+"/deliveries", nil, &deliveries)
	}
	if len(deliveries.Data) == 0 {
		t.Fatal("the victim's webhook got no delivery")
	}
	v.ids["deliveries"] = deliveries.Data[0].ID
}

// Finding 2: app A paid 0.01 to IBANs of app B's customers and learned B's
// account ids and balances from the credit legs' transaction.booked events
// (webhooks, GET /v1/events, the stream), although GET /v1/accounts/{id}
// answered 404.
func payingForeignIBANsRevealsNothing(t *testing.T, n *platformtest.Node, a, v *tenant) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := openStream(t, ctx, n.URL, a.app.token)
	var paid []string
	for _, target := range v.accounts {
		var p struct{ ID, Status string }
		a.app.must(201, "POST", "/v1/payments", map[string]any{"debtor_account_id": a.accounts[0].ID, "amount": money("0.01"),
			"creditor": map[string]any{"iban": target.IBAN, "name": "Anyone"}}, &p)
		if p.Status != "completed" {
			t.Fatalf("payment to a foreign IBAN = %+v", p)
		}
		paid = append(paid, p.ID)
	}
	// The victim's credit legs: their balances are what must not leak.
	var foreign []string
	for _, target := range v.accounts {
		foreign = append(foreign, target.ID)
		var txns struct {
			Data []struct {
				CounterpartyIBAN string                  `json:"counterparty_iban"`
				BalanceAfter     struct{ Amount string } `json:"balance_after"`
			}
		}
		bankCall(t, n, "GET", "/accounts/"+target.ID+"/transactions?limit=5", nil, &txns)
		for _, txn := range txns.Data {
			if txn.CounterpartyIBAN == a.accounts[0].IBAN {
				foreign = append(foreign, txn.BalanceAfter.Amount)
			}
		}
	}
	if len(foreign) < 2*len(v.accounts) {
		t.Fatalf("the victim's credit legs were not booked: %v", foreign)
	}
	// Wait until the attacker has everything about its own payments: then
	// whatever was going to leak has arrived.
	last := paid[len(paid)-1]
	testkit.WaitFor(t, "the attacker's webhook gets its last payment", func() bool { return a.hooks.contains(last) })
	testkit.WaitFor(t, "the attacker's stream gets its last payment", func() bool { return stream.contains(last) })
	testkit.WaitFor(t, "the victim's webhook gets its credit legs", func() bool { return v.hooks.contains(foreign[1]) })

	feed := readFeed(t, a.app)
	for where, bodies := range map[string][]string{"webhook": a.hooks.all(), "GET /v1/events": feed, "stream": stream.all()} {
		for _, b := range bodies {
			for _, f := range foreign {
				if strings.Contains(b, f) {
					t.Errorf("the attacker's %s reveals the victim's %q: %.300s", where, f, b)
				}
			}
		}
	}
}

// Finding 1: ten concurrent release and reject calls on one held payment
// gave several winners on PostgreSQL and debited the account once per
// release.
func operatorsRaceOnHeldPayments(t *testing.T, n *platformtest.Node, v *tenant) {
	reviewer := spitest.New(t, fraudAnswer{Decision: "review", Score: 70, Reason: "manual check"})
	var reg struct{ ID string }
	v.app.must(201, "POST", "/v1/spi-registrations", map[string]any{"extension_point": "payments.fraud-check", "url": reviewer.URL}, &reg)
	from := v.accounts[0]
	var before struct{ Booked struct{ Amount string } }
	bankCall(t, n, "GET", "/accounts/"+from.ID+"/balances", nil, &before)
	var held []string
	for range 3 {
		var p struct{ ID, Status string }
		v.app.must(201, "POST", "/v1/payments", map[string]any{"debtor_account_id": from.ID, "amount": money("10.00"),
			"creditor": map[string]any{"iban": "FR1420041010050500013M02606", "name": "Shop"}}, &p)
		if p.Status != "held" {
			t.Fatalf("payment under review = %+v", p)
		}
		held = append(held, p.ID)
	}
	v.app.must(204, "DELETE", "/v1/spi-registrations/"+reg.ID, nil, nil)

	const operators = 10
	type outcome struct {
		code   int
		status string
	}
	results := make([][]outcome, len(held))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, id := range held {
		for op := range operators {
			wg.Add(1)
			go func() {
				defer wg.Done()
				action := []string{"release", "reject"}[op%2]
				var p map[string]any
				code := bankCall(t, n, "POST", "/payments/"+id+"/"+action, map[string]any{"reason": "operator " + fmt.Sprint(op)}, &p)
				mu.Lock()
				results[i] = append(results[i], outcome{code, fmt.Sprint(p["status"]) + fmt.Sprint(p["code"])})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	released := 0
	for i, rs := range results {
		wins := 0
		for _, r := range rs {
			switch {
			case r.code == 200:
				wins++
				if r.status == "completed<nil>" {
					released++
				}
			case r.code != 409 || r.status != "409payment_not_held":
				t.Errorf("payment %d: a losing decision answered %d %s, want 409 payment_not_held", i, r.code, r.status)
			}
		}
		if wins != 1 {
			t.Errorf("payment %d was decided %d times: %+v", i, wins, rs)
		}
	}
	var after struct{ Booked, Available struct{ Amount string } }
	bankCall(t, n, "GET", "/accounts/"+from.ID+"/balances", nil, &after)
	var b0, b1 float64
	fmt.Sscan(before.Booked.Amount, &b0)
	fmt.Sscan(after.Booked.Amount, &b1)
	if got := fmt.Sprintf("%.2f", b0-b1); got != fmt.Sprintf("%d.00", 10*released) || after.Available != after.Booked {
		t.Errorf("%d releases debited %s (booked %s, available %s)", released, got, after.Booked.Amount, after.Available.Amount)
	}
}

// Finding 4: POST /bank/v1/payments answered 201 with the first payment
// when its Idempotency-Key came back with another amount and debtor.
func bankKeyReusedWithAnotherBody(t *testing.T, n *platformtest.Node, v *tenant) {
	body := map[string]any{"debtor_account_id": v.accounts[0].ID, "amount": money("5.00"),
		"creditor": map[string]any{"iban": "FR1420041010050500013M02606", "name": "Shop"}}
	post := func(body map[string]any) (int, string) {
		req := bankRequest(t, n, "POST", "/payments", body)
		req.Header.Set("Idempotency-Key", "bank-batch-7")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, first := post(body)
	if code != 201 {
		t.Fatalf("first: %d %s", code, first)
	}
	if code, again := post(body); code != 201 || again != first {
		t.Errorf("retry: %d %s, want the first payment", code, again)
	}
	other := map[string]any{"debtor_account_id": v.accounts[1].ID, "amount": money("500.00"), "creditor": body["creditor"]}
	if code, res := post(other); code != 422 || !strings.Contains(res, "idempotency_key_reused") {
		t.Errorf("reused key with another amount and debtor: %d %s", code, res)
	}
}

// The BOLA sweep: every operation of the document, called by the attacker
// with the victim's ids, answers 404 (or 403) and shows nothing of the
// victim. An operation the sweep does not know fails the test, so a new
// route cannot ship without being classified here.
func everyOperationWithForeignIDs(t *testing.T, n *platformtest.Node, doc *openapitest.Validator, a, v *tenant) {
	// Operations that address no other tenant's resource, and why.
	own := map[string]string{
		"POST /v1/developers":              "signs up",
		"POST /v1/developers/login":        "logs in by password",
		"POST /v1/developers/logout":       "ends the caller's own session",
		"GET /v1/apps":                     "lists the caller's apps (see the lists subtest)",
		"POST /v1/apps":                    "creates an app of the caller",
		"GET /v1/accounts":                 "lists (see the lists subtest)",
		"GET /v1/customers":                "lists (see the lists subtest)",
		"POST /v1/customers":               "creates the caller's own customer",
		"GET /v1/webhooks":                 "lists (see the lists subtest)",
		"POST /v1/webhooks":                "creates the caller's own subscription",
		"GET /v1/spi-registrations":        "lists (see the lists subtest)",
		"POST /v1/spi-registrations":       "registers the caller's own endpoint",
		"GET /v1/dataset-access-requests":  "lists (see the lists subtest)",
		"POST /v1/dataset-access-requests": "asks for a published dataset",
		"GET /v1/datasets":                 "the bank's published catalog",
		"GET /v1/datasets/{id}":            "the bank's published catalog",
		"GET /v1/event-types":              "the public catalog",
		"GET /v1/extension-points":         "the public catalog",
		"GET /v1/extension-points/{name}":  "the public catalog",
		"GET /v1/events":                   "the caller's feed (see the lists subtest)",
		"GET /v1/events/stream":            "the caller's stream (see the lists subtest)",
		"POST /v1/events/stream-tickets":   "a ticket for the caller's own stream (TestStreamTicketOpensOneStreamOnceOnAnyNode)",
	}
	// Bodies for operations that take one: the attacker's own ids where
	// the path already names the victim's, the victim's where the body
	// is the only place an id goes.
	mine, theirs := a.accounts[0], v.accounts[0]
	bodies := map[string][]map[string]any{
		"PATCH /v1/webhooks/{id}":                 {{"url": "http://127.0.0.1:1/hook"}},
		"POST /v1/webhooks/{id}/recover":          {{"since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}},
		"POST /v1/loan-applications/{id}/funding": {{"account_id": mine.ID}},
		"POST /v1/accounts":                       {{"customer_id": v.ids["customers"], "product": "current", "currency": "EUR"}},
		"POST /v1/kyc-checks":                     {{"customer_id": v.ids["customers"]}},
		"POST /v1/loan-applications": {{"customer_id": v.ids["customers"], "amount": money("100.00"), "term_months": 12,
			"purpose": "stolen", "monthly_income": money("5000.00")}},
		"POST /v1/payments": {
			{"debtor_account_id": theirs.ID, "amount": money("1.00"), "creditor": map[string]any{"account_id": mine.ID}},
			{"debtor_account_id": mine.ID, "amount": money("1.00"), "creditor": map[string]any{"account_id": theirs.ID}},
		},
		"GET /v1/offers": nil, // query only, below
	}
	queries := map[string]string{"GET /v1/offers": "?customer_id=" + v.ids["customers"]}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	markers := victimMarkers(t, n, v, true)
	swept := 0
	for route := range doc.Operations() {
		method, path, _ := strings.Cut(route, " ")
		if !strings.HasPrefix(path, "/v1/") || own[route] != "" {
			continue
		}
		_, hasBody := bodies[route]
		if !param.MatchString(path) && !hasBody {
			t.Errorf("%s is not classified by the BOLA sweep: give it a victim's id to try, or say why it has none", route)
			continue
		}
		// Each path parameter gets the victim's id of the kind the path
		// segment before it names; a delivery is also tried under the
		// attacker's own subscription.
		var paths []string
		filled := param.ReplaceAllStringFunc(path, func(p string) string {
			return url.PathEscape(foreignID(v, path, p))
		})
		paths = append(paths, filled)
		if strings.Contains(path, "{delivery_id}") {
			paths = append(paths, strings.Replace(filled, v.ids["webhooks"], a.ids["webhooks"], 1))
		}
		caller := a.app
		if strings.HasPrefix(path, "/v1/apps") {
			caller = a.dev
		}
		reqBodies := bodies[route]
		if len(reqBodies) == 0 {
			reqBodies = []map[string]any{nil}
		}
		for _, p := range paths {
			for _, body := range reqBodies {
				var b any
				if body != nil {
					b = body
				}
				res := caller.do(method, p+queries[route], "", b)
				swept++
				if res.status != 404 && res.status != 403 {
					t.Errorf("%s %s as another tenant (body %v): %d %s, want 404", method, p, body, res.status, res.body)
				}
				sent := p + queries[route] + fmt.Sprint(body)
				for _, m := range markers {
					if !strings.Contains(sent, m) && strings.Contains(string(res.body), m) {
						t.Errorf("%s %s reveals the victim's %q: %s", method, p, m, res.body)
					}
				}
			}
		}
	}
	// The one list that takes a foreign id answers, but empty.
	var accounts struct{ Data []any }
	if res := a.app.do("GET", "/v1/accounts?customer_id="+v.ids["customers"], "", nil); res.status != 200 {
		t.Errorf("accounts of a foreign customer: %d", res.status)
	} else if res.decode(t, &accounts); len(accounts.Data) != 0 {
		t.Errorf("the attacker lists the victim's accounts: %s", res.body)
	}
	if swept < 30 {
		t.Errorf("only %d calls swept: the sweep is not seeing the API", swept)
	}
}

// foreignID is the victim's id for path parameter p of path.
func foreignID(v *tenant, path, p string) string {
	if p == "{delivery_id}" {
		return v.ids["deliveries"]
	}
	segments := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	if id, ok := v.ids[segments[0]]; ok {
		return id
	}
	return "not_a_kind_" + segments[0]
}

// victimMarkers are strings only the victim's data contains: its ids, its
// customers' names and IBANs, its balances.
// IBANs are left out on request: the attacker pays to them, so its own
// payments name them.
func victimMarkers(t *testing.T, n *platformtest.Node, v *tenant, withIBANs bool) []string {
	t.Helper()
	var out []string
	for _, id := range v.ids {
		out = append(out, id)
	}
	for _, a := range v.accounts {
		out = append(out, a.ID)
		if withIBANs {
			out = append(out, a.IBAN)
		}
		var bal struct{ Booked struct{ Amount string } }
		bankCall(t, n, "GET", "/accounts/"+a.ID+"/balances", nil, &bal)
		out = append(out, bal.Booked.Amount)
	}
	return append(out, "Vera Victim", "vera@victim.example")
}

// The attacker's lists, feed and stream hold nothing of the victim.
func listsHoldNothingForeign(t *testing.T, n *platformtest.Node, a, v *tenant) {
	markers := victimMarkers(t, n, v, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := openStream(t, ctx, n.URL, a.app.token)
	// Something of the attacker's own, so the stream has a last frame to
	// wait for.
	var p struct{ ID string }
	a.app.must(201, "POST", "/v1/payments", map[string]any{"debtor_account_id": a.accounts[0].ID, "amount": money("0.02"),
		"creditor": map[string]any{"iban": "FR1420041010050500013M02606", "name": "Shop"}}, &p)
	testkit.WaitFor(t, "the attacker's stream gets its own payment", func() bool { return stream.contains(p.ID) })
	answers := map[string][]string{"stream": stream.all(), "GET /v1/events": readFeed(t, a.app), "webhook": a.hooks.all()}
	for _, path := range []string{"/v1/accounts?limit=200", "/v1/customers?limit=200", "/v1/webhooks", "/v1/spi-registrations",
		"/v1/dataset-access-requests", "/v1/datasets"} {
		res := a.app.do("GET", path, "", nil)
		answers[path] = []string{string(res.body)}
	}
	res := a.dev.do("GET", "/v1/apps", "", nil)
	answers["/v1/apps"] = []string{string(res.body)}
	for where, bodies := range answers {
		for _, b := range bodies {
			for _, m := range markers {
				if strings.Contains(b, m) {
					t.Errorf("the attacker's %s shows the victim's %q: %.300s", where, m, b)
				}
			}
		}
	}
}

// sseStream collects the frames of a GET /v1/events/stream.
type sseStream struct {
	mu     sync.Mutex
	frames []string
}

func (s *sseStream) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frames...)
}

func (s *sseStream) contains(sub string) bool {
	for _, f := range s.all() {
		if strings.Contains(f, sub) {
			return true
		}
	}
	return false
}

// openSSE opens GET /v1/events/stream with query and header on base. A
// 200 stream (it must open with its retry field) is read in the
// background until ctx ends, its frames collected in the sseStream; any
// other answer comes back whole, with a nil sseStream.
func openSSE(t *testing.T, ctx context.Context, base, query string, header http.Header) (response, *sseStream) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/stream"+query, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{status: res.StatusCode, header: res.Header, body: b}, nil
	}
	br := bufio.NewReader(res.Body)
	// The first frame (retry:) says the server holds the stream.
	if first, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(first, "retry: ") {
		res.Body.Close()
		t.Fatalf("stream opened with %q, %v", first, err)
	}
	s := &sseStream{}
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var frame strings.Builder
		for sc.Scan() {
			if sc.Text() == "" {
				s.mu.Lock()
				s.frames = append(s.frames, frame.String())
				s.mu.Unlock()
				frame.Reset()
				continue
			}
			frame.WriteString(sc.Text() + "\n")
		}
	}()
	return response{status: 200, header: res.Header}, s
}

// openStream connects to the event stream with an app's access token and
// collects its frames until ctx ends.
func openStream(t *testing.T, ctx context.Context, base, token string) *sseStream {
	t.Helper()
	res, s := openSSE(t, ctx, base, "", http.Header{"Authorization": {"Bearer " + token}})
	if s == nil {
		t.Fatalf("stream: %d %s", res.status, res.body)
	}
	return s
}

// readFeed pages through GET /v1/events and returns each page's body.
func readFeed(t *testing.T, c *client) []string {
	t.Helper()
	var pages []string
	after := ""
	for range 500 {
		res := c.do("GET", "/v1/events?limit=200&after="+url.QueryEscape(after), "", nil)
		if res.status != 200 {
			t.Fatalf("feed: %d %s", res.status, res.body)
		}
		pages = append(pages, string(res.body))
		var page struct {
			Data       []any
			NextCursor string `json:"next_cursor"`
		}
		res.decode(t, &page)
		if len(page.Data) == 0 || page.NextCursor == "" || page.NextCursor == after {
			return pages
		}
		after = page.NextCursor
	}
	t.Fatal("the feed did not end")
	return nil
}

// bankRequest is a /bank/v1 request with the admin token.
func bankRequest(t *testing.T, n *platformtest.Node, method, path string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.URL+"/bank/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+platformtest.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}
