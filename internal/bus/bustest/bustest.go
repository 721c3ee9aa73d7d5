// Package bustest runs one test body against both buses: an embedded NATS
// server in a temporary directory always, and the external NATS named by
// CAUSEWAY_TEST_NATS_URL (required in CI) under a fresh prefix, so tests
// never see each other's streams.
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/testkit"
)

// Each runs fn as a subtest per bus, named "embedded" and "external".
func Each(t *testing.T, fn func(t *testing.T, b *bus.Bus)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) { fn(t, OpenEmbedded(t, t.TempDir())) })
	t.Run("external", func(t *testing.T) { fn(t, OpenExternal(t)) })
}

// OpenEmbedded starts an embedded bus storing under dir, closed when t ends.
func OpenEmbedded(t testing.TB, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// OpenExternal connects to the test NATS under a fresh prefix; it skips, or
// fails in CI, when no NATS is configured. Streams made under the prefix are
// deleted when t ends.
func OpenExternal(t testing.TB) *bus.Bus {
	t.Helper()
	return OpenExternalURL(t, testkit.NATS.URL(t), Prefix())
}

// OpenExternalURL connects to url under prefix and deletes the prefix's
// streams when t ends.
func OpenExternalURL(t testing.TB, url, prefix string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		names := b.JetStream().StreamNames(ctx)
		for name := range names.Name() {
			if strings.HasPrefix(name, strings.ToUpper(prefix)+"_") {
				b.JetStream().DeleteStream(ctx, name)
			}
		}
		b.Close()
	})
	return b
}

// Prefix returns a fresh namespace for one test's streams and subjects.
func Prefix() string {
	p := make([]byte, 5)
	rand.Read(p)
	return "t" + hex.EncodeToString(p)
}
