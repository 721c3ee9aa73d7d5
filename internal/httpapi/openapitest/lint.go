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
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	info, _ := d["info"].(map[string]any)
	if contact, _ := info["contact"].(map[string]any); len(contact) == 0 {
		add("info: no contact")
	}
	license, _ := info["license"].(map[string]any)
	if license["name"] == nil || license["url"] == nil && license["identifier"] == nil {
		add("info: no license with a name and a url or identifier")
	}
	if servers, _ := d["servers"].([]any); len(servers) == 0 {
		add("servers: none")
	}

	declared := map[string]bool{}
	tags, _ := d["tags"].([]any)
	for _, t := range tags {
		tag, _ := t.(map[string]any)
		name, _ := tag["name"].(string)
		if declared[name] {
			add("tags: %q declared twice", name)
		}
		declared[name] = true
		if desc, _ := tag["description"].(string); strings.TrimSpace(desc) == "" {
			add("tags: %q has no description", name)
		}
	}
	components, _ := d["components"].(map[string]any)
	schemes, _ := components["securitySchemes"].(map[string]any)

	paths, _ := d["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, o := range ops {
			op, ok := o.(map[string]any)
			if !ok || !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}, method) {
				continue
			}
			at := strings.ToUpper(method) + " " + path
			if id, _ := op["operationId"].(string); id == "" {
				add("%s: no operationId", at)
			}
			summary, _ := op["summary"].(string)
			desc, _ := op["description"].(string)
			switch {
			case strings.TrimSpace(summary) == "":
				add("%s: no summary", at)
			case strings.TrimSpace(desc) == "":
				add("%s: no description", at)
			case strings.TrimSpace(desc) == strings.TrimSpace(summary):
				add("%s: the description only repeats the summary", at)
			}
			opTags, _ := op["tags"].([]any)
			if len(opTags) == 0 {
				add("%s: no tags", at)
			}
			for _, t := range opTags {
				if name, _ := t.(string); !declared[name] {
					add("%s: tag %q is not declared at the top", at, name)
				}
			}
			security, ok := op["security"].([]any)
			if !ok {
				add("%s: no security declaration (public operations declare [])", at)
			}
			for _, req := range security {
				r, _ := req.(map[string]any)
				for scheme, listed := range r {
					if schemes[scheme] == nil {
						add("%s: security scheme %q is not declared", at, scheme)
						continue
					}
					// Spectral's oas3-operation-security-defined: what a
					// requirement lists must be scopes of the scheme's flows.
					for _, scope := range asStrings(listed) {
						if !definesScope(schemes[scheme], scope) {
							add("%s: %q is not a scope of the security scheme %q", at, scope, scheme)
						}
					}
				}
			}
			responses, _ := op["responses"].(map[string]any)
			var ok2xx, ok4xx bool
			for status := range responses {
				ok2xx = ok2xx || strings.HasPrefix(status, "2")
				ok4xx = ok4xx || strings.HasPrefix(status, "4")
			}
			if !ok2xx {
				add("%s: no 2xx answer", at)
			}
			if !ok4xx {
				add("%s: no 4xx answer", at)
			}
		}
	}

	walk(d, "#", func(ptr string, node map[string]any) {
		if types, ok := node["type"].([]any); ok && slices.Contains(types, any("array")) && slices.Contains(types, any("null")) {
			add("%s: a nullable array (generated clients would get a pointer to a slice)", ptr)
		}
	})

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
				add("%s: never referenced", ref)
			}
		}
	}
	slices.Sort(out)
	return out
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
