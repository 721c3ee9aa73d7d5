package stdwebhooks_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/internal/stdwebhooks"
)

func TestSignatureIsWhatTheStandardWebhooksLibraryComputes(t *testing.T) {
	secret := stdwebhooks.NewSecret()
	key, err := stdwebhooks.Key(secret)
	if err != nil || len(key) != 32 {
		t.Fatalf("key %d bytes, %v", len(key), err)
	}
	body := []byte(`{"specversion":"1.0","id":"evt_1"}`)
	now := time.Now()
	wh, _ := standardwebhooks.NewWebhook(secret)
	want, _ := wh.Sign("evt_1", now, body)
	if got := stdwebhooks.Sign([][]byte{key}, "evt_1", now.Unix(), body); got != want {
		t.Errorf("Sign = %s, library says %s", got, want)
	}
	other, _ := stdwebhooks.Key(stdwebhooks.NewSecret())
	h := http.Header{}
	stdwebhooks.SetHeaders(h, [][]byte{other, key}, "evt_1", now, body)
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("a second signature hides the right one: %v", err)
	}
	if n := len(strings.Fields(h.Get(stdwebhooks.HeaderSignature))); n != 2 {
		t.Errorf("%d signatures, want 2", n)
	}
	body[0] = '['
	if err := wh.Verify(body, h); err == nil {
		t.Error("a changed body verifies")
	}
}

func TestKeyRefusesWhatIsNotASecret(t *testing.T) {
	for _, s := range []string{"", "whsec_", "whsec_not base64!", "sk_" + strings.Repeat("A", 44)} {
		if _, err := stdwebhooks.Key(s); err == nil {
			t.Errorf("Key(%q) = no error", s)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	key, _ := stdwebhooks.Key(stdwebhooks.NewSecret())
	body := []byte(strings.Repeat(`{"type":"payment.completed","data":{"amount":"12.34"}}`, 8))
	b.ReportAllocs()
	for b.Loop() {
		stdwebhooks.Sign([][]byte{key}, "evt_1", 1700000000, body)
	}
}
