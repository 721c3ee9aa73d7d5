package textrule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Shape tells the JSON check which strings of a document may span lines:
// it follows the document's schema member by member. A nil Shape knows
// nothing, so everything under it is single-line.
type Shape interface {
	// Member is the shape of the object member with this name, or nil.
	Member(name string) Shape
	// Elem is the shape of an array's elements, or nil.
	Elem() Shape
	// Lines says whether a string here may span lines.
	Lines() Lines
}

// FreeForm is the shape of JSON the platform does not structure itself (an
// SPI payload, an event's data, a JSON Schema): every string in it may
// span lines, but none may hold other control characters.
var FreeForm Shape = freeForm{}

type freeForm struct{}

func (freeForm) Member(string) Shape { return FreeForm }
func (freeForm) Elem() Shape         { return FreeForm }
func (freeForm) Lines() Lines        { return MultiLine }

// frame is an object or array being read.
type frame struct {
	array   bool
	shape   Shape
	name    string // the current member's name (objects)
	index   int    // the current element's index (arrays)
	wantKey bool   // the next string is a member name (objects)
}

// JSON applies the rule to every member name (single-line) and every
// string value of the JSON document data, whose shape says which values
// may span lines. Location prefixes the path of the text that breaks the
// rule: "body" gives body.creditor.name or body.columns[2].description.
//
// Strings are checked as they decode, after JSON escapes, so "\u0000" is a
// NUL; the bytes of each string are checked for UTF-8 before they decode,
// which replaces invalid sequences. A control character written raw inside
// a string, which JSON forbids, is refused the same way, except tab and
// line breaks, which only make the JSON malformed. A syntax error ends the
// check without an error: reporting malformed JSON is the decoder's job.
//
// It is long because it is one pass over the decoder's tokens that keeps
// the path and the shape of where it is; split, that state would be
// passed around.
func JSON(location string, data []byte, shape Shape) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []frame
	path := func() string {
		var b strings.Builder
		b.WriteString(location)
		for _, f := range stack {
			switch {
			case f.array:
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			case !f.wantKey:
				b.WriteString("." + f.name)
			}
		}
		return b.String()
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return rawControl(data, dec.InputOffset(), path)
		}
		// The value's shape, and whether tok is a member name.
		var cur Shape = shape
		key := false
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			switch {
			case top.array:
				cur = elem(top.shape)
			case top.wantKey:
				key = true
			default:
				cur = member(top.shape, top.name)
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, frame{array: t == '[', shape: cur, wantKey: t == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			lines := SingleLine
			if !key && cur != nil {
				lines = cur.Lines()
			}
			reason := ""
			if raw := data[start:dec.InputOffset()]; !utf8.Valid(raw) {
				reason = "is not valid UTF-8"
			} else {
				reason = check(t, lines)
			}
			if key {
				if reason != "" {
					return &Error{Location: path(), Reason: "has a member name that " + reason}
				}
				top := &stack[len(stack)-1]
				top.name, top.wantKey = t, false
				continue
			}
			if reason != "" {
				return &Error{Location: path(), Reason: reason}
			}
		}
		// A value ended: move on to the next member or element.
		if n := len(stack); n > 0 {
			if top := &stack[n-1]; top.array {
				top.index++
			} else {
				top.wantKey = true
			}
		}
	}
}

// rawControl looks at the token that failed to decode, which starts at
// from: a string with a raw control byte in it is the rule's error. JSON
// allows raw tab, line feed and carriage return only between tokens;
// inside a string they are malformed JSON, which the decoder reports, like
// any other syntax error: those give nil.
func rawControl(data []byte, from int64, path func() string) error {
	i := int(from)
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	if i >= len(data) || data[i] != '"' {
		return nil
	}
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '\\':
			i++
		case c == '"':
			return nil
		case c == '\t' || c == '\n' || c == '\r':
			return nil
		case c < 0x20:
			return &Error{Location: path(), Reason: fmt.Sprintf("contains %U, a control character", rune(c))}
		}
	}
	return nil
}

func member(s Shape, name string) Shape {
	if s == nil {
		return nil
	}
	return s.Member(name)
}

func elem(s Shape) Shape {
	if s == nil {
		return nil
	}
	return s.Elem()
}
