package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/testkit"
)

// contractTypes are the event types the contract names.
var contractTypes = []string{
	"customer.created", "account.opened", "transaction.booked", "payment.completed", "payment.rejected",
	"payment.held", "kyc.check.completed", "loan.application.decided", "loan.funded", "branch.customer.arrived",
	"marketing.offer.created", "dataset.access.approved", "dataset.access.rejected", "dataset.access.revoked",
	"webhook.disabled",
}

type catalog struct {
	Data []events.EventType `json:"data"`
}

// compile compiles a catalog schema the way a developer would.
func compile(t testing.TB, name string, raw json.RawMessage) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: schema is not JSON: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem://"+name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://" + name)
	if err != nil {
		t.Fatalf("%s: schema does not compile: %v", name, err)
	}
	return s
}

func validate(t testing.TB, s *jsonschema.Schema, data json.RawMessage) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("data is not JSON: %v", err)
	}
	return s.Validate(inst)
}

func TestCatalogListsBuiltinsWithCompilingSchemasAndValidExamples(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	res := e.asApp(t, "app_a", "/v1/event-types")
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/event-types = %d %s", res.status, res.body)
	}
	e.doc.Check(t, http.MethodGet, "/v1/event-types", res.status, res.header.Get("Content-Type"), res.body)
	var c catalog
	res.decode(t, &c)
	byType := map[string]events.EventType{}
	for _, et := range c.Data {
		byType[et.Type] = et
	}
	for _, typ := range contractTypes {
		et, ok := byType[typ]
		if !ok {
			t.Errorf("catalog lacks %s", typ)
			continue
		}
		if !et.Builtin || et.Description == "" || et.Version == "" {
			t.Errorf("%s: builtin %v, description %q, version %q", typ, et.Builtin, et.Description, et.Version)
		}
		s := compile(t, typ, et.Schema)
		var ex struct {
			SpecVersion string          `json:"specversion"`
			ID          string          `json:"id"`
			Type        string          `json:"type"`
			Source      string          `json:"source"`
			Time        string          `json:"time"`
			Data        json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(et.Example, &ex); err != nil {
			t.Errorf("%s: example is not a JSON object: %v", typ, err)
			continue
		}
		if ex.SpecVersion != "1.0" || ex.Type != typ || ex.ID == "" || ex.Source == "" || ex.Time == "" {
			t.Errorf("%s: example is not a whole CloudEvent of its type: %s", typ, et.Example)
		}
		if err := validate(t, s, ex.Data); err != nil {
			t.Errorf("%s: example data does not match the schema: %v", typ, err)
		}
	}
	if byType["branch.customer.arrived"].Public {
		t.Error("branch.customer.arrived concerns a customer; it must not be public")
	}

	bank := e.asBank(t, http.MethodGet, "/bank/v1/event-types", "", nil)
	var bc catalog
	bank.decode(t, &bc)
	if bank.status != http.StatusOK || len(bc.Data) != len(c.Data) {
		t.Errorf("GET /bank/v1/event-types = %d with %d types, want 200 with %d", bank.status, len(bc.Data), len(c.Data))
	}
}

func TestCatalogSchemasRefuseWrongData(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	var c catalog
	e.asApp(t, "app_a", "/v1/event-types").decode(t, &c)
	for _, et := range c.Data {
		s := compile(t, et.Type, et.Schema)
		for _, bad := range []string{`null`, `[]`, `"x"`, `{}`} {
			if validate(t, s, json.RawMessage(bad)) == nil {
				t.Errorf("%s: the schema accepts %s", et.Type, bad)
			}
		}
	}
}

var visitEnded = map[string]any{
	"type":        "branch.visit.ended",
	"description": "A customer left the branch.",
	"version":     "2.1",
	"public":      false,
	"schema": map[string]any{
		"type":     "object",
		"required": []string{"branch_id", "minutes"},
		"properties": map[string]any{
			"customer_id": map[string]any{"type": "string"},
			"branch_id":   map[string]any{"type": "string"},
			"minutes":     map[string]any{"type": "integer", "minimum": 0},
		},
	},
	"example": map[string]any{
		"specversion": "1.0", "id": "evt_1", "type": "branch.visit.ended", "source": "/bank/branches",
		"data": map[string]any{"customer_id": "cus_1", "branch_id": "ams", "minutes": 12},
	},
}

func TestBankRegistersAndReplacesAType(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		res := e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", visitEnded)
		if res.status != http.StatusCreated {
			t.Fatalf("register = %d %s", res.status, res.body)
		}
		e.doc.Check(t, http.MethodPost, "/bank/v1/event-types", res.status, res.header.Get("Content-Type"), res.body)
		var got events.EventType
		res.decode(t, &got)
		if got.Type != "branch.visit.ended" || got.Version != "2.1" || got.Builtin || !strings.Contains(string(got.Schema), "minutes") {
			t.Errorf("registered = %+v", got)
		}
		var c catalog
		e.asApp(t, "app_a", "/v1/event-types").decode(t, &c)
		found := false
		for _, et := range c.Data {
			found = found || et.Type == "branch.visit.ended"
		}
		if !found {
			t.Error("the registered type is not in GET /v1/event-types")
		}
		if ok, err := e.svc.TypeExists(context.Background(), "branch.visit.ended"); !ok || err != nil {
			t.Errorf("TypeExists = %v, %v", ok, err)
		}

		again := map[string]any{}
		for k, v := range visitEnded {
			again[k] = v
		}
		again["public"], again["version"] = true, "3.0"
		res = e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", again)
		if res.status != http.StatusOK {
			t.Fatalf("replace = %d %s", res.status, res.body)
		}
		if !e.svc.IsPublic("branch.visit.ended") {
			t.Error("the replaced type is not public")
		}
	})
}

func TestBuiltinTypesCannotBeReplaced(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	body := map[string]any{"type": "payment.completed", "description": "mine now", "schema": map[string]any{"type": "object"}}
	res := e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", body)
	if code, _ := res.problem(t); res.status != http.StatusConflict || code != "builtin_event_type" {
		t.Errorf("replace a built-in = %d %s, want 409 builtin_event_type", res.status, res.body)
	}
}

func TestRegisterTypeValidates(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	obj := map[string]any{"type": "object"}
	remote := testkit.NewSentinel(t, `{"type":"object"}`)
	tests := []struct {
		name string
		body map[string]any
		code string
	}{
		{"one word", map[string]any{"type": "visit", "description": "d", "schema": obj}, "invalid_event_type_name"},
		{"upper case", map[string]any{"type": "Branch.Visit", "description": "d", "schema": obj}, "invalid_event_type_name"},
		{"wildcard", map[string]any{"type": "branch.*", "description": "d", "schema": obj}, "invalid_event_type_name"},
		{"no description", map[string]any{"type": "branch.visit", "description": " ", "schema": obj}, "invalid_description"},
		{"schema does not compile", map[string]any{"type": "branch.visit", "description": "d", "schema": map[string]any{"type": "objekt"}}, "invalid_schema"},
		{"schema not an object", map[string]any{"type": "branch.visit", "description": "d", "schema": 42}, "invalid_schema"},
		{"schema with a remote $ref", map[string]any{"type": "branch.visit", "description": "d", "schema": map[string]any{"$ref": remote.URL + "/schema.json"}}, "invalid_schema"},
		{"schema with a file $ref", map[string]any{"type": "branch.visit", "description": "d", "schema": map[string]any{"$ref": "file:///etc/passwd"}}, "invalid_schema"},
		{"example of another type", map[string]any{"type": "branch.visit", "description": "d", "schema": obj,
			"example": map[string]any{"specversion": "1.0", "type": "branch.other", "source": "/x", "data": map[string]any{}}}, "invalid_example"},
		{"example data off schema", map[string]any{"type": "branch.visit", "description": "d",
			"schema":  map[string]any{"type": "object", "required": []string{"n"}},
			"example": map[string]any{"specversion": "1.0", "type": "branch.visit", "source": "/x", "data": map[string]any{}}}, "invalid_example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.asBank(t, http.MethodPost, "/bank/v1/event-types", "application/json", tt.body)
			code, detail := res.problem(t)
			if res.status != http.StatusUnprocessableEntity || code != tt.code {
				t.Errorf("= %d %s, want 422 %s", res.status, res.body, tt.code)
			}
			if detail == "" {
				t.Error("problem without detail")
			}
		})
	}
	if n := remote.Hits(); n != 0 {
		t.Errorf("the remote $ref was fetched %d times", n)
	}
}
