package testkit

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// ServerOn starts a test server on ip (a loopback address other than
// 127.0.0.1, say, one a guard refuses), closed when t ends.
func ServerOn(t testing.TB, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}
