package portal

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
)

// scopeInfo is one scope with what it allows, as the OpenAPI document
// describes it.
type scopeInfo struct {
	Name, Description string
}

// scopes lists every scope with its description from the API's security
// scheme, so the portal and the reference say the same thing.
func (p *Portal) scopes() []scopeInfo {
	var desc map[string]string
	if p.srv != nil {
		if sch := p.srv.API.OpenAPI().Components.SecuritySchemes[httpapi.SchemeAppOAuth2]; sch != nil && sch.Flows != nil && sch.Flows.ClientCredentials != nil {
			desc = sch.Flows.ClientCredentials.Scopes
		}
	}
	out := make([]scopeInfo, len(auth.AllScopes))
	for i, s := range auth.AllScopes {
		out[i] = scopeInfo{Name: s, Description: desc[s]}
	}
	return out
}

// denied says why an app cannot do what scope allows, or "" if it can.
// These are the conditions under which the gateway admits the app's own
// token on the action's API twin: the app is active and holds the scope.
func denied(a *identity.App, scope string) string {
	switch a.Status {
	case auth.AppActive:
	case auth.AppSuspended:
		return "The bank has suspended this app; it can do this again once the bank reinstates it."
	default:
		return "This app is waiting for the bank's approval; it can do this once approved."
	}
	if scope != "" && !slices.Contains(a.Scopes, scope) {
		return "This app does not have the " + scope + " scope. Create an app with it to use this."
	}
	return ""
}

// appFor returns the developer's app for an action that needs scope; any
// other organization's app is ENOTFOUND, exactly as on the API.
func (p *Portal) appFor(ctx context.Context, s *devSession, id, scope string) (*identity.App, error) {
	a, err := p.d.Identity.App(ctx, s.Dev, id)
	if err != nil {
		return nil, err
	}
	if why := denied(a, scope); why != "" {
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "forbidden", "%s", why)
	}
	return a, nil
}

type appsData struct {
	Apps   []*identity.App
	Scopes []scopeInfo
	Name   string
	Picked []string
	Mode   string
}

func (p *Portal) appsPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.renderApps(w, r, s, outcome{http.StatusOK, nil}, appsData{Picked: []string{auth.ScopeAccountsRead, auth.ScopePaymentsWrite, auth.ScopeEventsRead, auth.ScopeWebhooksWrite}})
}

func (p *Portal) renderApps(w http.ResponseWriter, r *http.Request, s *devSession, o outcome, d appsData) error {
	ctx, cancel := bounded(r)
	defer cancel()
	apps, err := p.d.Identity.Apps(ctx, s.Dev, identity.MaxPageSize, "")
	if err != nil {
		return err
	}
	d.Apps, d.Scopes, d.Mode = apps.Data, p.scopes(), p.d.Identity.Mode()
	v := s.view("Apps", "apps")
	v.Error, v.Notice, v.D = o.failed, notice(r), d
	p.render(w, r, o.status, "apps", v)
	return nil
}

func (p *Portal) createApp(w http.ResponseWriter, r *http.Request, s *devSession) error {
	r.ParseForm()
	name, scopes := r.PostFormValue("name"), r.PostForm["scope"]
	ctx, cancel := bounded(r)
	defer cancel()
	app, secret, err := p.d.Identity.CreateApp(ctx, s.Dev, name, scopes)
	if err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderApps(w, r, s, outcome{http.StatusUnprocessableEntity, formError(err)}, appsData{Name: name, Picked: scopes})
	}
	return p.renderApp(w, r, s, outcome{http.StatusCreated, nil}, appData{App: app, Secret: secret})
}

func (p *Portal) appPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	app, err := p.d.Identity.App(r.Context(), s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	return p.renderApp(w, r, s, outcome{http.StatusOK, nil}, appData{App: app})
}

type appData struct {
	App *identity.App
	// Secret is the client secret, on the one page that shows it: the
	// answer to the create or rotate form.
	Secret   string
	Limits   any
	Custom   bool
	Accounts []*core.Account
	// Payment is the last test payment, if any, and why a test payment
	// cannot be made, if it cannot.
	Payment     *core.Payment
	PaymentDeny string
	Sandbox     bool
	TokenURL    string
}

// renderApp shows the app d names, with the secret d carries when the
// answer is the one that shows it.
func (p *Portal) renderApp(w http.ResponseWriter, r *http.Request, s *devSession, o outcome, d appData) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app := d.App
	d.Sandbox, d.TokenURL = p.d.Identity.Mode() == identity.ModeSandbox, p.baseURL()+"/oauth2/token"
	if l, custom, err := p.d.Gateway.AppLimits(ctx, app.ID); err == nil {
		d.Limits, d.Custom = l, custom
	}
	d.PaymentDeny = denied(app, auth.ScopePaymentsWrite)
	if d.Sandbox && d.PaymentDeny == "" && !slices.Contains(app.Scopes, auth.ScopeAccountsRead) {
		// The form offers the app's own accounts; listing them is what
		// accounts:read allows.
		d.PaymentDeny = "A test payment needs the accounts:read scope too, to pick the accounts."
	}
	if d.Sandbox && d.PaymentDeny == "" {
		if accts, err := p.d.Bank.Accounts(ctx, auth.AppCaller(app.ID), core.AccountFilter{Limit: 20}); err == nil {
			d.Accounts = accts.Data
		}
	}
	v := s.view(app.Name, "apps")
	v.Error, v.Notice, v.D = o.failed, notice(r), d
	if v.Notice == "" && r.URL.Query().Get("payment") != "" {
		if pay, err := p.d.Bank.Payment(ctx, auth.AppCaller(app.ID), r.URL.Query().Get("payment")); err == nil {
			d.Payment = pay
			v.D = d
		}
	}
	if d.Secret != "" {
		// The secret is not kept anywhere; a reload must not repeat the
		// POST (a second app, another rotation), so say not to cache it.
		w.Header().Set("Cache-Control", "no-store")
	}
	p.render(w, r, o.status, "app", v)
	return nil
}

func (p *Portal) rotateSecret(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, secret, err := p.d.Identity.RotateSecret(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	return p.renderApp(w, r, s, outcome{http.StatusOK, nil}, appData{App: app, Secret: secret})
}

func (p *Portal) deleteApp(w http.ResponseWriter, r *http.Request, s *devSession) error {
	if err := p.d.Identity.DeleteApp(r.Context(), s.Dev, r.PathValue("id")); err != nil {
		return err
	}
	redirect(w, r, "/apps?done=deleted")
	return nil
}

// testPayment makes a sandbox payment between two of the app's accounts,
// as the app: the same core call POST /v1/payments makes, so the payment
// runs the fraud-check SPI and emits the events the app's webhooks get.
func (p *Portal) testPayment(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	if p.d.Identity.Mode() != identity.ModeSandbox {
		return causeway.Errorf(causeway.ENOTFOUND, "not_found", "test payments exist in sandbox mode only")
	}
	if why := denied(app, auth.ScopePaymentsWrite); why != "" {
		return p.renderApp(w, r, s, outcome{http.StatusForbidden, formMessage(why)}, appData{App: app})
	}
	caller := auth.AppCaller(app.ID)
	debtor, err := p.d.Bank.Account(ctx, caller, r.PostFormValue("from"))
	if err != nil {
		if causeway.ErrorKind(err) == causeway.ENOTFOUND {
			return p.renderApp(w, r, s, outcome{http.StatusUnprocessableEntity, formMessage("Pick an account to pay from.", "from")}, appData{App: app})
		}
		return err
	}
	amount, err := core.ParseMoney(strings.TrimSpace(r.PostFormValue("amount")), debtor.Currency)
	if err == nil {
		var pay *core.Payment
		pay, err = p.d.Bank.CreatePayment(ctx, caller, core.NewPayment{
			DebtorAccountID: debtor.ID,
			Creditor:        core.Creditor{AccountID: r.PostFormValue("to")},
			Amount:          amount,
			Reference:       "Causeway portal test payment",
		})
		if err == nil {
			redirect(w, r, "/apps/"+app.ID+"?payment="+pay.ID+"#test-payment")
			return nil
		}
	}
	if !isFormError(err) && causeway.ErrorKind(err) != causeway.ENOTFOUND {
		return err
	}
	return p.renderApp(w, r, s, outcome{http.StatusUnprocessableEntity, formError(err)}, appData{App: app})
}

// baseURL is the platform's configured base URL (the OAuth2 issuer), never
// the request's Host: a page showing a token URL of the caller's choosing
// would send developers' client secrets there.
func (p *Portal) baseURL() string { return p.d.Identity.Issuer() }

// analytics ranges: how far back, and how wide one bar is.
var ranges = []struct {
	Key, Label string
	Span, Bar  time.Duration
}{
	{"1h", "Last hour", time.Hour, time.Minute},
	{"24h", "Last 24 hours", 24 * time.Hour, time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour, 6 * time.Hour},
}

func (p *Portal) analyticsPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	d, err := p.analytics(ctx, app.ID, r.URL.Query().Get("range"))
	if err != nil {
		return err
	}
	d.App = app
	d.Base = "/apps/" + app.ID + "/analytics"
	v := s.view("Analytics: "+app.Name, "apps")
	v.D = d
	p.render(w, r, http.StatusOK, "analytics", v)
	return nil
}
