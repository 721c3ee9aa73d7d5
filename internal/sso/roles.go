package sso

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/causewayhq/causeway"
)

// roleMapEntry matches one "value=role" of a role map and the comma after
// it. The value is the shortest text before "=role", so a value may itself
// hold commas and equals signs, as a directory group's distinguished name
// does (CN=Risk,OU=Groups,DC=bank=risk-officer).
var roleMapEntry = regexp.MustCompile(`^\s*(.+?)\s*=\s*(` + strings.Join(quoted(Roles), "|") + `)\s*(?:,|$)`)

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = regexp.QuoteMeta(s)
	}
	return out
}

// ParseRoleMap reads a --oidc-role-map: "value=role,value=role", where
// each role is one of Roles. A value may contain commas and equals signs;
// an entry ends at "=role" followed by a comma or the end. An empty text
// is an empty map.
func ParseRoleMap(s string) (map[string]string, error) {
	out := map[string]string{}
	rest := s
	for strings.TrimSpace(rest) != "" {
		m := roleMapEntry.FindStringSubmatchIndex(rest)
		if m == nil {
			return nil, fmt.Errorf("oidc-role-map: %q is not value=role, with role one of %s", rest, strings.Join(Roles, ", "))
		}
		value, role := rest[m[2]:m[3]], rest[m[4]:m[5]]
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
// is sorted as Roles, without repeats.
func (c Config) mapRoles(values []string) []string {
	held := map[string]bool{}
	for _, v := range values {
		if role, ok := c.RoleMap[v]; ok {
			held[role] = true
		} else if slices.Contains(Roles, v) {
			held[v] = true
		}
	}
	var out []string
	for _, r := range Roles {
		if held[r] {
			out = append(out, r)
		}
	}
	return out
}
