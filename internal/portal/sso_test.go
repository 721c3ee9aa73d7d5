package portal_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/sso"
	"github.com/causewayhq/causeway/internal/sso/ssotest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// ssoNode starts a node whose console signs in at a test provider
// started as o says, whose groups bank-risk and bank-apps map to
// risk-officer and app-manager (a group named like a role is that role).
// The provider knows ada (bank-risk, viewer, staff) and signs her in.
func ssoNode(t *testing.T, cfg platform.Config, o ssotest.Options) (*platformtest.Node, *ssotest.Provider) {
	t.Helper()
	idp := ssotest.Start(t, o)
	cfg.SSO = sso.Config{Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.Secret,
		RoleMap: map[string]auth.Role{"bank-risk": auth.RoleRiskOfficer, "bank-apps": auth.RoleAppManager}}
	if o.TLS {
		cfg.TargetRootCAs = append(cfg.TargetRootCAs, idp.Certificate())
	}
	n := platformtest.Start(t, cfg)
	issuer, err := n.Config.Issuer()
	if err != nil {
		t.Fatal(err)
	}
	idp.SetRedirect(issuer + sso.CallbackPath)
	idp.AddUser("ada", ssotest.User{Email: "ada@bank.example", Name: "Ada Lovelace", Groups: []string{"bank-risk", "viewer", "staff"}})
	idp.SignInAs("ada")
	return n, idp
}

// ssoWalker walks sign-ins at the provider as a browser would, with a
// client that trusts the provider's certificate.
type ssoWalker struct {
	n      *platformtest.Node
	client *http.Client
}

func newSSOWalker(n *platformtest.Node, idp *ssotest.Provider) *ssoWalker {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cert := idp.Certificate(); cert != nil {
		roots := x509.NewCertPool()
		roots.AddCert(cert)
		transport.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	return &ssoWalker{n: n, client: &http.Client{Transport: transport, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// toCallback begins a sign-in on the console and follows the provider's
// redirects up to the console's callback, which it does not open. It
// returns the callback's URL on the node (whatever public URL the
// provider sent the browser to) and the binding cookie the start set.
func (w *ssoWalker) toCallback(t *testing.T) (*url.URL, *http.Cookie) {
	t.Helper()
	res, body := send(t, "GET", w.n.URL+"/console/sso/start", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /console/sso/start = %d\n%.300s", res.StatusCode, body)
	}
	binding := cookieNamed(t, res, sso.BindingCookieName)
	next := res.Header.Get("Location")
	for range 10 {
		res, err := w.client.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if u := res.Request.URL; res.StatusCode == http.StatusOK && u.Path == "/login" {
			// The provider's login page (ssotest.Options.LoginPage): its
			// button posts the request's id back.
			res, err = w.client.PostForm(u.Scheme+"://"+u.Host+"/login", url.Values{"id": {u.Query().Get("id")}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		loc, err := res.Location()
		if err != nil {
			t.Fatalf("GET %s answered %d without sending the browser on", next, res.StatusCode)
		}
		if loc.Path == sso.CallbackPath {
			node, _ := url.Parse(w.n.URL)
			loc.Scheme, loc.Host = node.Scheme, node.Host
			return loc, binding
		}
		next = loc.String()
	}
	t.Fatal("more than 10 redirects before the callback")
	return nil, nil
}

// signIn walks a whole sign-in and returns the console cookie it set.
func (w *ssoWalker) signIn(t *testing.T) *http.Cookie {
	t.Helper()
	cb, binding := w.toCallback(t)
	res, body := send(t, "GET", cb.String(), nil, binding)
	if res.StatusCode != http.StatusOK || res.Header.Get("Refresh") != "0; url=/console" || !strings.Contains(body, `href="/console"`) {
		t.Fatalf("the callback = %d, Refresh %q\n%.500s", res.StatusCode, res.Header.Get("Refresh"), body)
	}
	return cookieNamed(t, res, "cw_console")
}

// wantLoginPageSaying fails t unless the answer is the login page at
// status saying says, without a console session.
func wantLoginPageSaying(t *testing.T, what string, res *http.Response, body string, status int, says string) {
	t.Helper()
	if res.StatusCode != status || !strings.Contains(body, `id="operator-login"`) || !strings.Contains(body, "Single sign-on did not work") ||
		!strings.Contains(body, says) {
		t.Errorf("%s = %d, want the login page at %d saying %q\n%.2000s", what, res.StatusCode, status, says, body)
	}
	for _, c := range res.Cookies() {
		if c.Name == "cw_console" && c.Value != "" {
			t.Errorf("%s set a console session", what)
		}
	}
}

// TestConsoleSingleSignOn runs the single sign-on tests on one sandbox
// node whose provider listens on 127.0.0.2, another site to the browser,
// and has a login page to click through.
func TestConsoleSingleSignOn(t *testing.T) {
	t.Parallel()
	n, idp := ssoNode(t, platformtest.Embedded.Config(t), ssotest.Options{Host: "127.0.0.2", LoginPage: true})
	for _, tc := range []struct {
		name string
		test func(*testing.T, *platformtest.Node, *ssotest.Provider)
	}{
		{"OperatorSignsInAtTheProviderInTheBrowser", testOperatorSignsInAtTheProviderInTheBrowser},
		{"ReplayedCallbackIsRefused", testReplayedCallbackIsRefused},
		{"CallbackInAnotherBrowserIsRefused", testCallbackInAnotherBrowserIsRefused},
		{"RefusedSignInsShowTheLoginPage", testRefusedSignInsShowTheLoginPage},
		{"SignInLinksAnExistingOperator", testSignInLinksAnExistingOperator},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, n, idp) })
	}
}

// testOperatorSignsInAtTheProviderInTheBrowser: in Chromium, the login
// page offers the provider first; its link leads through the provider
// (another site) back to the console, open with the roles the groups
// claim maps to. After the provider narrows the groups, a sign-in in
// another browser holds the narrower roles, and the first browser's
// session has ended.
func testOperatorSignsInAtTheProviderInTheBrowser(t *testing.T, n *platformtest.Node, idp *ssotest.Provider) {
	idp.AddUser("ada", ssotest.User{Email: "ada@bank.example", Name: "Ada Lovelace", Groups: []string{"bank-risk", "viewer", "staff"}})
	idp.SignInAs("ada")
	signIn := func(ctx context.Context, shots bool) {
		t.Helper()
		navigate(t, ctx, n.URL+"/console/login")
		if shots {
			screenshot(t, ctx, "70-console-login-single-sign-on")
		}
		if !eval[bool](t, ctx, `!!(document.getElementById("sso-login").compareDocumentPosition(document.getElementById("operator-login")) & Node.DOCUMENT_POSITION_FOLLOWING)`) {
			t.Error("the provider's link does not come before the password form")
		}
		if st := submit(t, ctx, "#sso-login"); st != http.StatusOK || "http://"+location(t, ctx).Host != idp.URL {
			t.Fatalf("the link to the provider answered %d at %s", st, location(t, ctx))
		}
		// The rest of the sign-in starts from the provider's page, as it
		// does after a person signs in there: a navigation another site
		// began, on which the browser holds back SameSite=Strict cookies.
		if st := submit(t, ctx, "#idp-sign-in"); st != http.StatusOK {
			t.Fatalf("the sign-in at the provider ended with %d at %s", st, location(t, ctx))
		}
		// The callback's page moves on by itself: wait for the next page,
		// through the moment its document is replaced.
		testkit.WaitFor(t, "the page after the callback", func() bool {
			path, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.pathname : ""`))
			return err == nil && path != "" && path != sso.CallbackPath
		})
		if u := location(t, ctx); u.Path != "/console" || "http://"+u.Host != n.URL {
			t.Fatalf("after the sign-in the browser is at %s, want %s/console", u, n.URL)
		}
	}

	first := tab(t, 2*time.Minute)
	signIn(first, true)
	screenshot(t, first, "71-console-after-single-sign-on")
	navigate(t, first, n.URL+"/console/account")
	if got := text(t, first, "#my-roles"); got != "risk-officer, viewer" {
		t.Errorf("roles after the sign-in = %q, want risk-officer, viewer", got)
	}
	if got := text(t, first, "main"); !strings.Contains(got, "Ada Lovelace (ada@bank.example)") {
		t.Errorf("the account page does not name the operator:\n%s", got)
	}
	navigate(t, first, n.URL+"/console/operators")
	if got := text(t, first, "main"); !strings.Contains(got, "role admin") {
		t.Errorf("a risk officer opened the operators page:\n%.300s", got)
	}

	idp.AddUser("ada", ssotest.User{Email: "ada@bank.example", Name: "Ada Lovelace", Groups: []string{"viewer"}})
	second := tab(t, 2*time.Minute)
	signIn(second, false)
	navigate(t, second, n.URL+"/console/account")
	if got := text(t, second, "#my-roles"); got != "viewer" {
		t.Errorf("roles after the provider narrowed the groups = %q, want viewer", got)
	}
	navigate(t, first, n.URL+"/console/account")
	if p := location(t, first).Path; p != "/console/login" {
		t.Errorf("the session from before the roles narrowed is at %s, want the login page", p)
	}
}

// testReplayedCallbackIsRefused: a callback opened a second time, with
// the same binding cookie, opens no session: 401 on the login page.
func testReplayedCallbackIsRefused(t *testing.T, n *platformtest.Node, idp *ssotest.Provider) {
	idp.SignInAs("ada")
	w := newSSOWalker(n, idp)
	cb, binding := w.toCallback(t)
	res, _ := send(t, "GET", cb.String(), nil, binding)
	if res.StatusCode != http.StatusOK || !consoleOpens(t, n.URL, cookieNamed(t, res, "cw_console")) {
		t.Fatalf("the first callback = %d, or its session does not open the console", res.StatusCode)
	}
	cleared := false
	for _, c := range res.Cookies() {
		cleared = cleared || c.Name == sso.BindingCookieName && c.MaxAge < 0
	}
	if !cleared {
		t.Error("the callback did not delete the binding cookie")
	}
	res, body := send(t, "GET", cb.String(), nil, binding)
	wantLoginPageSaying(t, "the replayed callback", res, body, http.StatusUnauthorized, "start the sign-in again")
}

// testCallbackInAnotherBrowserIsRefused: a callback URL opened in another
// browser, with its own sign-in begun or none, is 401 and does not spend
// the sign-in: the browser that began it finishes it afterwards.
func testCallbackInAnotherBrowserIsRefused(t *testing.T, n *platformtest.Node, idp *ssotest.Provider) {
	idp.SignInAs("ada")
	w := newSSOWalker(n, idp)
	mine, myBinding := w.toCallback(t)
	_, theirBinding := w.toCallback(t)
	res, body := send(t, "GET", mine.String(), nil, theirBinding)
	wantLoginPageSaying(t, "another browser's callback", res, body, http.StatusUnauthorized, "another browser")
	res, body = send(t, "GET", mine.String(), nil)
	wantLoginPageSaying(t, "a callback without a binding cookie", res, body, http.StatusUnauthorized, "another browser")
	if res, _ := send(t, "GET", mine.String(), nil, myBinding); res.StatusCode != http.StatusOK {
		t.Errorf("the browser that began the sign-in = %d, want 200", res.StatusCode)
	}
}

// testRefusedSignInsShowTheLoginPage: the provider's refusal, a person
// whose groups map to no role, a disabled operator and a malformed
// callback each show the login page with why, at a 4xx status.
func testRefusedSignInsShowTheLoginPage(t *testing.T, n *platformtest.Node, idp *ssotest.Provider) {
	w := newSSOWalker(n, idp)
	finish := func() (*http.Response, string) {
		t.Helper()
		cb, binding := w.toCallback(t)
		return send(t, "GET", cb.String(), nil, binding)
	}
	idp.SignInAs("")
	res, body := finish()
	wantLoginPageSaying(t, "the provider's access_denied", res, body, http.StatusForbidden, "the user declined")

	idp.AddUser("bob", ssotest.User{Email: "bob@bank.example", Name: "Bob", Groups: []string{"marketing"}})
	idp.SignInAs("bob")
	res, body = finish()
	wantLoginPageSaying(t, "groups that map to no role", res, body, http.StatusForbidden, "&#34;marketing&#34;")

	idp.AddUser("dora", ssotest.User{Email: "dora@bank.example", Name: "Dora", Groups: []string{"viewer"}})
	idp.SignInAs("dora")
	w.signIn(t)
	dora := operatorByEmail(t, n, "dora@bank.example")
	ctx := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
	disabled := identity.OperatorDisabled
	if _, err := n.Identity.ChangeOperator(ctx, auth.CallerFrom(ctx), dora.ID, identity.OperatorChange{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	res, body = finish()
	wantLoginPageSaying(t, "a disabled operator", res, body, http.StatusUnauthorized, "disabled")

	res, body = send(t, "GET", n.URL+sso.CallbackPath+"?code=abc", nil)
	wantLoginPageSaying(t, "a callback without a state", res, body, http.StatusBadRequest, "no state")
	// A provider may describe an error on several lines.
	res, body = send(t, "GET", n.URL+sso.CallbackPath+"?state=s&error=server_error&error_description=line+one%0Aline+two", nil)
	wantLoginPageSaying(t, "an error described on two lines", res, body, http.StatusUnauthorized, "start the sign-in again")
}

// testSignInLinksAnExistingOperator: an operator the bank created with a
// password signs in at the provider (which verified the email) as the
// same account, with the provider's roles and its spelling of the email.
func testSignInLinksAnExistingOperator(t *testing.T, n *platformtest.Node, idp *ssotest.Provider) {
	erin := newOperator(t, n, "erin@bank.example", auth.RoleAdmin)
	idp.AddUser("erin", ssotest.User{Email: "Erin@bank.example", Name: "Erin", Groups: []string{"bank-apps"}})
	idp.SignInAs("erin")
	c := newSSOWalker(n, idp).signIn(t)
	_, body := send(t, "GET", n.URL+"/console/account", nil, c)
	if !strings.Contains(body, `<span id="my-roles">app-manager</span>`) || !strings.Contains(body, "Erin@bank.example") {
		t.Errorf("the linked operator's account page:\n%.1500s", body)
	}
	got, err := n.Identity.Operator(context.Background(), auth.BankProcess(), erin.ID)
	if err != nil || !got.SSO || got.Roles.String() != "app-manager" {
		t.Errorf("the operator after the sign-in = %+v, %v; want %s linked, with the provider's roles", got, err, erin.ID)
	}
}

// operatorByEmail finds an operator by email.
func operatorByEmail(t *testing.T, n *platformtest.Node, email string) identity.Operator {
	t.Helper()
	ops, err := n.Identity.Operators(context.Background(), auth.BankProcess())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if strings.EqualFold(o.Email, email) {
			return o
		}
	}
	t.Fatalf("no operator %s", email)
	return identity.Operator{}
}

// TestProductionConsoleTakesTheProvidersSecondFactor: in production mode
// a session begun at the provider opens the whole console without a TOTP
// of Causeway's (the provider asked for its own factor), while the same
// operator's password login, without a second factor, reaches only the
// account page. On both runtimes: the session remembers how it began.
func TestProductionConsoleTakesTheProvidersSecondFactor(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n, idp := ssoNode(t, platformtest.Production(rt.Config(t)), ssotest.Options{TLS: true})
		newOperator(t, n, "ada@bank.example", auth.RoleViewer)
		c := newSSOWalker(n, idp).signIn(t)
		if res, _ := send(t, "GET", n.URL+"/console/spi", nil, c); res.StatusCode != http.StatusOK {
			t.Errorf("the provider's session opening /console/spi = %d (Location %q), want 200", res.StatusCode, res.Header.Get("Location"))
		}
		pw, status, body := operatorLogIn(t, n.URL, "ada@bank.example", operatorPassword, "")
		if pw == nil {
			t.Fatalf("the linked operator's password login = %d\n%.300s", status, body)
		}
		res, _ := send(t, "GET", n.URL+"/console/spi", nil, pw)
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/account") {
			t.Errorf("the password session opening /console/spi = %d to %q, want the account page", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// TestSingleSignOnStartsAreThrottledPerAddress: each start writes a
// login in flight, so starts count against the address's login attempts
// (a successful sign-in gives its start back); past the limit the login
// page answers 429 with Retry-After, and the address's password logins
// are refused too.
func TestSingleSignOnStartsAreThrottledPerAddress(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.LoginFailuresPerAddress = 2
	n, idp := ssoNode(t, cfg, ssotest.Options{})
	w := newSSOWalker(n, idp)
	w.signIn(t)
	for i := range 2 {
		if res, _ := send(t, "GET", n.URL+"/console/sso/start", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("start %d after a sign-in = %d, want 303", i+1, res.StatusCode)
		}
	}
	res, body := send(t, "GET", n.URL+"/console/sso/start", nil)
	wantLoginPageSaying(t, "a start past the limit", res, body, http.StatusTooManyRequests, "too many failed logins from this address")
	if res.Header.Get("Retry-After") == "" {
		t.Error("the refusal has no Retry-After")
	}
	if _, status, _ := operatorLogIn(t, n.URL, "anyone@bank.example", operatorPassword, ""); status != http.StatusTooManyRequests {
		t.Errorf("a password login from the address = %d, want 429", status)
	}
}

// testConsoleOffersNoSingleSignOnWithoutAProvider: a node without
// --oidc-issuer shows no provider's link, and has no sign-on routes.
func testConsoleOffersNoSingleSignOnWithoutAProvider(t *testing.T, n *platformtest.Node) {
	if _, body := send(t, "GET", n.URL+"/console/login", nil); strings.Contains(body, "sso-login") || !strings.Contains(body, `id="operator-login"`) {
		t.Errorf("the login page without a provider:\n%.1500s", body)
	}
	for _, path := range []string{"/console/sso/start", sso.CallbackPath + "?state=s&code=c"} {
		if res, _ := send(t, "GET", n.URL+path, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without a provider = %d, want 404", path, res.StatusCode)
		}
	}
}
