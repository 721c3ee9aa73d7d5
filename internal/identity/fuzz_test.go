package identity

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// FuzzTokenRequest throws arbitrary forms, content types and Authorization
// headers at the token endpoint, backed by a real store with one app: it
// must never panic and never answer 5xx.
func FuzzTokenRequest(f *testing.F) {
	s, app, secret := fuzzService(f, auth.ScopeAccountsRead, auth.ScopeEventsRead)
	const form = "application/x-www-form-urlencoded"
	f.Add(form, "", "grant_type=client_credentials&client_id="+app.ClientID+"&client_secret="+secret)
	f.Add(form, basic(app.ClientID, secret), "grant_type=client_credentials&scope=events:read")
	f.Add(form, basic(app.ClientID, secret), "grant_type=client_credentials&scope=events:read+data:read")
	f.Add(form, basic(app.ClientID, secret), "grant_type=client_credentials&client_id="+app.ClientID)
	f.Add(form+"; charset=utf-8", "Basic Og==", "grant_type=client_credentials")
	f.Add(form, "Basic "+strings.Repeat("A", 300), "grant_type=client_credentials&scope=%20%20")
	f.Add(form, "", "grant_type=client_credentials&grant_type=x&%zz")
	f.Add("application/json", "Bearer x", `{"grant_type":"client_credentials"}`)
	f.Add("", "", "")
	f.Add(form, "Basic Y3dfJTpzJQ==", "grant_type=client_credentials") // "cw_%:s%": bad escapes
	f.Fuzz(func(t *testing.T, contentType, authorization, body string) {
		r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		s.token(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q %q %q: %s", w.Code, contentType, authorization, body, w.Body)
		}
	})
}

// FuzzAuthenticateApp throws arbitrary bearer tokens, seeded with a real
// one and its parts rearranged, at the access-token check: it must never
// panic, refuse with EUNAUTHORIZED, and accept nothing but a token that
// names the app it was issued to.
func FuzzAuthenticateApp(f *testing.F) {
	s, app, secret := fuzzService(f, auth.ScopeAccountsRead)
	ctx := context.Background()
	tok, err := s.IssueToken(ctx, TokenRequest{ClientID: app.ClientID, ClientSecret: secret})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(tok.Token, ".")
	f.Add(tok.Token)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add(parts[1] + "." + parts[0] + "." + parts[2])
	f.Add(tok.Token[:len(tok.Token)-1] + "A")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, bearer string) {
		a, err := s.AuthenticateApp(ctx, bearer)
		switch {
		case err != nil && causeway.ErrorKind(err) != causeway.EUNAUTHORIZED:
			t.Fatalf("%q: %v, want EUNAUTHORIZED", bearer, err)
		case err == nil && (a.ClientID != app.ClientID || a.ID != app.ID):
			t.Fatalf("%q authenticated as %+v", bearer, a)
		}
	})
}

// fuzzService is a Service on a fresh SQLite file with one developer and
// one app holding scopes, and the app's client secret.
func fuzzService(f *testing.F, scopes ...string) (*Service, *App, string) {
	db := storetest.OpenSQLite(f)
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		f.Fatal(err)
	}
	s, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	dev, _, err := s.SignUp(ctx, "fuzz@example.com", "correct horse battery", "Fuzz")
	if err != nil {
		f.Fatal(err)
	}
	app, secret, err := s.CreateApp(ctx, dev, "fuzz", scopes)
	if err != nil {
		f.Fatal(err)
	}
	return s, app, secret
}
