package platform_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

// TestEveryRequestTextHasAMaxLength walks the node's OpenAPI document:
// every string a request may carry (a parameter, or a property anywhere in
// a request body, items and map values included) declares maxLength,
// unless its values are a closed set (enum, const). Money inputs document
// their maximum.
func TestEveryRequestTextHasAMaxLength(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		var doc struct {
			Paths      map[string]map[string]json.RawMessage `json:"paths"`
			Components struct {
				Schemas map[string]map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if code := get(t, n.URL+"/openapi.json", "", &doc); code != 200 {
			t.Fatalf("/openapi.json = %d", code)
		}
		var missing []string
		var walk func(where string, s map[string]any, seen map[string]bool)
		walk = func(where string, s map[string]any, seen map[string]bool) {
			if ref, ok := s["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/components/schemas/")
				if seen[name] {
					return
				}
				seen = maps(seen, name)
				s = doc.Components.Schemas[name]
			}
			if isString(s["type"]) && s["maxLength"] == nil && s["enum"] == nil && s["const"] == nil {
				missing = append(missing, where)
			}
			props, _ := s["properties"].(map[string]any)
			for name, p := range props {
				walk(where+"."+name, p.(map[string]any), seen)
			}
			if items, ok := s["items"].(map[string]any); ok {
				walk(where+"[]", items, seen)
			}
			if ap, ok := s["additionalProperties"].(map[string]any); ok {
				walk(where+".*", ap, seen)
			}
			for _, k := range []string{"allOf", "anyOf", "oneOf"} {
				list, _ := s[k].([]any)
				for _, x := range list {
					walk(where, x.(map[string]any), seen)
				}
			}
		}
		for path, item := range doc.Paths {
			for method, raw := range item {
				var op struct {
					Parameters []struct {
						Name, In string
						Schema   map[string]any
					}
					RequestBody struct {
						Content map[string]struct {
							Schema map[string]any
						}
					} `json:"requestBody"`
				}
				if json.Unmarshal(raw, &op) != nil {
					continue // not an operation (summary, parameters)
				}
				at := strings.ToUpper(method) + " " + path
				for _, p := range op.Parameters {
					walk(fmt.Sprintf("%s %s.%s", at, p.In, p.Name), p.Schema, map[string]bool{})
				}
				for mt, c := range op.RequestBody.Content {
					walk(at+" body("+mt+")", c.Schema, map[string]bool{})
				}
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			t.Errorf("%d request strings without maxLength:\n%s", len(missing), strings.Join(missing, "\n"))
		}
		amount, _ := doc.Components.Schemas["MoneyInput"]["properties"].(map[string]any)["amount"].(map[string]any)
		if d, _ := amount["description"].(string); !strings.Contains(d, "100000000000.00") || !strings.Contains(d, "amount_too_large") {
			t.Errorf("MoneyInput.amount does not document its maximum: %q", d)
		}
	})
}

func isString(typ any) bool {
	switch v := typ.(type) {
	case string:
		return v == "string"
	case []any:
		return slices.Contains(v, any("string"))
	}
	return false
}

// maps returns a copy of seen with name added, so sibling branches of the
// walk do not hide each other's types.
func maps(seen map[string]bool, name string) map[string]bool {
	out := make(map[string]bool, len(seen)+1)
	for k := range seen {
		out[k] = true
	}
	out[name] = true
	return out
}
