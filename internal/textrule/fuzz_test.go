package textrule

import (
	"encoding/json"
	"net/url"
	"testing"
	"unicode"
	"unicode/utf8"
)

// clean is the rule written the slow, obvious way, to hold the fast one
// to.
func clean(s string, lines Lines) bool {
	if !utf8.ValidString(s) {
		return false
	}
	rs := []rune(s)
	for i, r := range rs {
		multi := r == '\t' || r == '\n' || r == '\u2028' || r == '\u2029' || r == '\r' && i+1 < len(rs) && rs[i+1] == '\n'
		if (unicode.IsControl(r) || r == '\u2028' || r == '\u2029') && !(lines == MultiLine && multi) {
			return false
		}
	}
	return true
}

// FuzzCheck: Check agrees with the obvious rule on any text, and whatever
// is fine on one line is fine on several.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "Ann", "a\x00b", "tab\t", "crlf\r\n", "cr\r", "\xff", "東京\u0085", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, lines := range []Lines{SingleLine, MultiLine} {
			if got, want := Check("x", s, lines) == nil, clean(s, lines); got != want {
				t.Fatalf("%q (multi-line %v): accepted %v, want %v", s, lines, got, want)
			}
		}
	})
}

// FuzzValues: a query string or form body passes only if every name and
// value would pass on its own.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"a=b", "cursor=%00", "x=%FF&y=1", "na%0Ame=v", "d=l1%0D%0Al2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		err = Values("query", v, func(name string) Lines { return Lines(name == "d") })
		ok := true
		for name, values := range v {
			ok = ok && clean(name, SingleLine)
			for _, value := range values {
				ok = ok && clean(value, Lines(name == "d"))
			}
		}
		if (err == nil) != ok {
			t.Fatalf("%q: err = %v, want accepted %v", query, err, ok)
		}
	})
}

// strings collects every member name and string value of a decoded
// document.
func collect(v any, out *[]string) {
	switch v := v.(type) {
	case string:
		*out = append(*out, v)
	case []any:
		for _, e := range v {
			collect(e, out)
		}
	case map[string]any:
		for k, e := range v {
			*out = append(*out, k)
			collect(e, out)
		}
	}
}

// FuzzJSON: JSON never lets a control character through, in any member
// name or value however deep; it accepts every valid document whose text
// is clean; and a document fine with single-line text everywhere is fine
// as free-form.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, `[{"k\n":1}]`, "{\"a\":\"\x01\"}", "\"\xff\"", `{"a":`, `{"a":"x\r\ny"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		single, free := JSON("body", data, nil), JSON("body", data, FreeForm)
		if single == nil && free != nil {
			t.Fatalf("%q: fine on one line but not as free-form: %v", data, free)
		}
		var doc any
		if json.Unmarshal(data, &doc) != nil {
			return
		}
		var texts []string
		collect(doc, &texts)
		all := true
		for _, s := range texts {
			all = all && clean(s, SingleLine)
		}
		if single == nil && !all {
			t.Fatalf("%q: a control character passed", data)
		}
		if all && utf8.Valid(data) {
			canonical, _ := json.Marshal(doc)
			if err := JSON("body", canonical, nil); err != nil {
				t.Fatalf("%s: clean text refused: %v", canonical, err)
			}
		}
	})
}
