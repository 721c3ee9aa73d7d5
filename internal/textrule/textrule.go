// Package textrule is the one rule for text that comes from outside: every
// string a client sends (JSON members and their names, query and path
// parameters, the headers the API reads, the portal's form fields) must be
// valid UTF-8 without control characters. A field that holds prose (a
// description, a reason, a filter expression) may also span lines: tab,
// line feed and CR LF are allowed there and nowhere else.
//
// The rule runs before any handler, in two places that call this package:
// the HTTP layer for the API (internal/httpapi) and the portal for its
// forms. Each says which fields are multi-line declaratively: the API with
// the struct tag `text:"multiline"` (shown as x-multiline in the OpenAPI
// document), the portal by rendering the field as a <textarea>. A broken
// rule is an *Error: EINVALID with the code invalid_text, naming where the
// text was.
package textrule

import (
	"fmt"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
)

// Code is the machine code of every refusal.
const Code = "invalid_text"

// Lines says whether a field's text may span lines.
type Lines bool

// The two kinds of text field.
const (
	SingleLine Lines = false // names, ids, emails, references: one line
	MultiLine  Lines = true  // descriptions, reasons: tab and line breaks too
)

// Error is text that breaks the rule. It unwraps to a causeway.Error
// (EINVALID, invalid_text), so every error mapping treats it as bad input.
type Error struct {
	// Location names the text the way problem details do: body.name,
	// body.columns[2].description, query.cursor, path, header.Idempotency-Key,
	// form.organization.
	Location string
	// Reason says what is wrong with it, without echoing it.
	Reason string
}

func (e *Error) Error() string { return e.Location + " " + e.Reason }

// Unwrap makes the error an EINVALID invalid_text causeway.Error.
func (e *Error) Unwrap() error {
	return causeway.Errorf(causeway.EINVALID, Code, "%s", e.Error())
}

// Check applies the rule to s, the text at location. It returns nil or an
// *Error.
func Check(location, s string, lines Lines) error {
	if reason := check(s, lines); reason != "" {
		return &Error{Location: location, Reason: reason}
	}
	return nil
}

// check returns why s breaks the rule, or "". The common case, printable
// ASCII, costs one pass over the bytes.
func check(s string, lines Lines) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return ""
	}
	chars := utf8.RuneCountInString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		chars++
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("is not valid UTF-8 (byte %d)", i+1)
		case lines == MultiLine && (r == '\t' || r == '\n' || r == '\u2028' || r == '\u2029'):
		case lines == MultiLine && r == '\r' && i+1 < len(s) && s[i+1] == '\n':
		case r < 0x20 || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029':
			return fmt.Sprintf("contains %U at character %d: %s", r, chars, allowed(lines))
		}
		i += size
	}
	return ""
}

func allowed(lines Lines) string {
	if lines == MultiLine {
		return "text may contain tab and line breaks, but no other control characters"
	}
	return "this field is one line of text, without tab, line breaks or other control characters"
}

// Values applies the rule to query parameters or form fields: every name
// (single-line) and every value, which is multi-line where lines says so.
// Location prefixes the name: "query" gives query.cursor. Names are
// checked in sorted order, so the same input always gives the same error.
func Values(location string, v url.Values, lines func(name string) Lines) error {
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if reason := check(name, SingleLine); reason != "" {
			return &Error{Location: location, Reason: "has a parameter name that " + reason}
		}
		l := SingleLine
		if lines != nil {
			l = lines(name)
		}
		for _, value := range v[name] {
			if err := Check(location+"."+name, value, l); err != nil {
				return err
			}
		}
	}
	return nil
}
