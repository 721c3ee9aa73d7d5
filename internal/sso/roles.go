package sso

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
)

// roleMapEntry matches one "value=role" of a role map and the comma after
// it. The value is the shortest text before "=role", so a value may itself
// hold commas and equals signs, as a directory group's distinguished name
// does (CN=Risk,OU=Groups,DC=bank=risk-officer).
var roleMapEntry = regexp.MustCompile(`^\s*(.+?)\s*=\s*(` + roleAlternatives() + `)\s*(?:,|$)`)

// roleAlternatives is the roles' names as alternatives of a pattern.
func roleAlternatives() string {
	quoted := make([]string, len(auth.AllRoles))
	for i, r := range auth.AllRoles {
		quoted[i] = regexp.QuoteMeta(string(r))
	}
	return strings.Join(quoted, "|")
}

// roleNames lists the roles' names for a message.
func roleNames() string {
	names := make([]string, len(auth.AllRoles))
	for i, r := range auth.AllRoles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// ParseRoleMap reads a --oidc-role-map: "value=role,value=role", where
// each role is one of auth.AllRoles. A value may contain commas and equals signs;
// an entry ends at "=role" followed by a comma or the end. An empty text
// is an empty map.
func ParseRoleMap(s string) (map[string]auth.Role, error) {
	out := map[string]auth.Role{}
	rest := s
	for strings.TrimSpace(rest) != "" {
		m := roleMapEntry.FindStringSubmatchIndex(rest)
		if m == nil {
			return nil, fmt.Errorf("oidc-role-map: %q is not value=role, with role one of %s", rest, roleNames())
		}
		value, role := rest[m[2]:m[3]], auth.Role(rest[m[4]:m[5]])
		if prev, dup := out[value]; dup && prev != role {
			return nil, fmt.Errorf("oidc-role-map: %q maps to both %s and %s", value, prev, role)
		}
		out[value] = role
		rest = rest[m[1]:]
	}
	return out, nil
}

// claimValue finds the claim named name in claims: the member of that
// name, or else, for a dotted name, the path through nested objects
// (realm_access.roles). found is false when there is none.
func claimValue(claims map[string]any, name string) (v any, found bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// claimStrings reads a role claim's value: a string, or an array of
// strings (JSON null counts as no value). Anything else is
// role_claim_invalid: the provider sends something no mapping can read.
func claimStrings(claim string, v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errRoleClaimInvalid(claim)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errRoleClaimInvalid(claim)
}

func errRoleClaimInvalid(claim string) error {
	return causeway.Errorf(causeway.EFORBIDDEN, "role_claim_invalid",
		"the identity provider's %s claim is neither a string nor an array of strings; ask the bank's identity team to send it as one", claim)
}

// mapRoles turns claim values into roles: through RoleMap first, else a
// value that is a role's name is that role; others are ignored. The result
// is sorted, without repeats.
func (c Config) mapRoles(values []string) auth.Roles {
	var held []auth.Role
	for _, v := range values {
		if role, ok := c.RoleMap[v]; ok {
			held = append(held, role)
		} else if auth.ValidRole(auth.Role(v)) {
			held = append(held, auth.Role(v))
		}
	}
	return auth.NewRoles(held...)
}
