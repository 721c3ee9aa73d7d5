package portal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/portal"
	"github.com/causewayhq/causeway/internal/testkit"
)

// clock is a test clock the nodes' sessions expire by; a test moves it
// instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stoppableNode starts a node that the test can stop before it ends, to
// start another on the same data dir and database.
func stoppableNode(t *testing.T, cfg platform.Config) (*platformtest.Node, func()) {
	t.Helper()
	p, err := platform.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Close()
			p.Close()
		})
	}
	t.Cleanup(stop)
	return &platformtest.Node{Platform: p, URL: srv.URL, Config: cfg}, stop
}

// browserless is a client without a cookie jar that does not follow
// redirects: the tests hand it the cookies they captured, as an attacker
// replaying one would.
var browserless = &http.Client{Timeout: 20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func send(t *testing.T, method, target string, form url.Values, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		if c != nil {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	res, err := browserless.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func cookieNamed(t *testing.T, res *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == name && c.Value != "" {
			return c
		}
	}
	t.Fatalf("%s %s answered %d without a %s cookie", res.Request.Method, res.Request.URL.Path, res.StatusCode, name)
	return nil
}

func formToken(t *testing.T, body string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the page has no form token")
	}
	return m[1]
}

// consoleLogInAs posts the console's login form with an admin token and
// returns the session cookie.
func consoleLogInAs(t *testing.T, base, token string) *http.Cookie {
	t.Helper()
	res, body := send(t, "GET", base+"/console/login", nil)
	pre := cookieNamed(t, res, "cw_pre")
	res, _ = send(t, "POST", base+"/console/login", url.Values{"csrf": {formToken(t, body)}, "token": {token}}, pre)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("console login answered %d", res.StatusCode)
	}
	return cookieNamed(t, res, "cw_console")
}

// consoleOpens reports whether the cookie opens the console, or is sent to
// its login page.
func consoleOpens(t *testing.T, base string, c *http.Cookie) bool {
	t.Helper()
	res, _ := send(t, "GET", base+"/console", nil, c)
	switch {
	case res.StatusCode == http.StatusOK:
		return true
	case res.StatusCode == http.StatusSeeOther && res.Header.Get("Location") == "/console/login":
		return false
	}
	t.Fatalf("GET /console answered %d (Location %q)", res.StatusCode, res.Header.Get("Location"))
	return false
}

func consoleLogOut(t *testing.T, base string, c *http.Cookie) {
	t.Helper()
	_, body := send(t, "GET", base+"/console", nil, c)
	res, _ := send(t, "POST", base+"/console/logout", url.Values{"csrf": {formToken(t, body)}}, c)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login?done=logged-out" {
		t.Fatalf("console logout answered %d (Location %q)", res.StatusCode, res.Header.Get("Location"))
	}
}

// developerSignUp signs a developer up through the portal's form and
// returns the session cookie.
func developerSignUp(t *testing.T, base, email string) *http.Cookie {
	t.Helper()
	res, body := send(t, "GET", base+"/signup", nil)
	pre := cookieNamed(t, res, "cw_pre")
	res, _ = send(t, "POST", base+"/signup", url.Values{"csrf": {formToken(t, body)}, "email": {email},
		"organization": {"Sessions"}, "password": {"a long enough password"}}, pre)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up answered %d", res.StatusCode)
	}
	return cookieNamed(t, res, "cw_session")
}

func developerLogIn(t *testing.T, base, email string) *http.Cookie {
	t.Helper()
	res, body := send(t, "GET", base+"/login", nil)
	pre := cookieNamed(t, res, "cw_pre")
	res, _ = send(t, "POST", base+"/login", url.Values{"csrf": {formToken(t, body)}, "email": {email},
		"password": {"a long enough password"}}, pre)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login answered %d", res.StatusCode)
	}
	return cookieNamed(t, res, "cw_session")
}

// portalOpens reports whether the cookie opens the developer's apps page,
// or is sent to the login page.
func portalOpens(t *testing.T, base string, c *http.Cookie) bool {
	t.Helper()
	res, _ := send(t, "GET", base+"/apps", nil, c)
	switch {
	case res.StatusCode == http.StatusOK:
		return true
	case res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/login"):
		return false
	}
	t.Fatalf("GET /apps answered %d (Location %q)", res.StatusCode, res.Header.Get("Location"))
	return false
}

// sessionRows returns every text column of every stored session.
func sessionRows(t *testing.T, n *platformtest.Node) [][]string {
	t.Helper()
	rows, err := n.DB.QueryContext(context.Background(),
		`SELECT id_hash, kind, developer_id, admin_token, created_at, last_seen_at, expires_at FROM portal_sessions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		var hash, kind, dev, admin string
		var created, seen, expires int64
		if err := rows.Scan(&hash, &kind, &dev, &admin, &created, &seen, &expires); err != nil {
			t.Fatal(err)
		}
		out = append(out, []string{hash, kind, dev, admin})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// storedSession returns the row of the session a cookie holds, checking
// that the table keeps its hash and nowhere the cookie's value or the
// admin token.
func storedSession(t *testing.T, n *platformtest.Node, c *http.Cookie) []string {
	t.Helper()
	sum := sha256.Sum256([]byte(c.Value))
	var found []string
	for _, row := range sessionRows(t, n) {
		for _, col := range row {
			if strings.Contains(col, c.Value) || strings.Contains(col, platformtest.AdminToken) {
				t.Fatalf("the sessions table holds a secret in the clear: %q", row)
			}
		}
		if row[0] == hex.EncodeToString(sum[:]) {
			found = row
		}
	}
	return found
}

func lastSeen(t *testing.T, n *platformtest.Node, c *http.Cookie) int64 {
	t.Helper()
	sum := sha256.Sum256([]byte(c.Value))
	var seen int64
	if err := n.DB.QueryRowContext(context.Background(), `SELECT last_seen_at FROM portal_sessions WHERE id_hash = $1`,
		hex.EncodeToString(sum[:])).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	return seen
}

// TestConsoleCookieReplayedAfterLogoutIsRefused: the console session
// lives in the database, which keeps only its hash; a logout ends it on
// every node at once, so a captured cookie replayed afterwards, on the
// same node, on another node of the same database, or on a node started
// later, opens nothing.
func TestConsoleCookieReplayedAfterLogoutIsRefused(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		// Nodes of one installation share the secret key.
		cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
		a, stopA := stoppableNode(t, cfg)
		var b *platformtest.Node
		if rt.Name == platformtest.ScaleOut.Name {
			second := cfg
			second.DataDir = testkit.DataDir(t)
			b = platformtest.Start(t, second)
		}
		c := consoleLogInAs(t, a.URL, platformtest.AdminToken)
		if row := storedSession(t, a, c); row == nil || row[1] != "console" {
			t.Fatalf("the console session is not in the database by its hash: %q", sessionRows(t, a))
		}
		if !consoleOpens(t, a.URL, c) {
			t.Fatal("the cookie does not open the console")
		}
		if b != nil && !consoleOpens(t, b.URL, c) {
			t.Fatal("the cookie does not open the console on the other node")
		}

		consoleLogOut(t, a.URL, c)
		if consoleOpens(t, a.URL, c) {
			t.Error("the cookie replayed after logout opens the console")
		}
		if b != nil && consoleOpens(t, b.URL, c) {
			t.Error("the cookie replayed after logout opens the console on the other node")
		}
		if row := storedSession(t, a, c); row != nil {
			t.Errorf("the session is still stored after logout: %q", row)
		}
		stopA()
		fresh := platformtest.Start(t, cfg)
		if consoleOpens(t, fresh.URL, c) {
			t.Error("the cookie replayed after logout opens the console of a node started later")
		}
	})
}

// TestConsoleSessionEndsAfterIdleTimeout: each use slides the idle expiry
// (written at most once a minute), and 30 minutes without one end the
// session.
func TestConsoleSessionEndsAfterIdleTimeout(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		clk := newClock()
		cfg := rt.Config(t)
		cfg.Testing.PortalClock = clk.Now
		n := platformtest.Start(t, cfg)
		c := consoleLogInAs(t, n.URL, platformtest.AdminToken)

		// Within a minute of the last write, a use writes nothing.
		seen := lastSeen(t, n, c)
		clk.Advance(30 * time.Second)
		if !consoleOpens(t, n.URL, c) {
			t.Fatal("the session ended after 30 s")
		}
		if got := lastSeen(t, n, c); got != seen {
			t.Errorf("a use within a minute wrote the session (last seen %d, was %d)", got, seen)
		}
		// Uses 20 minutes apart keep it open well past 30 minutes.
		for range 3 {
			clk.Advance(20 * time.Minute)
			if !consoleOpens(t, n.URL, c) {
				t.Fatal("the session ended although it was used every 20 minutes")
			}
		}
		if lastSeen(t, n, c) == seen {
			t.Error("using the session did not slide its idle expiry")
		}
		clk.Advance(30*time.Minute + time.Second)
		if consoleOpens(t, n.URL, c) {
			t.Error("the session opens the console after 30 minutes idle")
		}
		if row := storedSession(t, n, c); row != nil {
			t.Errorf("the idle session is still stored: %q", row)
		}
	})
}

// TestConsoleSessionEndsAfterItsLifetimeEvenWhenActive: however often it
// is used, a console session ends 8 hours after the login; and the
// retention job deletes sessions that ended without a request.
func TestConsoleSessionEndsAfterItsLifetimeEvenWhenActive(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		clk := newClock()
		cfg := rt.Config(t)
		cfg.Testing.PortalClock = clk.Now
		n := platformtest.Start(t, cfg)
		login := clk.Now()
		c := consoleLogInAs(t, n.URL, platformtest.AdminToken)
		idle := consoleLogInAs(t, n.URL, platformtest.AdminToken)
		for clk.Now().Add(20 * time.Minute).Before(login.Add(portal.ConsoleSessions.Lifetime)) {
			clk.Advance(20 * time.Minute)
			if !consoleOpens(t, n.URL, c) {
				t.Fatalf("the session ended %s after login although used every 20 minutes", clk.Now().Sub(login))
			}
		}
		clk.Advance(login.Add(portal.ConsoleSessions.Lifetime).Sub(clk.Now()))
		if consoleOpens(t, n.URL, c) {
			t.Error("an active session opens the console 8 hours after login")
		}
		// The session nobody used since the login is still in the table
		// until the retention job's pruning.
		if storedSession(t, n, idle) == nil {
			t.Fatal("the idle session is gone before pruning")
		}
		if _, err := portal.PruneSessions(context.Background(), n.DB, clk.Now()); err != nil {
			t.Fatal(err)
		}
		if rows := sessionRows(t, n); len(rows) != 0 {
			t.Errorf("after pruning the table still holds %d ended sessions", len(rows))
		}
	})
}

// TestConsoleSessionEndsWhenARotationDropsItsAdminToken: a console
// session records (a fingerprint of) the admin token it logged in with
// and lasts while that token is accepted: through a rotation's NEW,OLD
// phase, not after OLD is dropped.
func TestConsoleSessionEndsWhenARotationDropsItsAdminToken(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		const oldToken, newToken = "cwadm_old-admin-token", "cwadm_new-admin-token"
		cfg := rt.Config(t)
		cfg.AdminToken = oldToken
		n, stop := stoppableNode(t, cfg)
		withOld := consoleLogInAs(t, n.URL, oldToken)
		stop()

		cfg.AdminToken = newToken + "," + oldToken
		n, stop = stoppableNode(t, cfg)
		if !consoleOpens(t, n.URL, withOld) {
			t.Fatal("a session of the old token ended while the old token is still accepted")
		}
		withNew := consoleLogInAs(t, n.URL, newToken)
		stop()

		cfg.AdminToken = newToken
		n, _ = stoppableNode(t, cfg)
		if consoleOpens(t, n.URL, withOld) {
			t.Error("a session of the dropped admin token opens the console")
		}
		if !consoleOpens(t, n.URL, withNew) {
			t.Error("a session of the new admin token ended with the rotation")
		}
		for _, row := range sessionRows(t, n) {
			for _, col := range row {
				if strings.Contains(col, oldToken) || strings.Contains(col, newToken) {
					t.Fatalf("the sessions table holds an admin token: %q", row)
				}
			}
		}
	})
}

// TestDeveloperPortalCookieIsNotTheAPIToken: the portal's cookie is a
// session of its own (Secure behind an https public URL), not a developer
// token: it is no Bearer token on /v1, logging in through the portal
// issues no API token at all, and a logout ends the session at once.
func TestDeveloperPortalCookieIsNotTheAPIToken(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		cfg.PublicURL = "https://api.bank.example"
		n := platformtest.Start(t, cfg)
		const email = "cookie@sessions.example"
		c := developerSignUp(t, n.URL, email)
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Errorf("session cookie flags = %+v", c)
		}
		if !portalOpens(t, n.URL, c) {
			t.Fatal("the session cookie does not open the portal")
		}
		if row := storedSession(t, n, c); row == nil || row[1] != "developer" || row[2] == "" {
			t.Fatalf("the developer session is not in the database by its hash: %q", sessionRows(t, n))
		}
		if code := api(t, "GET", n.URL+"/v1/apps", c.Value, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("the portal cookie as a Bearer token on /v1 answered %d, want 401", code)
		}
		var tokens int
		if err := n.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM identity_developer_tokens t
			JOIN identity_developers d ON d.id = t.developer_id WHERE d.email = $1`, email).Scan(&tokens); err != nil {
			t.Fatal(err)
		}
		if tokens != 0 {
			t.Errorf("signing up through the portal issued %d developer tokens", tokens)
		}
		// The reference's try-it form still calls developer operations:
		// with a token made for the one call and revoked after it.
		_, body := send(t, "GET", n.URL+"/apps", nil, c)
		_, body = send(t, "POST", n.URL+"/reference/try", url.Values{"csrf": {formToken(t, body)}, "op": {"list-apps"}}, c)
		if !strings.Contains(body, `id="try-status">200 OK<`) {
			t.Errorf("trying list-apps from the reference did not answer 200 OK:\n%s", body)
		}
		if err := n.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM identity_developer_tokens t
			JOIN identity_developers d ON d.id = t.developer_id WHERE d.email = $1 AND t.revoked_at IS NULL`, email).Scan(&tokens); err != nil {
			t.Fatal(err)
		}
		if tokens != 0 {
			t.Errorf("after trying an operation, %d developer tokens are still valid", tokens)
		}

		// Logging out ends the session; the copy opens nothing.
		_, body = send(t, "GET", n.URL+"/apps", nil, c)
		res, _ := send(t, "POST", n.URL+"/logout", url.Values{"csrf": {formToken(t, body)}}, c)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout answered %d", res.StatusCode)
		}
		if portalOpens(t, n.URL, c) {
			t.Error("the cookie replayed after logout opens the portal")
		}
		if row := storedSession(t, n, c); row != nil {
			t.Errorf("the session is still stored after logout: %q", row)
		}
		// Logging in again gives a new session, not the old one back.
		again := developerLogIn(t, n.URL, email)
		if again.Value == c.Value || !portalOpens(t, n.URL, again) || portalOpens(t, n.URL, c) {
			t.Error("logging in again did not give a new, working session")
		}
	})
}

// TestDeveloperSessionEndsAfterIdleTimeout: developer sessions expire the
// same way, by their own policy.
func TestDeveloperSessionEndsAfterIdleTimeout(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		clk := newClock()
		cfg := rt.Config(t)
		cfg.Testing.PortalClock = clk.Now
		n := platformtest.Start(t, cfg)
		c := developerSignUp(t, n.URL, "idle@sessions.example")
		clk.Advance(portal.DeveloperSessions.Idle - time.Minute)
		if !portalOpens(t, n.URL, c) {
			t.Fatal("the session ended before its idle timeout")
		}
		clk.Advance(portal.DeveloperSessions.Idle)
		if portalOpens(t, n.URL, c) {
			t.Error("the session opens the portal after its idle timeout")
		}
	})
}
