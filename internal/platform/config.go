package platform

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causewayhq/causeway/internal/foureyes"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/sso"
)

// Mode decides how new apps start: at once with seeded sandbox data, or
// waiting for the bank's approval.
type Mode string

// Modes.
const (
	ModeSandbox    Mode = "sandbox"
	ModeProduction Mode = "production"
)

// Config is everything `causeway serve` is told. Every field has a flag and
// an environment variable (see cmd/causeway).
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	NATSURL     string
	NATSListen  string
	Mode        Mode
	AdminToken  string
	// AllowPrivateTargets lists the private, loopback or link-local ranges
	// that webhook and SPI URLs may nevertheless point to.
	AllowPrivateTargets []netip.Prefix
	Version             string
	Logger              *slog.Logger
	// BusPrefix namespaces streams and subjects on a shared NATS; tests set
	// it to keep apart. Default "causeway".
	BusPrefix string
	// PublicURL is the base URL clients use (e.g. https://api.bank.example):
	// the OAuth2 issuer, and the base of every absolute URL the platform
	// writes (the OAuth2 metadata, the portal's token URL and examples).
	// Empty: derived from Addr (see Issuer), never from a request. Production
	// mode requires it, with https.
	PublicURL string
	// MetricsToken, when set, is the bearer token every /metrics request
	// must carry.
	MetricsToken string
	// MetricsAddr, when set, is a listener of its own for /metrics (for a
	// network only the monitoring reaches); the main listener then serves
	// /metrics only with MetricsToken. Run opens it.
	MetricsAddr string
	// TargetRootCAs are certificates trusted, besides the system's roots,
	// for https webhook and SPI URLs: a bank's internal CA, or a test's.
	TargetRootCAs []*x509.Certificate
	// SecretKey (base64, 32 bytes) seals secrets the platform must read back,
	// such as webhook signing secrets. Empty: <data-dir>/secret-key, made on
	// first start. Give every node of a scaled-out installation the same key.
	// During a rotation it holds comma-separated keys, "NEW,OLD": the first
	// seals, every one opens, and New re-seals with the first what another
	// sealed (see docs/operations.md).
	SecretKey string
	// DataAgent is where the data agent runs: "inprocess" (default) or
	// "external" (`causeway agent` on the bank's premises).
	DataAgent DataAgent
	// DataAgentToken, when set, lets an external agent call only the agent
	// routes (instead of using the admin token).
	DataAgentToken string
	// DataAgentKey (base64) keys the pseudonymization of customer ids in
	// shared datasets. Empty: <data-dir>/datashare-pseudonym-key.
	DataAgentKey string
	// EventStream bounds the events stream: how long events are kept, and
	// how many NATS servers keep them. Zero keeps every event, one copy.
	EventStream outbox.StreamLimits
	// ShutdownDelay is how long a stopping node keeps serving while /readyz
	// answers 503 "draining", so a load balancer takes it out before its
	// listener closes. Zero closes at once.
	ShutdownDelay time.Duration
	// SignupRate is how many sign-ups one client address may make per
	// hour. Zero means identity.DefaultSignUpsPerHour (20).
	SignupRate int
	// LoginFailuresPerAccount and LoginFailuresPerAddress are the failed
	// logins one email, and one client address, may see per LoginWindow
	// (see identity.Limits). Zero means the defaults: 10, 50, 15 minutes.
	LoginFailuresPerAccount int
	LoginFailuresPerAddress int
	LoginWindow             time.Duration
	// MaxAppsPerDeveloper caps a developer's apps. Zero means
	// identity.DefaultMaxAppsPerDeveloper (20).
	MaxAppsPerDeveloper int
	// MaxStreamsPerApp caps the event streams an app holds open at once,
	// over all nodes. Zero means DefaultMaxStreamsPerApp (10).
	MaxStreamsPerApp int
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client the sign-up and login throttles count (see
	// httpapi.ClientAddr). Empty: the connection's remote address.
	TrustedProxies []netip.Prefix
	// FourEyes are the bank decisions that need a second operator
	// (foureyes.Actions). Nil means the mode's default: every one in
	// production mode, none in sandbox mode; empty means none.
	FourEyes []string
	// FourEyesRateAbove and FourEyesQuotaAbove: app limits above them need
	// a second operator (when app.limits is in FourEyes). Zero means the
	// defaults (DefaultFourEyesRateAbove, DefaultFourEyesQuotaAbove).
	FourEyesRateAbove  float64
	FourEyesQuotaAbove int64
	// FourEyesPaymentAbove: releasing a held payment of more minor units
	// needs a second operator (when payment.release is in FourEyes). Zero
	// means DefaultFourEyesPaymentAbove.
	FourEyesPaymentAbove int64
	// ProposalTTL is how long a four-eyes proposal waits; zero means
	// foureyes.DefaultTTL (72 hours).
	ProposalTTL time.Duration
	// SSO turns on the console's single sign-on with the bank's OpenID
	// Connect provider when its Issuer and ClientID are set (both or
	// neither). Its RedirectURL is left empty: the platform makes it
	// <public URL>/console/sso/callback.
	SSO sso.Config
	// Testing is for tests and benchmarks only.
	Testing Testing
}

// Testing holds what tests and benchmarks change and an operator never
// does: no flag sets it, and its zero value is what production runs.
type Testing struct {
	// PasswordCost sets the argon2id cost of passwords; tests make it
	// cheap. Zero means the identity package's default.
	PasswordCost identity.PasswordCost
	// PortalClock is the clock the portal's and the console's sessions
	// expire by; tests move it past the idle timeout and the lifetime.
	// Nil means time.Now.
	PortalClock func() time.Time
	// ThrottleClock is the clock of the login and sign-up windows; tests
	// move it. Nil means time.Now.
	ThrottleClock func() time.Time
}

// Four-eyes thresholds by default.
const (
	DefaultFourEyesRateAbove    = 100
	DefaultFourEyesQuotaAbove   = 100_000
	DefaultFourEyesPaymentAbove = 1_000_000 // 10,000.00 in a currency of two decimals
)

// ParseFourEyes reads --four-eyes: "" for the mode's default (nil),
// "none", "all", or actions separated by commas.
func ParseFourEyes(s string) ([]string, error) {
	switch s = strings.TrimSpace(s); s {
	case "":
		return nil, nil
	case "none":
		return []string{}, nil
	case "all":
		return slices.Clone(foureyes.Actions), nil
	}
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if !slices.Contains(foureyes.Actions, a) {
			return nil, fmt.Errorf("four-eyes: unknown action %q; actions are %s, or all or none", a, strings.Join(foureyes.Actions, ", "))
		}
		out = append(out, a)
	}
	return out, nil
}

// DefaultMaxStreamsPerApp is the default of Config.MaxStreamsPerApp.
const DefaultMaxStreamsPerApp = 10

// DefaultAddr is the listen address when Config.Addr is empty.
const DefaultAddr = ":8080"

// MinAdminTokenLength and MinAdminTokenDistinct are the least length and
// the least number of different characters of an admin token (see
// CheckAdminToken).
const (
	MinAdminTokenLength   = 32
	MinAdminTokenDistinct = 8
)

// Validate checks the configuration before anything starts: the public
// URL's form, limits and windows that cannot be negative, the events
// stream's bounds, and what production mode requires (an https public
// URL, a strong admin token when one is given). It is the one place these
// rules live, with ValidateFlags; New calls it.
func (c Config) Validate() error {
	if _, err := ParseMode(string(c.modeOrDefault())); err != nil {
		return err
	}
	if err := c.checkLimits(func(n float64) bool { return n >= 0 }); err != nil {
		return err
	}
	if err := c.EventStream.Validate(); err != nil {
		return err
	}
	if c.EventStream.Replicas > 1 && c.NATSURL == "" {
		return fmt.Errorf("event-replicas %d needs --nats-url: the embedded NATS is one server", c.EventStream.Replicas)
	}
	if c.PublicURL != "" {
		if err := checkPublicURL(c.PublicURL); err != nil {
			return err
		}
	}
	if c.Addr != "" {
		// A port 0 is fine here: Run binds it, then New derives the issuer.
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("addr %q: %w", c.Addr, err)
		}
	}
	if err := c.validateSSO(); err != nil {
		return err
	}
	if c.modeOrDefault() != ModeProduction {
		return nil
	}
	if c.PublicURL == "" {
		return errors.New("public-url: production mode needs --public-url, the https URL clients reach the platform at " +
			"(it is the OAuth2 issuer; taken from the listen address it would name this host, not the service)")
	}
	if !strings.HasPrefix(c.PublicURL, "https://") {
		return fmt.Errorf("public-url %q: production mode needs an https:// URL", c.PublicURL)
	}
	if c.AdminToken != "" {
		if err := CheckAdminToken(c.AdminToken); err != nil {
			return fmt.Errorf("admin-token: %w (production mode refuses a weak one)", err)
		}
	}
	return nil
}

// ValidateFlags is Validate for a configuration read from `causeway
// serve`'s flags, where every limit is given: a 0, which in a Config means
// the default, is refused there, since each flag shows its default and a
// 0 would take a brake off.
func (c Config) ValidateFlags() error {
	if err := c.checkLimits(func(n float64) bool { return n > 0 }); err != nil {
		return err
	}
	return c.Validate()
}

// checkLimits checks the counts, thresholds and windows with ok.
func (c Config) checkLimits(ok func(float64) bool) error {
	if !ok(c.FourEyesRateAbove) || !ok(float64(c.FourEyesQuotaAbove)) ||
		!ok(float64(c.FourEyesPaymentAbove)) || !ok(float64(c.ProposalTTL)) {
		return errors.New("four-eyes-rate-above, four-eyes-quota-above, four-eyes-payment-above and proposal-ttl must be positive")
	}
	for _, count := range []struct {
		flag string
		n    int
	}{
		{"signup-rate", c.SignupRate},
		{"max-apps-per-developer", c.MaxAppsPerDeveloper},
		{"max-streams-per-app", c.MaxStreamsPerApp},
		{"login-failures-per-account", c.LoginFailuresPerAccount},
		{"login-failures-per-address", c.LoginFailuresPerAddress},
	} {
		if !ok(float64(count.n)) {
			return fmt.Errorf("%s %d: must be at least 1", count.flag, count.n)
		}
	}
	if !ok(float64(c.LoginWindow)) {
		return fmt.Errorf("login-window %s: must be positive", c.LoginWindow)
	}
	return nil
}

// validateSSO checks the --oidc-* settings: none, or an issuer and a
// client id with the rest valid; in production the issuer must be https
// (the code and the ID token travel to and from it).
func (c Config) validateSSO() error {
	if !c.SSO.Configured() {
		if c.SSO.ClientSecret != "" || len(c.SSO.RoleMap) > 0 {
			return errors.New("oidc-client-secret and oidc-role-map need --oidc-issuer and --oidc-client-id")
		}
		return nil
	}
	if err := c.SSO.Validate(); err != nil {
		return err
	}
	if c.modeOrDefault() == ModeProduction && !strings.HasPrefix(c.SSO.Issuer, "https://") {
		return fmt.Errorf("oidc-issuer %q: production mode needs an https:// issuer", c.SSO.Issuer)
	}
	return nil
}

func (c Config) modeOrDefault() Mode {
	if c.Mode == "" {
		return ModeSandbox
	}
	return c.Mode
}

// checkPublicURL accepts an absolute http(s) URL with a host and nothing
// after it: the platform serves its routes at the root, so a path would
// make every URL built on it wrong.
func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("public-url %q: must be an absolute http(s) URL such as https://api.bank.example", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return fmt.Errorf("public-url %q: must be a scheme and host only (no user, path, query or fragment), such as https://api.bank.example", raw)
	}
	return nil
}

// Issuer is the platform's base URL and OAuth2 issuer: PublicURL without
// a trailing slash, or else http://HOST:PORT from Addr, where an empty or
// unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") becomes
// "localhost". It never depends on a request. Addr must carry the real
// port: Run replaces a port 0 with the one it bound before New runs.
func (c Config) Issuer() (string, error) {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/"), nil
	}
	addr := c.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("addr %q: %w", addr, err)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("addr %q: without --public-url the issuer is taken from the listen address, "+
			"which needs its port (listen first, or give --public-url)", addr)
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// CheckAdminToken refuses an obviously weak admin token: each token of a
// "NEW,OLD" pair must have at least MinAdminTokenLength characters, at
// least MinAdminTokenDistinct different ones, and not be one short
// sequence repeated. It cannot measure randomness; it catches the tokens a
// person types (`openssl rand -base64 32` passes, as does the generated
// one).
func CheckAdminToken(value string) error {
	// The tokens as the server reads them (httpapi.AdminTokens): an empty
	// part of the list is no token, and a list of none is refused.
	tokens := httpapi.AdminTokens(value)
	if len(tokens) == 0 {
		return fmt.Errorf("no token: use at least %d random characters (openssl rand -base64 32)", MinAdminTokenLength)
	}
	for _, t := range tokens {
		n := utf8.RuneCountInString(t)
		switch {
		case n < MinAdminTokenLength:
			return fmt.Errorf("a token of %d characters is too short: use at least %d random ones (openssl rand -base64 32)", n, MinAdminTokenLength)
		case distinct(t) < MinAdminTokenDistinct:
			return fmt.Errorf("a token of %d different characters is too uniform: use at least %d random ones (openssl rand -base64 32)", distinct(t), MinAdminTokenLength)
		case repeated(t):
			return errors.New("a token that repeats one short sequence is guessable: use random characters (openssl rand -base64 32)")
		}
	}
	return nil
}

func distinct(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen)
}

// repeated reports whether s is a shorter sequence repeated (the last copy
// may be cut short).
func repeated(s string) bool {
	for unit := 1; unit <= len(s)/2; unit++ {
		if strings.HasPrefix(strings.Repeat(s[:unit], len(s)/unit+1), s) {
			return true
		}
	}
	return false
}

// ReadCertificates reads the PEM certificates of a --target-ca-file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("target-ca-file: %w", err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("target-ca-file %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("target-ca-file %s: no PEM certificate in it", path)
	}
	return out, nil
}

// ParseMode checks a --mode value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeSandbox, ModeProduction:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode %q: must be sandbox or production", s)
}

// ParseDataAgent checks a --data-agent value.
func ParseDataAgent(s string) (DataAgent, error) {
	switch a := DataAgent(s); a {
	case DataAgentInProcess, DataAgentExternal:
		return a, nil
	}
	return "", fmt.Errorf("data-agent %q: must be inprocess or external", s)
}

// ParseCIDRs parses a comma-separated list of CIDR ranges (or single
// addresses, taken as /32 or /128).
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR range or address", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

const adminTokenFile = "admin-token"

// adminToken returns the configured admin token, or the one stored in the
// data dir, or generates and stores a new one. generated is true only when
// this call created it, so its file is named in the log exactly once (the
// token itself never is: logs travel further than the data dir).
func adminToken(cfg Config) (token string, generated bool, err error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, false, nil
	}
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	token, generated, err = seal.SecretFile(path, func() string {
		raw := make([]byte, 32)
		rand.Read(raw)
		return "cwadm_" + base64.RawURLEncoding.EncodeToString(raw)
	})
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if token == "" {
		return "", false, fmt.Errorf("admin token file %s is empty", path)
	}
	return token, generated, nil
}
