package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

// TestADataDirIsLockedOnlyWhileItHoldsLiveState: a data dir holding the
// SQLite file and the embedded NATS store belongs to one node (a second
// one fails naming the lock and the holder); with PostgreSQL and an
// external NATS it holds only key files written once, which two nodes may
// share.
func TestADataDirIsLockedOnlyWhileItHoldsLiveState(t *testing.T) {
	t.Parallel()
	t.Run("embedded", func(t *testing.T) {
		cfg := platformtest.Embedded.Config(t)
		platformtest.Start(t, cfg)
		p, err := platform.New(context.Background(), cfg)
		if err == nil {
			p.Close()
			t.Fatal("a second node started on the data dir of a running one")
		}
		lock := filepath.Join(cfg.DataDir, "causeway.lock")
		if msg := err.Error(); !strings.Contains(msg, lock) || !strings.Contains(msg, "locked by process "+strconv.Itoa(os.Getpid())) {
			t.Errorf("error %q, want it to name %s and pid %d", msg, lock, os.Getpid())
		}
	})
	t.Run("scaleout", func(t *testing.T) {
		cfg := platformtest.ScaleOut.Config(t)
		platformtest.Start(t, cfg)
		platformtest.Start(t, cfg) // the same data dir, database and bus
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "causeway.lock")); !os.IsNotExist(err) {
			t.Errorf("a scale-out node made a lock file (%v)", err)
		}
	})
}
