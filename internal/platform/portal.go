package platform

import (
	"strings"

	"github.com/causewayhq/causeway/internal/portal"
)

// startPortal serves the developer portal at / and the bank console under
// /console. It drives the services started before it, so it starts last.
func (p *Platform) startPortal() error {
	// The admin token is the console's password. adminToken returns the
	// same token New used: the configured one, or the one it stored.
	token, _, err := adminToken(p.cfg)
	if err != nil {
		return err
	}
	portal.New(portal.Deps{
		Identity:   p.Identity,
		Gateway:    p.Gateway,
		Bank:       p.Bank,
		Events:     p.Events,
		Webhooks:   p.Webhooks,
		SPI:        p.SPI,
		Datashare:  p.Datashare,
		AdminToken: token,
		Logger:     p.log.With("component", "portal"),
		Secure:     strings.HasPrefix(p.cfg.PublicURL, "https://"),
	}).Register(p.HTTP)
	return nil
}
