package httpapi

import "github.com/danielgtaylor/huma/v2"

// Route is an operation's identity and documentation. One builder per
// security scheme turns it into the huma.Operation to register, so that no
// package writes a route's security by hand:
//
//   - App and AppAnyOf: a /v1 route an app calls with its access token;
//   - Developer: a /v1 route a developer calls with a session token;
//   - Public: a route anyone may call (sign-up, the token endpoint);
//   - Bank: a route of Server.Bank, whose group adds the bankAdmin scheme,
//     the operator role and the /bank/v1 prefix.
//
// The gateway and the bank group enforce what the declaration says (see
// Server.Bank and package gateway).
type Route struct {
	ID          string
	Method      string
	Path        string
	Summary     string
	Description string
	Tags        []string
	// Status is the answer's status on success; 0 means 200 (204 when
	// the answer has no body).
	Status int
}

func (r Route) operation() huma.Operation {
	return huma.Operation{OperationID: r.ID, Method: r.Method, Path: r.Path, Summary: r.Summary,
		Description: r.Description, Tags: r.Tags, DefaultStatus: r.Status}
}

// App is r for apps whose access token carries every one of scopes; with
// none, any valid access token.
func (r Route) App(scopes ...string) huma.Operation {
	op := r.operation()
	if scopes == nil {
		scopes = []string{}
	}
	op.Security = []map[string][]string{{SchemeAppOAuth2: scopes}}
	return op
}

// AppAnyOf is r for apps whose access token carries at least one of
// scopes.
func (r Route) AppAnyOf(scopes ...string) huma.Operation {
	op := r.operation()
	for _, s := range scopes {
		op.Security = append(op.Security, map[string][]string{SchemeAppOAuth2: {s}})
	}
	return op
}

// Developer is r for a developer's session token.
func (r Route) Developer() huma.Operation {
	op := r.operation()
	op.Security = []map[string][]string{{SchemeDeveloper: {}}}
	return op
}

// Public is r for anyone: it declares no security.
func (r Route) Public() huma.Operation { return r.operation() }

// Bank is r for Server.Bank, which adds the security.
func (r Route) Bank() huma.Operation { return r.operation() }
