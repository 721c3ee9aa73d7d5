// Package platformtest starts real platform nodes in-process for tests, on
// both runtimes: "embedded" (SQLite file + embedded NATS) and "scaleout"
// (PostgreSQL + external NATS, from CAUSEWAY_TEST_DATABASE_URL and
// CAUSEWAY_TEST_NATS_URL; required in CI).
package platformtest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// AdminToken is the bank admin token of every test node: strong enough
// for production mode (see platform.CheckAdminToken).
const AdminToken = "cwadm_test-admin-token-5f0c9e1b7a2d4386"

// Node is a running platform with an HTTP server on loopback.
type Node struct {
	*platform.Platform
	URL    string
	Config platform.Config
}

// Runtime names a runtime and makes configs for it.
type Runtime struct {
	Name string
	// Config returns a fresh configuration: its own data dir, and on the
	// scale-out runtime its own PostgreSQL schema and NATS prefix.
	Config func(t testing.TB) platform.Config
}

// Embedded is SQLite and NATS inside the process.
var Embedded = Runtime{Name: "embedded", Config: func(t testing.TB) platform.Config {
	return baseConfig(t)
}}

// ScaleOut is PostgreSQL and an external NATS.
var ScaleOut = Runtime{Name: "scaleout", Config: func(t testing.TB) platform.Config {
	cfg := baseConfig(t)
	cfg.DatabaseURL = storetest.PostgresURL(t)
	cfg.NATSURL = testkit.NATS.URL(t)
	cfg.BusPrefix = bustest.Prefix()
	return cfg
}}

func baseConfig(t testing.TB) platform.Config {
	return platform.Config{
		DataDir:             testkit.DataDir(t),
		Mode:                platform.ModeSandbox,
		AdminToken:          AdminToken,
		Version:             "test",
		Logger:              slog.New(slog.NewJSONHandler(io.Discard, nil)),
		AllowPrivateTargets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		// Cheap password hashing: tests sign up many developers under -race.
		Testing: platform.Testing{PasswordCost: identity.PasswordCost{Time: 1, Memory: 64, Threads: 1}},
		// Every test signs up, logs in and streams from 127.0.0.1: the
		// throttles' defaults would refuse a suite. Tests of the throttles
		// set their own.
		SignupRate:              1 << 20,
		LoginFailuresPerAccount: 1 << 20,
		LoginFailuresPerAddress: 1 << 20,
		MaxAppsPerDeveloper:     1 << 20,
		MaxStreamsPerApp:        1 << 20,
	}
}

// Each runs fn once per runtime, as parallel subtests named after them.
// They run after the calling test's function has returned: what they share
// with it is released with t.Cleanup, not defer.
func Each(t *testing.T, fn func(t *testing.T, rt Runtime)) {
	t.Helper()
	for _, rt := range []Runtime{Embedded, ScaleOut} {
		t.Run(rt.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, rt)
		})
	}
}

// Start starts a node with cfg and stops it when t ends. Its listener is
// open before the node starts, and cfg.Addr is set to it, so that without
// a PublicURL the node's issuer is the URL the test calls.
func Start(t testing.TB, cfg platform.Config) *Node {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg.Addr = srv.Listener.Addr().String()
	p, err := platform.New(context.Background(), cfg)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(func() {
		// Like a stopping node: end the event streams a test left open,
		// which srv.Close would otherwise wait for.
		p.HTTP.EndStreams()
		srv.Close()
		p.Close()
	})
	return &Node{Platform: p, URL: srv.URL, Config: cfg}
}

// Production turns cfg into a production-mode configuration that starts:
// an https public URL (the issuer is only a string; tests call the node at
// its loopback URL) and, so that webhook and SPI targets may be https test
// servers, their certificates trusted.
func Production(cfg platform.Config, targets ...*httptest.Server) platform.Config {
	cfg.Mode = platform.ModeProduction
	cfg.PublicURL = "https://api.bank.test"
	for _, srv := range targets {
		cfg.TargetRootCAs = append(cfg.TargetRootCAs, srv.Certificate())
	}
	return cfg
}
