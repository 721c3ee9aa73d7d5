package identity

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// trailOf lists db's audit trail, oldest first, as the bank reads it.
func trailOf(t *testing.T, db *store.DB) []*audit.Entry {
	t.Helper()
	pg, err := audit.New(db).List(context.Background(), auth.OperatorCaller("op_test"), audit.Filter{}, 200, "")
	if err != nil {
		t.Fatal(err)
	}
	out := pg.Data
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func TestTheBanksDecisionsOnAppsAndKeysAreAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction})
		dev := e.signUp("audited@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		ctx := audit.WithOrigin(auth.WithCaller(context.Background(), auth.OperatorCaller("op_anna")),
			audit.Origin{RequestID: "req_approve", ClientAddr: "192.0.2.1"})

		// Of operators approving at once, one decides, and one entry says so.
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := e.svc.Approve(ctx, app.ID)
			return err
		}), causeway.ECONFLICT, "app_already_active")
		if _, err := e.svc.Suspend(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
		key, err := e.svc.RotateSigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// An approval whose activation fails is undone, and the undoing is
		// recorded after it.
		other := e.createApp(dev.Token, auth.ScopeAccountsRead)
		e.activated.setFail(errors.New("seeding failed"))
		if _, err := e.svc.Approve(ctx, other.ID); err == nil {
			t.Fatal("an approval whose activation failed succeeded")
		}

		want := []struct{ action, target, before, after string }{
			{"app.approve", app.ID, `{"status":"pending_approval"}`, `{"status":"active"}`},
			{"app.suspend", app.ID, `{"status":"active"}`, `{"status":"suspended"}`},
			{"signing_key.rotate", key.KID, "", ""},
			{"app.approve", other.ID, `{"status":"pending_approval"}`, `{"status":"active"}`},
			{"app.approve.revert", other.ID, `{"status":"active"}`, `{"status":"pending_approval"}`},
		}
		got := trailOf(t, db)
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Action != w.action || g.TargetID != w.target || g.Actor != "operator:op_anna" || g.RequestID != "req_approve" ||
				(w.before != "" && string(g.Before) != w.before) || (w.after != "" && string(g.After) != w.after) {
				t.Errorf("entry %d = %s %s %s by %s (%s) %s -> %s, want %+v", i, g.Action, g.TargetType, g.TargetID, g.Actor,
					g.RequestID, g.Before, g.After, w)
			}
		}
		if got[2].TargetType != "signing_key" || string(got[2].After) == "" {
			t.Errorf("rotation entry = %+v", got[2])
		}
	})
}

func TestOperatorAccountsAndTheirTokensAreAudited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction})
		op := e.createOperator("anna@bank.example", auth.RoleAppManager)
		admin := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
		roles := auth.NewRoles(auth.RoleAppManager, auth.RoleRiskOfficer)
		if _, err := e.svc.ChangeOperator(admin, auth.CallerFrom(admin), op.ID, OperatorChange{Roles: &roles}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ResetTOTP(admin, auth.CallerFrom(admin), op.ID); err != nil {
			t.Fatal(err)
		}
		anna, err := e.svc.Operator(admin, auth.CallerFrom(admin), op.ID)
		if err != nil {
			t.Fatal(err)
		}
		self := auth.WithOperator(context.Background(), anna.Caller())
		tok, err := e.svc.IssueOperatorToken(self, anna.Caller(), "nightly script", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RevokeOperatorToken(self, op.ID, tok.ID); err != nil {
			t.Fatal(err)
		}

		want := []struct{ action, target, actor, before, after string }{
			{"operator.create", op.ID, "operator:admin-token", "", `"roles":["app-manager"]`},
			{"operator.change", op.ID, "operator:admin-token", `"roles":["app-manager"]`, `"roles":["app-manager","risk-officer"]`},
			{"operator.reset_totp", op.ID, "operator:admin-token", "", `{"totp":false}`},
			{"operator_token.create", tok.ID, "operator:" + op.ID, "", `"name":"nightly script"`},
			{"operator_token.revoke", tok.ID, "operator:" + op.ID, `"operator_id":"` + op.ID + `"`, ""},
		}
		got := trailOf(t, db)
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Action != w.action || g.TargetID != w.target || g.Actor != w.actor ||
				!strings.Contains(string(g.Before), w.before) || !strings.Contains(string(g.After), w.after) {
				t.Errorf("entry %d = %s %s by %s: %s -> %s, want %+v", i, g.Action, g.TargetID, g.Actor, g.Before, g.After, w)
			}
			if strings.Contains(string(g.After), tok.Token) || strings.Contains(string(g.After), operatorPassword) {
				t.Errorf("entry %d holds a secret: %s", i, g.After)
			}
		}
	})
}
