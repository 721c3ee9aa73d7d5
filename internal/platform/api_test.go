package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// client is a test HTTP client that checks every response against the
// node's OpenAPI document.
type client struct {
	t     *testing.T
	base  string
	token string
	doc   *openapitest.Validator
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, into any) {
	t.Helper()
	if err := json.Unmarshal(r.body, into); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (c *client) do(method, path, template string, body any, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 500 {
		c.t.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if template != "" && c.doc != nil {
		c.doc.Check(c.t, method, template, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// developerApp signs a developer up, creates an app with every scope, and
// gets an access token with a standard OAuth2 client. It returns the app
// client and the secrets it saw, for the log test.
func developerApp(t *testing.T, n *platformtest.Node, doc *openapitest.Validator, email string) (*client, []string) {
	t.Helper()
	c := &client{t: t, base: n.URL, doc: doc}
	const password = "correct horse battery staple"
	res := c.do("POST", "/v1/developers", "/v1/developers", map[string]any{"email": email, "password": password, "organization": "SolarWorld"})
	if res.status != 201 {
		t.Fatalf("sign up: %d %s", res.status, res.body)
	}
	var dev struct{ ID, Token string }
	res.decode(t, &dev)
	c.token = dev.Token
	res = c.do("POST", "/v1/apps", "/v1/apps", map[string]any{"name": "Solar app", "scopes": []string{
		"accounts:read", "customers:write", "payments:write", "kyc:write", "loans:write", "events:read", "webhooks:write", "spi:write", "data:read"}})
	if res.status != 201 {
		t.Fatalf("create app: %d %s", res.status, res.body)
	}
	var app struct {
		ID, Status   string
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	res.decode(t, &app)
	if app.Status != "active" || app.ClientSecret == "" {
		t.Fatalf("app = %+v", app)
	}
	cc := clientcredentials.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, TokenURL: n.URL + "/oauth2/token"}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("standard OAuth2 client: %v", err)
	}
	return &client{t: t, base: n.URL, token: tok.AccessToken, doc: doc}, []string{password, dev.Token, app.ClientSecret, tok.AccessToken}
}

type page struct {
	Data []struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"`
	} `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// TestDeveloperGoesFromSignUpToAccounts is the README's five calls, and then
// the whole public banking API, with every response checked against the
// OpenAPI document.
func TestDeveloperGoesFromSignUpToAccounts(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		var logs testkit.SyncBuffer
		cfg := rt.Config(t)
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		n := platformtest.Start(t, cfg)
		doc := openapitest.Fetch(t, n.URL)
		app, secrets := developerApp(t, n, doc, "dev@solarworld.example")

		var accounts page
		app.do("GET", "/v1/accounts", "/v1/accounts", nil).decode(t, &accounts)
		if len(accounts.Data) < 3 {
			t.Fatalf("a new sandbox app sees %d accounts, want its seeded ones", len(accounts.Data))
		}
		if res := app.do("GET", "/v1/accounts/"+accounts.Data[0].ID+"/balances", "/v1/accounts/{id}/balances", nil); res.status != 200 {
			t.Fatalf("balances: %d %s", res.status, res.body)
		}

		// Onboard a customer, open an account, KYC, loan, funding, payments.
		var cust struct{ ID, KYCStatus string }
		res := app.do("POST", "/v1/customers", "/v1/customers", map[string]any{
			"type": "person", "name": "Maria Jansen", "date_of_birth": "1980-02-29", "email": "maria@example.com",
			"address":         map[string]any{"line1": "Zonnelaan 7", "city": "Utrecht", "postcode": "3511 AB", "country": "NL"},
			"document_number": "NL1234567", "homeowner": true, "geo": map[string]any{"latitude": 52.09, "longitude": 5.12},
		})
		if res.status != 201 {
			t.Fatalf("create customer: %d %s", res.status, res.body)
		}
		res.decode(t, &cust)
		var acc struct{ ID, IBAN string }
		res = app.do("POST", "/v1/accounts", "/v1/accounts", map[string]any{"customer_id": cust.ID, "product": "current", "currency": "EUR"})
		if res.status != 201 {
			t.Fatalf("open account: %d %s", res.status, res.body)
		}
		res.decode(t, &acc)
		var kyc struct{ ID, Result string }
		app.do("POST", "/v1/kyc-checks", "/v1/kyc-checks", map[string]any{"customer_id": cust.ID}).decode(t, &kyc)
		if kyc.Result != "pass" {
			t.Errorf("kyc = %+v", kyc)
		}
		var loan struct{ ID, Status string }
		res = app.do("POST", "/v1/loan-applications", "/v1/loan-applications", map[string]any{
			"customer_id": cust.ID, "amount": map[string]any{"amount": "9000.00", "currency": "EUR"}, "term_months": 48,
			"purpose": "solar panels", "monthly_income": map[string]any{"amount": "3800.00", "currency": "EUR"},
		})
		res.decode(t, &loan)
		if loan.Status != "approved" {
			t.Fatalf("loan = %d %s", res.status, res.body)
		}
		var funded struct {
			Status   string
			Schedule []struct {
				DueDate string `json:"due_date"`
			}
		}
		app.do("POST", "/v1/loan-applications/"+loan.ID+"/funding", "/v1/loan-applications/{id}/funding", map[string]any{"account_id": acc.ID}).decode(t, &funded)
		if funded.Status != "funded" || len(funded.Schedule) != 48 || !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(funded.Schedule[0].DueDate) {
			t.Errorf("funding = %+v", funded)
		}
		pay := map[string]any{"debtor_account_id": acc.ID, "creditor": map[string]any{"iban": "DE89370400440532013000", "name": "Solar Installers GmbH"},
			"amount": map[string]any{"amount": "8500.00", "currency": "EUR"}, "reference": "panels"}
		first := app.do("POST", "/v1/payments", "/v1/payments", pay, "Idempotency-Key", "order-1")
		again := app.do("POST", "/v1/payments", "/v1/payments", pay, "Idempotency-Key", "order-1")
		var p1, p2 struct{ ID, Status string }
		first.decode(t, &p1)
		again.decode(t, &p2)
		if first.status != 201 || p1.Status != "completed" || p1.ID != p2.ID || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("idempotent payment: %d %+v then %+v (%s)", first.status, p1, p2, again.header)
		}
		var bal struct {
			Booked struct{ Amount string }
		}
		app.do("GET", "/v1/accounts/"+acc.ID+"/balances", "/v1/accounts/{id}/balances", nil).decode(t, &bal)
		if bal.Booked.Amount != "500.00" {
			t.Errorf("balance after one (replayed) payment = %s, want 500.00", bal.Booked.Amount)
		}
		pay["amount"] = map[string]any{"amount": "1.00", "currency": "EUR"}
		if res := app.do("POST", "/v1/payments", "/v1/payments", pay, "Idempotency-Key", "order-1"); res.status != 422 {
			t.Errorf("same key, other body: %d", res.status)
		}
		app.do("GET", "/v1/payments/"+p1.ID, "/v1/payments/{id}", nil)
		app.do("GET", "/v1/accounts/"+acc.ID+"/transactions?limit=10", "/v1/accounts/{id}/transactions", nil)
		app.do("GET", "/v1/customers/"+cust.ID, "/v1/customers/{id}", nil)
		app.do("GET", "/v1/customers", "/v1/customers", nil)
		app.do("GET", "/v1/kyc-checks/"+kyc.ID, "/v1/kyc-checks/{id}", nil)
		app.do("GET", "/v1/loan-applications/"+loan.ID, "/v1/loan-applications/{id}", nil)
		var offers struct{ Data []struct{ Product string } }
		app.do("GET", "/v1/offers?customer_id="+cust.ID, "/v1/offers", nil).decode(t, &offers)
		if len(offers.Data) == 0 {
			t.Error("no offers for a homeowner")
		}
		// Bad input: problems, never 5xx, each checked against the document.
		for _, bad := range []struct {
			path, template string
			body           any
			status         int
		}{
			{"/v1/payments", "/v1/payments", map[string]any{"debtor_account_id": acc.ID, "creditor": map[string]any{"account_id": acc.ID}, "amount": map[string]any{"amount": "1.001", "currency": "EUR"}}, 422},
			{"/v1/payments", "/v1/payments", map[string]any{"debtor_account_id": acc.ID, "creditor": map[string]any{"account_id": acc.ID}, "amount": map[string]any{"amount": "1.00", "currency": "EUR"}}, 422},
			{"/v1/customers", "/v1/customers", map[string]any{"type": "person"}, 422},
			{"/v1/accounts", "/v1/accounts", map[string]any{"customer_id": "cus_nope", "product": "current", "currency": "EUR"}, 404},
		} {
			if res := app.do("POST", bad.path, bad.template, bad.body); res.status != bad.status {
				t.Errorf("POST %s %v: %d %s, want %d", bad.path, bad.body, res.status, res.body, bad.status)
			}
		}
		for _, tt := range []struct{ path, template string }{
			{"/v1/accounts?limit=1000", "/v1/accounts"},
			{"/v1/accounts?cursor=not-a-cursor", "/v1/accounts"},
			{"/v1/accounts/" + acc.ID + "/transactions?cursor=bad", "/v1/accounts/{id}/transactions"},
		} {
			if res := app.do("GET", tt.path, tt.template, nil); res.status/100 != 4 {
				t.Errorf("GET %s: %d", tt.path, res.status)
			}
		}

		for _, s := range secrets {
			if strings.Contains(logs.String(), s) {
				t.Errorf("a secret (%.6s…) appears in the logs", s)
			}
		}
	})
}

// TestAppsNeverSeeAnotherTenantsResources: app B gets 404 for every id of
// app A, and its lists never contain them.
func TestAppsNeverSeeAnotherTenantsResources(t *testing.T) {
	t.Parallel()
	n := platformtest.Start(t, platformtest.Embedded.Config(t))
	a, _ := developerApp(t, n, nil, "a@example.com")
	b, _ := developerApp(t, n, nil, "b@example.com")
	var accounts page
	a.do("GET", "/v1/accounts", "", nil).decode(t, &accounts)
	acc := accounts.Data[0]
	var pay struct{ ID string }
	a.do("POST", "/v1/payments", "", map[string]any{"debtor_account_id": acc.ID, "creditor": map[string]any{"account_id": accounts.Data[1].ID},
		"amount": map[string]any{"amount": "1.00", "currency": "EUR"}}).decode(t, &pay)
	var kyc struct{ ID string }
	a.do("POST", "/v1/kyc-checks", "", map[string]any{"customer_id": acc.CustomerID}).decode(t, &kyc)
	var loan struct{ ID string }
	a.do("POST", "/v1/loan-applications", "", map[string]any{"customer_id": acc.CustomerID, "amount": map[string]any{"amount": "100.00", "currency": "EUR"},
		"term_months": 12, "purpose": "bike", "monthly_income": map[string]any{"amount": "3000.00", "currency": "EUR"}}).decode(t, &loan)
	if pay.ID == "" || kyc.ID == "" || loan.ID == "" {
		t.Fatalf("setup: %q %q %q", pay.ID, kyc.ID, loan.ID)
	}
	for _, path := range []string{
		"/v1/customers/" + acc.CustomerID, "/v1/accounts/" + acc.ID, "/v1/accounts/" + acc.ID + "/balances",
		"/v1/accounts/" + acc.ID + "/transactions", "/v1/payments/" + pay.ID, "/v1/kyc-checks/" + kyc.ID,
		"/v1/loan-applications/" + loan.ID, "/v1/offers?customer_id=" + acc.CustomerID,
	} {
		if res := b.do("GET", path, "", nil); res.status != 404 {
			t.Errorf("app B GET %s = %d, want 404", path, res.status)
		}
	}
	for _, tt := range []struct {
		path string
		body map[string]any
	}{
		{"/v1/payments", map[string]any{"debtor_account_id": acc.ID, "creditor": map[string]any{"iban": "DE89370400440532013000", "name": "x"}, "amount": map[string]any{"amount": "1.00", "currency": "EUR"}}},
		{"/v1/accounts", map[string]any{"customer_id": acc.CustomerID, "product": "current", "currency": "EUR"}},
		{"/v1/kyc-checks", map[string]any{"customer_id": acc.CustomerID}},
		{"/v1/loan-applications/" + loan.ID + "/funding", map[string]any{"account_id": acc.ID}},
	} {
		if res := b.do("POST", tt.path, "", tt.body); res.status != 404 {
			t.Errorf("app B POST %s = %d, want 404", tt.path, res.status)
		}
	}
	var bAccounts page
	b.do("GET", "/v1/accounts?limit=200", "", nil).decode(t, &bAccounts)
	for _, x := range bAccounts.Data {
		for _, y := range accounts.Data {
			if x.ID == y.ID {
				t.Errorf("app B lists app A's account %s", x.ID)
			}
		}
	}
}

// TestEveryRouteNeedsACredential walks every documented operation (and the
// upstream proxy) and sends it without credentials: each must answer 401,
// except sign-up and login. A new route cannot ship unauthenticated.
func TestEveryRouteNeedsACredential(t *testing.T) {
	t.Parallel()
	n := platformtest.Start(t, platformtest.Embedded.Config(t))
	doc := openapitest.Fetch(t, n.URL)
	public := map[string]bool{"POST /v1/developers": true, "POST /v1/developers/login": true}
	param := regexp.MustCompile(`\{[^}]+\}`)
	routes := doc.Operations()
	routes["GET /v1/ext/{prefix}/{path}"] = nil
	checked := 0
	for route, security := range routes {
		method, path, _ := strings.Cut(route, " ")
		if !strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/bank/v1/") {
			continue
		}
		if public[route] {
			if len(security) != 0 {
				t.Errorf("%s is public but documents security", route)
			}
			continue
		}
		if len(security) == 0 && !strings.HasPrefix(path, "/bank/v1/") && path != "/v1/ext/{prefix}/{path}" {
			t.Errorf("%s documents no security requirement", route)
		}
		req, _ := http.NewRequest(method, n.URL+param.ReplaceAllString(path, "x"), strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Errorf("%s without credentials = %d, want 401", route, res.StatusCode)
		}
		checked++
	}
	if checked < 40 {
		t.Errorf("only %d routes checked; the walk is not seeing the API", checked)
	}
}
