package identity

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/throttle"
)

// Limits are the brakes on identity's open doors: login, sign-up and app
// creation. Zero fields take the defaults.
//
// Failed logins are counted twice, per account (the email, whether or not
// it has an account, so a refusal tells nothing about which exist) from
// every address together, and per client address (httpapi.ClientAddr)
// over every account: the first stops one account being guessed from many
// addresses, the second one address trying many accounts (credential
// stuffing). Each is a window of LoginWindow from its first failure:
// beyond half the limit each attempt must wait a doubling delay (1 s, 2
// s, 4 s, ...), at the limit every attempt, the right password included,
// is refused (429 too_many_login_attempts with Retry-After) until the
// window ends. Refused attempts are not counted, so the owner of an
// account under attack is locked out for one window at most after the
// attacker stops, never for good; a successful login resets the
// account's count and gives its own attempt back to the address.
type Limits struct {
	// LoginFailuresPerAccount is the failed logins one email may see per
	// LoginWindow; default 10.
	LoginFailuresPerAccount int
	// LoginFailuresPerAddress is the failed logins one client address may
	// make per LoginWindow; default 50.
	LoginFailuresPerAddress int
	// LoginWindow is the period the failures are counted over; default
	// 15 minutes.
	LoginWindow time.Duration
	// SignUpsPerHour is the sign-ups one client address may make per hour,
	// failed ones (an email already taken) included; default 20.
	SignUpsPerHour int
	// MaxAppsPerDeveloper caps a developer's apps; default 20. A deleted
	// app keeps its place for AppSlotHold, so that deleting and creating
	// again cannot seed sandbox data without end.
	MaxAppsPerDeveloper int
}

// Defaults of Limits.
const (
	DefaultLoginFailuresPerAccount = 10
	DefaultLoginFailuresPerAddress = 50
	DefaultLoginWindow             = 15 * time.Minute
	DefaultSignUpsPerHour          = 20
	DefaultMaxAppsPerDeveloper     = 20
	// AppSlotHold is how long a deleted app still counts against
	// MaxAppsPerDeveloper.
	AppSlotHold  = 24 * time.Hour
	signUpWindow = time.Hour
)

func (l Limits) withDefaults() Limits {
	if l.LoginFailuresPerAccount <= 0 {
		l.LoginFailuresPerAccount = DefaultLoginFailuresPerAccount
	}
	if l.LoginFailuresPerAddress <= 0 {
		l.LoginFailuresPerAddress = DefaultLoginFailuresPerAddress
	}
	if l.LoginWindow <= 0 {
		l.LoginWindow = DefaultLoginWindow
	}
	if l.SignUpsPerHour <= 0 {
		l.SignUpsPerHour = DefaultSignUpsPerHour
	}
	if l.MaxAppsPerDeveloper <= 0 {
		l.MaxAppsPerDeveloper = DefaultMaxAppsPerDeveloper
	}
	return l
}

// MaxWindow is the longest window the limits count over: the attempt
// counters must be kept at least that long.
func (l Limits) MaxWindow() time.Duration {
	return max(l.withDefaults().LoginWindow, signUpWindow)
}

func (l Limits) accountRule() throttle.Rule {
	return throttle.Rule{Limit: l.LoginFailuresPerAccount, Free: l.LoginFailuresPerAccount / 2, Window: l.LoginWindow,
		Code: "too_many_login_attempts", Message: "too many failed logins for this account"}
}

func (l Limits) addressRule() throttle.Rule {
	return throttle.Rule{Limit: l.LoginFailuresPerAddress, Free: l.LoginFailuresPerAddress / 2, Window: l.LoginWindow,
		Code: "too_many_login_attempts", Message: "too many failed logins from this address"}
}

func (l Limits) signUpRule() throttle.Rule {
	return throttle.Rule{Limit: l.SignUpsPerHour, Free: l.SignUpsPerHour, Window: signUpWindow,
		Code: "too_many_sign_ups", Message: fmt.Sprintf("at most %d sign-ups per hour from one address", l.SignUpsPerHour)}
}

// loginKeys are the counters a login attempt for emailKey counts against;
// the address one is "" when the caller's address is not known (a call
// from inside the process).
func loginKeys(ctx context.Context, emailKey string) (account, address string) {
	account = throttle.Key("login.account", emailKey)
	if a := httpapi.ClientAddr(ctx); a.IsValid() {
		address = throttle.Key("login.address", a.String())
	}
	return account, address
}

// takeLogin counts a login attempt before the password is checked, so
// that concurrent guesses cannot all pass a check made before any of them
// failed. The address is asked first: an address that is refused does
// not use up the account's attempts.
func (s *Service) takeLogin(ctx context.Context, account, address string) error {
	if s.opts.Counters == nil {
		return nil
	}
	if address != "" {
		if err := s.opts.Counters.Take(ctx, address, s.limits.addressRule()); err != nil {
			return err
		}
	}
	if err := s.opts.Counters.Take(ctx, account, s.limits.accountRule()); err != nil {
		if address != "" {
			s.refund(ctx, address)
		}
		return err
	}
	return nil
}

// loggedIn clears the account's failures and gives the address its
// attempt back. Failing to is logged, not an error: the login was right.
func (s *Service) loggedIn(ctx context.Context, account, address string) {
	if s.opts.Counters == nil {
		return
	}
	if err := s.opts.Counters.Reset(ctx, account); err != nil {
		s.log.WarnContext(ctx, "could not reset an account's failed logins", "error", err.Error())
	}
	if address != "" {
		s.refund(ctx, address)
	}
}

func (s *Service) refund(ctx context.Context, key string) {
	if err := s.opts.Counters.Refund(ctx, key); err != nil {
		s.log.WarnContext(ctx, "could not give a login attempt back", "error", err.Error())
	}
}

// takeSignUp counts a sign-up against the caller's address.
func (s *Service) takeSignUp(ctx context.Context) error {
	a := httpapi.ClientAddr(ctx)
	if s.opts.Counters == nil || !a.IsValid() {
		return nil
	}
	return s.opts.Counters.Take(ctx, throttle.Key("signup.address", a.String()), s.limits.signUpRule())
}

// checkAppCap refuses a new app when the developer has
// MaxAppsPerDeveloper already. It runs in the creating transaction, after
// locking the developer's row, so that two creations at the cap on
// PostgreSQL (where transactions run side by side) cannot both see room:
// the second waits for the first to commit and then counts its app.
// SQLite transactions take the write lock at BEGIN, which does the same.
func (s *Service) checkAppCap(ctx context.Context, tx *sql.Tx, developerID string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE identity_developers SET email_key = email_key WHERE id = $1`, developerID); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM identity_apps
		WHERE developer_id = $1 AND (deleted_at IS NULL OR deleted_at > $2)`,
		developerID, store.Micros(now.Add(-AppSlotHold))).Scan(&n); err != nil {
		return err
	}
	if n >= s.limits.MaxAppsPerDeveloper {
		return causeway.Errorf(causeway.ECONFLICT, "too_many_apps",
			"a developer may have at most %d apps (an app deleted in the last 24 h still counts); delete one you no longer use",
			s.limits.MaxAppsPerDeveloper)
	}
	return nil
}
