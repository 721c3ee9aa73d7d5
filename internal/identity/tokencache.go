package identity

import (
	"crypto/sha256"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Every API call carries a token, and checking one costs an Ed25519
// signature verification and JSON decoding (~100 µs) plus a read of the
// app's status. Both results are cached:
//
//   - verified tokens by their SHA-256, until they expire: a token's
//     signature and claims cannot change, so this is exact;
//   - app status and token generation for appStatusTTL: a suspension or
//     deletion on this node clears the cache at once; other nodes see it
//     within appStatusTTL. A reinstatement waits reinstateWait after it
//     saw the suspension (Approve), so that no node still holds a status
//     read before the suspension, with the old generation, once the app
//     is active again.
const (
	verifiedCacheSize = 16384
	appCacheSize      = 4096
	appStatusTTL      = time.Second
	// reinstateWait is appStatusTTL and a tenth more, for clocks of other
	// nodes that run a little faster or slower than ours.
	reinstateWait = appStatusTTL + appStatusTTL/10
)

type verifiedToken struct {
	clientID   string
	scope      string
	generation int64 // the app's token generation at issue
	expires    time.Time
}

type appRow struct {
	id, developerID, scopes, status string
	deleted                         bool
	generation                      int64 // raised by every suspension
	fetched                         time.Time
}

type tokenCache struct {
	verified *lru.Cache[[sha256.Size]byte, verifiedToken]

	// mu orders fills of apps against purges: a status read before a
	// suspension must not be cached after the suspension purged the cache.
	mu     sync.Mutex
	purges uint64 // guarded by mu: how many times apps was purged
	apps   *lru.Cache[string, appRow]
}

func newTokenCache() *tokenCache {
	v, _ := lru.New[[sha256.Size]byte, verifiedToken](verifiedCacheSize)
	a, _ := lru.New[string, appRow](appCacheSize)
	return &tokenCache{verified: v, apps: a}
}

func (c *tokenCache) token(bearer string, now time.Time) (verifiedToken, [sha256.Size]byte, bool) {
	key := sha256.Sum256([]byte(bearer))
	v, ok := c.verified.Get(key)
	if !ok || !now.Before(v.expires) {
		return verifiedToken{}, key, false
	}
	return v, key, true
}

func (c *tokenCache) app(clientID string, now time.Time) (appRow, bool) {
	a, ok := c.apps.Get(clientID)
	if !ok || now.Sub(a.fetched) > appStatusTTL {
		return appRow{}, false
	}
	return a, true
}

// appEpoch is taken before an app's status is read; fillApp caches the
// status only if no purge happened since.
func (c *tokenCache) appEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.purges
}

// fillApp caches an app's status read after appEpoch returned epoch.
func (c *tokenCache) fillApp(clientID string, row appRow, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.purges == epoch {
		c.apps.Add(clientID, row)
	}
}

// forgetApps drops every cached app status, after any change of status.
func (c *tokenCache) forgetApps() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.purges++
	c.apps.Purge()
}
