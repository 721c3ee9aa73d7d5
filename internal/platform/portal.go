package platform

import (
	"strings"

	"github.com/causewayhq/causeway/internal/portal"
)

// buildPortal makes the developer portal, at /, and the bank console,
// under /console. It drives the services built before it, so it comes
// last.
func (p *Platform) buildPortal() {
	p.portal = portal.New(portal.Deps{
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
		Now:         p.cfg.Testing.PortalClock,
		Logger:      p.log.With("component", "portal"),
		Secure:      strings.HasPrefix(p.issuer, "https://"),
	})
}
