package textrule

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
)

func TestCheckRefusesControlCharactersAndInvalidUTF8(t *testing.T) {
	for _, tt := range []struct {
		s            string
		single, mult bool // accepted as single-line, as multi-line
	}{
		{"", true, true},
		{"Solar Installers GmbH", true, true},
		{"Zoë Ørsted – 東京 🚀", true, true},
		{"a\x00b", false, false},
		{"\x01", false, false},
		{"\x1f", false, false},
		{"del\x7f", false, false},
		{"nel\u0085", false, false},
		{"\u009f", false, false},
		{"tab\there", false, true},
		{"line\nbreak", false, true},
		{"crlf\r\nbreak", false, true},
		{"lone\rcr", false, false},
		{"ends in cr\r", false, false},
		{"ls\u2028ps\u2029", false, true},
		{"bad \xff byte", false, false},
		{"cut \xe2\x82", false, false},
		{"surrogate \xed\xa0\x80", false, false},
		{"\ufffd is a character", true, true},
	} {
		if got := Check("body.name", tt.s, SingleLine) == nil; got != tt.single {
			t.Errorf("%q single-line accepted = %v, want %v", tt.s, got, tt.single)
		}
		if got := Check("body.description", tt.s, MultiLine) == nil; got != tt.mult {
			t.Errorf("%q multi-line accepted = %v, want %v", tt.s, got, tt.mult)
		}
	}
}

func TestErrorIsInvalidTextNamingWhereWithoutEchoing(t *testing.T) {
	err := Check("body.creditor.name", "Ann\x00secret", SingleLine)
	var te *Error
	if !errors.As(err, &te) || te.Location != "body.creditor.name" {
		t.Fatalf("err = %#v", err)
	}
	if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != "invalid_text" {
		t.Errorf("kind %s code %s, want invalid / invalid_text", causeway.ErrorKind(err), causeway.ErrorCode(err))
	}
	if msg := err.Error(); !strings.Contains(msg, "U+0000 at character 4") || strings.Contains(msg, "secret") {
		t.Errorf("message = %q: want the character and its position, not the text", msg)
	}
}

func TestValuesChecksNamesAndValues(t *testing.T) {
	multi := func(name string) Lines {
		if name == "description" {
			return MultiLine
		}
		return SingleLine
	}
	for _, tt := range []struct {
		query, where string // where is "" when accepted
	}{
		{"cursor=abc&limit=10", ""},
		{"description=two%0Alines", ""},
		{"name=two%0Alines", "form.name"},
		{"customer_id=%00", "form.customer_id"},
		{"a=1&b=%FF", "form.b"},
		{"na%01me=x", "form"},
		{"a=ok&a=%7F", "form.a"},
	} {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		err = Values("form", v, multi)
		var te *Error
		switch {
		case tt.where == "" && err != nil:
			t.Errorf("%s: %v", tt.query, err)
		case tt.where != "" && (!errors.As(err, &te) || te.Location != tt.where):
			t.Errorf("%s: err = %v, want one at %s", tt.query, err, tt.where)
		}
	}
}

// shape is a test Shape: members by name, one element shape, and whether
// strings here are multi-line.
type shape struct {
	members map[string]Shape
	elem    Shape
	lines   Lines
}

func (s *shape) Member(name string) Shape {
	if m, ok := s.members[name]; ok {
		return m
	}
	return nil
}
func (s *shape) Elem() Shape  { return s.elem }
func (s *shape) Lines() Lines { return s.lines }

func TestJSONFollowsTheShapeAndNamesThePath(t *testing.T) {
	multi := &shape{lines: MultiLine}
	single := &shape{}
	body := &shape{members: map[string]Shape{
		"name":     single,
		"creditor": &shape{members: map[string]Shape{"name": single}},
		"columns":  &shape{elem: &shape{members: map[string]Shape{"description": multi}}},
		"payload":  FreeForm,
	}}
	for _, tt := range []struct {
		doc, where string // where is "" when accepted
	}{
		{`{"name":"Ann","creditor":{"name":"Bob"},"columns":[{"description":"a\nb"}],"payload":{"x":["a\tb"]}}`, ""},
		{`{"name":"A\u0000nn"}`, "body.name"},
		{`{"name":"A\tnn"}`, "body.name"},
		{`{"creditor":{"name":"B\u0001ob"}}`, "body.creditor.name"},
		{`{"columns":[{"description":"ok"},{"description":"a\u0000b"}]}`, "body.columns[1].description"},
		{`{"columns":[{"description":"a\r\nb"},{"other":"a\nb"}]}`, "body.columns[1].other"},
		{`{"payload":{"deep":[[{"k":"v\u007f"}]]}}`, "body.payload.deep[0][0].k"},
		{`{"payload":{"k\u0000":"v"}}`, "body.payload"},
		{`{"creditor":{"na\nme":"v"}}`, "body.creditor"},
		{"{\"name\":\"raw \x00 nul\"}", "body.name"},
		{"{\"name\":\"bad \xff\"}", "body.name"},
		{"{\"bad \xc3\":1}", "body"},
		{"{\"name\":\"raw \n newline\"}", ""}, // malformed JSON: the decoder's to report
		{`{"name": 12, "unknown": {"a": "b\u0085"}}`, "body.unknown.a"},
		{`["a", "b\u0000"]`, "body[1]"},
		{`"top\u0000"`, "body"},
		{`{"name":`, ""},
		{``, ""},
	} {
		err := JSON("body", []byte(tt.doc), body)
		var te *Error
		switch {
		case tt.where == "" && err != nil:
			t.Errorf("%s: %v", tt.doc, err)
		case tt.where != "" && (!errors.As(err, &te) || te.Location != tt.where):
			t.Errorf("%s: err = %v, want one at %s", tt.doc, err, tt.where)
		}
	}
}
