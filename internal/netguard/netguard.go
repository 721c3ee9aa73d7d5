// Package netguard keeps the platform from being turned against its own
// network (server-side request forgery). Webhook and SPI URLs come from
// developers; without a guard, one could point at the bank's internal
// services, the cloud metadata endpoint or the node's own admin ports, and
// have the platform call them.
//
// A Guard refuses loopback, private, link-local, carrier-grade NAT,
// multicast, unspecified and reserved addresses (and their IPv4-mapped and
// IPv4-embedding IPv6 forms) unless the operator allowed the range
// (--allow-private-targets). It checks twice: when a URL is registered
// (CheckURL), and again on every connection its HTTP client makes
// (HTTPClient), on the very address dialled, so a DNS answer that changes in
// between (DNS rebinding) cannot slip through.
package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/causewayhq/causeway"
)

// Error codes of the causeway.Error values a Guard returns.
const (
	// CodeInvalidURL: the URL is malformed, not http(s), carries
	// credentials, or its host does not resolve.
	CodeInvalidURL = "invalid_url"
	// CodeNotAllowed: the host resolves to an address the guard refuses.
	CodeNotAllowed = "url_not_allowed"
	// CodeHTTPSRequired: the URL is plain http:// and the guard requires
	// https:// (production mode).
	CodeHTTPSRequired = "https_required"
)

// maxURLLength bounds the URLs CheckURL accepts.
const maxURLLength = 2048

// resolveTimeout bounds one host lookup.
const resolveTimeout = 5 * time.Second

// Resolver looks up the addresses of a host. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard decides which network addresses outgoing calls may reach. The zero
// value refuses every non-public address and resolves with
// net.DefaultResolver.
type Guard struct {
	// Allow lists ranges that are reachable even though they are not
	// public, e.g. 127.0.0.0/8 for tests or 10.20.0.0/16 for a bank's
	// internal SPI providers.
	Allow []netip.Prefix
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// RequireHTTPS refuses plain http:// URLs, at registration and on
	// every request the guard's transport sends: in production, webhook
	// payloads and SPI calls carry customers' personal data (a fraud
	// check's date of birth and document number) that must not cross a
	// network in the clear.
	RequireHTTPS bool
	// RootCAs, when set, are the certificate authorities the transport
	// trusts for https targets instead of the system's, e.g. the system
	// pool plus a bank's internal CA for its SPI providers.
	RootCAs *x509.CertPool
}

// CheckURL reports whether raw is a URL the platform may call: scheme http
// or https, a host, no user info, a valid port, and a host whose every
// address is allowed. A host with one public and one private address is
// refused: which one a later connection uses is not up to us.
//
// Errors are causeway EINVALID errors with code CodeInvalidURL,
// CodeHTTPSRequired or CodeNotAllowed; a DNS failure that may be temporary
// is EUNAVAILABLE.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	host, err := parseURL(raw)
	if err != nil {
		return err
	}
	if g.RequireHTTPS && !strings.HasPrefix(strings.ToLower(raw), "https://") {
		return errHTTPSRequired()
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if why := g.refusal(a); why != "" {
			return notAllowed(host, a, why)
		}
	}
	return nil
}

// Allowed reports whether a connection to addr is allowed.
func (g Guard) Allowed(addr netip.Addr) bool { return g.refusal(addr) == "" }

// HTTPClient returns a client whose every connection goes through the
// guard: the host is resolved at dial time, refused if any of its addresses
// is not allowed, and only the checked addresses are dialled (checked once
// more just before connecting). It never uses a proxy from the environment
// (the proxy would resolve the host, out of the guard's sight) and does not
// follow redirects: a 3xx comes back as the response, since its Location
// could point anywhere. timeout bounds each request, body included.
func (g Guard) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: g.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Transport returns the guarded transport HTTPClient uses, for callers that
// build their own client. Give it a CheckRedirect that refuses redirects
// too: the transport checks addresses, not where a redirect leads.
func (g Guard) Transport() *http.Transport {
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		// The last word: whatever address the dialer is about to connect
		// to is checked, whatever resolved it.
		ControlContext: func(_ context.Context, network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return causeway.Errorf(causeway.EINVALID, CodeNotAllowed, "refusing to connect to %q: not an IP address", address)
			}
			if why := g.refusal(ap.Addr()); why != "" {
				return notAllowed(ap.Addr().String(), ap.Addr(), why)
			}
			return nil
		},
	}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.dialContext(d),
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		ResponseHeaderTimeout:  30 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if g.RootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: g.RootCAs}
	}
	if g.RequireHTTPS {
		// A URL stored before https was required (a sandbox installation
		// switched to production) is refused when used, not only when
		// registered.
		t.RegisterProtocol("http", refuseHTTP{})
	}
	return t
}

// refuseHTTP answers every plain-http request of a guard that requires
// https with an error, before anything is sent.
type refuseHTTP struct{}

func (refuseHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, errHTTPSRequired()
}

func errHTTPSRequired() error {
	return causeway.Errorf(causeway.EINVALID, CodeHTTPSRequired,
		"the URL must start with https://: in production mode the platform sends customers' data only over TLS")
}

// dialContext resolves the host itself and dials the checked addresses, so
// the address checked is the address connected to.
func (g Guard) dialContext(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, portText, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			return nil, causeway.Errorf(causeway.EINVALID, CodeInvalidURL, "port %q is not a number from 1 to 65535", portText)
		}
		addrs, err := g.resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if why := g.refusal(a); why != "" {
				return nil, notAllowed(host, a, why)
			}
		}
		var firstErr error
		for _, a := range addrs {
			a = a.Unmap()
			if network == "tcp4" && !a.Is4() || network == "tcp6" && !a.Is6() {
				continue
			}
			conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
			if err == nil {
				return conn, nil
			}
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
		}
		if firstErr == nil {
			firstErr = &net.AddrError{Err: "no address of the right family", Addr: host}
		}
		return nil, firstErr
	}
}

// parseURL checks the form of raw and returns its host.
func parseURL(raw string) (string, error) {
	invalid := func(format string, args ...any) error {
		return causeway.Errorf(causeway.EINVALID, CodeInvalidURL, format, args...)
	}
	if len(raw) > maxURLLength {
		return "", invalid("the URL is longer than %d characters", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", invalid("the URL cannot be parsed: %v", errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", invalid("the URL must start with http:// or https://")
	case u.Opaque != "":
		return "", invalid("the URL must be absolute, like https://example.com/hook")
	case u.User != nil:
		return "", invalid("the URL must not contain a user name or password")
	case u.Hostname() == "":
		return "", invalid("the URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return "", invalid("port %q is not a number from 1 to 65535", p)
		}
	}
	return u.Hostname(), nil
}

// resolve returns the addresses of host: itself if it is an IP literal.
func (g Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && (dnsErr.IsTimeout || dnsErr.IsTemporary) && !dnsErr.IsNotFound {
			return nil, errors.Join(err, causeway.Errorf(causeway.EUNAVAILABLE, "dns_unavailable",
				"the host %q could not be resolved right now; try again shortly", host))
		}
		return nil, errors.Join(err, causeway.Errorf(causeway.EINVALID, CodeInvalidURL, "the host %q does not resolve", host))
	}
	if len(addrs) == 0 {
		return nil, causeway.Errorf(causeway.EINVALID, CodeInvalidURL, "the host %q has no addresses", host)
	}
	return addrs, nil
}

func notAllowed(host string, a netip.Addr, why string) error {
	target := a.String()
	if host != target {
		target = host + " resolves to " + target + ","
	}
	return causeway.Errorf(causeway.EINVALID, CodeNotAllowed,
		"%s %s; only public addresses may be called (the platform operator can allow a range with --allow-private-targets)",
		target, why)
}

// refusal says why a connection to a is refused, or "" if it is allowed.
func (g Guard) refusal(a netip.Addr) string {
	if !a.IsValid() {
		return "not a valid address"
	}
	why := classify(a)
	if why == "" || g.covered(a) {
		return ""
	}
	return why
}

// covered reports whether the allow-list covers a, in any of its forms.
func (g Guard) covered(a netip.Addr) bool {
	forms := []netip.Addr{a.WithZone(""), a.WithZone("").Unmap()}
	if v4, ok := embeddedIPv4(forms[1]); ok {
		forms = append(forms, v4)
	}
	for _, p := range g.Allow {
		for _, f := range forms {
			if p.Contains(f) {
				return true
			}
		}
	}
	return false
}

// special lists every range that is not a public unicast address. Order
// matters only for the message: the first match names the range.
var special = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `is a "this network" address`},
	{netip.MustParsePrefix("10.0.0.0/8"), "is a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "is a carrier-grade NAT address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "is a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "is a link-local address (where cloud metadata services live)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "is a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "is an IETF protocol assignment"},
	{netip.MustParsePrefix("192.168.0.0/16"), "is a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "is a network benchmarking address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "is a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "is a reserved or broadcast address"},
	{netip.MustParsePrefix("::/128"), "is the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "is a loopback address"},
	{netip.MustParsePrefix("::/96"), "is an IPv4-compatible address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "is a local-use NAT64 address"},
	{netip.MustParsePrefix("100::/64"), "is a discard-only address"},
	{netip.MustParsePrefix("fc00::/7"), "is a private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "is a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "is a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "is a multicast address"},
}

// classify says why a is not a public address, or "" if it is one.
// IPv4-mapped addresses (::ffff:a.b.c.d) are judged as the IPv4 address
// they are, and so are NAT64 and 6to4 addresses that embed an IPv4 address:
// both can carry a packet to it.
func classify(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if v4, ok := embeddedIPv4(a); ok {
		if why := classify(v4); why != "" {
			return "embeds " + v4.String() + ", which " + why
		}
	}
	for _, s := range special {
		if s.prefix.Contains(a) {
			return s.what
		}
	}
	return ""
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address inside a NAT64 (64:ff9b::/96) or
// 6to4 (2002::/16) address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
