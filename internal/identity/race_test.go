package identity

import (
	"context"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// racers is how many operators click at once in the race tests.
const racers = 10

func TestTwoOperatorsApprovingOneAppActivateItOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction})
		dev := e.signUp("race-approve@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)

		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := e.svc.Approve(context.Background(), app.ID)
			return err
		}), causeway.ECONFLICT, "app_already_active")
		if calls := e.activated.calls(); len(calls) != 1 {
			t.Errorf("OnAppActivated ran %d times, want once: %v", len(calls), calls)
		}
		if n := strings.Count(e.logs.String(), `"msg":"app approved"`); n != 1 {
			t.Errorf("%d approval audit lines, want 1", n)
		}
		got, err := e.svc.app(context.Background(), app.ID)
		if err != nil || got.Status != auth.AppActive {
			t.Fatalf("app after the race = %+v, %v", got, err)
		}

		// Reinstating a suspended app races the same way.
		if _, err := e.svc.Suspend(context.Background(), app.ID); err != nil {
			t.Fatal(err)
		}
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := e.svc.Approve(context.Background(), app.ID)
			return err
		}), causeway.ECONFLICT, "app_already_active")
		if calls := e.activated.calls(); len(calls) != 2 {
			t.Errorf("OnAppActivated ran %d times after reinstating, want 2: %v", len(calls), calls)
		}
	})
}

func TestTwoOperatorsSuspendingOneAppSuspendItOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeSandbox})
		dev := e.signUp("race-suspend@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)

		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := e.svc.Suspend(context.Background(), app.ID)
			return err
		}), causeway.ECONFLICT, "app_already_suspended")
		if n := strings.Count(e.logs.String(), `"msg":"app suspended"`); n != 1 {
			t.Errorf("%d suspension audit lines, want 1", n)
		}
		got, err := e.svc.app(context.Background(), app.ID)
		if err != nil || got.Status != auth.AppSuspended {
			t.Fatalf("app after the race = %+v, %v", got, err)
		}
	})
}

// An approval whose hook fails goes back to where it came from, but only
// if nobody decided otherwise meanwhile: a suspension made while the hook
// ran stands.
func TestAFailedActivationUndoesOnlyItsOwnApproval(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction})
		dev := e.signUp("undo@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		hookErr := causeway.Errorf(causeway.EUNAVAILABLE, "seed_failed", "could not seed")
		e.svc.opts.OnAppActivated = func(ctx context.Context, id string) error {
			// The bank suspends the app while its activation runs.
			if _, err := e.svc.Suspend(ctx, id); err != nil {
				t.Errorf("suspend during activation: %v", err)
			}
			return hookErr
		}
		if _, err := e.svc.Approve(context.Background(), app.ID); causeway.ErrorCode(err) != "seed_failed" {
			t.Fatalf("approve with a failing hook = %v", err)
		}
		got, err := e.svc.app(context.Background(), app.ID)
		if err != nil || got.Status != auth.AppSuspended {
			t.Errorf("app = %+v, %v; want the suspension to stand", got, err)
		}
	})
}

func TestDevelopersCreatingAppsAtOnceAtTheCapGetOneMore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction, Limits: Limits{MaxAppsPerDeveloper: 3}})
		signed := e.signUp("race-cap@example.com")
		dev, err := e.svc.AuthenticateDeveloper(context.Background(), signed.Token)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			e.createApp(signed.Token, auth.ScopeAccountsRead)
		}
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, _, err := e.svc.CreateApp(context.Background(), dev, "racing app", []string{auth.ScopeAccountsRead})
			return err
		}), causeway.ECONFLICT, "too_many_apps")
		page, err := e.svc.Apps(context.Background(), dev, 50, "")
		if err != nil || len(page.Data) != 3 {
			t.Fatalf("apps after the race: %d, %v; want 3", len(page.Data), err)
		}
		// Another developer has a cap of its own.
		other := e.signUp("race-cap-other@example.com")
		e.createApp(other.Token, auth.ScopeAccountsRead)
	})
}
