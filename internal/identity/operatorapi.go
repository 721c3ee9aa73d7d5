package identity

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// registerOperators adds the operator routes under /bank/v1: admins
// manage operators; every operator reads who they are and manages their
// own tokens. The role each needs is in httpapi's bankRoles.
func (s *Service) registerOperators(bank *huma.Group) {
	h := &handlers{s: s}
	tags := []string{"Operators"}
	create := httpapi.Route{ID: "bank-create-operator", Method: http.MethodPost, Path: "/operators", Tags: tags, Status: http.StatusCreated,
		Summary: "Create an operator",
		Description: "Creates a named bank operator with roles (viewer, app-manager, risk-officer, data-steward, admin). " +
			"The password is optional for an operator who signs in through the bank's identity provider. " +
			"The operator enrolls a second factor at first login. An email already taken is 409 email_taken."}.Bank()
	huma.Register(bank, create, h.createOperator)
	huma.Register(bank, httpapi.Route{ID: "bank-list-operators", Method: http.MethodGet, Path: "/operators", Tags: tags,
		Summary:     "List operators",
		Description: "Every operator with roles, status and whether a second factor is enrolled; never a password or secret."}.Bank(), h.listOperators)
	huma.Register(bank, httpapi.Route{ID: "bank-get-operator", Method: http.MethodGet, Path: "/operators/{id}", Tags: tags,
		Summary:     "Get an operator",
		Description: "One operator."}.Bank(), h.getOperator)
	huma.Register(bank, httpapi.Route{ID: "bank-change-operator", Method: http.MethodPatch, Path: "/operators/{id}", Tags: tags,
		Summary: "Change an operator's roles, status or name",
		Description: "Changing roles or status ends the operator's console sessions on every node at once and narrows (or, when disabled, " +
			"refuses) their tokens. Nobody changes their own roles or status (403 own_account). Two admins changing one operator " +
			"at once: the second gets 409 operator_changed."}.Bank(), h.changeOperator)
	huma.Register(bank, httpapi.Route{ID: "bank-reset-operator-totp", Method: http.MethodPost, Path: "/operators/{id}/reset-totp", Tags: tags,
		Summary: "Remove an operator's second factor",
		Description: "For an operator who lost their authenticator: removes the TOTP secret and recovery codes and ends their sessions; " +
			"they enroll again at their next login. Not on one's own account (403 own_account)."}.Bank(), h.resetTOTP)

	huma.Register(bank, httpapi.Route{ID: "bank-get-me", Method: http.MethodGet, Path: "/me", Tags: tags,
		Summary:     "Who is calling",
		Description: "The operator this token belongs to and the roles this call holds; the admin token answers as admin-token with every role."}.Bank(), h.me)
	huma.Register(bank, httpapi.Route{ID: "bank-list-operator-tokens", Method: http.MethodGet, Path: "/operator-tokens", Tags: tags,
		Summary:     "List your operator tokens",
		Description: "The calling operator's tokens, newest first, without the tokens themselves."}.Bank(), h.listOperatorTokens)
	createToken := httpapi.Route{ID: "bank-create-operator-token", Method: http.MethodPost, Path: "/operator-tokens", Tags: tags, Status: http.StatusCreated,
		Summary: "Create an operator token",
		Description: "A personal bearer token for scripts, shown once. It holds the roles asked for (all the operator's when none), " +
			"only roles the operator holds (403 role_not_held), expires after ttl_days (default 30, at most 365), and is " +
			"narrowed at every call to the roles its operator still holds. The admin token cannot have one (403 operator_only)."}.Bank()
	huma.Register(bank, httpapi.NoStore(createToken), h.createOperatorToken)
	revoke := httpapi.Route{ID: "bank-revoke-operator-token", Method: http.MethodDelete, Path: "/operator-tokens/{id}", Tags: tags, Status: http.StatusNoContent,
		Summary:     "Revoke an operator token",
		Description: "Refused at once on every node. Another operator's token is 404; a token revoked already is 409 token_revoked."}.Bank()
	huma.Register(bank, revoke, h.revokeOperatorToken)
}

type createOperatorInput struct {
	Body struct {
		Email    string      `json:"email" maxLength:"254" example:"ana@bank.example"`
		Name     string      `json:"display_name,omitempty" maxLength:"200" example:"Ana Lima"`
		Password string      `json:"password,omitempty" maxLength:"1024" doc:"10 to 1024 characters; omit for single sign-on only"`
		Roles    []auth.Role `json:"roles" minItems:"1" maxItems:"5" enum:"viewer,app-manager,risk-officer,data-steward,admin"`
	}
}

type changeOperatorInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name   *string     `json:"display_name,omitempty" maxLength:"200"`
		Roles  []auth.Role `json:"roles,omitempty" maxItems:"5" enum:"viewer,app-manager,risk-officer,data-steward,admin"`
		Status *string     `json:"status,omitempty" enum:"active,disabled"`
	}
}

type operatorIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

// MeBody is who is calling the bank API.
type MeBody struct {
	ID    string     `json:"id" doc:"The operator's id, or admin-token"`
	Email string     `json:"email,omitempty"`
	Name  string     `json:"display_name"`
	Roles auth.Roles `json:"roles" doc:"The roles this call holds"`
}

type createOperatorTokenInput struct {
	Body struct {
		Name    string      `json:"name" maxLength:"100" example:"nightly limits report"`
		Roles   []auth.Role `json:"roles,omitempty" maxItems:"5" enum:"viewer,app-manager,risk-officer,data-steward,admin"`
		TTLDays int         `json:"ttl_days,omitempty" minimum:"0" maximum:"365" doc:"Days until it expires; default 30"`
	}
}

// OperatorsBody is a list of operators.
type OperatorsBody struct {
	Items []Operator `json:"items"`
}

// OperatorTokensBody is a list of an operator's tokens.
type OperatorTokensBody struct {
	Items []OperatorToken `json:"items"`
}

// personFrom returns the named operator calling: the admin token is not one.
func personFrom(ctx context.Context) (*auth.Operator, error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok || op.IsAdminToken() {
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "operator_only", "this needs a named operator's token, not the admin token")
	}
	return op, nil
}

func (h *handlers) createOperator(ctx context.Context, in *createOperatorInput) (*httpapi.Out[*Operator], error) {
	b := in.Body
	return httpapi.Reply(h.s.CreateOperator(ctx, auth.CallerFrom(ctx), NewOperator{Email: b.Email, Name: b.Name, Password: b.Password, Roles: b.Roles}))
}

func (h *handlers) listOperators(ctx context.Context, _ *struct{}) (*httpapi.Out[OperatorsBody], error) {
	items, err := h.s.Operators(ctx, auth.CallerFrom(ctx))
	return httpapi.Reply(OperatorsBody{Items: items}, err)
}

func (h *handlers) getOperator(ctx context.Context, in *operatorIDInput) (*httpapi.Out[*Operator], error) {
	return httpapi.Reply(h.s.Operator(ctx, auth.CallerFrom(ctx), in.ID))
}

func (h *handlers) changeOperator(ctx context.Context, in *changeOperatorInput) (*httpapi.Out[*Operator], error) {
	c := OperatorChange{Name: in.Body.Name, Status: in.Body.Status}
	if in.Body.Roles != nil {
		roles := auth.Roles(in.Body.Roles)
		c.Roles = &roles
	}
	return httpapi.Reply(h.s.ChangeOperator(ctx, auth.CallerFrom(ctx), in.ID, c))
}

func (h *handlers) resetTOTP(ctx context.Context, in *operatorIDInput) (*httpapi.Out[*Operator], error) {
	if err := h.s.ResetTOTP(ctx, auth.CallerFrom(ctx), in.ID); err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.Operator(ctx, auth.CallerFrom(ctx), in.ID))
}

func (h *handlers) me(ctx context.Context, _ *struct{}) (*httpapi.Out[MeBody], error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return nil, errUnauthenticated()
	}
	return httpapi.Reply(MeBody{ID: op.ID, Email: op.Email, Name: op.Name, Roles: op.Roles}, nil)
}

func (h *handlers) listOperatorTokens(ctx context.Context, _ *struct{}) (*httpapi.Out[OperatorTokensBody], error) {
	op, err := personFrom(ctx)
	if err != nil {
		return nil, err
	}
	items, err := h.s.OperatorTokens(ctx, op.ID)
	return httpapi.Reply(OperatorTokensBody{Items: items}, err)
}

func (h *handlers) createOperatorToken(ctx context.Context, in *createOperatorTokenInput) (*httpapi.Out[OperatorToken], error) {
	op, err := personFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.IssueOperatorToken(ctx, op, in.Body.Name, in.Body.Roles, time.Duration(in.Body.TTLDays)*24*time.Hour))
}

func (h *handlers) revokeOperatorToken(ctx context.Context, in *operatorIDInput) (*struct{}, error) {
	op, err := personFrom(ctx)
	if err != nil {
		return nil, err
	}
	return nil, h.s.RevokeOperatorToken(ctx, op.ID, in.ID)
}
