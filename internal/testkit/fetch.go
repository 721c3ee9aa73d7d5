package testkit

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// fetchClient is Fetch's: one transport for every call (net/http keeps
// its connections for reuse), which neither asks for nor decodes gzip, and
// follows no redirect.
var fetchClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Fetch GETs url with the given request headers and returns the answer
// with its body as the server sent it: the transport does not ask for or
// decode gzip on its own, and redirects are not followed.
func Fetch(t testing.TB, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := fetchClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}
