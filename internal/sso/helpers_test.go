package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/sso/ssotest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/testkit"
)

// env is a provider, a Login on db against it, and a stand-in for the
// console on 127.0.0.1 that does with the Login what the console does:
// GET /console/sso/start begins a login (binding cookie, redirect to the
// provider) and GET /console/sso/callback finishes it and answers the
// Identity, or the error's kind and code, as JSON.
type env struct {
	t       *testing.T
	db      *store.DB
	idp     *ssotest.Provider
	login   *Login
	console *httptest.Server
	clock   *testkit.Clock
}

// result is what the console stand-in answers.
type result struct {
	Identity *Identity     `json:"identity,omitempty"`
	Kind     causeway.Kind `json:"kind,omitempty"`
	Code     string        `json:"code,omitempty"`
	Message  string        `json:"message,omitempty"`
}

// newEnv starts the provider with its users (ada, bob, carol, dave, erin,
// frank) and the console, and builds the Login with cfg passed through
// edit (RoleMap bank-risk -> risk-officer, bank-data -> data-steward).
func newEnv(t *testing.T, db *store.DB, edit func(*Config)) *env {
	t.Helper()
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, clock: &testkit.Clock{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console/sso/start", func(w http.ResponseWriter, r *http.Request) {
		authURL, key, err := e.login.Begin(r.Context())
		if err != nil {
			writeResult(w, result{Kind: causeway.ErrorKind(err), Code: causeway.ErrorCode(err), Message: err.Error()})
			return
		}
		http.SetCookie(w, BindingCookie(key, false))
		http.Redirect(w, r, authURL, http.StatusFound)
	})
	mux.HandleFunc("GET "+CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, ClearBindingCookie(false))
		id, err := e.login.Finish(r.Context(), r.URL.Query(), BrowserKey(r))
		if err != nil {
			writeResult(w, result{Kind: causeway.ErrorKind(err), Code: causeway.ErrorCode(err), Message: err.Error()})
			return
		}
		writeResult(w, result{Identity: &id})
	})
	e.console = httptest.NewServer(mux)
	t.Cleanup(e.console.Close)

	e.idp = ssotest.New(t, e.console.URL+CallbackPath)
	e.idp.AddUser("ada", ssotest.User{Email: "ada@bank.example", Name: "Ada Lovelace", Groups: []string{"bank-risk", "viewer", "staff", "viewer"}})
	e.idp.AddUser("bob", ssotest.User{Email: "bob@bank.example", Name: "Bob"})
	e.idp.AddUser("carol", ssotest.User{Email: "carol@bank.example", Name: "Carol", Groups: []string{"bank-data"}, GroupsAtUserinfoOnly: true})
	e.idp.AddUser("dave", ssotest.User{Email: "dave@bank.example", Name: "Dave", Groups: []string{"marketing", "staff"}})
	e.idp.AddUser("erin", ssotest.User{Email: "erin@bank.example", Name: "Erin", Groups: "admin"})
	e.idp.AddUser("frank", ssotest.User{Email: "frank@bank.example", Name: "Frank", Groups: map[string]any{"risk": true}})
	e.idp.SignInAs("ada")

	cfg := Config{
		Issuer: e.idp.URL, ClientID: e.idp.ClientID, ClientSecret: e.idp.Secret,
		RedirectURL: e.console.URL + CallbackPath, RoleClaim: "groups",
		RoleMap: map[string]auth.Role{"bank-risk": auth.RoleRiskOfficer, "bank-data": auth.RoleDataSteward},
	}
	if edit != nil {
		edit(&cfg)
	}
	var err error
	e.login, err = New(cfg, db, Options{Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func writeResult(w http.ResponseWriter, r result) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(r)
}

// browser is an HTTP client with its own cookie jar that follows
// redirects, as a browser does.
type browser struct {
	e      *env
	client *http.Client
	// stopAtCallback makes it stop before the console's callback.
	stopAtCallback bool
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	b := &browser{e: e}
	b.client = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		if b.stopAtCallback && req.URL.Path == CallbackPath {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// signIn walks the whole login from the console's start page to its
// callback and returns what the console answered.
func (b *browser) signIn() result {
	b.e.t.Helper()
	b.stopAtCallback = false
	return b.get(b.e.console.URL + "/console/sso/start")
}

// toCallback walks the login up to the provider's redirect to the console
// and returns the callback URL, without opening it.
func (b *browser) toCallback() *url.URL {
	b.e.t.Helper()
	b.stopAtCallback = true
	res, err := b.client.Get(b.e.console.URL + "/console/sso/start")
	if err != nil {
		b.e.t.Fatal(err)
	}
	res.Body.Close()
	loc, err := res.Location()
	if err != nil || loc.Path != CallbackPath {
		b.e.t.Fatalf("the walk to the callback ended at %s with %d (Location %v)", res.Request.URL, res.StatusCode, loc)
	}
	return loc
}

// open opens u (a callback URL) in this browser.
func (b *browser) open(u *url.URL) result {
	b.e.t.Helper()
	b.stopAtCallback = false
	return b.get(u.String())
}

func (b *browser) get(u string) result {
	b.e.t.Helper()
	res, err := b.client.Get(u)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	var r result
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		b.e.t.Fatalf("GET %s ended at %s with %d, not the console's answer: %v", u, res.Request.URL, res.StatusCode, err)
	}
	return r
}

// key is the browser key in this browser's binding cookie.
func (b *browser) key() string {
	b.e.t.Helper()
	u, _ := url.Parse(b.e.console.URL + CallbackPath)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == BindingCookieName {
			return c.Value
		}
	}
	b.e.t.Fatal("the browser has no binding cookie")
	return ""
}

// wantCode fails t unless the kind and code got are kind and code.
func wantCode(t *testing.T, what string, gotKind causeway.Kind, gotCode string, kind causeway.Kind, code string) {
	t.Helper()
	if gotKind != kind || gotCode != code {
		t.Errorf("%s: got %s %s, want %s %s", what, gotKind, gotCode, kind, code)
	}
}

// wantErr fails t unless err is a causeway error of kind and code.
func wantErr(t *testing.T, what string, err error, kind causeway.Kind, code string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s %s", what, kind, code)
		return
	}
	wantCode(t, what, causeway.ErrorKind(err), causeway.ErrorCode(err), kind, code)
}

func (r result) String() string {
	if r.Identity != nil {
		return fmt.Sprintf("identity %+v", *r.Identity)
	}
	return fmt.Sprintf("%s %s: %s", r.Kind, r.Code, r.Message)
}
