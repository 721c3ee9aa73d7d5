package testkit

import (
	"sync"
	"time"
)

// Clock is a clock a test moves forward: real time plus the advances so
// far, safe for concurrent use. Pass its Now as a service's clock.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the time on the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
