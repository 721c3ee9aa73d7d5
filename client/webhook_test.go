package client_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/client"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func sign(t testing.TB, secret, id string, ts time.Time, body []byte) http.Header {
	key, _ := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return h
}

func TestVerifyWebhookAgreesWithTheStandardLibrary(t *testing.T) {
	now := time.Now()
	body := []byte(`{"id":"evt_1","type":"payment.completed"}`)
	h := sign(t, secret, "evt_1", now, body)
	if err := client.VerifyWebhook(secret, h, body, now); err != nil {
		t.Fatalf("valid delivery refused: %v", err)
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("the reference library refuses our test signature: %v", err)
	}
	// During a rotation two signatures are sent; either may match.
	h2 := h.Clone()
	h2.Set("webhook-signature", "v1,bm90LXRoZS1zaWduYXR1cmU= "+h.Get("webhook-signature"))
	if err := client.VerifyWebhook(secret, h2, body, now); err != nil {
		t.Errorf("rotation header refused: %v", err)
	}
	for name, tt := range map[string]struct {
		h    http.Header
		body []byte
		now  time.Time
		want error
	}{
		"tampered body": {h, []byte(`{"id":"evt_1","type":"payment.rejected"}`), now, client.ErrWebhookSignature},
		"replayed":      {h, body, now.Add(10 * time.Minute), client.ErrWebhookTimestamp},
		"no headers":    {http.Header{}, body, now, client.ErrWebhookHeaders},
		"other secret":  {sign(t, "whsec_c2VjcmV0LW51bWJlci10d28=", "evt_1", now, body), body, now, client.ErrWebhookSignature},
	} {
		if err := client.VerifyWebhook(secret, tt.h, tt.body, tt.now); err != tt.want {
			t.Errorf("%s: %v, want %v", name, err, tt.want)
		}
	}
}

// FuzzVerifyWebhook: arbitrary headers and bodies never panic, and only a
// correctly signed delivery verifies.
func FuzzVerifyWebhook(f *testing.F) {
	now := time.Unix(1764100000, 0)
	body := []byte(`{"id":"evt_1"}`)
	good := sign(f, secret, "evt_1", now, body)
	f.Add("evt_1", good.Get("webhook-timestamp"), good.Get("webhook-signature"), body)
	f.Add("", "", "", []byte{})
	f.Add("x", "99999999999999999999", "v1,,, v2,abc v1", []byte("{"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		err := client.VerifyWebhook(secret, h, body, now)
		if err == nil {
			want := sign(t, secret, id, now, body).Get("webhook-signature")
			if !containsField(sig, want) {
				t.Fatalf("verified without the right signature: %q", sig)
			}
		}
	})
}

func containsField(s, f string) bool {
	return slices.Contains(strings.Fields(s), f)
}
