package identity

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

const operatorPassword = "staple battery horse"

// createOperator creates an operator with the admin token over HTTP.
func (e *env) createOperator(email string, roles ...auth.Role) *Operator {
	e.t.Helper()
	var out Operator
	if code := e.call("POST", "/bank/v1/operators", adminToken, map[string]any{
		"email": email, "password": operatorPassword, "roles": roles,
	}, &out); code != http.StatusCreated {
		e.t.Fatalf("create operator %s: %d %+v", email, code, out)
	}
	return &out
}

// operatorToken issues a token to op for roles (all of op's when none).
func (e *env) operatorToken(op *Operator, roles ...auth.Role) string {
	e.t.Helper()
	t, err := e.svc.IssueOperatorToken(context.Background(), op.Caller(), "test", roles, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return t.Token
}

// code is op's TOTP code at the env's clock, shifted by steps.
func (e *env) code(secret string, steps int) string {
	e.t.Helper()
	c, err := totp.GenerateCodeCustom(secret, e.clock.Now().Add(time.Duration(steps)*totpPeriod*time.Second),
		totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestEachOperatorMayDoWhatTheirRolesAllowAndNoMore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction})
		viewer := e.createOperator("viewer@bank.example", auth.RoleViewer)
		manager := e.createOperator("manager@bank.example", auth.RoleAppManager)
		viewerToken, managerToken := e.operatorToken(viewer), e.operatorToken(manager)
		dev := e.signUp("roles@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)

		var me MeBody
		if code := e.call("GET", "/bank/v1/me", managerToken, nil, &me); code != http.StatusOK || me.ID != manager.ID ||
			me.Roles.String() != "app-manager" {
			t.Fatalf("GET /me with the manager's token = %d %+v", code, me)
		}
		if code := e.call("GET", "/bank/v1/apps", viewerToken, nil, nil); code != http.StatusOK {
			t.Errorf("a viewer listing apps = %d, want 200", code)
		}
		var problem struct{ Code string }
		if code := e.call("POST", "/bank/v1/apps/"+app.ID+"/approve", viewerToken, nil, &problem); code != http.StatusForbidden ||
			problem.Code != "role_required" {
			t.Errorf("a viewer approving an app = %d %s, want 403 role_required", code, problem.Code)
		}
		if code := e.call("POST", "/bank/v1/operators", managerToken, map[string]any{
			"email": "escalate@bank.example", "password": operatorPassword, "roles": []string{"admin"},
		}, &problem); code != http.StatusForbidden {
			t.Errorf("an app manager creating an admin = %d %s, want 403", code, problem.Code)
		}
		if code := e.call("POST", "/bank/v1/apps/"+app.ID+"/approve", managerToken, nil, nil); code != http.StatusOK {
			t.Errorf("an app manager approving an app = %d, want 200", code)
		}
		for _, bad := range []string{"", "cwop_unknown", adminToken + "x", viewerToken + "x"} {
			if code := e.call("GET", "/bank/v1/apps", bad, nil, nil); code != http.StatusUnauthorized {
				t.Errorf("GET /bank/v1/apps with %q = %d, want 401", bad, code)
			}
		}

		// An admin narrows the manager to a viewer: the manager's token
		// is narrowed at once; disabling them refuses it.
		if code := e.call("PATCH", "/bank/v1/operators/"+manager.ID, adminToken, map[string]any{"roles": []string{"viewer"}}, nil); code != http.StatusOK {
			t.Fatalf("narrowing the manager = %d", code)
		}
		if code := e.call("POST", "/bank/v1/apps/"+app.ID+"/suspend", managerToken, nil, &problem); code != http.StatusForbidden {
			t.Errorf("a narrowed manager suspending an app = %d, want 403", code)
		}
		if code := e.call("PATCH", "/bank/v1/operators/"+manager.ID, adminToken, map[string]any{"status": "disabled"}, nil); code != http.StatusOK {
			t.Fatalf("disabling the manager = %d", code)
		}
		if code := e.call("GET", "/bank/v1/apps", managerToken, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("a disabled operator's token = %d, want 401", code)
		}
	})
}

func TestOperatorTokensAreTheirOperatorsAlone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		ana := e.createOperator("ana@bank.example", auth.RoleRiskOfficer, auth.RoleDataSteward)
		bo := e.createOperator("bo@bank.example", auth.RoleViewer)
		anaToken, boToken := e.operatorToken(ana), e.operatorToken(bo)

		// A token holds what it asks for of its operator's roles, never more.
		var created OperatorToken
		if code := e.call("POST", "/bank/v1/operator-tokens", anaToken, map[string]any{"name": "reads", "roles": []string{"viewer"}}, &created); code != http.StatusCreated ||
			!strings.HasPrefix(created.Token, operatorTokenPrefix) || created.Roles.String() != "viewer" {
			t.Fatalf("creating a read-only token = %d %+v", code, created)
		}
		var problem struct{ Code string }
		if code := e.call("POST", "/bank/v1/operator-tokens", boToken, map[string]any{"name": "up", "roles": []string{"admin"}}, &problem); code != http.StatusForbidden ||
			problem.Code != "role_not_held" {
			t.Errorf("a viewer asking for an admin token = %d %s, want 403 role_not_held", code, problem.Code)
		}
		if code := e.call("POST", "/bank/v1/operator-tokens", adminToken, map[string]any{"name": "x"}, &problem); code != http.StatusForbidden ||
			problem.Code != "operator_only" {
			t.Errorf("the admin token asking for an operator token = %d %s, want 403 operator_only", code, problem.Code)
		}

		// Only its hash is stored.
		var stored string
		if err := db.QueryRowContext(context.Background(), `SELECT token_hash FROM identity_operator_tokens WHERE id = $1`, created.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored == created.Token || strings.Contains(stored, created.Token[len(operatorTokenPrefix):]) {
			t.Errorf("the token is stored as itself")
		}

		// Bo cannot see or revoke Ana's token: 404, and it still works.
		if code := e.call("DELETE", "/bank/v1/operator-tokens/"+created.ID, boToken, nil, nil); code != http.StatusNotFound {
			t.Errorf("revoking another operator's token = %d, want 404", code)
		}
		var list OperatorTokensBody
		if e.call("GET", "/bank/v1/operator-tokens", boToken, nil, &list); len(list.Items) != 1 {
			t.Errorf("bo sees %d tokens, want only his own", len(list.Items))
		}
		if code := e.call("GET", "/bank/v1/me", created.Token, nil, nil); code != http.StatusOK {
			t.Fatalf("the read-only token = %d", code)
		}
		if code := e.call("DELETE", "/bank/v1/operator-tokens/"+created.ID, anaToken, nil, nil); code != http.StatusNoContent {
			t.Fatalf("revoking her own token = %d", code)
		}
		if code := e.call("GET", "/bank/v1/me", created.Token, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("a revoked token = %d, want 401", code)
		}
		if code := e.call("DELETE", "/bank/v1/operator-tokens/"+created.ID, anaToken, nil, &problem); code != http.StatusConflict {
			t.Errorf("revoking it again = %d, want 409", code)
		}

		// Tokens expire.
		e.clock.Advance(DefaultOperatorTokenTTL + time.Second)
		if code := e.call("GET", "/bank/v1/me", anaToken, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("an expired token = %d, want 401", code)
		}
	})
}

func TestOperatorLoginNeedsTheSecondFactorOnceEnrolled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		op := e.createOperator("totp@bank.example", auth.RoleAdmin)

		if _, err := e.svc.OperatorLogIn(ctx, "TOTP@bank.example", operatorPassword, ""); err != nil {
			t.Fatalf("logging in before enrolling: %v", err)
		}
		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", "wrong password!", ""); causeway.ErrorCode(err) != "invalid_credentials" {
			t.Errorf("a wrong password = %v", err)
		}
		enrollment, err := e.svc.BeginTOTP(ctx, op.ID)
		if err != nil || !strings.HasPrefix(enrollment.URL, "otpauth://totp/") {
			t.Fatalf("BeginTOTP = %+v, %v", enrollment, err)
		}
		var stored string
		if err := db.QueryRowContext(ctx, `SELECT totp_secret FROM identity_operators WHERE id = $1`, op.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, enrollment.Secret) {
			t.Errorf("the TOTP secret is stored in the clear")
		}
		if _, err := e.svc.ConfirmTOTP(ctx, op.ID, "000000"); causeway.ErrorCode(err) != "invalid_code" && e.code(enrollment.Secret, 0) != "000000" {
			t.Errorf("confirming with a wrong code = %v", err)
		}
		codes, err := e.svc.ConfirmTOTP(ctx, op.ID, e.code(enrollment.Secret, 0))
		if err != nil || len(codes) != recoveryCodeCount {
			t.Fatalf("ConfirmTOTP = %v, %v", codes, err)
		}
		if _, err := e.svc.BeginTOTP(ctx, op.ID); causeway.ErrorCode(err) != "totp_enabled" {
			t.Errorf("beginning again once enrolled = %v, want totp_enabled", err)
		}

		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", operatorPassword, ""); causeway.ErrorCode(err) != "totp_required" {
			t.Errorf("no code = %v, want totp_required", err)
		}
		// The code used to confirm is spent; the next step's code works once.
		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", operatorPassword, e.code(enrollment.Secret, 0)); causeway.ErrorCode(err) != "invalid_credentials" {
			t.Errorf("the confirming code again = %v, want invalid_credentials", err)
		}
		e.clock.Advance(totpPeriod * time.Second)
		next := e.code(enrollment.Secret, 0)
		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", operatorPassword, next); err != nil {
			t.Fatalf("a fresh code: %v", err)
		}
		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", operatorPassword, next); causeway.ErrorCode(err) != "invalid_credentials" {
			t.Errorf("the same code replayed = %v, want invalid_credentials", err)
		}
		// A recovery code stands in once, however it is typed.
		recovery := strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))
		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", operatorPassword, recovery); err != nil {
			t.Fatalf("a recovery code: %v", err)
		}
		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", operatorPassword, codes[3]); causeway.ErrorCode(err) != "invalid_credentials" {
			t.Errorf("a used recovery code = %v, want invalid_credentials", err)
		}
		// A disabled operator cannot log in at all.
		if code := e.call("PATCH", "/bank/v1/operators/"+op.ID, adminToken, map[string]any{"status": "disabled"}, nil); code != http.StatusOK {
			t.Fatal(code)
		}
		if _, err := e.svc.OperatorLogIn(ctx, "totp@bank.example", operatorPassword, codes[4]); causeway.ErrorCode(err) != "invalid_credentials" {
			t.Errorf("a disabled operator logging in = %v", err)
		}
	})
}

func TestAChangeToAnOperatorEndsTheirSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		op := e.createOperator("gen@bank.example", auth.RoleAppManager)
		o, err := e.svc.OperatorLogIn(ctx, op.Email, operatorPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ActiveOperator(ctx, o.ID, o.Generation); err != nil {
			t.Fatalf("a fresh session: %v", err)
		}
		if code := e.call("PATCH", "/bank/v1/operators/"+op.ID, adminToken, map[string]any{"display_name": "Renamed"}, nil); code != http.StatusOK {
			t.Fatal(code)
		}
		if _, err := e.svc.ActiveOperator(ctx, o.ID, o.Generation); err != nil {
			t.Errorf("a new display name ended the session: %v", err)
		}
		if code := e.call("PATCH", "/bank/v1/operators/"+op.ID, adminToken, map[string]any{"roles": []string{"viewer"}}, nil); code != http.StatusOK {
			t.Fatal(code)
		}
		if _, err := e.svc.ActiveOperator(ctx, o.ID, o.Generation); causeway.ErrorCode(err) != "session_ended" {
			t.Errorf("after a role change the session = %v, want session_ended", err)
		}
		o, _ = e.svc.OperatorLogIn(ctx, op.Email, operatorPassword, "")
		if err := e.svc.ChangeOperatorPassword(ctx, o.ID, operatorPassword, "a new long password"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ActiveOperator(ctx, o.ID, o.Generation); causeway.ErrorCode(err) != "session_ended" {
			t.Errorf("after a password change the session = %v, want session_ended", err)
		}
		var recorded int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_entries WHERE action = 'operator.password_change' AND actor = $1 AND target_id = $2`,
			"operator:"+o.ID, o.ID).Scan(&recorded); err != nil || recorded != 1 {
			t.Errorf("password changes in the audit trail: %d, %v", recorded, err)
		}
	})
}

func TestNobodyChangesTheirOwnRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		admin := e.createOperator("self@bank.example", auth.RoleAdmin)
		token := e.operatorToken(admin)
		var problem struct{ Code string }
		if code := e.call("PATCH", "/bank/v1/operators/"+admin.ID, token, map[string]any{"roles": []string{"admin", "risk-officer"}}, &problem); code != http.StatusForbidden ||
			problem.Code != "own_account" {
			t.Errorf("an admin widening their own roles = %d %s, want 403 own_account", code, problem.Code)
		}
		if code := e.call("POST", "/bank/v1/operators/"+admin.ID+"/reset-totp", token, nil, &problem); code != http.StatusForbidden {
			t.Errorf("an admin resetting their own second factor = %d, want 403", code)
		}
		if code := e.call("POST", "/bank/v1/operators", adminToken, map[string]any{
			"email": "SELF@bank.example", "password": operatorPassword, "roles": []string{"viewer"},
		}, &problem); code != http.StatusConflict || problem.Code != "email_taken" {
			t.Errorf("a second operator with the email = %d %s", code, problem.Code)
		}
		if code := e.call("POST", "/bank/v1/operators", adminToken, map[string]any{
			"email": "ghost@bank.example", "password": operatorPassword, "roles": []string{"superuser"},
		}, &problem); code < 400 || code >= 500 {
			t.Errorf("an unknown role = %d, want 4xx", code)
		}
	})
}

func TestAConcurrentlyReplayedSecondFactorWorksOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		op := e.createOperator("replay@bank.example", auth.RoleViewer)
		enrollment, err := e.svc.BeginTOTP(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		codes, err := e.svc.ConfirmTOTP(ctx, op.ID, e.code(enrollment.Secret, 0))
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(totpPeriod * time.Second)
		code := e.code(enrollment.Secret, 0)
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := e.svc.OperatorLogIn(ctx, op.Email, operatorPassword, code)
			return err
		}), causeway.EUNAUTHORIZED, "invalid_credentials")
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			_, err := e.svc.OperatorLogIn(ctx, op.Email, operatorPassword, codes[0])
			return err
		}), causeway.EUNAUTHORIZED, "invalid_credentials")
	})
}

func TestAdminsChangingOneOperatorAtOnceLoseNoChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
		e := newEnv(t, db, Options{})
		op := e.createOperator("target@bank.example", auth.RoleViewer)
		// Each racer sets roles no other racer sets, so every change that
		// wins moves the generation.
		rolesOf := func(i int) auth.Roles {
			var out auth.Roles
			for bit, r := range auth.AllRoles {
				if (i+2)&(1<<bit) != 0 {
					out = append(out, r)
				}
			}
			return auth.NewRoles(out...)
		}
		changed := make([]*Operator, racers)
		errs := testkit.Race(racers, func(i int) error {
			roles := rolesOf(i)
			var err error
			changed[i], err = e.svc.ChangeOperator(ctx, auth.CallerFrom(ctx), op.ID, OperatorChange{Roles: &roles})
			return err
		})
		won, generations := 0, map[int64]bool{}
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				if generations[changed[i].Generation] {
					t.Errorf("two changes were both answered as generation %d: one overwrote the other unseen", changed[i].Generation)
				}
				generations[changed[i].Generation] = true
			case causeway.ErrorCode(err) != "operator_changed":
				t.Errorf("a loser got %v, want 409 operator_changed", err)
			}
		}
		var generation int64
		if err := db.QueryRowContext(ctx, `SELECT generation FROM identity_operators WHERE id = $1`, op.ID).Scan(&generation); err != nil {
			t.Fatal(err)
		}
		if won == 0 || generation != int64(1+won) {
			t.Errorf("%d changes won but the generation moved to %d", won, generation)
		}
	})
}

// TestOperatorsRevokingOneTokenOrConfirmingOneFactorAtOnceWinOnce: the
// token's revocation and the second factor's confirmation are
// compare-and-sets: of callers racing, exactly one wins.
func TestOperatorsRevokingOneTokenOrConfirmingOneFactorAtOnceWinOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		op := e.createOperator("race.token@bank.example", auth.RoleViewer)
		tok, err := e.svc.IssueOperatorToken(ctx, op.Caller(), "raced", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			return e.svc.RevokeOperatorToken(ctx, op.ID, tok.ID)
		}), causeway.ECONFLICT, "token_revoked")

		enrollment, err := e.svc.BeginTOTP(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		code := e.code(enrollment.Secret, 0)
		codes := make([][]string, racers)
		winner := testkit.OneWinner(t, testkit.Race(racers, func(i int) error {
			var err error
			codes[i], err = e.svc.ConfirmTOTP(ctx, op.ID, code)
			return err
		}), causeway.ECONFLICT, "totp_enabled")
		// The winner's recovery codes are the ones on record.
		if winner >= 0 {
			if _, err := e.svc.OperatorLogIn(ctx, op.Email, operatorPassword, codes[winner][0]); err != nil {
				t.Errorf("the winner's recovery code: %v", err)
			}
		}
	})
}

// TestAdminsCreatingOneOperatorOrTheOperatorChangingOnePasswordAtOnceWinOnce:
// of admins creating operators with one email at once, one gets the
// account and the others email_taken; of password changes made at once
// from the same current password, one wins and the others are refused,
// so no change is lost unseen.
func TestAdminsCreatingOneOperatorOrTheOperatorChangingOnePasswordAtOnceWinOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
		e := newEnv(t, db, Options{})
		var created []*Operator
		var mu sync.Mutex
		testkit.OneWinner(t, testkit.Race(racers, func(i int) error {
			op, err := e.svc.CreateOperator(ctx, auth.CallerFrom(ctx), NewOperator{Email: "Same@bank.example", Password: operatorPassword,
				Roles: auth.Roles{auth.RoleViewer}})
			if err == nil {
				mu.Lock()
				created = append(created, op)
				mu.Unlock()
			}
			return err
		}), causeway.ECONFLICT, "email_taken")
		if len(created) != 1 {
			t.Fatalf("%d operators created", len(created))
		}
		// A loser that read the operator before the winner committed is
		// told it changed; one that read it after finds the current
		// password is no longer the one it gave.
		winner, won := -1, 0
		for i, err := range testkit.Race(racers, func(i int) error {
			return e.svc.ChangeOperatorPassword(ctx, created[0].ID, operatorPassword, fmt.Sprintf("new password number %d", i))
		}) {
			switch code := causeway.ErrorCode(err); {
			case err == nil:
				winner, won = i, won+1
			case code != "operator_changed" && code != "invalid_credentials":
				t.Errorf("a loser got %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d password changes won, want exactly 1", won, racers)
		}
		if _, err := e.svc.OperatorLogIn(ctx, "same@bank.example", fmt.Sprintf("new password number %d", winner), ""); err != nil {
			t.Errorf("the winning password does not log in: %v", err)
		}
	})
}
