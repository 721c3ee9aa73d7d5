package portal_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/chromedp"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi"
)

// receiver is a webhook endpoint that accepts everything.
type receiver struct {
	mu    sync.Mutex
	types []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct{ Type string }
	json.NewDecoder(r.Body).Decode(&ev)
	rc.mu.Lock()
	rc.types = append(rc.types, ev.Type)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got(typ string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, t := range rc.types {
		if t == typ {
			return true
		}
	}
	return false
}

// TestPortal runs the portal's tests on one sandbox node: starting a node
// is the slow part, and each test works as developers of its own, so they
// run in parallel. Tests that read node-wide figures start their own node.
func TestPortal(t *testing.T) {
	t.Parallel()
	n := platformtest.Start(t, platformtest.Embedded.Config(t))
	for _, tc := range []struct {
		name string
		test func(*testing.T, *platformtest.Node)
	}{
		{"DeveloperGoesFromSignUpToADeliveredWebhook", testDeveloperGoesFromSignUpToADeliveredWebhook},
		{"AnotherDevelopersAppIsNotFound", testAnotherDevelopersAppIsNotFound},
		{"BankApprovesADataRequestInTheConsole", testBankApprovesADataRequestInTheConsole},
		{"DataScientistRequestsADatasetInTheBrowser", testDataScientistRequestsADatasetInTheBrowser},
		{"FormsRefusePostsWithoutTheirToken", testFormsRefusePostsWithoutTheirToken},
		{"PortalPagesCarryASecurityPolicy", testPortalPagesCarryASecurityPolicy},
		{"DeveloperTriesAnOperationFromTheReference", testDeveloperTriesAnOperationFromTheReference},
		{"BankGrantsACustomerInTheConsole", testBankGrantsACustomerInTheConsole},
		{"BankPublishesADatasetInTheConsole", testBankPublishesADatasetInTheConsole},
		{"UnknownPagesAreAnHTMLPageForBrowsers", testUnknownPagesAreAnHTMLPageForBrowsers},
		{"DeveloperRotatesAnSPISecret", testDeveloperRotatesAnSPISecret},
		{"StaticFilesAreHashedAndCachedForAYear", testStaticFilesAreHashedAndCachedForAYear},
		{"PagesHaveTheirOwnTitlesAndDescriptions", testPagesHaveTheirOwnTitlesAndDescriptions},
		{"FailedFormsMarkTheirFieldsAndTakeTheFocus", testFailedFormsMarkTheirFieldsAndTakeTheFocus},
		{"BrowserPageStreamsEventsWithATicket", testBrowserPageStreamsEventsWithATicket},
		{"BrowserReconnectsAfterAnExpiredLastEventID", testBrowserReconnectsAfterAnExpiredLastEventID},
		{"AdminAddsAnOperatorWhoSetsUpTOTPInTheBrowser", testAdminAddsAnOperatorWhoSetsUpTOTPInTheBrowser},
		{"ConsoleOffersNoSingleSignOnWithoutAProvider", testConsoleOffersNoSingleSignOnWithoutAProvider},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, n)
		})
	}
}

// signUp signs a developer up through the browser and lands on /apps.
func signUp(t *testing.T, ctx context.Context, base, email string) {
	t.Helper()
	navigate(t, ctx, base+"/signup")
	do(t, ctx, "filling in the sign-up form",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("organization"), "SolarWorld"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
	)
	if status := submit(t, ctx, `main button[type="submit"]`); status != http.StatusOK {
		t.Fatalf("sign-up answered %d", status)
	}
	if p := location(t, ctx).Path; p != "/apps" {
		t.Fatalf("after sign-up the browser is at %s, want /apps", p)
	}
}

// testDeveloperGoesFromSignUpToADeliveredWebhook is the portal's main path:
// sign up, create an app and see its secret once, add a webhook pointing at
// a local receiver, make a payment with the app's credentials, and watch
// the delivery appear in the webhook's delivery log, live and after a
// reload.
func testDeveloperGoesFromSignUpToADeliveredWebhook(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 3*time.Minute)
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()

	navigate(t, ctx, n.URL+"/")
	if h := text(t, ctx, "h1"); !strings.Contains(h, "Build on the bank") {
		t.Errorf("landing page heading = %q", h)
	}
	screenshot(t, ctx, "01-landing")

	signUp(t, ctx, n.URL, "dev@solarworld.example")
	screenshot(t, ctx, "02-apps-empty")

	// Create an app: the default scopes cover payments and events.
	do(t, ctx, "naming the app", chromedp.SendKeys(chromedp.ID("name"), "SolarWorld loans"))
	if status := submit(t, ctx, `form[action="/apps"] button[type="submit"]`); status != http.StatusCreated {
		t.Fatalf("creating the app answered %d", status)
	}
	clientID := text(t, ctx, "#client-id")
	secret := text(t, ctx, "#client-secret")
	if len(secret) < 20 {
		t.Fatalf("client secret = %q", secret)
	}
	// The one-time secret takes the focus, so a screen reader announces
	// its heading.
	waitFor(t, ctx, "the focus on the secret", `document.activeElement && document.activeElement.id === "secret-panel"`, 10*time.Second)
	screenshot(t, ctx, "03-app-secret-once")
	appPath := location(t, ctx).Path
	if !strings.HasPrefix(appPath, "/apps/app_") {
		t.Fatalf("after creating, the address bar shows %s, want the app's page", appPath)
	}
	appID := strings.TrimPrefix(appPath, "/apps/")

	// Reload: a GET of the app's page, which no longer has the secret.
	do(t, ctx, "reloading", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("client-id")))
	if eval[bool](t, ctx, `document.getElementById("client-secret") !== null`) {
		t.Fatal("the client secret is still shown after a reload")
	}
	if got := text(t, ctx, "#client-id"); got != clientID {
		t.Errorf("client id after reload = %q, want %q", got, clientID)
	}
	if body := eval[string](t, ctx, `document.body.innerText`); strings.Contains(body, secret) {
		t.Fatal("the secret is somewhere on the reloaded page")
	}
	screenshot(t, ctx, "04-app")

	// A webhook for every payment event, to the local receiver.
	navigate(t, ctx, n.URL+"/apps/"+appID+"/webhooks")
	do(t, ctx, "filling in the webhook form",
		chromedp.SendKeys(chromedp.ID("url"), hook.URL+"/hooks"),
		chromedp.Click(chromedp.CSS(`input[name="type"][value="payment.*"]`), chromedp.NodeVisible),
	)
	screenshot(t, ctx, "05-webhook-form")
	if status := submit(t, ctx, `form[action$="/webhooks"] button[type="submit"]`); status != http.StatusCreated {
		t.Fatalf("creating the webhook answered %d", status)
	}
	if s := text(t, ctx, "#webhook-secret"); !strings.HasPrefix(s, "whsec_") {
		t.Errorf("webhook secret = %q", s)
	}
	hookPath := location(t, ctx).Path
	if !strings.Contains(hookPath, "/webhooks/wh_") {
		t.Fatalf("after creating, the address bar shows %s", hookPath)
	}
	// Reload, so the page's live log is the only thing that can show the
	// delivery before the next reload.
	do(t, ctx, "opening the webhook page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("deliveries")))
	// Wait for the live log to connect before the payment, so the row
	// must arrive over the stream.
	waitFor(t, ctx, "the live log to connect", `document.getElementById("live-status").textContent.includes("live")`, 20*time.Second)

	// A payment with the app's own credentials, through the public API.
	token := appToken(t, n.URL, clientID, secret)
	var accounts struct {
		Data []struct{ ID string } `json:"data"`
	}
	if st := api(t, "GET", n.URL+"/v1/accounts", token, nil, &accounts); st != 200 || len(accounts.Data) < 2 {
		t.Fatalf("accounts: %d %+v", st, accounts)
	}
	var pay struct{ ID, Status string }
	if st := api(t, "POST", n.URL+"/v1/payments", token, map[string]any{
		"debtor_account_id": accounts.Data[0].ID,
		"creditor":          map[string]any{"account_id": accounts.Data[1].ID},
		"amount":            map[string]any{"amount": "42.00", "currency": "EUR"},
		"reference":         "portal test",
	}, &pay); st != 201 || pay.Status != "completed" {
		t.Fatalf("payment: %d %+v", st, pay)
	}

	// The delivery appears in the live log without a reload.
	waitFor(t, ctx, "the delivery to appear live",
		`[...document.querySelectorAll("#deliveries tbody tr")].some(r => r.textContent.includes("payment.completed") && r.textContent.includes("succeeded") && r.textContent.includes("204"))`,
		45*time.Second)
	if !rc.got("payment.completed") {
		t.Error("the receiver did not get payment.completed")
	}
	screenshot(t, ctx, "06-webhook-deliveries-live")

	// And it is in the server-rendered table after a reload.
	do(t, ctx, "reloading the deliveries", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#deliveries tbody tr")))
	row := text(t, ctx, "#deliveries tbody tr")
	for _, want := range []string{"payment.completed", "succeeded", "204", "ms"} {
		if !strings.Contains(row, want) {
			t.Errorf("delivery row %q lacks %q", row, want)
		}
	}
	screenshot(t, ctx, "07-webhook-deliveries")

	// Retry the delivery from the table: a new attempt with origin retry.
	if status := submit(t, ctx, `#deliveries tbody tr form button`); status != http.StatusOK {
		t.Fatalf("retry answered %d", status)
	}
	waitFor(t, ctx, "the retried attempt",
		`[...document.querySelectorAll("#deliveries tbody tr")].some(r => r.textContent.includes("retry"))`, 30*time.Second)

	// The sandbox's test-payment form makes a payment as the app.
	navigate(t, ctx, n.URL+"/apps/"+appID)
	if st := submit(t, ctx, `form[action$="/test-payment"] button`); st != 200 {
		t.Fatalf("test payment answered %d", st)
	}
	if got := text(t, ctx, "section[aria-labelledby=test-payment]"); !strings.Contains(got, "completed") {
		t.Errorf("after a test payment the app page shows %q", got)
	}

	// The rest of the developer side, for a person to look at.
	navigate(t, ctx, n.URL+"/")
	do(t, ctx, "dashboard", chromedp.WaitVisible(chromedp.CSS("main table")))
	screenshot(t, ctx, "08-dashboard")
	n.Gateway.Flush(context.Background())
	if st := navigate(t, ctx, n.URL+"/apps/"+appID+"/analytics"); st != 200 {
		t.Errorf("analytics answered %d", st)
	}
	if c := eval[int](t, ctx, `document.querySelectorAll("svg.chart rect.bar").length`); c == 0 {
		t.Error("the analytics page has no chart bars")
	}
	screenshot(t, ctx, "09-analytics")
	for _, p := range []struct{ path, name string }{
		{"/events", "10-event-catalog"}, {"/extension-points", "11-spi-catalog"},
		{"/datasets", "12-datasets"}, {"/reference", "13-api-reference"}, {"/apps/" + appID + "/spi", "14-app-spi"},
	} {
		if st := navigate(t, ctx, n.URL+p.path); st != 200 {
			t.Errorf("%s answered %d", p.path, st)
		}
		screenshot(t, ctx, p.name)
	}
	// The dataset page, with its schema, sample and request form.
	do(t, ctx, "opening a dataset", chromedp.Navigate(n.URL+"/datasets"))
	if status := submit(t, ctx, `.cards a`); status != 200 {
		t.Errorf("dataset page answered %d", status)
	}
	if c := eval[int](t, ctx, `document.querySelectorAll("table.sample tbody tr").length`); c == 0 {
		t.Error("the dataset page has no sample rows")
	}
	screenshot(t, ctx, "15-dataset")

	// At phone width the app page still fits: nothing scrolls sideways,
	// every tab is in view, and the header stays compact.
	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(n.URL+"/apps/"+appID))
	if eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("the app page scrolls sideways at phone width")
	}
	if hidden := eval[[]string](t, ctx, `[...document.querySelectorAll(".tabs a")].filter(a => { const r = a.getBoundingClientRect(); return r.right > window.innerWidth || r.left < 0 }).map(a => a.textContent)`); len(hidden) > 0 {
		t.Errorf("tabs out of view at phone width: %q", hidden)
	}
	if h := eval[float64](t, ctx, `document.querySelector("header.top").getBoundingClientRect().height`); h > 96 {
		t.Errorf("the header is %.0f px high at phone width", h)
	}
	screenshot(t, ctx, "16-app-phone")

	// Log out: the session's token is revoked.
	do(t, ctx, "back to desktop", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(n.URL+"/"))
	if status := submit(t, ctx, `form[action="/logout"] button`); status != 200 {
		t.Errorf("logout answered %d", status)
	}
	if p := location(t, ctx).Path; p != "/login" {
		t.Errorf("after logout the browser is at %s", p)
	}
	if st := navigate(t, ctx, n.URL+"/apps"); st != 200 || location(t, ctx).Path != "/login" {
		t.Errorf("after logout /apps did not lead to the login page")
	}
}

// testAnotherDevelopersAppIsNotFound: a developer who guesses another
// organization's app id gets 404 on every page of it, as on the API.
func testAnotherDevelopersAppIsNotFound(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 90*time.Second)
	bg := context.Background()
	owner, _, err := n.Identity.SignUp(bg, "owner@bank-partner.example", "a long enough password", "Partner")
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := n.Identity.CreateApp(bg, owner, "Secret project", []string{auth.ScopeEventsRead})
	if err != nil {
		t.Fatal(err)
	}

	signUp(t, ctx, n.URL, "curious@elsewhere.example")
	for _, path := range []string{"/apps/" + app.ID, "/apps/" + app.ID + "/webhooks", "/apps/" + app.ID + "/analytics", "/apps/" + app.ID + "/spi"} {
		if st := navigate(t, ctx, n.URL+path); st != http.StatusNotFound {
			t.Errorf("GET %s answered %d, want 404", path, st)
		}
		if body := eval[string](t, ctx, `document.body.innerText`); strings.Contains(body, "Secret project") || strings.Contains(body, app.ClientID) {
			t.Errorf("GET %s shows the other developer's app", path)
		}
	}
	screenshot(t, ctx, "20-not-found")
}

// testBankApprovesADataRequestInTheConsole: a data-access request made
// through the API waits in the console; the bank logs in with its admin
// token and approves it with a reason, and the API shows it approved.
func testBankApprovesADataRequestInTheConsole(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 2*time.Minute)
	bg := context.Background()
	dev, _, err := n.Identity.SignUp(bg, "data@scientist.example", "a long enough password", "Data Lab")
	if err != nil {
		t.Fatal(err)
	}
	app, secret, err := n.Identity.CreateApp(bg, dev, "Churn model", []string{auth.ScopeDataRead})
	if err != nil {
		t.Fatal(err)
	}
	token := appToken(t, n.URL, app.ClientID, secret)
	var sets struct {
		Data []struct{ ID, Name string } `json:"data"`
	}
	if st := api(t, "GET", n.URL+"/v1/datasets", token, nil, &sets); st != 200 || len(sets.Data) == 0 {
		t.Fatalf("datasets: %d %+v", st, sets)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var req struct{ ID, Status string }
	if st := api(t, "POST", n.URL+"/v1/dataset-access-requests", token, map[string]any{
		"dataset_id": sets.Data[0].ID, "purpose": "Train a churn model", "duration_days": 30, "recipient": id.Recipient().String(),
	}, &req); st != 201 || req.Status != "awaiting_approval" {
		t.Fatalf("access request: %d %+v", st, req)
	}

	// The console needs its own login; a wrong token is refused.
	navigate(t, ctx, n.URL+"/console")
	if p := location(t, ctx).Path; p != "/console/login" {
		t.Fatalf("/console without a session went to %s", p)
	}
	if st := adminTokenLogIn(t, ctx, "cwadm_wrong"); st != http.StatusUnauthorized {
		t.Errorf("a wrong admin token answered %d", st)
	}
	if st := adminTokenLogIn(t, ctx, platformtest.AdminToken); st != 200 {
		t.Fatalf("console login answered %d", st)
	}
	if got := text(t, ctx, "h1"); got != "Bank console" {
		t.Errorf("console heading = %q", got)
	}
	screenshot(t, ctx, "30-console")

	navigate(t, ctx, n.URL+"/console/data-requests")
	do(t, ctx, "giving a reason", chromedp.SendKeys(chromedp.ID("reason-"+req.ID), "Purpose fits the partnership"))
	screenshot(t, ctx, "31-console-data-requests")
	if st := submit(t, ctx, `button[aria-label="Approve `+req.ID+`"]`); st != 200 {
		t.Fatalf("approve answered %d", st)
	}
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "Approved") {
		t.Errorf("notice after approving = %q", got)
	}
	var after struct{ Status, Reason, DecidedBy string }
	api(t, "GET", n.URL+"/v1/dataset-access-requests/"+req.ID, token, nil, &after)
	after2 := map[string]any{}
	api(t, "GET", n.URL+"/v1/dataset-access-requests/"+req.ID, token, nil, &after2)
	if after.Status != "approved" || after2["reason"] != "Purpose fits the partnership" || after2["decided_by"] != "bank console" {
		t.Errorf("after approval the API shows %+v", after2)
	}

	// The other console pages, for a person to look at.
	navigate(t, ctx, n.URL+"/console/data-requests?status=approved")
	screenshot(t, ctx, "32-console-approved")
	navigate(t, ctx, n.URL+"/console/apps")
	screenshot(t, ctx, "33-console-apps")
	navigate(t, ctx, n.URL+"/console/apps/"+app.ID)
	screenshot(t, ctx, "34-console-app")
	navigate(t, ctx, n.URL+"/console/spi")
	screenshot(t, ctx, "35-console-spi")

	// On a phone the console's tables are cards: no table scrolls inside
	// a narrow box, and the page does not scroll sideways.
	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(n.URL+"/console/apps"))
	if eval[int](t, ctx, `document.querySelectorAll("#console-apps tbody tr").length`) == 0 {
		t.Fatal("the console's app table is empty")
	}
	if boxed := eval[int](t, ctx, `[...document.querySelectorAll(".table-wrap")].filter(w => w.scrollWidth > w.clientWidth + 1).length`); boxed > 0 {
		t.Errorf("%d tables scroll inside their box at phone width", boxed)
	}
	if eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("the console's apps page scrolls sideways at phone width")
	}
	if h := eval[float64](t, ctx, `document.querySelector("header.top").getBoundingClientRect().height`); h > 96 {
		t.Errorf("the console header is %.0f px high at phone width", h)
	}
	screenshot(t, ctx, "37-console-apps-phone")
	do(t, ctx, "back to desktop", chromedp.EmulateViewport(1280, 900))

	// The developer's view of the approved request has the pull command.
	c := formClient(t)
	_, csrf := page(t, c, n.URL+"/login")
	post(t, c, n.URL+"/login", url.Values{"csrf": {csrf}, "email": {"data@scientist.example"}, "password": {"a long enough password"}})
	body, _ := page(t, c, n.URL+"/apps/"+app.ID+"/data-requests/"+req.ID)
	if !strings.Contains(body, "causeway data pull "+req.ID) || !strings.Contains(body, "approved") {
		t.Errorf("the request page lacks the pull instructions:\n%s", body)
	}
}

// testFormsRefusePostsWithoutTheirToken: every form POST needs the CSRF
// token of its session; a plain POST without it, or with another
// session's, is 403 and changes nothing.
func testFormsRefusePostsWithoutTheirToken(t *testing.T, n *platformtest.Node) {
	anon := formClient(t)
	for _, path := range []string{"/login", "/signup", "/logout", "/apps", "/apps/app_x/delete", "/console/login", "/console/apps/app_x/approve",
		"/console/data-requests/dar_x/approve", "/reference/try", "/console/grants", "/console/datasets", "/console/grants/app_x/cus_x/revoke"} {
		res := post(t, anon, n.URL+path, url.Values{"email": {"x@example.com"}, "password": {"whatever12345"}, "token": {platformtest.AdminToken}})
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without a token answered %d, want 403", path, res.StatusCode)
		}
	}

	// Log in for real: the session cookie is HttpOnly and SameSite=Lax.
	c := formClient(t)
	_, csrf := page(t, c, n.URL+"/signup")
	res := post(t, c, n.URL+"/signup", url.Values{"csrf": {csrf}, "email": {"forms@example.com"}, "organization": {"Forms"}, "password": {"a long enough password"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up answered %d", res.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "cw_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie = %+v", session)
	}
	_, csrf = page(t, c, n.URL+"/apps")
	if csrf == "" {
		t.Fatal("the apps page has no form token")
	}
	for _, bad := range []string{"", "not-the-token", csrf + "x"} {
		res := post(t, c, n.URL+"/apps", url.Values{"csrf": {bad}, "name": {"Sneaky"}, "scope": {"events:read"}})
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("POST /apps with token %q answered %d, want 403", bad, res.StatusCode)
		}
	}
	// Another session's token does not work either.
	other := formClient(t)
	_, otherCSRF := page(t, other, n.URL+"/signup")
	if res := post(t, c, n.URL+"/apps", url.Values{"csrf": {otherCSRF}, "name": {"Sneaky"}, "scope": {"events:read"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("POST /apps with another visitor's token answered %d", res.StatusCode)
	}
	body, _ := page(t, c, n.URL+"/apps")
	if strings.Contains(body, "Sneaky") {
		t.Fatal("a POST without its token created an app")
	}
	// A browser's cross-site post is refused even with the right token.
	cross, _ := http.NewRequest("POST", n.URL+"/apps", strings.NewReader(url.Values{"csrf": {csrf}, "name": {"Framed"}, "scope": {"events:read"}}.Encode()))
	cross.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	if res, err := c.Do(cross); err != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site POST was not refused: %v %v", err, res.StatusCode)
	}
	// With the token, the same form works.
	if res := post(t, c, n.URL+"/apps", url.Values{"csrf": {csrf}, "name": {"Honest"}, "scope": {"events:read"}}); res.StatusCode != http.StatusCreated {
		t.Errorf("POST /apps with its token answered %d", res.StatusCode)
	}

	// The console: its cookie is SameSite=Strict and limited to /console.
	cc := formClient(t)
	_, csrf = page(t, cc, n.URL+"/console/login")
	res = post(t, cc, n.URL+"/console/login", url.Values{"csrf": {csrf}, "token": {platformtest.AdminToken}})
	var console *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "cw_console" {
			console = ck
		}
	}
	if res.StatusCode != http.StatusSeeOther || console == nil || !console.HttpOnly || console.SameSite != http.SameSiteStrictMode || console.Path != "/console" {
		t.Fatalf("console login: %d, cookie %+v", res.StatusCode, console)
	}
	if res := post(t, cc, n.URL+"/console/logout", url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("console POST without a token answered %d", res.StatusCode)
	}
	// A developer session does not open the console.
	if res, err := c.Get(n.URL + "/console"); err != nil || res.StatusCode != http.StatusSeeOther {
		t.Errorf("a developer session reached the console")
	}
}

// testPortalPagesCarryASecurityPolicy: no inline script may run, and no
// other site may frame the portal.
func testPortalPagesCarryASecurityPolicy(t *testing.T, n *platformtest.Node) {
	res, err := http.Get(n.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(b), "<main") {
		t.Errorf("GET / = %s %.200s", ct, b)
	}
	// The login page's next parameter never leaves the site.
	c := formClient(t)
	_, csrf := page(t, c, n.URL+"/signup")
	post(t, c, n.URL+"/signup", url.Values{"csrf": {csrf}, "email": {"next@example.com"}, "organization": {"N"}, "password": {"a long enough password"}})
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		res, err := c.Get(n.URL + "/login?next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); loc != "/" {
			t.Errorf("next=%s redirected to %q", next, loc)
		}
	}
}

// TestBankApprovesAppsAndActivatesSPIsInTheConsole: in production mode a
// new app waits; the bank approves it, gives it its own rate limit, and
// activates its bank-scope SPI registration with a deadline, a failure
// policy and a priority, all from the console.
func TestBankApprovesAppsAndActivatesSPIsInTheConsole(t *testing.T) {
	t.Parallel()
	ctx := tab(t, 2*time.Minute)
	// Production mode calls SPIs over https only.
	endpoint := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"decision":"approve","score":1,"reason":"ok"}`))
	}))
	defer endpoint.Close()
	cfg := platformtest.Production(platformtest.Embedded.Config(t), endpoint)
	// Four-eyes, on by default in production, has tests of its own; here
	// one operator's decisions take effect at once.
	cfg.FourEyes = []string{}
	n := platformtest.Start(t, cfg)
	bg := context.Background()
	dev, _, err := n.Identity.SignUp(bg, "fraud@solarworld.example", "a long enough password", "SolarWorld")
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := n.Identity.CreateApp(bg, dev, "Fraud shield", []string{auth.ScopeSPIWrite})
	if err != nil || app.Status != auth.AppPendingApproval {
		t.Fatalf("app: %v %+v", err, app)
	}
	reg, _, err := n.SPI.CreateRegistration(bg, auth.AppCaller(app.ID), spi.NewRegistration{ExtensionPoint: "payments.fraud-check", URL: endpoint.URL, Scope: spi.ScopeBank})
	if err != nil {
		t.Fatal(err)
	}

	navigate(t, ctx, n.URL+"/console/login")
	adminTokenLogIn(t, ctx, platformtest.AdminToken)
	if got := text(t, ctx, "main"); !strings.Contains(got, "Apps awaiting approval") || !strings.Contains(got, "Fraud shield") {
		t.Fatalf("the console overview does not show the waiting app:\n%s", got)
	}
	if st := submit(t, ctx, `button[aria-label="Approve Fraud shield"]`); st != 200 {
		t.Fatalf("approve answered %d", st)
	}
	if got, _ := n.Identity.App(bg, dev, app.ID); got.Status != auth.AppActive {
		t.Errorf("after approval the app is %s", got.Status)
	}

	// Two operators: this one looks at the suspended app while another
	// reinstates it; this one's click comes second and is told so.
	if _, err := n.Identity.Suspend(bg, app.ID); err != nil {
		t.Fatal(err)
	}
	navigate(t, ctx, n.URL+"/console/apps/"+app.ID)
	if _, err := n.Identity.Approve(bg, app.ID); err != nil {
		t.Fatal(err)
	}
	if st := submit(t, ctx, `form[action$="/approve"] button`); st != http.StatusConflict {
		t.Errorf("the second approval answered %d, want 409", st)
	}
	if got := text(t, ctx, ".error"); !strings.Contains(got, "already active") {
		t.Errorf("the second approval shows %q", got)
	}

	navigate(t, ctx, n.URL+"/console/apps/"+app.ID)
	do(t, ctx, "typing limits",
		chromedp.Clear(chromedp.ID("rps")), chromedp.SendKeys(chromedp.ID("rps"), "2.5"),
		chromedp.Clear(chromedp.ID("burst")), chromedp.SendKeys(chromedp.ID("burst"), "5"),
		chromedp.Clear(chromedp.ID("quota")), chromedp.SendKeys(chromedp.ID("quota"), "1000"))
	if st := submit(t, ctx, `form[action$="/limits"] button`); st != 200 {
		t.Fatalf("saving limits answered %d", st)
	}
	if l, custom, err := n.Gateway.AppLimits(bg, app.ID); err != nil || !custom || l.RequestsPerSecond != 2.5 || l.Burst != 5 || l.DailyQuota != 1000 {
		t.Errorf("limits after saving: %+v custom=%v err=%v", l, custom, err)
	}
	// A limit the gateway refuses is shown on the form, not saved.
	do(t, ctx, "typing a bad burst", chromedp.Clear(chromedp.ID("burst")), chromedp.SendKeys(chromedp.ID("burst"), "0"))
	if st := submit(t, ctx, `form[action$="/limits"] button`); st != http.StatusUnprocessableEntity {
		t.Errorf("a zero burst answered %d", st)
	}
	if got := text(t, ctx, ".error"); got == "" {
		t.Error("no error shown for a zero burst")
	}
	// The console's decisions are its operator's in the audit trail, with
	// the request they came with; the refused limits left nothing.
	trail, err := n.Audit.List(bg, auth.BankProcess(), audit.Filter{TargetID: app.ID, Operator: auth.AdminTokenOperator}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range trail.Data {
		actions = append(actions, e.Action)
		if e.RequestID == "" || e.ClientAddr != "127.0.0.1" {
			t.Errorf("the console's %s came from request %q at %q", e.Action, e.RequestID, e.ClientAddr)
		}
	}
	if !slices.Equal(actions, []string{"app.limits.set", "app.approve"}) {
		t.Errorf("the console's decisions in the audit trail: %v", actions)
	}

	navigate(t, ctx, n.URL+"/console/spi?status=pending_activation")
	do(t, ctx, "setting the activation",
		chromedp.Clear(chromedp.ID("t-"+reg.ID)), chromedp.SendKeys(chromedp.ID("t-"+reg.ID), "800"),
		chromedp.SetValue(chromedp.ID("f-"+reg.ID), "reject"),
		chromedp.Clear(chromedp.ID("p-"+reg.ID)), chromedp.SendKeys(chromedp.ID("p-"+reg.ID), "7"))
	screenshot(t, ctx, "36-console-spi-activate")
	if st := submit(t, ctx, `button[aria-label="Activate `+reg.ID+`"]`); st != 200 {
		t.Fatalf("activate answered %d", st)
	}
	got, err := n.SPI.Registration(bg, auth.BankProcess(), reg.ID)
	if err != nil || got.Status != spi.StatusActive || got.TimeoutMS != 800 || got.OnFailure != "reject" || got.Priority != 7 {
		t.Errorf("after activation: %+v %v", got, err)
	}

	// An active registration's form updates its settings.
	navigate(t, ctx, n.URL+"/console/spi?status=active")
	do(t, ctx, "changing the deadline", chromedp.Clear(chromedp.ID("t-"+reg.ID)), chromedp.SendKeys(chromedp.ID("t-"+reg.ID), "900"))
	if st := submit(t, ctx, `button[aria-label="Update `+reg.ID+`"]`); st != 200 {
		t.Fatalf("update answered %d", st)
	}
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "Updated") {
		t.Errorf("notice after the update = %q", got)
	}
	got, err = n.SPI.Registration(bg, auth.BankProcess(), reg.ID)
	if err != nil || got.Status != spi.StatusActive || got.TimeoutMS != 900 || got.Priority != 7 {
		t.Errorf("after the update: %+v %v", got, err)
	}
}

// testDataScientistRequestsADatasetInTheBrowser: from the catalog to a
// request awaiting the bank, with a pasted age recipient, and the pull
// command to use once it is approved.
func testDataScientistRequestsADatasetInTheBrowser(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 2*time.Minute)
	signUp(t, ctx, n.URL, "scientist@lab.example")
	do(t, ctx, "creating a data app",
		chromedp.SendKeys(chromedp.ID("name"), "Churn lab"),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="data:read"]`), chromedp.NodeVisible))
	submit(t, ctx, `form[action="/apps"] button[type="submit"]`)

	navigate(t, ctx, n.URL+"/datasets")
	submit(t, ctx, `.cards a`)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	// First a recipient that is not an age key: the form says so.
	do(t, ctx, "filling in the request",
		chromedp.SendKeys(chromedp.ID("purpose"), "Train a churn model"),
		chromedp.SendKeys(chromedp.ID("recipient"), "ssh-ed25519 AAAA"))
	if st := submit(t, ctx, `form[action$="/requests"] button`); st != http.StatusUnprocessableEntity {
		t.Errorf("a bad recipient answered %d", st)
	}
	if got := text(t, ctx, ".error"); !strings.Contains(got, "age") {
		t.Errorf("error for a bad recipient = %q", got)
	}
	do(t, ctx, "pasting the recipient", chromedp.Clear(chromedp.ID("recipient")), chromedp.SendKeys(chromedp.ID("recipient"), id.Recipient().String()))
	if st := submit(t, ctx, `form[action$="/requests"] button`); st != 200 {
		t.Fatalf("request answered %d", st)
	}
	body := text(t, ctx, "main")
	for _, want := range []string{"awaiting_approval", "causeway data pull dar_", "Train a churn model", id.Recipient().String()} {
		if !strings.Contains(body, want) {
			t.Errorf("the request page lacks %q", want)
		}
	}
	screenshot(t, ctx, "17-data-request")
}
