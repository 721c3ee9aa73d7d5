package sso

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// TestLoginMapsProviderGroupsToRoles walks whole logins in a browser
// (cookie jar, redirects followed): the console's start page, the
// provider's authorize endpoint and login page, the callback, Finish. The
// groups claim maps to roles (a role's own name, RoleMap, nothing for
// unknown values), from the ID token or, when only the userinfo endpoint
// sends it, from there; the console asked with PKCE S256 and the standard
// scopes; the login in flight was kept as hashes only and is gone after.
func TestLoginMapsProviderGroupsToRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()

		b := e.browser()
		cb := b.toCallback()
		key := b.key()
		state := cb.Query().Get("state")
		var stateHash, browserHash, nonce string
		if err := db.QueryRowContext(ctx, `SELECT state_hash, browser_hash, nonce FROM sso_logins`).Scan(&stateHash, &browserHash, &nonce); err != nil {
			t.Fatal(err)
		}
		if stateHash != hash(state) || browserHash != hash(key) {
			t.Errorf("stored login = %s %s, want the hashes of state and browser key", stateHash, browserHash)
		}
		for _, secret := range []string{state, key, verifierFor(key)} {
			if strings.Contains(stateHash+browserHash+nonce, secret) {
				t.Errorf("the stored login holds %q in the clear", secret)
			}
		}
		challenges, scopes, _ := e.idp.Seen()
		if len(challenges) != 1 || challenges[0].Method != "S256" || challenges[0].Challenge != oauth2.S256ChallengeFromVerifier(verifierFor(key)) {
			t.Errorf("the provider saw challenges %+v, want one S256 of the login's verifier", challenges)
		}
		if want := []string{"openid", "email", "profile", "groups"}; len(scopes) != 1 || !slices.Equal(scopes[0], want) {
			t.Errorf("the provider saw scopes %q, want %q", scopes, want)
		}

		r := b.open(cb)
		want := Identity{Issuer: e.idp.URL, Subject: "ada", Email: "ada@bank.example", EmailVerified: true,
			Name: "Ada Lovelace", Roles: auth.Roles{auth.RoleRiskOfficer, auth.RoleViewer}}
		if r.Identity == nil || !equalIdentity(*r.Identity, want) {
			t.Errorf("ada (groups bank-risk, viewer, staff): %v, want %+v", r, want)
		}
		if _, _, calls := e.idp.Seen(); calls != 0 {
			t.Errorf("the userinfo endpoint was called %d times although the ID token had every claim", calls)
		}
		var left int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sso_logins`).Scan(&left); err != nil || left != 0 {
			t.Errorf("%d logins left after finishing (%v), want 0", left, err)
		}

		// A single string, and a claim only the userinfo endpoint sends.
		for who, roles := range map[string]auth.Roles{"erin": {auth.RoleAdmin}, "carol": {auth.RoleDataSteward}} {
			e.idp.SignInAs(who)
			r := e.browser().signIn()
			if r.Identity == nil || r.Identity.Subject != who || !slices.Equal(r.Identity.Roles, roles) {
				t.Errorf("%s: %v, want roles %q", who, r, roles)
			}
		}
		if _, _, calls := e.idp.Seen(); calls != 1 {
			t.Errorf("the userinfo endpoint was called %d times, want once (for carol)", calls)
		}
	})
}

func equalIdentity(a, b Identity) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.Email == b.Email && a.EmailVerified == b.EmailVerified &&
		a.Name == b.Name && slices.Equal(a.Roles, b.Roles)
}

// TestStateWorksOnce: of eight calls finishing the same login at once, on
// whichever engine, exactly one gets the Identity and the others
// sso_state_invalid; the browser opening the callback again gets the same.
func TestStateWorksOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		b := e.browser()
		cb := b.toCallback()
		key := b.key()
		var got Identity
		testkit.OneWinner(t, testkit.Race(8, func(int) error {
			id, err := e.login.Finish(context.Background(), cb.Query(), key)
			if err == nil {
				got = id
			}
			return err
		}), causeway.EUNAUTHORIZED, "sso_state_invalid")
		if got.Subject != "ada" {
			t.Errorf("the winner got %+v", got)
		}
		r := b.open(cb)
		wantCode(t, "the replayed callback", r.Kind, r.Code, causeway.EUNAUTHORIZED, "sso_state_invalid")
	})
}

// TestCallbackWorksOnlyInTheBrowserThatBegan: a callback URL opened in
// another browser (one that began a login of its own, or none) is
// sso_state_invalid, and does not spend the login: its own browser
// finishes it afterwards. So a callback URL that leaks is useless, and an
// attacker cannot plant their own login in an operator's browser.
func TestCallbackWorksOnlyInTheBrowserThatBegan(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		mine, theirs := e.browser(), e.browser()
		cb := mine.toCallback()
		theirs.toCallback()
		r := theirs.open(cb)
		wantCode(t, "another browser's login", r.Kind, r.Code, causeway.EUNAUTHORIZED, "sso_state_invalid")
		r = e.browser().open(cb)
		wantCode(t, "a browser without a login", r.Kind, r.Code, causeway.EUNAUTHORIZED, "sso_state_invalid")
		if r := mine.open(cb); r.Identity == nil || r.Identity.Subject != "ada" {
			t.Errorf("the browser that began: %v, want ada's identity", r)
		}
	})
}

// TestLoginExpiresAfterStateTTL: a login finished StateTTL after it began
// is sso_state_expired; Prune deletes the expired logins and keeps the
// others.
func TestLoginExpiresAfterStateTTL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		b := e.browser()
		cb := b.toCallback()
		for range 2 {
			if _, _, err := e.login.Begin(ctx); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(StateTTL)
		r := b.open(cb)
		wantCode(t, "a login after StateTTL", r.Kind, r.Code, causeway.EUNAUTHORIZED, "sso_state_expired")

		if _, _, err := e.login.Begin(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := e.login.Prune(ctx, e.clock.Now())
		if err != nil || n != 2 {
			t.Errorf("Prune = %d, %v; want the 2 expired logins", n, err)
		}
		var left int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sso_logins`).Scan(&left); err != nil || left != 1 {
			t.Errorf("%d logins left (%v), want the fresh one", left, err)
		}
	})
}

// TestProviderRefusalsAndMissingRolesAreClearErrors: the provider's
// access_denied, a user without the groups claim, with groups none of
// which maps, and with a claim of another type each give their own code,
// never a server error.
func TestProviderRefusalsAndMissingRolesAreClearErrors(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), nil)
	e.idp.SignInAs("")
	r := e.browser().signIn()
	wantCode(t, "access_denied", r.Kind, r.Code, causeway.EFORBIDDEN, "sso_access_denied")
	if !strings.Contains(r.Message, "the user declined") {
		t.Errorf("access_denied's message %q does not pass on the provider's description", r.Message)
	}
	for _, c := range []struct {
		who, code, says string
	}{
		{"bob", "no_role", "sent no groups claim"},
		{"dave", "no_role", `"marketing"`},
		{"frank", "role_claim_invalid", "neither a string nor an array of strings"},
	} {
		e.idp.SignInAs(c.who)
		r := e.browser().signIn()
		wantCode(t, c.who, r.Kind, r.Code, causeway.EFORBIDDEN, c.code)
		if !strings.Contains(r.Message, c.says) {
			t.Errorf("%s: message %q does not say %q", c.who, r.Message, c.says)
		}
	}
}

// TestTamperedIDTokensAreRefused: the provider's token endpoint hands out
// an ID token re-signed after one claim changed (and, as a control, one
// re-signed unchanged, which is accepted). A wrong audience or authorized
// party, issuer or nonce, an expired token, one without a subject and one
// signed by a key the provider does not publish are each
// sso_token_invalid.
func TestTamperedIDTokensAreRefused(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), nil)
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := func(name string, v any) func(map[string]any) *ecdsa.PrivateKey {
		return func(c map[string]any) *ecdsa.PrivateKey { c[name] = v; return nil }
	}
	e.idp.SetTamper(func(map[string]any) *ecdsa.PrivateKey { return nil })
	if r := e.browser().signIn(); r.Identity == nil {
		t.Fatalf("a token re-signed unchanged was refused: %v", r)
	}
	for name, tamper := range map[string]func(map[string]any) *ecdsa.PrivateKey{
		"audience": set("aud", []string{"someone-else"}),
		"authorized party": func(c map[string]any) *ecdsa.PrivateKey {
			c["aud"] = []string{e.idp.ClientID, "x"}
			c["azp"] = "x"
			return nil
		},
		"issuer":      set("iss", e.idp.URL+"/elsewhere"),
		"nonce":       set("nonce", "not-this-login"),
		"no nonce":    func(c map[string]any) *ecdsa.PrivateKey { delete(c, "nonce"); return nil },
		"expired":     set("exp", time.Now().Add(-time.Minute).Unix()),
		"no subject":  set("sub", ""),
		"foreign key": func(map[string]any) *ecdsa.PrivateKey { return stranger },
	} {
		e.idp.SetTamper(tamper)
		r := e.browser().signIn()
		wantCode(t, name, r.Kind, r.Code, causeway.EUNAUTHORIZED, "sso_token_invalid")
	}
	e.idp.SetTamper(nil)
	if r := e.browser().signIn(); r.Identity == nil {
		t.Errorf("after the tampering stopped: %v", r)
	}
}

// TestBadCallbacksAreRefused: a code the provider does not know, an
// answer naming another issuer (RFC 9207 iss), one with neither code nor
// error, and malformed queries each have their code; none is a server
// error. A client secret the provider refuses is sso_client_refused, a
// 503 for the administrators to fix, not the operator's fault.
func TestBadCallbacksAreRefused(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), nil)
	edit := func(f func(q url.Values)) result {
		b := e.browser()
		cb := b.toCallback()
		q := cb.Query()
		f(q)
		cb.RawQuery = q.Encode()
		return b.open(cb)
	}
	r := edit(func(q url.Values) { q.Set("code", "not-a-code") })
	wantCode(t, "unknown code", r.Kind, r.Code, causeway.EUNAUTHORIZED, "sso_code_refused")
	r = edit(func(q url.Values) { q.Set("iss", "https://idp.elsewhere.example") })
	wantCode(t, "another issuer", r.Kind, r.Code, causeway.EUNAUTHORIZED, "sso_issuer_mismatch")
	r = edit(func(q url.Values) { q.Del("code") })
	wantCode(t, "no code", r.Kind, r.Code, causeway.EBADREQUEST, "sso_code_missing")
	r = edit(func(q url.Values) { q.Add("state", "a second one") })
	wantCode(t, "two states", r.Kind, r.Code, causeway.EBADREQUEST, "sso_callback_invalid")
	r = edit(func(q url.Values) { q.Set("code", "a\x00b") })
	wantCode(t, "a control character", r.Kind, r.Code, causeway.EINVALID, "invalid_text")

	_, err := e.login.Finish(context.Background(), url.Values{"code": {"x"}}, "")
	wantErr(t, "no state", err, causeway.EBADREQUEST, "sso_callback_invalid")

	wrong := newEnv(t, e.db, func(c *Config) { c.ClientSecret = "not-the-secret" })
	r = wrong.browser().signIn()
	wantCode(t, "a wrong client secret", r.Kind, r.Code, causeway.EUNAVAILABLE, "sso_client_refused")
}

// TestProviderDownIsRetried: a node starts (New) whatever the provider's
// state; while discovery fails Begin is sso_unavailable, and fails fast
// for DiscoveryRetry without asking the provider again; after that it
// asks again and, the provider back, logins work.
func TestProviderDownIsRetried(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), nil)
	ctx := context.Background()
	e.idp.SetDown(true)
	_, _, err := e.login.Begin(ctx)
	wantErr(t, "provider down", err, causeway.EUNAVAILABLE, "sso_unavailable")
	e.idp.SetDown(false)
	_, _, err = e.login.Begin(ctx)
	wantErr(t, "within DiscoveryRetry", err, causeway.EUNAVAILABLE, "sso_unavailable")
	e.clock.Advance(DiscoveryRetry)
	if r := e.browser().signIn(); r.Identity == nil {
		t.Errorf("after the provider came back: %v", r)
	}

	// Nothing listens on port 1 of loopback.
	unreachable, err := New(Config{Issuer: "http://127.0.0.1:1", ClientID: "c", RedirectURL: "http://127.0.0.1:2/console/sso/callback"},
		e.db, Options{Logger: e.login.log})
	if err != nil {
		t.Fatalf("New with an unreachable provider: %v", err)
	}
	_, _, err = unreachable.Begin(ctx)
	wantErr(t, "unreachable provider", err, causeway.EUNAVAILABLE, "sso_unavailable")

	// An issuer that differs from the provider's own (a trailing slash)
	// is named in the error.
	slash := newEnv(t, e.db, func(c *Config) { c.Issuer += "/" })
	_, _, err = slash.login.Begin(ctx)
	wantErr(t, "issuer with a slash", err, causeway.EUNAVAILABLE, "sso_unavailable")
	if err == nil || !strings.Contains(err.Error(), slash.idp.URL+`"`) {
		t.Errorf("the error %v does not name the provider's issuer %s", err, slash.idp.URL)
	}
}

// TestBeginAsksForTheCodeFlowWithPKCE: the authorization URL asks for
// the code flow for this client and redirect URL, with the configured
// scopes, a fresh state and nonce, and an S256 challenge.
func TestBeginAsksForTheCodeFlowWithPKCE(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), func(c *Config) { c.Scopes = []string{"email", "staff-groups"} })
	ctx := context.Background()
	first, key, err := e.login.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := e.login.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(first)
	q := u.Query()
	for name, want := range map[string]string{
		"response_type": "code", "client_id": e.idp.ClientID, "redirect_uri": e.console.URL + CallbackPath,
		"scope": "openid email staff-groups", "code_challenge_method": "S256",
		"code_challenge": oauth2.S256ChallengeFromVerifier(verifierFor(key)),
	} {
		if got := q.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	u2, _ := url.Parse(second)
	if len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 || q.Get("state") == u2.Query().Get("state") || q.Get("nonce") == u2.Query().Get("nonce") {
		t.Errorf("state and nonce are not fresh 256-bit values: %s and %s", first, second)
	}
	if !strings.HasPrefix(first, e.idp.URL+"/authorize?") {
		t.Errorf("the URL %s is not the provider's authorization endpoint", first)
	}
}
