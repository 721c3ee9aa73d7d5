package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"golang.org/x/oauth2"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// TestDeveloperSignsUpCreatesAppAndCallsWithAStandardOAuth2Client is the
// whole northbound story: sign up, log in, create an app, get a token with
// golang.org/x/oauth2 (header and body client authentication), and the
// gateway accepts it; the token verifies against the JWKS with jwx, and
// the metadata document points at all of it.
func TestDeveloperSignsUpCreatesAppAndCallsWithAStandardOAuth2Client(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("ada@example.com")
		if !strings.HasPrefix(dev.ID, "dev_") || !strings.HasPrefix(dev.OrganizationID, "org_") {
			t.Errorf("sign-up ids = %+v", dev)
		}
		var login struct{ Token string }
		if code := e.call("POST", "/v1/developers/login", "", map[string]string{"email": "ADA@example.com", "password": "correct horse battery"}, &login); code != 200 || login.Token == "" {
			t.Fatalf("login = %d", code)
		}
		app := e.createApp(login.Token, auth.ScopeAccountsRead, auth.ScopePaymentsWrite)
		if !strings.HasPrefix(app.ID, "app_") || !strings.HasPrefix(app.ClientID, "cw_") || app.ClientSecret == "" ||
			app.Status != auth.AppActive || app.CreatedAt == "" || !slices.Equal(app.Scopes, []string{auth.ScopeAccountsRead, auth.ScopePaymentsWrite}) {
			t.Fatalf("created app = %+v", app)
		}
		// The secret is never shown again.
		var got map[string]any
		e.call("GET", "/v1/apps/"+app.ID, login.Token, nil, &got)
		if _, leaked := got["client_secret"]; leaked || got["client_id"] != app.ClientID {
			t.Errorf("GET app = %v", got)
		}

		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
			tok, err := e.credentials(app, style).Token(context.Background())
			if err != nil {
				t.Fatalf("auth style %d: %v", style, err)
			}
			if tok.TokenType != "Bearer" || tok.Expiry.IsZero() || tok.Extra("scope") != "accounts:read payments:write" {
				t.Errorf("auth style %d: token = %+v scope %v", style, tok, tok.Extra("scope"))
			}
			caller, err := e.svc.AuthenticateApp(context.Background(), tok.AccessToken)
			if err != nil {
				t.Fatalf("AuthenticateApp: %v", err)
			}
			if caller.ID != app.ID || caller.ClientID != app.ClientID || caller.DeveloperID != dev.ID ||
				!caller.HasScope(auth.ScopePaymentsWrite) || caller.HasScope(auth.ScopeDataRead) {
				t.Errorf("caller = %+v", caller)
			}
		}

		// The raw response: no-store, expires_in, scope.
		res, body := e.postForm("grant_type=client_credentials", http.Header{"Authorization": {basic(app.ClientID, app.ClientSecret)}})
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-store" || body["token_type"] != "Bearer" ||
			body["expires_in"] != float64(900) || body["scope"] != "accounts:read payments:write" {
			t.Fatalf("token response = %d %v %v", res.StatusCode, res.Header, body)
		}
		raw := body["access_token"].(string)

		// Metadata (RFC 8414).
		var meta Metadata
		if code := e.call("GET", MetadataPath, "", nil, &meta); code != 200 {
			t.Fatalf("metadata = %d", code)
		}
		if meta.Issuer != testIssuer || meta.TokenEndpoint != testIssuer+TokenPath || meta.JWKSURI != testIssuer+JWKSPath ||
			!slices.Equal(meta.GrantTypesSupported, []string{"client_credentials"}) ||
			!slices.Equal(meta.TokenEndpointAuthMethodsSupported, []string{"client_secret_basic", "client_secret_post"}) ||
			!slices.Equal(meta.ScopesSupported, auth.AllScopes) || meta.AccessTokenAudience != Audience {
			t.Errorf("metadata = %+v", meta)
		}

		// The JWKS, fetched over HTTP, verifies the token with jwx. (The
		// test's issuer names no server: fetch it from the one at hand.)
		set := fetchJWKS(t, e.url+JWKSPath)
		parsed, err := jwt.ParseString(raw, jwt.WithKeySet(set), jwt.WithValidate(true),
			jwt.WithAudience(Audience), jwt.WithIssuer(meta.Issuer), jwt.WithClock(jwt.ClockFunc(e.clock.Now)))
		if err != nil {
			t.Fatalf("token does not verify against the JWKS: %v", err)
		}
		sub, _ := parsed.Subject()
		jti, _ := parsed.JwtID()
		iat, _ := parsed.IssuedAt()
		exp, _ := parsed.Expiration()
		var scope string
		parsed.Get("scope", &scope)
		if sub != app.ClientID || jti == "" || exp.Sub(iat) != DefaultTokenTTL || scope != "accounts:read payments:write" {
			t.Errorf("claims sub=%s jti=%s iat=%v exp=%v scope=%q", sub, jti, iat, exp, scope)
		}
		msg, err := jws.ParseString(raw)
		if err != nil {
			t.Fatal(err)
		}
		h := msg.Signatures()[0].ProtectedHeaders()
		alg, _ := h.Algorithm()
		kid, _ := h.KeyID()
		typ, _ := h.Type()
		if alg != jwa.EdDSA() || kid == "" || typ != "at+jwt" {
			t.Errorf("header alg=%v kid=%q typ=%q", alg, kid, typ)
		}
		// The claims as any client sees them, without a JWT library.
		var claims map[string]any
		if err := json.Unmarshal(msg.Payload(), &claims); err != nil {
			t.Fatal(err)
		}
		if claims["aud"] != Audience || claims["iss"] != testIssuer || claims["client_id"] != app.ClientID {
			t.Errorf("raw claims = %v", claims)
		}
		if _, ok := set.LookupKeyID(kid); !ok {
			t.Errorf("kid %s not in the JWKS", kid)
		}
	})
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func fetchJWKS(t *testing.T, uri string) jwk.Set {
	t.Helper()
	res, err := http.Get(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JWKS = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	set, err := jwk.ParseReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if _, err := k.PublicKey(); err != nil || k.KeyType() != jwa.OKP() {
			t.Errorf("JWKS key %d is not a public OKP key", i)
		}
		var d any
		if k.Get("d", &d) == nil {
			t.Fatal("JWKS contains private key material")
		}
	}
	return set
}

func kids(set jwk.Set) []string {
	var out []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		out = append(out, kid)
	}
	return out
}

func TestTokenScopeCanBeNarrowedButNotWidened(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("scopes@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead, auth.ScopePaymentsWrite, auth.ScopeEventsRead)

		tok := e.accessToken(app, auth.ScopeEventsRead)
		if tok.Extra("scope") != "events:read" {
			t.Errorf("narrowed scope = %v", tok.Extra("scope"))
		}
		caller, err := e.svc.AuthenticateApp(context.Background(), tok.AccessToken)
		if err != nil || !slices.Equal(caller.Scopes, []string{auth.ScopeEventsRead}) {
			t.Errorf("caller = %+v, %v", caller, err)
		}

		for _, scopes := range [][]string{{auth.ScopeDataRead}, {auth.ScopeEventsRead, auth.ScopeKYCWrite}, {"admin"}} {
			_, err := e.credentials(app, oauth2.AuthStyleInParams, scopes...).Token(context.Background())
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_scope" || re.Response.StatusCode != 400 {
				t.Errorf("scopes %v: %v, want invalid_scope 400", scopes, err)
			}
		}
	})
}

func TestTokenEndpointAnswersRFC6749Errors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("errors@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		form := func(kv ...string) string {
			v := url.Values{}
			for i := 0; i < len(kv); i += 2 {
				v.Add(kv[i], kv[i+1])
			}
			return v.Encode()
		}
		good := http.Header{"Authorization": {basic(app.ClientID, app.ClientSecret)}}
		tests := []struct {
			name   string
			body   string
			header http.Header
			status int
			code   string
		}{
			{"wrong secret, basic", "grant_type=client_credentials", http.Header{"Authorization": {basic(app.ClientID, "cwsec_wrong")}}, 401, "invalid_client"},
			{"wrong secret, post", form("grant_type", "client_credentials", "client_id", app.ClientID, "client_secret", "nope"), nil, 401, "invalid_client"},
			{"unknown client", form("grant_type", "client_credentials", "client_id", "cw_unknown", "client_secret", app.ClientSecret), nil, 401, "invalid_client"},
			{"no client authentication", "grant_type=client_credentials", nil, 401, "invalid_client"},
			{"bearer instead of basic", "grant_type=client_credentials", http.Header{"Authorization": {"Bearer x"}}, 401, "invalid_client"},
			{"malformed basic", "grant_type=client_credentials", http.Header{"Authorization": {"Basic !!!"}}, 401, "invalid_client"},
			{"both methods", form("grant_type", "client_credentials", "client_secret", app.ClientSecret), good, 400, "invalid_request"},
			{"missing grant_type", "", good, 400, "invalid_request"},
			{"other grant", form("grant_type", "password", "username", "u", "password", "p"), good, 400, "unsupported_grant_type"},
			{"repeated parameter", "grant_type=client_credentials&grant_type=client_credentials", good, 400, "invalid_request"},
			{"malformed form", "grant_type=%zz", good, 400, "invalid_request"},
			{"oversize body", "grant_type=client_credentials&pad=" + strings.Repeat("x", 17<<10), good, 400, "invalid_request"},
			{"unknown scope", form("grant_type", "client_credentials", "scope", "root"), good, 400, "invalid_scope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, body := e.postForm(tt.body, tt.header)
				if res.StatusCode != tt.status || body["error"] != tt.code {
					t.Fatalf("%d %v, want %d %s", res.StatusCode, body, tt.status, tt.code)
				}
				if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("Content-Type") != "application/json" {
					t.Errorf("headers = %v", res.Header)
				}
				if tt.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 without WWW-Authenticate: %v", res.Header)
				}
				if _, ok := body["access_token"]; ok {
					t.Error("error response carries a token")
				}
			})
		}

		// A form that is not a form, even JSON that the text rule would
		// refuse: the endpoint documents a form, and answers OAuth's error.
		req, _ := http.NewRequest("POST", e.url+TokenPath, strings.NewReader(`{"grant_type":"client_credentials\u0000"}`))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != 400 || body["error"] != "invalid_request" {
			t.Errorf("JSON body: %d %v", res.StatusCode, body)
		}
	})
}

// forge signs claims with key under kid, the way an attacker would try.
func forge(t *testing.T, key any, alg jwa.SignatureAlgorithm, kid, typ string, claims map[string]any) string {
	t.Helper()
	b := jwt.NewBuilder()
	for k, v := range claims {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	hdr.Set(jws.KeyIDKey, kid)
	hdr.Set(jws.TypeKey, typ)
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// unsigned builds an "alg":"none" token by hand (jwx rightly refuses to).
func unsigned(kid string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid})
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."
}

func TestForgedExpiredAndMisdirectedTokensAreRejected(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("forger@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		ctx := context.Background()
		real, err := e.svc.currentKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		claims := func(over map[string]any) map[string]any {
			c := map[string]any{
				"iss": testIssuer, "sub": app.ClientID, "aud": []string{Audience}, "iat": now.Unix(),
				"exp": now.Add(10 * time.Minute).Unix(), "jti": "jti_x", "scope": "accounts:read",
			}
			for k, v := range over {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
			}
			return c
		}
		_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

		// The real key signs a valid token: the baseline the others vary.
		if _, err := e.svc.AuthenticateApp(ctx, forge(t, real.private, jwa.EdDSA(), real.KID, "at+jwt", claims(nil))); err != nil {
			t.Fatalf("baseline token rejected: %v", err)
		}
		tests := []struct {
			name  string
			token string
			code  string
		}{
			{"signed by another key", forge(t, otherKey, jwa.EdDSA(), real.KID, "at+jwt", claims(nil)), "invalid_token"},
			{"alg none", unsigned(real.KID, claims(nil)), "invalid_token"},
			{"HS256 keyed with the public key", forge(t, []byte(real.public), jwa.HS256(), real.KID, "at+jwt", claims(nil)), "invalid_token"},
			{"another audience", forge(t, real.private, jwa.EdDSA(), real.KID, "at+jwt", claims(map[string]any{"aud": []string{"other-api"}})), "invalid_token"},
			{"no audience", forge(t, real.private, jwa.EdDSA(), real.KID, "at+jwt", claims(map[string]any{"aud": nil})), "invalid_token"},
			{"another issuer", forge(t, real.private, jwa.EdDSA(), real.KID, "at+jwt", claims(map[string]any{"iss": "http://forger"})), "invalid_token"},
			{"no issuer", forge(t, real.private, jwa.EdDSA(), real.KID, "at+jwt", claims(map[string]any{"iss": nil})), "invalid_token"},
			{"not an access token", forge(t, real.private, jwa.EdDSA(), real.KID, "JWT", claims(nil)), "invalid_token"},
			{"unknown kid", forge(t, real.private, jwa.EdDSA(), "key_01jd3k7m9q6x4t2w8y5z0abcde", "at+jwt", claims(nil)), "invalid_token"},
			{"no exp", forge(t, real.private, jwa.EdDSA(), real.KID, "at+jwt", claims(map[string]any{"exp": nil})), "invalid_token"},
			{"expired", forge(t, real.private, jwa.EdDSA(), real.KID, "at+jwt", claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "token_expired"},
			{"garbage", "not.a.token", "invalid_token"},
			{"empty", "", "invalid_token"},
			{"JSON serialization", `{"payload":"e30","signatures":[]}`, "invalid_token"},
			{"huge", strings.Repeat("a", 5000) + ".b.c", "invalid_token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.svc.AuthenticateApp(ctx, tt.token)
				wantCode(t, err, tt.code)
			})
		}

		// A real token from the endpoint expires with the clock.
		tok := e.accessToken(app)
		if _, err := e.svc.AuthenticateApp(ctx, tok.AccessToken); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(DefaultTokenTTL + 10*time.Second) // inside the leeway
		if _, err := e.svc.AuthenticateApp(ctx, tok.AccessToken); err != nil {
			t.Errorf("token rejected within the clock leeway: %v", err)
		}
		e.clock.Advance(time.Minute)
		_, err = e.svc.AuthenticateApp(ctx, tok.AccessToken)
		wantCode(t, err, "token_expired")
	})
}

func TestIssuerIsCheckedWhenConfigured(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Issuer: "https://api.bank.example/"})
		dev := e.signUp("iss@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		tok := e.accessToken(app)
		parsed, err := jwt.ParseString(tok.AccessToken, jwt.WithVerify(false))
		if err != nil {
			t.Fatal(err)
		}
		if iss, _ := parsed.Issuer(); iss != "https://api.bank.example" {
			t.Errorf("iss = %q", iss)
		}
		var meta Metadata
		e.call("GET", MetadataPath, "", nil, &meta)
		if meta.Issuer != "https://api.bank.example" || meta.TokenEndpoint != "https://api.bank.example/oauth2/token" {
			t.Errorf("metadata = %+v", meta)
		}
		if _, err := e.svc.AuthenticateApp(context.Background(), tok.AccessToken); err != nil {
			t.Fatal(err)
		}
		key, _ := e.svc.currentKey(context.Background())
		now := e.clock.Now()
		other := forge(t, key.private, jwa.EdDSA(), key.KID, "at+jwt", map[string]any{
			"iss": "https://evil.example", "sub": app.ClientID, "aud": Audience, "iat": now.Unix(),
			"exp": now.Add(time.Minute).Unix(), "scope": "accounts:read",
		})
		_, err = e.svc.AuthenticateApp(context.Background(), other)
		wantCode(t, err, "invalid_token")
	})
}

// TestIssuerIgnoresHostAndForwardedHeaders: whatever Host and
// X-Forwarded-Proto a caller sends, the metadata (served cacheable) and the
// tokens' "iss" are the configured issuer's. Derived from the request, they
// let anyone point a shared cache's verifiers at a host of their choosing.
func TestIssuerIgnoresHostAndForwardedHeaders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Issuer: "https://api.bank.example"})
		dev := e.signUp("host@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		for _, host := range []string{"evil.example", "localhost", "127.0.0.1:1"} {
			req, _ := http.NewRequest("GET", e.url+MetadataPath, nil)
			req.Host = host
			req.Header.Set("X-Forwarded-Proto", "https")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var meta Metadata
			json.NewDecoder(res.Body).Decode(&meta)
			res.Body.Close()
			if meta.Issuer != "https://api.bank.example" || meta.TokenEndpoint != "https://api.bank.example/oauth2/token" ||
				meta.JWKSURI != "https://api.bank.example/.well-known/jwks.json" {
				t.Errorf("metadata asked as Host %s = %+v", host, meta)
			}

			req, _ = http.NewRequest("POST", e.url+TokenPath, strings.NewReader("grant_type=client_credentials"))
			req.Host = host
			req.Header.Set("X-Forwarded-Proto", "http")
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(app.ClientID, app.ClientSecret)
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			parsed, err := jwt.ParseString(body.AccessToken, jwt.WithVerify(false))
			if err != nil {
				t.Fatalf("token asked as Host %s: %d %v", host, res.StatusCode, err)
			}
			if iss, _ := parsed.Issuer(); iss != meta.Issuer {
				t.Errorf("token asked as Host %s: iss = %q, metadata's issuer %q", host, iss, meta.Issuer)
			}
		}
	})
}

func TestServiceNeedsAnIssuer(t *testing.T) {
	_, err := New(storetest.OpenSQLite(t), Options{PasswordCost: cheapCost, Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "issuer is required") {
		t.Errorf("New without an issuer = %v", err)
	}
}

func TestSigningKeyRotationKeepsOldTokensValid(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		// A second node on the same database, started before the rotation.
		other := newEnv(t, db, Options{})
		dev := e.signUp("rotate@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		ctx := context.Background()

		before := e.accessToken(app)
		oldKID := headerKID(t, before.AccessToken)
		if _, err := other.svc.AuthenticateApp(ctx, before.AccessToken); err != nil {
			t.Fatal(err)
		}

		var rotated SigningKey
		if code := e.bank("POST", "/signing-keys/rotate", &rotated); code != 200 || rotated.KID == "" || rotated.KID == oldKID {
			t.Fatalf("rotate = %d %+v", code, rotated)
		}
		after := e.accessToken(app)
		if kid := headerKID(t, after.AccessToken); kid != rotated.KID {
			t.Errorf("new token kid = %s, want %s", kid, rotated.KID)
		}
		// The other node signs with the new key at once and verifies both.
		fromOther, err := other.svc.IssueToken(ctx, TokenRequest{ClientID: app.ClientID, ClientSecret: app.ClientSecret})
		if err != nil {
			t.Fatal(err)
		}
		if kid := headerKID(t, fromOther.Token); kid != rotated.KID {
			t.Errorf("other node signs with %s, want %s", kid, rotated.KID)
		}
		for _, node := range []*env{e, other} {
			for _, tok := range []string{before.AccessToken, after.AccessToken} {
				if _, err := node.svc.AuthenticateApp(ctx, tok); err != nil {
					t.Errorf("token rejected after rotation: %v", err)
				}
			}
		}
		set := fetchJWKS(t, e.url+JWKSPath)
		if got := kids(set); !slices.Equal(got, []string{oldKID, rotated.KID}) {
			t.Errorf("JWKS kids = %v, want [%s %s]", got, oldKID, rotated.KID)
		}

		// Once no token of the old key can be alive, the next rotation
		// retires it: it leaves the JWKS and verifies nothing.
		e.clock.Advance(time.Hour)
		var third SigningKey
		e.bank("POST", "/signing-keys/rotate", &third)
		if got := kids(fetchJWKS(t, e.url+JWKSPath)); !slices.Equal(got, []string{rotated.KID, third.KID}) {
			t.Errorf("JWKS kids after retirement = %v", got)
		}
		_, err = e.svc.AuthenticateApp(ctx, before.AccessToken)
		wantCode(t, err, "invalid_token")
	})
}

// TestSigningKeysAreSealedAtRest: a signing key's private part is stored
// sealed with the platform's secret key; keys an earlier version stored in
// the clear are sealed when a node starts, and tokens they signed still
// verify. A node with another secret key refuses to start, saying why.
func TestSigningKeysAreSealedAtRest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := migrateAll(ctx, db); err != nil {
			t.Fatal(err)
		}
		stored := func() []string {
			rows, err := db.Query(`SELECT private_key FROM identity_signing_keys ORDER BY created_at, kid`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var v string
				rows.Scan(&v)
				out = append(out, v)
			}
			return out
		}
		// An earlier version: no sealer, the key in the clear.
		legacy, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		dev, _, err := legacy.SignUp(ctx, "sealed@example.com", "correct horse battery", "Sealed")
		if err != nil {
			t.Fatal(err)
		}
		app, secret, err := legacy.CreateApp(ctx, dev, "sealed", []string{auth.ScopeAccountsRead})
		if err != nil {
			t.Fatal(err)
		}
		old, err := legacy.IssueToken(ctx, TokenRequest{ClientID: app.ClientID, ClientSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		plain := stored()
		if len(plain) != 1 || seal.IsSealed(plain[0]) {
			t.Fatalf("legacy key stored as %q", plain)
		}

		sealer := testSealer(t, 7)
		s, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger(), Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		if got := stored(); len(got) != 1 || !seal.IsSealed(got[0]) || strings.Contains(got[0], plain[0]) {
			t.Fatalf("after a start with a sealer the key is stored as %q", got)
		}
		if _, err := s.AuthenticateApp(ctx, old.Token); err != nil {
			t.Errorf("a token signed before sealing is refused: %v", err)
		}
		if _, err := s.RotateSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		for i, v := range stored() {
			if !seal.IsSealed(v) {
				t.Errorf("key %d stored in the clear after a rotation", i)
			}
		}
		fresh, err := s.IssueToken(ctx, TokenRequest{ClientID: app.ClientID, ClientSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AuthenticateApp(ctx, fresh.Token); err != nil {
			t.Errorf("a token of the new sealed key is refused: %v", err)
		}

		for _, tt := range []struct {
			name   string
			sealer *seal.Sealer
			want   string
		}{{"another secret key", testSealer(t, 8), "secret-key"}, {"no secret key", nil, "no secret key"}} {
			_, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger(), Sealer: tt.sealer})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("a node with %s: err = %v, want one naming %q", tt.name, err, tt.want)
			}
		}
	})
}

func headerKID(t *testing.T, token string) string {
	t.Helper()
	msg, err := jws.ParseString(token)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID()
	return kid
}

func TestNodesStartingTogetherCreateOneSigningKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if err := migrateAll(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		const nodes = 4
		errs := make(chan error, nodes)
		for range nodes {
			go func() {
				_, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost})
				errs <- err
			}()
		}
		for range nodes {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM identity_signing_keys`).Scan(&n); err != nil || n != 1 {
			t.Errorf("signing keys = %d, %v; want 1", n, err)
		}
	})
}

// BenchmarkAuthenticateApp is the gateway's per-request cost: verify an
// access token and check its app is still active.
func BenchmarkAuthenticateApp(b *testing.B) {
	db := storetest.OpenSQLite(b)
	ctx := context.Background()
	if err := migrateAll(ctx, db); err != nil {
		b.Fatal(err)
	}
	s, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	dev, _, err := s.SignUp(ctx, "bench@example.com", "correct horse battery", "Bench")
	if err != nil {
		b.Fatal(err)
	}
	app, secret, err := s.CreateApp(ctx, dev, "bench", []string{auth.ScopeAccountsRead})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := s.IssueToken(ctx, TokenRequest{ClientID: app.ClientID, ClientSecret: secret})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AuthenticateApp(ctx, tok.Token); err != nil {
			b.Fatal(err)
		}
	}
}
