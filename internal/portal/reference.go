package portal

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
)

// reference is the API reference, built once from the OpenAPI document
// the server publishes at /openapi.json, so it never drifts from it.
type reference struct {
	Groups []refGroup
}

type refGroup struct {
	Tag string
	Ops []refOp
}

type refOp struct {
	ID, Method, Path, Summary, Description string
	Auth                                   string
	// Try says how the portal can call it (tryApp, tryDeveloper), or "".
	Try string
	// HasBody is set when it takes a JSON body; Example is one to start
	// from.
	HasBody   bool
	Example   string
	Params    []refParam
	Body      []refField
	Responses []refResponse
}

type refParam struct {
	Name, In, Type, Description string
	Required                    bool
}

type refResponse struct {
	Status, Description string
	Fields              []refField
}

// refField is one field of a body, flattened: Depth nests it under the
// field above.
type refField struct {
	Name, Type, Description string
	Required                bool
	Depth                   int
}

var methodOrder = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// buildReference reads the OpenAPI document into the reference page's
// groups: one per tag, the bank's after the rest.
func (p *Portal) buildReference() *reference {
	doc := p.srv.API.OpenAPI()
	reg := doc.Components.Schemas
	groups := map[string]*refGroup{}
	paths := make([]string, 0, len(doc.Paths))
	for path := range doc.Paths {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		item := doc.Paths[path]
		for _, m := range methodOrder {
			op := httpapi.PathOperation(item, m)
			if op == nil || op.Hidden {
				continue
			}
			tag := refTag(path, op)
			g := groups[tag]
			if g == nil {
				g = &refGroup{Tag: tag}
				groups[tag] = g
			}
			g.Ops = append(g.Ops, refOperation(reg, path, m, op))
		}
	}
	ref := &reference{}
	for _, g := range groups {
		ref.Groups = append(ref.Groups, *g)
	}
	slices.SortFunc(ref.Groups, func(a, b refGroup) int {
		ab, bb := strings.HasPrefix(a.Tag, "Bank"), strings.HasPrefix(b.Tag, "Bank")
		if ab != bb {
			if ab {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	return ref
}

// refTag is the group of an operation: its first tag, under "Bank · "
// for the bank's routes.
func refTag(path string, op *huma.Operation) string {
	tag := "Other"
	if len(op.Tags) > 0 {
		tag = op.Tags[0]
	}
	if !strings.HasPrefix(path, "/bank/") {
		return tag
	}
	if tag == "Bank" || tag == "Other" {
		return "Bank"
	}
	return "Bank · " + tag
}

// refOperation is the reference's entry for the operation at method and
// path: its parameters (not the Authorization header), JSON body with an
// example, and the fields of its 2xx answers.
func refOperation(reg huma.Registry, path, method string, op *huma.Operation) refOp {
	ro := refOp{ID: op.OperationID, Method: method, Path: path, Summary: op.Summary, Description: op.Description,
		Auth: authText(op.Security), Try: tryWith(path, op)}
	for _, prm := range op.Parameters {
		if prm == nil || prm.In == "header" && strings.EqualFold(prm.Name, "Authorization") {
			continue
		}
		ro.Params = append(ro.Params, refParam{Name: prm.Name, In: prm.In, Required: prm.Required,
			Type: typeName(reg, prm.Schema), Description: prm.Description})
	}
	if op.RequestBody != nil {
		if mt := op.RequestBody.Content["application/json"]; mt != nil {
			ro.Body = fields(reg, mt.Schema, 0, map[string]bool{})
			ro.HasBody, ro.Example = true, exampleBody(reg, mt.Schema)
		}
	}
	codes := make([]string, 0, len(op.Responses))
	for code := range op.Responses {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		if !strings.HasPrefix(code, "2") {
			continue
		}
		resp := op.Responses[code]
		rr := refResponse{Status: code, Description: resp.Description}
		if mt := resp.Content["application/json"]; mt != nil {
			rr.Fields = fields(reg, mt.Schema, 0, map[string]bool{})
		}
		ro.Responses = append(ro.Responses, rr)
	}
	return ro
}

// authText says in words what credential an operation takes.
func authText(sec []map[string][]string) string {
	if len(sec) == 0 {
		return "none"
	}
	var alts []string
	for _, req := range sec {
		for scheme, scopes := range req {
			switch scheme {
			case httpapi.SchemeBankAdmin:
				alts = append(alts, "the bank's admin token")
			case httpapi.SchemeDeveloper:
				alts = append(alts, "a developer token")
			case httpapi.SchemeAppOAuth2:
				s := "an app access token"
				if len(scopes) > 0 {
					s += " with " + strings.Join(scopes, ", ")
				}
				alts = append(alts, s)
			case httpapi.SchemeStreamTicket:
				alts = append(alts, "a stream ticket in ?ticket= (for browsers)")
			case httpapi.SchemeClientBasic:
				// Its empty alternative is the same credentials in the
				// form, not "no credentials".
				alts = append(alts, "an app's client id and secret (HTTP Basic or form fields)")
			}
		}
		if len(req) == 0 && !slices.ContainsFunc(sec, func(r map[string][]string) bool { _, ok := r[httpapi.SchemeClientBasic]; return ok }) {
			alts = append(alts, "none")
		}
	}
	return strings.Join(alts, " or ")
}

func resolve(reg huma.Registry, s *huma.Schema) *huma.Schema {
	for i := 0; s != nil && s.Ref != "" && i < 8; i++ {
		s = reg.SchemaFromRef(s.Ref)
	}
	return s
}

func typeName(reg huma.Registry, s *huma.Schema) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		name := s.Ref[strings.LastIndexByte(s.Ref, '/')+1:]
		if r := resolve(reg, s); r != nil && r.Type != "" && r.Type != "object" {
			return r.Type
		}
		return name
	}
	switch s.Type {
	case "array":
		return typeName(reg, s.Items) + "[]"
	case "":
		if len(s.OneOf) > 0 || len(s.AnyOf) > 0 {
			return "one of several"
		}
		return "any"
	}
	t := s.Type
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	if len(s.Enum) > 0 {
		var vs []string
		for _, e := range s.Enum {
			vs = append(vs, fmt.Sprint(e))
		}
		t += ": " + strings.Join(vs, " | ")
	}
	return t
}

// fields flattens an object schema's properties, nesting objects and
// arrays of objects a few levels deep.
func fields(reg huma.Registry, s *huma.Schema, depth int, seen map[string]bool) []refField {
	if s != nil && s.Ref != "" {
		if seen[s.Ref] {
			return nil
		}
		seen = cloneSet(seen)
		seen[s.Ref] = true
	}
	s = resolve(reg, s)
	if s == nil || depth > 3 {
		return nil
	}
	if s.Type == "array" {
		return fields(reg, s.Items, depth, seen)
	}
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []refField
	for _, name := range names {
		prop := s.Properties[name]
		desc := prop.Description
		if r := resolve(reg, prop); desc == "" && r != nil {
			desc = r.Description
		}
		out = append(out, refField{Name: name, Type: typeName(reg, prop), Description: desc,
			Required: slices.Contains(s.Required, name), Depth: depth})
		out = append(out, fields(reg, prop, depth+1, seen)...)
	}
	return out
}

func cloneSet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// reference returns the reference, built on first use (after every
// route is registered).
func (p *Portal) reference() *reference {
	p.refOnce.Do(func() { p.ref = p.buildReference() })
	return p.ref
}

// op returns the operation with the given id, or nil.
func (ref *reference) op(id string) *refOp {
	for gi := range ref.Groups {
		for oi := range ref.Groups[gi].Ops {
			if o := &ref.Groups[gi].Ops[oi]; o.ID == id {
				return o
			}
		}
	}
	return nil
}

// referencePage renders the reference; anyone may read it, as anyone may
// read /openapi.json. A logged-in developer also gets a form under each
// operation to try it with one of their apps.
func (p *Portal) referencePage(w http.ResponseWriter, r *http.Request) error {
	v := &view{Title: "API reference", Section: "reference"}
	d := map[string]any{"Ref": p.reference()}
	if s := p.developer(r); s != nil {
		v.Dev, v.CSRF = s.Dev, s.CSRF
		ctx, cancel := bounded(r)
		defer cancel()
		apps, err := p.d.Identity.Apps(ctx, s.Dev, identity.MaxPageSize, "")
		if err != nil {
			return err
		}
		d["Apps"] = apps.Data
	}
	v.D = d
	p.render(w, r, http.StatusOK, "reference", v)
	return nil
}
