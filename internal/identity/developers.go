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
	return s.signUp(ctx, email, password, organization, true)
}

// CreateDeveloper signs a developer up like SignUp, with the same rules
// and errors, but issues no developer token: the portal keeps a session of
// its own instead of handing a 30-day API token to the browser.
func (s *Service) CreateDeveloper(ctx context.Context, email, password, organization string) (*auth.Developer, error) {
	dev, _, err := s.signUp(ctx, email, password, organization, false)
	return dev, err
}

func (s *Service) signUp(ctx context.Context, email, password, organization string, issue bool) (*auth.Developer, DeveloperToken, error) {
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
	var token DeveloperToken
	if issue {
		token = DeveloperToken{Token: newDeveloperToken(), ExpiresAt: now.Add(DeveloperTokenTTL)}
	}
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
		if !issue {
			return nil
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
	dev, rehash, err := s.credentials(ctx, email, password)
	if err != nil {
		return DeveloperToken{}, err
	}
	now := s.now()
	token := DeveloperToken{Token: newDeveloperToken(), ExpiresAt: now.Add(DeveloperTokenTTL)}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := storeRehash(ctx, tx, dev.ID, rehash); err != nil {
			return err
		}
		// Expired tokens are of no use to anyone; drop them while here.
		if _, err := tx.ExecContext(ctx, `DELETE FROM identity_developer_tokens WHERE developer_id = $1 AND expires_at < $2`,
			dev.ID, store.Micros(now)); err != nil {
			return err
		}
		return insertDeveloperToken(ctx, tx, dev.ID, token, now)
	})
	if err != nil {
		return DeveloperToken{}, dbErr(err)
	}
	s.log.InfoContext(ctx, "developer logged in", "developer_id", dev.ID)
	return token, nil
}

// CheckPassword checks a developer's email and password like LogIn, with
// the same errors, and returns the developer without issuing a token: the
// portal keeps a session of its own.
func (s *Service) CheckPassword(ctx context.Context, email, password string) (*auth.Developer, error) {
	dev, rehash, err := s.credentials(ctx, email, password)
	if err != nil {
		return nil, err
	}
	if rehash != "" {
		if err := s.tx(ctx, func(tx *sql.Tx) error { return storeRehash(ctx, tx, dev.ID, rehash) }); err != nil {
			return nil, dbErr(err)
		}
	}
	s.log.InfoContext(ctx, "developer logged in to the portal", "developer_id", dev.ID)
	return dev, nil
}

// credentials checks an email and password. With them right it returns
// the developer and, when the stored hash was made at another cost, the
// password hashed at the current one (the password is at hand only now).
// A wrong email and a wrong password give the same error after the same
// work.
func (s *Service) credentials(ctx context.Context, email, password string) (*auth.Developer, string, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if len(key) > 254 || len(password) > maxPasswordLength {
		return nil, "", errInvalidCredentials()
	}
	account, address := loginKeys(ctx, key)
	if err := s.takeLogin(ctx, account, address); err != nil {
		return nil, "", err
	}
	var dev auth.Developer
	var hash string
	err := s.db.QueryRowContext(ctx, `SELECT id, organization_id, email, password_hash FROM identity_developers WHERE email_key = $1`,
		key).Scan(&dev.ID, &dev.OrganizationID, &dev.Email, &hash)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, "", store.Classify(err)
	}
	if !found {
		hash = s.dummyHash
	}
	release, err := s.acquireHashing(ctx)
	if err != nil {
		return nil, "", err
	}
	ok, stale, err := verifyPassword(password, hash, s.opts.PasswordCost)
	release()
	if err != nil {
		return nil, "", err
	}
	if !found || !ok {
		return nil, "", errInvalidCredentials()
	}
	s.loggedIn(ctx, account, address)
	var rehash string
	if stale {
		if rehash, err = hashPassword(password, s.opts.PasswordCost); err != nil {
			return nil, "", err
		}
	}
	return &dev, rehash, nil
}

// storeRehash stores a password hash made at the current cost, if any.
func storeRehash(ctx context.Context, tx *sql.Tx, developerID, rehash string) error {
	if rehash == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE identity_developers SET password_hash = $1 WHERE id = $2`, rehash, developerID)
	return err
}

// IssueDeveloperToken issues a developer token valid for ttl (at most
// DeveloperTokenTTL) to a developer already authenticated some other way:
// the portal's "try it" form calls a developer operation with one and
// revokes it right after.
func (s *Service) IssueDeveloperToken(ctx context.Context, dev *auth.Developer, ttl time.Duration) (DeveloperToken, error) {
	if dev == nil || dev.ID == "" {
		return DeveloperToken{}, errUnauthenticated()
	}
	if ttl <= 0 || ttl > DeveloperTokenTTL {
		ttl = DeveloperTokenTTL
	}
	now := s.now()
	token := DeveloperToken{Token: newDeveloperToken(), ExpiresAt: now.Add(ttl)}
	err := s.tx(ctx, func(tx *sql.Tx) error { return insertDeveloperToken(ctx, tx, dev.ID, token, now) })
	if err != nil {
		return DeveloperToken{}, dbErr(err)
	}
	return token, nil
}

// Developer returns the developer with id. Errors: ENOTFOUND.
func (s *Service) Developer(ctx context.Context, id string) (*auth.Developer, error) {
	var dev auth.Developer
	err := s.db.QueryRowContext(ctx, `SELECT id, organization_id, email FROM identity_developers WHERE id = $1`, id).
		Scan(&dev.ID, &dev.OrganizationID, &dev.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "developer_not_found", "no such developer")
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return &dev, nil
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
