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

// signer signs with one secret.
type signer struct{ key []byte }

func newSigner(secret string) (signer, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil || len(key) == 0 {
		return signer{}, errors.New("spi: malformed signing secret")
	}
	return signer{key: key}, nil
}

// sign sets the Standard Webhooks headers on h for a message with this id,
// time and body: webhook-signature is "v1," and the base64 HMAC-SHA256 of
// "id.timestamp.body".
func (s signer) sign(h http.Header, id string, at time.Time, body []byte) {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}
