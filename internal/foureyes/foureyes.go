// Package foureyes holds back the bank's decisions that change what the
// bank exposes or who gets money or data until a second operator
// confirms them (maker-checker): activating an SPI for every app's
// traffic, approving access to a dataset, granting an app a customer,
// raising an app's limits above a threshold, and releasing a held payment
// above an amount.
//
// The first operator's call to the guarded /bank/v1 operation is kept as
// a proposal (202, state pending_second_approval) instead of running. A
// different operator holding the operation's role confirms it (the kept
// request then runs, exactly as made, acting as the confirmer) or rejects
// it; the same person can never do both, and proposals expire. A
// confirmation a stopped node left running is finished by Recover. Which
// decisions need a second operator is configured per action: none by
// default in sandbox mode, all in production mode, where the admin token
// may propose but never confirm.
package foureyes

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies the proposals table's migrations.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "foureyes", migrationFiles, "migrations")
}

// Actions that may need a second operator.
const (
	ActionSPIActivate       = "spi.activate"
	ActionDataAccessApprove = "dataset_access.approve"
	ActionGrantCreate       = "grant.create"
	ActionAppLimits         = "app.limits"
	ActionPaymentRelease    = "payment.release"
)

// Actions lists every action, in the order the docs show them.
var Actions = []string{ActionSPIActivate, ActionDataAccessApprove, ActionGrantCreate, ActionAppLimits, ActionPaymentRelease}

// operations are the /bank/v1 operations each action guards.
var operations = map[string]string{
	"bank-activate-spi-registration":      ActionSPIActivate,
	"bank-approve-dataset-access-request": ActionDataAccessApprove,
	"bank-create-grant":                   ActionGrantCreate,
	"bank-put-app-limits":                 ActionAppLimits,
	"bank-release-payment":                ActionPaymentRelease,
}

// DefaultTTL is how long a proposal waits for a second operator.
const DefaultTTL = 72 * time.Hour

// Config configures the four-eyes rule.
type Config struct {
	// Actions need a second operator; the rest run at once.
	Actions []string
	// TTL is how long a proposal waits; default DefaultTTL.
	TTL time.Duration
	// RateAbove and QuotaAbove: new app limits need a second operator
	// when their requests per second exceed RateAbove or their daily
	// quota exceeds QuotaAbove.
	RateAbove  float64
	QuotaAbove int64
	// PaymentAbove: releasing a held payment needs a second operator when
	// its amount exceeds this many minor units (whatever the currency).
	PaymentAbove int64
	// PaymentAmount returns a payment's amount in minor units, for
	// PaymentAbove.
	PaymentAmount func(ctx context.Context, id string) (int64, error)
	// AdminTokenConfirms lets the admin token confirm proposals (never in
	// production mode); it may always propose.
	AdminTokenConfirms bool
	// Operator returns an operator as they stand now, for Recover to carry
	// out a confirmation as its confirmer: an error of kind ENOTFOUND,
	// EFORBIDDEN or EUNAUTHORIZED when they are gone or disabled.
	Operator func(ctx context.Context, id string) (*auth.Operator, error)
	// RecoverAfter is how long a confirmation may run before Recover takes
	// it for interrupted; default DefaultRecoverAfter.
	RecoverAfter time.Duration
	Logger       *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service keeps proposals and carries out the confirmed ones.
type Service struct {
	db      *store.DB
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler
}

// New returns the four-eyes service. Unknown actions are an error.
func New(db *store.DB, cfg Config) (*Service, error) {
	for _, a := range cfg.Actions {
		if !slices.Contains(Actions, a) {
			return nil, fmt.Errorf("four-eyes: unknown action %q; actions are %v", a, Actions)
		}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.RecoverAfter <= 0 {
		cfg.RecoverAfter = DefaultRecoverAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{db: db, cfg: cfg, log: cfg.Logger, now: cfg.Now}, nil
}

// Enabled reports whether action needs a second operator.
func (s *Service) Enabled(action string) bool { return slices.Contains(s.cfg.Actions, action) }
