package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks signing secret; the rest is the
// key, base64-encoded.
const secretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: "whsec_" and 32 random bytes,
// base64-encoded.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey returns the HMAC key of a whsec_ secret.
func secretKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, errors.New("webhooks: secret has no whsec_ prefix")
	}
	return base64.StdEncoding.DecodeString(raw)
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" per key,
// space-separated, so that during a rotation both the new and the old
// secret sign and a receiver holding either verifies.
func Sign(keys [][]byte, id string, timestamp int64, body []byte) string {
	var sb strings.Builder
	ts := strconv.FormatInt(timestamp, 10)
	for i, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString("v1,")
		sb.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return sb.String()
}
