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
	op := func(id, method, path, summary, description string) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Description: description, Tags: []string{"Operators"}}
	}
	create := op("bank-create-operator", http.MethodPost, "/operators", "Create an operator",
		"Creates a named bank operator with roles (viewer, app-manager, risk-officer, data-steward, admin). "+
			"The password is optional for an operator who signs in through the bank's identity provider. "+
			"The operator enrolls a second factor at first login. An email already taken is 409 email_taken.")
	create.DefaultStatus = http.StatusCreated
	huma.Register(bank, create, h.createOperator)
	huma.Register(bank, op("bank-list-operators", http.MethodGet, "/operators", "List operators",
		"Every operator with roles, status and whether a second factor is enrolled; never a password or secret."), h.listOperators)
	huma.Register(bank, op("bank-get-operator", http.MethodGet, "/operators/{id}", "Get an operator", "One operator."), h.getOperator)
	huma.Register(bank, op("bank-change-operator", http.MethodPatch, "/operators/{id}", "Change an operator's roles, status or name",
		"Changing roles or status ends the operator's console sessions on every node at once and narrows (or, when disabled, "+
			"refuses) their tokens. Nobody changes their own roles or status (403 own_account). Two admins changing one operator "+
			"at once: the second gets 409 operator_changed."), h.changeOperator)
	huma.Register(bank, op("bank-reset-operator-totp", http.MethodPost, "/operators/{id}/reset-totp", "Remove an operator's second factor",
		"For an operator who lost their authenticator: removes the TOTP secret and recovery codes and ends their sessions; "+
			"they enroll again at their next login. Not on one's own account (403 own_account)."), h.resetTOTP)

	huma.Register(bank, op("bank-get-me", http.MethodGet, "/me", "Who is calling",
		"The operator this token belongs to and the roles this call holds; the admin token answers as admin-token with every role."), h.me)
	huma.Register(bank, op("bank-list-operator-tokens", http.MethodGet, "/operator-tokens", "List your operator tokens",
		"The calling operator's tokens, newest first, without the tokens themselves."), h.listOperatorTokens)
	createToken := op("bank-create-operator-token", http.MethodPost, "/operator-tokens", "Create an operator token",
		"A personal bearer token for scripts, shown once. It holds the roles asked for (all the operator's when none), "+
			"only roles the operator holds (403 role_not_held), expires after ttl_days (default 30, at most 365), and is "+
			"narrowed at every call to the roles its operator still holds. The admin token cannot have one (403 operator_only).")
	createToken.DefaultStatus = http.StatusCreated
	huma.Register(bank, httpapi.NoStore(createToken), h.createOperatorToken)
	revoke := op("bank-revoke-operator-token", http.MethodDelete, "/operator-tokens/{id}", "Revoke an operator token",
		"Refused at once on every node. Another operator's token is 404; a token revoked already is 409 token_revoked.")
	revoke.DefaultStatus = http.StatusNoContent
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
