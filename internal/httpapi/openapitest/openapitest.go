// Package openapitest checks real responses against the platform's own
// OpenAPI 3.1 document, so the document cannot drift from what the API
// sends. OpenAPI 3.1 schemas are JSON Schema 2020-12; each response schema
// is compiled straight out of the document, $refs and all.
package openapitest

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const docURL = "mem://causeway/openapi.json"

// Validator validates responses against one OpenAPI document.
type Validator struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	cache    map[string]*jsonschema.Schema
}

// Fetch loads the document from baseURL/openapi.json.
func Fetch(t testing.TB, baseURL string) *Validator {
	t.Helper()
	res, err := http.Get(baseURL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := jsonschema.UnmarshalJSON(res.Body)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	doc, ok := raw.(map[string]any)
	if !ok || !strings.HasPrefix(fmt.Sprint(doc["openapi"]), "3.1") {
		t.Fatalf("not an OpenAPI 3.1 document")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, raw); err != nil {
		t.Fatal(err)
	}
	return &Validator{doc: doc, compiler: c, cache: map[string]*jsonschema.Schema{}}
}

// Check validates a response body for the operation at pathTemplate (as in
// the document, e.g. "/v1/accounts/{id}") and method. The status must be
// documented (or covered by "default").
func (v *Validator) Check(t testing.TB, method, pathTemplate string, status int, contentType string, body []byte) {
	t.Helper()
	if err := v.check(method, pathTemplate, status, contentType, body); err != nil {
		t.Errorf("%s %s -> %d does not match the OpenAPI document: %v\nbody: %.500s", method, pathTemplate, status, err, body)
	}
}

func (v *Validator) check(method, pathTemplate string, status int, contentType string, body []byte) error {
	paths, _ := v.doc["paths"].(map[string]any)
	item, ok := paths[pathTemplate].(map[string]any)
	if !ok {
		return fmt.Errorf("path not documented")
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		return fmt.Errorf("method not documented")
	}
	responses, _ := op["responses"].(map[string]any)
	code := strconv.Itoa(status)
	if _, ok := responses[code]; !ok {
		code = "default"
		if _, ok := responses[code]; !ok {
			return fmt.Errorf("status %d not documented", status)
		}
	}
	ptr := "#/paths/" + escape(pathTemplate) + "/" + strings.ToLower(method) + "/responses/" + code
	resp, _ := responses[code].(map[string]any)
	// A shared answer is a reference to components/responses.
	if ref, ok := resp["$ref"].(string); ok {
		ptr = ref
		resp, _ = v.resolve(ref).(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	if len(body) == 0 && len(content) == 0 {
		return nil
	}
	mediaType := strings.TrimSpace(strings.Split(contentType, ";")[0])
	if _, ok := content[mediaType]; !ok {
		return fmt.Errorf("content type %q not documented for %s", mediaType, code)
	}
	ptr += "/content/" + escape(mediaType) + "/schema"
	schema, err := v.schema(ptr)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	return schema.Validate(inst)
}

func (v *Validator) schema(ptr string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[ptr]; ok {
		return s, nil
	}
	s, err := v.compiler.Compile(docURL + ptr)
	if err != nil {
		return nil, err
	}
	v.cache[ptr] = s
	return s, nil
}

// resolve returns the value a local reference ("#/components/...") points
// to, or nil.
func (v *Validator) resolve(ref string) any {
	var node any = v.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	return node
}

// escape makes a JSON pointer token (RFC 6901).
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Operations lists every documented operation as "METHOD /path" with its
// security requirement, for tests that walk all routes.
func (v *Validator) Operations() map[string][]any {
	out := map[string][]any{}
	paths, _ := v.doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			m, ok := op.(map[string]any)
			if !ok {
				continue
			}
			sec, _ := m["security"].([]any)
			out[strings.ToUpper(method)+" "+path] = sec
		}
	}
	return out
}
