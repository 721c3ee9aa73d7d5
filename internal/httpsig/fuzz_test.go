package httpsig_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/httpsig"
)

// FuzzVerify feeds Verify the fields an upstream receives from outside:
// whatever they hold, it does not panic, and what it accepts names the
// key's algorithm (or none) and signs again.
func FuzzVerify(f *testing.F) {
	k := httpsig.HMACKey("ups_1", []byte("a shared secret of thirty-two by"))
	now := time.Unix(1773144000, 0)
	r, _ := http.NewRequest("POST", "https://bank.example/api/x?y=1", strings.NewReader("{}"))
	r.Header.Set("Content-Digest", httpsig.ContentDigest([]byte("{}")))
	httpsig.Sign(r, "causeway", "", httpsig.Params{Components: []string{"@method", "@target-uri", "content-digest"}, Created: now}, k)
	f.Add(r.Header.Get("Signature-Input"), r.Header.Get("Signature"), r.Header.Get("Content-Digest"), "{}")
	f.Add(`causeway=("@method" "@query" "@authority" "@scheme" "@request-target" "@path");created=1;keyid="ups_1"`, "causeway=:AAAA:", "sha-256=:AAAA:", "")
	f.Add(`causeway=("a";sf "b";key="c");expires=1;nonce="n";alg="ed25519";tag="t"`, `causeway=?1`, "", "x")
	f.Fuzz(func(t *testing.T, input, sig, digest, body string) {
		r, _ := http.NewRequest("POST", "https://bank.example/api/x?y=1", strings.NewReader(body))
		r.Header.Set("Signature-Input", input)
		r.Header.Set("Signature", sig)
		r.Header.Set("Content-Digest", digest)
		p, err := httpsig.Verify(r, httpsig.Verification{Label: "causeway", Now: func() time.Time { return now },
			Key: func(string, string) (*httpsig.Key, error) { return k, nil }})
		if err != nil {
			return
		}
		again, _ := http.NewRequest("POST", "https://bank.example/api/x?y=1", nil)
		again.Header.Set("Content-Digest", digest)
		if err := httpsig.Sign(again, "causeway", "", p, k); err != nil {
			t.Fatalf("verified %q but cannot sign its parameters: %v", input, err)
		}
		if p.Alg != "" && p.Alg != httpsig.AlgHMACSHA256 {
			t.Fatalf("verified %q with alg %q by an hmac key", input, p.Alg)
		}
	})
}
