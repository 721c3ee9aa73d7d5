// Package portal is the web face of Causeway: the developer portal at / and
// the bank console under /console, rendered on the server from Go templates
// embedded in the binary.
//
// The portal holds no rule of its own. Every action calls the same service
// method the API calls (identity, gateway, webhooks, spi, datashare, the
// sandbox bank), so a form and its API twin cannot disagree; the portal only
// translates forms to calls and errors to pages. The one thing it adds is
// the session: developers log in with email and password, the bank with
// its admin token, and each gets a session kept in the database (its own
// table, sessions.go) whose random id is the HttpOnly cookie (SameSite=Lax
// for developers, SameSite=Strict and /console only for the bank). The
// cookie is never a credential of the API, and a logout ends the session
// on every node. Every POST carries a CSRF token derived from the session;
// one without is 403.
//
// JavaScript is optional: a few lines copy values to the clipboard, forget
// a one-time secret from the address bar, and follow the delivery log live.
// Static files are served under content-hashed names and cached for a year
// (assets.go); the server gzips pages (httpapi.Compress).
package portal

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/foureyes"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/sso"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/textrule"
	"github.com/causewayhq/causeway/internal/throttle"
	"github.com/causewayhq/causeway/internal/webhooks"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// static are the embedded static files under their content-hashed names.
var static = func() *assets {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	return loadAssets(sub)
}()

// Deps are the services the portal drives, and how it runs.
type Deps struct {
	Identity  *identity.Service
	Gateway   *gateway.Gateway
	Bank      *core.Bank
	Events    *events.Service
	Webhooks  *webhooks.Service
	SPI       *spi.Service
	Datashare *datashare.Service
	// FourEyes holds back the console's decisions that need a second
	// operator, as it holds back the bank API's; nil holds back none.
	FourEyes *foureyes.Service
	// Audit is the bank's audit trail, shown on the console's audit page.
	Audit *audit.Trail
	// SSO signs operators in at the bank's identity provider (console
	// single sign-on); nil offers only passwords and the admin token.
	SSO *sso.Login
	// StreamSlots count the open event streams of every node, for the
	// health page; nil shows them as unknown.
	StreamSlots *throttle.Streams
	// AdminToken is the bank's admin token: the console's password.
	// During a rotation it is "new,old" and both log in; a console session
	// lasts only while the token it logged in with is accepted.
	AdminToken string
	// DB holds the sessions (see Migrate); every node sharing it sees
	// every session.
	DB *store.DB
	// Now is the clock sessions expire by; default time.Now. Tests move it.
	Now    func() time.Time
	Logger *slog.Logger
	// Secure marks cookies Secure even on plain HTTP requests, for a node
	// behind a TLS-terminating proxy. Requests that arrive over TLS get
	// Secure cookies regardless.
	Secure bool
}

// Portal serves the developer portal and the bank console.
type Portal struct {
	d        Deps
	log      *slog.Logger
	pages    map[string]*template.Template
	sessions *sessions
	// adminFingerprints are the fingerprints of the accepted admin tokens,
	// in their order: a console session made with another is refused.
	adminFingerprints []string
	srv               *httpapi.Server
	// cop refuses cross-site form posts from browsers on their own, before
	// the CSRF token is even looked at (defence in depth).
	cop *http.CrossOriginProtection

	refOnce sync.Once
	ref     *reference
}

// New returns a portal over the services in d.
func New(d Deps) *Portal {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	p := &Portal{d: d, log: slog.New(httpapi.LogRequestIDs(d.Logger.Handler())), cop: http.NewCrossOriginProtection(),
		sessions: newSessions(d.DB, d.Now)}
	for _, t := range httpapi.AdminTokens(d.AdminToken) {
		p.adminFingerprints = append(p.adminFingerprints, adminFingerprint(t))
	}
	p.pages = parsePages()
	return p
}

// Register adds the portal's routes to srv. They are plain handlers
// outside the API: the gateway passes them through, and the portal checks
// its own sessions.
//
// It is long because it is the portal's route table, one line per page,
// read as one list.
func (p *Portal) Register(srv *httpapi.Server) {
	p.srv = srv
	srv.Handle("GET /static/", p.secure(static))
	srv.Handle("GET /favicon.ico", p.secure(http.HandlerFunc(static.favicon)))

	anon := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		srv.Handle(pattern, p.secure(p.anon(h)))
	}
	anon("GET /{$}", p.home)
	anon("GET /signup", p.signupForm)
	anon("POST /signup", p.signup)
	anon("GET /login", p.loginForm)
	anon("POST /login", p.login)
	anon("GET /reference", p.referencePage)
	// A page no route has is the portal's 404 page for a browser.
	srv.HandleNotFound(p.secure(p.anon(func(http.ResponseWriter, *http.Request) error { return errNotFound() })))

	dev := func(pattern string, h devHandler) { srv.Handle(pattern, p.secure(p.dev(h))) }
	dev("POST /logout", p.logout)
	dev("POST /reference/try", p.tryOperation)
	dev("GET /apps", p.appsPage)
	dev("POST /apps", p.createApp)
	dev("GET /apps/{id}", p.appPage)
	dev("POST /apps/{id}/rotate-secret", p.rotateSecret)
	dev("POST /apps/{id}/delete", p.deleteApp)
	dev("POST /apps/{id}/test-payment", p.testPayment)
	dev("GET /apps/{id}/analytics", p.analyticsPage)
	dev("GET /apps/{id}/webhooks", p.webhooksPage)
	dev("POST /apps/{id}/webhooks", p.createWebhook)
	dev("GET /apps/{id}/webhooks/{wid}", p.webhookPage)
	dev("GET /apps/{id}/webhooks/{wid}/live", p.webhookLive)
	dev("POST /apps/{id}/webhooks/{wid}/recover", p.recoverWebhook)
	dev("POST /apps/{id}/webhooks/{wid}/pause", p.pauseWebhook)
	dev("POST /apps/{id}/webhooks/{wid}/resume", p.resumeWebhook)
	dev("POST /apps/{id}/webhooks/{wid}/rotate-secret", p.rotateWebhookSecret)
	dev("POST /apps/{id}/webhooks/{wid}/delete", p.deleteWebhook)
	dev("POST /apps/{id}/webhooks/{wid}/deliveries/{did}/retry", p.retryDelivery)
	dev("GET /apps/{id}/spi", p.spiPage)
	dev("POST /apps/{id}/spi", p.createRegistration)
	dev("GET /apps/{id}/spi/{rid}", p.registrationPage)
	dev("POST /apps/{id}/spi/{rid}/delete", p.deleteRegistration)
	dev("POST /apps/{id}/spi/{rid}/rotate-secret", p.rotateRegistrationSecret)
	dev("GET /events", p.eventsPage)
	dev("GET /extension-points", p.pointsPage)
	dev("GET /datasets", p.datasetsPage)
	dev("GET /datasets/{id}", p.datasetPage)
	dev("POST /datasets/{id}/requests", p.requestAccess)
	dev("GET /data-requests", p.dataRequestsPage)
	dev("GET /apps/{id}/data-requests/{rid}", p.dataRequestPage)

	anon("GET /console/login", p.consoleLoginForm)
	anon("POST /console/login", p.consoleLogin)
	if p.d.SSO != nil {
		anon("GET /console/sso/start", p.ssoStart)
		anon("GET "+sso.CallbackPath, p.ssoCallback)
	}
	con := func(pattern string, role auth.Role, h consoleHandler) {
		srv.Handle(pattern, p.secure(p.console(role, h)))
	}
	con("POST /console/logout", auth.RoleViewer, p.consoleLogout)
	con("GET /console", auth.RoleViewer, p.consoleHome)
	con("GET /console/apps", auth.RoleViewer, p.consoleApps)
	con("GET /console/apps/{id}", auth.RoleViewer, p.consoleApp)
	con("POST /console/apps/{id}/approve", auth.RoleAppManager, p.consoleApprove)
	con("POST /console/apps/{id}/suspend", auth.RoleAppManager, p.consoleSuspend)
	con("POST /console/apps/{id}/limits", auth.RoleAppManager, p.consoleLimits)
	con("GET /console/data-requests", auth.RoleViewer, p.consoleDataRequests)
	con("POST /console/data-requests/{id}/{action}", auth.RoleDataSteward, p.consoleDecide)
	con("GET /console/spi", auth.RoleViewer, p.consoleSPI)
	con("POST /console/spi/{id}/activate", auth.RoleRiskOfficer, p.consoleActivate)
	con("POST /console/spi/{id}/settings", auth.RoleRiskOfficer, p.consoleConfigure)
	con("POST /console/spi/{id}/deactivate", auth.RoleRiskOfficer, p.consoleDeactivate)
	con("GET /console/grants", auth.RoleViewer, p.consoleGrants)
	con("POST /console/grants", auth.RoleAppManager, p.consoleGrant)
	con("POST /console/grants/{app}/{customer}/revoke", auth.RoleAppManager, p.consoleRevokeGrant)
	con("GET /console/datasets", auth.RoleViewer, p.consoleDatasets)
	con("POST /console/datasets", auth.RoleDataSteward, p.consolePublish)
	con("GET /console/account", auth.RoleViewer, p.consoleAccount)
	con("POST /console/account/totp", auth.RoleViewer, p.consoleBeginTOTP)
	con("POST /console/account/totp/confirm", auth.RoleViewer, p.consoleConfirmTOTP)
	con("POST /console/account/password", auth.RoleViewer, p.consoleChangePassword)
	con("POST /console/account/tokens", auth.RoleViewer, p.consoleCreateToken)
	con("POST /console/account/tokens/{id}/revoke", auth.RoleViewer, p.consoleRevokeToken)
	con("GET /console/proposals", auth.RoleViewer, p.consoleProposals)
	con("POST /console/proposals/{id}/{decision}", auth.RoleViewer, p.consoleDecideProposal)
	con("GET /console/audit", auth.RoleViewer, p.consoleAudit)
	con("GET /console/audit/export", auth.RoleViewer, p.consoleAuditExport)
	con("GET /console/operators", auth.RoleAdmin, p.consoleOperators)
	con("POST /console/operators", auth.RoleAdmin, p.consoleCreateOperator)
	con("POST /console/operators/{id}", auth.RoleAdmin, p.consoleChangeOperator)
	con("POST /console/operators/{id}/reset-totp", auth.RoleAdmin, p.consoleResetTOTP)
	con("GET /console/health", auth.RoleViewer, p.consoleHealth)
}

// view is what every page template gets: the layout's needs, and the
// page's own data in D.
type view struct {
	Title string
	// Section marks the current navigation entry.
	Section string
	Dev     *auth.Developer
	Console bool
	// Operator is who is logged in to the console, with their roles.
	Operator *auth.Operator
	CSRF     string
	// Description is the page's meta description; render fills in the
	// page's own (descriptions) when it is empty.
	Description string
	// Notice is a confirmation, Error a failed form, shown above the
	// content.
	Notice string
	Error  *formErr
	D      any
}

// parsePages parses each page template together with the layout.
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		t := template.New("layout.html").Funcs(funcs)
		pages[base] = template.Must(t.ParseFS(templateFiles, "templates/layout.html", "templates/_partials.html", name))
	}
	return pages
}

// render writes a page with status. The page is rendered to a buffer
// first, so a template error becomes a clean 500, not half a page.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := p.pages[page]
	if !ok {
		panic("portal: no page template " + page)
	}
	if v.Description == "" {
		v.Description = descriptions[page]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		p.log.ErrorContext(r.Context(), "portal: rendering failed", "page", page, "error", err.Error())
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// descriptions are the pages' meta descriptions, by template: what a
// search result or a shared link says about the page.
var descriptions = map[string]string{
	"landing":           "Causeway is the bank's developer platform: call its APIs, receive its events as they happen, plug your logic into its processes and work with its data, encrypted end to end.",
	"signup":            "Create a free Causeway developer account to build on the bank's APIs, events, SPIs and datasets.",
	"login":             "Log in to the Causeway developer portal.",
	"reference":         "The Causeway API reference: every operation of the public and bank APIs, with its parameters, bodies and scopes, and a form to try it.",
	"try":               "Try an operation of the Causeway API from the browser and see its request and answer.",
	"dashboard":         "Your apps on Causeway at a glance: their status and webhooks.",
	"apps":              "Create and manage your Causeway apps and their client credentials.",
	"app":               "An app's client credentials, rate limit and sandbox test payments.",
	"analytics":         "An app's API calls, errors and latency over time.",
	"webhooks":          "An app's webhook subscriptions: which events go to which endpoint.",
	"webhook":           "A webhook subscription: its signing secret and its live delivery log.",
	"spi":               "An app's SPI registrations: the endpoints the bank calls inside its processes.",
	"registration":      "An SPI registration: its endpoint, signing secret and settings.",
	"events":            "The catalog of bank events: each type with its description, JSON Schema and an example.",
	"points":            "The bank's extension points: where its processes call a developer's endpoint, with the request and answer each expects.",
	"datasets":          "The bank's datasets: schema and sample of each, and access on request, delivered encrypted to your key.",
	"dataset":           "A dataset's schema and sample rows, and the form to request access to it.",
	"data_requests":     "Your data-access requests and the bank's decisions.",
	"data_request":      "A data-access request: its status, and how to pull the data once the bank approves it.",
	"error":             "Causeway could not show this page.",
	"console_login":     "The Causeway bank console, for the bank's staff: log in with your operator account.",
	"console_home":      "The bank console: apps awaiting approval, data requests to decide and SPIs to activate.",
	"console_apps":      "Every app on the platform, with its status, and approval and suspension.",
	"console_app":       "An app as the bank sees it: its details, rate limit, quota and usage.",
	"console_data":      "Data-access requests to approve, reject or revoke.",
	"console_spi":       "SPI registrations to activate, configure and deactivate.",
	"console_grants":    "Customer grants: which app may see which customer.",
	"console_datasets":  "The dataset catalog, and the form to publish a dataset.",
	"console_health":    "Platform health: request traffic, event delivery backlogs and SPI circuit breakers.",
	"console_account":   "Your operator account: second factor, password and personal API tokens.",
	"console_operators": "The bank's operators, their roles and status.",
	"console_proposals": "Decisions waiting for a second operator: confirm or reject them.",
	"console_audit":     "The audit trail: every bank-side change, who made it and who confirmed it, with the chain's check.",
	"console_sso":       "Signed in to the bank console with the bank's identity provider.",
}

// fail renders err as an error page: its status comes from the one
// mapping of domain errors to HTTP (httpapi.ProblemFor), so a page is 404
// exactly when its API twin is.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	prob := httpapi.ProblemFor(err)
	if prob.Status >= 500 {
		p.log.ErrorContext(r.Context(), "portal: request failed", "path", r.URL.Path, "error", err.Error())
	}
	v.Title = http.StatusText(prob.Status)
	v.Section = ""
	msg := prob.Detail
	switch {
	case prob.Status == http.StatusNotFound:
		msg = "There is nothing here, or it is not yours to see."
	case prob.Status >= 500:
		msg = "Something went wrong on our side. Try again in a moment."
	}
	v.D = map[string]any{"Status": prob.Status, "Message": msg, "RequestID": httpapi.RequestID(r.Context())}
	p.render(w, r, prob.Status, "error", v)
}

// secure adds the headers every portal response carries: a strict content
// security policy (no inline script, no framing, forms post only here). A
// browser's cross-site POST is refused here already, and so is text that
// breaks the text rule (checkText), before any page handler reads it.
func (p *Portal) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.cop.Check(r); err != nil {
			forbidden(w)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if err := checkText(r); err != nil {
			v := &view{}
			if s := p.consoleFrom(r); s != nil && strings.HasPrefix(r.URL.Path, "/console") {
				v = s.view("", "")
			} else if s := p.developer(r); s != nil {
				v = s.view("", "")
			}
			p.fail(w, r, v, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkText applies the platform's text rule (package textrule, the same
// the API applies) to a portal request: its path, its query and, for a
// form post, every field. Only a field some page renders as a <textarea>
// may span lines. A refusal is EINVALID: a 422 page naming the field.
func checkText(r *http.Request) error {
	if err := textrule.Check("path", r.URL.Path, textrule.SingleLine); err != nil {
		return err
	}
	if err := textrule.Values("query", r.URL.Query(), queryLines(r)); err != nil {
		return err
	}
	if r.Method != http.MethodPost {
		return nil
	}
	// A form that does not parse is read as empty by the handlers.
	r.ParseForm()
	return textrule.Values("form", r.PostForm, func(name string) textrule.Lines {
		return textrule.Lines(textareas[name])
	})
}

// queryLines says which query parameters of r may span lines: only the
// error description the bank's identity provider may send to the single
// sign-on callback (RFC 6749 4.1.2.1; package sso checks it further).
func queryLines(r *http.Request) func(name string) textrule.Lines {
	if r.URL.Path != sso.CallbackPath {
		return nil
	}
	return func(name string) textrule.Lines {
		if name == "error_description" {
			return textrule.MultiLine
		}
		return textrule.SingleLine
	}
}

// textareas are the names of the form fields the templates render as
// <textarea>: the form's own declaration of the fields that may span lines.
var textareas = func() map[string]bool {
	tag := regexp.MustCompile(`<textarea\b[^>]*\bname="([^"{]+)"`)
	names := map[string]bool{}
	files, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, f := range files {
		b, err := templateFiles.ReadFile(f)
		if err != nil {
			panic(err)
		}
		for _, m := range tag.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
	}
	return names
}()

// redirect sends the browser to url after a POST (see other: the next
// request is a GET, so a reload does not repeat the action).
func redirect(w http.ResponseWriter, r *http.Request, url string) {
	http.Redirect(w, r, url, http.StatusSeeOther)
}

// notices are the confirmations a redirect may ask for with ?done=; a
// fixed list, so a link cannot put arbitrary text on the page.
var notices = map[string]string{
	"deleted":           "The app was deleted. Its credentials stopped working.",
	"webhook-deleted":   "The webhook subscription was deleted.",
	"paused":            "Deliveries are paused; events wait until you resume.",
	"resumed":           "Deliveries resumed.",
	"recovering":        "Recovering: the events since that time are being re-sent in the background.",
	"retrying":          "The event is being re-sent; its attempt appears below in a moment.",
	"spi-deleted":       "The SPI registration was deleted.",
	"approved":          "Approved.",
	"suspended":         "Suspended.",
	"limits":            "The new limits apply to the app's next request.",
	"rejected":          "Rejected.",
	"revoked":           "Revoked. Downloads stopped and the stored ciphertext is being deleted.",
	"activated":         "Activated.",
	"spi-updated":       "Updated: calls use the new settings.",
	"deactivated":       "Deactivated: the bank no longer calls this endpoint.",
	"requested":         "Your request was sent to the bank.",
	"logged-out":        "You are logged out.",
	"payment":           "A test payment was made; its events are on their way to your webhooks.",
	"granted":           "Granted: the app sees the customer from its next request.",
	"grant-revoked":     "The grant was revoked; the app no longer sees the customer.",
	"published":         "Published: the dataset is in the catalog.",
	"enroll-first":      "Set up your second factor first: the console opens once it is on.",
	"password-changed":  "Your password was changed, and every session of yours ended. Log in with the new one.",
	"token-revoked":     "The token was revoked; it stops working at once.",
	"operator-created":  "The operator was created. They log in with the password you gave and set up their second factor.",
	"operator-changed":  "Saved. The operator's sessions ended, and their tokens hold only the new roles.",
	"totp-reset":        "The second factor was removed; the operator sets up a new one at their next login.",
	"proposed":          "Proposed: the decision takes effect once a second operator confirms it.",
	"confirmed":         "Confirmed and carried out.",
	"confirm-failed":    "Confirmed, but the operation refused; see its answer below.",
	"proposal-rejected": "Rejected: the decision will not be carried out.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

// formErr is a failed form as its page shows it: a message for the
// person filling it in, the fields it is about and, sometimes, what to do
// instead. The layout shows it in the error summary, which takes the focus;
// each field it names carries aria-invalid and points at the summary
// (see fieldAttrs).
type formErr struct {
	Message string
	// Fields are the names of the form fields the message is about.
	Fields []string
	// Action is a link the message suggests following.
	Action *link
}

type link struct{ Href, Text string }

// outcome is how a page answers: its status and, after a form the portal
// refused, why (shown above the form; nil: nothing refused).
type outcome struct {
	status int
	failed *formErr
}

// formError is a failed form: a domain error's message says what to
// change (its code names the field, see fieldsByCode); anything else is
// our fault.
func formError(err error) *formErr {
	var ce *causeway.Error
	if !errors.As(err, &ce) || ce.Kind == causeway.EINTERNAL {
		return &formErr{Message: "Something went wrong on our side. Try again in a moment."}
	}
	return &formErr{Message: ce.Message, Fields: fieldsByCode[ce.Code]}
}

// formMessage is a failed form the portal itself refuses.
func formMessage(msg string, fields ...string) *formErr {
	return &formErr{Message: msg, Fields: fields}
}

// fieldsByCode are the form fields (by name) a domain error's code is
// about. Forms name their fields as the API names its members, so one
// table serves every form.
var fieldsByCode = map[string][]string{
	"invalid_email":        {"email"},
	"email_taken":          {"email"},
	"weak_password":        {"password"},
	"invalid_organization": {"organization"},
	"invalid_credentials":  {"email", "password"},
	"invalid_name":         {"name"},
	"invalid_url":          {"url"},
	"invalid_filter":       {"filter"},
	"invalid_purpose":      {"purpose"},
	"invalid_recipient":    {"recipient"},
	"invalid_duration":     {"duration_days"},
	"invalid_amount":       {"amount"},
	"customer_not_found":   {"customer_id"},
	"invalid_roles":        {"roles"},
	"role_not_held":        {"roles"},
	"invalid_code":         {"code"},
	"invalid_ttl":          {"ttl_days"},
}

// fieldAttrs are the attributes of a form field: aria-invalid and a
// pointer to the error summary when the failed form is about it, and its
// own hints (ids) in aria-describedby.
func fieldAttrs(v *view, name string, hints ...string) template.HTMLAttr {
	var attrs string
	if v != nil && v.Error != nil && slices.Contains(v.Error.Fields, name) {
		attrs = `aria-invalid="true" `
		hints = append([]string{"form-error"}, hints...)
	}
	if len(hints) > 0 {
		attrs += `aria-describedby="` + template.HTMLEscapeString(strings.Join(hints, " ")) + `"`
	}
	return template.HTMLAttr(strings.TrimSpace(attrs))
}

// isFormError reports whether err is the caller's to fix (a 4xx other than
// not-found), so the form is shown again with the message.
func isFormError(err error) bool {
	switch causeway.ErrorKind(err) {
	case causeway.EINVALID, causeway.EBADREQUEST, causeway.ECONFLICT, causeway.EFORBIDDEN:
		return true
	}
	return false
}

// bounded gives a service call from a page a deadline, so a stuck
// dependency fails the page instead of hanging the browser.
func bounded(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 20*time.Second)
}

var funcs = template.FuncMap{
	"asset": static.url,
	"field": fieldAttrs,
	"time":  fmtTime,
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ms":    fmtMS,
	"dur":   fmtDuration,
	"join":  strings.Join,
	"badge": badge,
	"has": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
	"pretty": prettyJSON,
	"cell":   cell,
	"dict":   dict,
	"anchor": func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return '-'
		}, s)
	},
}

// dict makes a map of key-value pairs, for passing several values to a
// partial template.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func fmtTime(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil || v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return fmt.Sprint(t)
}

func fmtMS(f float64) string {
	if f < 10 {
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// fmtDuration is a duration as people say it: "45 s", "12 min", "3 h 5 min";
// "—" for none.
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Minute:
		return fmt.Sprintf("%.0f s", max(d.Seconds(), 1))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// badge is the CSS class of a status word, so colour is consistent (and
// never the only signal: the word itself is always shown).
func badge(status string) string {
	switch status {
	case "active", "approved", "succeeded", "answered", "ready", "completed", "pass":
		return "badge ok"
	case "pending_approval", "awaiting_approval", "pending_activation", "paused", "pending", "producing", "stand_in", "held", "review":
		return "badge wait"
	case "suspended", "rejected", "revoked", "failed", "dead", "disabled", "deleted", "expired", "skipped_breaker_open", "inactive":
		return "badge bad"
	}
	return "badge"
}
