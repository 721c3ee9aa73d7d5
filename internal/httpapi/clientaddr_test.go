package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/httpapi"
)

// The sign-up and login throttles count per client address; a client
// must not get a fresh budget by writing X-Forwarded-For, nor by moving
// within its IPv6 /64.
func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"direct", nil, "192.0.2.7:5555", nil, "192.0.2.7/32"},
		{"forged header, no proxy trusted", nil, "192.0.2.7:5555", []string{"198.51.100.1"}, "192.0.2.7/32"},
		{"forged header from an untrusted peer", proxy, "192.0.2.7:5555", []string{"198.51.100.1"}, "192.0.2.7/32"},
		{"trusted proxy", proxy, "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1/32"},
		{"client's own entries on the left are ignored", proxy, "10.1.2.3:80", []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1/32"},
		{"chain of trusted proxies", proxy, "10.1.2.3:80", []string{"198.51.100.1", "10.9.9.9"}, "198.51.100.1/32"},
		{"garbage stops at the last trusted hop", proxy, "10.1.2.3:80", []string{"not-an-ip"}, "10.1.2.3/32"},
		{"IPv6 counts by /64", nil, "[2001:db8:1:2:aaaa::1]:443", nil, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6 is IPv4", nil, "[::ffff:192.0.2.7]:443", nil, "192.0.2.7/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := httpapi.New(httpapi.Config{Version: "test", TrustedProxies: tt.trusted, Registerer: prometheus.NewRegistry()})
			var got netip.Prefix
			s.Handle("GET /where", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = httpapi.ClientAddr(r.Context())
			}))
			req := httptest.NewRequest("GET", "/where", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			s.ServeHTTP(httptest.NewRecorder(), req)
			if got.String() != tt.want {
				t.Errorf("ClientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}
