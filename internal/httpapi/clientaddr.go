package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type clientAddrKey struct{}

// ClientAddr returns the address of the client that sent the request ctx
// belongs to, as the throttles on sign-up and login count it: the
// connection's remote address, or, when that is a trusted proxy
// (Config.TrustedProxies), the address that proxy says it forwarded for.
// IPv6 addresses are cut to their /64, the block one subscriber gets, so
// that rotating through it does not escape a per-address limit. It is the
// zero Prefix when unknown (a request not served by a Server).
func ClientAddr(ctx context.Context) netip.Prefix {
	p, _ := ctx.Value(clientAddrKey{}).(netip.Prefix)
	return p
}

// WithClientAddr returns ctx carrying a as the client's address.
func WithClientAddr(ctx context.Context, a netip.Prefix) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, a)
}

// clientAddr finds the client's address. X-Forwarded-For is read only
// when the connection comes from a trusted proxy, and then from the right:
// each trusted proxy appends the address it received from, so the
// rightmost entry that is not a trusted proxy is the first one no proxy of
// ours vouches for. Entries further left are whatever the client wrote,
// and a client rotating them must not get a fresh budget each time.
func (s *Server) clientAddr(r *http.Request) netip.Prefix {
	addr := remoteAddr(r.RemoteAddr)
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	if s.trusted(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a garbled entry: stop at the last proxy we trust
			}
			addr = hop.Unmap()
			if !s.trusted(addr) {
				break
			}
		}
	}
	return addrBlock(addr)
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// addrBlock is an IPv4 address itself, an IPv6 address's /64.
func addrBlock(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.WithZone("").Prefix(64)
	return p
}

// addrText writes a client address for the audit trail: an IPv4 address
// alone, an IPv6 client's /64 as a prefix; "" when unknown.
func addrText(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return ""
	case p.Addr().Is4():
		return p.Addr().String()
	}
	return p.String()
}
