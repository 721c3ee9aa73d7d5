package agent

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the file, in the agent's directory (the platform's data dir
// for the in-process agent), that holds the pseudonym key.
const KeyFile = "datashare-pseudonym-key"

// LoadKey returns the pseudonym key from encoded (base64, 32 bytes) when
// given, else from <dir>/datashare-pseudonym-key, creating that file (mode
// 0600) with a fresh key on first use. Keep the key: a new one gives every
// customer new hashes. Give every agent of one bank the same key.
func LoadKey(encoded, dir string) ([]byte, error) {
	if encoded != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
		if err != nil || len(key) != 32 {
			return nil, errors.New("pseudonym key: must be 32 bytes, base64-encoded")
		}
		return key, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	path := filepath.Join(dir, KeyFile)
	if b, err := os.ReadFile(path); err == nil {
		return LoadKey(string(b), "")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey("", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	return key, f.Sync()
}
