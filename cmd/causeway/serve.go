package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/causewayhq/causeway/internal/foureyes"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/sso"
)

// serveCLI is `causeway serve`'s flags: the platform's Config, and the
// flags read into it only once parsed.
type serveCLI struct {
	cfg       platform.Config
	mode      string
	allowList string
	logLevel  string
	dataAgent string
	// trustedProxies is --trusted-proxies before parsing.
	trustedProxies string
	caFile         string
	// fourEyes is --four-eyes before parsing.
	fourEyes string
	// The --oidc-* flags that need parsing.
	oidcSecretFile, oidcRoleMap, oidcScopes string
}

func newServeCommand() *cobra.Command {
	var c serveCLI
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Causeway node",
		Long: `Run a Causeway node: the public API (/v1), the bank API (/bank/v1), events,
SPIs, data partnering and the portal, with the sandbox bank.

By default everything is embedded: a SQLite file and a NATS JetStream server
under --data-dir. Give --database-url and --nats-url to run several nodes on
a shared PostgreSQL and NATS. Every flag has an environment variable:
CAUSEWAY_ plus the flag name in capitals with dashes as underscores.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd) },
	}
	c.flags(cmd.Flags())
	return cmd
}

// run parses the flags that need it into the Config, checks it and runs
// the node until the command's context ends.
func (c *serveCLI) run(cmd *cobra.Command) error {
	if err := envDefaults(cmd.Flags()); err != nil {
		return err
	}
	var err error
	if c.cfg.Mode, err = platform.ParseMode(c.mode); err != nil {
		return err
	}
	if c.cfg.DataAgent, err = platform.ParseDataAgent(c.dataAgent); err != nil {
		return err
	}
	if c.cfg.AllowPrivateTargets, err = platform.ParseCIDRs(c.allowList); err != nil {
		return fmt.Errorf("allow-private-targets: %w", err)
	}
	if c.cfg.TrustedProxies, err = platform.ParseCIDRs(c.trustedProxies); err != nil {
		return fmt.Errorf("trusted-proxies: %w", err)
	}
	if c.cfg.FourEyes, err = platform.ParseFourEyes(c.fourEyes); err != nil {
		return err
	}
	if c.caFile != "" {
		if c.cfg.TargetRootCAs, err = platform.ReadCertificates(c.caFile); err != nil {
			return err
		}
	}
	if err := oidcSettings(&c.cfg.SSO, c.oidcSecretFile, c.oidcRoleMap, c.oidcScopes); err != nil {
		return err
	}
	if err := c.cfg.ValidateFlags(); err != nil {
		return err
	}
	if c.cfg.Logger, err = newLogger(c.logLevel); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	c.cfg.Version = buildVersion()
	return platform.Run(cmd.Context(), c.cfg)
}

// flags declares serve's flags on f.
func (c *serveCLI) flags(f *pflag.FlagSet) {
	f.StringVar(&c.cfg.Addr, "addr", platform.DefaultAddr, "HTTP listen address")
	f.StringVar(&c.cfg.DataDir, "data-dir", "./causeway-data", "directory for the SQLite file, the embedded NATS store and the key files; locked to one process while it holds either")
	f.StringVar(&c.cfg.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...); empty means the embedded SQLite file")
	f.StringVar(&c.cfg.NATSURL, "nats-url", "", "NATS URL with JetStream (nats://...); empty means the embedded server")
	f.StringVar(&c.cfg.NATSListen, "nats-listen", "", "host:port on which the embedded NATS also accepts clients; empty means in-process only")
	f.StringVar(&c.cfg.PublicURL, "public-url", "", "base URL clients use, e.g. https://api.bank.example: the OAuth2 issuer and the base of every absolute URL the platform writes; empty means http://localhost:PORT from --addr (a specific host is kept); production mode requires an https one")
	f.StringVar(&c.cfg.BusPrefix, "bus-prefix", "causeway", "namespace of streams and subjects, for installations sharing one NATS")
	f.StringVar(&c.mode, "mode", "sandbox", "sandbox (apps active at once, seeded data) or production (apps wait for approval; needs an https --public-url and a strong admin token, calls webhooks and SPIs over https only, /metrics only with --metrics-token)")
	f.StringVar(&c.cfg.AdminToken, "admin-token", "", "bank admin token (NEW,OLD accepts both during a rotation), at least 32 random characters (production refuses a weak one); empty means read or generate <data-dir>/admin-token")
	f.StringVar(&c.cfg.SecretKey, "secret-key", "", "base64 32-byte key sealing webhook and SPI secrets and token signing keys at rest (during a rotation NEW,OLD: the first seals, all open, and a start re-seals with the first); empty means <data-dir>/secret-key (give all nodes the same)")
	f.StringVar(&c.dataAgent, "data-agent", "inprocess", "where the data agent runs: inprocess, or external (a causeway agent process on the bank's premises)")
	f.StringVar(&c.cfg.DataAgentToken, "data-agent-token", "", "token that lets an external data agent call only the agent routes (default: the admin token)")
	f.StringVar(&c.cfg.DataAgentKey, "data-agent-key", "", "base64 key pseudonymizing customer ids in shared datasets; empty means <data-dir>/datashare-pseudonym-key")
	f.StringVar(&c.allowList, "allow-private-targets", "", "CIDR ranges that webhook and SPI URLs may target although private or loopback")
	f.StringVar(&c.caFile, "target-ca-file", "", "PEM file of CA certificates trusted, besides the system's, for https webhook and SPI URLs and the OpenID Connect provider (e.g. the bank's internal CA)")
	f.StringVar(&c.cfg.MetricsToken, "metrics-token", "", "bearer token /metrics requires; without it /metrics is open in sandbox and not served on --addr in production")
	f.StringVar(&c.cfg.MetricsAddr, "metrics-addr", "", "host:port of a listener serving only /metrics (then --addr serves it only with --metrics-token)")
	f.DurationVar(&c.cfg.EventStream.MaxAge, "event-retention", 0, "how long the events stream keeps events for replay, recovery and /v1/events, e.g. 2160h; 0 keeps every event")
	f.IntVar(&c.cfg.EventStream.Replicas, "event-replicas", 1, "how many servers of a NATS cluster keep the events stream (1, 3 or 5)")
	f.DurationVar(&c.cfg.ShutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long with /readyz answering 503 before draining, e.g. 10s (longer than the load balancer's health-check interval)")
	f.IntVar(&c.cfg.SignupRate, "signup-rate", identity.DefaultSignUpsPerHour, "sign-ups one client address may make per hour (429 beyond)")
	f.IntVar(&c.cfg.LoginFailuresPerAccount, "login-failures-per-account", identity.DefaultLoginFailuresPerAccount, "failed logins one email may see per --login-window, from all addresses, before logins to it answer 429 until the window ends (slowed down from half of it)")
	f.IntVar(&c.cfg.LoginFailuresPerAddress, "login-failures-per-address", identity.DefaultLoginFailuresPerAddress, "failed logins one client address may make per --login-window, over all emails (slowed down from half of it)")
	f.DurationVar(&c.cfg.LoginWindow, "login-window", identity.DefaultLoginWindow, "the window failed logins are counted over, from the first failure")
	f.IntVar(&c.cfg.MaxAppsPerDeveloper, "max-apps-per-developer", identity.DefaultMaxAppsPerDeveloper, "apps one developer may have (409 too_many_apps beyond; a deleted app counts for 24 h)")
	f.IntVar(&c.cfg.MaxStreamsPerApp, "max-streams-per-app", platform.DefaultMaxStreamsPerApp, "event streams (GET /v1/events/stream) one app may hold open at once, over all nodes (429 beyond)")
	f.StringVar(&c.fourEyes, "four-eyes", "", "bank decisions that need a second operator: all, none, or some of spi.activate, dataset_access.approve, grant.create, app.limits, payment.release (comma-separated); empty means all in production mode, none in sandbox mode")
	f.Float64Var(&c.cfg.FourEyesRateAbove, "four-eyes-rate-above", platform.DefaultFourEyesRateAbove, "app limits above this many requests per second need a second operator (with app.limits in --four-eyes)")
	f.Int64Var(&c.cfg.FourEyesQuotaAbove, "four-eyes-quota-above", platform.DefaultFourEyesQuotaAbove, "app daily quotas above this need a second operator (with app.limits in --four-eyes)")
	f.Int64Var(&c.cfg.FourEyesPaymentAbove, "four-eyes-payment-above", platform.DefaultFourEyesPaymentAbove, "releasing a held payment above this many minor units needs a second operator (with payment.release in --four-eyes)")
	f.DurationVar(&c.cfg.ProposalTTL, "proposal-ttl", foureyes.DefaultTTL, "how long a four-eyes proposal waits for a second operator")
	f.StringVar(&c.trustedProxies, "trusted-proxies", "", "CIDR ranges of load balancers whose X-Forwarded-For names the client for the sign-up and login throttles; empty means the connection's address")
	f.StringVar(&c.cfg.SSO.Issuer, "oidc-issuer", "", "issuer URL of the bank's OpenID Connect provider, for single sign-on to the console (with --oidc-client-id); the provider sends browsers back to <public URL>/console/sso/callback")
	f.StringVar(&c.cfg.SSO.ClientID, "oidc-client-id", "", "Causeway's client id at the OpenID Connect provider")
	f.StringVar(&c.cfg.SSO.ClientSecret, "oidc-client-secret", "", "Causeway's client secret at the OpenID Connect provider (or --oidc-client-secret-file)")
	f.StringVar(&c.oidcSecretFile, "oidc-client-secret-file", "", "file holding the OpenID Connect client secret, instead of --oidc-client-secret")
	f.StringVar(&c.cfg.SSO.RoleClaim, "oidc-role-claim", sso.DefaultRoleClaim, "claim of the ID token (or userinfo) whose values map to console roles: a string or an array of strings; a dotted name reads a nested claim, e.g. realm_access.roles")
	f.StringVar(&c.oidcRoleMap, "oidc-role-map", "", "value=role,value=role: claim values mapped to roles (viewer, app-manager, risk-officer, data-steward, admin); a value equal to a role name maps to that role unless mapped here")
	f.StringVar(&c.oidcScopes, "oidc-scopes", strings.Join(sso.DefaultScopes, ","), "scopes asked of the OpenID Connect provider, comma-separated (openid is always asked)")
	f.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
}

// oidcSettings completes the single sign-on settings from the flags that
// need reading: the secret's file, the role map and the scopes.
func oidcSettings(c *sso.Config, secretFile, roleMap, scopes string) error {
	if secretFile != "" {
		if c.ClientSecret != "" {
			return fmt.Errorf("oidc-client-secret-file: give the secret or its file, not both")
		}
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return fmt.Errorf("oidc-client-secret-file: %w", err)
		}
		if c.ClientSecret = strings.TrimSpace(string(b)); c.ClientSecret == "" {
			return fmt.Errorf("oidc-client-secret-file %s is empty", secretFile)
		}
	}
	var err error
	if c.RoleMap, err = sso.ParseRoleMap(roleMap); err != nil {
		return err
	}
	c.Scopes = splitList([]string{scopes})
	return nil
}
