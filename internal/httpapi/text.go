package httpapi

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/textrule"
)

// MultilineExtension marks, in the OpenAPI document, a string property
// that may span lines (see textrule). A request struct field asks for it
// with the tag `text:"multiline"`; every other text is one line.
const MultilineExtension = "x-multiline"

// markMultiline is an OnAddOperation hook: it finds the `text` tags of the
// Go types behind the operation's request body and marks their properties
// with MultilineExtension, so the document says which text may span lines
// and checkText reads it from there. A wrong tag stops the start-up.
func markMultiline(oapi *huma.OpenAPI, op *huma.Operation) {
	if op.RequestBody == nil {
		return
	}
	reg := oapi.Components.Schemas
	seen := map[string]bool{}
	for _, mt := range op.RequestBody.Content {
		markSchema(reg, mt.Schema, seen)
	}
}

func markSchema(reg huma.Registry, s *huma.Schema, seen map[string]bool) {
	if s == nil {
		return
	}
	if s.Ref != "" {
		if seen[s.Ref] {
			return
		}
		seen[s.Ref] = true
		target := reg.SchemaFromRef(s.Ref)
		if t := reg.TypeFromRef(s.Ref); t != nil && target != nil {
			markFields(t, target)
		}
		markSchema(reg, target, seen)
		return
	}
	for _, p := range s.Properties {
		markSchema(reg, p, seen)
	}
	markSchema(reg, s.Items, seen)
	if ap, ok := s.AdditionalProperties.(*huma.Schema); ok {
		markSchema(reg, ap, seen)
	}
	for _, list := range [][]*huma.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for _, x := range list {
			markSchema(reg, x, seen)
		}
	}
}

// markFields marks the properties of s whose fields in t carry
// `text:"multiline"`. Embedded structs are flattened, as huma does.
func markFields(t reflect.Type, s *huma.Schema) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Tag.Get("json") == "" {
			markFields(f.Type, s)
			continue
		}
		tag, ok := f.Tag.Lookup("text")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		p := s.Properties[name]
		if p != nil && p.Type == huma.TypeArray {
			p = p.Items
		}
		if tag != "multiline" || p == nil || p.Type != huma.TypeString {
			panic("httpapi: " + t.String() + "." + f.Name + `: the text tag is text:"multiline", on a string field`)
		}
		if p.Extensions == nil {
			p.Extensions = map[string]any{}
		}
		p.Extensions[MultilineExtension] = true
	}
}

// schemaShape is a request body schema seen by the text rule.
type schemaShape struct {
	reg huma.Registry
	s   *huma.Schema
}

// shapeOf returns the textrule shape of s: nil when there is no schema,
// free-form for JSON the schema leaves open.
func shapeOf(reg huma.Registry, s *huma.Schema) textrule.Shape {
	for s != nil && s.Ref != "" {
		s = reg.SchemaFromRef(s.Ref)
	}
	switch {
	case s == nil:
		return nil
	case s.Type == "" && len(s.Properties) == 0 && s.Items == nil && s.AdditionalProperties == nil &&
		len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) == 0:
		return textrule.FreeForm
	}
	return schemaShape{reg: reg, s: s}
}

func (sh schemaShape) Member(name string) textrule.Shape {
	if p, ok := sh.s.Properties[name]; ok {
		return shapeOf(sh.reg, p)
	}
	switch ap := sh.s.AdditionalProperties.(type) {
	case *huma.Schema:
		return shapeOf(sh.reg, ap)
	case bool:
		if ap {
			return textrule.FreeForm
		}
	}
	return nil
}

func (sh schemaShape) Elem() textrule.Shape { return shapeOf(sh.reg, sh.s.Items) }

func (sh schemaShape) Lines() textrule.Lines {
	multi, _ := sh.s.Extensions[MultilineExtension].(bool)
	return textrule.Lines(multi)
}

// checkText applies the text rule (package textrule) to everything an API
// request carries as text, before the gateway or a handler sees it: the
// path parameters, every query parameter, the headers the operation
// declares, and a JSON or form body. Only a body field the operation's
// schema marks x-multiline may span lines. Requests outside the API pass:
// the portal checks its own forms with the same rule.
func (s *Server) checkText(rec *statusRecorder, r *http.Request) error {
	if !IsAPIPath(r.URL.Path) {
		return nil
	}
	pattern := s.Route(r)
	if err := checkPath(pattern, r.URL); err != nil {
		return err
	}
	// A malformed query still yields the pairs that parsed; huma reports
	// the rest.
	query, _ := url.ParseQuery(r.URL.RawQuery)
	if err := textrule.Values("query", query, nil); err != nil {
		return err
	}
	op := s.operation(pattern)
	if op != nil {
		for _, p := range op.Parameters {
			if p.In != "header" {
				continue
			}
			for _, v := range r.Header.Values(p.Name) {
				if err := textrule.Check("header."+p.Name, v, textrule.SingleLine); err != nil {
					return err
				}
			}
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded":
		body, err := bufferBody(rec, r)
		if err != nil {
			return err
		}
		form, _ := url.ParseQuery(string(body))
		return textrule.Values("body", form, nil)
	case op != nil && takesJSON(op) && isJSON(mt):
		// Only an operation that takes JSON: the token endpoint documents
		// a form, and answers a JSON body with its own error.
		body, err := bufferBody(rec, r)
		if err != nil {
			return err
		}
		return textrule.JSON("body", body, shapeOf(s.API.OpenAPI().Components.Schemas, bodySchema(op, mt)))
	}
	return nil
}

// checkPath checks the request's path, decoded, and names the wildcard
// of pattern ("GET /v1/accounts/{id}") whose segment breaks the rule, as
// path.id; text outside any wildcard is just "path".
func checkPath(pattern string, u *url.URL) error {
	err := textrule.Check("path", u.Path, textrule.SingleLine)
	if err == nil {
		return nil
	}
	_, routed, _ := strings.Cut(pattern, " ")
	want := strings.Split(routed, "/")
	// Segments as the mux sees them: split before unescaping, so an
	// escaped slash does not shift them.
	for i, raw := range strings.Split(u.EscapedPath(), "/") {
		seg, uerr := url.PathUnescape(raw)
		if uerr != nil {
			seg = raw
		}
		loc := "path"
		if name := wildcard(want, i); name != "" {
			loc += "." + name
		}
		if err := textrule.Check(loc, seg, textrule.SingleLine); err != nil {
			return err
		}
	}
	return err
}

// wildcard names the wildcard of the pattern segments want that matches
// segment i of a path, or "".
func wildcard(want []string, i int) string {
	for j, seg := range want {
		name, ok := strings.CutPrefix(seg, "{")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, "}")
		if rest, ok := strings.CutSuffix(name, "..."); ok && i >= j {
			return rest
		}
		if j == i {
			return name
		}
	}
	return ""
}

// isJSON reports whether huma (or a handler reading its raw body) takes a
// body of this media type as JSON; no media type means JSON to huma.
func isJSON(mt string) bool {
	return mt == "" || mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// takesJSON reports whether op's request body may be JSON.
func takesJSON(op *huma.Operation) bool {
	if op.RequestBody == nil {
		return false
	}
	for mt := range op.RequestBody.Content {
		if isJSON(mt) {
			return true
		}
	}
	return false
}

// bodySchema is the operation's request schema for media type mt, or its
// JSON one.
func bodySchema(op *huma.Operation, mt string) *huma.Schema {
	content := op.RequestBody.Content
	if c, ok := content[mt]; ok && c != nil {
		return c.Schema
	}
	if c, ok := content["application/json"]; ok && c != nil {
		return c.Schema
	}
	return nil
}

// bodyReadTimeout bounds reading a request body, as huma's default does
// for the bodies it reads itself.
const bodyReadTimeout = 5 * time.Second

// bufferBody reads the request body (already bounded by the server's
// limit) within bodyReadTimeout and puts it back, in memory, for the
// handler.
func bufferBody(rec *statusRecorder, r *http.Request) ([]byte, error) {
	// Not every ResponseWriter has a connection (tests' recorders).
	http.NewResponseController(rec.ResponseWriter).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	// Read to its end, the body no longer lets a read deadline reach the
	// connection (see requestBody).
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
				"request body exceeds "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		}
		return nil, causeway.Errorf(causeway.EBADREQUEST, "unreadable_body", "the request body could not be read")
	}
	return body, nil
}

// operation returns the documented operation routed by pattern ("GET
// /v1/accounts/{id}"), or nil.
func (s *Server) operation(pattern string) *huma.Operation {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return nil
	}
	return PathOperation(s.API.OpenAPI().Paths[path], method)
}

// PathOperation returns the operation of item for an HTTP method, or nil
// (also for a nil item).
func PathOperation(item *huma.PathItem, method string) *huma.Operation {
	if item == nil {
		return nil
	}
	switch method {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodPatch:
		return item.Patch
	case http.MethodDelete:
		return item.Delete
	}
	return nil
}
