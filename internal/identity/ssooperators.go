package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// Operators who sign in through the bank's identity provider (package
// sso) are named by the provider's issuer and subject, which never
// change, not by their email, which may. The provider is their authority:
// each sign-in sets the roles its claim maps to, refreshes the email and
// name, and their second factor is the provider's.

// errSSORace is a sign-in that lost a race with another (two first
// sign-ins of one person, two people linking one account): it reads
// again.
var errSSORace = errors.New("identity: a single sign-on lost a race")

// ssoIdentity is what SignInWithSSO was given, checked.
type ssoIdentity struct {
	issuer, subject string
	// email and emailKey are "" when the provider sent no usable address.
	email, emailKey string
	emailVerified   bool
	name            string
	roles           auth.Roles
}

// SignInWithSSO returns the operator the bank's identity provider signed
// in, by the provider's issuer and subject, the email it gave (and whether
// it verified it), the name and the roles its claim maps to:
//
//   - an operator linked to (issuer, subject) gets the email (unless
//     another operator has it) and name refreshed and the roles set;
//   - otherwise an operator with that email (in any letter case), not
//     linked yet, is linked, only when the provider verified the email,
//     and gets the roles;
//   - otherwise a new active operator, without a password, is created and
//     linked, with the roles.
//
// The roles are the provider's: a change moves the operator's generation,
// so their other console sessions end. A creation, a link and a change
// are audit entries (operator.sso_create, .sso_link, .sso_change); a
// sign-in that changes nothing is none. Two first sign-ins at once make
// one operator. A successful sign-in gives the caller's address back the
// attempt ThrottleSSOStart took. Errors: EUNAUTHORIZED operator_disabled;
// ECONFLICT sso_email_taken (the email's operator is linked to another
// identity, or the provider did not verify the email), operator_changed;
// EFORBIDDEN sso_email_missing (a new operator needs an email); EINVALID
// invalid_sso_identity, invalid_roles.
func (s *Service) SignInWithSSO(ctx context.Context, issuer, subject, email string, emailVerified bool, name string, roles auth.Roles) (*Operator, error) {
	in := ssoIdentity{issuer: issuer, subject: subject, emailVerified: emailVerified, roles: auth.NewRoles(roles...)}
	if issuer == "" || subject == "" || len(issuer) > 2048 || len(subject) > 255 {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_sso_identity", "a single sign-on needs the provider's issuer and the person's subject")
	}
	if err := checkRoles(in.roles); err != nil {
		return nil, err
	}
	if e, key, err := normalizeEmail(email); err == nil {
		in.email, in.emailKey = e, key
	}
	if n := strings.TrimSpace(name); utf8.RuneCountInString(n) <= 200 {
		in.name = n
	}
	op, how, err := s.signInWithSSO(ctx, in)
	if errors.Is(err, errSSORace) {
		// The winner's row is there now: this attempt finds it.
		op, how, err = s.signInWithSSO(ctx, in)
	}
	if errors.Is(err, errSSORace) {
		err = causeway.Errorf(causeway.ECONFLICT, "operator_changed", "the operator account changed while you signed in; sign in again")
	}
	if err != nil {
		return nil, dbErr(err)
	}
	// Only the address's counter: the account's is for passwords.
	if _, address := loginKeys(ctx, ""); s.opts.Counters != nil && address != "" {
		s.refund(ctx, address)
	}
	s.log.InfoContext(ctx, "operator signed in with single sign-on", "operator_id", op.ID, "how", how, "roles", op.Roles.String())
	return op, nil
}

// signInWithSSO is one attempt of SignInWithSSO, in one transaction; how
// says which case it was.
func (s *Service) signInWithSSO(ctx context.Context, in ssoIdentity) (op *Operator, how string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		o, err := scanOperator(tx.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM identity_operators
			WHERE sso_issuer = $1 AND sso_subject = $2`, in.issuer, in.subject))
		switch {
		case err == nil:
			op, how = o, "linked"
			return s.refreshSSOOperator(ctx, tx, o, in)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		case in.emailKey == "":
			return causeway.Errorf(causeway.EFORBIDDEN, "sso_email_missing",
				"the identity provider sent no usable email address for you, which a new operator account needs; ask the bank's identity team")
		}
		o, err = scanOperator(tx.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM identity_operators WHERE email_key = $1`, in.emailKey))
		switch {
		case err == nil:
			op, how = o, "linked by email"
			return s.linkSSOOperator(ctx, tx, o, in)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		op, how = s.newSSOOperator(in), "created"
		_, err = tx.ExecContext(ctx, `INSERT INTO identity_operators
			(id, bank_id, email, email_key, display_name, roles, status, generation, sso_issuer, sso_subject, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $10)`,
			op.ID, op.BankID, op.Email, in.emailKey, op.Name, op.Roles.String(), OperatorActive, in.issuer, in.subject, store.Micros(op.CreatedAt))
		if store.IsUniqueViolation(err) {
			return errSSORace
		}
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "operator.sso_create", TargetType: "operator", TargetID: op.ID,
			After: op.summary(), By: auth.OperatorCaller(op.ID)})
	})
	if err != nil {
		return nil, "", err
	}
	return op, how, nil
}

func (s *Service) newSSOOperator(in ssoIdentity) *Operator {
	now := store.FromMicros(store.Micros(s.now()))
	name := in.name
	if name == "" {
		name = in.email
	}
	// The provider signs in the staff of the one bank the platform serves.
	return &Operator{ID: ids.New("op"), BankID: auth.HomeBank, Email: in.email, Name: name, Roles: in.roles, Status: OperatorActive,
		SSO: true, CreatedAt: now, UpdatedAt: now, Generation: 1}
}

func errOperatorDisabled() error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "operator_disabled", "your operator account is disabled; an admin can enable it again")
}

// refreshSSOOperator brings a linked operator up to what the provider
// says: email, name and roles. An email another operator has is not taken
// from them: the old one stays.
func (s *Service) refreshSSOOperator(ctx context.Context, tx *sql.Tx, o *Operator, in ssoIdentity) error {
	if o.Status != OperatorActive {
		return errOperatorDisabled()
	}
	email := o.Email
	if in.emailKey != "" && in.email != o.Email {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM identity_operators WHERE email_key = $1 AND id <> $2`, in.emailKey, o.ID).Scan(&other)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			email = in.email
		case err != nil:
			return err
		default:
			s.log.WarnContext(ctx, "single sign-on: the provider's email of an operator belongs to another operator; the old one stays",
				"operator_id", o.ID, "other_operator_id", other)
		}
	}
	if email == o.Email && (in.name == "" || in.name == o.Name) && in.roles.String() == o.Roles.String() {
		return nil // nothing to write: most sign-ins
	}
	return s.writeSSOOperator(ctx, tx, o, email, in, false)
}

// linkSSOOperator links the operator with the provider's email to the
// provider's identity: only an operator linked to nobody yet, and only
// when the provider verified the email, for otherwise whoever can set an
// email at the provider would take over the account that has it.
func (s *Service) linkSSOOperator(ctx context.Context, tx *sql.Tx, o *Operator, in ssoIdentity) error {
	if o.SSO {
		// Linked to this very person between the look-up by subject and
		// the one by email (another sign-in of theirs committed): read
		// again, and find them by subject.
		var mine int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM identity_operators WHERE id = $1 AND sso_issuer = $2 AND sso_subject = $3`,
			o.ID, in.issuer, in.subject).Scan(&mine); err != nil {
			return err
		}
		if mine > 0 {
			return errSSORace
		}
	}
	switch {
	case o.SSO:
		return causeway.Errorf(causeway.ECONFLICT, "sso_email_taken",
			"the operator account with your email signs in as another person of the identity provider; an admin must sort it out")
	case !in.emailVerified:
		return causeway.Errorf(causeway.ECONFLICT, "sso_email_taken",
			"an operator account has your email, but the identity provider does not say it verified the email, so it is not linked to you; ask the bank's identity team")
	case o.Status != OperatorActive:
		return errOperatorDisabled()
	}
	return s.writeSSOOperator(ctx, tx, o, in.email, in, true)
}

// writeSSOOperator writes email and the provider's name and roles to o
// and, with link, links it to the provider's identity. It is a
// compare-and-set on the generation read (and, linking, on there being no
// link yet), and moves the generation when the roles change. A lost race
// is errSSORace. The audit trail names the operator who signed in as the
// actor of what their provider changed.
func (s *Service) writeSSOOperator(ctx context.Context, tx *sql.Tx, o *Operator, email string, in ssoIdentity, link bool) error {
	before, generation := o.summary(), o.Generation
	if in.roles.String() != o.Roles.String() {
		o.Generation++
	}
	o.Email, o.Roles, o.SSO = email, in.roles, true
	if in.name != "" {
		o.Name = in.name
	}
	o.UpdatedAt = store.FromMicros(store.Micros(s.now()))
	set, cond := ``, ``
	args := []any{email, strings.ToLower(email), o.Name, o.Roles.String(), o.Generation, store.Micros(o.UpdatedAt), o.ID, generation}
	if link {
		set, cond = `, sso_issuer = $9, sso_subject = $10`, ` AND sso_subject IS NULL`
		args = append(args, in.issuer, in.subject)
	}
	res, err := tx.ExecContext(ctx, `UPDATE identity_operators SET email = $1, email_key = $2, display_name = $3, roles = $4,
		generation = $5, updated_at = $6`+set+` WHERE id = $7 AND generation = $8`+cond, args...)
	if store.IsUniqueViolation(err) {
		return errSSORace
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errOrRace(err)
	}
	action := "operator.sso_change"
	if link {
		action = "operator.sso_link"
	}
	return audit.Record(ctx, tx, audit.Change{Action: action, TargetType: "operator", TargetID: o.ID,
		Before: before, After: o.summary(), By: auth.OperatorCaller(o.ID)})
}

func errOrRace(err error) error {
	if err != nil {
		return err
	}
	return errSSORace
}

// ThrottleSSOStart counts a single sign-on begun from the caller's client
// address (httpapi.ClientAddr) against the limit of failed logins per
// address (Limits.LoginFailuresPerAddress per LoginWindow, slowed down
// past half): each start writes a login in flight, so an address cannot
// start them without end, and it counts as a failed login until
// SignInWithSSO succeeds and gives it back. The address's password logins
// and sign-on starts share the one counter. Without an address or counters
// nothing is counted. Errors: ERATELIMIT too_many_login_attempts;
// EUNAVAILABLE when the counters cannot be reached.
func (s *Service) ThrottleSSOStart(ctx context.Context) error {
	_, address := loginKeys(ctx, "")
	if s.opts.Counters == nil || address == "" {
		return nil
	}
	return s.opts.Counters.Take(ctx, address, s.limits.addressRule())
}
