package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
)

// home is the landing page for visitors and the dashboard for developers.
func (p *Portal) home(w http.ResponseWriter, r *http.Request) error {
	s := p.developer(r)
	if s == nil {
		v := &view{Section: "home", Notice: notice(r)}
		p.render(w, r, http.StatusOK, "landing", v)
		return nil
	}
	ctx, cancel := bounded(r)
	defer cancel()
	apps, err := p.d.Identity.Apps(ctx, s.Dev, identity.MaxPageSize, "")
	if err != nil {
		return err
	}
	type summary struct {
		App      *identity.App
		Webhooks int
	}
	var rows []summary
	for _, a := range apps.Data {
		n := 0
		if subs, _, err := p.d.Webhooks.List(ctx, auth.AppCaller(a.ID), "", 200, ""); err == nil {
			n = len(subs)
		}
		rows = append(rows, summary{App: a, Webhooks: n})
	}
	v := s.view("Dashboard", "home")
	v.Notice = notice(r)
	v.D = map[string]any{"Apps": rows, "Mode": p.d.Identity.Mode()}
	p.render(w, r, http.StatusOK, "dashboard", v)
	return nil
}

type credentialsForm struct {
	Email, Organization, Next string
}

func (p *Portal) signupForm(w http.ResponseWriter, r *http.Request) error {
	if p.developer(r) != nil {
		redirect(w, r, "/")
		return nil
	}
	v := &view{Title: "Sign up", Section: "signup", CSRF: p.preSession(w, r), D: credentialsForm{}}
	p.render(w, r, http.StatusOK, "signup", v)
	return nil
}

func (p *Portal) signup(w http.ResponseWriter, r *http.Request) error {
	f := credentialsForm{Email: strings.TrimSpace(r.PostFormValue("email")), Organization: r.PostFormValue("organization")}
	password := r.PostFormValue("password")
	ctx, cancel := bounded(r)
	defer cancel()
	dev, err := p.d.Identity.CreateDeveloper(ctx, f.Email, password, f.Organization)
	if err != nil {
		status := throttled(w, err, http.StatusUnprocessableEntity)
		if !isFormError(err) && status != http.StatusTooManyRequests {
			return err
		}
		fe := formError(err)
		if causeway.ErrorCode(err) == "email_taken" {
			fe.Message = "An account with this email already exists."
			fe.Action = &link{Href: "/login?email=" + url.QueryEscape(f.Email), Text: "Log in instead"}
		}
		v := &view{Title: "Sign up", Section: "signup", CSRF: p.preSession(w, r), Error: fe, D: f}
		p.render(w, r, status, "signup", v)
		return nil
	}
	if err := p.startSession(w, r, dev); err != nil {
		return err
	}
	redirect(w, r, "/apps")
	return nil
}

// throttled is the status of a form refused with err: 429, with its
// Retry-After, when a throttle refused it, otherwise status.
func throttled(w http.ResponseWriter, err error, status int) int {
	var ce *causeway.Error
	if !errors.As(err, &ce) || ce.Kind != causeway.ERATELIMIT {
		return status
	}
	if ce.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((ce.RetryAfter+time.Second-1)/time.Second), 10))
	}
	return http.StatusTooManyRequests
}

func (p *Portal) loginForm(w http.ResponseWriter, r *http.Request) error {
	if p.developer(r) != nil {
		redirect(w, r, safeNext(r.URL.Query().Get("next")))
		return nil
	}
	v := &view{Title: "Log in", Section: "login", CSRF: p.preSession(w, r), Notice: notice(r),
		D: credentialsForm{Email: strings.TrimSpace(r.URL.Query().Get("email")), Next: safeNext(r.URL.Query().Get("next"))}}
	p.render(w, r, http.StatusOK, "login", v)
	return nil
}

func (p *Portal) login(w http.ResponseWriter, r *http.Request) error {
	f := credentialsForm{Email: strings.TrimSpace(r.PostFormValue("email")), Next: safeNext(r.PostFormValue("next"))}
	ctx, cancel := bounded(r)
	defer cancel()
	// The same credentials check as the API's LogIn: the failed-login
	// counters are one, whichever door the attempts come through.
	dev, err := p.d.Identity.CheckPassword(ctx, f.Email, r.PostFormValue("password"))
	if err != nil {
		status := throttled(w, err, http.StatusUnauthorized)
		if causeway.ErrorKind(err) != causeway.EUNAUTHORIZED && !isFormError(err) && status != http.StatusTooManyRequests {
			return err
		}
		v := &view{Title: "Log in", Section: "login", CSRF: p.preSession(w, r), Error: formError(err), D: f}
		p.render(w, r, status, "login", v)
		return nil
	}
	if err := p.startSession(w, r, dev); err != nil {
		return err
	}
	redirect(w, r, f.Next)
	return nil
}

// logout ends the session on every node (so a copied cookie is useless
// too) and clears the cookie.
func (p *Portal) logout(w http.ResponseWriter, r *http.Request, s *devSession) error {
	if err := p.sessions.end(r.Context(), s.id); err != nil {
		return err
	}
	http.SetCookie(w, p.cookie(r, sessionCookie, "", "/", time.Time{}, http.SameSiteLaxMode))
	redirect(w, r, "/login?done=logged-out")
	return nil
}
