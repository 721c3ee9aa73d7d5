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

const testProvider = "https://login.bank.example/realms/staff"

// ssoSignIn signs in subject of the test provider with a verified email.
func (e *env) ssoSignIn(subject, email, name string, roles ...auth.Role) (*Operator, error) {
	return e.svc.SignInWithSSO(context.Background(), testProvider, subject, email, true, name, roles)
}

// actionsOn lists the actions of the audit trail on target, oldest first,
// each with its actor.
func actionsOn(t *testing.T, db *store.DB, target string) []string {
	t.Helper()
	var out []string
	for _, e := range trailOf(t, db) {
		if e.TargetID == target {
			out = append(out, e.Action+" by "+e.Actor)
		}
	}
	return out
}

// wantSSOError fails t unless err is a causeway error of kind and code.
func wantSSOError(t *testing.T, what string, err error, kind causeway.Kind, code string) {
	t.Helper()
	if causeway.ErrorKind(err) != kind || causeway.ErrorCode(err) != code {
		t.Errorf("%s: %v, want %s %s", what, err, kind, code)
	}
}

// TestFirstSSOSignInCreatesAnOperatorWhoseRolesFollowTheProvider: a
// person the console does not know becomes an active operator without a
// password, linked to the provider; later sign-ins find the same
// operator by issuer and subject (whatever the email says), refresh the
// email and name, and set the provider's roles, ending the operator's
// other sessions only when the roles change.
func TestFirstSSOSignInCreatesAnOperatorWhoseRolesFollowTheProvider(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		first, err := e.ssoSignIn("ada-sub", "Ada@Bank.example", "Ada Lovelace", auth.RoleRiskOfficer, auth.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		if !first.SSO || first.Status != OperatorActive || first.Email != "Ada@Bank.example" || first.Name != "Ada Lovelace" ||
			first.Roles.String() != "risk-officer viewer" || first.TOTP {
			t.Errorf("the new operator = %+v", first)
		}
		var hash *string
		if err := db.QueryRowContext(ctx, `SELECT password_hash FROM identity_operators WHERE id = $1`, first.ID).Scan(&hash); err != nil || hash != nil {
			t.Errorf("the new operator's password hash = %v (%v), want NULL", hash, err)
		}
		_, err = e.svc.OperatorLogIn(ctx, "ada@bank.example", "", "")
		wantSSOError(t, "a password login of an operator without a password", err, causeway.EUNAUTHORIZED, "invalid_credentials")

		again, err := e.ssoSignIn("ada-sub", "ada.lovelace@bank.example", "Ada King", auth.RoleViewer, auth.RoleRiskOfficer)
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID || again.Generation != first.Generation || again.Email != "ada.lovelace@bank.example" || again.Name != "Ada King" {
			t.Errorf("the second sign-in = %+v, want the same operator in the same generation, email and name refreshed", again)
		}
		if _, err := e.svc.ActiveOperator(ctx, first.ID, first.Generation); err != nil {
			t.Errorf("a sign-in with the same roles ended the operator's session: %v", err)
		}
		// No email, no name: the operator keeps theirs.
		narrowed, err := e.svc.SignInWithSSO(ctx, testProvider, "ada-sub", "", false, "", auth.Roles{auth.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		if narrowed.ID != first.ID || narrowed.Roles.String() != "viewer" || narrowed.Generation != first.Generation+1 ||
			narrowed.Email != "ada.lovelace@bank.example" || narrowed.Name != "Ada King" {
			t.Errorf("after the provider narrowed the roles: %+v", narrowed)
		}
		_, err = e.svc.ActiveOperator(ctx, first.ID, first.Generation)
		wantSSOError(t, "the session from before the roles changed", err, causeway.EUNAUTHORIZED, "session_ended")
		if got, err := e.svc.operator(ctx, first.ID); err != nil || got.Roles.String() != "viewer" || got.Generation != narrowed.Generation {
			t.Errorf("stored: %+v, %v", got, err)
		}

		// The same subject at another issuer is another person.
		other, err := e.svc.SignInWithSSO(ctx, testProvider+"-other", "ada-sub", "ada2@bank.example", true, "", auth.Roles{auth.RoleViewer})
		if err != nil || other.ID == first.ID || other.Name != "ada2@bank.example" {
			t.Errorf("the same subject at another issuer = %+v, %v; want a new operator named by their email", other, err)
		}

		// The creation and the two changes are in the trail; the sign-in
		// that changed nothing is not.
		by := " by operator:" + first.ID
		want := []string{"operator.sso_create" + by, "operator.sso_change" + by, "operator.sso_change" + by}
		if got := actionsOn(t, db, first.ID); strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("the audit trail on the operator = %q, want %q", got, want)
		}
		if _, err := e.ssoSignIn("ada-sub", "ada.lovelace@bank.example", "Ada King", auth.RoleViewer); err != nil {
			t.Fatal(err)
		}
		if got := actionsOn(t, db, first.ID); len(got) != len(want) {
			t.Errorf("a sign-in that changed nothing was audited: %q", got)
		}
	})
}

// TestSSOSignInLinksAnOperatorByVerifiedEmailOnly: an operator the bank
// created with a password is linked at their first sign-in, in any letter
// case of the email, only when the provider verified the email; then the
// provider's roles replace theirs. Another person of the provider with
// that email is refused, and so is an email without an address for a new
// operator.
func TestSSOSignInLinksAnOperatorByVerifiedEmailOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		bob, err := e.svc.operator(ctx, e.createOperator("bob@bank.example", auth.RoleAppManager).ID)
		if err != nil {
			t.Fatal(err)
		}

		_, err = e.svc.SignInWithSSO(ctx, testProvider, "bob-sub", "BOB@bank.example", false, "Bob", auth.Roles{auth.RoleAdmin})
		wantSSOError(t, "an unverified email of an operator", err, causeway.ECONFLICT, "sso_email_taken")
		if got, _ := e.svc.operator(ctx, bob.ID); got.SSO || got.Roles.String() != "app-manager" {
			t.Fatalf("an unverified email changed the operator: %+v", got)
		}

		linked, err := e.ssoSignIn("bob-sub", "BOB@bank.example", "Bob Builder", auth.RoleDataSteward)
		if err != nil {
			t.Fatal(err)
		}
		if linked.ID != bob.ID || !linked.SSO || linked.Roles.String() != "data-steward" || linked.Generation != bob.Generation+1 ||
			linked.Name != "Bob Builder" {
			t.Errorf("the linked operator = %+v, want %s with the provider's roles in a new generation", linked, bob.ID)
		}
		var issuer, subject string
		if err := db.QueryRowContext(ctx, `SELECT sso_issuer, sso_subject FROM identity_operators WHERE id = $1`, bob.ID).Scan(&issuer, &subject); err != nil ||
			issuer != testProvider || subject != "bob-sub" {
			t.Errorf("the link = %q %q (%v)", issuer, subject, err)
		}
		if got := actionsOn(t, db, bob.ID); len(got) != 2 || got[1] != "operator.sso_link by operator:"+bob.ID {
			t.Errorf("the audit trail on the linked operator = %q, want its creation, then operator.sso_link by them", got)
		}
		// Their password still logs in: linking takes nothing away.
		if _, err := e.svc.OperatorLogIn(ctx, "bob@bank.example", operatorPassword, ""); err != nil {
			t.Errorf("the linked operator's password: %v", err)
		}

		_, err = e.ssoSignIn("mallory-sub", "bob@bank.example", "Mallory", auth.RoleAdmin)
		wantSSOError(t, "another person with the linked operator's email", err, causeway.ECONFLICT, "sso_email_taken")
		_, err = e.svc.SignInWithSSO(ctx, testProvider, "nobody-sub", "", true, "Nobody", auth.Roles{auth.RoleViewer})
		wantSSOError(t, "a new person without an email", err, causeway.EFORBIDDEN, "sso_email_missing")
		_, err = e.svc.SignInWithSSO(ctx, testProvider, "", "x@bank.example", true, "", auth.Roles{auth.RoleViewer})
		wantSSOError(t, "no subject", err, causeway.EINVALID, "invalid_sso_identity")
		_, err = e.ssoSignIn("roleless-sub", "roleless@bank.example", "")
		wantSSOError(t, "no role", err, causeway.EINVALID, "invalid_roles")

		// A linked operator whose provider email is another operator's
		// keeps their own.
		e.createOperator("carol@bank.example", auth.RoleViewer)
		again, err := e.ssoSignIn("bob-sub", "carol@bank.example", "", auth.RoleDataSteward)
		if err != nil || again.Email != "BOB@bank.example" {
			t.Errorf("a sign-in with another operator's email = %+v, %v; want the old email kept", again, err)
		}
	})
}

// TestSSOSignInRefusesADisabledOperator: an admin's disabling holds
// against the provider, linked or not.
func TestSSOSignInRefusesADisabledOperator(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := auth.WithOperator(context.Background(), auth.AdminTokenHolder())
		e := newEnv(t, db, Options{})
		linked, err := e.ssoSignIn("dora-sub", "dora@bank.example", "Dora", auth.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		unlinked := e.createOperator("eve@bank.example", auth.RoleViewer)
		disabled := OperatorDisabled
		for _, id := range []string{linked.ID, unlinked.ID} {
			if _, err := e.svc.ChangeOperator(ctx, auth.CallerFrom(ctx), id, OperatorChange{Status: &disabled}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = e.ssoSignIn("dora-sub", "dora@bank.example", "Dora", auth.RoleAdmin)
		wantSSOError(t, "a disabled linked operator", err, causeway.EUNAUTHORIZED, "operator_disabled")
		_, err = e.ssoSignIn("eve-sub", "eve@bank.example", "Eve", auth.RoleAdmin)
		wantSSOError(t, "a disabled operator by email", err, causeway.EUNAUTHORIZED, "operator_disabled")
		for _, id := range []string{linked.ID, unlinked.ID} {
			if got, _ := e.svc.operator(ctx, id); got.Roles.String() != "viewer" || got.Status != OperatorDisabled {
				t.Errorf("a refused sign-in changed %s: %+v", id, got)
			}
		}
	})
}

// TestFirstSSOSignInsAtOnceMakeOneOperator: one person's first sign-in
// arriving on several nodes at once creates one operator, and every
// sign-in gets it; two people of the provider claiming one operator's
// email at once link it to one of them.
func TestFirstSSOSignInsAtOnceMakeOneOperator(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		got := make([]*Operator, racers)
		for i, err := range testkit.Race(racers, func(i int) error {
			var err error
			got[i], err = e.ssoSignIn("fay-sub", "fay@bank.example", "Fay", auth.RoleAppManager)
			return err
		}) {
			if err != nil {
				t.Fatalf("sign-in %d of the race: %v", i, err)
			}
			if got[i].ID != got[0].ID {
				t.Errorf("sign-in %d got operator %s, sign-in 0 %s", i, got[i].ID, got[0].ID)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM identity_operators WHERE email_key = 'fay@bank.example'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d operators after the race (%v), want 1", n, err)
		}
		if got := actionsOn(t, db, got[0].ID); len(got) != 1 || !strings.HasPrefix(got[0], "operator.sso_create") {
			t.Errorf("the audit trail after the race = %q, want one creation", got)
		}

		gus := e.createOperator("gus@bank.example", auth.RoleViewer)
		winner := testkit.OneWinner(t, testkit.Race(racers, func(i int) error {
			_, err := e.ssoSignIn("gus-claimant-"+string(rune('a'+i)), "gus@bank.example", "", auth.RoleViewer)
			return err
		}), causeway.ECONFLICT, "sso_email_taken")
		var subject string
		if err := db.QueryRowContext(ctx, `SELECT sso_subject FROM identity_operators WHERE id = $1`, gus.ID).Scan(&subject); err != nil ||
			subject != "gus-claimant-"+string(rune('a'+winner)) {
			t.Errorf("gus is linked to %q (%v), want the winner's subject", subject, err)
		}
	})
}
