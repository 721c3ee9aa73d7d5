package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// Prefixes make leaked credentials recognisable (secret scanners, logs)
// and tell a developer token from a client secret at a glance.
const (
	developerTokenPrefix = "cwdev_"
	clientSecretPrefix   = "cwsec_"
	clientIDPrefix       = "cw_"
)

// randomString returns prefix followed by n random bytes, base64url.
func randomString(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// itself rather than return an error); keep the contract explicit.
		panic("identity: crypto/rand: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func newDeveloperToken() string { return randomString(developerTokenPrefix, 32) }
func newClientSecret() string   { return randomString(clientSecretPrefix, 32) }

// newClientID returns "cw_" and 32 hex characters: unguessable, URL- and
// form-safe, and easy to read out.
func newClientID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("identity: crypto/rand: " + err.Error())
	}
	return clientIDPrefix + hex.EncodeToString(b)
}

// secretHash is how developer tokens and client secrets are stored: the
// hex SHA-256. They carry 256 random bits, so a slow hash would add
// nothing.
func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// secretMatches compares secret with a stored hash in constant time.
func secretMatches(secret, storedHash string) bool {
	got := secretHash(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}
