package netguard_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/testkit"
)

// stubResolver answers from a table; a host answers its entries in turn,
// the last one forever, so a test can change an answer between lookups.
type stubResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	lookups map[string]int
}

func newStub(answers map[string][]string) *stubResolver {
	s := &stubResolver{answers: map[string][][]netip.Addr{}, lookups: map[string]int{}}
	for host, list := range answers {
		for _, group := range list {
			var addrs []netip.Addr
			for a := range strings.SplitSeq(group, ",") {
				addrs = append(addrs, netip.MustParseAddr(a))
			}
			s.answers[host] = append(s.answers[host], addrs)
		}
	}
	return s
}

func (s *stubResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	answers, ok := s.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(s.lookups[host], len(answers)-1)
	s.lookups[host]++
	return answers[i], nil
}

func prefixes(cidrs ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cidrs {
		out = append(out, netip.MustParsePrefix(c))
	}
	return out
}

// TestCheckURL checks URLs without dialling them. Its public addresses
// come from the documentation ranges (RFC 5737 and RFC 3849), which the
// guard counts as public and which no network routes.
func TestCheckURL(t *testing.T) {
	resolver := newStub(map[string][]string{
		"public.example":  {"203.0.113.34"},
		"intranet.bank":   {"10.20.0.5"},
		"split.example":   {"203.0.113.34,192.168.1.10"},
		"metadata.google": {"169.254.169.254"},
		"v6.example":      {"2001:db8:220:1::1946"},
	})
	loopback := prefixes("127.0.0.0/8", "::1/128")
	tests := []struct {
		name  string
		url   string
		allow []netip.Prefix
		code  string // "" means allowed
	}{
		{"public IPv4 literal", "https://203.0.113.34/hook", nil, ""},
		{"public host name", "https://public.example/hooks/causeway?x=1", nil, ""},
		{"public IPv6 host", "http://v6.example:8443/", nil, ""},
		{"public IPv6 literal", "http://[2001:db8:220:1::1946]/", nil, ""},
		{"upper-case scheme", "HTTPS://public.example/", nil, ""},

		{"loopback", "http://127.0.0.1/", nil, netguard.CodeNotAllowed},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/", nil, netguard.CodeNotAllowed},
		{"IPv6 loopback", "http://[::1]:8080/", nil, netguard.CodeNotAllowed},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", nil, netguard.CodeNotAllowed},
		{"cloud metadata by name", "http://metadata.google/computeMetadata/v1/", nil, netguard.CodeNotAllowed},
		{"RFC 1918 10/8", "http://10.1.2.3/", nil, netguard.CodeNotAllowed},
		{"RFC 1918 172.16/12", "http://172.31.255.1/", nil, netguard.CodeNotAllowed},
		{"RFC 1918 192.168/16", "http://192.168.0.1/", nil, netguard.CodeNotAllowed},
		{"private host name", "https://intranet.bank/spi", nil, netguard.CodeNotAllowed},
		{"one private address among public ones", "https://split.example/", nil, netguard.CodeNotAllowed},
		{"CGNAT", "http://100.64.0.1/", nil, netguard.CodeNotAllowed},
		{"unspecified IPv4", "http://0.0.0.0/", nil, netguard.CodeNotAllowed},
		{"unspecified IPv6", "http://[::]/", nil, netguard.CodeNotAllowed},
		{"multicast", "http://224.0.0.1/", nil, netguard.CodeNotAllowed},
		{"broadcast", "http://255.255.255.255/", nil, netguard.CodeNotAllowed},
		{"unique local IPv6", "http://[fd00:ec2::254]/", nil, netguard.CodeNotAllowed},
		{"link-local IPv6 with zone", "http://[fe80::1%25eth0]/", nil, netguard.CodeNotAllowed},
		{"IPv4-mapped metadata", "http://[::ffff:a9fe:a9fe]/", nil, netguard.CodeNotAllowed},
		{"NAT64 of loopback", "http://[64:ff9b::7f00:1]/", nil, netguard.CodeNotAllowed},
		{"6to4 of private", "http://[2002:0a00:0001::1]/", nil, netguard.CodeNotAllowed},

		{"loopback allowed", "http://127.0.0.1:8080/hook", loopback, ""},
		{"IPv4-mapped loopback allowed", "http://[::ffff:127.0.0.1]/", loopback, ""},
		{"IPv6 loopback allowed", "http://[::1]/", loopback, ""},
		{"private range allowed", "https://intranet.bank/spi", prefixes("10.20.0.0/16"), ""},
		{"allow-list covers only its range", "http://10.1.2.3/", loopback, netguard.CodeNotAllowed},
		{"allow-list for one address of a split host", "https://split.example/", prefixes("192.168.1.10/32"), ""},

		{"ftp", "ftp://x", nil, netguard.CodeInvalidURL},
		{"file", "file:///etc/passwd", nil, netguard.CodeInvalidURL},
		{"no scheme", "example.com/hook", nil, netguard.CodeInvalidURL},
		{"opaque", "http:example.com", nil, netguard.CodeInvalidURL},
		{"no host", "http:///hook", nil, netguard.CodeInvalidURL},
		{"user info", "https://user:secret@public.example/", nil, netguard.CodeInvalidURL},
		{"port zero", "http://public.example:0/", nil, netguard.CodeInvalidURL},
		{"port too large", "http://public.example:65536/", nil, netguard.CodeInvalidURL},
		{"unparseable", "http://[::1/", nil, netguard.CodeInvalidURL},
		{"unknown host", "https://nowhere.example/", nil, netguard.CodeInvalidURL},
		{"empty", "", nil, netguard.CodeInvalidURL},
		{"too long", "https://public.example/" + strings.Repeat("a", 2100), nil, netguard.CodeInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := netguard.Guard{Allow: tt.allow, Resolver: resolver}
			err := g.CheckURL(context.Background(), tt.url)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want allowed", tt.url, err)
				}
				return
			}
			var ce *causeway.Error
			if !errors.As(err, &ce) {
				t.Fatalf("CheckURL(%q) = %v, want a causeway error with code %s", tt.url, err, tt.code)
			}
			if ce.Kind != causeway.EINVALID || ce.Code != tt.code {
				t.Errorf("CheckURL(%q) = %s/%s (%s), want invalid/%s", tt.url, ce.Kind, ce.Code, ce.Message, tt.code)
			}
			if ce.Message == "" {
				t.Error("error without a message")
			}
		})
	}
}

func TestCheckURLRefusesLocalhostThroughTheSystemResolver(t *testing.T) {
	err := netguard.Guard{}.CheckURL(context.Background(), "http://localhost:8080/hook")
	if causeway.ErrorCode(err) != netguard.CodeNotAllowed {
		t.Fatalf("CheckURL(localhost) = %v, want %s", err, netguard.CodeNotAllowed)
	}
	if !strings.Contains(err.Error(), "--allow-private-targets") {
		t.Errorf("message %q does not say how to allow the range", err)
	}
}

func TestErrorNamesTheAddressAndWhy(t *testing.T) {
	g := netguard.Guard{Resolver: newStub(map[string][]string{"hooks.internal": {"10.9.8.7"}})}
	err := g.CheckURL(context.Background(), "https://hooks.internal/x")
	for _, want := range []string{"hooks.internal", "10.9.8.7", "private"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %q", err, want)
		}
	}
}

func TestAllowed(t *testing.T) {
	g := netguard.Guard{Allow: prefixes("127.0.0.0/8")}
	for addr, want := range map[string]bool{
		"203.0.113.8":      true,
		"127.0.0.1":        true,
		"::ffff:127.0.0.1": true,
		"10.0.0.1":         false,
		"169.254.169.254":  false,
		"::1":              false,
		"2001:db8::8888":   true,
	} {
		if got := g.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	if g.Allowed(netip.Addr{}) {
		t.Error("the zero address is allowed")
	}
}

// server returns a loopback test server and its port.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return srv, u.Port()
}

func TestHTTPClientRefusesLoopbackAtDialTime(t *testing.T) {
	var hits int
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) { hits++ })
	_, err := netguard.Guard{}.HTTPClient(5 * time.Second).Get(srv.URL)
	if causeway.ErrorCode(err) != netguard.CodeNotAllowed {
		t.Fatalf("Get(%s) = %v, want %s", srv.URL, err, netguard.CodeNotAllowed)
	}
	if hits != 0 {
		t.Errorf("the server was reached %d times", hits)
	}
}

func TestHTTPClientReachesAllowedRange(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	c := netguard.Guard{Allow: prefixes("127.0.0.0/8")}.HTTPClient(5 * time.Second)
	res, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if body, _ := io.ReadAll(res.Body); res.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("got %d %q, want 200 ok", res.StatusCode, body)
	}
}

// TestHTTPClientRefusesDNSRebinding: the host resolves to an allowed
// address when the URL is checked and to a refused one, where a server
// listens, when the client connects. Both are loopback addresses, and the
// allow-list holds only the first.
func TestHTTPClientRefusesDNSRebinding(t *testing.T) {
	var hits atomic.Int32
	refused := testkit.ServerOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	_, port, _ := net.SplitHostPort(refused.Listener.Addr().String())
	g := netguard.Guard{
		Allow:    prefixes("127.0.0.1/32"),
		Resolver: newStub(map[string][]string{"rebind.test": {"127.0.0.1", "127.0.0.2"}}),
	}
	target := "http://rebind.test:" + port + "/hook"
	if err := g.CheckURL(context.Background(), target); err != nil {
		t.Fatalf("CheckURL at registration: %v", err)
	}
	_, err := g.HTTPClient(5 * time.Second).Get(target)
	if causeway.ErrorCode(err) != netguard.CodeNotAllowed || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Fatalf("Get after rebinding = %v, want %s naming 127.0.0.2", err, netguard.CodeNotAllowed)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server on the refused address was reached %d times", n)
	}
}

func TestHTTPClientDialsTheCheckedAddress(t *testing.T) {
	_, port := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) })
	g := netguard.Guard{
		Allow:    prefixes("127.0.0.0/8"),
		Resolver: newStub(map[string][]string{"hooks.test": {"127.0.0.1"}}),
	}
	res, err := g.HTTPClient(5 * time.Second).Get("http://hooks.test:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if string(body) != "hooks.test:"+port {
		t.Errorf("Host seen by the server = %q, want the original host name", body)
	}
}

func TestHTTPClientDoesNotFollowRedirects(t *testing.T) {
	var followed bool
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { followed = true })
	srv, _ := server(t, mux.ServeHTTP)
	res, err := netguard.Guard{Allow: prefixes("127.0.0.0/8")}.HTTPClient(5 * time.Second).Get(srv.URL + "/hook")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/elsewhere" {
		t.Errorf("got %d Location %q, want the 302 itself", res.StatusCode, res.Header.Get("Location"))
	}
	if followed {
		t.Error("the redirect was followed")
	}
}

// TestHTTPClientIgnoresProxyEnvironment: a proxy named in the environment
// is never asked to connect. The target is a host name, since Go's
// environment proxy never applies to a loopback address itself.
func TestHTTPClientIgnoresProxyEnvironment(t *testing.T) {
	var proxied atomic.Int32
	proxy, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	})
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	_, port := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "direct") })
	g := netguard.Guard{
		Allow:    prefixes("127.0.0.0/8"),
		Resolver: newStub(map[string][]string{"hooks.test": {"127.0.0.1"}}),
	}
	res, err := g.HTTPClient(5 * time.Second).Get("http://hooks.test:" + port + "/")
	if err != nil {
		t.Fatalf("Get with a proxy in the environment: %v", err)
	}
	defer res.Body.Close()
	if body, _ := io.ReadAll(res.Body); string(body) != "direct" || proxied.Load() != 0 {
		t.Errorf("got %d %q with %d requests to the proxy, want the target itself and none", res.StatusCode, body, proxied.Load())
	}
}

// TestRequireHTTPSRefusesPlainHTTP: a guard that requires https refuses an
// http:// URL when it is registered and again when its client would send
// to one (a URL stored before the guard required https), and reaches an
// https:// one whose certificate comes from RootCAs.
func TestRequireHTTPSRefusesPlainHTTP(t *testing.T) {
	var hits sync.Map
	plain, _ := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Store("plain", true) })
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(tlsSrv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())
	g := netguard.Guard{Allow: prefixes("127.0.0.0/8"), RequireHTTPS: true, RootCAs: roots}
	ctx := context.Background()

	for _, raw := range []string{plain.URL, "HTTP://127.0.0.1/hook"} {
		if err := g.CheckURL(ctx, raw); causeway.ErrorCode(err) != netguard.CodeHTTPSRequired || causeway.ErrorKind(err) != causeway.EINVALID {
			t.Errorf("CheckURL(%s) = %v, want %s", raw, err, netguard.CodeHTTPSRequired)
		}
	}
	if err := g.CheckURL(ctx, tlsSrv.URL); err != nil {
		t.Errorf("CheckURL(%s) = %v", tlsSrv.URL, err)
	}
	c := g.HTTPClient(5 * time.Second)
	if _, err := c.Post(plain.URL, "application/json", strings.NewReader("{}")); causeway.ErrorCode(err) != netguard.CodeHTTPSRequired {
		t.Errorf("Post(%s) = %v, want %s", plain.URL, err, netguard.CodeHTTPSRequired)
	}
	if _, ok := hits.Load("plain"); ok {
		t.Error("the plain-http server was reached")
	}
	res, err := c.Get(tlsSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if body, _ := io.ReadAll(res.Body); res.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("got %d %q, want 200 ok", res.StatusCode, body)
	}
	// Without RootCAs the test certificate is not trusted.
	if _, err := (netguard.Guard{Allow: prefixes("127.0.0.0/8")}).HTTPClient(5 * time.Second).Get(tlsSrv.URL); err == nil {
		t.Error("a certificate outside the system's roots was trusted without RootCAs")
	}
}
