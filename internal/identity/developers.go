package identity

import (
	"context"
	"database/sql"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// DeveloperToken is a developer's bearer token. Only its hash is stored:
// the token itself is shown once, at sign-up or login.
type DeveloperToken struct {
	Token     string
	ExpiresAt time.Time
}

// errInvalidCredentials is the one answer to a wrong email or a wrong
// password, so a login attempt does not tell which accounts exist.
func errInvalidCredentials() error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_credentials", "email or password is wrong")
}

func errInvalidDeveloperToken() error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the developer token is invalid, expired or revoked")
}

// normalizeEmail checks the address and returns it trimmed, with its
// lower-cased form as the uniqueness key.
func normalizeEmail(email string) (string, string, error) {
	email = strings.TrimSpace(email)
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return "", "", causeway.Errorf(causeway.EINVALID, "invalid_email", "email must be a plain address such as dev@example.com")
	}
	return email, strings.ToLower(email), nil
}

// SignUp creates a developer in a new organization and logs them in.
// Errors: EINVALID invalid_email, weak_password (under MinPasswordLength
// characters), invalid_organization; ECONFLICT email_taken when the email
// (in any letter case) already has an account; ERATELIMIT
// too_many_sign_ups beyond Limits.SignUpsPerHour from the caller's address
// (httpapi.ClientAddr).
func (s *Service) SignUp(ctx context.Context, email, password, organization string) (*auth.Developer, DeveloperToken, error) {
	email, key, err := normalizeEmail(email)
	if err != nil {
		return nil, DeveloperToken{}, err
	}
	organization = strings.TrimSpace(organization)
	if organization == "" || utf8.RuneCountInString(organization) > 200 {
		return nil, DeveloperToken{}, causeway.Errorf(causeway.EINVALID, "invalid_organization", "organization must be 1 to 200 characters")
	}
	if err := checkPassword(password, email); err != nil {
		return nil, DeveloperToken{}, err
	}
	// Counted once the input is valid, whatever comes of it: an attempt
	// answered email_taken counts too, so the answer cannot be used to
	// find out in bulk who has an account.
	if err := s.takeSignUp(ctx); err != nil {
		return nil, DeveloperToken{}, err
	}
	release, err := s.acquireHashing(ctx)
	if err != nil {
		return nil, DeveloperToken{}, err
	}
	hash, err := hashPassword(password, s.opts.PasswordCost)
	release()
	if err != nil {
		return nil, DeveloperToken{}, err
	}

	dev := &auth.Developer{ID: ids.New("dev"), OrganizationID: ids.New("org"), Email: email}
	now := s.now()
	token := DeveloperToken{Token: newDeveloperToken(), ExpiresAt: now.Add(DeveloperTokenTTL)}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO identity_organizations (id, name, created_at) VALUES ($1, $2, $3)`,
			dev.OrganizationID, organization, store.Micros(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO identity_developers (id, organization_id, email, email_key, password_hash, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, dev.ID, dev.OrganizationID, email, key, hash, store.Micros(now)); err != nil {
			if store.IsUniqueViolation(err) {
				return causeway.Errorf(causeway.ECONFLICT, "email_taken", "an account with this email already exists; log in instead")
			}
			return err
		}
		return insertDeveloperToken(ctx, tx, dev.ID, token, now)
	})
	if err != nil {
		return nil, DeveloperToken{}, dbErr(err)
	}
	s.log.InfoContext(ctx, "developer signed up", "developer_id", dev.ID, "organization_id", dev.OrganizationID)
	return dev, token, nil
}

func insertDeveloperToken(ctx context.Context, tx *sql.Tx, developerID string, t DeveloperToken, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO identity_developer_tokens (token_hash, developer_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4)`, secretHash(t.Token), developerID, store.Micros(now), store.Micros(t.ExpiresAt))
	return err
}

// LogIn checks a developer's email and password and returns a new token,
// valid for DeveloperTokenTTL. A wrong email and a wrong password give the
// same EUNAUTHORIZED invalid_credentials error, after the same work. Too
// many failures for the email, or from the caller's address, are
// ERATELIMIT too_many_login_attempts with a RetryAfter (see Limits); the
// attempt is then refused before the password is looked at.
func (s *Service) LogIn(ctx context.Context, email, password string) (DeveloperToken, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if len(key) > 254 || len(password) > maxPasswordLength {
		return DeveloperToken{}, errInvalidCredentials()
	}
	account, address := loginKeys(ctx, key)
	if err := s.takeLogin(ctx, account, address); err != nil {
		return DeveloperToken{}, err
	}
	var devID, hash string
	err := s.db.QueryRowContext(ctx, `SELECT id, password_hash FROM identity_developers WHERE email_key = $1`, key).Scan(&devID, &hash)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return DeveloperToken{}, store.Classify(err)
	}
	if !found {
		hash = s.dummyHash
	}
	release, err := s.acquireHashing(ctx)
	if err != nil {
		return DeveloperToken{}, err
	}
	ok, stale, err := verifyPassword(password, hash, s.opts.PasswordCost)
	release()
	if err != nil {
		return DeveloperToken{}, err
	}
	if !found || !ok {
		return DeveloperToken{}, errInvalidCredentials()
	}
	s.loggedIn(ctx, account, address)

	now := s.now()
	token := DeveloperToken{Token: newDeveloperToken(), ExpiresAt: now.Add(DeveloperTokenTTL)}
	var rehash string
	if stale {
		// The password is at hand only now: move it to the current cost.
		if rehash, err = hashPassword(password, s.opts.PasswordCost); err != nil {
			return DeveloperToken{}, err
		}
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if rehash != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE identity_developers SET password_hash = $1 WHERE id = $2`, rehash, devID); err != nil {
				return err
			}
		}
		// Expired tokens are of no use to anyone; drop them while here.
		if _, err := tx.ExecContext(ctx, `DELETE FROM identity_developer_tokens WHERE developer_id = $1 AND expires_at < $2`,
			devID, store.Micros(now)); err != nil {
			return err
		}
		return insertDeveloperToken(ctx, tx, devID, token, now)
	})
	if err != nil {
		return DeveloperToken{}, dbErr(err)
	}
	s.log.InfoContext(ctx, "developer logged in", "developer_id", devID)
	return token, nil
}

// LogOut revokes a developer token. Revoking an unknown or already revoked
// token is not an error.
func (s *Service) LogOut(ctx context.Context, token string) error {
	if token == "" || len(token) > maxDeveloperTokenSize {
		return nil
	}
	return dbErr(s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE identity_developer_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL`,
			store.Micros(s.now()), secretHash(token))
		return err
	}))
}

// AuthenticateDeveloper returns the developer a developer token belongs
// to. Errors: EUNAUTHORIZED invalid_token for an unknown, expired or
// revoked token.
func (s *Service) AuthenticateDeveloper(ctx context.Context, token string) (*auth.Developer, error) {
	if !strings.HasPrefix(token, developerTokenPrefix) || len(token) > maxDeveloperTokenSize {
		return nil, errInvalidDeveloperToken()
	}
	var dev auth.Developer
	var expires int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT d.id, d.organization_id, d.email, t.expires_at, t.revoked_at
		FROM identity_developer_tokens t JOIN identity_developers d ON d.id = t.developer_id
		WHERE t.token_hash = $1`, secretHash(token)).Scan(&dev.ID, &dev.OrganizationID, &dev.Email, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errInvalidDeveloperToken()
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	if revoked.Valid || !s.now().Before(store.FromMicros(expires)) {
		return nil, errInvalidDeveloperToken()
	}
	return &dev, nil
}
