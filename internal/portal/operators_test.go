package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
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
