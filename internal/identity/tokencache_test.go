package identity

import (
	"testing"
	"time"
)

// A status read before a purge (a suspension on this node) must not be
// cached after it: the next check reads the database again.
func TestAnAppStatusReadBeforeAPurgeIsNotCached(t *testing.T) {
	c := newTokenCache()
	now := time.Now()
	before := appRow{id: "app_1", status: "active", generation: 1, fetched: now}

	epoch := c.appEpoch()
	c.forgetApps() // the suspension commits and purges while the read is under way
	c.fillApp("client_1", before, epoch)
	if row, ok := c.app("client_1", now); ok {
		t.Fatalf("a status read before the purge was cached: %+v", row)
	}

	after := appRow{id: "app_1", status: "suspended", generation: 2, fetched: now}
	c.fillApp("client_1", after, c.appEpoch())
	if row, ok := c.app("client_1", now); !ok || row.generation != 2 {
		t.Fatalf("a status read after the purge = %+v, %v; want generation 2 cached", row, ok)
	}
}
