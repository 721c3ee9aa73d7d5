package auth

import (
	"context"
	"slices"
	"strings"
)

// Role is what a bank operator may do. Every /bank/v1 operation needs one
// role (declared in the OpenAPI document as the bank scheme's required
// role); an operator may hold several. Every role may read: the reads
// need RoleViewer, which the others include.
type Role string

// The bank's roles, least privilege first.
const (
	// RoleViewer reads everything in the console and the /bank/v1 reads.
	RoleViewer Role = "viewer"
	// RoleAppManager approves and suspends apps, sets their limits and
	// grants them customers.
	RoleAppManager Role = "app-manager"
	// RoleRiskOfficer registers, activates and configures SPIs and
	// releases or rejects held payments.
	RoleRiskOfficer Role = "risk-officer"
	// RoleDataSteward publishes datasets and decides access to them.
	RoleDataSteward Role = "data-steward"
	// RoleAdmin manages operators and their roles and the platform's
	// settings (signing keys, upstream APIs, event types).
	RoleAdmin Role = "admin"
)

// AllRoles lists every role, in the order the docs show them.
var AllRoles = []Role{RoleViewer, RoleAppManager, RoleRiskOfficer, RoleDataSteward, RoleAdmin}

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return slices.Contains(AllRoles, r) }

// Roles is a set of roles, kept sorted and without repeats.
type Roles []Role

// NewRoles returns the roles named, sorted and without repeats. It does not
// check them; see ValidRole.
func NewRoles(names ...Role) Roles {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// ParseRoles reads roles stored space-separated (see Roles.String).
func ParseRoles(s string) Roles {
	var out []Role
	for _, f := range strings.Fields(s) {
		out = append(out, Role(f))
	}
	return NewRoles(out...)
}

// String writes the roles space-separated, the form they are stored in.
func (rs Roles) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, " ")
}

// Allow reports whether holding rs permits what needs role: holding it,
// or any role at all when role is RoleViewer.
func (rs Roles) Allow(role Role) bool {
	if role == RoleViewer {
		return len(rs) > 0
	}
	return slices.Contains(rs, role)
}

// Within returns the roles of rs that holding holder allows: a token's
// roles narrowed to what its operator holds now. Since every role reads,
// what is left of a set that held any role reads too, while holder holds
// any.
func (rs Roles) Within(holder Roles) Roles {
	var out Roles
	for _, r := range rs {
		if holder.Allow(r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 && len(rs) > 0 && len(holder) > 0 {
		out = Roles{RoleViewer}
	}
	return out
}

// HomeBank is the id of the bank the platform serves. There is one bank
// today; operators, proposals and audit entries name theirs so that a
// platform serving several banks can keep each one's apart.
const HomeBank = "bank"

// Operator is a person at the bank (or the holder of the shared admin
// token), calling the bank API or using the console.
type Operator struct {
	// ID is the operator's id, or AdminTokenOperator for the admin token.
	ID string
	// BankID is the bank the operator works for (HomeBank).
	BankID string
	Email  string
	Name   string
	// Roles are what this call may do: the operator's roles, narrowed to
	// a token's roles when the call carries an operator token.
	Roles Roles
}

// AdminTokenHolder is the Operator the shared admin token stands for: it
// holds every role, and the audit names it AdminTokenOperator.
func AdminTokenHolder() *Operator {
	return &Operator{ID: AdminTokenOperator, BankID: HomeBank, Name: "admin token", Roles: NewRoles(AllRoles...)}
}

// IsAdminToken reports whether o is the admin token rather than a person.
func (o *Operator) IsAdminToken() bool { return o.ID == AdminTokenOperator }

type operatorKey struct{}

// WithOperator returns ctx carrying the calling operator, and the Caller
// that names it.
func WithOperator(ctx context.Context, o *Operator) context.Context {
	ctx = context.WithValue(ctx, operatorKey{}, o)
	return WithCaller(ctx, OperatorCaller(o.ID))
}

// OperatorFrom returns the calling operator, if a bank route or console
// page authenticated one.
func OperatorFrom(ctx context.Context) (*Operator, bool) {
	o, ok := ctx.Value(operatorKey{}).(*Operator)
	return o, ok
}
