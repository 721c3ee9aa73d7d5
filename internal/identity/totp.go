package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
)

// An operator's second factor: RFC 6238 time-based codes (SHA-1, 6 digits,
// 30-second steps, one step of clock skew either way, as authenticator
// apps expect), and recovery codes that stand in for a code once each.
// The TOTP secret is sealed at rest; recovery codes are kept as SHA-256.
// A code is accepted once: the step it belongs to is stored, and a code
// of that step or an earlier one is refused, on every node.

const (
	totpPeriod        = 30
	totpSkew          = 1
	recoveryCodeCount = 10
	totpIssuer        = "Causeway"
)

// TOTPEnrollment is a new TOTP secret, shown once: as text and as an
// otpauth:// URL for a QR code.
type TOTPEnrollment struct {
	Secret string `json:"secret"`
	URL    string `json:"otpauth_url"`
}

func (s *Service) storedTOTP(secret string) string {
	if s.opts.Sealer == nil {
		return secret
	}
	return s.opts.Sealer.Seal(secret)
}

func (s *Service) openTOTP(stored string) (string, error) {
	if !seal.IsSealed(stored) {
		return stored, nil
	}
	if s.opts.Sealer == nil {
		return "", errors.New("a TOTP secret is sealed and no secret key was given")
	}
	return s.opts.Sealer.Open(stored)
}

// BeginTOTP starts enrolling the operator's second factor: a new secret,
// kept until ConfirmTOTP proves the operator's app holds it. Beginning
// again replaces an unconfirmed secret. Errors: ECONFLICT totp_enabled
// when a second factor is enrolled already (an admin resets it first).
func (s *Service) BeginTOTP(ctx context.Context, operatorID string) (TOTPEnrollment, error) {
	o, err := s.operator(ctx, operatorID)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: o.Email, Period: totpPeriod})
	if err != nil {
		return TOTPEnrollment{}, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE identity_operators SET totp_secret = $1 WHERE id = $2 AND totp_enabled = $3`,
			s.storedTOTP(key.Secret()), operatorID, false)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errTOTPEnabled(err)
		}
		return nil
	})
	if err != nil {
		return TOTPEnrollment{}, dbErr(err)
	}
	return TOTPEnrollment{Secret: key.Secret(), URL: key.URL()}, nil
}

func errTOTPEnabled(err error) error {
	if err != nil {
		return err
	}
	return causeway.Errorf(causeway.ECONFLICT, "totp_enabled", "a second factor is enrolled already; an admin can reset it")
}

// ConfirmTOTP enables the second factor begun with BeginTOTP once code
// matches, and returns recovery codes, shown once. It moves the
// operator's generation, so other sessions end. Errors: EINVALID
// invalid_code; ECONFLICT totp_enabled, totp_not_begun.
func (s *Service) ConfirmTOTP(ctx context.Context, operatorID, code string) ([]string, error) {
	var stored sql.NullString
	var enabled bool
	err := s.db.QueryRowContext(ctx, `SELECT totp_secret, totp_enabled FROM identity_operators WHERE id = $1`, operatorID).Scan(&stored, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errOperatorNotFound()
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	if enabled {
		return nil, errTOTPEnabled(nil)
	}
	if !stored.Valid {
		return nil, causeway.Errorf(causeway.ECONFLICT, "totp_not_begun", "begin enrolling a second factor first")
	}
	secret, err := s.openTOTP(stored.String)
	if err != nil {
		return nil, err
	}
	step, ok := matchTOTP(secret, code, s.now())
	if !ok {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_code", "the code does not match; check the authenticator app's clock")
	}
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE identity_operators SET totp_enabled = $1, totp_last_step = $2, generation = generation + 1, updated_at = $3
			WHERE id = $4 AND totp_enabled = $5 AND totp_secret = $6`,
			true, step, store.Micros(s.now()), operatorID, false, stored.String)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errTOTPEnabled(err)
		}
		if err := insertRecoveryCodes(ctx, tx, operatorID, codes); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "operator.enroll_totp", TargetType: "operator", TargetID: operatorID,
			By: auth.OperatorCaller(operatorID)})
	})
	if err != nil {
		return nil, dbErr(err)
	}
	s.log.InfoContext(ctx, "operator enrolled a second factor", "operator_id", operatorID)
	return codes, nil
}

func insertRecoveryCodes(ctx context.Context, tx *sql.Tx, operatorID string, codes []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM identity_operator_recovery_codes WHERE operator_id = $1`, operatorID); err != nil {
		return err
	}
	for _, c := range codes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO identity_operator_recovery_codes (operator_id, code_hash) VALUES ($1, $2)`,
			operatorID, secretHash(normalizeRecoveryCode(c))); err != nil {
			return err
		}
	}
	return nil
}

// ResetTOTP removes another operator's second factor and recovery codes
// (they lost their phone); they enroll again at their next login. Only an
// admin may, never on their own account. It ends the operator's sessions.
// Errors: EFORBIDDEN role_required, own_account; ENOTFOUND
// operator_not_found.
func (s *Service) ResetTOTP(ctx context.Context, caller auth.Caller, operatorID string) error {
	if err := requireAdmin(ctx, caller); err != nil {
		return err
	}
	if o, ok := auth.OperatorFrom(ctx); ok && o.ID == operatorID {
		return causeway.Errorf(causeway.EFORBIDDEN, "own_account", "another admin must reset your second factor")
	}
	return dbErr(s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE identity_operators SET totp_secret = NULL, totp_enabled = $1, generation = generation + 1, updated_at = $2
			WHERE id = $3 AND bank_id = $4`, false, store.Micros(s.now()), operatorID, bankOf(ctx))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return errOperatorNotFound()
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM identity_operator_recovery_codes WHERE operator_id = $1`, operatorID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "operator.reset_totp", TargetType: "operator", TargetID: operatorID,
			After: map[string]bool{"totp": false}, By: caller})
	}))
}

// checkSecondFactor accepts a TOTP code of a step later than the last one
// used, or an unused recovery code, and records its use (a compare-and-set,
// so a code replayed at once on another node fails there).
func (s *Service) checkSecondFactor(ctx context.Context, operatorID, storedSecret, code string) error {
	code = strings.TrimSpace(code)
	if len(code) == 6 && strings.Trim(code, "0123456789") == "" {
		secret, err := s.openTOTP(storedSecret)
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, code, s.now())
		if !ok {
			return errInvalidCredentials()
		}
		return s.spend(ctx, `UPDATE identity_operators SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1`, step, operatorID)
	}
	err := s.spend(ctx, `UPDATE identity_operator_recovery_codes SET used_at = $1 WHERE operator_id = $2 AND code_hash = $3 AND used_at IS NULL`,
		store.Micros(s.now()), operatorID, secretHash(normalizeRecoveryCode(code)))
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "operator used a recovery code", "operator_id", operatorID)
	return nil
}

// spend runs an update that marks a code used and is
// invalid_credentials when it changed no row: the code was used already.
func (s *Service) spend(ctx context.Context, update string, args ...any) error {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, update, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return dbErr(err)
	}
	if n == 0 {
		return errInvalidCredentials()
	}
	return nil
}

// matchTOTP returns the step of the code, if code is the secret's code
// for the step of now or one step either side.
func matchTOTP(secret, code string, now time.Time) (int64, bool) {
	step := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix((step+d)*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step + d, true
		}
	}
	return 0, false
}

// newRecoveryCode returns 50 random bits as 10 base32 characters, grouped
// for reading: "k7qm4-x2p9d".
func newRecoveryCode() string {
	t := strings.ToLower(rand.Text()[:10])
	return t[:5] + "-" + t[5:]
}

// normalizeRecoveryCode ignores case, spaces and dashes.
func normalizeRecoveryCode(c string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, c)
}
