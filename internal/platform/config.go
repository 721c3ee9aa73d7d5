package platform

import (
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/outbox"

	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	// PublicURL is the base URL clients use (e.g. https://api.bank.example);
	// it is the OAuth2 issuer. Empty: derived from each request's Host.
	PublicURL string
	// SecretKey (base64, 32 bytes) seals secrets the platform must read back,
	// such as webhook signing secrets. Empty: <data-dir>/secret-key, made on
	// first start. Give every node of a scaled-out installation the same key.
	// During a rotation it holds comma-separated keys, "NEW,OLD": the first
	// seals, every one opens, and New re-seals with the first what another
	// sealed (see docs/operations.md).
	SecretKey string
	// DataAgent is where the data agent runs: "inprocess" (default) or
	// "external" (`causeway agent` on the bank's premises).
	DataAgent string
	// DataAgentToken, when set, lets an external agent call only the agent
	// routes (instead of using the admin token).
	DataAgentToken string
	// DataAgentKey (base64) keys the pseudonymization of customer ids in
	// shared datasets. Empty: <data-dir>/datashare-pseudonym-key.
	DataAgentKey string
	// WebhookSchedule is the wait after each failed webhook attempt; nil
	// means the webhooks package's default (0 s, 5 s, 5 min, … 24 h).
	WebhookSchedule []time.Duration
	// EventStream bounds the events stream: how long events are kept, and
	// how many NATS servers keep them. Zero keeps every event, one copy.
	EventStream outbox.StreamLimits
	// ShutdownDelay is how long a stopping node keeps serving while /readyz
	// answers 503 "draining", so a load balancer takes it out before its
	// listener closes. Zero closes at once.
	ShutdownDelay time.Duration
	// PasswordCost sets the argon2id cost of developer passwords; tests make
	// it cheap. Zero means the identity package's default.
	PasswordCost identity.PasswordCost
	// PortalClock is the clock the portal's and the console's sessions
	// expire by; tests move it past the idle timeout and the lifetime.
	// Nil means time.Now.
	PortalClock func() time.Time
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
	// ThrottleClock is the clock of the login and sign-up windows; tests
	// move it. Nil means time.Now.
	ThrottleClock func() time.Time
}

// DefaultMaxStreamsPerApp is the default of Config.MaxStreamsPerApp.
const DefaultMaxStreamsPerApp = 10

// ParseMode checks a --mode value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeSandbox, ModeProduction:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode %q: must be sandbox or production", s)
}

// ParseDataAgent checks a --data-agent value.
func ParseDataAgent(s string) (string, error) {
	switch s {
	case DataAgentInProcess, DataAgentExternal:
		return s, nil
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
// this call created it, so it is logged exactly once.
func adminToken(cfg Config) (token string, generated bool, err error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, false, nil
	}
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		token = strings.TrimSpace(string(b))
		if token == "" {
			return "", false, fmt.Errorf("admin token file %s is empty", path)
		}
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = "cwadm_" + base64.RawURLEncoding.EncodeToString(raw)
	// O_EXCL: if another process created it first, use theirs.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return adminToken(cfg)
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(token + "\n"); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	return token, true, f.Sync()
}
