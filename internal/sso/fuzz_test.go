package sso

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// FuzzFinishCallback feeds Finish any callback query and any browser key.
// No login exists, so every one must fail, as bad input: the query's form
// (EBADREQUEST, EINVALID) or an unknown state (EUNAUTHORIZED), never a
// panic, a server error or a call to the provider (whose address refuses
// connections, which would be EUNAVAILABLE).
func FuzzFinishCallback(f *testing.F) {
	db := storetest.OpenSQLite(f)
	if err := Migrate(context.Background(), db); err != nil {
		f.Fatal(err)
	}
	l, err := New(Config{Issuer: "http://127.0.0.1:1", ClientID: "c", RedirectURL: "http://127.0.0.1:2" + CallbackPath},
		db, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range []string{"", "state=s&code=c", "state=s&error=access_denied&error_description=no", "code=c",
		"state=a&state=b", "state=s&iss=https%3A%2F%2Fx", "state=%FF", "state=s&code=a%00b", "state=s&error=x%0Ay"} {
		f.Add(q, "key")
	}
	f.Fuzz(func(t *testing.T, raw, key string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_, err = l.Finish(context.Background(), q, key)
		switch k := causeway.ErrorKind(err); {
		case err == nil:
			t.Fatalf("Finish(%q) succeeded without a login", raw)
		case k != causeway.EBADREQUEST && k != causeway.EINVALID && k != causeway.EUNAUTHORIZED:
			t.Fatalf("Finish(%q) = %v (%s), want a refusal of bad input", raw, err, k)
		}
	})
}

// FuzzParseCallback: parseCallback never panics, refuses with a causeway
// error of bad input, and accepts only values within bounds, as valid
// UTF-8, with a state.
func FuzzParseCallback(f *testing.F) {
	for _, q := range []string{"state=s&code=c", "state=s&error=access_denied", "code=c", "state=s&state=t", "state=%FF"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		cb, err := parseCallback(q)
		if err != nil {
			if k := causeway.ErrorKind(err); k != causeway.EBADREQUEST && k != causeway.EINVALID {
				t.Fatalf("parseCallback(%q) = %v (%s)", raw, err, k)
			}
			return
		}
		if cb.State == "" || len(cb.State) > 256 || len(cb.Code) > 4096 || !utf8.ValidString(cb.State+cb.Code+cb.Error+cb.ErrorDescription+cb.Issuer) {
			t.Fatalf("parseCallback(%q) accepted %+v", raw, cb)
		}
	})
}

// FuzzParseRoleMap: ParseRoleMap never panics, and what it accepts maps
// non-empty values to roles only.
func FuzzParseRoleMap(f *testing.F) {
	for _, s := range []string{"", "a=viewer", "CN=Risk,OU=G=risk-officer,b=admin", "a=", "=admin", "a=viewer,,b=admin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseRoleMap(s)
		if err != nil {
			return
		}
		for v, r := range m {
			if v == "" || !auth.ValidRole(r) {
				t.Fatalf("ParseRoleMap(%q) = %v", s, m)
			}
		}
	})
}

// FuzzRoleClaim: whatever JSON a provider sends as the role claim, reading
// and mapping it never panics; it is roles (known ones, sorted, without
// repeats)
// or role_claim_invalid.
func FuzzRoleClaim(f *testing.F) {
	for _, s := range []string{`["admin","x"]`, `"viewer"`, `null`, `42`, `{"a":1}`, `["a",1]`, `[]`} {
		f.Add([]byte(s))
	}
	c := Config{RoleMap: map[string]auth.Role{"bank-risk": auth.RoleRiskOfficer}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		values, err := claimStrings("groups", v)
		if err != nil {
			if causeway.ErrorCode(err) != "role_claim_invalid" {
				t.Fatalf("claimStrings(%s) = %v", data, err)
			}
			return
		}
		roles := c.mapRoles(values)
		for i, r := range roles {
			if !auth.ValidRole(r) || i > 0 && roles[i-1] >= r {
				t.Fatalf("roles %q of %s are not known roles, sorted, without repeats", roles, data)
			}
		}
	})
}
