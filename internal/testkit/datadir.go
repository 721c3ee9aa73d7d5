package testkit

import (
	"os"
	"testing"
	"time"
)

// DataDir returns a new temporary directory for a database or a bus to live
// in, removed when t ends. It differs from t.TempDir in how it removes:
// database/sql closes a connection that is still in use, or still being
// opened, after Close has returned, and SQLite creates or deletes its -wal
// and -shm files as it does, so a single RemoveAll can find the directory
// not empty. Removal is retried for a few seconds, then reported as an error.
func DataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "causeway-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("remove data dir: %v", err)
	})
	return dir
}
