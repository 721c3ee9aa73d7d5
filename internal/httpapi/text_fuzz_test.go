package httpapi

import (
	"net/url"
	"testing"

	"github.com/causewayhq/causeway/internal/textrule"
)

// FuzzCheckPath: whatever path a client sends and whichever route it
// matched, checkPath refuses it exactly when its decoded text breaks the
// rule, and never panics while naming the parameter.
func FuzzCheckPath(f *testing.F) {
	for _, s := range [][2]string{
		{"GET /v1/accounts/{id}", "/v1/accounts/acc%00x"},
		{"GET /v1/accounts/{id}", "/v1/accounts/a%2F%01"},
		{"DELETE /bank/v1/grants/{app_id}/{customer_id}", "/bank/v1/grants/app/cus%FF"},
		{"/v1/ext/{rest...}", "/v1/ext/a/b/%0A"},
		{"/", "/v1/nothing%7F"},
		{"POST /oauth2/token", "/oauth2/token"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, rawPath string) {
		u, err := url.Parse(rawPath)
		if err != nil {
			return
		}
		got := checkPath(pattern, u) == nil
		if want := textrule.Check("path", u.Path, textrule.SingleLine) == nil; got != want {
			t.Fatalf("checkPath(%q, %q) accepted %v, the rule says %v", pattern, rawPath, got, want)
		}
	})
}
