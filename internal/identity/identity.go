// Package identity knows who may call the platform: developers (sign-up,
// login, developer tokens), their organizations' apps (client credentials,
// approval, suspension), and the OAuth2 authorization server that turns an
// app's credentials into short-lived access tokens (client-credentials
// grant, EdDSA-signed JWTs, JWKS, RFC 8414 metadata).
//
// The Service's methods hold every rule; the HTTP handlers (api.go for
// /v1 and /bank/v1, oauth.go for /oauth2 and /.well-known) only translate.
// The gateway authenticates requests with AuthenticateApp and
// AuthenticateDeveloper and puts the caller in the context (package auth).
//
// Secrets are never stored or logged: developer tokens and client secrets
// are kept as SHA-256 hashes (they are 256 random bits, so a slow hash would
// add nothing), passwords as argon2id hashes.
package identity

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/throttle"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Modes decide how new apps start.
const (
	// ModeSandbox activates new apps at once.
	ModeSandbox = "sandbox"
	// ModeProduction leaves new apps pending until the bank approves them.
	ModeProduction = "production"
)

// Audience is the "aud" of every access token: the platform's API.
const Audience = "causeway-api"

// Defaults.
const (
	DefaultTokenTTL       = 15 * time.Minute
	DeveloperTokenTTL     = 30 * 24 * time.Hour
	MinPasswordLength     = 10
	maxPasswordLength     = 1024
	clockLeeway           = 30 * time.Second
	maxAccessTokenLength  = 4096
	maxDeveloperTokenSize = 256
)

// Options configure a Service.
type Options struct {
	// Mode is ModeSandbox (default) or ModeProduction.
	Mode string
	// Issuer is the "iss" of access tokens, the issuer of the metadata
	// document and the base of its URLs, e.g. "https://api.bank.example".
	// It is required, and never taken from a request: a Host or
	// X-Forwarded-Proto header chosen by the caller would otherwise decide
	// where verifiers fetch keys and which "iss" tokens carry. Every node
	// of an installation needs the same one.
	Issuer string
	// TokenTTL is the lifetime of access tokens; default 15 minutes.
	TokenTTL time.Duration
	// PasswordCost sets the argon2id parameters; zero fields take the
	// defaults (see PasswordCost).
	PasswordCost PasswordCost
	// OnAppActivated is called after an app becomes active: at creation in
	// sandbox mode, at approval in production mode (and again when the bank
	// reinstates a suspended app). It runs outside any identity transaction
	// and must be idempotent: when it fails, the activation is undone and
	// the error returned, so the caller can try again.
	OnAppActivated func(ctx context.Context, appID string) error
	// Sealer encrypts the token signing keys' private parts in the
	// database; at start New seals keys stored in the clear by earlier
	// versions and re-seals those sealed with an older key of the Sealer
	// (a --secret-key rotation). The platform always gives one; without it
	// keys are stored as plain base64, which only tests should do.
	Sealer *seal.Sealer
	// Logger receives audit lines (sign-ups, apps, approvals, key
	// rotations); it never sees a secret. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
	// Counters keep the failed logins and sign-ups every node counts
	// against Limits; nil means logins and sign-ups are not throttled
	// (tests of other things). The platform always gives them.
	Counters *throttle.Counters
	// Limits are the brakes on login, sign-up and app creation.
	Limits Limits
}

// Service is the identity capability: developers, apps, credentials and
// access tokens. It is safe for concurrent use, and several nodes may share
// one database.
type Service struct {
	db   *store.DB
	opts Options
	log  *slog.Logger
	now  func() time.Time
	keys *keyring
	// limits are Options.Limits with the defaults filled in.
	limits Limits
	// cache holds verified tokens and recent app statuses (tokencache.go).
	cache *tokenCache
	// hashing bounds concurrent argon2id computations: each takes
	// PasswordCost.Memory, and a burst of logins must not exhaust memory.
	hashing chan struct{}
	// dummyHash is verified against when an email is unknown, so that a
	// wrong email and a wrong password take the same time.
	dummyHash string
}

// Migrate applies the identity tables' migrations.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "identity", migrationFiles, "migrations")
}

// New returns the identity service on a database that Migrate has
// prepared. It does no I/O: Start does.
func New(db *store.DB, opts Options) (*Service, error) {
	switch opts.Mode {
	case "":
		opts.Mode = ModeSandbox
	case ModeSandbox, ModeProduction:
	default:
		return nil, fmt.Errorf("identity: mode %q: must be %s or %s", opts.Mode, ModeSandbox, ModeProduction)
	}
	opts.Issuer = strings.TrimSuffix(opts.Issuer, "/")
	if opts.Issuer == "" {
		return nil, errors.New("identity: an issuer is required (the base URL clients reach the platform at)")
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.PasswordCost = opts.PasswordCost.withDefaults()
	s := &Service{
		db:      db,
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		keys:    newKeyring(),
		limits:  opts.Limits.withDefaults(),
		cache:   newTokenCache(),
		hashing: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	dummy, err := hashPassword("not a real password", opts.PasswordCost)
	if err != nil {
		return nil, err
	}
	s.dummyHash = dummy
	return s, nil
}

// Start creates the first signing key if there is none (nodes that start
// together agree on one) and loads the keys, re-sealing with the first key
// of the Sealer those sealed with an older one. Call it once, before
// serving.
func (s *Service) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.ensureSigningKey(ctx); err != nil {
		return fmt.Errorf("identity: signing key: %w", err)
	}
	return nil
}

// Mode returns the mode the service runs in.
func (s *Service) Mode() string { return s.opts.Mode }

// Issuer returns the OAuth2 issuer: the base URL of the platform as its
// clients reach it, without a trailing slash.
func (s *Service) Issuer() string { return s.opts.Issuer }

// tx runs fn in a write transaction.
func (s *Service) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.Tx(ctx, fn)
}

// dbErr passes domain errors through and classifies the rest, so that a
// lost database is EUNAVAILABLE (503), not a bug.
func dbErr(err error) error {
	var ce *causeway.Error
	if errors.As(err, &ce) {
		return err
	}
	return store.Classify(err)
}

func nullableTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

func errUnauthenticated() error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "this call needs a developer token")
}
