package testkit

import (
	"net/http"
	"testing"
	"time"
)

// WaitStatus waits (at most 20 s) until a GET of url answers want, and
// fails t otherwise: a node's /readyz after a dependency is cut or back.
func WaitStatus(t testing.TB, url string, want int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d within 20s", url, want)
		}
	}
}

// WaitFor polls cond until it holds and fails t if it does not within 30 s
// (a bound against a hang, not a timing assertion).
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
	}
}
