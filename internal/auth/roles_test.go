package auth

import "testing"

func TestRolesAllowWhatTheyHoldAndEveryRoleReads(t *testing.T) {
	manager := NewRoles(RoleAppManager)
	for _, c := range []struct {
		roles Roles
		need  Role
		want  bool
	}{
		{manager, RoleViewer, true},
		{manager, RoleAppManager, true},
		{manager, RoleRiskOfficer, false},
		{manager, RoleAdmin, false},
		{nil, RoleViewer, false},
		{NewRoles(RoleAdmin), RoleDataSteward, false},
	} {
		if got := c.roles.Allow(c.need); got != c.want {
			t.Errorf("%v.Allow(%s) = %v, want %v", c.roles, c.need, got, c.want)
		}
	}
	if got := ParseRoles(" risk-officer viewer risk-officer ").String(); got != "risk-officer viewer" {
		t.Errorf("ParseRoles = %q", got)
	}
	token := NewRoles(RoleAppManager, RoleRiskOfficer)
	if got := token.Within(NewRoles(RoleRiskOfficer)).String(); got != "risk-officer" {
		t.Errorf("narrowed to the operator's roles = %q", got)
	}
	if got := token.Within(NewRoles(RoleViewer)).String(); got != "viewer" {
		t.Errorf("narrowed to a viewer = %q, want viewer", got)
	}
	if got := token.Within(nil); len(got) != 0 {
		t.Errorf("narrowed to nothing = %v", got)
	}
	if !AdminTokenHolder().Roles.Allow(RoleAdmin) || !AdminTokenHolder().IsAdminToken() {
		t.Error("the admin token holds every role")
	}
}
