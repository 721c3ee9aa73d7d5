package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
)

// Cookies. The developer and console cookies each hold the random id of a
// session kept in the database (sessions.go), never a credential: the
// developer's API token and the admin token stay out of the browser. The
// pre-session cookie binds the CSRF token of the login and sign-up forms,
// which are posted before there is a session.
const (
	sessionCookie = "cw_session"
	consoleCookie = "cw_console"
	preCookie     = "cw_pre"
	csrfField     = "csrf"

	// tryTokenTTL bounds the developer token a "try it" call of a
	// developer operation carries; it is revoked right after the call.
	tryTokenTTL = time.Minute
)

// csrfToken derives a form token from a session secret: anyone who can
// read the page can post its forms, and only they, since the secret sits
// in an HttpOnly cookie another origin cannot read. Being derived, it needs
// no server-side state, so every node checks every other node's forms.
func csrfToken(kind, secret string) string {
	sum := sha256.Sum256([]byte("causeway portal csrf\x00" + kind + "\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkCSRF compares a posted token with the expected one in constant time.
func checkCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue(csrfField)
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Portal) cookie(r *http.Request, name, value, path string, expires time.Time, site http.SameSite) *http.Cookie {
	c := &http.Cookie{
		Name: name, Value: value, Path: path, HttpOnly: true, SameSite: site,
		Secure: p.secureCookies(r),
	}
	if expires.IsZero() {
		c.MaxAge = -1
	} else {
		c.Expires = expires
		c.MaxAge = int(expires.Sub(p.sessions.now()).Seconds())
	}
	return c
}

// secureCookies reports whether r's answer sets Secure cookies: behind a
// TLS-terminating proxy (Deps.Secure) or over TLS.
func (p *Portal) secureCookies(r *http.Request) bool { return p.d.Secure || r.TLS != nil }

// preSession returns the CSRF token of the forms posted without a session,
// setting the cookie it is bound to if the browser has none yet.
func (p *Portal) preSession(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 32 {
		return csrfToken("pre", c.Value)
	}
	v := randomToken()
	// A session cookie (no expiry): it lives as long as the browser.
	c := p.cookie(r, preCookie, v, "/", time.Time{}, http.SameSiteLaxMode)
	c.MaxAge = 0
	http.SetCookie(w, c)
	return csrfToken("pre", v)
}

// checkPre checks the CSRF token of a form posted without a session.
func checkPre(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	return checkCSRF(r, csrfToken("pre", c.Value))
}

func forbidden(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	w.Write([]byte("403 forbidden: this form's security token is missing or stale; reload the page and try again\n"))
}

// anon serves a page anyone may see. POSTs need the pre-session token.
func (p *Portal) anon(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !checkPre(r) {
			forbidden(w)
			return
		}
		if err := h(w, r); err != nil {
			v := &view{}
			if s := p.developer(r); s != nil {
				v.Dev, v.CSRF = s.Dev, s.CSRF
			}
			p.fail(w, r, v, err)
		}
	})
}

// devSession is a logged-in developer.
type devSession struct {
	Dev *auth.Developer
	// id is the session id of the cookie.
	id   string
	CSRF string
}

// Caller is the signed-in developer. On one of their apps' pages the
// portal acts as that app instead (auth.AppCaller), once identity has
// checked the app is theirs.
func (s *devSession) Caller() auth.Caller { return auth.DeveloperCaller(s.Dev.ID) }

// view starts a page view for the session.
func (s *devSession) view(title, section string) *view {
	return &view{Title: title, Section: section, Dev: s.Dev, CSRF: s.CSRF}
}

type devHandler func(w http.ResponseWriter, r *http.Request, s *devSession) error

// developer returns the session of the request, or nil.
func (p *Portal) developer(r *http.Request) *devSession {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	ss := p.session(r, kindDeveloper, c.Value)
	if ss == nil {
		return nil
	}
	dev, err := p.d.Identity.Developer(r.Context(), ss.developerID)
	if err != nil {
		return nil
	}
	return &devSession{Dev: dev, id: c.Value, CSRF: csrfToken("dev", c.Value)}
}

// session finds a live session of kind; a database failure is logged and
// reads as no session.
func (p *Portal) session(r *http.Request, kind, id string) *session {
	ss, err := p.sessions.find(r.Context(), kind, id)
	if err != nil {
		p.log.WarnContext(r.Context(), "portal: reading a session failed", "kind", kind, "error", err.Error())
		return nil
	}
	return ss
}

// dev serves a page for logged-in developers. A POST's CSRF token is
// checked before anything else; a visitor without a session is sent to
// the login page, and back here afterwards.
func (p *Portal) dev(h devHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			c, err := r.Cookie(sessionCookie)
			if err != nil || !checkCSRF(r, csrfToken("dev", c.Value)) {
				forbidden(w)
				return
			}
		}
		s := p.developer(r)
		if s == nil {
			if r.Method != http.MethodGet {
				redirect(w, r, "/login")
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err := h(w, r, s); err != nil {
			p.fail(w, r, s.view("", ""), err)
		}
	})
}

// startSession starts a developer's session and sets its cookie.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, dev *auth.Developer) error {
	id, expires, err := p.sessions.start(r.Context(), kindDeveloper, owner{developerID: dev.ID})
	if err != nil {
		return err
	}
	http.SetCookie(w, p.cookie(r, sessionCookie, id, "/", expires, http.SameSiteLaxMode))
	return nil
}

// safeNext keeps a post-login redirect on this site: a path, never a
// scheme or a host ("//evil.example" included).
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

// errNotFound is the answer for a page that does not exist.
func errNotFound() error {
	return causeway.Errorf(causeway.ENOTFOUND, "not_found", "not found")
}
