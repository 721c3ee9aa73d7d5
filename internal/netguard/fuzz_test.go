package netguard_test

import (
	"context"
	"hash/fnv"
	"net/netip"
	"net/url"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/netguard"
)

// hashResolver answers every host without the network: a public or a
// private address chosen by the host's hash.
type hashResolver struct{}

func (hashResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	h := fnv.New32a()
	h.Write([]byte(host))
	if h.Sum32()%2 == 0 {
		return []netip.Addr{netip.MustParseAddr("203.0.113.34")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
}

// FuzzCheckURL: CheckURL never panics, always answers with a causeway
// error, and accepts only absolute http(s) URLs with a host and no user
// info.
func FuzzCheckURL(f *testing.F) {
	for _, seed := range []string{
		"https://public.example/hook", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/",
		"http://10.1.2.3/", "ftp://x", "http://user@host/", "http://[fe80::1%25eth0]:80/",
		"http://[64:ff9b::7f00:1]/", "HTTP://PUBLIC.EXAMPLE:65535", "http://0x7f.1/", "http://2130706433/",
		"https://a.b/%zz", "http://[::1", "", "http://:80/",
	} {
		f.Add(seed)
	}
	g := netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Resolver: hashResolver{}}
	f.Fuzz(func(t *testing.T, raw string) {
		err := g.CheckURL(context.Background(), raw)
		if err != nil {
			if k := causeway.ErrorKind(err); k != causeway.EINVALID {
				t.Fatalf("CheckURL(%q) = %v, kind %s, want invalid", raw, err, k)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("CheckURL accepted %q", raw)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && !g.Allowed(a) {
			t.Fatalf("CheckURL accepted %q, whose address %s is not allowed", raw, a)
		}
	})
}
