// Package auth names who is calling: an app (with an OAuth2 access token),
// a developer (with a developer token), or the bank (with the admin token).
// The gateway puts the caller in the request context; handlers read it. It
// holds types only, so every capability package can depend on it.
package auth

import (
	"context"
	"slices"
)

// Scopes an app can hold.
const (
	ScopeAccountsRead   = "accounts:read"
	ScopeCustomersWrite = "customers:write"
	ScopePaymentsWrite  = "payments:write"
	ScopeKYCWrite       = "kyc:write"
	ScopeLoansWrite     = "loans:write"
	// ScopeEventsRead reads events: the catalog, the pull API and the
	// stream, and the app's webhook subscriptions and their deliveries.
	ScopeEventsRead = "events:read"
	// ScopeWebhooksWrite manages webhook subscriptions: create, change,
	// pause, resume, delete, rotate the secret, and trigger deliveries
	// (recover, retry). It reads them too.
	ScopeWebhooksWrite = "webhooks:write"
	ScopeSPIWrite      = "spi:write"
	ScopeDataRead      = "data:read"
)

// AllScopes lists every scope, in the order the docs show them.
var AllScopes = []string{
	ScopeAccountsRead, ScopeCustomersWrite, ScopePaymentsWrite, ScopeKYCWrite,
	ScopeLoansWrite, ScopeEventsRead, ScopeWebhooksWrite, ScopeSPIWrite, ScopeDataRead,
}

// ValidScope reports whether s is a known scope.
func ValidScope(s string) bool { return slices.Contains(AllScopes, s) }

// App statuses.
const (
	AppActive          = "active"
	AppPendingApproval = "pending_approval"
	AppSuspended       = "suspended"
)

// App is an app calling with an access token.
type App struct {
	ID          string
	ClientID    string
	DeveloperID string
	// Scopes are the scopes of the access token (at most the app's).
	Scopes []string
	// Generation is the app's token generation the credential was issued
	// in; every suspension starts a new one (see package identity).
	Generation int64
}

// HasScope reports whether the token carries scope.
func (a *App) HasScope(scope string) bool { return slices.Contains(a.Scopes, scope) }

// Developer is a developer calling with a developer token.
type Developer struct {
	ID             string
	OrganizationID string
	Email          string
}

type appKey struct{}
type developerKey struct{}

// WithApp returns ctx carrying the calling app.
func WithApp(ctx context.Context, a *App) context.Context { return context.WithValue(ctx, appKey{}, a) }

// AppFrom returns the calling app, if the request carried an access token.
func AppFrom(ctx context.Context) (*App, bool) {
	a, ok := ctx.Value(appKey{}).(*App)
	return a, ok
}

// WithDeveloper returns ctx carrying the calling developer.
func WithDeveloper(ctx context.Context, d *Developer) context.Context {
	return context.WithValue(ctx, developerKey{}, d)
}

// DeveloperFrom returns the calling developer, if the request carried a
// developer token.
func DeveloperFrom(ctx context.Context) (*Developer, bool) {
	d, ok := ctx.Value(developerKey{}).(*Developer)
	return d, ok
}
