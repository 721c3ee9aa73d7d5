package openapitest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Lint returns what in an OpenAPI document (JSON) breaks the rules the
// platform's document keeps, one line per finding, sorted: the structural
// rules of Redocly's recommended ruleset and Spectral's spectral:oas that
// a Go test can check without npm (.ci/run runs both linters too).
//
//   - info has a contact and a license with a URL; there is a server;
//   - every tag an operation uses is declared at the top, with a
//     description;
//   - every operation has an operationId, a summary, a description that
//     says more than the summary, tags, a security declaration ([] when
//     public) naming declared schemes, a 2xx and a 4xx answer;
//   - no schema types an array as nullable (["array","null"]), so that
//     generated clients get []T;
//   - every component is referenced.
func Lint(doc []byte) []string {
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	l := &linter{declared: map[string]bool{}}
	l.info(d)
	l.tags(d)
	components, _ := d["components"].(map[string]any)
	l.schemes, _ = components["securitySchemes"].(map[string]any)
	paths, _ := d["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, o := range ops {
			op, ok := o.(map[string]any)
			if !ok || !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}, method) {
				continue
			}
			l.operation(strings.ToUpper(method)+" "+path, op)
		}
	}
	l.nullableArrays(d)
	l.unreferenced(d, components)
	slices.Sort(l.out)
	return l.out
}

// linter gathers Lint's findings.
type linter struct {
	out []string
	// declared are the tags declared at the top.
	declared map[string]bool
	// schemes are the declared security schemes.
	schemes map[string]any
}

func (l *linter) add(format string, args ...any) { l.out = append(l.out, fmt.Sprintf(format, args...)) }

// info checks the contact, the license and the servers.
func (l *linter) info(d map[string]any) {
	info, _ := d["info"].(map[string]any)
	if contact, _ := info["contact"].(map[string]any); len(contact) == 0 {
		l.add("info: no contact")
	}
	license, _ := info["license"].(map[string]any)
	if license["name"] == nil || license["url"] == nil && license["identifier"] == nil {
		l.add("info: no license with a name and a url or identifier")
	}
	if servers, _ := d["servers"].([]any); len(servers) == 0 {
		l.add("servers: none")
	}
}

// tags checks the tags declared at the top and records them.
func (l *linter) tags(d map[string]any) {
	tags, _ := d["tags"].([]any)
	for _, t := range tags {
		tag, _ := t.(map[string]any)
		name, _ := tag["name"].(string)
		if l.declared[name] {
			l.add("tags: %q declared twice", name)
		}
		l.declared[name] = true
		if desc, _ := tag["description"].(string); strings.TrimSpace(desc) == "" {
			l.add("tags: %q has no description", name)
		}
	}
}

// operation checks the operation named at: its id, summary, description,
// tags, security and answers.
func (l *linter) operation(at string, op map[string]any) {
	if id, _ := op["operationId"].(string); id == "" {
		l.add("%s: no operationId", at)
	}
	summary, _ := op["summary"].(string)
	desc, _ := op["description"].(string)
	switch {
	case strings.TrimSpace(summary) == "":
		l.add("%s: no summary", at)
	case strings.TrimSpace(desc) == "":
		l.add("%s: no description", at)
	case strings.TrimSpace(desc) == strings.TrimSpace(summary):
		l.add("%s: the description only repeats the summary", at)
	}
	opTags, _ := op["tags"].([]any)
	if len(opTags) == 0 {
		l.add("%s: no tags", at)
	}
	for _, t := range opTags {
		if name, _ := t.(string); !l.declared[name] {
			l.add("%s: tag %q is not declared at the top", at, name)
		}
	}
	l.security(at, op)
	responses, _ := op["responses"].(map[string]any)
	var ok2xx, ok4xx bool
	for status := range responses {
		ok2xx = ok2xx || strings.HasPrefix(status, "2")
		ok4xx = ok4xx || strings.HasPrefix(status, "4")
	}
	if !ok2xx {
		l.add("%s: no 2xx answer", at)
	}
	if !ok4xx {
		l.add("%s: no 4xx answer", at)
	}
}

// security checks that the operation declares its security, naming
// declared schemes and their scopes.
func (l *linter) security(at string, op map[string]any) {
	security, ok := op["security"].([]any)
	if !ok {
		l.add("%s: no security declaration (public operations declare [])", at)
	}
	for _, req := range security {
		r, _ := req.(map[string]any)
		for scheme, listed := range r {
			if l.schemes[scheme] == nil {
				l.add("%s: security scheme %q is not declared", at, scheme)
				continue
			}
			// Spectral's oas3-operation-security-defined: what a
			// requirement lists must be scopes of the scheme's flows.
			for _, scope := range asStrings(listed) {
				if !definesScope(l.schemes[scheme], scope) {
					l.add("%s: %q is not a scope of the security scheme %q", at, scope, scheme)
				}
			}
		}
	}
}

// nullableArrays finds schemas typing an array as nullable.
func (l *linter) nullableArrays(d map[string]any) {
	walk(d, "#", func(ptr string, node map[string]any) {
		if types, ok := node["type"].([]any); ok && slices.Contains(types, any("array")) && slices.Contains(types, any("null")) {
			l.add("%s: a nullable array (generated clients would get a pointer to a slice)", ptr)
		}
	})
}

// unreferenced finds the components nothing refers to.
func (l *linter) unreferenced(d, components map[string]any) {
	refs := map[string]bool{}
	walk(d, "#", func(_ string, node map[string]any) {
		if ref, ok := node["$ref"].(string); ok {
			refs[ref] = true
		}
	})
	for kind, entries := range components {
		if kind == "securitySchemes" {
			continue
		}
		m, _ := entries.(map[string]any)
		for name := range m {
			if ref := "#/components/" + kind + "/" + name; !refs[ref] {
				l.add("%s: never referenced", ref)
			}
		}
	}
}

// walk calls fn for every object in node, with its JSON pointer.
func walk(node any, ptr string, fn func(ptr string, node map[string]any)) {
	switch n := node.(type) {
	case map[string]any:
		fn(ptr, n)
		for k, v := range n {
			walk(v, ptr+"/"+escape(k), fn)
		}
	case []any:
		for i, v := range n {
			walk(v, fmt.Sprintf("%s/%d", ptr, i), fn)
		}
	}
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// definesScope reports whether one of scheme's OAuth2 flows has scope.
func definesScope(scheme any, scope string) bool {
	s, _ := scheme.(map[string]any)
	flows, _ := s["flows"].(map[string]any)
	for _, flow := range flows {
		f, _ := flow.(map[string]any)
		if scopes, _ := f["scopes"].(map[string]any); scopes != nil {
			if _, ok := scopes[scope]; ok {
				return true
			}
		}
	}
	return false
}
