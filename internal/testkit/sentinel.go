package testkit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Sentinel is a loopback server that must not be reached: a test gives its
// URL where nothing should be fetched (a remote $ref, a refused target)
// and checks that Hits is 0. It answers body, so that a fetch it should
// not have had would succeed and not hide behind an error.
type Sentinel struct {
	URL  string
	hits atomic.Int32
}

// NewSentinel starts a sentinel on 127.0.0.1, closed when t ends.
func NewSentinel(t testing.TB, body string) *Sentinel {
	t.Helper()
	s := &Sentinel{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Hits is the number of requests the sentinel has answered.
func (s *Sentinel) Hits() int { return int(s.hits.Load()) }
