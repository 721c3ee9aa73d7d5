package spi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks 1.0 headers, which sign every call to an SPI endpoint
// the same way webhooks are signed.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const secretPrefix = "whsec_"

// newSecret returns a fresh signing secret: "whsec_" and 32 random bytes in
// standard base64, the form Standard Webhooks libraries accept.
func newSecret() string {
	key := make([]byte, 32)
	rand.Read(key)
	return secretPrefix + base64.StdEncoding.EncodeToString(key)
}

// signer signs with one secret, or two while a rotation overlaps.
type signer struct{ keys [][]byte }

func newSigner(secrets ...string) (signer, error) {
	var sg signer
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
		if err != nil || len(key) == 0 {
			return signer{}, errors.New("spi: malformed signing secret")
		}
		sg.keys = append(sg.keys, key)
	}
	return sg, nil
}

// sign sets the Standard Webhooks headers on h for a message with this id,
// time and body: webhook-signature is "v1," and the base64 HMAC-SHA256 of
// "id.timestamp.body", once per secret, separated by spaces (a verifier
// accepts the message if any signature matches).
func (s signer) sign(h http.Header, id string, at time.Time, body []byte) {
	ts := strconv.FormatInt(at.Unix(), 10)
	sigs := make([]string, len(s.keys))
	for i, key := range s.keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, strings.Join(sigs, " "))
}
