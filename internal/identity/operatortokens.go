package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// Operator tokens are an operator's personal bearer tokens for the bank
// API, for scripts: each holds some of its operator's roles, expires, can
// be revoked, and is stored as its SHA-256 only. A call with one acts as
// the operator with the token's roles narrowed to what the operator still
// holds, and is refused once the operator is disabled.

// Operator token lifetimes.
const (
	DefaultOperatorTokenTTL = 30 * 24 * time.Hour
	MaxOperatorTokenTTL     = 365 * 24 * time.Hour
	operatorTokenPrefix     = "cwop_"
	maxOperatorTokenSize    = 256
)

// OperatorToken is an operator token as its operator sees it; Token is
// set once, when it is issued.
type OperatorToken struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Token     string     `json:"token,omitempty"`
	Roles     auth.Roles `json:"roles"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func errInvalidOperatorToken() error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the operator token is invalid, expired or revoked")
}

// IssueOperatorToken issues a token named name to the operator calling,
// holding roles (all of the operator's when empty) and expiring after ttl
// (DefaultOperatorTokenTTL when zero, at most MaxOperatorTokenTTL). The
// admin token is no operator and gets none. Errors: EFORBIDDEN
// operator_only, role_not_held; EINVALID invalid_name, invalid_roles,
// invalid_ttl.
func (s *Service) IssueOperatorToken(ctx context.Context, op *auth.Operator, name string, roles auth.Roles, ttl time.Duration) (OperatorToken, error) {
	if op == nil || op.IsAdminToken() {
		return OperatorToken{}, causeway.Errorf(causeway.EFORBIDDEN, "operator_only", "operator tokens belong to a named operator; the admin token cannot have one")
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return OperatorToken{}, causeway.Errorf(causeway.EINVALID, "invalid_name", "a token needs a name of 1 to 100 characters, e.g. the script that uses it")
	}
	if len(roles) == 0 {
		roles = op.Roles
	}
	roles = auth.NewRoles(roles...)
	if err := checkRoles(roles); err != nil {
		return OperatorToken{}, err
	}
	for _, r := range roles {
		if !op.Roles.Allow(r) {
			return OperatorToken{}, causeway.Errorf(causeway.EFORBIDDEN, "role_not_held", "a token can hold only roles its operator holds; %s is not one of them", r)
		}
	}
	switch {
	case ttl == 0:
		ttl = DefaultOperatorTokenTTL
	case ttl < time.Minute || ttl > MaxOperatorTokenTTL:
		return OperatorToken{}, causeway.Errorf(causeway.EINVALID, "invalid_ttl", "a token lives from a minute to 365 days")
	}
	now := s.now()
	t := OperatorToken{ID: ids.New("opt"), Name: name, Token: randomString(operatorTokenPrefix, 32), Roles: roles,
		CreatedAt: store.FromMicros(store.Micros(now)), ExpiresAt: store.FromMicros(store.Micros(now.Add(ttl)))}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// The operator's row is read in the same statement: a token is
		// issued only to an operator active now.
		res, err := tx.ExecContext(ctx, `INSERT INTO identity_operator_tokens (id, operator_id, name, token_hash, roles, created_at, expires_at)
			SELECT $1, id, $2, $3, $4, $5, $6 FROM identity_operators WHERE id = $7 AND status = $8`,
			t.ID, name, secretHash(t.Token), roles.String(), store.Micros(t.CreatedAt), store.Micros(t.ExpiresAt), op.ID, OperatorActive)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return causeway.Errorf(causeway.EUNAUTHORIZED, "session_ended", "the operator is not active")
		}
		return audit.Record(ctx, tx, audit.Change{Action: "operator_token.create", TargetType: "operator_token", TargetID: t.ID,
			After: map[string]any{"operator_id": op.ID, "name": name, "roles": roles, "expires_at": t.ExpiresAt}})
	})
	if err != nil {
		return OperatorToken{}, dbErr(err)
	}
	s.log.InfoContext(ctx, "operator token issued", "operator_id", op.ID, "token_id", t.ID, "roles", roles.String())
	return t, nil
}

// OperatorTokens lists an operator's tokens, newest first, without the
// tokens themselves.
func (s *Service) OperatorTokens(ctx context.Context, operatorID string) ([]OperatorToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, roles, created_at, expires_at, revoked_at FROM identity_operator_tokens
		WHERE operator_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1000`, operatorID)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	out := []OperatorToken{}
	for rows.Next() {
		var t OperatorToken
		var roles string
		var created, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &roles, &created, &expires, &revoked); err != nil {
			return nil, store.Classify(err)
		}
		t.Roles = auth.ParseRoles(roles)
		t.CreatedAt, t.ExpiresAt, t.RevokedAt = store.FromMicros(created), store.FromMicros(expires), nullableTime(revoked)
		out = append(out, t)
	}
	return out, store.Classify(rows.Err())
}

// RevokeOperatorToken revokes one of the operator's tokens; it is refused
// at once on every node. Errors: ENOTFOUND token_not_found (another
// operator's token too); ECONFLICT token_revoked when it was already.
func (s *Service) RevokeOperatorToken(ctx context.Context, operatorID, tokenID string) error {
	return dbErr(s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE identity_operator_tokens SET revoked_at = $1
			WHERE id = $2 AND operator_id = $3 AND revoked_at IS NULL`, store.Micros(s.now()), tokenID, operatorID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			if err != nil {
				return err
			}
			return audit.Record(ctx, tx, audit.Change{Action: "operator_token.revoke", TargetType: "operator_token", TargetID: tokenID,
				Before: map[string]string{"operator_id": operatorID}})
		}
		var exists int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM identity_operator_tokens WHERE id = $1 AND operator_id = $2`, tokenID, operatorID).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return causeway.Errorf(causeway.ENOTFOUND, "token_not_found", "no such token")
		}
		if err != nil {
			return err
		}
		return causeway.Errorf(causeway.ECONFLICT, "token_revoked", "the token was revoked already")
	}))
}

// AuthenticateOperatorToken returns the operator an operator token acts
// as, with the token's roles narrowed to the operator's current ones.
// Errors: EUNAUTHORIZED invalid_token for an unknown, expired or revoked
// token, a disabled operator, or one who no longer holds any of the
// token's roles.
func (s *Service) AuthenticateOperatorToken(ctx context.Context, token string) (*auth.Operator, error) {
	if !strings.HasPrefix(token, operatorTokenPrefix) || len(token) > maxOperatorTokenSize {
		return nil, errInvalidOperatorToken()
	}
	var op auth.Operator
	var tokenRoles, operatorRoles, status string
	var expires int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT o.id, o.bank_id, o.email, o.display_name, o.roles, o.status, t.roles, t.expires_at, t.revoked_at
		FROM identity_operator_tokens t JOIN identity_operators o ON o.id = t.operator_id
		WHERE t.token_hash = $1`, secretHash(token)).
		Scan(&op.ID, &op.BankID, &op.Email, &op.Name, &operatorRoles, &status, &tokenRoles, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errInvalidOperatorToken()
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	op.Roles = auth.ParseRoles(tokenRoles).Within(auth.ParseRoles(operatorRoles))
	if revoked.Valid || status != OperatorActive || len(op.Roles) == 0 || !s.now().Before(store.FromMicros(expires)) {
		return nil, errInvalidOperatorToken()
	}
	return &op, nil
}
