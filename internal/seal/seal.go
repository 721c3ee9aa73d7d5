// Package seal encrypts secrets the platform must be able to read back, such
// as webhook and SPI signing secrets (an HMAC needs the secret itself, so it
// cannot be stored as a hash). The key lives outside the database: a file in
// the data dir or CAUSEWAY_SECRET_KEY, the same on every node. A copy of the
// database alone does not reveal the secrets.
package seal

import (
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
)

// Sealer encrypts and decrypts with AES-256-GCM.
type Sealer struct {
	aead cipher.AEAD
}

const prefix = "sealed1:"

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; the result is printable and safe to store.
func (s *Sealer) Seal(plaintext string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(out)
}

// IsSealed reports whether s looks like a value Seal produced (as opposed
// to one stored in the clear by an earlier version).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// Open decrypts what Seal produced.
func (s *Sealer) Open(sealed string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", errors.New("seal: not a sealed value")
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("seal: malformed sealed value")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", errors.New("seal: cannot open: wrong key or tampered value")
	}
	return string(plain), nil
}

// KeyFile is the key's file name in the data dir.
const KeyFile = "secret-key"

// LoadKey returns the key from encoded (base64, as in CAUSEWAY_SECRET_KEY)
// when given, else from <dataDir>/secret-key, creating that file (mode
// 0600) with a fresh key on first use.
func LoadKey(encoded, dataDir string) ([]byte, error) {
	return KeyFile32("secret key", encoded, dataDir, KeyFile)
}

// KeyFile32 returns a 32-byte key: decoded from encoded (base64) when
// given, else read from dir/file, which is created (mode 0600) with a fresh
// random key on first use. Two processes creating it at once agree on one
// key. name labels errors, e.g. "secret key".
func KeyFile32(name, encoded, dir, file string) ([]byte, error) {
	if encoded != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s: must be 32 bytes, base64-encoded", name)
		}
		return key, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	path := filepath.Join(dir, file)
	if b, err := os.ReadFile(path); err == nil {
		return KeyFile32(name, string(b), "", "")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return KeyFile32(name, "", dir, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return key, f.Sync()
}
