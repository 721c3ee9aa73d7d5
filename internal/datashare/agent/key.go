package agent

import "github.com/causewayhq/causeway/internal/seal"

// KeyFile is the file, in the agent's directory (the platform's data dir
// for the in-process agent), that holds the pseudonym key.
const KeyFile = "datashare-pseudonym-key"

// LoadKey returns the pseudonym key from encoded (base64, 32 bytes) when
// given, else from <dir>/datashare-pseudonym-key, creating that file (mode
// 0600) with a fresh key on first use. Keep the key: a new one gives every
// customer new hashes. Give every agent of one bank the same key.
func LoadKey(encoded, dir string) ([]byte, error) {
	return seal.KeyFile32("pseudonym key", encoded, dir, KeyFile)
}
