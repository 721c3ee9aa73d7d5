package gateway_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/httpsig"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// bankAPI is an upstream API of the bank; it keeps the last request it got.
type bankAPI struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
	body string
}

func newBankAPI(t *testing.T) *bankAPI {
	b := &bankAPI{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last, b.body = r, string(body)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("RateLimit-Remaining", "999") // must not reach the app
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"upstream":"cards","path":%q}`, r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *bankAPI) lastRequest() (*http.Request, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.body
}

type createdUpstream struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	BaseURL       string `json:"base_url"`
	PathPrefix    string `json:"path_prefix"`
	Scope         string `json:"scope"`
	SigningSecret string `json:"signing_secret"`
}

func (e *env) createUpstream(t *testing.T, name, baseURL, prefix, scope string) createdUpstream {
	t.Helper()
	res := e.admin("POST", "/bank/v1/upstreams",
		fmt.Sprintf(`{"name":%q,"base_url":%q,"path_prefix":%q,"scope":%q}`, name, baseURL, prefix, scope))
	if res.status != 201 {
		t.Fatalf("create upstream: %d %s", res.status, res.body)
	}
	var up createdUpstream
	res.json(t, &up)
	return up
}

// verification is how an upstream checks the gateway's signature, from
// the documented recipe: the label, the tag, the components, the keyid (its
// own id) and the key (the bytes of its whsec_ secret).
func verification(t *testing.T, up createdUpstream, now time.Time) httpsig.Verification {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(up.SigningSecret, "whsec_"))
	if err != nil || !strings.HasPrefix(up.SigningSecret, "whsec_") || len(key) < 24 {
		t.Fatalf("signing secret %q is not whsec_<base64>", up.SigningSecret)
	}
	return httpsig.Verification{
		Label:    "causeway",
		Tag:      "causeway-upstream",
		Required: []string{"@method", "@target-uri", "content-digest", "causeway-app-id"},
		MaxAge:   5 * time.Minute,
		Now:      func() time.Time { return now },
		Key: func(keyID, alg string) (*httpsig.Key, error) {
			if keyID != up.ID || alg != "hmac-sha256" {
				return nil, fmt.Errorf("unknown key %q (%s)", keyID, alg)
			}
			return httpsig.HMACKey(up.ID, key), nil
		},
	}
}

// received is the request the upstream got, with its body to read again.
func received(r *http.Request, body string) *http.Request {
	r = r.Clone(context.Background())
	r.Body = io.NopCloser(strings.NewReader(body))
	return r
}

// verifySignature checks the gateway's signature on the last request the
// bank API got, the way an upstream would.
func verifySignature(t *testing.T, e *env, up createdUpstream, b *bankAPI) {
	t.Helper()
	r, body := b.lastRequest()
	if r == nil {
		t.Fatal("the upstream got no request")
	}
	if _, err := httpsig.Verify(received(r, body), verification(t, up, e.clock.Now())); err != nil {
		t.Errorf("the signature of %s %s does not verify: %v\nSignature-Input: %s", r.Method, r.RequestURI, err, r.Header.Get("Signature-Input"))
	}
}

func TestUpstreamProxyForwardsSignedRequestsWithoutTheAppsCredentials(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		bank := newBankAPI(t)
		up := e.createUpstream(t, "Card controls", bank.URL+"/api/", "cards", "accounts:read")
		if up.BaseURL != bank.URL+"/api" || up.PathPrefix != "cards" || !strings.HasPrefix(up.ID, "ups_") {
			t.Errorf("created %+v", up)
		}

		res := e.do("POST", "/v1/ext/cards/cards/42/freeze?reason=lost", tokenA, `{"until":"2026-04-01"}`,
			"Cookie", "session=app-secret", "Causeway-App-Id", "app_c", "X-Custom", "kept")
		if res.status != 202 || !strings.Contains(string(res.body), `"path":"/api/cards/42/freeze"`) {
			t.Fatalf("proxied call: %d %s", res.status, res.body)
		}
		if got := res.header.Values("RateLimit-Remaining"); len(got) != 1 || got[0] == "999" {
			t.Errorf("RateLimit-Remaining %q: the gateway's value must win", got)
		}
		r, body := bank.lastRequest()
		if r.URL.Path != "/api/cards/42/freeze" || r.URL.RawQuery != "reason=lost" || body != `{"until":"2026-04-01"}` {
			t.Errorf("upstream got %s %s?%s %q", r.Method, r.URL.Path, r.URL.RawQuery, body)
		}
		for _, h := range []string{"Authorization", "Cookie"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("the upstream received %s: %q", h, v)
			}
		}
		if r.Header.Get("Causeway-App-Id") != "app_a" {
			t.Errorf("Causeway-App-Id %q, want the authenticated app", r.Header.Get("Causeway-App-Id"))
		}
		if r.Header.Get("X-Custom") != "kept" || r.Header.Get("X-Request-Id") == "" {
			t.Errorf("headers lost: X-Custom %q X-Request-Id %q", r.Header.Get("X-Custom"), r.Header.Get("X-Request-Id"))
		}
		if r.Header.Get("Causeway-Timestamp") != "" || r.Header.Get("Causeway-Signature") != "" {
			t.Errorf("the old signature headers are still sent: %v", r.Header)
		}
		wantInput := fmt.Sprintf(`causeway=("@method" "@target-uri" "content-digest" "causeway-app-id");created=%d;keyid=%q;alg="hmac-sha256";tag="causeway-upstream"`,
			e.clock.Now().Unix(), up.ID)
		if got := r.Header.Get("Signature-Input"); got != wantInput {
			t.Errorf("Signature-Input %s\nwant %s", got, wantInput)
		}
		if got, want := r.Header.Get("Content-Digest"), httpsig.ContentDigest([]byte(`{"until":"2026-04-01"}`)); got != want {
			t.Errorf("Content-Digest %q, want %q", got, want)
		}
		verifySignature(t, e, up, bank)

		// Escaped segments other than dots and slashes reach the upstream
		// as sent; a call without a body is signed too.
		e.do("GET", "/v1/ext/cards/a%20b/c%3Fd?x=1", tokenA, "")
		r, _ = bank.lastRequest()
		if r.URL.EscapedPath() != "/api/a%20b/c%3Fd" || r.Method != "GET" {
			t.Errorf("escaped path %q", r.URL.EscapedPath())
		}
		verifySignature(t, e, up, bank)
	})
}

func TestUpstreamProxyEnforcesTheUpstreamsScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		bank := newBankAPI(t)
		e.createUpstream(t, "Payouts", bank.URL, "payouts", "payments:write")
		p := e.do("GET", "/v1/ext/payouts/x", tokenARead, "").problem(t, 403, "insufficient_scope")
		if !strings.Contains(p.Detail, "payments:write") {
			t.Errorf("detail %q does not name the scope", p.Detail)
		}
		if r, _ := bank.lastRequest(); r != nil {
			t.Error("the upstream was called without the scope")
		}
		e.do("GET", "/v1/ext/payouts/x", "", "").problem(t, 401, "unauthorized")
		e.do("GET", "/v1/ext/nothing-here/x", tokenA, "").problem(t, 404, "upstream_not_found")
		if res := e.do("GET", "/v1/ext/payouts/x", tokenA, ""); res.status != 202 {
			t.Errorf("with the scope: %d %s", res.status, res.body)
		}
	})
}

func TestUnreachableUpstreamIsABadGatewayProblem(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		e.createUpstream(t, "Gone", dead.URL, "gone", "accounts:read")
		e.do("GET", "/v1/ext/gone/x", tokenA, "").problem(t, 502, "upstream_unavailable")
		// A 502 is not stored under an idempotency key: the retry goes out again.
		e.do("POST", "/v1/ext/gone/x", tokenA, `{}`, "Idempotency-Key", "k").problem(t, 502, "upstream_unavailable")
		e.do("POST", "/v1/ext/gone/x", tokenA, `{}`, "Idempotency-Key", "k").problem(t, 502, "upstream_unavailable")

		// Proxied calls count in the analytics like any other.
		e.flush()
		var a analyticsBody
		e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "").json(t, &a)
		if len(a.Routes) != 1 || a.Routes[0].Route != "/v1/ext/{prefix}/{path...}" || a.Routes[0].ServerErrors != 3 {
			t.Errorf("routes %+v", a.Routes)
		}
	})
}

func TestSlowUpstreamIsAGatewayTimeoutProblem(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnvWith(t, db, func(o *gateway.Options) { o.UpstreamTimeout = 200 * time.Millisecond })
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		t.Cleanup(slow.Close)
		e.createUpstream(t, "Slow", slow.URL, "slow", "accounts:read")
		start := time.Now()
		e.do("GET", "/v1/ext/slow/x", tokenA, "").problem(t, 504, "upstream_timeout")
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the timeout took %v", d)
		}
	})
}

func TestProxiedCallsAreRateLimited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		bank := newBankAPI(t)
		e.createUpstream(t, "Cards", bank.URL, "cards", "accounts:read")
		e.admin("PUT", "/bank/v1/apps/app_a/limits", `{"requests_per_second":0.001,"burst":2,"daily_quota":100}`)
		var statuses []int
		for range 4 {
			statuses = append(statuses, e.do("GET", "/v1/ext/cards/x", tokenA, "").status)
		}
		if fmt.Sprint(statuses) != "[202 202 429 429]" {
			t.Errorf("statuses %v", statuses)
		}
	})
}

func TestUpstreamsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		bank := newBankAPI(t)
		up := e.createUpstream(t, "Cards", bank.URL, "cards", "accounts:read")
		e.createUpstream(t, "Loans", "https://loans.bank.internal/v2", "loans", "loans:write")

		for _, body := range []string{
			`{"name":"x","base_url":"ftp://bank/x","path_prefix":"x","scope":"accounts:read"}`,
			`{"name":"x","base_url":"https://u:p@bank/x","path_prefix":"x","scope":"accounts:read"}`,
			`{"name":"x","base_url":"/relative","path_prefix":"x","scope":"accounts:read"}`,
			`{"name":"x","base_url":"https://bank/x","path_prefix":"Not A Slug","scope":"accounts:read"}`,
			`{"name":"x","base_url":"https://bank/x","path_prefix":"x/y","scope":"accounts:read"}`,
			`{"name":"x","base_url":"https://bank/x","path_prefix":"x","scope":"admin"}`,
			`{"name":"","base_url":"https://bank/x","path_prefix":"x","scope":"accounts:read"}`,
		} {
			if res := e.admin("POST", "/bank/v1/upstreams", body); res.status != 422 {
				t.Errorf("%s: %d %s", body, res.status, res.body)
			}
		}
		e.admin("POST", "/bank/v1/upstreams", `{"name":"again","base_url":"https://bank/x","path_prefix":"cards","scope":"accounts:read"}`).
			problem(t, 409, "upstream_prefix_taken")

		var page struct {
			Data       []map[string]any `json:"data"`
			NextCursor string           `json:"next_cursor"`
		}
		res := e.admin("GET", "/bank/v1/upstreams?limit=1", "")
		res.json(t, &page)
		if res.status != 200 || len(page.Data) != 1 || page.Data[0]["path_prefix"] != "cards" || page.NextCursor == "" {
			t.Fatalf("first page: %d %s", res.status, res.body)
		}
		if _, ok := page.Data[0]["signing_secret"]; ok {
			t.Error("the list shows the signing secret")
		}
		e.admin("GET", "/bank/v1/upstreams?limit=1&cursor="+page.NextCursor, "").json(t, &page)
		if len(page.Data) != 1 || page.Data[0]["path_prefix"] != "loans" || page.NextCursor != "" {
			t.Errorf("second page: %+v", page)
		}
		e.admin("GET", "/bank/v1/upstreams?cursor=garbage!", "").problem(t, 400, "invalid_cursor")

		if res := e.admin("DELETE", "/bank/v1/upstreams/"+up.ID, ""); res.status != 204 {
			t.Fatalf("delete: %d %s", res.status, res.body)
		}
		e.admin("DELETE", "/bank/v1/upstreams/"+up.ID, "").problem(t, 404, "upstream_not_found")
		e.do("GET", "/v1/ext/cards/x", tokenA, "").problem(t, 404, "upstream_not_found")
		e.do("POST", "/bank/v1/upstreams", tokenA, `{}`).problem(t, 401, "unauthorized")
	})
}

func TestUpstreamProxyCopiesLargeAnswersWholeUnderConcurrentCalls(t *testing.T) {
	// The proxies copy answers through pooled buffers: concurrent calls
	// must each get their own answer whole, never a piece of another's.
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		answer := func(n int) string { return strings.Repeat(fmt.Sprintf("answer %03d;", n), 4000+97*n) } // 44 KB and more
		bank := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/answers/"))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, answer(n))
		}))
		defer bank.Close()
		e.createUpstream(t, "Statements", bank.URL, "statements", "accounts:read")

		const callers, calls = 8, 4
		errs := make(chan error, callers*calls)
		var wg sync.WaitGroup
		for c := range callers {
			wg.Go(func() {
				client := &http.Client{Timeout: 20 * time.Second}
				for i := range calls {
					n := c*calls + i
					req, _ := http.NewRequest("GET", e.srv.URL+"/v1/ext/statements/answers/"+strconv.Itoa(n), nil)
					req.Header.Set("Authorization", "Bearer "+tokenA)
					res, err := client.Do(req)
					if err != nil {
						errs <- err
						continue
					}
					body, err := io.ReadAll(res.Body)
					res.Body.Close()
					if err != nil || res.StatusCode != 200 || string(body) != answer(n) {
						errs <- fmt.Errorf("call %d: %d, %d bytes (want %d), %v", n, res.StatusCode, len(body), len(answer(n)), err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
