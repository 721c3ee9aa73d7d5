package identity

import (
	"context"
	"encoding/base64"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// TestATokenFromBeforeASuspensionIsRefusedEvenInTheSameSecond: the clock
// stands still, so the token minted before the suspension and the one
// minted after the reinstatement carry the same "iat" (JWT times are whole
// seconds); an "issued before the suspension" check by time could not
// tell them apart. The app's token generation does: the old token is
// refused, the new one works. Two nodes share the database; the second
// had verified and cached the old token and the app's status just before
// the suspension, and refuses it as soon as the first node's reinstatement
// returns.
func TestATokenFromBeforeASuspensionIsRefusedEvenInTheSameSecond(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := newEnv(t, db, Options{})
		b := newEnv(t, db, Options{})
		b.clock = a.clock
		b.svc.now = a.clock.Now
		ctx := context.Background()
		dev := a.signUp("same-second@example.com")
		app := a.createApp(dev.Token, auth.ScopeAccountsRead)

		old := a.accessToken(app)
		for _, node := range []*env{a, b} {
			if _, err := node.svc.AuthenticateApp(ctx, old.AccessToken); err != nil {
				t.Fatalf("before the suspension: %v", err)
			}
		}
		if _, err := a.svc.Suspend(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Approve(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
		fresh := a.accessToken(app)
		if iat(t, old.AccessToken) != iat(t, fresh.AccessToken) {
			t.Fatalf("the clock moved: the tokens' iat differ, so this is not the same-second case")
		}
		for name, node := range map[string]*env{"the suspending node": a, "the other node": b} {
			_, err := node.svc.AuthenticateApp(ctx, old.AccessToken)
			if err == nil {
				t.Errorf("%s accepts the token minted before the suspension", name)
				continue
			}
			wantCode(t, err, "token_revoked")
			if _, err := node.svc.AuthenticateApp(ctx, fresh.AccessToken); err != nil {
				t.Errorf("%s refuses the token minted after the reinstatement: %v", name, err)
			}
		}

		// A token minted while the suspension is being decided, from the
		// generation it read before: dead too. (IssueToken reads status and
		// generation in one statement, so it either sees the suspension and
		// refuses, or signs the old generation.)
		before, err := a.svc.IssueToken(ctx, TokenRequest{ClientID: app.ClientID, ClientSecret: app.ClientSecret})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Suspend(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Approve(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
		_, err = b.svc.AuthenticateApp(ctx, before.Token)
		wantCode(t, err, "token_revoked")
	})
}

// iat returns a compact JWT's "iat" claim as it is written.
func iat(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(payload), `"iat":`)
	if !ok {
		t.Fatalf("no iat in %s", payload)
	}
	end := strings.IndexAny(rest, ",}")
	return rest[:end]
}

// TestUpgradeGrantsWebhooksWriteAndKeepsSuspendedAppsTokensDead migrates a
// database of the previous schema: every app that held events:read now
// also holds webhooks:write (managing webhooks needed only events:read
// before), others are unchanged; an app suspended at the upgrade starts a
// new token generation, so the tokens it held before (which carry no
// generation) stay dead when it is reinstated.
func TestUpgradeGrantsWebhooksWriteAndKeepsSuspendedAppsTokensDead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		first, err := fs.ReadFile(migrationFiles, "migrations/00001_identity.sql")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, "identity", fstest.MapFS{"00001_identity.sql": {Data: first}}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`INSERT INTO identity_organizations (id, name, created_at) VALUES ('org_1', 'Org', 0)`,
			`INSERT INTO identity_developers (id, organization_id, email, email_key, password_hash, created_at) VALUES ('dev_1', 'org_1', 'a@example.com', 'a@example.com', 'x', 0)`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		apps := []struct{ id, scopes, status, wantScopes string }{
			{"app_events", "accounts:read events:read spi:write", auth.AppActive, "accounts:read events:read webhooks:write spi:write"},
			{"app_last", "accounts:read events:read", auth.AppSuspended, "accounts:read events:read webhooks:write"},
			{"app_only", "events:read", auth.AppPendingApproval, "events:read webhooks:write"},
			{"app_none", "accounts:read data:read", auth.AppActive, "accounts:read data:read"},
		}
		for i, a := range apps {
			if _, err := db.ExecContext(ctx, `INSERT INTO identity_apps (id, organization_id, developer_id, name, client_id, secret_hash, scopes, status, created_at, updated_at)
				VALUES ($1, 'org_1', 'dev_1', 'App', $2, 'x', $3, $4, 0, 0)`, a.id, "cw_"+string(rune('a'+i)), a.scopes, a.status); err != nil {
				t.Fatal(err)
			}
		}
		if err := migrateAll(ctx, db); err != nil {
			t.Fatal(err)
		}
		for _, a := range apps {
			var scopes string
			var gen int64
			if err := db.QueryRowContext(ctx, `SELECT scopes, token_generation FROM identity_apps WHERE id = $1`, a.id).Scan(&scopes, &gen); err != nil {
				t.Fatal(err)
			}
			if scopes != a.wantScopes {
				t.Errorf("%s: scopes %q after the upgrade, want %q", a.id, scopes, a.wantScopes)
			}
			if want := map[bool]int64{true: 1, false: 0}[a.status == auth.AppSuspended]; gen != want {
				t.Errorf("%s (%s): token generation %d, want %d", a.id, a.status, gen, want)
			}
		}
	})
}
