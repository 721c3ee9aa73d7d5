package platform_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/sso"
)

// TestNodeStartsWithSingleSignOnWhileTheProviderIsDown: a node configured
// for single sign-on against a provider that cannot be reached starts and
// is ready (discovery waits for the first sign-in); a sign-in then answers
// sso_unavailable. Without the settings there is no Login.
func TestNodeStartsWithSingleSignOnWhileTheProviderIsDown(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		// Nothing listens on port 1 of loopback.
		cfg.SSO = sso.Config{Issuer: "http://127.0.0.1:1/realms/staff", ClientID: "causeway-console", RoleClaim: "groups"}
		n := platformtest.Start(t, cfg)
		res, err := http.Get(n.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("/readyz = %d with the provider down, want 200", res.StatusCode)
		}
		if n.SSO == nil {
			t.Fatal("no Login although --oidc-issuer is set")
		}
		_, _, err = n.SSO.Begin(context.Background())
		if causeway.ErrorKind(err) != causeway.EUNAVAILABLE || causeway.ErrorCode(err) != "sso_unavailable" {
			t.Errorf("Begin with the provider down = %v, want sso_unavailable", err)
		}

		if plain := platformtest.Start(t, rt.Config(t)); plain.SSO != nil {
			t.Error("a node without --oidc-issuer has a Login")
		}
	})
}

// TestSingleSignOnSettingsAreCheckedBeforeStart: issuer and client id go
// together; a secret or role map alone, a role that does not exist or an
// issuer that is no URL are refused; production wants an https issuer.
func TestSingleSignOnSettingsAreCheckedBeforeStart(t *testing.T) {
	t.Parallel()
	good := sso.Config{Issuer: "https://login.bank.example/realms/staff", ClientID: "causeway-console", RoleClaim: "groups",
		RoleMap: map[string]auth.Role{"CN=Risk,OU=Groups": auth.RoleRiskOfficer}}
	prod := func(c platform.Config) platform.Config {
		c.Mode, c.PublicURL = platform.ModeProduction, "https://api.bank.example"
		return c
	}
	for name, c := range map[string]platform.Config{
		"none":            {},
		"https issuer":    {SSO: good},
		"in production":   prod(platform.Config{SSO: good}),
		"http in sandbox": {SSO: with(good, func(c *sso.Config) { c.Issuer = "http://127.0.0.1:9000" })},
		"a public client": {SSO: with(good, func(c *sso.Config) { c.ClientSecret = "" })},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, tc := range map[string]struct {
		c    platform.Config
		want string
	}{
		"issuer alone":       {platform.Config{SSO: sso.Config{Issuer: good.Issuer}}, "oidc-issuer and oidc-client-id"},
		"client id alone":    {platform.Config{SSO: sso.Config{ClientID: "c"}}, "oidc-issuer and oidc-client-id"},
		"secret alone":       {platform.Config{SSO: sso.Config{ClientSecret: "s"}}, "need --oidc-issuer"},
		"unknown role":       {platform.Config{SSO: with(good, func(c *sso.Config) { c.RoleMap = map[string]auth.Role{"ops": "root"} })}, "not a role"},
		"issuer not a URL":   {platform.Config{SSO: with(good, func(c *sso.Config) { c.Issuer = "login.bank.example" })}, "oidc-issuer"},
		"http in production": {prod(platform.Config{SSO: with(good, func(c *sso.Config) { c.Issuer = "http://login.bank.example" })}), "https:// issuer"},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

func with(c sso.Config, edit func(*sso.Config)) sso.Config {
	edit(&c)
	return c
}
