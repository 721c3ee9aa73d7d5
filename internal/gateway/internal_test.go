package gateway

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{"abc", `"abc"`, `"a\"b\\c"`, " padded\t", "", `"`, `"\x"`, `"a"b`, "caf\xc3\xa9", strings.Repeat("k", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		key, err := parseIdempotencyKey([]string{header})
		if err != nil {
			return
		}
		if len(key) < 1 || len(key) > maxKeyLen {
			t.Fatalf("%q gave a key of %d bytes", header, len(key))
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("%q gave a key with byte %#x", header, key[i])
			}
		}
		// The quoted form of a key names the same key.
		quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
		again, err := parseIdempotencyKey([]string{quoted})
		if err != nil || again != key {
			t.Fatalf("%q -> %q; quoted %q -> %q, %v", header, key, quoted, again, err)
		}
	})
}

func TestParseIdempotencyKey(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"abc-123", "abc-123", true},
		{"  padded ", "padded", true},
		{"with inner space", "with inner space", true},
		{`"quoted"`, "quoted", true},
		{`"es\"c\\aped"`, `es"c\aped`, true},
		{`""`, "", false},
		{"", "", false},
		{`"open`, "", false},
		{`"bad\escape"`, "", false},
		{`"trailing"x`, "", false},
		{"tab\tinside", "", false},
		{"caf\xc3\xa9", "", false},
		{strings.Repeat("k", 255), strings.Repeat("k", 255), true},
		{strings.Repeat("k", 256), "", false},
	} {
		got, err := parseIdempotencyKey([]string{tt.in})
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%q: %q, %v", tt.in, got, err)
		}
	}
	if _, err := parseIdempotencyKey([]string{"a", "b"}); err == nil {
		t.Error("two keys were accepted")
	}
}

func TestPercentilesInterpolateInsideTheirBucket(t *testing.T) {
	var c counts
	// 100 calls: 50 under 1 ms, 40 in (1, 2.5] ms, 9 in (5, 10] ms, 1 over 10 s.
	c.latency[0], c.latency[1], c.latency[3], c.latency[buckets-1] = 50, 40, 9, 1
	for _, tt := range []struct {
		q    float64
		want float64
	}{
		{0.50, 1},     // the 50th call closes the first bucket
		{0.70, 1.75},  // halfway through (1, 2.5]
		{0.95, 7.778}, // 5 of 9 into (5, 10]
		{0.99, 10},    // the last of (5, 10]
		{0.999, 10000},
	} {
		if got := c.percentile(tt.q); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.q*100, got, tt.want)
		}
	}
	if (&counts{}).percentile(0.5) != 0 {
		t.Error("no calls should give 0")
	}
	if bucketOf(0) != 0 || bucketOf(time.Millisecond) != 0 || bucketOf(time.Millisecond+1) != 1 || bucketOf(time.Hour) != buckets-1 {
		t.Error("bucketOf")
	}
}
