package portal

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/textrule"
)

func TestOnlyTextareasSpanLines(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"body", "description", "columns", "sample", "licence", "purpose"} {
		if !textareas[name] {
			t.Errorf("%s is a textarea but may not span lines", name)
		}
	}
	for _, name := range []string{"organization", "name", "email", "reason", "url", "csrf"} {
		if textareas[name] {
			t.Errorf("%s is a one-line input but may span lines", name)
		}
	}
}

func TestCheckTextRefusesControlCharactersInFormsPathsAndQueries(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		target string
		form   url.Values
		where  string // "" when accepted
	}{
		{"/signup", url.Values{"organization": {"SolarWorld"}, "email": {"a@b.example"}}, ""},
		{"/console/datasets", url.Values{"description": {"line one\r\nline two\tand a tab"}, "name": {"visits"}}, ""},
		{"/signup", url.Values{"organization": {"Solar\x00World"}}, "form.organization"},
		{"/apps", url.Values{"name": {"two\nlines"}}, "form.name"},
		{"/console/datasets", url.Values{"description": {"bell\x07"}}, "form.description"},
		{"/apps/app%00", nil, "path"},
		{"/login?next=%2F%0A", nil, "query.next"},
	} {
		r := httptest.NewRequest("GET", tt.target, nil)
		if tt.form != nil {
			r = httptest.NewRequest("POST", tt.target, strings.NewReader(tt.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		err := checkText(r)
		var te *textrule.Error
		switch {
		case tt.where == "" && err != nil:
			t.Errorf("%s %v: %v", tt.target, tt.form, err)
		case tt.where != "" && (!errors.As(err, &te) || te.Location != tt.where):
			t.Errorf("%s %v: err = %v, want one at %s", tt.target, tt.form, err, tt.where)
		}
	}
}
