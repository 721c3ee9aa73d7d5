package portal_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/testkit"
	"github.com/causewayhq/causeway/internal/webhooks"
)

// consoleLogIn logs the tab into the bank console.
func consoleLogIn(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	navigate(t, ctx, base+"/console/login")
	if st := adminTokenLogIn(t, ctx, platformtest.AdminToken); st != http.StatusOK {
		t.Fatalf("console login answered %d", st)
	}
}

// adminTokenLogIn opens the login page's admin token form, types token
// and submits it, and returns the answer's status.
func adminTokenLogIn(t *testing.T, ctx context.Context, token string) int64 {
	t.Helper()
	eval[bool](t, ctx, `document.getElementById("admin-token-login").open = true`)
	do(t, ctx, "typing the admin token", chromedp.SendKeys(chromedp.ID("token"), token))
	return submit(t, ctx, `#admin-login button[type="submit"]`)
}

// sandboxApp signs a developer up and creates an active sandbox app with
// its seeded customers, through the services.
func sandboxApp(t *testing.T, n *platformtest.Node, email string, scopes ...string) (dev *auth.Developer, appID, clientID, secret string) {
	t.Helper()
	dev, _, err := n.Identity.SignUp(context.Background(), email, "a long enough password", "Org of "+email)
	if err != nil {
		t.Fatal(err)
	}
	app, sec, err := n.Identity.CreateApp(context.Background(), dev, "App of "+email, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return dev, app.ID, app.ClientID, sec
}

// testDeveloperTriesAnOperationFromTheReference: the reference's "try it"
// form calls the API with the app's token (got from its client
// credentials) and shows the answer, and never shows a credential.
func testDeveloperTriesAnOperationFromTheReference(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 2*time.Minute)
	signUp(t, ctx, n.URL, "tryit@solarworld.example")
	do(t, ctx, "naming the app", chromedp.SendKeys(chromedp.ID("name"), "Try it app"))
	if st := submit(t, ctx, `form[action="/apps"] button[type="submit"]`); st != http.StatusCreated {
		t.Fatalf("creating the app answered %d", st)
	}
	secret := text(t, ctx, "#client-secret")

	navigate(t, ctx, n.URL+"/reference#op-list-accounts")
	do(t, ctx, "opening list-accounts", chromedp.Click(chromedp.CSS(`#op-list-accounts summary`), chromedp.NodeVisible))
	// A wrong secret is refused on the form, before any call.
	do(t, ctx, "typing a wrong secret", chromedp.SendKeys(chromedp.ID("secret-list-accounts"), "cwsec_wrong"))
	if st := submit(t, ctx, `#op-list-accounts form.try button`); st != http.StatusOK {
		t.Fatalf("trying with a wrong secret answered %d", st)
	}
	if got := text(t, ctx, ".error"); !strings.Contains(got, "secret") {
		t.Errorf("error for a wrong secret = %q", got)
	}
	if eval[bool](t, ctx, `document.getElementById("try-result") !== null`) {
		t.Error("a call was made with a wrong secret")
	}

	do(t, ctx, "typing the secret", chromedp.SendKeys(chromedp.ID("secret-list-accounts"), secret))
	submit(t, ctx, `form.try button`)
	if got := text(t, ctx, "#try-status"); got != "200 OK" {
		t.Fatalf("list-accounts through the form = %q\n%s", got, text(t, ctx, "main"))
	}
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(text(t, ctx, "#try-body")), &page); err != nil || len(page.Data) == 0 {
		t.Fatalf("the response body is not the app's seeded accounts: %v", err)
	}
	screenshot(t, ctx, "40-reference-try-it")
	html := eval[string](t, ctx, `document.documentElement.outerHTML`)
	if strings.Contains(html, secret) || strings.Contains(html, "eyJ") {
		t.Error("the try page shows the client secret or the access token")
	}
	if curl := text(t, ctx, "#try-curl"); !strings.Contains(curl, "$TOKEN") || !strings.Contains(curl, "/v1/accounts") {
		t.Errorf("curl line = %q", curl)
	}

	// A path parameter: one account, by the id the list gave.
	navigate(t, ctx, n.URL+"/reference")
	do(t, ctx, "opening get-account",
		chromedp.Click(chromedp.CSS(`#op-get-account summary`), chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.ID("secret-get-account"), secret),
		chromedp.SendKeys(chromedp.ID("p-get-account-id"), page.Data[0].ID))
	submit(t, ctx, `#op-get-account form.try button`)
	if got := text(t, ctx, "#try-status"); got != "200 OK" || !strings.Contains(text(t, ctx, "#try-body"), page.Data[0].ID) {
		t.Errorf("get-account through the form = %q", got)
	}
	// Another tenant's account is not found, through the form as through
	// the API.
	_, otherApp, otherClient, otherSecret := sandboxApp(t, n, "other-tryit@lab.example", "accounts:read")
	_ = otherApp
	tok := appToken(t, n.URL, otherClient, otherSecret)
	var theirs struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if code := api(t, "GET", n.URL+"/v1/accounts", tok, nil, &theirs); code != 200 || len(theirs.Data) == 0 {
		t.Fatalf("other app's accounts: %d", code)
	}
	do(t, ctx, "asking for another tenant's account",
		chromedp.SendKeys(chromedp.ID("secret-get-account"), secret),
		chromedp.Clear(chromedp.ID("p-get-account-id")), chromedp.SendKeys(chromedp.ID("p-get-account-id"), theirs.Data[0].ID))
	submit(t, ctx, `form.try button`)
	if got := text(t, ctx, "#try-status"); got != "404 Not Found" {
		t.Errorf("another tenant's account through the form = %q", got)
	}
}

// testBankGrantsACustomerInTheConsole: the bank lets app B see one of app
// A's customers, B's token then reads it, and a revoke hides it again.
func testBankGrantsACustomerInTheConsole(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 2*time.Minute)
	bg := context.Background()
	_, appA, _, _ := sandboxApp(t, n, "grants-a@solarworld.example", "accounts:read")
	_, appB, clientB, secretB := sandboxApp(t, n, "grants-b@partner.example", "accounts:read")
	customers, err := n.Bank.Customers(bg, auth.AppCaller(appA), 1, "")
	if err != nil || len(customers.Data) == 0 {
		t.Fatalf("app A's customers: %v", err)
	}
	cust := customers.Data[0]
	tokB := appToken(t, n.URL, clientB, secretB)
	if code := api(t, "GET", n.URL+"/v1/customers/"+cust.ID, tokB, nil, nil); code != 404 {
		t.Fatalf("before the grant, app B reads A's customer: %d", code)
	}

	consoleLogIn(t, ctx, n.URL)
	navigate(t, ctx, n.URL+"/console/grants")
	// An unknown customer is an error on the form.
	do(t, ctx, "granting an unknown customer",
		chromedp.SetValue(chromedp.ID("grant-app"), appB), chromedp.SendKeys(chromedp.ID("grant-customer"), "cus_nobody"))
	if st := submit(t, ctx, `#grant-form button`); st != http.StatusUnprocessableEntity {
		t.Errorf("granting an unknown customer answered %d", st)
	}
	if got := text(t, ctx, ".error"); !strings.Contains(got, "cus_nobody") {
		t.Errorf("error for an unknown customer = %q", got)
	}
	do(t, ctx, "granting the customer",
		chromedp.SetValue(chromedp.ID("grant-app"), appB),
		chromedp.Clear(chromedp.ID("grant-customer")), chromedp.SendKeys(chromedp.ID("grant-customer"), cust.ID))
	if st := submit(t, ctx, `#grant-form button`); st != http.StatusOK {
		t.Fatalf("grant answered %d", st)
	}
	if got := text(t, ctx, `tr[data-app="`+appB+`"][data-customer="`+cust.ID+`"]`); !strings.Contains(got, cust.Name) {
		t.Errorf("the grant row = %q", got)
	}
	screenshot(t, ctx, "41-console-grants")
	if code := api(t, "GET", n.URL+"/v1/customers/"+cust.ID, tokB, nil, nil); code != 200 {
		t.Errorf("after the grant, app B reads A's customer: %d", code)
	}
	// The bank API lists the same grant.
	var listed struct {
		Data []core.Grant `json:"data"`
	}
	if code := api(t, "GET", n.URL+"/bank/v1/grants?app_id="+appB, platformtest.AdminToken, nil, &listed); code != 200 ||
		len(listed.Data) != 1 || listed.Data[0].CustomerID != cust.ID {
		t.Errorf("GET /bank/v1/grants = %d %+v", code, listed)
	}

	if st := submit(t, ctx, `tr[data-customer="`+cust.ID+`"] button`); st != http.StatusOK {
		t.Fatalf("revoke answered %d", st)
	}
	if code := api(t, "GET", n.URL+"/v1/customers/"+cust.ID, tokB, nil, nil); code != 404 {
		t.Errorf("after the revoke, app B reads A's customer: %d", code)
	}
}

// testBankPublishesADatasetInTheConsole: the bank publishes a dataset
// from a generator; developers see it in the catalog. A bad name is an
// error on the form and publishes nothing.
func testBankPublishesADatasetInTheConsole(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 2*time.Minute)
	consoleLogIn(t, ctx, n.URL)
	navigate(t, ctx, n.URL+"/console/datasets")
	gens := datashare.GeneratorNames()
	do(t, ctx, "filling in a bad name",
		chromedp.SendKeys(chromedp.ID("ds-name"), "Branch Visits"),
		chromedp.SendKeys(chromedp.ID("ds-description"), "Visits per branch and day"),
		chromedp.SetValue(chromedp.ID("ds-generator"), gens[0]))
	// The browser's own pattern check would stop the form; the server's
	// rule is what is tested, so drop it.
	do(t, ctx, "dropping the pattern", chromedp.RemoveAttribute(chromedp.ID("ds-name"), "pattern"))
	if st := submit(t, ctx, `#publish-form button`); st != http.StatusUnprocessableEntity {
		t.Errorf("a bad name answered %d", st)
	}
	if got := text(t, ctx, ".error"); !strings.Contains(got, "name") {
		t.Errorf("error for a bad name = %q", got)
	}
	do(t, ctx, "fixing the name", chromedp.Clear(chromedp.ID("ds-name")), chromedp.SendKeys(chromedp.ID("ds-name"), "branch-visits-console"))
	if st := submit(t, ctx, `#publish-form button`); st != http.StatusOK {
		t.Fatalf("publish answered %d: %s", st, text(t, ctx, "main"))
	}
	if got := text(t, ctx, `tr[data-name="branch-visits-console"]`); !strings.Contains(got, gens[0]) {
		t.Errorf("the published row = %q", got)
	}
	screenshot(t, ctx, "42-console-datasets")

	_, _, client, secret := sandboxApp(t, n, "catalog@lab.example", "data:read")
	var catalog struct {
		Data []datashare.Dataset `json:"data"`
	}
	if code := api(t, "GET", n.URL+"/v1/datasets?limit=200", appToken(t, n.URL, client, secret), nil, &catalog); code != 200 {
		t.Fatalf("catalog: %d", code)
	}
	found := 0
	for _, d := range catalog.Data {
		if strings.HasPrefix(d.Name, "branch-visits") {
			found++
			if d.Description != "Visits per branch and day" || d.Source != nil {
				t.Errorf("the dataset developers see = %+v", d)
			}
		}
	}
	if found != 1 {
		t.Errorf("the catalog has %d datasets named branch-visits*, want 1", found)
	}
}

// TestConsoleShowsPlatformHealth: a webhook whose endpoint is gone shows
// a dead letter, an SPI endpoint that fails has an open breaker, and the
// platform's request rate counts calls. The figures are the node's, so
// the test has a node of its own.
func TestConsoleShowsPlatformHealth(t *testing.T) {
	t.Parallel()
	n := platformtest.Start(t, platformtest.Embedded.Config(t))
	ctx := tab(t, 2*time.Minute)
	bg := context.Background()
	_, appID, client, secret := sandboxApp(t, n, "health@solarworld.example", "accounts:read", "payments:write", "events:read", "webhooks:write", "spi:write")
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer failing.Close()
	sub, err := n.Webhooks.Create(bg, auth.AppCaller(appID), webhooks.NewSubscription{URL: gone.URL, EventTypes: []string{"payment.*"}})
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := n.SPI.CreateRegistration(bg, auth.AppCaller(appID), spi.NewRegistration{ExtensionPoint: "payments.fraud-check", URL: failing.URL})
	if err != nil {
		t.Fatal(err)
	}
	actor := auth.AppCaller(appID)
	accounts, err := n.Bank.Accounts(bg, actor, core.AccountFilter{})
	if err != nil || len(accounts.Data) < 2 {
		t.Fatalf("accounts: %v", err)
	}
	// Enough payments to trip the breaker (each fails the fraud check and
	// follows the registration's failure policy).
	for range spi.DefaultBreakerFailures + 1 {
		amount, _ := core.ParseMoney("1.00", accounts.Data[0].Currency)
		n.Bank.CreatePayment(bg, actor, core.NewPayment{DebtorAccountID: accounts.Data[0].ID,
			Creditor: core.Creditor{AccountID: accounts.Data[1].ID}, Amount: amount, Reference: "health"})
	}
	if st := n.SPI.BreakerStates()[reg.ID]; st != spi.BreakerOpen {
		t.Fatalf("breaker of the failing endpoint = %q, want open", st)
	}
	// Some API calls for the request chart.
	tok := appToken(t, n.URL, client, secret)
	for range 3 {
		api(t, "GET", n.URL+"/v1/accounts", tok, nil, nil)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		dead, err := n.Webhooks.DeadLetters(bg, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if dead[sub.ID] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter for the gone endpoint within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// One event stream that ended, and one still open: streams have a row
	// of their own, and are not request latency.
	ended := openStream(t, n.URL, "?ticket="+streamTicket(t, n.URL, tok))
	ended.close()
	open := openStream(t, n.URL, "?ticket="+streamTicket(t, n.URL, tok))
	defer open.close()
	testkit.WaitFor(t, "the ended stream is counted", func() bool {
		if err := n.Gateway.Flush(bg); err != nil {
			t.Fatal(err)
		}
		a, err := n.Gateway.Analytics(bg, appID, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
		return err == nil && a.Totals.Streams == 1
	})

	consoleLogIn(t, ctx, n.URL)
	navigate(t, ctx, n.URL+"/console/health")
	for sel, want := range map[string]string{"#stream-stats .open": "1", "#stream-stats .open-here": "1", "#stream-stats .ended": "1"} {
		if got := text(t, ctx, sel); got != want {
			t.Errorf("%s = %q, want %s", sel, got, want)
		}
	}
	if got := text(t, ctx, `#subscription-health tr[data-id="`+sub.ID+`"] .dead`); got == "0" || got == "" {
		t.Errorf("dead letters of the gone endpoint = %q", got)
	}
	if got := text(t, ctx, `#breaker-table tr[data-id="`+reg.ID+`"] .breaker`); got != spi.BreakerOpen {
		t.Errorf("breaker shown = %q", got)
	}
	if c := eval[int](t, ctx, `document.querySelectorAll("svg.chart rect.bar").length`); c < 3 {
		t.Errorf("the health page draws %d bars", c)
	}
	calls := text(t, ctx, `.stats div:first-child dd`)
	if calls == "0" || calls == "" {
		t.Errorf("platform calls = %q", calls)
	}
	screenshot(t, ctx, "43-console-health")
}

// testUnknownPagesAreAnHTMLPageForBrowsers: a browser gets the portal's
// 404 page; an API client still gets a problem document.
func testUnknownPagesAreAnHTMLPageForBrowsers(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, time.Minute)
	if st := navigate(t, ctx, n.URL+"/no-such-page"); st != http.StatusNotFound {
		t.Errorf("an unknown page answered %d", st)
	}
	if h := text(t, ctx, "h1"); !strings.Contains(h, "404") {
		t.Errorf("404 page heading = %q", h)
	}
	for _, tt := range []struct{ path, accept, wantType string }{
		{"/v1/no-such-thing", "text/html", "application/problem+json"},
		{"/no-such-page", "application/json", "application/problem+json"},
		{"/no-such-page", "text/html,application/xhtml+xml", "text/html; charset=utf-8"},
	} {
		req, _ := http.NewRequest("GET", n.URL+tt.path, nil)
		req.Header.Set("Accept", tt.accept)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != tt.wantType {
			t.Errorf("GET %s (Accept %s) = %d %s, want 404 %s", tt.path, tt.accept, res.StatusCode, res.Header.Get("Content-Type"), tt.wantType)
		}
	}
}

// testDeveloperRotatesAnSPISecret: the registration page rotates the
// signing secret, shows the new one once, and says until when the previous
// one also signs.
func testDeveloperRotatesAnSPISecret(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, time.Minute)
	bg := context.Background()
	signUp(t, ctx, n.URL, "spi-rotate@solarworld.example")
	tok, err := n.Identity.LogIn(bg, "spi-rotate@solarworld.example", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := n.Identity.AuthenticateDeveloper(bg, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := n.Identity.CreateApp(bg, dev, "Fraud shield", []string{auth.ScopeSPIWrite})
	if err != nil {
		t.Fatal(err)
	}
	reg, first, err := n.SPI.CreateRegistration(bg, auth.AppCaller(app.ID), spi.NewRegistration{ExtensionPoint: "payments.fraud-check", URL: "http://127.0.0.1:9/causeway"})
	if err != nil {
		t.Fatal(err)
	}
	navigate(t, ctx, n.URL+"/apps/"+app.ID+"/spi/"+reg.ID)
	if eval[bool](t, ctx, `document.getElementById("spi-secret") !== null`) {
		t.Fatal("a secret is shown before any rotation")
	}
	if st := submit(t, ctx, `form[action$="/rotate-secret"] button`); st != http.StatusOK {
		t.Fatalf("rotate answered %d", st)
	}
	fresh := text(t, ctx, "#spi-secret")
	if !strings.HasPrefix(fresh, "whsec_") || fresh == first {
		t.Errorf("new secret = %q (first %q)", fresh, first)
	}
	if got := text(t, ctx, "main"); !strings.Contains(got, "also signs until") {
		t.Errorf("the page does not say the previous secret still signs:\n%s", got)
	}
	screenshot(t, ctx, "44-spi-secret-rotated")
	got, err := n.SPI.Registration(bg, auth.AppCaller(app.ID), reg.ID)
	if err != nil || got.PreviousSecretExpiresAt == nil {
		t.Errorf("after rotating in the portal: %+v, %v", got, err)
	}
}
