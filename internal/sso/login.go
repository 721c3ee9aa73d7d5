package sso

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/textrule"
)

// provider is what discovery learnt about the identity provider.
type provider struct {
	oidc     *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// discover returns the provider, fetching its discovery document on the
// first call and, after a failure, again once DiscoveryRetry has passed.
// One caller discovers at a time; the others wait for its answer.
func (l *Login) discover(ctx context.Context) (*provider, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.provider != nil {
		return l.provider, nil
	}
	if l.lastError != nil && l.now().Sub(l.lastTry) < DiscoveryRetry {
		return nil, l.lastError
	}
	// Not bound to the caller's request: a browser that gives up must not
	// make the discovery fail for everyone for DiscoveryRetry.
	dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), l.client), httpTimeout)
	defer cancel()
	op, err := oidc.NewProvider(dctx, l.cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			err = fail(err, causeway.EUNAVAILABLE, "sso_unavailable",
				"the identity provider names itself %q, not %q: --oidc-issuer must be exactly its issuer", mismatch.Discovered, mismatch.Provided)
		} else {
			err = fail(err, causeway.EUNAVAILABLE, "sso_unavailable",
				"the bank's identity provider cannot be reached; try again shortly")
		}
		l.lastTry, l.lastError = l.now(), err
		l.log.WarnContext(ctx, "discovery of the identity provider failed", "issuer", l.cfg.Issuer, "error", err.Error())
		return nil, err
	}
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if op.Claims(&meta) == nil && meta.Methods != nil && !slices.Contains(meta.Methods, "S256") {
		l.log.WarnContext(ctx, "the identity provider does not list PKCE S256 among its code challenge methods; logins may fail",
			"issuer", l.cfg.Issuer, "methods", meta.Methods)
	}
	l.provider = &provider{
		oidc: op,
		oauth: oauth2.Config{
			ClientID:     l.cfg.ClientID,
			ClientSecret: l.cfg.ClientSecret,
			Endpoint:     op.Endpoint(),
			RedirectURL:  l.cfg.RedirectURL,
			Scopes:       l.cfg.Scopes,
		},
		verifier: op.Verifier(&oidc.Config{ClientID: l.cfg.ClientID, Now: l.now}),
	}
	l.lastError = nil
	return l.provider, nil
}

// Begin starts a login. It returns the provider's authorization URL, to
// send the browser to, and the browser key: a secret the console keeps in
// the browser (BindingCookie) and hands back to Finish. The login carries
// a random state and nonce and a PKCE S256 challenge, and must finish
// within StateTTL. Errors: EUNAVAILABLE sso_unavailable (the provider
// cannot be discovered), database_unavailable.
func (l *Login) Begin(ctx context.Context) (authURL, browserKey string, err error) {
	p, err := l.discover(ctx)
	if err != nil {
		return "", "", err
	}
	state, nonce := randomString(), randomString()
	browserKey = randomString()
	now := l.now()
	err = l.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sso_logins (state_hash, browser_hash, nonce, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, hash(state), hash(browserKey), nonce, store.Micros(now), store.Micros(now.Add(StateTTL)))
		return err
	})
	if err != nil {
		return "", "", store.Classify(err)
	}
	return p.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifierFor(browserKey))), browserKey, nil
}

// Finish completes a login from the query of the provider's redirect and
// the browser key Begin gave. It consumes the login's state (a state works
// once, and only with its browser key), exchanges the code with the PKCE
// verifier, verifies the ID token (signature, issuer, audience, expiry,
// nonce), reads email, name and the role claim (from the userinfo
// endpoint when the ID token lacks them) and maps the claim to roles.
//
// Errors (a causeway error each):
//   - EBADREQUEST sso_callback_invalid, EINVALID invalid_text: the query
//     is malformed;
//   - EUNAUTHORIZED sso_state_invalid: unknown or used state, or begun in
//     another browser; sso_state_expired: older than StateTTL;
//     sso_issuer_mismatch: the answer names another issuer (RFC 9207);
//   - EFORBIDDEN sso_access_denied: the provider answered access_denied;
//     EUNAUTHORIZED sso_idp_error: it answered another error;
//     EBADREQUEST sso_code_missing: neither code nor error;
//   - EUNAUTHORIZED sso_code_refused: the token endpoint refused the code;
//     EUNAVAILABLE sso_client_refused: it refused Causeway's client id
//     and secret (a configuration to fix);
//     sso_token_invalid: the ID token is missing or fails a check;
//   - EFORBIDDEN role_claim_invalid: the claim is not strings;
//     no_role: no value maps to a role;
//   - EUNAVAILABLE sso_unavailable: the provider cannot be reached;
//     database_unavailable.
func (l *Login) Finish(ctx context.Context, query url.Values, browserKey string) (Identity, error) {
	id, err := l.finish(ctx, query, browserKey)
	if err != nil {
		level := l.log.Warn
		switch causeway.ErrorCode(err) {
		case "sso_callback_invalid", "sso_state_invalid", textrule.Code:
			level = l.log.Info // what a stale bookmark or a stranger sends
		}
		level("single sign-on failed", "code", causeway.ErrorCode(err), "error", err.Error())
		return Identity{}, err
	}
	l.log.InfoContext(ctx, "single sign-on", "issuer", id.Issuer, "subject", id.Subject, "roles", id.Roles)
	return id, nil
}

func (l *Login) finish(ctx context.Context, query url.Values, browserKey string) (Identity, error) {
	cb, err := parseCallback(query)
	if err != nil {
		return Identity{}, err
	}
	nonce, err := l.consume(ctx, cb.State, browserKey)
	if err != nil {
		return Identity{}, err
	}
	if cb.Issuer != "" && cb.Issuer != l.cfg.Issuer {
		return Identity{}, causeway.Errorf(causeway.EUNAUTHORIZED, "sso_issuer_mismatch",
			"the sign-in answer comes from %q, not from the bank's identity provider; start the sign-in again", cb.Issuer)
	}
	if cb.Error != "" {
		return Identity{}, providerError(cb)
	}
	if cb.Code == "" {
		return Identity{}, causeway.Errorf(causeway.EBADREQUEST, "sso_code_missing", "the sign-in answer has neither a code nor an error; start the sign-in again")
	}
	p, err := l.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	hctx := oidc.ClientContext(ctx, l.client)
	tok, err := p.oauth.Exchange(hctx, cb.Code, oauth2.VerifierOption(verifierFor(browserKey)))
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && (re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client"):
			// Not the operator's doing: no sign-in works until the
			// settings are fixed.
			return Identity{}, fail(err, causeway.EUNAVAILABLE, "sso_client_refused",
				"the bank's identity provider does not accept Causeway's client credentials (%s); an administrator must check --oidc-client-id and --oidc-client-secret", re.ErrorCode)
		case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500:
			return Identity{}, fail(err, causeway.EUNAUTHORIZED, "sso_code_refused",
				"the identity provider refused the sign-in code (%s); start the sign-in again", oauthCode(re.ErrorCode))
		default:
			return Identity{}, fail(err, causeway.EUNAVAILABLE, "sso_unavailable", "the bank's identity provider cannot be reached; try again shortly")
		}
	}
	claims, subject, err := l.verify(hctx, p, tok, nonce)
	if err != nil {
		return Identity{}, err
	}
	if err := l.fillFromUserinfo(hctx, p, tok, subject, claims); err != nil {
		return Identity{}, err
	}
	v, _ := claimValue(claims, l.cfg.RoleClaim)
	values, err := claimStrings(l.cfg.RoleClaim, v)
	if err != nil {
		return Identity{}, err
	}
	roles := l.cfg.mapRoles(values)
	if len(roles) == 0 {
		return Identity{}, errNoRole(l.cfg.RoleClaim, values)
	}
	return Identity{
		Issuer:        l.cfg.Issuer,
		Subject:       subject,
		Email:         text(claims, 320, "email"),
		EmailVerified: truthy(claims["email_verified"]),
		Name:          text(claims, 200, "name", "preferred_username"),
		Roles:         roles,
	}, nil
}

// consume deletes the login of state begun with browserKey and returns
// its nonce.
func (l *Login) consume(ctx context.Context, state, browserKey string) (nonce string, err error) {
	var expires int64
	err = l.db.Tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `DELETE FROM sso_logins WHERE state_hash = $1 AND browser_hash = $2
			RETURNING nonce, expires_at`, hash(state), hash(browserKey)).Scan(&nonce, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", causeway.Errorf(causeway.EUNAUTHORIZED, "sso_state_invalid",
			"this sign-in is unknown, was finished already, or was begun in another browser; start the sign-in again from the console")
	}
	if err != nil {
		return "", store.Classify(err)
	}
	if !l.now().Before(store.FromMicros(expires)) {
		return "", causeway.Errorf(causeway.EUNAUTHORIZED, "sso_state_expired",
			"this sign-in took longer than %d minutes; start it again from the console", int(StateTTL.Minutes()))
	}
	return nonce, nil
}

// verify checks the ID token of tok and returns its claims and subject.
func (l *Login) verify(ctx context.Context, p *provider, tok *oauth2.Token, nonce string) (claims map[string]any, subject string, err error) {
	invalid := func(cause error, what string) error {
		return fail(cause, causeway.EUNAUTHORIZED, "sso_token_invalid",
			"the identity provider's ID token %s; the sign-in is refused", what)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", invalid(nil, "is missing")
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, "", invalid(err, "fails verification (signature, issuer, audience or expiry)")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, "", invalid(nil, "was not issued for this sign-in (nonce)")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, "", invalid(err, "does not match its access token (at_hash)")
		}
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, "", invalid(err, "has unreadable claims")
	}
	// go-oidc checks that the audience holds the client id; with several
	// audiences OpenID Connect Core 3.1.3.7 also wants us as the
	// authorized party.
	if azp, ok := claims["azp"]; len(idt.Audience) > 1 || ok {
		if azp != l.cfg.ClientID {
			return nil, "", invalid(nil, "was issued to another party (azp)")
		}
	}
	if idt.Subject == "" || len(idt.Subject) > 255 || textrule.Check("sub", idt.Subject, textrule.SingleLine) != nil {
		return nil, "", invalid(nil, "has no usable subject")
	}
	return claims, idt.Subject, nil
}

// fillFromUserinfo adds the userinfo endpoint's claims to claims where the
// ID token lacks the role claim, the email or the name. A provider without
// the endpoint, or with the claims in the token, is not asked.
func (l *Login) fillFromUserinfo(ctx context.Context, p *provider, tok *oauth2.Token, subject string, claims map[string]any) error {
	_, haveRoles := claimValue(claims, l.cfg.RoleClaim)
	_, haveEmail := claims["email"]
	_, haveName := claims["name"]
	if (haveRoles && haveEmail && haveName) || p.oidc.UserInfoEndpoint() == "" {
		return nil
	}
	info, err := p.oidc.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	var more map[string]any
	if err == nil {
		err = info.Claims(&more)
	}
	if err != nil {
		if !haveRoles {
			return fail(err, causeway.EUNAVAILABLE, "sso_unavailable", "the identity provider's userinfo endpoint cannot be read; try again shortly")
		}
		l.log.WarnContext(ctx, "userinfo failed; going on with the ID token's claims", "error", err.Error())
		return nil
	}
	// OpenID Connect Core 5.3.2: userinfo of another subject must not be used.
	if info.Subject != subject {
		return fail(nil, causeway.EUNAUTHORIZED, "sso_token_invalid", "the identity provider's userinfo names another subject than its ID token; the sign-in is refused")
	}
	for k, v := range more {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return nil
}

// providerError turns the provider's error answer into an error the
// operator can read.
func providerError(cb callback) error {
	desc := cb.ErrorDescription
	if len(desc) > 300 {
		desc = desc[:300] + "…"
	}
	if desc != "" {
		desc = ": " + desc
	}
	if cb.Error == "access_denied" {
		return causeway.Errorf(causeway.EFORBIDDEN, "sso_access_denied",
			"the bank's identity provider refused the sign-in (access_denied%s)", desc)
	}
	return causeway.Errorf(causeway.EUNAUTHORIZED, "sso_idp_error",
		"the bank's identity provider answered %s%s; start the sign-in again", oauthCode(cb.Error), desc)
}

func errNoRole(claim string, values []string) error {
	if len(values) == 0 {
		return causeway.Errorf(causeway.EFORBIDDEN, "no_role",
			"the identity provider sent no %s claim for you, so you hold no Causeway role; ask the bank's identity team to add you to a group mapped to a role", claim)
	}
	shown := values
	if len(shown) > 10 {
		shown = shown[:10]
	}
	return causeway.Errorf(causeway.EFORBIDDEN, "no_role",
		"none of your %d %s values (%q…) is a Causeway role or mapped to one by --oidc-role-map", len(values), claim, shown)
}

var oauthCodePattern = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// oauthCode returns an OAuth2 error code fit to quote, or "an error".
func oauthCode(s string) string {
	if oauthCodePattern.MatchString(s) {
		return s
	}
	return "an error"
}

// text returns the first of names that is a string claim of one line and
// at most max bytes, or "".
func text(claims map[string]any, max int, names ...string) string {
	for _, n := range names {
		if s, ok := claims[n].(string); ok && s != "" && len(s) <= max && textrule.Check(n, s, textrule.SingleLine) == nil {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// truthy reads a boolean claim that some providers send as a string.
func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// Jobs are single sign-on's periodic jobs for the cluster's leader:
// pruning expired logins, hourly.
func (l *Login) Jobs() []leader.Job {
	return []leader.Job{{Name: "prune expired single sign-on logins", Every: time.Hour, Do: func(ctx context.Context) (int64, error) {
		return l.Prune(ctx, l.now())
	}}}
}

// Prune deletes the logins that expired before now, finished or not, and
// says how many.
func (l *Login) Prune(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sso_logins WHERE expires_at <= $1`, store.Micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, store.Classify(err)
}

// randomString returns 256 random bits, base64url.
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (Go 1.24+ crashes rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hash is how states and browser keys are stored: the hex SHA-256.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// verifierFor derives a login's PKCE verifier from its browser key, so the
// database never holds it: the code a callback URL carries is useless
// without the browser it was meant for, even to someone who can read the
// database. 43 base64url characters: RFC 7636's shortest verifier, with
// 256 bits.
func verifierFor(browserKey string) string {
	m := hmac.New(sha256.New, []byte(browserKey))
	m.Write([]byte("causeway sso pkce verifier"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
