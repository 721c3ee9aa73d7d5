package platform

import (
	"context"
	"fmt"
	"strings"

	"github.com/causewayhq/causeway/internal/portal"
)

// startPortal serves the developer portal at / and the bank console under
// /console. It drives the services started before it, so it starts last.
func (p *Platform) startPortal(ctx context.Context) error {
	if err := portal.Migrate(ctx, p.DB); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	portal.New(portal.Deps{
		Identity:    p.Identity,
		Gateway:     p.Gateway,
		Bank:        p.Bank,
		Events:      p.Events,
		Webhooks:    p.Webhooks,
		SPI:         p.SPI,
		Datashare:   p.Datashare,
		FourEyes:    p.FourEyes,
		Audit:       p.Audit,
		SSO:         p.SSO, // nil without --oidc-issuer
		StreamSlots: p.StreamSlots,
		AdminToken:  p.adminToken, // the console's password
		DB:          p.DB,         // the sessions, shared by every node
		Now:         p.cfg.PortalClock,
		Logger:      p.log.With("component", "portal"),
		Secure:      strings.HasPrefix(p.issuer, "https://"),
	}).Register(p.HTTP)
	return nil
}
