package webhooks

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestSignatureIsWhatTheStandardWebhooksLibraryComputes(t *testing.T) {
	secret := NewSecret()
	key, err := secretKey(secret)
	if err != nil || len(key) != 32 {
		t.Fatalf("key %d bytes, %v", len(key), err)
	}
	body := []byte(`{"specversion":"1.0","id":"evt_1"}`)
	now := time.Now()
	wh, _ := standardwebhooks.NewWebhook(secret)
	want, _ := wh.Sign("evt_1", now, body)
	if got := Sign([][]byte{key}, "evt_1", now.Unix(), body); got != want {
		t.Errorf("Sign = %s, library says %s", got, want)
	}
	other, _ := secretKey(NewSecret())
	h := http.Header{}
	h.Set(HeaderID, "evt_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, Sign([][]byte{other, key}, "evt_1", now.Unix(), body))
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("a second signature hides the right one: %v", err)
	}
	if n := len(strings.Fields(h.Get(HeaderSignature))); n != 2 {
		t.Errorf("%d signatures, want 2", n)
	}
}

func TestRetryDelay(t *testing.T) {
	s := &Service{opts: Options{Schedule: []time.Duration{time.Second, time.Minute}, Jitter: 0.5}}
	for range 100 {
		if d := s.retryDelay(1, result{}); d < 500*time.Millisecond || d > 1500*time.Millisecond {
			t.Fatalf("after attempt 1: %v, want 1s ± 50%%", d)
		}
		if d := s.retryDelay(9, result{}); d < 30*time.Second || d > 90*time.Second {
			t.Fatalf("past the schedule's end: %v, want its last step", d)
		}
	}
	if d := s.retryDelay(1, result{retryAfter: time.Hour}); d != time.Hour {
		t.Errorf("Retry-After longer than the schedule: %v", d)
	}
	now := time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "30": 30 * time.Second, "-5": 0, "junk": 0, "99999999999": maxRetryAfter,
		now.Add(2 * time.Minute).Format(http.TimeFormat): 2 * time.Minute, now.Add(-time.Minute).Format(http.TimeFormat): 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}

func TestClipKeepsValidUTF8WithinBound(t *testing.T) {
	for _, s := range []string{strings.Repeat("é", 600), "ok\x00ok", string([]byte{0xff, 0xfe, 'a'}), strings.Repeat("a", 2000)} {
		got := clip(s, 1024)
		if len(got) > 1024 || strings.ContainsRune(got, 0) || !isValid(got) {
			t.Errorf("clip(%.20q) = %.20q (%d bytes)", s, got, len(got))
		}
	}
}

func isValid(s string) bool { return strings.ToValidUTF8(s, "?") == s }

func BenchmarkSign(b *testing.B) {
	key, _ := secretKey(NewSecret())
	body := []byte(sampleEvent)
	b.ReportAllocs()
	for b.Loop() {
		Sign([][]byte{key}, "evt_1", 1700000000, body)
	}
}
