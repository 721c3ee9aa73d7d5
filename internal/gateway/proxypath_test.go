package gateway

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// proxyPathSeeds are paths (after /v1/ext/{prefix}/, as sent) the proxy
// must forward or refuse: the table of TestProxiedPath and the seed corpus
// of FuzzProxiedPath.
var proxyPathSeeds = []struct {
	rest string
	ok   bool
}{
	{"", true},
	{"cards/42/freeze", true},
	{"a%20b/c%3Fd/", true},
	{"c.d/e..f/...", true},
	{"%41%62c", true},
	{"..%2Fadmin", false},
	{"..%2fadmin", false},
	{"%2e%2e/admin", false},
	{"%2E%2E%2Fadmin", false},
	{".%2e/admin", false},
	{"%2e./admin", false},
	{"a%2Fb", false},
	{"..%5cadmin", false},
	{"..\\admin", false},
	{"%252e%252e%252fadmin", false},
	{"..%252fadmin", false},
	{"%25", false},
	{"%2", false},
	{"%zz", false},
	{"a%00b", false},
	{"a\x00b", false},
	{"..", false},
	{"a/../../b", false},
	{"./a", false},
	{"a/.", false},
	{"a//b", false},
	{"/a", false},
}

func TestProxiedPath(t *testing.T) {
	for _, tc := range proxyPathSeeds {
		p, raw, err := proxiedPath(tc.rest)
		if ok := err == nil; ok != tc.ok {
			t.Errorf("proxiedPath(%q) = %q, %q, %v; want accepted %v", tc.rest, p, raw, err, tc.ok)
		}
	}
	if p, raw, _ := proxiedPath("a%20b/c"); p != "/a b/c" || raw != "/a%20b/c" {
		t.Errorf("proxiedPath(a%%20b/c) = %q, %q", p, raw)
	}
}

// FuzzProxiedPath: whatever proxiedPath accepts stays under the
// upstream's base path however an upstream decodes it (once, or until
// nothing changes, reading a backslash as a slash), and its two forms
// agree.
func FuzzProxiedPath(f *testing.F) {
	for _, s := range proxyPathSeeds {
		f.Add(s.rest)
	}
	const base = "/api/v2"
	f.Fuzz(func(t *testing.T, rest string) {
		p, raw, err := proxiedPath(rest)
		if err != nil {
			return
		}
		if decoded, err := url.PathUnescape(raw); err != nil || decoded != p {
			t.Fatalf("proxiedPath(%q): %q decodes to %q, %v; want %q", rest, raw, decoded, err, p)
		}
		decoded := base + raw
		for range 5 {
			next, err := url.PathUnescape(decoded)
			if err != nil || next == decoded {
				break
			}
			decoded = next
		}
		decoded = strings.ReplaceAll(decoded, "\\", "/")
		if clean := path.Clean(decoded); clean != base && !strings.HasPrefix(clean, base+"/") {
			t.Fatalf("proxiedPath(%q) accepted %q, which decodes to %q: out of %s", rest, raw, clean, base)
		}
	})
}
