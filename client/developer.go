package client

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Developer is a signed-in developer: a session that creates apps. It is
// for onboarding scripts and demos; an app's own code needs only its client
// id and secret (New).
type Developer struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	Email          string    `json:"email"`
	Token          string    `json:"token"` // the developer token, valid 30 days
	ExpiresAt      time.Time `json:"expires_at"`

	conn conn
}

// App is an app with its client credentials. ClientSecret is only known
// right after CreateApp: the platform shows it once.
type App struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret"`
	Scopes       []string  `json:"scopes"`
	Status       string    `json:"status"` // active, pending_approval or suspended
	CreatedAt    time.Time `json:"created_at"`
}

// SignUp creates a developer in a new organization on the platform at
// baseURL and returns the developer's session. The password is 10 to 1024
// characters. Sign-up is not retried: a second try could find the email
// taken by the first.
func SignUp(ctx context.Context, baseURL, email, password, organization string, opts ...Option) (*Developer, error) {
	body := struct {
		Email        string `json:"email"`
		Password     string `json:"password"`
		Organization string `json:"organization"`
	}{email, password, organization}
	return session(ctx, baseURL, "/v1/developers", body, opts)
}

// LogIn signs an existing developer in on the platform at baseURL.
func LogIn(ctx context.Context, baseURL, email, password string, opts ...Option) (*Developer, error) {
	body := struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{email, password}
	d, err := session(ctx, baseURL, "/v1/developers/login", body, opts)
	if d != nil && d.Email == "" {
		d.Email = email
	}
	return d, err
}

func session(ctx context.Context, baseURL, path string, body any, opts []Option) (*Developer, error) {
	s := newSettings(opts)
	anonymous := conn{base: strings.TrimRight(baseURL, "/"), hc: s.hc}
	var d Developer
	if err := anonymous.do(ctx, request{method: http.MethodPost, path: path, body: body}, &d); err != nil {
		return nil, err
	}
	d.conn = anonymous
	d.conn.bearer = d.Token
	return &d, nil
}

// CreateApp creates an app with the given scopes (see the Scope
// constants) and returns it with its client secret. In sandbox mode the app
// is active at once and sees seeded sandbox customers; in production mode
// its Status is pending_approval until the bank approves it.
func (d *Developer) CreateApp(ctx context.Context, name string, scopes []string, opts ...CallOption) (*App, error) {
	body := struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}{name, scopes}
	return post[App](ctx, &d.conn, "/v1/apps", body, opts)
}
