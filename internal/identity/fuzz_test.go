package identity

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// FuzzTokenRequest throws arbitrary forms, content types and Authorization
// headers at the token endpoint, backed by a real store with one app: it
// must never panic and never answer 5xx.
func FuzzTokenRequest(f *testing.F) {
	db := storetest.OpenSQLite(f)
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		f.Fatal(err)
	}
	s, err := New(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	dev, _, err := s.SignUp(ctx, "fuzz@example.com", "correct horse battery", "Fuzz")
	if err != nil {
		f.Fatal(err)
	}
	app, secret, err := s.CreateApp(ctx, dev, "fuzz", []string{auth.ScopeAccountsRead, auth.ScopeEventsRead})
	if err != nil {
		f.Fatal(err)
	}
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
