package portal

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
)

// consoleSession is someone at the bank logged in to the console: a named
// operator, or the holder of the admin token.
type consoleSession struct {
	// id is the session id of the cookie.
	id   string
	CSRF string
	// Operator is who acts, with the roles they hold; the admin token's
	// holder holds every role.
	Operator *auth.Operator
	// Enrolled reports whether a named operator has a second factor.
	Enrolled bool
	// SSO reports whether the session began at the bank's identity
	// provider, whose sign-in is the operator's second factor.
	SSO bool
}

// Caller is who acts through the console.
func (s *consoleSession) Caller() auth.Caller { return auth.OperatorCaller(s.Operator.ID) }

// Named reports whether a person, not the admin token, is logged in.
func (s *consoleSession) Named() bool { return !s.Operator.IsAdminToken() }

func (s *consoleSession) view(title, section string) *view {
	return &view{Title: title, Section: section, Console: true, CSRF: s.CSRF, Operator: s.Operator}
}

type consoleHandler func(w http.ResponseWriter, r *http.Request, s *consoleSession) error

// consoleFrom returns the console session of the request, or nil. A
// session made with an admin token this node no longer accepts (a
// rotation dropped it) is refused, and so is an operator's once they are
// disabled or their password, roles or second factor changed: such a
// session is deleted on the spot.
func (p *Portal) consoleFrom(r *http.Request) *consoleSession {
	c, err := r.Cookie(consoleCookie)
	if err != nil {
		return nil
	}
	ss := p.session(r, kindConsole, c.Value)
	if ss == nil {
		return nil
	}
	s := &consoleSession{id: c.Value, CSRF: csrfToken("console", c.Value)}
	if ss.operatorID == "" {
		if !slices.Contains(p.adminFingerprints, ss.adminToken) {
			return nil
		}
		s.Operator = auth.AdminTokenHolder()
		return s
	}
	op, err := p.d.Identity.ActiveOperator(r.Context(), ss.operatorID, ss.generation)
	if err != nil {
		if causeway.ErrorKind(err) == causeway.EUNAUTHORIZED {
			_ = p.sessions.end(r.Context(), c.Value)
		} else {
			p.log.WarnContext(r.Context(), "portal: reading a console session's operator failed", "error", err.Error())
		}
		return nil
	}
	s.Operator, s.Enrolled, s.SSO = op.Caller(), op.TOTP, ss.sso
	return s
}

// console serves a bank console page to an operator who holds role. A
// POST's CSRF token is checked before anything else; without a session
// the page sends to the login page, and without the role it is 403. In
// production mode a named operator who logged in with a password and has
// no second factor reaches only their account page, where they enroll
// one; a session begun at the bank's identity provider passed the
// provider's.
func (p *Portal) console(role auth.Role, h consoleHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			c, err := r.Cookie(consoleCookie)
			if err != nil || !checkCSRF(r, csrfToken("console", c.Value)) {
				forbidden(w)
				return
			}
		}
		s := p.consoleFrom(r)
		if s == nil {
			redirect(w, r, "/console/login")
			return
		}
		if s.Named() && !s.Enrolled && !s.SSO && p.d.Identity.Mode() == identity.ModeProduction && !strings.HasPrefix(r.URL.Path, "/console/account") &&
			r.URL.Path != "/console/logout" {
			redirect(w, r, "/console/account?done=enroll-first")
			return
		}
		if !s.Operator.Roles.Allow(role) {
			p.fail(w, r, s.view("", ""), causeway.Errorf(causeway.EFORBIDDEN, "role_required",
				"This needs the role %s, which you do not hold. An admin can grant it.", role))
			return
		}
		r = r.WithContext(auth.WithOperator(r.Context(), s.Operator))
		if err := h(w, r, s); err != nil {
			p.fail(w, r, s.view("", ""), err)
		}
	})
}

// startConsole starts a console session for o and sets its cookie.
func (p *Portal) startConsole(w http.ResponseWriter, r *http.Request, o owner) error {
	id, expires, err := p.sessions.start(r.Context(), kindConsole, o)
	if err != nil {
		return err
	}
	http.SetCookie(w, p.cookie(r, consoleCookie, id, "/console", expires, http.SameSiteStrictMode))
	return nil
}

// adminTokenMatches checks a typed token with the HTTP layer's admin check
// and returns the fingerprint of the accepted token it is.
func (p *Portal) adminTokenMatches(token string) (string, bool) {
	i, ok := p.srv.AdminTokenIndex(token)
	if p.d.AdminToken == "" || !ok || i >= len(p.adminFingerprints) {
		return "", false
	}
	return p.adminFingerprints[i], true
}

// consoleLoginData is what the login page shows back after a failed try.
type consoleLoginData struct {
	Email string
	// NeedCode asks for the second factor: the password was right.
	NeedCode bool
	// AdminOpen shows the admin token form open: it was the one sent.
	AdminOpen bool
	// SSO offers the sign-in at the bank's identity provider.
	SSO bool
}

func (p *Portal) consoleLoginForm(w http.ResponseWriter, r *http.Request) error {
	if p.consoleFrom(r) != nil {
		redirect(w, r, "/console")
		return nil
	}
	p.consoleLoginPage(w, r, http.StatusOK, nil, consoleLoginData{})
	return nil
}

// consoleLoginPage renders the login page with status and, after a
// failed try, its message and what the form shows back.
func (p *Portal) consoleLoginPage(w http.ResponseWriter, r *http.Request, status int, failed *formErr, d consoleLoginData) {
	d.SSO = p.d.SSO != nil
	v := &view{Title: "Log in", Console: true, CSRF: p.preSession(w, r), Notice: notice(r), Error: failed, D: d}
	p.render(w, r, status, "console_login", v)
}

// consoleLogin logs in a named operator (email, password and, once
// enrolled, a code) or, with the field token, the admin token's holder.
func (p *Portal) consoleLogin(w http.ResponseWriter, r *http.Request) error {
	if token := strings.TrimSpace(r.PostFormValue("token")); token != "" || r.PostFormValue("email") == "" {
		return p.adminLogin(w, r, token)
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	op, err := p.d.Identity.OperatorLogIn(r.Context(), email, r.PostFormValue("password"), r.PostFormValue("code"))
	if err != nil {
		d := consoleLoginData{Email: email}
		var msg *formErr
		switch causeway.ErrorCode(err) {
		case "totp_required":
			d.NeedCode, msg = true, formMessage("Enter the code from your authenticator app, or a recovery code, with your password.", "code")
		case "invalid_credentials":
			d.NeedCode, msg = r.PostFormValue("code") != "", formMessage("The email, password or code is wrong.", "email", "password")
		default:
			if !isFormError(err) && causeway.ErrorKind(err) != causeway.ERATELIMIT {
				return err
			}
			msg = formMessage(httpapi.ProblemFor(err).Detail)
		}
		p.log.WarnContext(r.Context(), "portal: console login refused", "remote", r.RemoteAddr, "code", causeway.ErrorCode(err))
		p.consoleLoginPage(w, r, httpapi.ProblemFor(err).Status, msg, d)
		return nil
	}
	if err := p.startConsole(w, r, owner{operatorID: op.ID, generation: op.Generation}); err != nil {
		return err
	}
	p.log.InfoContext(r.Context(), "portal: console login", "operator_id", op.ID, "remote", r.RemoteAddr)
	redirect(w, r, "/console")
	return nil
}

func (p *Portal) adminLogin(w http.ResponseWriter, r *http.Request, token string) error {
	fingerprint, ok := p.adminTokenMatches(token)
	if !ok {
		p.log.WarnContext(r.Context(), "portal: console login refused", "remote", r.RemoteAddr)
		p.consoleLoginPage(w, r, http.StatusUnauthorized, formMessage("That is not the bank's admin token.", "token"), consoleLoginData{AdminOpen: true})
		return nil
	}
	if err := p.startConsole(w, r, owner{adminToken: fingerprint}); err != nil {
		return err
	}
	p.log.InfoContext(r.Context(), "portal: console login with the admin token", "remote", r.RemoteAddr)
	redirect(w, r, "/console")
	return nil
}

// consoleLogout ends the session on every node at once: a copy of the
// cookie opens nothing afterwards.
func (p *Portal) consoleLogout(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if err := p.sessions.end(r.Context(), s.id); err != nil {
		return err
	}
	p.log.InfoContext(r.Context(), "portal: console logout", "operator_id", s.Operator.ID, "remote", r.RemoteAddr)
	endConsoleCookie(w, r, p)
	redirect(w, r, "/console/login?done=logged-out")
	return nil
}

func endConsoleCookie(w http.ResponseWriter, r *http.Request, p *Portal) {
	http.SetCookie(w, p.cookie(r, consoleCookie, "", "/console", time.Time{}, http.SameSiteStrictMode))
}
