package identity

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func TestSignUpRulesAndLoginErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		e.signUp("grace@example.com")
		tests := []struct {
			name   string
			body   map[string]string
			status int
			code   string
		}{
			{"duplicate email in another case", map[string]string{"email": "Grace@Example.com", "password": "another long password", "organization": "X"}, 409, "email_taken"},
			{"short password", map[string]string{"email": "new@example.com", "password": "short", "organization": "X"}, 422, "weak_password"},
			{"nine characters", map[string]string{"email": "new@example.com", "password": "123456789", "organization": "X"}, 422, "weak_password"},
			// The schema's maxLength (1024) refuses it before SignUp does.
			{"too long", map[string]string{"email": "new@example.com", "password": strings.Repeat("long password ", 80), "organization": "X"}, 422, "validation_failed"},
			{"one repeated character", map[string]string{"email": "new@example.com", "password": "aaaaaaaaaaaa", "organization": "X"}, 422, "weak_password"},
			{"bad email", map[string]string{"email": "not-an-email", "password": "long enough password", "organization": "X"}, 422, "invalid_email"},
			{"display-name email", map[string]string{"email": "Eve <eve@example.com>", "password": "long enough password", "organization": "X"}, 422, "invalid_email"},
			{"no organization", map[string]string{"email": "new@example.com", "password": "long enough password", "organization": "  "}, 422, "invalid_organization"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := e.do("POST", "/v1/developers", "", tt.body)
				defer res.Body.Close()
				p := decodeProblem(t, res)
				if res.StatusCode != tt.status || p.Code != tt.code {
					t.Errorf("%d %s, want %d %s", res.StatusCode, p.Code, tt.status, tt.code)
				}
			})
		}

		// Wrong password and unknown email: the same answer.
		var details []string
		for _, body := range []map[string]string{
			{"email": "grace@example.com", "password": "wrong password!"},
			{"email": "nobody@example.com", "password": "correct horse battery"},
		} {
			res := e.do("POST", "/v1/developers/login", "", body)
			p := decodeProblem(t, res)
			res.Body.Close()
			if res.StatusCode != 401 || p.Code != "invalid_credentials" {
				t.Errorf("login %s: %d %s", body["email"], res.StatusCode, p.Code)
			}
			details = append(details, p.Detail)
		}
		if details[0] != details[1] {
			t.Errorf("login errors differ: %q vs %q", details[0], details[1])
		}
	})
}

func decodeProblem(t *testing.T, res *http.Response) httpapi.Problem {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var p httpapi.Problem
	if err := jsonDecode(res, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeveloperTokensExpireAndLogOut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("tokens@example.com")
		if code := e.call("GET", "/v1/apps", dev.Token, nil, nil); code != 200 {
			t.Fatalf("list with a fresh token = %d", code)
		}
		for _, token := range []string{"", "cwdev_forged", "garbage"} {
			res := e.do("GET", "/v1/apps", token, nil)
			p := decodeProblem(t, res)
			res.Body.Close()
			if res.StatusCode != 401 {
				t.Errorf("token %q: %d %s", token, res.StatusCode, p.Code)
			}
		}
		if code := e.call("POST", "/v1/developers/logout", dev.Token, nil, nil); code != 204 {
			t.Fatalf("logout = %d", code)
		}
		if code := e.call("GET", "/v1/apps", dev.Token, nil, nil); code != 401 {
			t.Errorf("list after logout = %d", code)
		}

		var login struct{ Token string }
		e.call("POST", "/v1/developers/login", "", map[string]string{"email": "tokens@example.com", "password": "correct horse battery"}, &login)
		e.clock.Advance(DeveloperTokenTTL - time.Minute)
		if _, err := e.svc.AuthenticateDeveloper(context.Background(), login.Token); err != nil {
			t.Errorf("token rejected before expiry: %v", err)
		}
		e.clock.Advance(2 * time.Minute)
		_, err := e.svc.AuthenticateDeveloper(context.Background(), login.Token)
		wantCode(t, err, "invalid_token")
	})
}

func TestAppsBelongToTheirOrganization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		alice, bob := e.signUp("alice@example.com"), e.signUp("bob@example.com")
		a1 := e.createApp(alice.Token, auth.ScopeAccountsRead)
		a2 := e.createApp(alice.Token, auth.ScopeDataRead)
		b1 := e.createApp(bob.Token, auth.ScopeEventsRead)

		for _, call := range []struct{ method, path string }{
			{"GET", "/v1/apps/" + a1.ID},
			{"POST", "/v1/apps/" + a1.ID + "/rotate-secret"},
			{"DELETE", "/v1/apps/" + a1.ID},
			{"GET", "/v1/apps/app_doesnotexist"},
		} {
			res := e.do(call.method, call.path, bob.Token, nil)
			p := decodeProblem(t, res)
			res.Body.Close()
			if res.StatusCode != 404 || p.Code != "app_not_found" {
				t.Errorf("bob %s %s: %d %s", call.method, call.path, res.StatusCode, p.Code)
			}
		}
		// Alice's app still works after bob's attempts.
		e.accessToken(a1)

		var bobs page.Page[*App]
		e.call("GET", "/v1/apps", bob.Token, nil, &bobs)
		if len(bobs.Data) != 1 || bobs.Data[0].ID != b1.ID {
			t.Errorf("bob's apps = %+v", bobs.Data)
		}
		// Paging through alice's apps one at a time.
		var ids []string
		cursor := ""
		for range 5 {
			var p page.Page[*App]
			if code := e.call("GET", "/v1/apps?limit=1&cursor="+cursor, alice.Token, nil, &p); code != 200 {
				t.Fatalf("page = %d", code)
			}
			for _, a := range p.Data {
				ids = append(ids, a.ID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(ids, []string{a1.ID, a2.ID}) {
			t.Errorf("alice's apps = %v", ids)
		}
		if code := e.call("GET", "/v1/apps?cursor=%21%21", alice.Token, nil, nil); code != 400 {
			t.Errorf("bad cursor = %d", code)
		}

		ctx := context.Background()
		if org, err := e.svc.AppOrganization(ctx, a1.ID); err != nil || org != alice.OrganizationID {
			t.Errorf("AppOrganization = %s, %v", org, err)
		}
		_, err := e.svc.AppOrganization(ctx, "app_nope")
		wantCode(t, err, "app_not_found")
	})
}

func TestCreateAppValidatesNameAndScopes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("valid@example.com")
		for _, tt := range []struct {
			name string
			body map[string]any
			code string
		}{
			{"no scopes", map[string]any{"name": "x", "scopes": []string{}}, "invalid_scope"},
			{"unknown scope", map[string]any{"name": "x", "scopes": []string{"accounts:read", "root"}}, "invalid_scope"},
			{"empty name", map[string]any{"name": " ", "scopes": []string{"accounts:read"}}, "invalid_name"},
		} {
			res := e.do("POST", "/v1/apps", dev.Token, tt.body)
			p := decodeProblem(t, res)
			res.Body.Close()
			if res.StatusCode != 422 || p.Code != tt.code {
				t.Errorf("%s: %d %s, want 422 %s", tt.name, res.StatusCode, p.Code, tt.code)
			}
		}
		// Duplicates collapse, order follows the catalogue.
		app := e.createApp(dev.Token, auth.ScopeDataRead, auth.ScopeAccountsRead, auth.ScopeDataRead)
		if !slices.Equal(app.Scopes, []string{auth.ScopeAccountsRead, auth.ScopeDataRead}) {
			t.Errorf("scopes = %v", app.Scopes)
		}
	})
}

func TestSuspendedAndDeletedAppsLoseTheirTokensAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("suspend@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		ctx := context.Background()
		tok := e.accessToken(app)

		var suspended App
		if code := e.bank("POST", "/apps/"+app.ID+"/suspend", &suspended); code != 200 || suspended.Status != auth.AppSuspended {
			t.Fatalf("suspend = %d %+v", code, suspended)
		}
		_, err := e.svc.AuthenticateApp(ctx, tok.AccessToken)
		wantCode(t, err, "app_inactive")
		_, err = e.credentials(app, oauth2.AuthStyleInHeader).Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "unauthorized_client" {
			t.Errorf("token for a suspended app: %v", err)
		}
		var listed page.Page[*App]
		e.bank("GET", "/apps?status=suspended", &listed)
		if len(listed.Data) != 1 || listed.Data[0].ID != app.ID {
			t.Errorf("suspended apps = %+v", listed.Data)
		}

		// Reinstated: the token from before the suspension stays dead; a
		// new one works.
		if code := e.bank("POST", "/apps/"+app.ID+"/approve", nil); code != 200 {
			t.Fatalf("approve = %d", code)
		}
		_, err = e.svc.AuthenticateApp(ctx, tok.AccessToken)
		wantCode(t, err, "token_revoked")
		tok = e.accessToken(app)
		if _, err := e.svc.AuthenticateApp(ctx, tok.AccessToken); err != nil {
			t.Errorf("a token minted after reinstatement: %v", err)
		}

		if code := e.call("DELETE", "/v1/apps/"+app.ID, dev.Token, nil, nil); code != 204 {
			t.Fatalf("delete = %d", code)
		}
		_, err = e.svc.AuthenticateApp(ctx, tok.AccessToken)
		wantCode(t, err, "app_inactive")
		res, body := e.postForm("grant_type=client_credentials", http.Header{"Authorization": {basic(app.ClientID, app.ClientSecret)}})
		if res.StatusCode != 401 || body["error"] != "invalid_client" {
			t.Errorf("token for a deleted app: %d %v", res.StatusCode, body)
		}
		for _, path := range []string{"/v1/apps/" + app.ID} {
			if code := e.call("GET", path, dev.Token, nil, nil); code != 404 {
				t.Errorf("GET deleted app = %d", code)
			}
		}
		if code := e.bank("POST", "/apps/"+app.ID+"/approve", nil); code != 404 {
			t.Errorf("approve a deleted app = %d", code)
		}
		_, err = e.svc.AppOrganization(ctx, app.ID)
		wantCode(t, err, "app_not_found")
	})
}

func TestRotatedSecretReplacesTheOldOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		dev := e.signUp("secret@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		before := e.accessToken(app)

		var rotated struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if code := e.call("POST", "/v1/apps/"+app.ID+"/rotate-secret", dev.Token, nil, &rotated); code != 200 ||
			rotated.ClientID != app.ClientID || rotated.ClientSecret == "" || rotated.ClientSecret == app.ClientSecret {
			t.Fatalf("rotate = %d %+v", code, rotated)
		}
		_, err := e.credentials(app, oauth2.AuthStyleInParams).Token(context.Background())
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
			t.Errorf("old secret: %v", err)
		}
		app.ClientSecret = rotated.ClientSecret
		e.accessToken(app)
		// Tokens issued before stay valid until they expire.
		if _, err := e.svc.AuthenticateApp(context.Background(), before.AccessToken); err != nil {
			t.Errorf("earlier token after rotation: %v", err)
		}
	})
}

func TestProductionAppsWaitForTheBanksApproval(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction})
		dev := e.signUp("prod@example.com")
		app := e.createApp(dev.Token, auth.ScopePaymentsWrite)
		if app.Status != auth.AppPendingApproval {
			t.Fatalf("status = %s", app.Status)
		}
		if len(e.activated.calls()) != 0 {
			t.Fatal("OnAppActivated ran before approval")
		}
		_, err := e.credentials(app, oauth2.AuthStyleInHeader).Token(context.Background())
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "unauthorized_client" || re.Response.StatusCode != 400 {
			t.Fatalf("token before approval: %v", err)
		}
		var pending page.Page[*App]
		e.bank("GET", "/apps?status=pending_approval", &pending)
		if len(pending.Data) != 1 || pending.Data[0].ID != app.ID {
			t.Errorf("pending = %+v", pending.Data)
		}
		if code := e.call("GET", "/bank/v1/apps", "", nil, nil); code != 401 {
			t.Errorf("bank list without admin token = %d", code)
		}

		// A failing hook leaves the app pending, and the bank can retry.
		e.activated.setFail(errors.New("seeding failed"))
		if code := e.bank("POST", "/apps/"+app.ID+"/approve", nil); code < 500 {
			t.Errorf("approve with failing hook = %d", code)
		}
		var got App
		e.call("GET", "/v1/apps/"+app.ID, dev.Token, nil, &got)
		if got.Status != auth.AppPendingApproval {
			t.Errorf("status after failed activation = %s", got.Status)
		}
		e.activated.setFail(nil)

		var approved App
		if code := e.bank("POST", "/apps/"+app.ID+"/approve", &approved); code != 200 || approved.Status != auth.AppActive {
			t.Fatalf("approve = %d %+v", code, approved)
		}
		if calls := e.activated.calls(); !slices.Equal(calls, []string{app.ID}) {
			t.Errorf("OnAppActivated calls = %v", calls)
		}
		// Approving again is a conflict and does not re-run the hook.
		res := e.do("POST", "/bank/v1/apps/"+app.ID+"/approve", adminToken, nil)
		p := decodeProblem(t, res)
		res.Body.Close()
		if res.StatusCode != 409 || p.Code != "app_already_active" {
			t.Errorf("second approval = %d %s", res.StatusCode, p.Code)
		}
		if calls := e.activated.calls(); len(calls) != 1 {
			t.Errorf("OnAppActivated calls after a second approval = %v", calls)
		}
		tok := e.accessToken(app)
		if _, err := e.svc.AuthenticateApp(context.Background(), tok.AccessToken); err != nil {
			t.Fatal(err)
		}
		if code := e.bank("GET", "/apps?status=bogus", nil); code != 422 {
			t.Errorf("bad status filter = %d", code)
		}
	})
}

func TestSandboxAppsAreActiveAtCreation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeSandbox})
		dev := e.signUp("sandbox@example.com")
		app := e.createApp(dev.Token, auth.ScopeAccountsRead)
		if app.Status != auth.AppActive {
			t.Fatalf("status = %s", app.Status)
		}
		if calls := e.activated.calls(); !slices.Equal(calls, []string{app.ID}) {
			t.Errorf("OnAppActivated calls = %v", calls)
		}

		// When the hook fails, no app is left behind.
		e.activated.setFail(causeway.Errorf(causeway.EUNAVAILABLE, "seed_failed", "could not seed"))
		res := e.do("POST", "/v1/apps", dev.Token, map[string]any{"name": "doomed", "scopes": []string{"accounts:read"}})
		p := decodeProblem(t, res)
		res.Body.Close()
		if res.StatusCode != 503 || p.Code != "seed_failed" {
			t.Errorf("create with failing hook = %d %s", res.StatusCode, p.Code)
		}
		var apps page.Page[*App]
		e.call("GET", "/v1/apps", dev.Token, nil, &apps)
		if len(apps.Data) != 1 {
			t.Errorf("apps after failed creation = %d", len(apps.Data))
		}
	})
}

func TestRoutesDeclareTheirSecurity(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), Options{})
	for pattern, want := range map[string]string{
		"POST /v1/developers":               "",
		"POST /v1/developers/login":         "",
		"POST /v1/developers/logout":        httpapi.SchemeDeveloper,
		"POST /v1/apps":                     httpapi.SchemeDeveloper,
		"GET /v1/apps":                      httpapi.SchemeDeveloper,
		"GET /v1/apps/{id}":                 httpapi.SchemeDeveloper,
		"POST /v1/apps/{id}/rotate-secret":  httpapi.SchemeDeveloper,
		"DELETE /v1/apps/{id}":              httpapi.SchemeDeveloper,
		"GET /bank/v1/apps":                 httpapi.SchemeBankAdmin,
		"POST /bank/v1/apps/{id}/approve":   httpapi.SchemeBankAdmin,
		"POST /bank/v1/apps/{id}/suspend":   httpapi.SchemeBankAdmin,
		"POST /bank/v1/signing-keys/rotate": httpapi.SchemeBankAdmin,
		"GET " + JWKSPath:                   "",
		"GET " + MetadataPath:               "",
	} {
		sec := e.http.Security(pattern)
		if want == "" {
			if len(sec) != 0 {
				t.Errorf("%s declares %v, want none", pattern, sec)
			}
			continue
		}
		if len(sec) != 1 || len(sec[0]) != 1 {
			t.Errorf("%s declares %v, want %s", pattern, sec, want)
			continue
		}
		if _, ok := sec[0][want]; !ok {
			t.Errorf("%s declares %v, want %s", pattern, sec, want)
		}
	}
	// The token endpoint takes HTTP Basic, or nothing in the header (the
	// credentials in the form): the {} alternative, which the gateway
	// reads as public.
	if sec := e.http.Security("POST " + TokenPath); len(sec) != 2 || len(sec[0]) != 1 || sec[0][httpapi.SchemeClientBasic] == nil || len(sec[1]) != 0 {
		t.Errorf("POST %s declares %v, want HTTP Basic or nothing", TokenPath, sec)
	}
	if e.http.API.OpenAPI().Paths["/v1/developers"].Post == nil {
		t.Error("sign-up missing from the OpenAPI document")
	}
}

// TestNoSecretReachesTheLogs runs every flow that handles a secret and
// reads the whole log (service and HTTP access log) for them.
func TestNoSecretReachesTheLogs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{Mode: ModeProduction})
		const password = "correct horse battery"
		dev := e.signUp("quiet@example.com")
		var login struct{ Token string }
		e.call("POST", "/v1/developers/login", "", map[string]string{"email": "quiet@example.com", "password": password}, &login)
		e.call("POST", "/v1/developers/login", "", map[string]string{"email": "quiet@example.com", "password": "wrong-password-123"}, nil)
		app := e.createApp(login.Token, auth.ScopeAccountsRead)
		e.credentials(app, oauth2.AuthStyleInParams).Token(context.Background()) // pending: fails
		e.bank("POST", "/apps/"+app.ID+"/approve", nil)
		tok1 := e.accessToken(app)
		tok2, _ := e.credentials(app, oauth2.AuthStyleInParams).Token(context.Background())
		var rotated struct {
			ClientSecret string `json:"client_secret"`
		}
		e.call("POST", "/v1/apps/"+app.ID+"/rotate-secret", login.Token, nil, &rotated)
		e.postForm("grant_type=client_credentials&client_id="+app.ClientID+"&client_secret="+app.ClientSecret, nil) // old secret
		e.svc.AuthenticateApp(context.Background(), tok1.AccessToken)
		e.bank("POST", "/apps/"+app.ID+"/suspend", nil)
		e.svc.AuthenticateApp(context.Background(), tok1.AccessToken)
		e.bank("POST", "/signing-keys/rotate", nil)
		e.call("DELETE", "/v1/apps/"+app.ID, login.Token, nil, nil)
		e.call("POST", "/v1/developers/logout", dev.Token, nil, nil)
		e.call("GET", "/v1/apps", dev.Token, nil, nil) // revoked token

		logs := e.logs.String()
		if !strings.Contains(logs, app.ID) || !strings.Contains(logs, "access token issued") {
			t.Fatalf("the flow did not log what it should; logs:\n%s", logs)
		}
		secrets := map[string]string{
			"password": password, "sign-up token": dev.Token, "login token": login.Token,
			"client secret": app.ClientSecret, "rotated secret": rotated.ClientSecret,
			"access token": tok1.AccessToken,
		}
		if tok2 != nil {
			secrets["second access token"] = tok2.AccessToken
		}
		for name, secret := range secrets {
			if secret == "" {
				t.Errorf("%s is empty: the flow broke", name)
				continue
			}
			if strings.Contains(logs, secret) {
				t.Errorf("the logs contain the %s", name)
			}
			// The signature part alone would do as much harm.
			if i := strings.LastIndexByte(secret, '.'); i > 0 && strings.Contains(logs, secret[i+1:]) {
				t.Errorf("the logs contain the %s's signature", name)
			}
		}
		if strings.Contains(logs, "wrong-password-123") {
			t.Error("the logs contain a failed password")
		}
	})
}
