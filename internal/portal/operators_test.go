package portal_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/testkit"
)

const operatorPassword = "an operator's password 2231"

// newOperator creates an operator through the identity service, as an
// admin would.
func newOperator(t *testing.T, n *platformtest.Node, email string, roles ...auth.Role) *identity.Operator {
	t.Helper()
	ctx := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
	op, err := n.Identity.CreateOperator(ctx, auth.CallerFrom(ctx), identity.NewOperator{Email: email, Password: operatorPassword, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// operatorLogIn logs in to the console with an email, password and code,
// and returns the session cookie, or nil with the page when refused.
func operatorLogIn(t *testing.T, base, email, password, code string) (*http.Cookie, int, string) {
	t.Helper()
	res, body := send(t, "GET", base+"/console/login", nil)
	pre := cookieNamed(t, res, "cw_pre")
	res, body = send(t, "POST", base+"/console/login", url.Values{"csrf": {formToken(t, body)}, "email": {email},
		"password": {password}, "code": {code}}, pre)
	if res.StatusCode != http.StatusSeeOther {
		return nil, res.StatusCode, body
	}
	return cookieNamed(t, res, "cw_console"), res.StatusCode, body
}

// consolePost posts a console form with the page's CSRF token.
func consolePost(t *testing.T, base, page, action string, form url.Values, c *http.Cookie) (*http.Response, string) {
	t.Helper()
	_, body := send(t, "GET", base+page, nil, c)
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", formToken(t, body))
	return send(t, "POST", base+action, form, c)
}

// TestOperatorsLogInToTheConsoleAndActWithinTheirRoles: a named operator
// logs in with email and password, sees what a viewer sees and is refused
// what their roles do not allow; an admin's change to their roles ends
// the session at once, on every node.
func TestOperatorsLogInToTheConsoleAndActWithinTheirRoles(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		viewer := newOperator(t, n, "viewer@bank.example", auth.RoleViewer)
		_, appID, _, _ := sandboxApp(t, n, "roles-console@example.com", "accounts:read")

		if c, status, _ := operatorLogIn(t, n.URL, "viewer@bank.example", "not the password", ""); c != nil || status != http.StatusUnauthorized {
			t.Fatalf("a wrong password = %d", status)
		}
		c, status, body := operatorLogIn(t, n.URL, "viewer@bank.example", operatorPassword, "")
		if c == nil {
			t.Fatalf("operator login = %d\n%s", status, body)
		}
		if !consoleOpens(t, n.URL, c) {
			t.Fatal("the operator's cookie does not open the console")
		}
		res, _ := consolePost(t, n.URL, "/console/apps", "/console/apps/"+appID+"/suspend", nil, c)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("a viewer suspending an app in the console = %d, want 403", res.StatusCode)
		}
		if _, body := send(t, "GET", n.URL+"/console/operators", nil, c); !strings.Contains(body, "role admin") {
			t.Errorf("a viewer opening the operators page was not refused:\n%.300s", body)
		}

		// An admin widens the viewer's roles: their session ends, and a
		// new login acts with the new roles.
		ctx := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
		roles := auth.NewRoles(auth.RoleAppManager)
		if _, err := n.Identity.ChangeOperator(ctx, auth.CallerFrom(ctx), viewer.ID, identity.OperatorChange{Roles: &roles}); err != nil {
			t.Fatal(err)
		}
		if consoleOpens(t, n.URL, c) {
			t.Error("the session outlived a change of the operator's roles")
		}
		c, _, _ = operatorLogIn(t, n.URL, "viewer@bank.example", operatorPassword, "")
		res, _ = consolePost(t, n.URL, "/console/apps", "/console/apps/"+appID+"/suspend", nil, c)
		if res.StatusCode != http.StatusSeeOther {
			t.Errorf("an app manager suspending an app = %d, want 303", res.StatusCode)
		}
	})
}

// TestProductionConsoleOpensOnlyOnceTheSecondFactorIsOn: in production
// mode an operator without a second factor reaches only their account
// page, sets up TOTP there (the page shows the key once), gets recovery
// codes, and from then on logs in only with a code, each code once.
func TestProductionConsoleOpensOnlyOnceTheSecondFactorIsOn(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.Mode = "production"
	cfg.PublicURL = "https://api.bank.test"
	n := platformtest.Start(t, cfg)
	newOperator(t, n, "risk@bank.example", auth.RoleRiskOfficer)

	c, status, body := operatorLogIn(t, n.URL, "risk@bank.example", operatorPassword, "")
	if c == nil {
		t.Fatalf("first login = %d\n%s", status, body)
	}
	res, _ := send(t, "GET", n.URL+"/console/spi", nil, c)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/account") {
		t.Fatalf("before enrolling, /console/spi = %d to %q; want the account page", res.StatusCode, res.Header.Get("Location"))
	}
	res, body = consolePost(t, n.URL, "/console/account", "/console/account/totp", nil, c)
	secret := between(body, `<code id="totp-secret">`, `</code>`)
	if res.StatusCode != http.StatusOK || secret == "" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("beginning TOTP = %d, secret %q, Cache-Control %q", res.StatusCode, secret, res.Header.Get("Cache-Control"))
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	res, body = consolePost(t, n.URL, "/console/account", "/console/account/totp/confirm", url.Values{"code": {code}}, c)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="recovery-codes"`) {
		t.Fatalf("confirming TOTP = %d\n%.500s", res.StatusCode, body)
	}
	recovery := between(body, `<ul id="recovery-codes" class="mono"><li>`, `</li>`)
	// Turning it on ended the old session and started a new one.
	if consoleOpens(t, n.URL, c) {
		t.Error("the session from before the second factor still opens the console")
	}
	fresh := cookieNamed(t, res, "cw_console")
	if res, _ := send(t, "GET", n.URL+"/console/spi", nil, fresh); res.StatusCode != http.StatusOK {
		t.Errorf("after enrolling, /console/spi = %d", res.StatusCode)
	}

	if c, status, body := operatorLogIn(t, n.URL, "risk@bank.example", operatorPassword, ""); c != nil || status != http.StatusUnauthorized ||
		!strings.Contains(body, "authenticator app") {
		t.Errorf("a login without a code = %d", status)
	}
	if c, _, _ := operatorLogIn(t, n.URL, "risk@bank.example", operatorPassword, recovery); c == nil {
		t.Error("a recovery code did not log in")
	}
	if c, _, _ := operatorLogIn(t, n.URL, "risk@bank.example", operatorPassword, recovery); c != nil {
		t.Error("a recovery code logged in twice")
	}
	// A code of a step already used is refused: the next step's code
	// (accepted within the one step of skew) works, once.
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if c, status, _ := operatorLogIn(t, n.URL, "risk@bank.example", operatorPassword, next); c == nil {
		t.Errorf("a fresh code = %d", status)
	}
	if c, _, _ := operatorLogIn(t, n.URL, "risk@bank.example", operatorPassword, next); c != nil {
		t.Error("the same code logged in twice")
	}
}

// between returns the text of s between the first before and the after
// that follows it.
func between(s, before, after string) string {
	_, rest, ok := strings.Cut(s, before)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, after)
	return v
}

// testAdminAddsAnOperatorWhoSetsUpTOTPInTheBrowser: in Chromium, an
// admin operator adds a risk officer on the operators page; the risk
// officer logs in, turns on a second factor with the key the page shows,
// keeps the recovery codes, creates an API token that works once shown,
// and logs in again with a code. The admin's own row cannot be changed.
func testAdminAddsAnOperatorWhoSetsUpTOTPInTheBrowser(t *testing.T, n *platformtest.Node) {
	admin := newOperator(t, n, "admin.browser@bank.example", auth.RoleAdmin)
	ctx := tab(t, 2*time.Minute)
	logIn := func(email, password, code string) int64 {
		navigate(t, ctx, n.URL+"/console/login")
		do(t, ctx, "typing the credentials", chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), password), chromedp.SendKeys(chromedp.ID("code"), code))
		return submit(t, ctx, `#operator-login button[type="submit"]`)
	}
	if st := logIn(admin.Email, operatorPassword, ""); st != http.StatusOK {
		t.Fatalf("the admin's login answered %d", st)
	}
	navigate(t, ctx, n.URL+"/console/operators")
	if got := text(t, ctx, `tr[data-operator="`+admin.ID+`"]`); !strings.Contains(got, "(you)") {
		t.Errorf("the admin's own row = %q, want it read-only", got)
	}
	do(t, ctx, "filling in the new operator",
		chromedp.SendKeys(chromedp.ID("op-email"), "risk.browser@bank.example"),
		chromedp.SendKeys(chromedp.ID("op-name"), "Rita Risk"),
		chromedp.SendKeys(chromedp.ID("op-password"), operatorPassword),
		chromedp.Click(chromedp.CSS(`#operator-form input[value="risk-officer"]`)))
	if st := submit(t, ctx, `#operator-form button[type="submit"]`); st != http.StatusOK {
		t.Fatalf("adding the operator answered %d", st)
	}
	if got := text(t, ctx, "#operator-table"); !strings.Contains(got, "Rita Risk") {
		t.Fatalf("the new operator is not listed:\n%s", got)
	}
	screenshot(t, ctx, "60-console-operators")
	submit(t, ctx, `form[action="/console/logout"] button`)

	if st := logIn("risk.browser@bank.example", operatorPassword, ""); st != http.StatusOK {
		t.Fatalf("the risk officer's login answered %d", st)
	}
	navigate(t, ctx, n.URL+"/console/account")
	if got := text(t, ctx, "#my-roles"); got != "risk-officer" {
		t.Errorf("roles on the account page = %q", got)
	}
	submit(t, ctx, "#totp-begin")
	secret := text(t, ctx, "#totp-secret")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "typing the first code", chromedp.SendKeys(chromedp.ID("code"), code))
	submit(t, ctx, `form[action="/console/account/totp/confirm"] button`)
	codes := eval[int](t, ctx, `document.querySelectorAll("#recovery-codes li").length`)
	if codes != 10 {
		t.Fatalf("%d recovery codes shown, want 10\n%s", codes, text(t, ctx, "main"))
	}
	screenshot(t, ctx, "61-console-recovery-codes")

	navigate(t, ctx, n.URL+"/console/account")
	if got := text(t, ctx, "#totp-status"); !strings.HasPrefix(got, "On.") {
		t.Errorf("second factor status = %q", got)
	}
	do(t, ctx, "naming a token", chromedp.SendKeys(chromedp.ID("token-name"), "release script"))
	if st := submit(t, ctx, `#token-form button[type="submit"]`); st != http.StatusCreated {
		t.Fatalf("creating a token answered %d", st)
	}
	token := text(t, ctx, "#new-token")
	var me struct {
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	}
	if code := api(t, "GET", n.URL+"/bank/v1/me", token, nil, &me); code != http.StatusOK || strings.Join(me.Roles, ",") != "risk-officer" {
		t.Errorf("GET /bank/v1/me with the new token = %d %+v", code, me)
	}
	navigate(t, ctx, n.URL+"/console/account")
	if strings.Contains(eval[string](t, ctx, `document.documentElement.outerHTML`), token) {
		t.Error("the token is shown again after it was created")
	}
	submit(t, ctx, `form[action="/console/logout"] button`)

	if st := logIn("risk.browser@bank.example", operatorPassword, ""); st != http.StatusUnauthorized {
		t.Errorf("a login without the code answered %d", st)
	}
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	// The page keeps the email and asks for the password and the code.
	do(t, ctx, "typing the password and code", chromedp.SendKeys(chromedp.ID("password"), operatorPassword), chromedp.SendKeys(chromedp.ID("code"), next))
	if st := submit(t, ctx, `#operator-login button[type="submit"]`); st != http.StatusOK || location(t, ctx).Path != "/console" {
		t.Errorf("the login with a code answered %d at %s", st, location(t, ctx).Path)
	}
}

// TestConsoleDecisionsWaitForASecondOperator: with four-eyes on, a grant
// made on the console's grants page is a proposal; its proposer cannot
// confirm it, and another app manager confirms it on the approvals page,
// which carries it out.
func TestConsoleDecisionsWaitForASecondOperator(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.FourEyes = []string{"grant.create"}
	n := platformtest.Start(t, cfg)
	newOperator(t, n, "maker.console@bank.example", auth.RoleAppManager)
	newOperator(t, n, "checker.console@bank.example", auth.RoleAppManager)
	_, appID, _, _ := sandboxApp(t, n, "foureyes-console@example.com", "accounts:read")
	customers, err := n.Bank.Customers(context.Background(), auth.BankProcess(), 1, "")
	if err != nil || len(customers.Data) == 0 {
		t.Fatal(err)
	}
	granted := func() bool {
		grants, err := n.Bank.Grants(context.Background(), auth.BankProcess(), appID, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(grants.Data) > 0
	}

	maker, _, _ := operatorLogIn(t, n.URL, "maker.console@bank.example", operatorPassword, "")
	res, _ := consolePost(t, n.URL, "/console/grants", "/console/grants", url.Values{"app_id": {appID}, "customer_id": {customers.Data[0].ID}}, maker)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/proposals?done=proposed" {
		t.Fatalf("granting with four-eyes on = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if granted() {
		t.Fatal("the grant took effect before a second operator confirmed it")
	}
	props, err := n.FourEyes.Proposals(context.Background(), auth.BankProcess(), true, 10, "")
	if err != nil || len(props.Data) != 1 {
		t.Fatalf("pending proposals: %v, %v", props, err)
	}
	id := props.Data[0].ID
	_, body := send(t, "GET", n.URL+"/console/proposals", nil, maker)
	if strings.Contains(body, `action="/console/proposals/`+id+`/confirm"`) {
		t.Error("the proposer is offered to confirm their own proposal")
	}
	if res, _ := consolePost(t, n.URL, "/console/proposals", "/console/proposals/"+id+"/confirm", nil, maker); res.StatusCode != http.StatusForbidden {
		t.Errorf("the proposer confirming = %d, want 403", res.StatusCode)
	}
	checker, _, _ := operatorLogIn(t, n.URL, "checker.console@bank.example", operatorPassword, "")
	_, body = send(t, "GET", n.URL+"/console/proposals", nil, checker)
	if !strings.Contains(body, `action="/console/proposals/`+id+`/confirm"`) {
		t.Fatalf("the second operator is not offered to confirm:\n%.400s", body)
	}
	res, _ = consolePost(t, n.URL, "/console/proposals", "/console/proposals/"+id+"/confirm", nil, checker)
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "done=confirmed") {
		t.Errorf("the second operator confirming = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if !granted() {
		t.Error("the confirmed grant did not take effect")
	}
}

// TestOperatorSessionsEndOnEveryNodeAtOnce: an operator's console session
// opens the console on every node of the database, and logging out on one
// node, or being disabled through another, ends it on all of them at once.
func TestOperatorSessionsEndOnEveryNodeAtOnce(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		// Nodes of one installation share the secret key.
		cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		a := platformtest.Start(t, cfg)
		b := a
		if rt.Name == platformtest.ScaleOut.Name {
			second := cfg
			second.DataDir = testkit.DataDir(t)
			b = platformtest.Start(t, second)
		}
		op := newOperator(t, a, "two.nodes@bank.example", auth.RoleViewer)
		c, status, _ := operatorLogIn(t, a.URL, op.Email, operatorPassword, "")
		if c == nil || !consoleOpens(t, b.URL, c) {
			t.Fatalf("the session (login %d) does not open the console on the other node", status)
		}
		consoleLogOut(t, a.URL, c)
		if consoleOpens(t, b.URL, c) {
			t.Error("the cookie opens the other node's console after logging out")
		}

		c, _, _ = operatorLogIn(t, a.URL, op.Email, operatorPassword, "")
		disable, _ := http.NewRequest("PATCH", b.URL+"/bank/v1/operators/"+op.ID, strings.NewReader(`{"status":"disabled"}`))
		disable.Header.Set("Authorization", "Bearer "+platformtest.AdminToken)
		disable.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(disable)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("disabling through the other node: %v %v", res, err)
		}
		res.Body.Close()
		if consoleOpens(t, a.URL, c) {
			t.Error("a disabled operator's session still opens the console")
		}
		if c, _, _ := operatorLogIn(t, a.URL, op.Email, operatorPassword, ""); c != nil {
			t.Error("a disabled operator logged in")
		}
	})
}

// TestFourEyesInTheBrowser: in Chromium, with four-eyes on, one risk
// officer activates a bank-wide SPI and it waits as a proposal; another
// risk officer confirms it on the approvals page, it takes effect with the
// settings proposed, and the audit page shows who proposed and who
// confirmed.
func TestFourEyesInTheBrowser(t *testing.T) {
	t.Parallel()
	endpoint := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"decision":"approve","score":1,"reason":"ok"}`))
	}))
	defer endpoint.Close()
	cfg := platformtest.Production(platformtest.Embedded.Config(t), endpoint)
	cfg.FourEyes = []string{"spi.activate"}
	n := platformtest.Start(t, cfg)
	bg := context.Background()
	maker := newOperator(t, n, "rita.maker@bank.example", auth.RoleRiskOfficer)
	checker := newOperator(t, n, "carl.checker@bank.example", auth.RoleRiskOfficer)
	// Production mode asks named operators for a second factor first.
	secrets := map[string]string{}
	for _, op := range []*identity.Operator{maker, checker} {
		enrollment, err := n.Identity.BeginTOTP(bg, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := totp.GenerateCode(enrollment.Secret, time.Now())
		if _, err := n.Identity.ConfirmTOTP(bg, op.ID, code); err != nil {
			t.Fatal(err)
		}
		secrets[op.Email] = enrollment.Secret
	}
	dev, _, err := n.Identity.SignUp(bg, "shield@solarworld.example", "a long enough password", "SolarWorld")
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := n.Identity.CreateApp(bg, dev, "Fraud shield", []string{auth.ScopeSPIWrite})
	if err != nil {
		t.Fatal(err)
	}
	reg, _, err := n.SPI.CreateRegistration(bg, auth.AppCaller(app.ID), spi.NewRegistration{ExtensionPoint: "payments.fraud-check", URL: endpoint.URL, Scope: spi.ScopeBank})
	if err != nil {
		t.Fatal(err)
	}

	ctx := tab(t, 2*time.Minute)
	logIn := func(op *identity.Operator) {
		t.Helper()
		navigate(t, ctx, n.URL+"/console/login")
		// The next step's code: the enrollment spent this step's.
		code, _ := totp.GenerateCode(secrets[op.Email], time.Now().Add(30*time.Second))
		do(t, ctx, "typing the credentials", chromedp.SendKeys(chromedp.ID("email"), op.Email),
			chromedp.SendKeys(chromedp.ID("password"), operatorPassword), chromedp.SendKeys(chromedp.ID("code"), code))
		if st := submit(t, ctx, `#operator-login button[type="submit"]`); st != http.StatusOK || location(t, ctx).Path != "/console" {
			t.Fatalf("%s's login answered %d at %s", op.Email, st, location(t, ctx).Path)
		}
	}

	logIn(maker)
	navigate(t, ctx, n.URL+"/console/spi?status=pending_activation")
	do(t, ctx, "setting the timeout", chromedp.Clear(chromedp.ID("t-"+reg.ID)), chromedp.SendKeys(chromedp.ID("t-"+reg.ID), "900"))
	if st := submit(t, ctx, `button[aria-label="Activate `+reg.ID+`"]`); st != http.StatusOK || location(t, ctx).Path != "/console/proposals" {
		t.Fatalf("activating with four-eyes answered %d at %s", st, location(t, ctx).Path)
	}
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "second operator") {
		t.Errorf("notice after proposing = %q", got)
	}
	if got, _ := n.SPI.Registration(bg, auth.BankProcess(), reg.ID); got.Status != spi.StatusPendingActivation {
		t.Fatalf("the registration is %s before a second operator confirmed", got.Status)
	}
	screenshot(t, ctx, "62-console-proposal")
	submit(t, ctx, `form[action="/console/logout"] button`)

	logIn(checker)
	navigate(t, ctx, n.URL+"/console/proposals")
	if st := submit(t, ctx, `#proposal-table button[aria-label^="Confirm spi.activate"]`); st != http.StatusOK {
		t.Fatalf("confirming answered %d", st)
	}
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "Confirmed") {
		t.Errorf("notice after confirming = %q\n%s", got, text(t, ctx, "main"))
	}
	got, err := n.SPI.Registration(bg, auth.BankProcess(), reg.ID)
	if err != nil || got.Status != spi.StatusActive || got.TimeoutMS != 900 {
		t.Fatalf("after confirmation: %+v %v", got, err)
	}

	navigate(t, ctx, n.URL+"/console/audit?action=spi.*")
	screenshot(t, ctx, "63-console-audit")
	proposedBy := eval[string](t, ctx, `(document.querySelector('#audit-table tr[data-action="spi.activate.propose"]') || {dataset: {}}).dataset.actor || ""`)
	confirmedBy := eval[string](t, ctx, `(document.querySelector('#audit-table tr[data-action="spi.activate"]') || {dataset: {}}).dataset.actor || ""`)
	confirms := eval[string](t, ctx, `(document.querySelector('#audit-table tr[data-action="spi.activate"]') || {dataset: {}}).dataset.confirms || ""`)
	if proposedBy != "operator:"+maker.ID || confirmedBy != "operator:"+checker.ID || !strings.HasPrefix(confirms, "prop_") {
		t.Errorf("the audit page shows proposed by %q, confirmed by %q (confirms %q)", proposedBy, confirmedBy, confirms)
	}
	navigate(t, ctx, n.URL+"/console/audit?verify=1")
	if got := text(t, ctx, "#audit-verdict"); !strings.HasPrefix(got, "The chain verifies") {
		t.Errorf("the chain's check = %q", got)
	}
}
