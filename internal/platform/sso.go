package platform

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/causewayhq/causeway/internal/sso"
)

// buildSSO prepares the console's single sign-on: with --oidc-issuer a
// Login, p.SSO, whose provider is discovered on the
// first login, so a node starts while the provider is down. The provider
// sends browsers back to <public URL>/console/sso/callback; calls to it
// trust --target-ca-file besides the system's roots (a bank's internal CA).
func (p *Platform) buildSSO() error {
	if !p.cfg.SSO.Configured() {
		return nil
	}
	cfg := p.cfg.SSO
	cfg.RedirectURL = p.issuer + sso.CallbackPath
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if roots := p.targetRoots(); roots != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	login, err := sso.New(cfg, p.DB, sso.Options{
		HTTPClient: &http.Client{Transport: transport, Timeout: 15 * time.Second},
		Logger:     p.log.With("component", "sso"),
	})
	if err != nil {
		return err
	}
	p.SSO = login
	p.log.Info("single sign-on for the console", "issuer", cfg.Issuer, "redirect_url", cfg.RedirectURL, "role_claim", cfg.RoleClaim)
	return nil
}
