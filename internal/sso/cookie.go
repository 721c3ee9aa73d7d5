package sso

import "net/http"

// The binding cookie carries a login's browser key from Begin to the
// callback, so that only the browser that began a login can finish it.
const (
	BindingCookieName = "cw_sso"
	bindingCookiePath = "/console/sso"
)

// BindingCookie returns the cookie to set, with Begin's answer, before
// sending the browser to the provider: HttpOnly, on /console/sso only,
// for StateTTL, and SameSite=Lax, since the provider's redirect back is a
// cross-site navigation, on which a Strict cookie is not sent. secure
// marks it Secure (the console is served over https).
func BindingCookie(browserKey string, secure bool) *http.Cookie {
	return &http.Cookie{
		Name: BindingCookieName, Value: browserKey, Path: bindingCookiePath,
		MaxAge: int(StateTTL.Seconds()), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
}

// ClearBindingCookie returns the cookie that deletes the binding cookie,
// to set on the callback's answer whatever Finish said.
func ClearBindingCookie(secure bool) *http.Cookie {
	c := BindingCookie("", secure)
	c.MaxAge = -1
	return c
}

// BrowserKey returns the browser key of r's binding cookie, or "" (which
// Finish refuses as sso_state_invalid).
func BrowserKey(r *http.Request) string {
	c, err := r.Cookie(BindingCookieName)
	if err != nil || len(c.Value) > 128 {
		return ""
	}
	return c.Value
}
