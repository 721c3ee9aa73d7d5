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
	"github.com/causewayhq/causeway/internal/throttle"
)

// Operators are the bank's staff: named accounts with roles (auth.Role),
// a password hashed like developers' passwords, a TOTP second factor with
// recovery codes, personal API tokens (operatortokens.go) and console
// sessions bound to the account's generation. The shared admin token stays
// for automation and bootstrap; it creates the first operator, or
// `causeway operator create` does.

// Operator statuses.
const (
	OperatorActive   = "active"
	OperatorDisabled = "disabled"
)

// Operator is a bank operator's account as the bank sees it: no password,
// second factor or token is ever part of it.
type Operator struct {
	ID string `json:"id"`
	// BankID is the bank the operator works for (auth.HomeBank).
	BankID string     `json:"bank_id"`
	Email  string     `json:"email"`
	Name   string     `json:"display_name"`
	Roles  auth.Roles `json:"roles"`
	// Status is OperatorActive or OperatorDisabled.
	Status string `json:"status"`
	// TOTP reports whether the second factor is enrolled.
	TOTP bool `json:"totp_enabled"`
	// SSO reports whether the operator signs in through the bank's
	// identity provider.
	SSO       bool      `json:"sso"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Generation moves with every change of password, roles, second
	// factor or status; a console session is valid in one generation.
	Generation int64 `json:"-"`
}

// Caller returns the auth.Operator the account acts as.
func (o *Operator) Caller() *auth.Operator {
	return &auth.Operator{ID: o.ID, BankID: o.BankID, Email: o.Email, Name: o.Name, Roles: o.Roles}
}

// NewOperator is what creating an operator takes.
type NewOperator struct {
	Email string
	Name  string
	// Password may be empty for an operator who signs in through the
	// bank's identity provider only.
	Password string
	Roles    auth.Roles
}

func errOperatorNotFound() error {
	return causeway.Errorf(causeway.ENOTFOUND, "operator_not_found", "no such operator")
}

// checkRoles refuses an empty or unknown role set.
func checkRoles(roles auth.Roles) error {
	if len(roles) == 0 {
		return causeway.Errorf(causeway.EINVALID, "invalid_roles", "an operator needs at least one role")
	}
	for _, r := range roles {
		if !auth.ValidRole(r) {
			return causeway.Errorf(causeway.EINVALID, "invalid_roles", "unknown role %q; roles are viewer, app-manager, risk-officer, data-steward and admin", r)
		}
	}
	return nil
}

// requireAdmin refuses what only an operator with the admin role, the
// admin token or the bank's own process may do.
func requireAdmin(ctx context.Context, caller auth.Caller) error {
	if err := caller.RequireBank(); err != nil {
		return err
	}
	if o, ok := auth.OperatorFrom(ctx); ok && !o.Roles.Allow(auth.RoleAdmin) {
		return causeway.Errorf(causeway.EFORBIDDEN, "role_required", "this needs the role %s", auth.RoleAdmin)
	}
	return nil
}

// CreateOperator creates an active operator with roles. Only the bank may
// (an admin operator, the admin token, or the command line). Errors:
// EINVALID invalid_email, invalid_name, invalid_roles, weak_password;
// ECONFLICT email_taken.
func (s *Service) CreateOperator(ctx context.Context, caller auth.Caller, n NewOperator) (*Operator, error) {
	if err := requireAdmin(ctx, caller); err != nil {
		return nil, err
	}
	email, key, err := normalizeEmail(n.Email)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(n.Name)
	if name == "" {
		name = email
	}
	if utf8.RuneCountInString(name) > 200 {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_name", "display name must be at most 200 characters")
	}
	roles := auth.NewRoles(n.Roles...)
	if err := checkRoles(roles); err != nil {
		return nil, err
	}
	var hash sql.NullString
	if n.Password != "" {
		if err := checkPassword(n.Password, email); err != nil {
			return nil, err
		}
		if hash.String, err = s.hash(ctx, n.Password); err != nil {
			return nil, err
		}
		hash.Valid = true
	}
	now := s.now()
	op := &Operator{ID: ids.New("op"), BankID: auth.HomeBank, Email: email, Name: name, Roles: roles, Status: OperatorActive,
		CreatedAt: store.FromMicros(store.Micros(now)), UpdatedAt: store.FromMicros(store.Micros(now)), Generation: 1}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO identity_operators
			(id, bank_id, email, email_key, display_name, password_hash, roles, status, generation, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)`,
			op.ID, op.BankID, email, key, name, hash, roles.String(), OperatorActive, store.Micros(now))
		if store.IsUniqueViolation(err) {
			return causeway.Errorf(causeway.ECONFLICT, "email_taken", "an operator with this email already exists")
		}
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "operator.create", TargetType: "operator", TargetID: op.ID,
			After: op.summary(), By: caller})
	})
	if err != nil {
		return nil, dbErr(err)
	}
	s.log.InfoContext(ctx, "operator created", "operator_id", op.ID, "roles", roles.String(), "by", caller.String())
	return op, nil
}

// hash hashes a password at the service's cost, waiting for a free slot.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	release, err := s.acquireHashing(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return hashPassword(password, s.opts.PasswordCost)
}

const operatorColumns = `id, bank_id, email, display_name, roles, status, totp_enabled, sso_subject IS NOT NULL, created_at, updated_at, generation`

func scanOperator(row store.Scanner) (*Operator, error) {
	var o Operator
	var roles string
	var created, updated int64
	if err := row.Scan(&o.ID, &o.BankID, &o.Email, &o.Name, &roles, &o.Status, &o.TOTP, &o.SSO, &created, &updated, &o.Generation); err != nil {
		return nil, err
	}
	o.Roles = auth.ParseRoles(roles)
	o.CreatedAt, o.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &o, nil
}

// bankOf is the bank whose operators the caller may see: the calling
// operator's, or the home bank for the bank's own process.
func bankOf(ctx context.Context) string {
	if o, ok := auth.OperatorFrom(ctx); ok && o.BankID != "" {
		return o.BankID
	}
	return auth.HomeBank
}

// Operator returns the operator with id, of the caller's bank. Only the
// bank may ask. Errors: ENOTFOUND operator_not_found (another bank's
// operator too).
func (s *Service) Operator(ctx context.Context, caller auth.Caller, id string) (*Operator, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	o, err := s.operator(ctx, id)
	if err == nil && o.BankID != bankOf(ctx) {
		return nil, errOperatorNotFound()
	}
	return o, err
}

func (s *Service) operator(ctx context.Context, id string) (*Operator, error) {
	o, err := scanOperator(s.db.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM identity_operators WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errOperatorNotFound()
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return o, nil
}

// Operators lists the operators of the caller's bank by email. Only the
// bank may ask.
func (s *Service) Operators(ctx context.Context, caller auth.Caller) ([]Operator, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+operatorColumns+` FROM identity_operators WHERE bank_id = $1 ORDER BY email_key LIMIT 1000`,
		bankOf(ctx))
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	out := []Operator{}
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, store.Classify(err)
		}
		out = append(out, *o)
	}
	return out, store.Classify(rows.Err())
}

// OperatorChange is a change an admin makes to another operator; nil
// fields stay as they are.
type OperatorChange struct {
	Roles  *auth.Roles
	Status *string
	Name   *string
}

// ChangeOperator changes another operator's roles, status or name and
// returns the operator as changed. A change of roles or status moves the
// operator's generation, so their console sessions end on every node at
// once, and their tokens are narrowed to the new roles (or refused, once
// disabled). Nobody changes their own roles or status: another admin
// must. Errors: EFORBIDDEN role_required, own_account; EINVALID
// invalid_roles, invalid_status, invalid_name; ENOTFOUND
// operator_not_found.
func (s *Service) ChangeOperator(ctx context.Context, caller auth.Caller, id string, c OperatorChange) (*Operator, error) {
	if err := requireAdmin(ctx, caller); err != nil {
		return nil, err
	}
	if o, ok := auth.OperatorFrom(ctx); ok && o.ID == id && (c.Roles != nil || c.Status != nil) {
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "own_account", "operators cannot change their own roles or status; another admin must")
	}
	if c.Roles != nil {
		roles := auth.NewRoles(*c.Roles...)
		if err := checkRoles(roles); err != nil {
			return nil, err
		}
		c.Roles = &roles
	}
	if c.Status != nil && *c.Status != OperatorActive && *c.Status != OperatorDisabled {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_status", "status must be %s or %s", OperatorActive, OperatorDisabled)
	}
	if c.Name != nil {
		name := strings.TrimSpace(*c.Name)
		if name == "" || utf8.RuneCountInString(name) > 200 {
			return nil, causeway.Errorf(causeway.EINVALID, "invalid_name", "display name must be 1 to 200 characters")
		}
		c.Name = &name
	}
	var out *Operator
	err := s.tx(ctx, func(tx *sql.Tx) error {
		o, err := scanOperator(tx.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM identity_operators WHERE id = $1 AND bank_id = $2`,
			id, bankOf(ctx)))
		if errors.Is(err, sql.ErrNoRows) {
			return errOperatorNotFound()
		}
		if err != nil {
			return err
		}
		before := o.summary()
		moved := false
		if c.Roles != nil && c.Roles.String() != o.Roles.String() {
			o.Roles, moved = *c.Roles, true
		}
		if c.Status != nil && *c.Status != o.Status {
			o.Status, moved = *c.Status, true
		}
		if c.Name != nil {
			o.Name = *c.Name
		}
		generation := o.Generation
		if moved {
			o.Generation++
		}
		o.UpdatedAt = store.FromMicros(store.Micros(s.now()))
		// Compare-and-set on the generation read: of two admins changing
		// one operator at once, the second gets 409 instead of undoing
		// the first without seeing it.
		res, err := tx.ExecContext(ctx, `UPDATE identity_operators SET roles = $1, status = $2, display_name = $3, generation = $4, updated_at = $5
			WHERE id = $6 AND generation = $7`,
			o.Roles.String(), o.Status, o.Name, o.Generation, store.Micros(o.UpdatedAt), id, generation)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errOperatorChanged(err)
		}
		out = o
		return audit.Record(ctx, tx, audit.Change{Action: "operator.change", TargetType: "operator", TargetID: id,
			Before: before, After: o.summary(), By: caller})
	})
	if err != nil {
		return nil, dbErr(err)
	}
	s.log.InfoContext(ctx, "operator changed", "operator_id", id, "roles", out.Roles.String(), "status", out.Status, "by", caller.String())
	return out, nil
}

// summary is an operator in the audit trail: who, and what they may do.
func (o *Operator) summary() map[string]any {
	return map[string]any{"email": o.Email, "name": o.Name, "roles": o.Roles, "status": o.Status}
}

func errOperatorChanged(err error) error {
	if err != nil {
		return err
	}
	return causeway.Errorf(causeway.ECONFLICT, "operator_changed", "the operator was changed meanwhile; read it again")
}

// ChangeOperatorPassword sets a new password for the operator calling,
// who proves the current one. It moves the generation: every console
// session of the operator ends, this one included. Errors: EUNAUTHORIZED
// invalid_credentials; EINVALID weak_password.
func (s *Service) ChangeOperatorPassword(ctx context.Context, operatorID, current, next string) error {
	var email string
	var generation int64
	var hash sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT email, generation, password_hash FROM identity_operators WHERE id = $1`, operatorID).
		Scan(&email, &generation, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return errOperatorNotFound()
	}
	if err != nil {
		return store.Classify(err)
	}
	if !hash.Valid {
		return causeway.Errorf(causeway.EFORBIDDEN, "sso_only", "this operator signs in through the bank's identity provider")
	}
	if ok, _, err := s.verify(ctx, current, hash.String); err != nil || !ok {
		return errInvalidCredentials()
	}
	if err := checkPassword(next, email); err != nil {
		return err
	}
	newHash, err := s.hash(ctx, next)
	if err != nil {
		return err
	}
	return dbErr(s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE identity_operators SET password_hash = $1, generation = generation + 1, updated_at = $2
			WHERE id = $3 AND generation = $4`, newHash, store.Micros(s.now()), operatorID, generation)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errOperatorChanged(err)
		}
		return audit.Record(ctx, tx, audit.Change{Action: "operator.password_change", TargetType: "operator", TargetID: operatorID,
			By: auth.OperatorCaller(operatorID)})
	}))
}

// verify checks a password against a hash, waiting for a free slot.
func (s *Service) verify(ctx context.Context, password, hash string) (ok, stale bool, err error) {
	release, err := s.acquireHashing(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	return verifyPassword(password, hash, s.opts.PasswordCost)
}

// OperatorLogIn checks an operator's email, password and, once enrolled,
// second factor (a TOTP code or an unused recovery code), and returns the
// operator. Wrong email, password or code give the same EUNAUTHORIZED
// invalid_credentials after the same work; a missing code for an enrolled
// operator is EUNAUTHORIZED totp_required. Failures are throttled per
// email and per client address like developers' (ERATELIMIT
// too_many_login_attempts). A disabled operator cannot log in.
func (s *Service) OperatorLogIn(ctx context.Context, email, password, code string) (*Operator, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if len(key) > 254 || len(password) > maxPasswordLength || len(code) > 64 {
		return nil, errInvalidCredentials()
	}
	// Operators' failures are counted apart from developers' with the
	// same email; the address counts both.
	_, address := loginKeys(ctx, key)
	account := throttle.Key("operator.login.account", key)
	if err := s.takeLogin(ctx, account, address); err != nil {
		return nil, err
	}
	var id, status string
	var hash, secret sql.NullString
	var enabled bool
	err := s.db.QueryRowContext(ctx, `SELECT id, status, password_hash, totp_secret, totp_enabled FROM identity_operators WHERE email_key = $1`,
		key).Scan(&id, &status, &hash, &secret, &enabled)
	found := err == nil && hash.Valid
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, store.Classify(err)
	}
	stored := s.dummyHash
	if found {
		stored = hash.String
	}
	ok, _, err := s.verify(ctx, password, stored)
	if err != nil {
		return nil, err
	}
	if !found || !ok || status != OperatorActive {
		return nil, errInvalidCredentials()
	}
	if enabled {
		if code == "" {
			// The password was right: say what is missing, but count the
			// attempt until the second factor is given too.
			return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "totp_required", "enter the code from your authenticator app or a recovery code")
		}
		if err := s.checkSecondFactor(ctx, id, secret.String, code); err != nil {
			return nil, err
		}
	}
	s.loggedIn(ctx, account, address)
	o, err := s.operator(ctx, id)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "operator logged in", "operator_id", id)
	return o, nil
}

// ActiveOperator returns the operator with id when they are active and
// still in generation: a console session checks it on every request, so a
// disabled operator, a new password, new roles or a new second factor end
// it on every node at once. Errors: EUNAUTHORIZED session_ended.
func (s *Service) ActiveOperator(ctx context.Context, id string, generation int64) (*Operator, error) {
	o, err := s.operator(ctx, id)
	var ce *causeway.Error
	if errors.As(err, &ce) && ce.Kind == causeway.ENOTFOUND || err == nil && (o.Status != OperatorActive || o.Generation != generation) {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "session_ended", "the session has ended; log in again")
	}
	return o, err
}
