package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/causewayhq/causeway"
)

// PasswordCost are the argon2id parameters for developer passwords. The
// defaults follow OWASP's minimum (19 MiB, 2 passes, 1 lane). Hashes carry
// their parameters, so changing the cost keeps old passwords working; they
// are rehashed at the next login.
type PasswordCost struct {
	Time    uint32 // passes over memory; default 2
	Memory  uint32 // KiB; default 19456
	Threads uint8  // lanes; default 1
}

func (c PasswordCost) withDefaults() PasswordCost {
	if c.Time == 0 {
		c.Time = 2
	}
	if c.Memory == 0 {
		c.Memory = 19 * 1024
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.Memory < 8*uint32(c.Threads) {
		c.Memory = 8 * uint32(c.Threads)
	}
	return c
}

const (
	argonSaltLen = 16
	argonKeyLen  = 32
)

// checkPassword enforces the password rules: long enough, not absurdly
// long (hashing cost), not one repeated character, not the email.
func checkPassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return causeway.Errorf(causeway.EINVALID, "weak_password", "password must be at least %d characters", MinPasswordLength)
	case len(password) > maxPasswordLength:
		return causeway.Errorf(causeway.EINVALID, "weak_password", "password must be at most %d bytes", maxPasswordLength)
	case strings.Count(password, password[:1]) == len(password):
		return causeway.Errorf(causeway.EINVALID, "weak_password", "password must not be one repeated character")
	case strings.EqualFold(password, email):
		return causeway.Errorf(causeway.EINVALID, "weak_password", "password must not be the email address")
	}
	return nil
}

// hashPassword returns an argon2id hash in the PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func hashPassword(password string, c PasswordCost) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, c.Time, c.Memory, c.Threads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, c.Memory, c.Time, c.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether password matches the PHC string, and
// whether the hash was made with other parameters than c (so it should be
// rehashed).
func verifyPassword(password, phc string, c PasswordCost) (ok, stale bool, err error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, false, fmt.Errorf("password hash: unknown format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, false, fmt.Errorf("password hash: unknown version")
	}
	var stored PasswordCost
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &stored.Memory, &stored.Time, &stored.Threads); err != nil {
		return false, false, fmt.Errorf("password hash: bad parameters")
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, false, fmt.Errorf("password hash: bad salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, false, fmt.Errorf("password hash: bad key")
	}
	got := argon2.IDKey([]byte(password), salt, stored.Time, stored.Memory, stored.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, stored != c, nil
}

// acquireHashing waits for a free argon2id slot.
func (s *Service) acquireHashing(ctx context.Context) (release func(), err error) {
	select {
	case s.hashing <- struct{}{}:
		return func() { <-s.hashing }, nil
	case <-ctx.Done():
		return nil, causeway.Errorf(causeway.EUNAVAILABLE, "busy", "too many logins at once; try again")
	}
}
