// Package sso logs bank operators in to the console with the bank's own
// identity provider: OpenID Connect, authorization code flow with PKCE
// (S256), through github.com/coreos/go-oidc and golang.org/x/oauth2.
//
// The console calls two methods. Begin starts a login and returns the
// provider's URL to send the browser to, with a browser key the console
// keeps in a cookie (BindingCookie). Finish takes the query of the
// provider's redirect to <public URL>/console/sso/callback and that key,
// and returns the operator's Identity with Causeway roles mapped from one
// claim of the provider (e.g. groups), or a causeway error with a stable
// code. Linking an Identity to an operator account and opening a session
// are the console's business.
//
// A login in flight is one row of sso_logins, keyed by the SHA-256 of its
// state, so any node can finish what another began. Its row holds no
// secret: the PKCE verifier is derived from the browser key, which only the
// browser holds (see verifierFor), and the row keeps the key's hash, so a
// callback URL copied into another browser, or an attacker's own callback
// planted in an operator's browser, finds no login to finish. The row is
// deleted when the login finishes (DELETE … RETURNING: a state works once,
// on whichever node), and the leader prunes those older than StateTTL.
//
// Discovery of the provider happens on first use, not in New, so a node
// starts while the provider is down; a failed discovery is tried again on a
// later login (at most once per DiscoveryRetry).
package sso

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/textrule"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Defaults and bounds.
const (
	// StateTTL is how long a login may take between Begin and Finish.
	StateTTL = 10 * time.Minute
	// DiscoveryRetry is the least time between two discovery attempts
	// after one failed: meanwhile logins fail fast with sso_unavailable
	// instead of each waiting for an unreachable provider.
	DiscoveryRetry = 5 * time.Second
	// DefaultRoleClaim is the claim read for roles when Config.RoleClaim
	// is empty.
	DefaultRoleClaim = "groups"
	// CallbackPath is where the provider sends the browser back to: the
	// redirect URL is the public URL followed by it.
	CallbackPath = "/console/sso/callback"
	// httpTimeout bounds each call to the provider.
	httpTimeout = 15 * time.Second
)

// DefaultScopes are the scopes requested when Config.Scopes is empty:
// the ID token, the email and name, and "groups", which several
// providers want before they put groups in the token.
var DefaultScopes = []string{"openid", "email", "profile", "groups"}

// Config describes the provider and how its claims map to roles.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document names it (https://login.bank.example/realms/staff).
	Issuer string
	// ClientID and ClientSecret are Causeway's registration at the
	// provider. The secret may be empty for a provider that registers the
	// console as a public client (PKCE alone then protects the code).
	ClientID     string
	ClientSecret string
	// RedirectURL is <public URL>/console/sso/callback, registered at the
	// provider.
	RedirectURL string
	// RoleClaim names the claim whose values map to roles: a string or an
	// array of strings, in the ID token or else at the userinfo endpoint.
	// A name with dots that is not itself a claim is read as a path into
	// nested objects (realm_access.roles). Default DefaultRoleClaim.
	RoleClaim string
	// RoleMap maps claim values to roles (bank-risk -> risk-officer). A
	// value that is itself a role name maps to that role unless RoleMap
	// maps it elsewhere; other values are ignored.
	RoleMap map[string]auth.Role
	// Scopes are requested at the provider; "openid" is added when
	// missing. Default DefaultScopes.
	Scopes []string
}

// Configured reports whether single sign-on is asked for at all.
func (c Config) Configured() bool { return c.Issuer != "" || c.ClientID != "" }

// Validate checks the configuration without reaching the provider. An
// empty RedirectURL is allowed (the platform fills it in from the public
// URL); New requires it.
func (c Config) Validate() error {
	if c.Issuer == "" || c.ClientID == "" {
		return fmt.Errorf("oidc-issuer and oidc-client-id: give both to turn single sign-on on, or neither")
	}
	if err := checkURL(c.Issuer); err != nil {
		return fmt.Errorf("oidc-issuer %q: %w", c.Issuer, err)
	}
	if err := textrule.Check("oidc-client-id", c.ClientID, textrule.SingleLine); err != nil || len(c.ClientID) > 255 {
		return fmt.Errorf("oidc-client-id: must be one line of at most 255 characters")
	}
	if strings.ContainsAny(c.ClientSecret, "\r\n") {
		return fmt.Errorf("oidc-client-secret: must be one line")
	}
	if c.RedirectURL != "" {
		if err := checkURL(c.RedirectURL); err != nil {
			return fmt.Errorf("redirect URL %q: %w", c.RedirectURL, err)
		}
	}
	if strings.TrimSpace(c.RoleClaim) != c.RoleClaim {
		return fmt.Errorf("oidc-role-claim %q: no spaces around the name", c.RoleClaim)
	}
	for value, role := range c.RoleMap {
		if value == "" {
			return fmt.Errorf("oidc-role-map: an empty claim value maps to %q", role)
		}
		if !auth.ValidRole(role) {
			return fmt.Errorf("oidc-role-map: %q maps to %q, which is not a role (%s)", value, role, roleNames())
		}
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("oidc-scopes: %q is not a scope", s)
		}
	}
	return nil
}

// checkURL accepts an absolute http(s) URL with a host and without user,
// query or fragment.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("must be an absolute http(s) URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must have no user, query or fragment")
	}
	return nil
}

// Identity is who the provider says logged in.
type Identity struct {
	// Issuer and Subject together name the person for good: link an
	// operator account by them.
	Issuer  string
	Subject string
	// Email, and whether the provider says it verified it. Only a
	// verified email should ever link an Identity to an existing account.
	Email         string
	EmailVerified bool
	// Name is the name claim, or else preferred_username.
	Name string
	// Roles are the Causeway roles the role claim maps to: never empty,
	// sorted, without repeats.
	Roles auth.Roles
}

// Options are what a Login needs besides its Config.
type Options struct {
	// HTTPClient calls the provider (discovery, keys, token, userinfo).
	// Default: a client with a 15 s timeout on the default transport.
	HTTPClient *http.Client
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
	// Logger receives why a login failed (the provider's answers, a
	// token's defect); never a token, code or secret. Default
	// slog.Default().
	Logger *slog.Logger
}

// Login runs OpenID Connect logins against one provider.
type Login struct {
	cfg    Config
	db     *store.DB
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu        sync.Mutex
	provider  *provider // nil until discovery succeeds
	lastTry   time.Time // of the last failed discovery
	lastError error
}

// Migrate creates or updates the sso tables.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "sso", migrationFiles, "migrations")
}

// New returns a Login on a database that Migrate has prepared. It checks
// cfg (see Config.Validate; RedirectURL is required here) and does no I/O:
// the provider is discovered on the first login.
func New(cfg Config, db *store.DB, opts Options) (*Login, error) {
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		cfg.Scopes = append([]string{"openid"}, cfg.Scopes...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RedirectURL == "" {
		return nil, fmt.Errorf("sso: the redirect URL is required")
	}
	l := &Login{cfg: cfg, db: db, client: opts.HTTPClient, now: opts.Now, log: opts.Logger}
	if l.client == nil {
		l.client = &http.Client{Timeout: httpTimeout}
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l, nil
}

// failure is a causeway error that keeps its cause for the logs: the
// operator sees the stable code and message, the log the provider's words.
type failure struct {
	as    *causeway.Error
	cause error
}

func (f *failure) Error() string   { return f.as.Error() + ": " + f.cause.Error() }
func (f *failure) Unwrap() []error { return []error{f.as, f.cause} }

// fail returns a causeway error of kind and code with a message, caused by
// cause when it is not nil.
func fail(cause error, kind causeway.Kind, code, format string, args ...any) error {
	as := causeway.Errorf(kind, code, format, args...)
	if cause == nil {
		return as
	}
	return &failure{as: as, cause: cause}
}
