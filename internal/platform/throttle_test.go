package platform_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// Issue 15: the open doors had no brakes. 40 wrong passwords took 1.6 s
// and the right one still worked; sign-ups were unlimited; developer
// routes never met the rate limiter; a developer could create apps (each
// seeding ~400 ledger entries) without end; one app held 104 event
// streams. Each test below is one brake, on both runtimes, with the
// windows judged on a clock the test moves.

// testClock is a settable Config.Testing.ThrottleClock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// retryAfter is a 429's Retry-After, which must be a positive number of
// seconds.
func retryAfter(t *testing.T, res response) time.Duration {
	t.Helper()
	s, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || s < 1 {
		t.Fatalf("429 without a usable Retry-After (%q): %s", res.header.Get("Retry-After"), res.body)
	}
	return time.Duration(s) * time.Second
}

func problemCode(t *testing.T, res response) string {
	t.Helper()
	var p struct{ Code string }
	if json.Unmarshal(res.body, &p) != nil {
		t.Fatalf("not a problem: %d %s", res.status, res.body)
	}
	return p.Code
}

const goodPassword = "correct horse battery staple"

func signUp(t *testing.T, c *client, email string, headers ...string) response {
	t.Helper()
	return c.do("POST", "/v1/developers", "/v1/developers",
		map[string]any{"email": email, "password": goodPassword, "organization": "SolarWorld"}, headers...)
}

func logIn(c *client, email, password string, headers ...string) response {
	c.t.Helper()
	return c.do("POST", "/v1/developers/login", "/v1/developers/login", map[string]any{"email": email, "password": password}, headers...)
}

func TestFailedLoginsPerAccountSlowDownThenStopUntilTheWindowEnds(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		clock := newTestClock()
		cfg.Testing.ThrottleClock = clock.Now
		cfg.LoginFailuresPerAccount = 10
		cfg.LoginWindow = 15 * time.Minute
		n := platformtest.Start(t, cfg)
		doc := openapitest.Fetch(t, n.URL)
		c := &client{t: t, base: n.URL, doc: doc}
		const email = "owner@solarworld.example"
		if res := signUp(t, c, email); res.status != 201 {
			t.Fatalf("sign up: %d %s", res.status, res.body)
		}

		// The finding: 40 wrong passwords at once. Five are checked, the
		// sixth starts the slow-down, every other is refused unchecked.
		failed, refused := 0, 0
		for range 40 {
			switch res := logIn(c, email, "wrong password number x"); res.status {
			case 401:
				failed++
			case 429:
				refused++
				retryAfter(t, res)
				if code := problemCode(t, res); code != "too_many_login_attempts" {
					t.Fatalf("429 code %q", code)
				}
			default:
				t.Fatalf("wrong password: %d %s", res.status, res.body)
			}
		}
		if failed != 6 || refused != 34 {
			t.Fatalf("40 wrong passwords at once: %d checked, %d refused; want 6 and 34", failed, refused)
		}
		// A patient attacker who waits as told gets to the limit, 10, and
		// no further within the window.
		for range 40 {
			res := logIn(c, email, "wrong password number y")
			if res.status == 401 {
				failed++
				continue
			}
			if res.status != 429 {
				t.Fatalf("wrong password: %d %s", res.status, res.body)
			}
			wait := retryAfter(t, res)
			if wait > 5*time.Minute {
				break // the rest of the window
			}
			clock.Advance(wait)
		}
		if failed != 10 {
			t.Fatalf("%d wrong passwords checked in one window, want 10", failed)
		}
		// At the limit the right password is refused too, through the API
		// and through the portal's form: the counters are one.
		if res := logIn(c, email, goodPassword); res.status != 429 {
			t.Fatalf("right password at the limit: %d %s, want 429", res.status, res.body)
		}
		if status, hdr := portalLogIn(t, n, email, goodPassword); status != 429 || hdr.Get("Retry-After") == "" {
			t.Fatalf("portal login at the limit: %d, Retry-After %q; want 429 with one", status, hdr.Get("Retry-After"))
		}

		// The window ends: the owner gets in, and that clears the count.
		clock.Advance(15 * time.Minute)
		if res := logIn(c, email, goodPassword); res.status != 200 {
			t.Fatalf("right password after the window: %d %s", res.status, res.body)
		}
		for i := range 5 {
			if res := logIn(c, email, "a typo after logging in"); res.status != 401 {
				t.Fatalf("failure %d after a successful login: %d %s, want 401", i+1, res.status, res.body)
			}
		}
		if res := logIn(c, email, goodPassword); res.status != 200 {
			t.Fatalf("right password after five typos: %d %s", res.status, res.body)
		}
	})
}

// portalLogIn posts the portal's login form and returns the answer's
// status and headers.
func portalLogIn(t *testing.T, n *platformtest.Node, email, password string) (int, http.Header) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(n.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no form token on /login (%d)", res.StatusCode)
	}
	res, err = hc.PostForm(n.URL+"/login", url.Values{"email": {email}, "password": {password}, "csrf": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

func TestFailedLoginsPerAddressStopCredentialStuffingAndForwardedForIsNotBelieved(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		clock := newTestClock()
		cfg.Testing.ThrottleClock = clock.Now
		cfg.LoginFailuresPerAddress = 4
		n := platformtest.Start(t, cfg)
		c := &client{t: t, base: n.URL, doc: openapitest.Fetch(t, n.URL)}
		if res := signUp(t, c, "real@solarworld.example"); res.status != 201 {
			t.Fatalf("sign up: %d %s", res.status, res.body)
		}
		// One address trying one password on many accounts: two free,
		// then slowed down, and a forged X-Forwarded-For changes nothing
		// (no trusted proxy is configured).
		failed := 0
		for i := range 20 {
			res := logIn(c, fmt.Sprintf("victim%d@example.com", i), "Summer2026!!", "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
			switch res.status {
			case 401:
				failed++
			case 429:
				// Waiting out a slow-down, not the rest of the window.
				if wait := retryAfter(t, res); wait < time.Minute {
					clock.Advance(wait)
				}
			default:
				t.Fatalf("stuffing: %d %s", res.status, res.body)
			}
		}
		if failed != 4 {
			t.Fatalf("%d guesses checked from one address, want 4", failed)
		}
		// A real account's right password from that address waits too.
		if res := logIn(c, "real@solarworld.example", goodPassword); res.status != 429 {
			t.Fatalf("login from a refused address: %d %s, want 429", res.status, res.body)
		}
		clock.Advance(15 * time.Minute)
		if res := logIn(c, "real@solarworld.example", goodPassword); res.status != 200 {
			t.Fatalf("login after the window: %d %s", res.status, res.body)
		}
	})
}

func TestTrustedProxyForwardedForNamesTheClient(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Embedded.Config(t)
	cfg.LoginFailuresPerAddress = 2
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	n := platformtest.Start(t, cfg)
	c := &client{t: t, base: n.URL}
	for i := range 3 {
		// The client puts 203.0.113.9 first; our proxy appends the address
		// it saw. Only the latter counts.
		res := logIn(c, "nobody@example.com", "wrong password here", "X-Forwarded-For", "203.0.113.9, 198.51.100.7")
		if want := map[bool]int{true: 401, false: 429}[i < 2]; res.status != want {
			t.Fatalf("attempt %d from 198.51.100.7: %d %s, want %d", i+1, res.status, res.body, want)
		}
	}
	if res := logIn(c, "other@example.com", "wrong password here", "X-Forwarded-For", "198.51.100.8"); res.status != 401 {
		t.Fatalf("another client behind the proxy: %d %s, want 401", res.status, res.body)
	}
}

func TestSignUpsPerAddressAreLimitedAndEmailTakenCounts(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		clock := newTestClock()
		cfg.Testing.ThrottleClock = clock.Now
		cfg.SignupRate = 3
		n := platformtest.Start(t, cfg)
		c := &client{t: t, base: n.URL, doc: openapitest.Fetch(t, n.URL)}
		for i, want := range []int{201, 201, 409} {
			email := fmt.Sprintf("dev%d@solarworld.example", min(i, 1))
			if res := signUp(t, c, email); res.status != want {
				t.Fatalf("sign-up %d: %d %s, want %d", i+1, res.status, res.body, want)
			}
		}
		// Asking whether an email is taken is a sign-up like any other.
		for _, email := range []string{"dev0@solarworld.example", "new@solarworld.example"} {
			res := signUp(t, c, email, "X-Forwarded-For", "198.51.100.1")
			if res.status != 429 || problemCode(t, res) != "too_many_sign_ups" {
				t.Fatalf("4th sign-up (%s): %d %s, want 429 too_many_sign_ups", email, res.status, res.body)
			}
			retryAfter(t, res)
		}
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if status, _ := formPost(t, hc, n.URL+"/signup", url.Values{"email": {"portal@solarworld.example"},
			"password": {goodPassword}, "organization": {"SolarWorld"}}); status != 429 {
			t.Fatalf("portal sign-up over the limit: %d, want 429", status)
		}
		clock.Advance(time.Hour)
		if res := signUp(t, c, "new@solarworld.example"); res.status != 201 {
			t.Fatalf("sign-up an hour later: %d %s", res.status, res.body)
		}
	})
}

func TestDeveloperRoutesPassTheRateLimiter(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		c := &client{t: t, base: n.URL}
		res := signUp(t, c, "busy@solarworld.example")
		var dev struct{ Token string }
		res.decode(t, &dev)
		c.token = dev.Token
		// The default limits: a burst of 100 at 50/s. A loop on loopback
		// outruns the refill long before 2000 calls.
		for i := range 2000 {
			res := c.do("GET", "/v1/apps", "", nil)
			if res.status == 200 {
				if res.header.Get("RateLimit-Limit") == "" {
					t.Fatalf("call %d: no RateLimit-Limit", i+1)
				}
				continue
			}
			if res.status != 429 || problemCode(t, res) != "rate_limited" {
				t.Fatalf("call %d: %d %s", i+1, res.status, res.body)
			}
			retryAfter(t, res)
			return
		}
		t.Fatal("2000 developer calls at once, none refused")
	})
}

func TestAppsPerDeveloperAreCappedEvenWhenCreatedAtOnce(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		// A small cap: each sandbox app seeds its bank, which is slow on
		// SQLite under -race; the rule is the same at the default 20.
		const maxApps = 3
		cfg.MaxAppsPerDeveloper = maxApps
		n := platformtest.Start(t, cfg)
		c := &client{t: t, base: n.URL, doc: openapitest.Fetch(t, n.URL)}
		res := signUp(t, c, "many@solarworld.example")
		var dev struct{ Token string }
		res.decode(t, &dev)
		c.token = dev.Token
		create := func(i int) any {
			return map[string]any{"name": fmt.Sprintf("app %d", i), "scopes": []string{"accounts:read"}}
		}
		var first string
		for i := range maxApps - 1 {
			res := c.do("POST", "/v1/apps", "/v1/apps", create(i))
			if res.status != 201 {
				t.Fatalf("app %d: %d %s", i+1, res.status, res.body)
			}
			if i == 0 {
				var app struct{ ID string }
				res.decode(t, &app)
				first = app.ID
			}
		}
		// Ten creations at once for the last place: one wins.
		oneWinner(t, race(t, "POST", n.URL+"/v1/apps", dev.Token, create), 201, "too_many_apps")
		res = c.do("POST", "/v1/apps", "/v1/apps", create(maxApps+1))
		if res.status != 409 || problemCode(t, res) != "too_many_apps" {
			t.Fatalf("app %d: %d %s, want 409 too_many_apps", maxApps+1, res.status, res.body)
		}
		// Deleting does not make room at once: delete-and-create would
		// seed sandbox data without end.
		if res := c.do("DELETE", "/v1/apps/"+first, "/v1/apps/{id}", nil); res.status != 204 {
			t.Fatalf("delete: %d %s", res.status, res.body)
		}
		if res := c.do("POST", "/v1/apps", "/v1/apps", create(maxApps+2)); res.status != 409 {
			t.Fatalf("app right after a delete: %d %s, want 409", res.status, res.body)
		}
		if got := countRows(t, n, "SELECT COUNT(*) FROM identity_apps WHERE developer_id = (SELECT id FROM identity_developers WHERE email = $1)",
			"many@solarworld.example"); got != maxApps {
			t.Errorf("%d apps stored, want %d", got, maxApps)
		}
	})
}

// stream opens GET /v1/events/stream on base and returns its status and
// problem; a 200 stream stays open until ctx ends.
func stream(t *testing.T, ctx context.Context, base, token string) response {
	t.Helper()
	res, _ := openSSE(t, ctx, base, "", http.Header{"Authorization": {"Bearer " + token}})
	return res
}

// eventually retries open until it answers 200, for up to 30 s: a closed
// stream's slot is given back once the server notices the client left.
func eventually(t *testing.T, what string, open func() response) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := open()
		if res.status == 200 {
			return
		}
		if res.status != 429 || time.Now().After(deadline) {
			t.Fatalf("%s: %d %s", what, res.status, res.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEventStreamsPerAppAreCapped(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		cfg.MaxStreamsPerApp = 10 // the default
		n := platformtest.Start(t, cfg)
		app, _ := developerApp(t, n, openapitest.Fetch(t, n.URL), "streams@solarworld.example")
		cancels := make([]context.CancelFunc, 0, 10)
		for i := range 10 {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			cancels = append(cancels, cancel)
			if res := stream(t, ctx, n.URL, app.token); res.status != 200 {
				t.Fatalf("stream %d: %d %s", i+1, res.status, res.body)
			}
		}
		// Should it be served after all, the test's end closes it, so the
		// server's shutdown does not wait on it.
		over, cancelOver := context.WithCancel(context.Background())
		t.Cleanup(cancelOver)
		res := stream(t, over, n.URL, app.token)
		if res.status != 429 || problemCode(t, res) != "too_many_streams" {
			t.Fatalf("11th stream: %d %s, want 429 too_many_streams", res.status, res.body)
		}
		retryAfter(t, res)
		// Another app is not affected.
		other, _ := developerApp(t, n, nil, "other-streams@solarworld.example")
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if res := stream(t, ctx, n.URL, other.token); res.status != 200 {
			t.Fatalf("another app's stream: %d %s", res.status, res.body)
		}
		cancels[0]()
		eventually(t, "a stream after one closed", func() response { return stream(t, ctx, n.URL, app.token) })
		if res := stream(t, ctx, n.URL, app.token); res.status != 429 {
			t.Fatalf("12th stream with ten open: %d %s, want 429", res.status, res.body)
		}
	})
}

func TestEventStreamCapHoldsAcrossTwoNodes(t *testing.T) {
	t.Parallel()
	cfg := platformtest.ScaleOut.Config(t)
	cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	cfg.MaxStreamsPerApp = 10
	cfg.SignupRate = 3
	// One issuer for both, as a scaled-out installation has: a token of
	// one node is good on the other.
	cfg.PublicURL = "http://causeway.nodes.test"
	a := platformtest.Start(t, cfg)
	second := cfg
	second.DataDir = testkit.DataDir(t)
	b := platformtest.Start(t, second)
	app, _ := developerApp(t, a, nil, "two-nodes@solarworld.example")
	var onB []context.CancelFunc
	for i := range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		node := a
		if i%2 == 1 {
			node, onB = b, append(onB, cancel)
		}
		if res := stream(t, ctx, node.URL, app.token); res.status != 200 {
			t.Fatalf("stream %d: %d %s", i+1, res.status, res.body)
		}
	}
	over, cancelOver := context.WithCancel(context.Background())
	t.Cleanup(cancelOver)
	for _, node := range []*platformtest.Node{a, b} {
		if res := stream(t, over, node.URL, app.token); res.status != 429 {
			t.Fatalf("11th stream: %d %s, want 429", res.status, res.body)
		}
	}
	onB[0]()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	eventually(t, "a stream on a after one closed on b", func() response { return stream(t, ctx, a.URL, app.token) })

	// Sign-ups are counted once for both nodes too.
	c := []*client{{t: t, base: a.URL}, {t: t, base: b.URL}}
	if res := signUp(t, c[1], "second@solarworld.example"); res.status != 201 { // the 2nd: developerApp made the 1st
		t.Fatalf("2nd sign-up: %d %s", res.status, res.body)
	}
	if res := signUp(t, c[0], "third@solarworld.example"); res.status != 201 {
		t.Fatalf("3rd sign-up: %d %s", res.status, res.body)
	}
	if res := signUp(t, c[1], "fourth@solarworld.example"); res.status != 429 {
		t.Fatalf("4th sign-up on the other node: %d %s, want 429", res.status, res.body)
	}
}
