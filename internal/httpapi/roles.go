package httpapi

import (
	"fmt"
	"maps"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/auth"
)

// RoleExtension names, in the OpenAPI document, the operator role a bank
// operation needs (one of auth.AllRoles). OpenAPI 3.1 would also allow the
// role in the security requirement's list, but linters (Spectral's
// oas3-operation-security-defined) read that list as OAuth2 scopes.
const RoleExtension = "x-causeway-role"

// bankRoles is who may do what on the bank API: the role each /bank/v1
// operation that changes something needs, by operation id. Reads need
// auth.RoleViewer, which every role includes, unless listed here. The
// role is declared in the OpenAPI document (RoleExtension), and
// requireOperator enforces it; registering a bank operation
// that changes something without a role here panics, so none is
// forgotten.
var bankRoles = map[string]auth.Role{
	// Apps and what they may reach.
	"bank-approve-app":    auth.RoleAppManager,
	"bank-suspend-app":    auth.RoleAppManager,
	"bank-put-app-limits": auth.RoleAppManager,
	"bank-create-grant":   auth.RoleAppManager,
	"bank-delete-grant":   auth.RoleAppManager,

	// SPIs inside the bank's processes, and held payments.
	"bank-activate-spi-registration":   auth.RoleRiskOfficer,
	"bank-deactivate-spi-registration": auth.RoleRiskOfficer,
	"bank-configure-spi-registration":  auth.RoleRiskOfficer,
	"bank-define-extension-point":      auth.RoleRiskOfficer,
	"bank-invoke-extension-point":      auth.RoleRiskOfficer,
	"bank-release-payment":             auth.RoleRiskOfficer,
	"bank-reject-payment":              auth.RoleRiskOfficer,
	"bank-create-payment":              auth.RoleRiskOfficer,

	// Data partnering.
	"bank-publish-dataset":                auth.RoleDataSteward,
	"bank-approve-dataset-access-request": auth.RoleDataSteward,
	"bank-reject-dataset-access-request":  auth.RoleDataSteward,
	"bank-revoke-dataset-access-request":  auth.RoleDataSteward,
	"bank-retry-dataset-content":          auth.RoleDataSteward,

	// The platform's settings, money made from nothing, and operators.
	"bank-deposit":             auth.RoleAdmin,
	"bank-rotate-signing-key":  auth.RoleAdmin,
	"bank-create-upstream":     auth.RoleAdmin,
	"bank-delete-upstream":     auth.RoleAdmin,
	"bank-register-event-type": auth.RoleAdmin,
	"bank-publish-event":       auth.RoleAdmin,
	"bank-create-operator":     auth.RoleAdmin,
	"bank-change-operator":     auth.RoleAdmin,
	"bank-reset-operator-totp": auth.RoleAdmin,
	"bank-list-operators":      auth.RoleAdmin,
	"bank-get-operator":        auth.RoleAdmin,

	// Four-eyes decisions: the role is the proposal's, checked by package
	// foureyes.
	"bank-confirm-proposal": auth.RoleViewer,
	"bank-reject-proposal":  auth.RoleViewer,

	// An operator's own tokens: any role.
	"bank-create-operator-token": auth.RoleViewer,
	"bank-revoke-operator-token": auth.RoleViewer,
}

// bankRole returns the role op needs: the one it declares itself (see
// BankRole), else bankRoles'. It panics for an operation that changes
// something and has neither.
func bankRole(op *huma.Operation) auth.Role {
	if role, ok := RequiredRole(op); ok {
		return role
	}
	if role, ok := bankRoles[op.OperationID]; ok {
		return role
	}
	if op.Method == http.MethodGet || op.Method == http.MethodHead {
		return auth.RoleViewer
	}
	panic(fmt.Sprintf("httpapi: bank operation %s (%s %s) changes something and declares no role: add it to bankRoles",
		op.OperationID, op.Method, op.Path))
}

// RequiredRole returns the role a bank operation declares it needs, and
// whether it declares one.
func RequiredRole(op *huma.Operation) (auth.Role, bool) {
	role, ok := op.Extensions[RoleExtension].(string)
	return auth.Role(role), ok && role != ""
}

// BankRole returns op declaring that it needs role, for a bank operation
// registered outside bankRoles' table (tests, or a bank's own extension).
func BankRole(op huma.Operation, role auth.Role) huma.Operation {
	op.Extensions = maps.Clone(op.Extensions)
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	op.Extensions[RoleExtension] = string(role)
	return op
}

// OperationRole returns the role the bank operation with id needs, for
// callers that act on an operation outside HTTP (the console's four-eyes
// proposals). Reads not in bankRoles are not known here.
func OperationRole(operationID string) (auth.Role, bool) {
	role, ok := bankRoles[operationID]
	return role, ok
}
