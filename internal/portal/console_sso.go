package portal

import (
	"net/http"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/sso"
)

// Console single sign-on: the login page links to /console/sso/start,
// which sends the browser to the bank's identity provider (package sso);
// the provider sends it back to /console/sso/callback, which links the
// person to an operator account (identity.SignInWithSSO) and opens a
// console session. Neither needs a session or a form token: the start
// writes nothing the browser does not carry on, and the callback is
// bound to the browser that started by the sso binding cookie.

// ssoStart begins a sign-in at the provider. Each start keeps a login in
// flight in the database, so starts count against the client address's
// login attempts (identity.ThrottleSSOStart).
func (p *Portal) ssoStart(w http.ResponseWriter, r *http.Request) error {
	if p.consoleFrom(r) != nil {
		redirect(w, r, "/console")
		return nil
	}
	ctx, cancel := bounded(r)
	defer cancel()
	if err := p.d.Identity.ThrottleSSOStart(ctx); err != nil {
		return p.ssoRefused(w, r, err)
	}
	authURL, key, err := p.d.SSO.Begin(ctx)
	if err != nil {
		return p.ssoRefused(w, r, err)
	}
	http.SetCookie(w, sso.BindingCookie(key, p.secureCookies(r)))
	redirect(w, r, authURL)
	return nil
}

// ssoCallback finishes a sign-in and opens the console. The answer is a
// page that moves on to /console by itself (Refresh) rather than a
// redirect: the browser came here on redirects that began at the
// provider, another site, and on such a chain Chromium does not send the
// console's SameSite=Strict cookie even to the redirect's last hop, so a
// redirect would land on the login page. A navigation this page starts
// is same-site and carries it.
func (p *Portal) ssoCallback(w http.ResponseWriter, r *http.Request) error {
	// Whatever happens, the login is spent: the browser forgets its key.
	http.SetCookie(w, sso.ClearBindingCookie(p.secureCookies(r)))
	ctx, cancel := bounded(r)
	defer cancel()
	id, err := p.d.SSO.Finish(ctx, r.URL.Query(), sso.BrowserKey(r))
	if err != nil {
		return p.ssoRefused(w, r, err)
	}
	op, err := p.d.Identity.SignInWithSSO(ctx, id.Issuer, id.Subject, id.Email, id.EmailVerified, id.Name, id.Roles)
	if err != nil {
		return p.ssoRefused(w, r, err)
	}
	if err := p.startConsole(w, r, owner{operatorID: op.ID, generation: op.Generation, sso: true}); err != nil {
		return err
	}
	p.log.InfoContext(r.Context(), "portal: console login with single sign-on", "operator_id", op.ID, "remote", r.RemoteAddr)
	w.Header().Set("Refresh", "0; url=/console")
	p.render(w, r, http.StatusOK, "console_sso", &view{Title: "Signed in", Console: true, D: op})
	return nil
}

// ssoRefused shows the login page again with why the sign-in failed, at
// the error's status: 4xx for what the browser or the provider sent, 503
// when the provider cannot be reached or refuses Causeway's client. Only
// a fault of ours is an error page.
func (p *Portal) ssoRefused(w http.ResponseWriter, r *http.Request, err error) error {
	prob := httpapi.ProblemFor(err)
	if prob.Status >= 500 && causeway.ErrorKind(err) != causeway.EUNAVAILABLE {
		return err
	}
	p.log.WarnContext(r.Context(), "portal: console single sign-on refused", "remote", r.RemoteAddr, "code", prob.Code)
	for k, vs := range prob.GetHeaders() {
		w.Header()[k] = vs
	}
	p.consoleLoginPage(w, r, prob.Status, formMessage("Single sign-on did not work: "+prob.Detail), consoleLoginData{})
	return nil
}
