package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"

	"github.com/causewayhq/causeway/internal/platform"
)

// Embedded is a node the demo started in its own process: SQLite and NATS
// in a temporary data dir, sandbox mode, loopback targets allowed, served
// on a loopback port.
type Embedded struct {
	Target
	p      *platform.Platform
	dir    string
	cancel context.CancelFunc
	done   chan error
}

// StartEmbedded starts a fresh node for a demo run. log receives the
// node's own logs. Close stops it and removes its data.
func StartEmbedded(ctx context.Context, version string, log *slog.Logger) (*Embedded, error) {
	dir, err := os.MkdirTemp("", "causeway-demo-*")
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	token := "cwadm_demo-" + base64.RawURLEncoding.EncodeToString(raw)
	// Listen first: the node's issuer (and the portal's links) name the
	// address it is reached at.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p, err := platform.New(ctx, platform.Config{
		Addr:       ln.Addr().String(),
		DataDir:    dir,
		Mode:       platform.ModeSandbox,
		AdminToken: token,
		Version:    version,
		Logger:     log,
		// The demo's own services (webhook receivers, SPI endpoints)
		// listen on 127.0.0.1.
		AllowPrivateTargets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &Embedded{
		Target: Target{URL: "http://" + ln.Addr().String(), AdminToken: token},
		p:      p, dir: dir, cancel: cancel, done: make(chan error, 1),
	}
	go func() { e.done <- p.Serve(runCtx, ln) }()
	return e, nil
}

// Close stops the node and removes its data dir.
func (e *Embedded) Close() error {
	e.cancel()
	err := <-e.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	e.p.Close()
	os.RemoveAll(e.dir)
	return err
}
