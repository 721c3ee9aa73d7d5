package httpapi

import (
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/auth"
)

// bankRoles is who may do what on the bank API: the role each /bank/v1
// operation that changes something needs, by operation id. Reads need
// auth.RoleViewer, which every role includes, unless listed here. The
// role is declared in the OpenAPI document as the bank scheme's required
// role, and requireOperator enforces it; registering a bank operation
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

	// An operator's own tokens: any role.
	"bank-create-operator-token": auth.RoleViewer,
	"bank-revoke-operator-token": auth.RoleViewer,
}

// bankRole returns the role op needs: the one it declares itself (see
// BankRole), else bankRoles'. It panics for an operation that changes
// something and has neither.
func bankRole(op *huma.Operation) auth.Role {
	if role, ok := RequiredRole(op.Security); ok {
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

// RequiredRole returns the role a bank route's security requirement
// names, and whether it names one.
func RequiredRole(security []map[string][]string) (auth.Role, bool) {
	for _, req := range security {
		if roles, ok := req[SchemeBankAdmin]; ok && len(roles) > 0 {
			return auth.Role(roles[0]), true
		}
	}
	return "", false
}

// BankRole returns op declaring that it needs role, for a bank operation
// registered outside bankRoles' table (tests, or a bank's own extension).
func BankRole(op huma.Operation, role auth.Role) huma.Operation {
	op.Security = []map[string][]string{{SchemeBankAdmin: {string(role)}}}
	return op
}
