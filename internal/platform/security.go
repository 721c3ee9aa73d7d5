package platform

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/netguard"
)

// loadAdminToken reads or makes the admin token and holds it to the same
// rule as a --admin-token: in production a weak one (a file an operator
// wrote by hand) stops the start, in sandbox it is a warning.
func (p *Platform) loadAdminToken() error {
	token, generated, err := adminToken(p.cfg)
	if err != nil {
		return err
	}
	p.adminToken = token
	path := filepath.Join(p.cfg.DataDir, adminTokenFile)
	if generated {
		// The path, never the token: logs are shipped, kept and read by
		// more people than may call /bank/v1.
		p.log.Warn("generated a bank admin token; read it from its file", "file", path)
	}
	if err := CheckAdminToken(token); err != nil {
		from := "--admin-token"
		if p.cfg.AdminToken == "" {
			from = path
		}
		if p.cfg.Mode == ModeProduction {
			return fmt.Errorf("admin-token (%s): %w (production mode refuses a weak one)", from, err)
		}
		p.log.Warn("the bank admin token is weak; production mode would refuse it", "from", from, "why", err.Error())
	}
	return nil
}

// warnings logs the settings that work but are risky.
func (p *Platform) warnings() {
	if p.cfg.PublicURL == "" && p.cfg.DatabaseURL != "" {
		p.log.Warn("no --public-url: the OAuth2 issuer is taken from this node's listen address; "+
			"nodes sharing a database need the same --public-url, or each refuses the others' tokens", "issuer", p.issuer)
	}
}

// metricsOnMainListener says whether the main listener serves /metrics:
// with a metrics token always (the token guards it), without one only in
// sandbox mode and when there is no metrics listener. In production the
// metrics (route names, app activity, error rates) are never open to the
// API's callers.
func (p *Platform) metricsOnMainListener() bool {
	if p.cfg.MetricsToken != "" {
		return true
	}
	return p.cfg.Mode != ModeProduction && p.cfg.MetricsAddr == ""
}

// MetricsHandler serves the Prometheus metrics; with Config.MetricsToken
// set, only to requests that carry it as a bearer token.
func (p *Platform) MetricsHandler() http.Handler {
	h := promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{})
	if p.cfg.MetricsToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(p.cfg.MetricsToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := httpapi.BearerToken(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="causeway-metrics"`)
			httpapi.WriteProblem(w, r, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized",
				"/metrics needs the metrics token (--metrics-token) as a bearer token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveMetrics serves /metrics alone on ln until the returned stop is
// called.
func (p *Platform) serveMetrics(ln net.Listener) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", p.MetricsHandler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("metrics listener stopped", "error", err.Error())
		}
	}()
	p.log.Info("serving /metrics", "addr", ln.Addr().String())
	return func() {
		srv.Close()
		<-done
	}
}

// guard is the SSRF guard of webhook and SPI targets, which in production
// also requires https: their payloads carry customers' personal data.
func (p *Platform) guard() netguard.Guard {
	return netguard.Guard{Allow: p.cfg.AllowPrivateTargets, RequireHTTPS: p.cfg.Mode == ModeProduction, RootCAs: p.targetRoots()}
}

// targetRoots is the system's certificate pool with --target-ca-file's
// certificates added, or nil (the system's alone) without them.
func (p *Platform) targetRoots() *x509.CertPool {
	if len(p.cfg.TargetRootCAs) == 0 {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, c := range p.cfg.TargetRootCAs {
		pool.AddCert(c)
	}
	return pool
}
