package identity

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// Register adds the identity routes: sign-up and login (public), the
// developer's app routes under /v1 (developer token), the bank's app
// decisions and key rotation under /bank/v1 (admin token), and the OAuth2
// authorization server (token endpoint, JWKS, metadata).
//
// Developer routes declare httpapi.SchemeDeveloper; the gateway
// authenticates them (with AuthenticateDeveloper) and puts the developer in
// the context. The handlers answer 401 when it is not there.
//
// It is long because it is the package's route table: one declaration per
// route, read as one list.
func (s *Service) Register(srv *httpapi.Server) {
	h := &handlers{s: s}
	api := srv.API

	signUp := httpapi.Route{ID: "sign-up", Method: http.MethodPost, Path: "/v1/developers", Tags: []string{"Developers"}, Status: http.StatusCreated,
		Summary: "Sign up as a developer",
		Description: "Creates a developer in a new organization and returns a developer token (valid 30 days). " +
			"One client address may sign up --signup-rate times an hour (default 20), failed attempts such as email_taken " +
			"included; beyond, 429 too_many_sign_ups with Retry-After. An email that already has an account is 409 email_taken."}.Public()
	signUp.Errors = []int{http.StatusConflict, http.StatusTooManyRequests}
	huma.Register(api, httpapi.NoStore(signUp), h.signUp)
	logIn := httpapi.Route{ID: "log-in", Method: http.MethodPost, Path: "/v1/developers/login", Tags: []string{"Developers"},
		Summary: "Log in and get a developer token",
		Description: "Failed logins are counted per email and per client address over a window (15 minutes by default): " +
			"beyond half the limit attempts must be spaced by a doubling delay, at the limit every attempt, the right password " +
			"included, is 429 too_many_login_attempts with Retry-After until the window ends. A successful login clears the email's count."}.Public()
	logIn.Errors = []int{http.StatusUnauthorized, http.StatusTooManyRequests}
	huma.Register(api, httpapi.NoStore(logIn), h.logIn)
	logOut := httpapi.Route{ID: "log-out", Method: http.MethodPost, Path: "/v1/developers/logout", Tags: []string{"Developers"}, Status: http.StatusNoContent,
		Summary: "Revoke the developer token of this request",
		Description: "Revokes the developer token this request carries; the other tokens of the " +
			"developer (other sessions) stay valid. Apps and their access tokens are not affected."}.Developer()
	huma.Register(api, logOut, h.logOut)

	create := httpapi.Route{ID: "create-app", Method: http.MethodPost, Path: "/v1/apps", Tags: []string{"Apps"}, Status: http.StatusCreated,
		Summary: "Create an app",
		Description: "Creates an app with client credentials. The client secret is in this response only. " +
			"In sandbox mode the app is active at once; in production mode it waits for the bank's approval. " +
			"A developer may have --max-apps-per-developer apps (default 20; a deleted app counts for 24 hours); beyond, 409 too_many_apps."}.Developer()
	huma.Register(api, httpapi.NoStore(create), h.createApp)
	list := httpapi.Route{ID: "list-apps", Method: http.MethodGet, Path: "/v1/apps", Tags: []string{"Apps"},
		Summary: "List your organization's apps",
		Description: "Every app of the developer's organization, whoever created it, oldest first, with its client id, " +
			"scopes and status (never its secret). Deleted apps are not listed."}.Developer()
	huma.Register(api, list, h.listApps)
	get := httpapi.Route{ID: "get-app", Method: http.MethodGet, Path: "/v1/apps/{id}", Tags: []string{"Apps"},
		Summary: "Get an app",
		Description: "One app of the developer's organization: client id, scopes and status (active, pending_approval " +
			"or suspended). Another organization's app is 404."}.Developer()
	huma.Register(api, get, h.getApp)
	rotate := httpapi.Route{ID: "rotate-app-secret", Method: http.MethodPost, Path: "/v1/apps/{id}/rotate-secret", Tags: []string{"Apps"},
		Summary:     "Replace an app's client secret",
		Description: "The old secret stops working at once; access tokens already issued stay valid until they expire."}.Developer()
	huma.Register(api, httpapi.NoStore(rotate), h.rotateSecret)
	del := httpapi.Route{ID: "delete-app", Method: http.MethodDelete, Path: "/v1/apps/{id}", Tags: []string{"Apps"}, Status: http.StatusNoContent,
		Summary:     "Delete an app",
		Description: "The app's credentials and access tokens stop working at once."}.Developer()
	huma.Register(api, del, h.deleteApp)

	bank := srv.Bank
	bankList := httpapi.Route{ID: "bank-list-apps", Method: http.MethodGet, Path: "/apps", Tags: []string{"Apps"},
		Summary: "List every app with its status",
		Description: "Every live app of every organization, oldest first; status narrows to active, " +
			"pending_approval (what waits for a decision in production mode) or suspended."}.Bank()
	huma.Register(bank, bankList, h.bankListApps)
	approve := httpapi.Route{ID: "bank-approve-app", Method: http.MethodPost, Path: "/apps/{id}/approve", Tags: []string{"Apps"},
		Summary: "Approve (or reinstate) an app",
		Description: "Moves an app pending approval, or a suspended one, to active. " +
			"An app that is already active (for example because another operator approved it a moment earlier) is 409 app_already_active. " +
			"A reinstated app's tokens from before its suspension stay refused (401 token_revoked); reinstating takes about a second, " +
			"so that no node still holds the app's status from before the suspension."}.Bank()
	huma.Register(bank, approve, h.approve)
	suspend := httpapi.Route{ID: "bank-suspend-app", Method: http.MethodPost, Path: "/apps/{id}/suspend", Tags: []string{"Apps"},
		Summary: "Suspend an app; its tokens stop working at once, for good",
		Description: "Moves an active app, or one pending approval, to suspended. " +
			"An app that is already suspended is 409 app_already_suspended."}.Bank()
	huma.Register(bank, suspend, h.suspend)
	rotateKey := httpapi.Route{ID: "bank-rotate-signing-key", Method: http.MethodPost, Path: "/signing-keys/rotate", Tags: []string{"Apps"},
		Summary: "Sign new access tokens with a new key",
		Description: "Makes a new Ed25519 key the one that signs access tokens. Tokens already issued " +
			"keep working: the keys replaced stay in /.well-known/jwks.json for as long as tokens they signed can live, and " +
			"a rotation retires the keys replaced longer ago than that."}.Bank()
	huma.Register(bank, rotateKey, h.rotateSigningKey)
	s.registerOperators(bank)
	srv.AuthenticateOperators(s.AuthenticateOperatorToken)

	srv.HandleNoStore("POST "+TokenPath, http.HandlerFunc(s.token))
	srv.API.OpenAPI().AddOperation(tokenOperation(srv.API.OpenAPI().Components.Schemas))
	srv.Handle("GET "+JWKSPath, http.HandlerFunc(s.jwks))
	srv.Handle("GET "+MetadataPath, http.HandlerFunc(s.metadata))
}

type handlers struct{ s *Service }

func developerFrom(ctx context.Context) (*auth.Developer, error) {
	dev, ok := auth.DeveloperFrom(ctx)
	if !ok || dev == nil {
		return nil, errUnauthenticated()
	}
	return dev, nil
}

type signUpInput struct {
	Body struct {
		Email string `json:"email" maxLength:"254" example:"dev@example.com"`
		// Problems never echo text (see httpapi), so the bound can be in
		// the schema; SignUp enforces it too, for the portal.
		Password     string `json:"password" maxLength:"1024" doc:"10 to 1024 characters"`
		Organization string `json:"organization" maxLength:"200" example:"SolarWorld" doc:"Name of the new organization the developer belongs to"`
	}
}

// SignUpBody is the answer to a sign-up.
type SignUpBody struct {
	ID             string    `json:"id" doc:"The developer's id"`
	OrganizationID string    `json:"organization_id"`
	Email          string    `json:"email"`
	Token          string    `json:"token" doc:"Developer token; shown once"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func (h *handlers) signUp(ctx context.Context, in *signUpInput) (*httpapi.Out[SignUpBody], error) {
	dev, tok, err := h.s.SignUp(ctx, in.Body.Email, in.Body.Password, in.Body.Organization)
	if err != nil {
		return nil, httpapi.HandlerError(ctx, err)
	}
	return httpapi.Reply(SignUpBody{ID: dev.ID, OrganizationID: dev.OrganizationID, Email: dev.Email, Token: tok.Token, ExpiresAt: tok.ExpiresAt}, nil)
}

type logInInput struct {
	Body struct {
		Email    string `json:"email" maxLength:"254"`
		Password string `json:"password" maxLength:"1024"`
	}
}

// TokenBody carries a developer token.
type TokenBody struct {
	Token     string    `json:"token" doc:"Developer token; shown once"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *handlers) logIn(ctx context.Context, in *logInInput) (*httpapi.Out[TokenBody], error) {
	tok, err := h.s.LogIn(ctx, in.Body.Email, in.Body.Password)
	return httpapi.Reply(TokenBody(tok), httpapi.HandlerError(ctx, err))
}

// logOutInput picks up the bearer token itself, without declaring an
// Authorization parameter (OpenAPI describes it through the security
// scheme).
type logOutInput struct{ token string }

func (in *logOutInput) Resolve(ctx huma.Context) []error {
	in.token, _ = httpapi.BearerToken(ctx.Header("Authorization"))
	return nil
}

func (h *handlers) logOut(ctx context.Context, in *logOutInput) (*struct{}, error) {
	if _, err := developerFrom(ctx); err != nil {
		return nil, err
	}
	return nil, h.s.LogOut(ctx, in.token)
}

type createAppInput struct {
	Body struct {
		Name   string   `json:"name" maxLength:"100" example:"SolarWorld lending"`
		Scopes []string `json:"scopes" maxItems:"16" maxLength:"64" example:"[\"accounts:read\",\"payments:write\"]" doc:"One or more of accounts:read, customers:write, payments:write, kyc:write, loans:write, events:read, webhooks:write, spi:write, data:read"`
	}
}

// CreatedAppBody is a new app with its client secret, shown once.
type CreatedAppBody struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	OrganizationID string    `json:"organization_id"`
	DeveloperID    string    `json:"developer_id"`
	ClientID       string    `json:"client_id"`
	ClientSecret   string    `json:"client_secret" doc:"Shown once; store it safely"`
	Scopes         []string  `json:"scopes"`
	Status         string    `json:"status" enum:"active,pending_approval,suspended"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func (h *handlers) createApp(ctx context.Context, in *createAppInput) (*httpapi.Out[CreatedAppBody], error) {
	dev, err := developerFrom(ctx)
	if err != nil {
		return nil, err
	}
	app, secret, err := h.s.CreateApp(ctx, dev, in.Body.Name, in.Body.Scopes)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(CreatedAppBody{
		ID: app.ID, Name: app.Name, OrganizationID: app.OrganizationID, DeveloperID: app.DeveloperID,
		ClientID: app.ClientID, ClientSecret: secret, Scopes: app.Scopes, Status: app.Status,
		CreatedAt: app.CreatedAt, UpdatedAt: app.UpdatedAt,
	}, nil)
}

func (h *handlers) listApps(ctx context.Context, in *httpapi.PageQuery) (*httpapi.Out[*page.Page[*App]], error) {
	dev, err := developerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.Apps(ctx, dev, in.Limit, in.Cursor))
}

func (h *handlers) getApp(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*App], error) {
	dev, err := developerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.App(ctx, dev, in.ID))
}

// SecretBody carries a new client secret, shown once.
type SecretBody struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret" doc:"Shown once; store it safely"`
}

func (h *handlers) rotateSecret(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[SecretBody], error) {
	dev, err := developerFrom(ctx)
	if err != nil {
		return nil, err
	}
	app, secret, err := h.s.RotateSecret(ctx, dev, in.ID)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(SecretBody{ClientID: app.ClientID, ClientSecret: secret}, nil)
}

func (h *handlers) deleteApp(ctx context.Context, in *httpapi.IDPath) (*struct{}, error) {
	dev, err := developerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return nil, h.s.DeleteApp(ctx, dev, in.ID)
}

type bankListInput struct {
	httpapi.PageQuery
	Status string `query:"status" enum:"active,pending_approval,suspended" doc:"Only apps with this status"`
}

func (h *handlers) bankListApps(ctx context.Context, in *bankListInput) (*httpapi.Out[*page.Page[*App]], error) {
	return httpapi.Reply(h.s.ListApps(ctx, in.Status, in.Limit, in.Cursor))
}

func (h *handlers) approve(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*App], error) {
	return httpapi.Reply(h.s.Approve(ctx, in.ID))
}

func (h *handlers) suspend(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*App], error) {
	return httpapi.Reply(h.s.Suspend(ctx, in.ID))
}

func (h *handlers) rotateSigningKey(ctx context.Context, _ *struct{}) (*httpapi.Out[*SigningKey], error) {
	return httpapi.Reply(h.s.RotateSigningKey(ctx))
}
