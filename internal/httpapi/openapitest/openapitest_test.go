package openapitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const doc = `{"openapi":"3.1.0","info":{"title":"t","version":"1"},
"paths":{"/v1/things/{id}":{"get":{"responses":{"200":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Thing"}}}}}}}},
"components":{"schemas":{"Thing":{"type":"object","required":["id","amount"],"properties":{"id":{"type":"string"},"amount":{"type":"string","pattern":"^[0-9]+\\.[0-9]{2}$"}}}}}}`

func TestCheckCatchesResponsesThatDriftFromTheDocument(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(doc)) }))
	defer srv.Close()
	v := Fetch(t, srv.URL)
	for _, tt := range []struct {
		status int
		body   string
		ok     bool
	}{
		{200, `{"id":"x","amount":"1.00"}`, true},
		{200, `{"id":"x","amount":1.0}`, false},
		{200, `{"id":"x"}`, false},
		{200, `{"id":"x","amount":"1"}`, false},
		{404, `{}`, false},
	} {
		err := v.check("GET", "/v1/things/{id}", tt.status, "application/json", []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%d %s: err = %v, want ok=%v", tt.status, tt.body, err, tt.ok)
		}
	}
	if err := v.check("GET", "/v1/other", 200, "application/json", []byte(`{}`)); err == nil {
		t.Error("an undocumented path passed")
	}
}

func TestCheckFollowsSharedResponses(t *testing.T) {
	const shared = `{"openapi":"3.1.0","info":{"title":"t","version":"1"},
"paths":{"/v1/things/{id}":{"get":{"responses":{"404":{"$ref":"#/components/responses/NotFound"}}}}},
"components":{"responses":{"NotFound":{"description":"no","content":{"application/problem+json":{"schema":{"$ref":"#/components/schemas/Problem"}}}}},
"schemas":{"Problem":{"type":"object","required":["code"],"properties":{"code":{"type":"string"}}}}}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(shared)) }))
	defer srv.Close()
	v := Fetch(t, srv.URL)
	if err := v.check("GET", "/v1/things/{id}", 404, "application/problem+json", []byte(`{"code":"not_found"}`)); err != nil {
		t.Errorf("a valid problem: %v", err)
	}
	if err := v.check("GET", "/v1/things/{id}", 404, "application/problem+json", []byte(`{"title":"x"}`)); err == nil {
		t.Error("a problem without its code passed")
	}
}

func TestLintFindsWhatTheLintersWouldWarnAbout(t *testing.T) {
	const clean = `{"openapi":"3.1.0",
"info":{"title":"t","version":"1","contact":{"name":"c"},"license":{"name":"l","url":"https://l.test/"}},
"servers":[{"url":"https://api.test"}],
"tags":[{"name":"Things","description":"Things."}],
"paths":{"/v1/things":{"get":{"operationId":"list-things","summary":"List things","description":"Every thing, oldest first.",
  "tags":["Things"],"security":[{"bearer":[]}],
  "responses":{"200":{"$ref":"#/components/responses/Things"},"401":{"description":"no"}}}}},
"components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"}},
  "responses":{"Things":{"description":"ok","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Things"}}}}},
  "schemas":{"Things":{"type":"object","properties":{"data":{"type":"array","items":{"type":"string"}}}}}}}`
	if got := Lint([]byte(clean)); len(got) != 0 {
		t.Fatalf("a clean document: %v", got)
	}
	for _, tt := range []struct{ from, to, want string }{
		{`"contact":{"name":"c"},`, ``, "info: no contact"},
		{`"url":"https://l.test/"`, `"x":1`, "info: no license"},
		{`"servers":[{"url":"https://api.test"}],`, ``, "servers: none"},
		{`"description":"Things."`, `"description":""`, `tags: "Things" has no description`},
		{`"tags":["Things"]`, `"tags":["Other"]`, `tag "Other" is not declared`},
		{`"description":"Every thing, oldest first."`, `"description":"List things"`, "only repeats the summary"},
		{`"description":"Every thing, oldest first.",`, ``, "GET /v1/things: no description"},
		{`"security":[{"bearer":[]}],`, ``, "no security declaration"},
		{`"security":[{"bearer":[]}]`, `"security":[{"basic":[]}]`, `security scheme "basic" is not declared`},
		{`,"401":{"description":"no"}`, ``, "no 4xx answer"},
		{`"type":"array"`, `"type":["array","null"]`, "a nullable array"},
		{`"200":{"$ref":"#/components/responses/Things"}`, `"200":{"description":"ok"}`, "#/components/responses/Things: never referenced"},
	} {
		doc := strings.Replace(clean, tt.from, tt.to, 1)
		if doc == clean {
			t.Fatalf("%q is not in the document", tt.from)
		}
		got := strings.Join(Lint([]byte(doc)), "\n")
		if !strings.Contains(got, tt.want) {
			t.Errorf("with %s -> %s: findings %q, want one with %q", tt.from, tt.to, got, tt.want)
		}
	}
}
