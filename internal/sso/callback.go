package sso

import (
	"net/url"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/textrule"
)

// callback is the provider's answer on the redirect URL (RFC 6749 4.1.2),
// read from its query: a code, or an error, with the state of the login.
type callback struct {
	State            string
	Code             string
	Error            string
	ErrorDescription string
	// Issuer is RFC 9207's iss, which some providers add against mix-up
	// attacks; empty when absent.
	Issuer string
}

// callbackParams are the parameters a callback may carry, in the order
// they are checked, with the longest value of each. Codes are opaque to
// us and some providers make them long (an encrypted blob).
var callbackParams = []struct {
	name  string
	max   int
	lines textrule.Lines
}{
	{"state", 256, textrule.SingleLine},
	{"code", 4096, textrule.SingleLine},
	{"error", 128, textrule.SingleLine},
	{"error_description", 1024, textrule.MultiLine},
	{"iss", 2048, textrule.SingleLine},
}

// parseCallback reads a callback's query. Each parameter it reads must
// appear at most once, within its length, as text the text rule accepts;
// others (session_state, scope) are ignored. It checks the form only:
// Finish decides what the values mean. Errors: EBADREQUEST
// sso_callback_invalid; EINVALID invalid_text.
func parseCallback(q url.Values) (callback, error) {
	for _, rule := range callbackParams {
		name, vs := rule.name, q[rule.name]
		switch {
		case len(vs) > 1:
			return callback{}, causeway.Errorf(causeway.EBADREQUEST, "sso_callback_invalid", "the sign-in answer has %d values of %s; start the sign-in again", len(vs), name)
		case len(vs) == 1 && len(vs[0]) > rule.max:
			return callback{}, causeway.Errorf(causeway.EBADREQUEST, "sso_callback_invalid", "the sign-in answer's %s is longer than %d bytes; start the sign-in again", name, rule.max)
		case len(vs) == 1:
			if err := textrule.Check("query."+name, vs[0], rule.lines); err != nil {
				return callback{}, err
			}
		}
	}
	cb := callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"),
		ErrorDescription: q.Get("error_description"), Issuer: q.Get("iss")}
	if cb.State == "" {
		return callback{}, causeway.Errorf(causeway.EBADREQUEST, "sso_callback_invalid", "the sign-in answer has no state; start the sign-in again from the console")
	}
	return cb, nil
}
