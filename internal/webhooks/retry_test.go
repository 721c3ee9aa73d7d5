package webhooks

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

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
