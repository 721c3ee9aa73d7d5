package httpsig_test

import (
	"bufio"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/httpsig"
)

// The test-request of RFC 9421 Appendix B.2, as it arrives at a server.
const rfcRequest = "POST /foo?param=Value&Pet=dog HTTP/1.1\r\n" +
	"Host: example.com\r\n" +
	"Date: Tue, 20 Apr 2021 02:07:55 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\r\n" +
	"Content-Length: 18\r\n" +
	"\r\n" +
	`{"hello": "world"}`

func readRFCRequest(t *testing.T) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(rfcRequest)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rfcCreated is the created parameter of every example in Appendix B.2.
var rfcCreated = time.Unix(1618884473, 0)

// testSharedSecret is test-shared-secret (RFC 9421 Appendix B.1.5).
func testSharedSecret(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKeyEd25519 is test-key-ed25519 (RFC 9421 Appendix B.1.4).
func testKeyEd25519(t *testing.T) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	const private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n"
	const public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n"
	block, _ := pem.Decode([]byte(private))
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	block, _ = pem.Decode([]byte(public))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return priv.(ed25519.PrivateKey), pub.(ed25519.PublicKey)
}

// TestRFC9421TestVectors reproduces the signature bases and signatures of
// RFC 9421 Appendix B.2.5 (hmac-sha256) and B.2.6 (ed25519) byte for
// byte, and verifies them as the RFC writes them.
func TestRFC9421TestVectors(t *testing.T) {
	priv, pub := testKeyEd25519(t)
	for _, tc := range []struct {
		label      string
		params     httpsig.Params
		signer     *httpsig.Key
		verifier   *httpsig.Key
		base       string
		input, sig string
	}{{
		label: "sig-b25",
		params: httpsig.Params{Components: []string{"date", "@authority", "content-type"},
			Created: rfcCreated, KeyID: "test-shared-secret"},
		signer:   httpsig.HMACKey("test-shared-secret", testSharedSecret(t)),
		verifier: httpsig.HMACKey("test-shared-secret", testSharedSecret(t)),
		base: `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
			`"@authority": example.com` + "\n" +
			`"content-type": application/json` + "\n" +
			`"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
		input: `sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
		sig:   `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`,
	}, {
		label: "sig-b26",
		params: httpsig.Params{Components: []string{"date", "@method", "@path", "@authority", "content-type", "content-length"},
			Created: rfcCreated, KeyID: "test-key-ed25519"},
		signer:   httpsig.Ed25519Key("test-key-ed25519", priv),
		verifier: httpsig.Ed25519PublicKey("test-key-ed25519", pub),
		base: `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
			`"@method": POST` + "\n" +
			`"@path": /foo` + "\n" +
			`"@authority": example.com` + "\n" +
			`"content-type": application/json` + "\n" +
			`"content-length": 18` + "\n" +
			`"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
		input: `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
		sig:   `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`,
	}} {
		t.Run(tc.label, func(t *testing.T) {
			r := readRFCRequest(t)
			base, err := httpsig.Base(r, "", tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if string(base) != tc.base {
				t.Errorf("signature base\n%s\nwant\n%s", base, tc.base)
			}
			if err := httpsig.Sign(r, tc.label, "", tc.params, tc.signer); err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("Signature-Input"); got != tc.input {
				t.Errorf("Signature-Input %s\nwant %s", got, tc.input)
			}
			if got := r.Header.Get("Signature"); got != tc.sig {
				t.Errorf("Signature %s\nwant %s", got, tc.sig)
			}

			// The RFC's own fields verify.
			r = readRFCRequest(t)
			r.Header.Set("Signature-Input", tc.input)
			r.Header.Set("Signature", tc.sig)
			verification := httpsig.Verification{Label: tc.label, Key: func(keyID, alg string) (*httpsig.Key, error) {
				if keyID != tc.verifier.ID {
					return nil, errors.New("unknown key")
				}
				return tc.verifier, nil
			}}
			if _, err := httpsig.Verify(r, verification); err != nil {
				t.Errorf("the RFC's signature does not verify: %v", err)
			}
			r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:56 GMT")
			if _, err := httpsig.Verify(r, verification); err == nil {
				t.Error("a signature verified over a changed date")
			}
		})
	}
}

// The RFC 9530 example: {"hello": "world"} with sha-256.
func TestContentDigest(t *testing.T) {
	body := []byte(`{"hello": "world"}`)
	want := "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
	if got := httpsig.ContentDigest(body); got != want {
		t.Errorf("ContentDigest %s, want %s", got, want)
	}
	if err := httpsig.CheckContentDigest([]string{"sha-512=:AAAA:, " + want}, body); err != nil {
		t.Errorf("a good digest among others: %v", err)
	}
	for _, v := range []string{"", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
		httpsig.ContentDigest([]byte(`{"hello": "World"}`)), "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="} {
		if err := httpsig.CheckContentDigest([]string{v}, body); err == nil {
			t.Errorf("Content-Digest %q accepted", v)
		}
	}
}

// signed is a request the way a gateway sends it: a body, a query, the
// digest and a signature over method, target URI, digest and a header.
func signed(t *testing.T, k *httpsig.Key, now time.Time) *http.Request {
	t.Helper()
	body := `{"amount":"12.34"}`
	r, err := http.NewRequest("POST", "https://bank.example/api/cards/42/freeze?reason=lost&n=1", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Digest", httpsig.ContentDigest([]byte(body)))
	r.Header.Set("Causeway-App-Id", "app_a")
	p := httpsig.Params{Components: []string{"@method", "@target-uri", "content-digest", "causeway-app-id"},
		Created: now, Alg: k.Alg, Tag: "causeway-upstream"}
	if err := httpsig.Sign(r, "causeway", "", p, k); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVerifyRefusesTamperedRequests: the signature of a request verifies,
// and stops verifying when its method, path, query, body, a covered header
// or its signature parameters change.
func TestVerifyRefusesTamperedRequests(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	secret := []byte("a shared secret of thirty-two by")
	k := httpsig.HMACKey("ups_1", secret)
	verification := httpsig.Verification{
		Label:    "causeway",
		Required: []string{"@method", "@target-uri", "content-digest"},
		Tag:      "causeway-upstream",
		MaxAge:   5 * time.Minute,
		Now:      func() time.Time { return now },
		Key: func(keyID, alg string) (*httpsig.Key, error) {
			if keyID != "ups_1" {
				return nil, errors.New("unknown key")
			}
			return k, nil
		},
	}
	if p, err := httpsig.Verify(signed(t, k, now), verification); err != nil || p.KeyID != "ups_1" || p.Alg != "hmac-sha256" {
		t.Fatalf("an untouched request: %+v, %v", p, err)
	}
	r := signed(t, k, now)
	if _, err := httpsig.Verify(r, verification); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"amount":"12.34"}` {
		t.Errorf("the body after Verify: %q", b)
	}

	for name, tamper := range map[string]func(r *http.Request){
		"method":     func(r *http.Request) { r.Method = "PUT" },
		"path":       func(r *http.Request) { r.URL.Path = "/api/cards/43/freeze" },
		"query":      func(r *http.Request) { r.URL.RawQuery = "reason=lost&n=2" },
		"no query":   func(r *http.Request) { r.URL.RawQuery = "" },
		"host":       func(r *http.Request) { r.Host, r.URL.Host = "evil.example", "evil.example" },
		"body":       func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"amount":"99.99"}`)) },
		"empty body": func(r *http.Request) { r.Body = http.NoBody },
		"digest":     func(r *http.Request) { r.Header.Set("Content-Digest", httpsig.ContentDigest([]byte("x"))) },
		"no digest":  func(r *http.Request) { r.Header.Del("Content-Digest") },
		"app":        func(r *http.Request) { r.Header.Set("Causeway-App-Id", "app_b") },
		"signature": func(r *http.Request) {
			r.Header.Set("Signature", "causeway=:"+base64.StdEncoding.EncodeToString(make([]byte, 32))+":")
		},
		"unsigned": func(r *http.Request) { r.Header.Del("Signature"); r.Header.Del("Signature-Input") },
		"other label": func(r *http.Request) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), "causeway=", "other=", 1))
		},
		"created": func(r *http.Request) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), "created=", "created=1", 1))
		},
		"fewer components": func(r *http.Request) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), ` "content-digest"`, "", 1))
		},
	} {
		r := signed(t, k, now)
		tamper(r)
		if _, err := httpsig.Verify(r, verification); err == nil {
			t.Errorf("%s: a tampered request verified", name)
		}
	}

	// Old signatures, other keys and other tags do not verify either.
	if _, err := httpsig.Verify(signed(t, k, now.Add(-6*time.Minute)), verification); err == nil {
		t.Error("a signature older than MaxAge verified")
	}
	if _, err := httpsig.Verify(signed(t, httpsig.HMACKey("ups_1", []byte("another secret")), now), verification); err == nil {
		t.Error("a signature by another secret verified")
	}
	if _, err := httpsig.Verify(signed(t, httpsig.HMACKey("ups_2", secret), now), verification); err == nil {
		t.Error("a signature under an unknown keyid verified")
	}
	other := verification
	other.Tag = "something-else"
	if _, err := httpsig.Verify(signed(t, k, now), other); err == nil {
		t.Error("a signature with another tag verified")
	}
}
