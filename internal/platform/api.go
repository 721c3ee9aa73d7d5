package platform

import (
	"cmp"
	"context"
	"fmt"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/foureyes"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/spi"
)

// buildAPI makes the first building block, developers and apps
// (identity), the gateway every /v1 call goes through and the four-eyes
// rule over the bank's decisions, and the third, the SPIs the sandbox bank
// calls through its Extensions port.
func (p *Platform) buildAPI() error {
	var err error
	p.Identity, err = identity.New(p.DB, identity.Options{
		Mode:           string(p.cfg.Mode),
		Issuer:         p.issuer,
		Sealer:         p.Sealer,
		Logger:         p.log.With("component", "identity"),
		OnAppActivated: p.seedApp,
		PasswordCost:   p.cfg.Testing.PasswordCost,
		Counters:       p.Counters,
		Limits:         p.identityLimits(),
	})
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	p.Events.SetTickets(p.Identity)
	p.Gateway, err = gateway.New(p.DB, gateway.Options{
		Auth:       p.Identity,
		Tickets:    p.Identity,
		Sealer:     p.Sealer,
		Bus:        p.Bus,
		Logger:     p.log.With("component", "gateway"),
		Registerer: p.registry,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if err := p.buildFourEyes(); err != nil {
		return err
	}
	p.SPI, err = spi.New(p.DB, spi.Options{
		Sealer:     p.Sealer,
		Guard:      p.Guard,
		Registerer: p.registry,
		Logger:     p.log.With("component", "spi"),
	})
	if err != nil {
		return fmt.Errorf("spi: %w", err)
	}
	p.Bank.SetExtensions(p.SPI)
	return nil
}

// buildFourEyes holds back the bank decisions that need a second
// operator (Config.FourEyes).
func (p *Platform) buildFourEyes() error {
	actions := p.cfg.FourEyes
	if actions == nil && p.cfg.Mode == ModeProduction {
		actions = foureyes.Actions
	}
	var err error
	p.FourEyes, err = foureyes.New(p.DB, foureyes.Config{
		Actions:      actions,
		TTL:          p.cfg.ProposalTTL,
		RateAbove:    cmp.Or(p.cfg.FourEyesRateAbove, DefaultFourEyesRateAbove),
		QuotaAbove:   cmp.Or(p.cfg.FourEyesQuotaAbove, DefaultFourEyesQuotaAbove),
		PaymentAbove: cmp.Or(p.cfg.FourEyesPaymentAbove, DefaultFourEyesPaymentAbove),
		PaymentAmount: func(ctx context.Context, id string) (int64, error) {
			pay, err := p.Bank.Payment(ctx, auth.BankProcess(), id)
			if err != nil {
				return 0, err
			}
			return pay.Amount.Minor, nil
		},
		// An interrupted confirmation is carried out as its confirmer
		// stands now: still active, with the roles they hold today.
		Operator: func(ctx context.Context, id string) (*auth.Operator, error) {
			o, err := p.Identity.Operator(ctx, auth.BankProcess(), id)
			if err != nil {
				return nil, err
			}
			if o.Status != identity.OperatorActive {
				return nil, causeway.Errorf(causeway.EFORBIDDEN, "operator_disabled", "operator %s is %s", id, o.Status)
			}
			return o.Caller(), nil
		},
		// In production the admin token, which names no person, never
		// confirms: a second named operator must.
		AdminTokenConfirms: p.cfg.Mode != ModeProduction,
		Logger:             p.log.With("component", "foureyes"),
	})
	return err
}

// seedApp gives a newly active app its own copy of the sandbox customers,
// in sandbox mode only. Every app gets the same generated people (same
// seed), as fresh records that only it can see.
func (p *Platform) seedApp(ctx context.Context, appID string) error {
	if p.cfg.Mode != ModeSandbox {
		return nil
	}
	_, err := p.Bank.SeedApp(ctx, appID, SandboxSeed+1, core.AppSandboxCustomers)
	return err
}
