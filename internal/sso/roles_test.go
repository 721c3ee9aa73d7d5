package sso

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
)

func TestParseRoleMapReadsValuesWithCommasAndEquals(t *testing.T) {
	for in, want := range map[string]map[string]auth.Role{
		"":                                       {},
		"bank-risk=risk-officer":                 {"bank-risk": auth.RoleRiskOfficer},
		" bank-risk = risk-officer , ops=admin ": {"bank-risk": auth.RoleRiskOfficer, "ops": auth.RoleAdmin},
		"CN=Risk,OU=Groups,DC=bank=risk-officer,CN=Ops,OU=Groups,DC=bank=app-manager": {
			"CN=Risk,OU=Groups,DC=bank": auth.RoleRiskOfficer, "CN=Ops,OU=Groups,DC=bank": auth.RoleAppManager},
		"a=viewer,a=viewer": {"a": auth.RoleViewer},
	} {
		got, err := ParseRoleMap(in)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("ParseRoleMap(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"bank-risk", "bank-risk=superuser", "=admin", "a=viewer,b", "a=viewer,a=admin", "a=adminx"} {
		if got, err := ParseRoleMap(in); err == nil {
			t.Errorf("ParseRoleMap(%q) = %v, want an error", in, got)
		}
	}
}

func TestRolesComeFromNamesAndTheMapOnly(t *testing.T) {
	c := Config{RoleMap: map[string]auth.Role{"bank-risk": auth.RoleRiskOfficer, "viewer": auth.RoleAppManager}}
	got := c.mapRoles([]string{"admin", "bank-risk", "staff", "viewer", "Admin", "admin"})
	// "viewer" is remapped, so it is not the viewer role; "Admin" is no
	// role's name (names are exact).
	if want := (auth.Roles{auth.RoleAdmin, auth.RoleAppManager, auth.RoleRiskOfficer}); !slices.Equal(got, want) {
		t.Errorf("roles = %q, want %q", got, want)
	}
}

func TestClaimValueReadsNamesThenNestedPaths(t *testing.T) {
	var claims map[string]any
	json.Unmarshal([]byte(`{"groups":["a"],"realm_access":{"roles":["admin"]},"https://bank.example/roles":"viewer","deep":{"x":1}}`), &claims)
	for name, want := range map[string]string{
		"groups": `["a"]`, "realm_access.roles": `["admin"]`, "https://bank.example/roles": `"viewer"`,
		"missing": "", "realm_access.missing": "", "deep.x.y": "", "groups.0": "",
	} {
		v, found := claimValue(claims, name)
		got, _ := json.Marshal(v)
		if (want == "") == found || (found && string(got) != want) {
			t.Errorf("claimValue(%q) = %s, %v; want %q", name, got, found, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Issuer: "https://login.bank.example/realms/staff", ClientID: "causeway", RedirectURL: "https://api.bank.example/console/sso/callback",
		RoleMap: map[string]auth.Role{"bank-risk": auth.RoleRiskOfficer}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"no issuer":          func(c *Config) { c.Issuer = "" },
		"no client id":       func(c *Config) { c.ClientID = "" },
		"relative issuer":    func(c *Config) { c.Issuer = "login.bank.example" },
		"issuer with query":  func(c *Config) { c.Issuer += "?x=1" },
		"ftp redirect":       func(c *Config) { c.RedirectURL = "ftp://api.bank.example/cb" },
		"unknown role":       func(c *Config) { c.RoleMap = map[string]auth.Role{"ops": "root"} },
		"empty value":        func(c *Config) { c.RoleMap = map[string]auth.Role{"": auth.RoleAdmin} },
		"scope with a space": func(c *Config) { c.Scopes = []string{"openid email"} },
		"client id line":     func(c *Config) { c.ClientID = "a\nb" },
	} {
		c := ok
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseCallbackChecksFormOnly(t *testing.T) {
	long := strings.Repeat("s", 257)
	for q, code := range map[string]string{
		"state=s&code=c":                             "",
		"state=s&error=access_denied":                "",
		"state=s&session_state=x&scope=openid+email": "",
		"code=c":                          "sso_callback_invalid",
		"state=s&state=t&code=c":          "sso_callback_invalid",
		"state=" + long + "&code=c":       "sso_callback_invalid",
		"state=s&code=%FF":                "invalid_text",
		"state=s&error_description=a%0Ab": "",
		"state=s&error=a%0Ab":             "invalid_text",
	} {
		v, _ := url.ParseQuery(q)
		_, err := parseCallback(v)
		got := ""
		if err != nil {
			got = causeway.ErrorCode(err)
		}
		if got != code {
			t.Errorf("parseCallback(%s) = %v, want %q", q, err, code)
		}
	}
}
