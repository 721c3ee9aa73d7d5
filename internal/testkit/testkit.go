// Package testkit has helpers shared by tests across packages: the rules for
// optional external services (skip locally, fail in CI) and a TCP proxy that
// can cut connections to simulate a lost database or bus.
package testkit

import (
	"bytes"
	"os"
	"sync"
	"testing"
)

// Service names one external dependency a test may need.
type Service struct {
	URLVar     string // e.g. CAUSEWAY_TEST_DATABASE_URL
	RequireVar string // e.g. CAUSEWAY_REQUIRE_POSTGRES
}

// The external services tests can use.
var (
	Postgres = Service{URLVar: "CAUSEWAY_TEST_DATABASE_URL", RequireVar: "CAUSEWAY_REQUIRE_POSTGRES"}
	NATS     = Service{URLVar: "CAUSEWAY_TEST_NATS_URL", RequireVar: "CAUSEWAY_REQUIRE_NATS"}
)

// URL returns the service's URL. When it is not set, the test is skipped,
// unless the service is required (as CI does), in which case it fails: a
// test that would skip in CI must fail instead.
func (s Service) URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(s.URLVar)
	if u == "" {
		Unavailable(t, s.RequireVar, s.URLVar+" is not set")
	}
	return u
}

// Unavailable skips t with reason, or fails it when the environment variable
// requireVar is set to a non-empty value other than 0.
func Unavailable(t testing.TB, requireVar, reason string) {
	t.Helper()
	if v := os.Getenv(requireVar); v != "" && v != "0" {
		t.Fatalf("%s, but %s=%s requires it", reason, requireVar, v)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", reason, requireVar)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for capturing
// the logs of a running node (its background workers log too).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset forgets everything written so far.
func (b *SyncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
