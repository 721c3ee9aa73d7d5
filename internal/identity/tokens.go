package identity

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// accessTokenType is the JWT "typ" of access tokens (RFC 9068), so that no
// other JWT signed by the same key can pass for one.
const accessTokenType = "at+jwt"

// generationClaim is the private claim that carries the app's token
// generation at issue. Every suspension raises the app's generation, and a
// token of another generation is refused: that is what keeps a token from
// before a suspension dead after the bank reinstates the app.
//
// A generation, not a time: "iat" has whole seconds, so a token minted
// just before a suspension and one minted just after a reinstatement in
// the same second would look alike, and each node's clock differs from
// the others'. The generation is read in the same statement as the app's
// status when a token is issued, so a token is either refused (the app is
// suspended) or carries the generation from before the suspension.
const generationClaim = "gen"

// TokenRequest is a client-credentials grant: the app's credentials and
// the scopes it asks for.
type TokenRequest struct {
	ClientID     string
	ClientSecret string
	// Scopes narrows the token to a subset of the app's scopes; empty
	// means all of them.
	Scopes []string
}

// AccessToken is an issued access token.
type AccessToken struct {
	Token     string
	Scopes    []string
	ExpiresIn time.Duration
	AppID     string
}

// Errors of IssueToken, which the token endpoint maps to RFC 6749 codes.
func errInvalidClient() error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_client", "client authentication failed")
}

// IssueToken authenticates an app by its client credentials and issues an
// access token (RFC 6749 §4.4). Errors: EUNAUTHORIZED invalid_client for
// an unknown client, a wrong secret or a deleted app; EFORBIDDEN
// unauthorized_client for an app that is pending approval or suspended;
// EINVALID invalid_scope for a scope the app does not hold.
func (s *Service) IssueToken(ctx context.Context, req TokenRequest) (*AccessToken, error) {
	if req.ClientID == "" || len(req.ClientID) > 128 || req.ClientSecret == "" || len(req.ClientSecret) > 256 {
		return nil, errInvalidClient()
	}
	var appID, developerID, hash, scopes, status string
	var deleted sql.NullInt64
	var generation int64
	err := s.db.QueryRowContext(ctx, `SELECT id, developer_id, secret_hash, scopes, status, deleted_at, token_generation FROM identity_apps WHERE client_id = $1`,
		req.ClientID).Scan(&appID, &developerID, &hash, &scopes, &status, &deleted, &generation)
	if errors.Is(err, sql.ErrNoRows) {
		// Compare anyway, so an unknown client id takes as long as a wrong
		// secret.
		secretMatches(req.ClientSecret, strings.Repeat("0", 64))
		return nil, errInvalidClient()
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	if !secretMatches(req.ClientSecret, hash) || deleted.Valid {
		return nil, errInvalidClient()
	}
	switch status {
	case auth.AppActive:
	case auth.AppPendingApproval:
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "unauthorized_client", "the app is waiting for the bank's approval")
	default:
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "unauthorized_client", "the app is %s", status)
	}
	held := strings.Fields(scopes)
	granted := held
	if len(req.Scopes) > 0 {
		granted = granted[:0:0]
		for _, sc := range req.Scopes {
			if !slices.Contains(held, sc) {
				return nil, causeway.Errorf(causeway.EINVALID, "invalid_scope", "the app does not hold scope %q", truncate(sc, 64))
			}
			if !slices.Contains(granted, sc) {
				granted = append(granted, sc)
			}
		}
	}
	key, err := s.currentKey(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	tok, err := jwt.NewBuilder().
		Issuer(s.opts.Issuer).
		Subject(req.ClientID).
		Audience([]string{Audience}).
		IssuedAt(now).
		Expiration(now.Add(s.opts.TokenTTL)).
		JwtID(ids.New("jti")).
		Claim("client_id", req.ClientID).
		Claim("scope", strings.Join(granted, " ")).
		Claim(generationClaim, generation).
		Build()
	if err != nil {
		return nil, err
	}
	// "aud" as a plain string, as in RFC 9068's examples: every JWT
	// library accepts it, and so do hand-written checks.
	tok.Options().Enable(jwt.FlattenAudience)
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, key.KID); err != nil {
		return nil, err
	}
	if err := hdr.Set(jws.TypeKey, accessTokenType); err != nil {
		return nil, err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA(), key.private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "access token issued", "app_id", appID, "client_id", req.ClientID, "scope", strings.Join(granted, " "), "kid", key.KID)
	return &AccessToken{Token: string(signed), Scopes: granted, ExpiresIn: s.opts.TokenTTL, AppID: appID}, nil
}

func errInvalidToken(msg string) error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the access token is invalid: %s", msg)
}

// AuthenticateApp verifies an access token and returns the app it was
// issued to, with the token's scopes. The token must be an EdDSA-signed
// JWT from a key of this installation, unexpired (within a small clock
// leeway), for Audience, and from Options.Issuer; and its
// app must still be active, so suspending or deleting an app stops its
// tokens at once (one indexed read per call), and of the token generation
// the token was issued in, so a token from before a suspension stays dead
// after the app is reinstated. Errors, all EUNAUTHORIZED: invalid_token,
// token_expired, app_inactive, token_revoked.
func (s *Service) AuthenticateApp(ctx context.Context, bearer string) (*auth.App, error) {
	if !looksLikeJWS(bearer) {
		return nil, errInvalidToken("not a compact JWS")
	}
	// The key provider checks the header before any key is used: the
	// algorithm is the one we sign with (never none or HS*, which would
	// let anyone who knows a public key forge tokens), and the kid is one
	// of ours. lookupErr keeps a database failure apart from a bad token.
	now := s.now()
	cached, cacheKey, ok := s.cache.token(bearer, now)
	if !ok {
		v, err := s.verifyToken(ctx, bearer)
		if err != nil {
			return nil, err
		}
		s.cache.verified.Add(cacheKey, v)
		cached = v
	}
	return s.appOf(ctx, cached.clientID, cached.generation, strings.Fields(cached.scope))
}

// appOf returns the app with the given client id as a credential of it
// presents it, with the scopes the credential carries as far as the app
// still holds them. The app must be active, and of the given token
// generation (the credential's: a suspension since makes it
// token_revoked).
func (s *Service) appOf(ctx context.Context, clientID string, generation int64, scopes []string) (*auth.App, error) {
	row, ok := s.cache.app(clientID, time.Now())
	if !ok {
		epoch := s.cache.appEpoch()
		var deleted sql.NullInt64
		row = appRow{fetched: time.Now()}
		stmt, err := s.db.Stmt(ctx, `SELECT id, developer_id, scopes, status, deleted_at, token_generation FROM identity_apps WHERE client_id = $1`)
		if err != nil {
			return nil, err
		}
		err = stmt.QueryRowContext(ctx, clientID).Scan(&row.id, &row.developerID, &row.scopes, &row.status, &deleted, &row.generation)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errInvalidToken("unknown client")
		}
		if err != nil {
			return nil, store.Classify(err)
		}
		row.deleted = deleted.Valid
		s.cache.fillApp(clientID, row, epoch)
	}
	if row.deleted || row.status != auth.AppActive {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "app_inactive", "the app is not active")
	}
	if generation != row.generation {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "token_revoked",
			"the credential was issued before the app was suspended; get a new access token from /oauth2/token")
	}
	app := auth.App{ID: row.id, DeveloperID: row.developerID, ClientID: clientID, Generation: generation}
	// The credential's scopes, as far as the app still holds them.
	held := strings.Fields(row.scopes)
	app.Scopes = []string{}
	for _, sc := range scopes {
		if slices.Contains(held, sc) && !slices.Contains(app.Scopes, sc) {
			app.Scopes = append(app.Scopes, sc)
		}
	}
	return &app, nil
}

// looksLikeJWS is a cheap first filter: a bounded compact serialization,
// three base64url parts. It keeps JSON serializations (which may carry
// several signatures) and oversized input away from the parser.
func looksLikeJWS(s string) bool {
	if len(s) == 0 || len(s) > maxAccessTokenLength || strings.Count(s, ".") != 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
