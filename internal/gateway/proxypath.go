package gateway

import (
	"net/url"
	"strings"

	"github.com/causewayhq/causeway"
)

// proxiedPath checks rest, the part of a proxied call's path after
// /v1/ext/{prefix}/ as the app sent it (escaped), and returns the path to
// forward, decoded and escaped (both with a leading slash), which the
// proxy joins to the upstream's base path.
//
// net/http's mux already redirects a path with plain "." or ".." segments
// to its clean form, but it cleans the decoded path only once and knows
// nothing of how an upstream decodes: "..%2F", "%2e%2e", a "%5c" (a
// separator to some servers) or a double-encoded "%252e%252e" reaches the
// upstream as sent, and an upstream that decodes it, or decodes it again,
// climbs out of its base path. So what can turn into a dot, a slash, a
// backslash or another escape once decoded is refused outright (an
// encoded dot or percent sign has no business in an API path), as are
// control characters, "." and ".." segments and empty segments ("//",
// which some servers read as the start of another host). The error is
// EBADREQUEST invalid_path.
func proxiedPath(rest string) (path, rawPath string, err error) {
	invalid := func(why string) (string, string, error) {
		return "", "", causeway.Errorf(causeway.EBADREQUEST, "invalid_path",
			"the path of an upstream API call may not contain %s", why)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c == '%' {
			if i+2 >= len(rest) || !isHex(rest[i+1]) || !isHex(rest[i+2]) {
				return invalid("a malformed percent-encoding")
			}
			c = unhex(rest[i+1])<<4 | unhex(rest[i+2])
			switch {
			case c == '.' || c == '/' || c == '\\' || c == '%':
				return invalid("an encoded dot, slash, backslash or percent sign (%2e, %2f, %5c, %25)")
			case c < 0x20 || c == 0x7f:
				return invalid("an encoded control character")
			}
			i += 2
			continue
		}
		switch {
		case c == '\\':
			return invalid("a backslash")
		case c < 0x20 || c == 0x7f:
			return invalid("a control character")
		}
	}
	path, err = url.PathUnescape(rest)
	if err != nil {
		return invalid("a malformed percent-encoding")
	}
	segments := strings.Split(path, "/")
	for i, s := range segments {
		switch {
		case s == "." || s == "..":
			return invalid(`"." or ".." segments`)
		case s == "" && i > 0 && i < len(segments)-1, s == "" && i == 0 && len(segments) > 1:
			return invalid("empty segments")
		}
	}
	return "/" + path, "/" + rest, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
