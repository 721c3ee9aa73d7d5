package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
)

type item struct {
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
	Notes  []string `json:"notes,omitempty"`
}

type itemPage struct {
	Data       []*item `json:"data"`
	NextCursor string  `json:"next_cursor"`
}

type pageOutput struct{ Body *itemPage }

type idIn struct {
	ID string `path:"id" maxLength:"64"`
}

type bodyIn struct {
	Body struct {
		Name string `json:"name" maxLength:"20"`
	}
}

// newDocServer serves a few operations that differ in what the route
// policy looks at: security, path ids, queries, bodies and methods.
func newDocServer(t *testing.T, page *itemPage) *httptest.Server {
	t.Helper()
	s := httpapi.New(httpapi.Config{Version: "test", Registerer: prometheus.NewRegistry(), PublicURL: "https://api.bank.test"})
	app := []map[string][]string{{httpapi.SchemeAppOAuth2: {"accounts:read"}}}
	list := func(ctx context.Context, _ *struct{}) (*pageOutput, error) { return &pageOutput{Body: page}, nil }
	get := func(ctx context.Context, _ *idIn) (*pageOutput, error) { return &pageOutput{Body: page}, nil }
	create := func(ctx context.Context, _ *bodyIn) (*pageOutput, error) { return &pageOutput{Body: page}, nil }
	huma.Register(s.API, huma.Operation{OperationID: "public-list", Method: http.MethodGet, Path: "/v1/public"}, list)
	huma.Register(s.API, huma.Operation{OperationID: "get-thing", Method: http.MethodGet, Path: "/v1/things/{id}", Security: app}, get)
	huma.Register(s.API, huma.Operation{OperationID: "create-thing", Method: http.MethodPost, Path: "/v1/things", Security: app}, create)
	huma.Register(s.API, huma.Operation{OperationID: "sign-up", Method: http.MethodPost, Path: "/v1/signups",
		Errors: []int{http.StatusConflict}}, create)
	huma.Register(s.Bank, httpapi.BankRole(huma.Operation{OperationID: "bank-change", Method: http.MethodPost, Path: "/things/{id}/close"},
		auth.RoleAdmin), get)
	content := huma.Operation{OperationID: "content", Method: http.MethodGet, Path: "/v1/things/{id}/content", Security: app,
		Responses: map[string]*huma.Response{"409": httpapi.ProblemResponse("content_not_ready", httpapi.HeaderRetryAfter)}}
	huma.Register(s.API, content, get)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func fetchDoc(t *testing.T, url string) map[string]any {
	t.Helper()
	res, err := http.Get(url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func operation(doc map[string]any, method, path string) map[string]any {
	op, _ := doc["paths"].(map[string]any)[path].(map[string]any)[method].(map[string]any)
	return op
}

func TestTheRoutePolicyDocumentsTheProblemsAnOperationCanAnswer(t *testing.T) {
	doc := fetchDoc(t, newDocServer(t, &itemPage{}).URL)
	for _, tt := range []struct {
		method, path string
		want         []string
	}{
		// Public, no parameters: only what any request can meet.
		{"get", "/v1/public", []string{"200", "default"}},
		// An app's token with a scope, a path id: the gateway's 401, 403
		// and 429, the 404 of an id, the 422 of a parameter.
		{"get", "/v1/things/{id}", []string{"200", "401", "403", "404", "422", "429", "default"}},
		// A POST of an app: its body (400, 422) and its Idempotency-Key
		// (409 idempotency_in_progress).
		{"post", "/v1/things", []string{"200", "400", "401", "403", "409", "422", "429", "default"}},
		// Public with a body, plus what the operation declares itself (huma
		// adds a 500 to declared errors).
		{"post", "/v1/signups", []string{"200", "400", "409", "422", "500", "default"}},
		// The bank's state change: a compare-and-set may lose (409); the
		// gateway meters no bank call (no 429), and no scope (no 403).
		{"post", "/bank/v1/things/{id}/close", []string{"200", "401", "404", "409", "422", "default"}},
	} {
		op := operation(doc, tt.method, tt.path)
		var got []string
		for status := range op["responses"].(map[string]any) {
			got = append(got, status)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s %s answers %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}

	// Public operations say so; the others keep their requirement.
	if sec, ok := operation(doc, "get", "/v1/public")["security"].([]any); !ok || len(sec) != 0 {
		t.Errorf("public operation security = %v, want []", operation(doc, "get", "/v1/public")["security"])
	}
	// Problems are RFC 9457 documents, shared through components.
	res := operation(doc, "get", "/v1/things/{id}")["responses"].(map[string]any)
	if ref := res["404"].(map[string]any)["$ref"]; ref != "#/components/responses/NotFound" {
		t.Errorf("404 = %v", res["404"])
	}
	notFound := doc["components"].(map[string]any)["responses"].(map[string]any)["NotFound"].(map[string]any)
	if _, ok := notFound["content"].(map[string]any)["application/problem+json"]; !ok {
		t.Errorf("NotFound is not application/problem+json: %v", notFound)
	}
	// A metered answer carries the rate limit; a POST's also the replay
	// marker, and the request documents Idempotency-Key.
	headers := func(method, path, status string) []string {
		r := operation(doc, method, path)["responses"].(map[string]any)[status].(map[string]any)
		var names []string
		for name := range r["headers"].(map[string]any) {
			names = append(names, name)
		}
		slices.Sort(names)
		return names
	}
	if got := headers("post", "/v1/things", "200"); !slices.Equal(got, []string{"Idempotent-Replayed", "RateLimit-Limit",
		"RateLimit-Remaining", "RateLimit-Reset", "X-Request-Id"}) {
		t.Errorf("POST /v1/things 200 headers = %v", got)
	}
	if got := headers("get", "/v1/public", "200"); !slices.Equal(got, []string{"X-Request-Id"}) {
		t.Errorf("public 200 headers = %v", got)
	}
	if got := headers("get", "/v1/things/{id}/content", "409"); !slices.Equal(got, []string{"Retry-After", "X-Request-Id"}) {
		t.Errorf("the operation's own 409 headers = %v", got)
	}
	params, _ := operation(doc, "post", "/v1/things")["parameters"].([]any)
	if len(params) != 1 || params[0].(map[string]any)["name"] != "Idempotency-Key" {
		t.Errorf("POST /v1/things parameters = %v, want Idempotency-Key", params)
	}
	if _, ok := operation(doc, "post", "/v1/signups")["parameters"]; ok {
		t.Error("a public POST documents Idempotency-Key, which only the gateway's callers have")
	}
	if servers := doc["servers"].([]any); servers[0].(map[string]any)["url"] != "https://api.bank.test" {
		t.Errorf("servers = %v", servers)
	}
}

func TestNilSlicesAreSentAsEmptyArrays(t *testing.T) {
	// The handler returns a value it shares (a cached page, say), with nil
	// slices at two depths.
	shared := &itemPage{Data: []*item{{Name: "a"}}}
	srv := newDocServer(t, shared)
	doc := fetchDoc(t, srv.URL)
	res, err := http.Get(srv.URL + "/v1/public")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `{"data":[{"name":"a","labels":[]}],"next_cursor":""}`; strings.TrimSpace(string(body)) != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	if shared.Data[0].Labels != nil {
		t.Error("the shared value was modified")
	}
	// A nil page of data is [] too, and the document says arrays are never
	// null.
	res, err = http.Get(newDocServer(t, &itemPage{}).URL + "/v1/public")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if want := `{"data":[],"next_cursor":""}`; strings.TrimSpace(string(body)) != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	data := doc["components"].(map[string]any)["schemas"].(map[string]any)["ItemPage"].(map[string]any)["properties"].(map[string]any)["data"]
	if typ := data.(map[string]any)["type"]; typ != "array" {
		t.Errorf("data is typed %v, want array", typ)
	}
	raw, _ := json.Marshal(doc)
	for _, finding := range openapitest.Lint(raw) {
		if strings.Contains(finding, "nullable array") {
			t.Error(finding)
		}
	}
}
