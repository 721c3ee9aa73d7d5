package spi_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// racers is how many callers race in the race tests.
const racers = 10

// loggedService is newService with its audit lines in logs.
func loggedService(t *testing.T, db *store.DB) (*spi.Service, *testkit.SyncBuffer) {
	logs := &testkit.SyncBuffer{}
	s := newService(t, db, func(o *spi.Options) { o.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	return s, logs
}

func TestTwoOperatorsActivatingOneSPIRegistrationActivateItOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, logs := loggedService(t, db)
		ctx := context.Background()
		r, _, err := s.CreateRegistration(ctx, auth.AppCaller("app_a"), spi.NewRegistration{ExtensionPoint: core.PointFraudCheck,
			URL: "http://127.0.0.1:1/spi", Scope: spi.ScopeBank})
		if err != nil {
			t.Fatal(err)
		}
		// Each operator gives its own priority, so the settings show whose
		// activation was applied.
		winner := testkit.OneWinner(t, testkit.Race(racers, func(i int) error {
			_, err := s.Activate(ctx, auth.BankProcess(), r.ID, spi.Activation{Priority: priority(i)})
			return err
		}), causeway.ECONFLICT, "registration_already_active")
		got, err := s.Registration(ctx, auth.BankProcess(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != spi.StatusActive || got.Priority != winner {
			t.Errorf("after the race: status %s, priority %d; want active with the winner's priority %d", got.Status, got.Priority, winner)
		}
		if n := strings.Count(logs.String(), `"msg":"spi registration activated"`); n != 1 {
			t.Errorf("%d activation audit lines, want 1", n)
		}

		// Settings change without a transition: every caller succeeds.
		for _, err := range testkit.Race(racers, func(i int) error {
			_, err := s.Configure(ctx, auth.BankProcess(), r.ID, spi.Activation{TimeoutMS: 100 + i})
			return err
		}) {
			if err != nil {
				t.Errorf("configure: %v", err)
			}
		}
		if got, _ := s.Registration(ctx, auth.BankProcess(), r.ID); got.Status != spi.StatusActive || got.Priority != winner {
			t.Errorf("configuring the timeout changed status or priority: %+v", got)
		}
	})
}

func TestTwoOperatorsDeactivatingOneSPIRegistrationDeactivateItOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, logs := loggedService(t, db)
		ctx := context.Background()
		r, _ := appReg(t, s, "app_a", core.PointFraudCheck, "http://127.0.0.1:1/spi", spi.NewRegistration{})
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := s.Deactivate(ctx, auth.BankProcess(), r.ID)
			return err
		}), causeway.ECONFLICT, "registration_not_active")
		if got, _ := s.Registration(ctx, auth.BankProcess(), r.ID); got.Status != spi.StatusInactive {
			t.Errorf("status after the race = %s", got.Status)
		}
		if n := strings.Count(logs.String(), `"msg":"spi registration deactivated"`); n != 1 {
			t.Errorf("%d deactivation audit lines, want 1", n)
		}
		// Activating it again races like the first activation.
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := s.Activate(ctx, auth.BankProcess(), r.ID, spi.Activation{})
			return err
		}), causeway.ECONFLICT, "registration_already_active")
	})
}

// An app deleting a registration from two places at once: one deletion
// wins, the other finds nothing left to delete, as any later one would.
func TestAnAppDeletingOneSPIRegistrationTwiceAtOnceDeletesItOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, logs := loggedService(t, db)
		ctx := context.Background()
		r, _ := appReg(t, s, "app_a", core.PointFraudCheck, "http://127.0.0.1:1/spi", spi.NewRegistration{})
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			return s.DeleteRegistration(ctx, auth.AppCaller("app_a"), r.ID)
		}), causeway.ENOTFOUND, "registration_not_found")
		if got, _ := s.Registration(ctx, auth.BankProcess(), r.ID); got.Status != spi.StatusDeleted {
			t.Errorf("status after the race = %s", got.Status)
		}
		if n := strings.Count(logs.String(), `"msg":"spi registration deleted"`); n != 1 {
			t.Errorf("%d deletion audit lines, want 1", n)
		}
		for name, err := range map[string]error{
			"activate":   func() error { _, err := s.Activate(ctx, auth.BankProcess(), r.ID, spi.Activation{}); return err }(),
			"deactivate": func() error { _, err := s.Deactivate(ctx, auth.BankProcess(), r.ID); return err }(),
			"configure": func() error {
				_, err := s.Configure(ctx, auth.BankProcess(), r.ID, spi.Activation{TimeoutMS: 10})
				return err
			}(),
		} {
			if causeway.ErrorCode(err) != "registration_deleted" {
				t.Errorf("%s a deleted registration: %v", name, err)
			}
		}
	})
}

// A bank operator activating a registration while its app deletes it: one
// of the two comes first, and the registration ends deleted either way.
func TestActivationRacingTheAppsDeletionLeavesItDeleted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newService(t, db)
		ctx := context.Background()
		r, _, err := s.CreateRegistration(ctx, auth.AppCaller("app_a"), spi.NewRegistration{ExtensionPoint: core.PointFraudCheck,
			URL: "http://127.0.0.1:1/spi", Scope: spi.ScopeBank})
		if err != nil {
			t.Fatal(err)
		}
		errs := testkit.Race(racers, func(i int) error {
			if i == 0 {
				return s.DeleteRegistration(ctx, auth.AppCaller("app_a"), r.ID)
			}
			_, err := s.Activate(ctx, auth.BankProcess(), r.ID, spi.Activation{})
			return err
		})
		if errs[0] != nil {
			t.Errorf("the app's deletion: %v", errs[0])
		}
		activated := 0
		for _, err := range errs[1:] {
			switch {
			case err == nil:
				activated++
			case causeway.ErrorCode(err) == "registration_already_active", causeway.ErrorCode(err) == "registration_deleted":
			default:
				t.Errorf("an activation got %v", err)
			}
		}
		if activated > 1 {
			t.Errorf("%d activations won, want at most 1", activated)
		}
		if got, _ := s.Registration(ctx, auth.BankProcess(), r.ID); got.Status != spi.StatusDeleted {
			t.Errorf("status after the race = %s, want deleted", got.Status)
		}
	})
}

// An app rotating one registration's secret from two places at once, on
// PostgreSQL with both rotations made to read the same secret before
// either writes (a row lock held until both wait on it): without a
// compare-and-set both would answer 200, and the second would keep the
// first one's new secret out of the overlap, so an endpoint configured
// with it would refuse every call. One wins; the other is told its
// rotation lost; the overlap keeps the secret the winner replaced.
func TestConcurrentSecretRotationsKeepTheOverlapHonest(t *testing.T) {
	db := storetest.OpenPostgres(t)
	s := newService(t, db)
	srv := spitest.New(t, approve(1, "ok"))
	r, original := appReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{})
	ctx := context.Background()

	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	var lockPID int
	if err := lock.QueryRowContext(ctx, `SELECT pg_backend_pid() FROM spi_registrations WHERE id = $1 FOR UPDATE`, r.ID).Scan(&lockPID); err != nil {
		t.Fatal(err)
	}
	secrets := make([]string, 2)
	done := make(chan []error)
	go func() {
		done <- testkit.Race(2, func(i int) error {
			_, secret, err := s.RotateSecret(ctx, auth.AppCaller("app_a"), r.ID)
			secrets[i] = secret
			return err
		})
	}()
	testkit.WaitFor(t, "both rotations waiting on the row lock", func() bool {
		var waiting int
		// The first waits on the lock, the second on the first.
		err := db.QueryRowContext(ctx, `WITH first AS (SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))
			SELECT count(*) FROM pg_stat_activity
			WHERE pid IN (SELECT pid FROM first) OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM first)`, lockPID).Scan(&waiting)
		return err == nil && waiting == 2
	})
	lock.Rollback()
	winner := testkit.OneWinner(t, <-done, causeway.ECONFLICT, "secret_changed")

	call(t, s, "app_a")
	req, ok := srv.Last()
	if !ok {
		t.Fatal("no call")
	}
	verifies := func(secret string) bool {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(req.Body, req.Header) == nil
	}
	if !verifies(secrets[winner]) || !verifies(original) {
		t.Errorf("after the race: the winner's secret verifies %v, the one it replaced %v; want both", verifies(secrets[winner]), verifies(original))
	}
}
