// Package seal encrypts secrets the platform must be able to read back, such
// as webhook and SPI signing secrets (an HMAC needs the secret itself, so it
// cannot be stored as a hash). The key lives outside the database: a file in
// the data dir or CAUSEWAY_SECRET_KEY, the same on every node. A copy of the
// database alone does not reveal the secrets.
//
// The key can be rotated: a Sealer holds several keys, seals with the first
// and opens with any, and Reseal tells which stored values still need the
// first key. See docs/operations.md for the procedure.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sealer encrypts with AES-256-GCM under its current key and decrypts
// under any of its keys.
//
// Sealed values name no key: GCM's authentication tells which key opens a
// value (a wrong key fails it, but for a chance of 2^-128), the current key
// is tried first, and the older ones cost an attempt each only for values
// not yet re-sealed. A key id in the value would spare those attempts, but
// would make values the previous release cannot read while a rolling
// upgrade runs both.
type Sealer struct {
	aeads []cipher.AEAD // aeads[0] seals; every one opens
}

const prefix = "sealed1:"

// ErrWrongKey is what Open returns for a value that none of the Sealer's
// keys opens: it was sealed with another key, or altered.
var ErrWrongKey = errors.New("seal: sealed with a key that is not in --secret-key (or altered)")

// New returns a Sealer that seals with key and opens what key or any of
// older sealed. Every key is 32 bytes; a repeated key is ignored.
func New(key []byte, older ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	keys := append([][]byte{key}, older...)
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("seal: key must be 32 bytes, got %d", len(k))
		}
		if repeated(keys[:i], k) {
			continue
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

func repeated(earlier [][]byte, k []byte) bool {
	for _, e := range earlier {
		if bytes.Equal(e, k) {
			return true
		}
	}
	return false
}

// Keys returns how many distinct keys the Sealer opens with: more than one
// during a rotation.
func (s *Sealer) Keys() int { return len(s.aeads) }

// Seal encrypts plaintext with the current key; the result is printable
// and safe to store.
func (s *Sealer) Seal(plaintext string) string {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out := aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(out)
}

// IsSealed reports whether s looks like a value Seal produced (as opposed
// to one stored in the clear by an earlier version).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// Open decrypts what Seal produced with any of the Sealer's keys. A value
// none of them opens is ErrWrongKey.
func (s *Sealer) Open(sealed string) (string, error) {
	plain, _, err := s.open(sealed)
	return plain, err
}

// Reseal returns sealed as it should be stored: unchanged when the current
// key sealed it, else sealed again with the current key, with changed
// true. It fails as Open does.
func (s *Sealer) Reseal(sealed string) (resealed string, changed bool, err error) {
	plain, current, err := s.open(sealed)
	if err != nil {
		return "", false, err
	}
	if current {
		return sealed, false, nil
	}
	return s.Seal(plain), true, nil
}

// open decrypts sealed and reports whether the current key sealed it.
func (s *Sealer) open(sealed string) (plain string, current bool, err error) {
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", false, errors.New("seal: not a sealed value")
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	n := s.aeads[0].NonceSize() // the same for every key
	if err != nil || len(b) < n+s.aeads[0].Overhead() {
		return "", false, errors.New("seal: malformed sealed value")
	}
	for i, aead := range s.aeads {
		if out, err := aead.Open(nil, b[:n], b[n:], nil); err == nil {
			return string(out), i == 0, nil
		}
	}
	return "", false, ErrWrongKey
}

// KeyFile is the key's file name in the data dir.
const KeyFile = "secret-key"

// LoadKeys returns the secret keys, current first: from encoded when given
// (--secret-key, CAUSEWAY_SECRET_KEY), else from <dataDir>/secret-key,
// creating that file (mode 0600) with a fresh key on first use. Either
// holds base64 keys separated by commas, one normally and "NEW,OLD" during
// a rotation.
func LoadKeys(encoded, dataDir string) ([][]byte, error) {
	source := "--secret-key"
	if encoded == "" {
		path := filepath.Join(dataDir, KeyFile)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			key, err := KeyFile32("secret key", "", dataDir, KeyFile)
			if err != nil {
				return nil, err
			}
			return [][]byte{key}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		encoded, source = string(b), path
	}
	parts := strings.Split(encoded, ",")
	keys := make([][]byte, len(parts))
	for i, p := range parts {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p))
		if err == nil && len(key) == 32 {
			keys[i] = key
			continue
		}
		if len(parts) == 1 {
			return nil, fmt.Errorf("secret key (%s): must be 32 bytes, base64-encoded", source)
		}
		return nil, fmt.Errorf("secret key (%s): key %d of %d must be 32 bytes, base64-encoded", source, i+1, len(parts))
	}
	return keys, nil
}

// KeyFile32 returns a 32-byte key: decoded from encoded (base64) when
// given, else read from dir/file, which is created (mode 0600) with a fresh
// random key on first use. Two processes creating it at once agree on one
// key. name labels errors, e.g. "secret key".
func KeyFile32(name, encoded, dir, file string) ([]byte, error) {
	if encoded == "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var err error
		encoded, _, err = SecretFile(filepath.Join(dir, file), func() string {
			key := make([]byte, 32)
			rand.Read(key)
			return base64.StdEncoding.EncodeToString(key)
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: must be 32 bytes, base64-encoded", name)
	}
	return key, nil
}

// SecretFile returns the secret kept in the file at path, without
// surrounding space, or, when there is no such file, creates it (mode
// 0600, flushed to disk) with the secret generate makes and returns that
// with created true. When another process creates the file first, its
// secret is the one returned.
//
// The file appears whole or not at all: the secret is written to a
// temporary file beside it, which is then linked to path (a link, unlike
// a rename, fails when path exists), so no reader sees it empty. A
// temporary file a stopped process left behind, with a secret inside, is
// removed once it is older than leftoverAge.
func SecretFile(path string, generate func() string) (secret string, created bool, err error) {
	removeLeftovers(path)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return strings.TrimSpace(string(b)), false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", false, err
		}
		secret = generate()
		err = createWhole(path, secret+"\n")
		if errors.Is(err, fs.ErrExist) {
			continue // created meanwhile: read theirs
		}
		if err != nil {
			return "", false, err
		}
		return secret, true, nil
	}
}

// leftoverAge is how old a temporary file of SecretFile must be before
// it counts as left behind: one a racing process is still writing is
// younger.
const leftoverAge = time.Minute

// removeLeftovers removes the temporary files createWhole made for path
// and a stopped process never removed.
func removeLeftovers(path string) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return
	}
	prefix := "." + filepath.Base(path) + "."
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > leftoverAge {
			os.Remove(filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
}

// createWhole creates path with content, flushed to disk, or fails with
// fs.ErrExist when path exists.
func createWhole(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(content)
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	// The new name is durable once the directory is.
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}
