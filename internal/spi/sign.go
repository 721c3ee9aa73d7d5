package spi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/causewayhq/causeway/internal/stdwebhooks"
)

// Standard Webhooks 1.0 headers, which sign every call to an SPI endpoint
// the same way webhooks are signed.
const (
	HeaderID        = stdwebhooks.HeaderID
	HeaderTimestamp = stdwebhooks.HeaderTimestamp
	HeaderSignature = stdwebhooks.HeaderSignature
)

// signer signs with one secret, or two while a rotation overlaps.
type signer struct{ keys [][]byte }

func newSigner(secrets ...string) (signer, error) {
	var sg signer
	for _, secret := range secrets {
		key, err := stdwebhooks.Key(secret)
		if err != nil {
			return signer{}, fmt.Errorf("spi: %w", err)
		}
		sg.keys = append(sg.keys, key)
	}
	return sg, nil
}

// sign sets the Standard Webhooks headers on h for a message with this id,
// time and body: one signature per secret (a verifier accepts the message
// if any matches).
func (s signer) sign(h http.Header, id string, at time.Time, body []byte) {
	stdwebhooks.SetHeaders(h, s.keys, id, at, body)
}
